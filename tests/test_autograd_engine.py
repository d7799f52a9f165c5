"""The backward engine seen from the user's side, checked against torch 2.13 in float64."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch
from dyntorch.autograd import engine


def pair(torch, arr, device="cpu", rg=True):
    d = dyntorch.tensor(arr, dtype=dyntorch.float64, device=device, requires_grad=rg)
    t = torch.tensor(arr, dtype=torch.float64, requires_grad=rg)
    return d, t


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().numpy(), rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- errors
def test_backward_twice_without_retain_graph(torch):
    for base in (dyntorch, torch):
        x = base.tensor([0.5, 1.5], dtype=base.float64, requires_grad=True)
        y = (x.sin() * x).sum()
        y.backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            y.backward()


def test_retain_graph_and_accumulation_across_calls(torch, rng, device):
    arr = rng.standard_normal(4)
    (d, t) = pair(torch, arr, device)
    for x in (d, t):
        y = (x.sin() * x.exp()).sum()
        y.backward(retain_graph=True)
        y.backward()
        z = (x * x).sum()
        z.backward()
    close(d.grad, t.grad)


def test_inplace_change_of_saved_tensor_raises_at_backward(torch):
    for base in (dyntorch, torch):
        x = base.tensor([0.5, 1.5], dtype=base.float64, requires_grad=True)
        a = x * 2
        y = a.sin()  # sin saves its input
        a.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_inplace_on_leaf_requiring_grad_raises(torch):
    for base in (dyntorch, torch):
        x = base.tensor([0.5, 1.5], dtype=base.float64, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            x.mul_(2)
        with base.no_grad():
            x.mul_(2)  # allowed, as optimizers do
        assert x.requires_grad


def test_backward_on_non_scalar_needs_gradient(torch):
    for base in (dyntorch, torch):
        x = base.tensor([0.5, 1.5], dtype=base.float64, requires_grad=True)
        with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
            (x * 2).backward()


def test_requires_grad_on_integer_tensor_raises(torch):
    for base in (dyntorch, torch):
        with pytest.raises(RuntimeError, match="floating point"):
            base.tensor([1, 2]).requires_grad_()
        with pytest.raises(RuntimeError, match="floating point"):
            base.tensor([1, 2], requires_grad=True)


def test_backward_on_tensor_without_graph_raises(torch):
    for base in (dyntorch, torch):
        with pytest.raises(RuntimeError, match="does not require grad"):
            base.ones(2).sum().backward()


# ----------------------------------------------------------------------------- values
def test_diamond_graph_matches_torch(torch, rng, device):
    arr = rng.standard_normal((3, 2))
    d, t = pair(torch, arr, device)
    res = []
    for x in (d, t):
        y = x.exp()
        a = y * y
        b = y.sin()
        c = (a + b) * y + y.tanh()  # y is used four times: its buffer adds up partials
        w = c * a
        w.sum().backward()
        res.append(x.grad)
    close(res[0], res[1])


def test_autograd_grad_allow_unused(torch):
    for base in (dyntorch, torch):
        x = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        u = base.tensor([3.0], dtype=base.float64, requires_grad=True)
        y = (x * x).sum()
        with pytest.raises(RuntimeError, match="allow_unused"):
            base.autograd.grad(y, [x, u], retain_graph=True)
        gx, gu = base.autograd.grad(y, [x, u], allow_unused=True)
        assert gu is None
        np.testing.assert_allclose(gx.detach().numpy(), [2.0, 4.0])
        assert x.grad is None  # grad() returns, it does not accumulate


def test_higher_order_tanh_matches_torch(torch, rng, device):
    arr = rng.standard_normal(5)
    d, t = pair(torch, arr, device)
    res = []
    for base, x in ((dyntorch, d), (torch, t)):
        y = x.tanh().sum()
        (g1,) = base.autograd.grad(y, x, create_graph=True)
        (g2,) = base.autograd.grad(g1.sum(), x, create_graph=True)
        (g3,) = base.autograd.grad(g2.sum(), x)
        res.append((g1, g2, g3))
    for a, b in zip(res[0], res[1]):
        close(a, b)
    # and against the closed forms: tanh' = 1 - t^2, '' = -2t(1-t^2), ''' = (6t^2-2)(1-t^2)
    th = np.tanh(arr)
    np.testing.assert_allclose(res[0][2].detach().cpu().numpy(), (6 * th**2 - 2) * (1 - th**2),
                               rtol=1e-10)


def test_backward_inputs_accumulates_only_those(torch, rng):
    a_arr, b_arr = rng.standard_normal(3), rng.standard_normal(3)
    ad, at = pair(torch, a_arr)
    bd, bt = pair(torch, b_arr)
    for base, a, b in ((dyntorch, ad, bd), (torch, at, bt)):
        h = a * b
        y = (h.exp() * a).sum()
        y.backward(inputs=[a])
        assert b.grad is None
    close(ad.grad, at.grad)


def test_backward_inputs_non_leaf(torch, rng):
    arr = rng.standard_normal(3)
    d, t = pair(torch, arr)
    res = []
    for x in (d, t):
        h = x * 2
        (h.sin() * h).sum().backward(inputs=[h])
        assert x.grad is None
        res.append(h.grad)
    close(res[0], res[1])


# ----------------------------------------------------------------------------- grad mode
def test_grad_mode_context_managers_and_decorators(torch):
    for base in (dyntorch, torch):
        x = base.ones(2, requires_grad=True)
        with base.no_grad():
            assert not (x * 2).requires_grad
            with base.enable_grad():
                assert (x * 2).requires_grad
            assert not base.is_grad_enabled()
        assert base.is_grad_enabled()

        with base.set_grad_enabled(False):
            assert not (x * 2).requires_grad
        assert base.is_grad_enabled()

        base.set_grad_enabled(False)
        try:
            assert not base.is_grad_enabled()
            assert not (x * 2).requires_grad
        finally:
            base.set_grad_enabled(True)
        assert (x * 2).requires_grad

        with base.inference_mode():
            assert not (x * 2).requires_grad
        with base.inference_mode(False):
            assert (x * 2).requires_grad

        @base.no_grad()
        def f(t):
            return t * 2

        @base.enable_grad()
        def g(t):
            return t * 2

        assert not f(x).requires_grad
        with base.no_grad():
            assert g(x).requires_grad
        assert base.is_grad_enabled()

        @base.set_grad_enabled(False)
        def h(t):
            return t * 2

        assert base.is_grad_enabled()
        assert not h(x).requires_grad
        assert base.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(ValueError):
        with dyntorch.no_grad():
            raise ValueError
    assert dyntorch.is_grad_enabled()


# ----------------------------------------------------------------------------- graph structure
def _names(fn):
    if fn is None:
        return None
    name = fn.name().replace("torch::autograd::", "")
    return (name, tuple(_names(n) for n, _ in fn.next_functions))


def test_node_names_and_next_functions_match_torch(torch, rng):
    arr = rng.standard_normal(3)
    res = []
    for base in (dyntorch, torch):
        x = base.tensor(arr, dtype=base.float64, requires_grad=True)
        w = base.tensor(arr, dtype=base.float64, requires_grad=True)
        c = base.tensor(arr, dtype=base.float64)  # no grad: an empty edge
        y = ((x * w + 1).exp() * c - x).sum()
        res.append(_names(y.grad_fn))
    assert res[0] == res[1]
    assert res[0][0] == "SumBackward0"


def test_seq_orders_creation_and_leaf_accumulators_are_shared():
    x = dyntorch.ones(2, requires_grad=True)
    a = x * 2
    b = a.exp()
    c = b + x
    assert a.grad_fn.seq < b.grad_fn.seq < c.grad_fn.seq
    acc1 = a.grad_fn.next_functions[0][0]
    acc2 = c.grad_fn.next_functions[1][0]
    assert acc1 is acc2 and acc1.name() == "AccumulateGrad"
    assert acc1.variable is x


def _assert_seq_topological(root):
    """Every node is newer than the nodes it sends gradients to (plain backward relies on it)."""
    stack, seen = [root], set()
    while stack:
        n = stack.pop()
        for e in n.next:
            if e is not None:
                assert e[0].seq < n.seq, (n.name(), e[0].name())
                if e[0] not in seen:
                    seen.add(e[0])
                    stack.append(e[0])
    return seen


def _scale_function(base):
    """The same custom Function for dyntorch and for torch."""
    class Scale(base.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x, w)
            return x * w

        @staticmethod
        def backward(ctx, g):
            x, w = ctx.saved_tensors
            return g * w, (g * x).sum()

    return Scale


def test_seq_is_topological_for_functions_module_hooks_and_in_place(torch):
    # Leaves meet the graph for the first time inside a custom Function and inside a
    # module's full backward hook: their AccumulateGrads are made there, after which the
    # consumer must still be the newer node. Then an in-place op and a view join in.
    results = []
    for base in (dyntorch, torch):
        arr = np.linspace(-1.0, 1.0, 6).reshape(2, 3)
        x = base.tensor(arr, dtype=base.float64, requires_grad=True)
        w = base.tensor(1.5, dtype=base.float64, requires_grad=True)
        lin = base.nn.Linear(3, 3).double()
        with base.no_grad():
            lin.weight.copy_(base.tensor(np.eye(3) * 0.5 + 0.1, dtype=base.float64))
            lin.bias.fill_(0.2)
        lin.register_full_backward_hook(lambda m, gi, go: None)
        fn = _scale_function(base)
        h = lin(x)
        y = fn.apply(h, w)
        y = y.clone()
        y[:, 1].mul_(2.0)
        loss = (y.tanh() * x).sum()
        if base is dyntorch:
            _assert_seq_topological(loss.grad_fn)
        loss.backward()
        results.append((x.grad, w.grad, lin.weight.grad))
    for a, b in zip(*results):
        close(a, b)


def test_plain_backward_and_watched_backward_agree():
    # A watched backward counts dependencies; a plain one follows creation order. Same sums.
    def build():
        dyntorch.manual_seed(0)
        x = dyntorch.randn(3, 4, dtype=dyntorch.float64, requires_grad=True)
        w = dyntorch.randn(4, 4, dtype=dyntorch.float64, requires_grad=True)
        h = x @ w
        a, b = h.tanh(), h.sigmoid()
        loss = (a * b + h * h + (a @ w.T).exp().mean()).sum()
        return x, w, loss

    x, w, loss = build()
    loss.backward()
    plain = (x.grad.clone(), w.grad.clone())
    x, w, loss = build()
    seen = []
    engine.observers.append(seen.append)
    try:
        loss.backward()
    finally:
        engine.observers.remove(seen.append)
    assert len(seen) > 8
    np.testing.assert_array_equal(plain[0].numpy(), x.grad.numpy())
    np.testing.assert_array_equal(plain[1].numpy(), w.grad.numpy())


def test_chain_steps_in_exact_reverse_creation_order():
    x = dyntorch.ones(3, dtype=dyntorch.float64, requires_grad=True)
    nodes = []
    h = x
    for i in range(6):
        h = h.sin() if i % 2 else h * 1.5
        nodes.append(h.grad_fn)
    loss = h.sum()
    nodes.append(loss.grad_fn)
    seen = []
    obs = seen.append
    engine.observers.append(obs)
    try:
        loss.backward()
    finally:
        engine.observers.remove(obs)
    order = [s.node for s in seen]
    assert order[:-1] == nodes[::-1]
    assert order[-1].name() == "AccumulateGrad"
    assert [s.index for s in seen] == list(range(len(seen)))
    assert all(s.total == len(seen) for s in seen)


def test_step_generator_drives_backward_one_node_at_a_time():
    from dyntorch.autograd.functional_api import make_roots

    x = dyntorch.tensor([1.0, 2.0], dtype=dyntorch.float64, requires_grad=True)
    y = (x.exp() * 3).sum()
    roots, seeds = make_roots((y,), None, False)
    gen = engine.steps(roots, seeds)
    first = next(gen)
    assert first.node is y.grad_fn and x.grad is None
    assert first.grad_outputs[0].item() == 1.0
    rest = list(gen)
    assert [s.node.name() for s in rest] == ["MulBackward0", "ExpBackward0", "AccumulateGrad"]
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp([1.0, 2.0]))


def test_observer_removed_after_use():
    obs = []
    engine.observers.append(obs.append)
    engine.observers.remove(obs.append)
    x = dyntorch.ones(2, requires_grad=True)
    (x * 2).sum().backward()
    assert obs == []


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("case,pattern", [
    ("grad_output_shape", "Mismatch in shape"),
    ("input_no_grad", "does not require grad"),
    ("empty_inputs", ("non-empty inputs", "cannot be empty")),  # (dyntorch, torch) wording
    ("grad_assign_shape", (r"different size: \[3\] vs \[2\]", r"size '\[3\]' to a tensor of size")),
    ("non_leaf_requires_grad_false", "leaf variables"),
    ("numpy_requires_grad", "Can't call numpy\\(\\) on Tensor that requires grad"),
    ("detached_backward", "does not require grad"),
])
def test_bad_input_errors_match_torch(torch, case, pattern):
    for k, base in enumerate((dyntorch, torch)):
        x = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        y = x * 2
        with pytest.raises(RuntimeError, match=pattern if isinstance(pattern, str) else pattern[k]):
            if case == "grad_output_shape":
                y.backward(base.ones(3, dtype=base.float64))
            elif case == "input_no_grad":
                base.autograd.grad(y.sum(), base.ones(2, dtype=base.float64))
            elif case == "empty_inputs":
                base.autograd.grad(y.sum(), [])
            elif case == "grad_assign_shape":
                x.grad = base.ones(3, dtype=base.float64)
            elif case == "non_leaf_requires_grad_false":
                y.requires_grad_(False)
            elif case == "numpy_requires_grad":
                x.numpy()
            elif case == "detached_backward":
                y.detach().sum().backward()


def test_legacy_variable(torch):
    for base in (dyntorch, torch):
        x = base.ones(2, dtype=base.float64)
        v = base.autograd.Variable(x, requires_grad=True)
        assert isinstance(v, base.autograd.Variable) and isinstance(x, base.autograd.Variable)
        assert v.requires_grad and v.is_leaf and not x.requires_grad
        (v * 3).sum().backward()
        assert v.grad.tolist() == [3.0, 3.0]


def test_one_array_sent_to_two_inputs_is_never_added_into():
    # A derivative may hand the same array to two inputs; if the engine later added another
    # gradient into it in place for one input, the other would silently change too.
    from dyntorch._dispatch import op

    @op(name="_test_same_array_twice")
    def twice(xp, a, b):
        return a + b

    @twice.def_derivative
    def _(ns, g, _a, _b):
        s = g * 1.0
        return s, s

    x = dyntorch.ones(3, dtype=dyntorch.float64, requires_grad=True)
    a = x * 2.0
    b = x * 3.0
    c = a * 5.0  # reaches a after twice's node has run
    (twice(a, b) + c).sum().backward()
    # a gets 1 + 5, b gets 1: 2 * 6 + 3 * 1
    np.testing.assert_array_equal(x.grad.numpy(), np.full(3, 15.0))
