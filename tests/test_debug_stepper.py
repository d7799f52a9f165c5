"""BackwardStepper: same gradients as backward(), replay, breakpoints, freeing the graph."""
from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import dyntorch as dt
from dyntorch.debug import BackwardStepper
from dyntorch.nn.module import Module
from dyntorch.nn.parameter import Parameter

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


class Mlp(Module):
    def __init__(self, n, seed):
        super().__init__()
        r = np.random.default_rng(seed)
        self.w = Parameter(dt.tensor(r.standard_normal(n)))
        self.b = Parameter(dt.tensor(r.standard_normal(n)))

    def forward(self, x):
        h = (x * self.w + self.b).tanh()
        return h * h + x  # fan-out of h and of x: partial gradients are added


class Block(Module):
    def __init__(self, n, seed):
        super().__init__()
        self.mlp = Mlp(n, seed)
        self.g = Parameter(dt.tensor(np.full(n, 0.5)))

    def forward(self, x):
        return x + self.mlp(x) * self.g  # residual


class Net(Module):
    def __init__(self, n=6, depth=3):
        super().__init__()
        self.blocks = [Block(n, i) for i in range(depth)]
        for i, b in enumerate(self.blocks):
            setattr(self, f"b{i}", b)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return (x.exp() * 0.1).sum()


def _leaves(model, x):
    return [p for _, p in model.named_parameters()] + [x]


def _grads(ts):
    return [None if t.grad is None else t.grad.numpy().copy() for t in ts]


def _make(seed=0, grad=True):
    model = Net()
    x = dt.tensor(np.random.default_rng(seed + 10).standard_normal(6), requires_grad=grad)
    return model, x


def test_stepping_to_end_equals_backward_bitwise():
    model, x = _make()
    model(x).backward()
    ref = _grads(_leaves(model, x))
    for t in _leaves(model, x):
        t.grad = None
    s = BackwardStepper(model(x))
    n = 0
    while s.step() is not None:
        n += 1
    assert s.done and n == s.total and s.pending == []
    got = _grads(_leaves(model, x))
    for a, b in zip(ref, got):
        assert a.dtype == b.dtype and np.array_equal(a, b)  # bitwise on CPU
    s.close()


def test_existing_grads_accumulate_like_backward():
    model, x = _make(1)
    model(x).backward()
    model(x).backward()
    ref = _grads(_leaves(model, x))
    for t in _leaves(model, x):
        t.grad = None
    model(x).backward()
    with BackwardStepper(model(x)) as s:
        assert s.run() is None
    for a, b in zip(ref, _grads(_leaves(model, x))):
        assert np.array_equal(a, b)
    # the leaf gradients stay writable for optimizers
    for t in _leaves(model, x):
        t.grad.mul_(0.0) if hasattr(t.grad, "mul_") else None


def test_pending_is_the_run_order():
    model, x = _make(2)
    s = BackwardStepper(model(x))
    planned = list(s.pending)
    assert len(planned) == s.total
    seen = []
    while (st := s.step()) is not None:
        seen.append(st.node)
        assert s.current is st
        assert s.pending == planned[len(seen):]
    assert seen == planned
    s.close()


def test_matches_torch_gradients(torch):
    model, x = _make(3)
    s = BackwardStepper(model(x))
    s.run()
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    ps = {k: torch.tensor(p.detach().numpy(), requires_grad=True) for k, p in model.named_parameters()}
    h = tx
    for i in range(3):
        w, b, g = ps[f"b{i}.mlp.w"], ps[f"b{i}.mlp.b"], ps[f"b{i}.g"]
        t = torch.tanh(h * w + b)
        h = h + (t * t + h) * g
    (h.exp() * 0.1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    for k, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), ps[k].grad.numpy(), rtol=1e-9, atol=1e-12)
    s.close()


def test_step_grads_are_what_flowed():
    # d/dx of sum(exp(x) * 3): ExpBackward receives 3s and sends 3*exp(x)
    xv = np.random.default_rng(0).standard_normal(5)
    x = dt.tensor(xv, requires_grad=True)
    s = BackwardStepper((x.exp() * 3.0).sum())
    names = []
    while (st := s.step()) is not None:
        names.append(st.node.name())
        if st.node.name() == "ExpBackward0":
            np.testing.assert_allclose(st.grad_outputs[0].numpy(), np.full(5, 3.0))
            np.testing.assert_allclose(st.grad_inputs[0].numpy(), 3 * np.exp(xv))
            assert st.summary_out[0]["norm"] == pytest.approx(np.linalg.norm(3 * np.exp(xv)))
            assert len(st.grad_inputs) == len(st.node.next_functions)
    assert names == ["SumBackward0", "MulBackward0", "ExpBackward0", "AccumulateGrad"]
    s.close()


def test_history_not_changed_by_later_accumulation():
    # x feeds two ops: the second partial gradient is added after the first step ran
    xv = np.arange(1.0, 5.0)
    x = dt.tensor(xv, requires_grad=True)
    y = x.exp()
    s = BackwardStepper((y * 2.0 + y * 3.0).sum())
    steps = list(s)
    first = [st for st in steps if st.node.name() == "MulBackward0"]
    outs = sorted(float(st.grad_inputs[0].numpy()[0]) for st in first)
    assert outs == [2.0, 3.0]
    exp_step = [st for st in steps if st.node.name() == "ExpBackward0"][0]
    np.testing.assert_allclose(exp_step.grad_outputs[0].numpy(), np.full(4, 5.0))
    np.testing.assert_allclose(x.grad.numpy(), 5 * np.exp(xv))
    s.close()


def test_back_then_step_replays_same_gradients():
    model, x = _make(4)
    s = BackwardStepper(model(x))
    s.step(7)
    before = [g.numpy().copy() if g is not None else None for g in s.current.grad_inputs]
    node7 = s.current.node
    s.step(5)
    st = s.back(5)
    assert st.node is node7 and len(s.history) == 7
    after = [g.numpy() if g is not None else None for g in st.grad_inputs]
    for a, b in zip(before, after):
        assert (a is None and b is None) or np.array_equal(a, b)
    s.step(3)
    s.back(2)
    # run to the end after going back: gradients are still exactly backward()'s
    s.run()
    got = _grads(_leaves(model, x))
    for t in _leaves(model, x):
        t.grad = None
    model(x).backward()
    for a, b in zip(got, _grads(_leaves(model, x))):
        assert np.array_equal(a, b)
    s.close()


def test_back_restores_leaf_grads_and_reset():
    model, x = _make(5)
    s = BackwardStepper(model(x))
    s.run()
    assert x.grad is not None
    s.back(s.total)
    assert x.grad is None and s.current is None and not s.done
    s.step(3)
    s.reset()
    assert s.history == [] and all(p.grad is None for p in model.parameters())
    s.close()


def test_break_on_op_and_scope():
    model, x = _make(6)
    s = BackwardStepper(model(x))
    s.break_on(op="tanh")
    st = s.run()
    assert st.node.name() == "TanhBackward0" and st.hit is not None
    assert st.node.scope == "b2.mlp"  # backward meets the last block first
    st = s.run()
    assert st.node.name() == "TanhBackward0" and st.node.scope == "b1.mlp"
    s.clear_breakpoints()
    s.break_on(scope="b0")
    st = s.run()
    assert st.node.scope.startswith("b0")
    s.clear_breakpoints()
    s.break_on(scope="b*.mlp", op="MulBackward0")
    s.reset()
    hits = []
    while (st := s.run()) is not None:
        hits.append((st.node.name(), st.node.scope))
    assert hits and all(n == "MulBackward0" and sc.endswith(".mlp") for n, sc in hits)
    assert len({sc for _, sc in hits}) == 3
    s.close()


def test_break_on_nan_and_norm():
    x = dt.tensor(np.array([1.0, 4.0, 0.0]), requires_grad=True)
    w = dt.tensor(np.array([1.0, 1.0, 1.0]), requires_grad=True)
    loss = ((x * w).sqrt() * 2.0).sum()  # d sqrt at 0 -> inf, times 0-free => inf, no nan
    s = BackwardStepper(loss)
    s.break_on(inf=True)
    st = s.run()
    assert st.node.name() == "SqrtBackward0"
    s.close()

    x = dt.tensor(np.array([1.0, -4.0]), requires_grad=True)
    loss = (x.log() * 2.0).sum()
    s = BackwardStepper(loss)
    s.break_on(nan=True)
    assert s.run() is None  # log's gradient 1/x is finite even where log(x) is nan
    s.close()

    x = dt.tensor(np.array([0.0, 1.0]), requires_grad=True)
    loss = ((x * 0.0).log() * 1.0).sum()  # log(0) = -inf, d log = 1/0 = inf, times 0 = nan
    s = BackwardStepper(loss)
    s.break_on(nan=True)
    st = s.run()
    assert st.node.name() == "MulBackward0" and np.isnan(st.grad_inputs[0].numpy()).any()
    s.close()

    x = dt.tensor(np.ones(4), requires_grad=True)
    loss = ((x * 10.0).exp() * 1.0).sum()
    s = BackwardStepper(loss)
    s.break_on(norm_above=1000.0)
    st = s.run()
    assert st.node.name() == "ExpBackward0"
    assert np.linalg.norm(st.grad_inputs[0].numpy()) > 1000.0
    s.close()


def test_break_on_when_and_step_out():
    model, x = _make(7)
    s = BackwardStepper(model(x))
    s.break_on(when=lambda st: st.node.scope == "b1.mlp")
    st = s.run()
    assert st.node.scope == "b1.mlp"
    s.clear_breakpoints()
    st = s.step_out()
    inside = lambda sc: sc == "b1.mlp" or sc.startswith("b1.mlp.")  # noqa: E731
    assert not any(inside(n.scope) for n in s.pending)
    assert not inside(st.node.scope)  # stopped at the first node outside the scope
    assert inside(s.history[-2].node.scope)
    s.close()


def test_step_out_leaves_the_scope_like_a_debugger():
    import dyntorch.nn as nn

    dt.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 1))
    loss = model(dt.randn(16, 4)).pow(2).mean()
    s = BackwardStepper(loss)
    scopes = [n.scope for n in s.order]
    st = s.step_out()  # from the top-level loss ops: stops at the first node of a module
    assert st.node.scope == "4" and all(sc == "" for sc in scopes[:s.position - 1])
    while True:  # from each module: to the first node of the next one, never stuck
        k = s.position
        st = s.step_out()
        if st is None:
            break
        assert s.position > k
        assert st.node.scope != scopes[k - 1]
        assert all(sc == scopes[k - 1] or sc.startswith(scopes[k - 1] + ".")
                   for sc in scopes[k - 1:s.position - 1])
    assert s.done
    s.close()


def test_inputs_restricts_like_backward():
    model, x = _make(8)
    p = model.blocks[1].mlp.w
    model(x).backward(inputs=[p])
    ref = p.grad.numpy().copy()
    p.grad = None
    s = BackwardStepper(model(x), inputs=[p])
    s.run()
    assert np.array_equal(p.grad.numpy(), ref)
    assert x.grad is None and model.blocks[0].g.grad is None
    s.close()


def test_nonscalar_output_with_gradient():
    x = dt.tensor(np.arange(3.0), requires_grad=True)
    y = x.exp()
    gv = np.array([1.0, -2.0, 0.5])
    s = BackwardStepper(y, dt.tensor(gv))
    s.run()
    np.testing.assert_allclose(x.grad.numpy(), gv * np.exp(np.arange(3.0)))
    s.close()
    with pytest.raises(RuntimeError, match="implicitly created only for scalar"):
        BackwardStepper(dt.tensor(np.arange(3.0), requires_grad=True).exp())


def test_no_leaked_graph_after_close():
    model, x = _make(9)
    out = model(x)
    root = weakref.ref(out.grad_fn)
    inner = weakref.ref(out.grad_fn.next_functions[0][0])
    s = BackwardStepper(out)
    s.step(4)
    del out
    gc.collect()
    assert root() is not None  # the open stepper keeps the graph for replay
    s.close()
    with pytest.raises(RuntimeError, match="closed"):
        s.step()
    gc.collect()
    assert root() is None and inner() is None


def test_dropping_stepper_frees_graph():
    model, x = _make(10)
    out = model(x)
    root = weakref.ref(out.grad_fn)
    s = BackwardStepper(out)
    s.run()
    del out, s
    gc.collect()
    assert root() is None


def test_closing_frees_saved_values():
    x = dt.tensor(np.arange(3.0), requires_grad=True)
    y = (x.exp() * 2.0).sum()
    s = BackwardStepper(y)
    s.step()
    s.close()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_dropping_stepper_with_breakpoints_frees_graph_without_gc():
    x = dt.tensor(np.arange(3.0), requires_grad=True)
    out = (x.exp() * 2.0).sum()
    root = weakref.ref(out.grad_fn)
    s = BackwardStepper(out)
    s.break_on(op="exp")
    s.run()
    del out, s
    assert root() is None  # no reference cycle keeps the stepper (and the graph) alive


def test_step_of_square_via_mul_shows_each_partial():
    x = dt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    s = BackwardStepper((x * x).sum())
    st = s.step(2)
    assert st.node.name() == "MulBackward0"
    np.testing.assert_array_equal(st.grad_inputs[0].numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(st.grad_inputs[1].numpy(), [1.0, 2.0])
    s.close()


def test_inputs_nonleaf_gets_grad_like_backward():
    x = dt.tensor(np.arange(1.0, 4.0), requires_grad=True)
    h = x.exp()
    loss = (h * h).sum()
    s = BackwardStepper(loss, inputs=[h])
    s.run()
    np.testing.assert_allclose(h.grad.numpy(), 2 * np.exp(np.arange(1.0, 4.0)))
    assert x.grad is None
    s.back(1)
    assert h.grad is None  # going back undoes what finishing added
    s.close()


def test_transformer_sized_graph_steps_fast():
    """Thousands of nodes (12 layers of multi-head attention + MLP) at > 1,000 nodes/s."""
    import time

    rng = np.random.default_rng(0)
    d, heads, seq = 16, 8, 4
    dh = d // heads
    W = lambda *s: dt.tensor((rng.standard_normal(s) / np.sqrt(s[0])).astype(np.float32),
                             requires_grad=True)
    x = dt.tensor(rng.standard_normal((seq, d)).astype(np.float32))
    for _ in range(12):
        wq, wk, wv, wo, w1, w2 = W(d, d), W(d, d), W(d, d), W(d, d), W(d, 2 * d), W(2 * d, d)
        q, k, v = dt.matmul(x, wq), dt.matmul(x, wk), dt.matmul(x, wv)
        heads_out = []
        for i in range(heads):
            sl = slice(i * dh, (i + 1) * dh)
            att = (dt.matmul(q[:, sl], k[:, sl].transpose(0, 1)) * 0.5).softmax(-1)
            heads_out.append(dt.matmul(att, v[:, sl]))
        x = x + dt.matmul(dt.cat(heads_out, -1), wo)
        mu = x.mean(-1, keepdim=True)
        xc = x - mu
        x = xc * ((xc * xc).mean(-1, keepdim=True) + 1e-5).rsqrt()
        x = x + dt.matmul(dt.matmul(x, w1).tanh(), w2)
    loss = (x * x).mean()
    leaves = [n.variable for n in BackwardStepper(loss, retain_graph=True).pending
              if n.name() == "AccumulateGrad"]
    loss.backward(retain_graph=True)
    ref = [t.grad.numpy().copy() for t in leaves]
    for t in leaves:
        t.grad = None
    s = BackwardStepper(loss)
    n = s.total
    assert n > 1000
    t0 = time.perf_counter()
    while s.step() is not None:
        pass
    rate = n / (time.perf_counter() - t0)
    s.close()
    assert rate > 1000, f"{rate:.0f} nodes/s"
    for t, r in zip(leaves, ref):  # bitwise what backward() left, through every op kind here
        assert np.array_equal(t.grad.numpy(), r)


def test_stepper_displays_as_text_or_widget():
    x = dt.tensor(np.arange(3.0), requires_grad=True)
    s = BackwardStepper((x.exp() * 2.0).sum())
    b = s._repr_mimebundle_()
    data = b[0] if isinstance(b, tuple) else b
    assert data["text/plain"] == repr(s) and "ready to run 4 nodes" in repr(s)
    s.step()
    assert "SumBackward0" in repr(s)
    s.close()
    assert s._repr_mimebundle_() == {"text/plain": "<BackwardStepper closed>"}


def test_error_at_a_node_keeps_the_steps_before_it():
    from dyntorch.debug import NonFiniteError, detect_nonfinite

    x = dt.tensor(np.array([0.0, 4.0]), requires_grad=True)
    loss = (x.sqrt() * 2.0).sum()
    s = BackwardStepper(loss)
    with detect_nonfinite(forward=False):
        with pytest.raises(NonFiniteError):
            s.run()
        assert [st.node.name() for st in s.history] == ["SumBackward0", "MulBackward0"]
        with pytest.raises(NonFiniteError):  # same node, same error, after a replay
            s.step()
    assert len(s.history) == 2 and not s.done
    s.run()  # outside the check it runs through
    assert s.done and np.isinf(x.grad.numpy()[0]) and x.grad.numpy()[1] == 0.5
    s.close()


def test_order_and_grads_with_hooks_functions_and_multi_output_ops():
    from dyntorch.autograd import Function

    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 3 * x * x * g

    class M(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter(dt.tensor(np.linspace(-1.0, 1.0, 12).reshape(3, 4)))

        def forward(self, x):
            h = Cube.apply(x * self.w)
            vals, _ = h.max(dim=1)
            return vals.sum() + h.mean()

    def build():
        m = M()
        calls = []
        m.register_full_backward_hook(lambda mod, gi, go: calls.append(1))
        x = dt.tensor(np.arange(12.0).reshape(3, 4) / 7, requires_grad=True)
        return m, x, calls

    m, x, calls = build()
    m(x).backward()
    ref = [x.grad.numpy().copy(), m.w.grad.numpy().copy()]
    assert calls == [1]
    m, x, calls = build()
    s = BackwardStepper(m(x))
    planned = list(s.pending)
    ran = [st.node for st in s]
    assert ran == planned and calls == [1]
    assert {n.name() for n in ran} >= {"BackwardHookFunctionBackward", "CubeBackward"}
    assert np.array_equal(x.grad.numpy(), ref[0]) and np.array_equal(m.w.grad.numpy(), ref[1])
    s.close()


def test_stepper_on_each_device(device):
    xv = np.random.default_rng(3).standard_normal((4, 5))
    x = dt.tensor(xv, device=device, requires_grad=True)
    w = dt.tensor(np.linspace(0.1, 1.0, 5), device=device, requires_grad=True)

    def loss():
        h = (x * w).tanh()
        return (h * h + h).sum()

    loss().backward()
    ref = [x.grad.cpu().numpy().copy(), w.grad.cpu().numpy().copy()]
    x.grad = w.grad = None
    s = BackwardStepper(loss())
    st = s.step(3)
    assert st.summary_out[0]["device"] == str(x.device)
    s.break_on(nan=True)
    assert s.run() is None and s.done
    np.testing.assert_array_equal(x.grad.cpu().numpy(), ref[0])
    np.testing.assert_array_equal(w.grad.cpu().numpy(), ref[1])
    s.back(2)
    s.run()
    np.testing.assert_array_equal(w.grad.cpu().numpy(), ref[1])
    s.close()


def test_break_on_empty_scope_means_outside_modules():
    model, x = _make(11)
    s = BackwardStepper(model(x))
    s.break_on(scope="", op=["exp", "SumBackward0"])
    hits = []
    while (st := s.run()) is not None:
        hits.append(st.node.name())
    assert hits == ["SumBackward0", "ExpBackward0"]
    bp = s.break_on(scope="b1")
    s.reset()
    assert s.run().node.name() == "SumBackward0"
    bp.remove()
    assert len(s.breakpoints) == 1
    s.close()


# ----------------------------------------------------------------------------- floors
def _imports_and_attrs(path):
    import ast

    tree = ast.parse(path.read_text())
    mods, attrs = set(), set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom):
            mods.add(("." * n.level) + (n.module or ""))
        elif isinstance(n, ast.Import):
            mods.update(a.name for a in n.names)
        elif isinstance(n, ast.Attribute):
            attrs.add(n.attr)
    return mods, attrs


def test_debug_never_imports_viz():
    from pathlib import Path

    import dyntorch.debug as dbg

    for f in Path(dbg.__file__).parent.glob("*.py"):
        mods, _ = _imports_and_attrs(f)
        assert not [m for m in mods if "viz" in m], (f.name, mods)


def test_viz_reads_only_the_steppers_public_api():
    from pathlib import Path

    import dyntorch.debug.stepper as S
    import dyntorch.viz as viz

    private = {k for k in vars(BackwardStepper(_chain_loss())) if k.startswith("_")}
    private |= {k for k in vars(S.BackwardStepper) if k.startswith("_") and not k.startswith("__")
                and not k.startswith("_repr_")}  # IPython's display protocol is public
    assert {"_order", "_roots"} <= private
    for f in Path(viz.__file__).parent.glob("*.py"):
        _, attrs = _imports_and_attrs(f)
        used = attrs & (private | {"_doc_cache", "_dt_widget"})
        assert not used, (f.name, used)


def _chain_loss():
    x = dt.tensor(np.arange(3.0), requires_grad=True)
    return (x.exp() * 2.0).sum()


def test_read_api_describes_the_run():
    x = dt.tensor(np.arange(3.0), requires_grad=True)
    loss = (x.exp() * 2.0).sum()
    s = BackwardStepper(loss)
    assert s.roots == [loss.grad_fn] and s.position == 0
    assert [n.seq for n in s.nodes] == sorted(n.seq for n in s.order)
    v0 = s.version
    s.step()
    assert s.position == 1 and s.version != v0
    assert s.state(loss.grad_fn) == "current" and s.state(s.order[1]) == "ready"
    v1 = s.version
    s.back()
    assert s.position == 0 and s.version != v1
    assert s.state(object()) is None
