"""autograd.Function: custom forward/backward pairs, compared with torch 2.13 in float64."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch
from dyntorch.autograd import Function, once_differentiable


def pair(torch, arr, device="cpu", rg=True):
    d = dyntorch.tensor(arr, dtype=dyntorch.float64, device=device, requires_grad=rg)
    t = torch.tensor(arr, dtype=torch.float64, requires_grad=rg)
    return d, t


def close(a, b, tol=1e-10):
    an = a.detach().cpu().numpy() if hasattr(a, "cpu") else np.asarray(a)
    np.testing.assert_allclose(an, b.detach().numpy(), rtol=tol, atol=tol)


def make_exp(base):
    class MyExp(base.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, g):
            (y,) = ctx.saved_tensors
            return g * y

    return MyExp


def make_relu(base):
    class MyReLU(base.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.clamp(min=0)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x > 0).to(g.dtype)

    return MyReLU


def make_scale_split(base):
    """Two tensor outputs, a non-tensor argument and a non-differentiable integer output."""

    class ScaleSplit(base.autograd.Function):
        @staticmethod
        def forward(ctx, x, k, w):
            ctx.k = k
            ctx.save_for_backward(x, w)
            idx = (x > 0).long()
            ctx.mark_non_differentiable(idx)
            return x * w * k, (x + w).sin(), idx

        @staticmethod
        def backward(ctx, ga, gb, gidx):
            x, w = ctx.saved_tensors
            c = (x + w).cos()
            gx = ga * w * ctx.k + gb * c
            gw = ga * x * ctx.k + gb * c
            return gx, None, gw

    return ScaleSplit


@pytest.mark.parametrize("maker", [make_exp, make_relu])
def test_custom_unary_matches_torch(torch, rng, device, maker):
    arr = rng.standard_normal((3, 4))
    d, t = pair(torch, arr, device)
    yd = maker(dyntorch).apply(d)
    yt = maker(torch).apply(t)
    close(yd, yt)
    gd = rng.standard_normal((3, 4))
    yd.backward(dyntorch.tensor(gd, device=device))
    yt.backward(torch.tensor(gd))
    close(d.grad, t.grad)
    assert yd.grad_fn.name() == type(yt.grad_fn).__name__


def test_node_is_a_graph_node(torch):
    x = dyntorch.randn(3, dtype=dyntorch.float64, requires_grad=True)
    a = x * 2
    y = make_exp(dyntorch).apply(a)
    node = y.grad_fn
    assert isinstance(node, dyntorch.autograd.graph.Node)
    assert node.name() == "MyExpBackward"
    assert node.next_functions == ((a.grad_fn, 0),)
    assert node.seq > a.grad_fn.seq
    assert node.source is not None and node.source[0] == __file__
    assert "apply" in node.source_text
    assert node.num_outputs == 1
    (shape, dt, dev), = node.output_meta()
    assert tuple(shape) == (3,) and dt == np.float64 and str(dev) == "cpu"
    assert node.input_tensors() == ()  # it saved its output, not an input
    r = make_relu(dyntorch).apply(a)
    assert r.grad_fn.input_tensors()[0] is a
    s = y.sum()
    assert s.grad_fn.next_functions[0][0] is node


def test_multiple_outputs_non_tensor_args_non_differentiable(torch, rng, device):
    xa, wa = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    xd, xt = pair(torch, xa, device)
    wd, wt = pair(torch, wa, device)
    ad, bd, id_ = make_scale_split(dyntorch).apply(xd, 1.5, wd)
    at, bt, it = make_scale_split(torch).apply(xt, 1.5, wt)
    close(ad, at)
    close(bd, bt)
    assert not id_.requires_grad and not it.requires_grad
    assert id_.grad_fn is None
    assert ad.grad_fn is bd.grad_fn
    assert ad.grad_fn.num_outputs == 3
    # torch only makes edges for tensor arguments
    assert len(ad.grad_fn.next_functions) == len(at.grad_fn.next_functions) == 2
    # only output 1 used: output 0 gets a materialized zero gradient
    (bd * bd).sum().backward()
    (bt * bt).sum().backward()
    close(xd.grad, xt.grad)
    close(wd.grad, wt.grad)


def test_needs_input_grad_and_ctx_attributes(torch):
    seen = {}

    def make(base):
        class F(base.autograd.Function):
            @staticmethod
            def forward(ctx, a, b, n):
                ctx.note = "kept"
                return a * b * n

            @staticmethod
            def backward(ctx, g):
                seen[base.__name__] = (tuple(ctx.needs_input_grad), ctx.note)
                return g, None, None

        return F

    ad = dyntorch.ones(2, dtype=dyntorch.float64, requires_grad=True)
    bd = dyntorch.ones(2, dtype=dyntorch.float64)
    make(dyntorch).apply(ad, bd, 3).sum().backward()
    at = torch.ones(2, dtype=torch.float64, requires_grad=True)
    bt = torch.ones(2, dtype=torch.float64)
    make(torch).apply(at, bt, 3).sum().backward()
    assert seen["dyntorch"] == seen["torch"] == ((True, False, False), "kept")


def test_set_materialize_grads_false_passes_none():
    got = []

    class Two(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, g1, g2):
            got.append((g1 is None, g2 is None))
            return g1 * 2 if g1 is not None else g2 * 3

    x = dyntorch.ones(2, dtype=dyntorch.float64, requires_grad=True)
    a, b = Two.apply(x)
    b.sum().backward()
    assert got == [(True, False)]
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_forward_runs_without_grad_and_no_record_without_requires_grad():
    inside = []

    class Probe(Function):
        @staticmethod
        def forward(ctx, x):
            inside.append(dyntorch.is_grad_enabled())
            y = x * 2
            inside.append(y.requires_grad)
            return y

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = dyntorch.ones(2, requires_grad=True)
    y = Probe.apply(x)
    assert inside == [False, False] and y.requires_grad
    z = Probe.apply(dyntorch.ones(2))
    assert not z.requires_grad and z.grad_fn is None
    with dyntorch.no_grad():
        w = Probe.apply(x)
    assert not w.requires_grad


def test_double_backward_through_function_with_create_graph(torch, rng, device):
    arr = rng.standard_normal(5) * 0.5
    d, t = pair(torch, arr, device)
    outs = []
    for base, x in ((dyntorch, d), (torch, t)):
        y = make_exp(base).apply(x * x)
        (g,) = base.autograd.grad(y.sum(), x, create_graph=True)
        (gg,) = base.autograd.grad(g.sum(), x)
        outs.append((g, gg))
    close(outs[0][0], outs[1][0])
    close(outs[0][1], outs[1][1])


def test_once_differentiable_errors_on_double_backward(torch):
    def make(base, deco):
        class Sq(base.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            @deco
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 2 * x * g

        return Sq

    from torch.autograd.function import once_differentiable as t_once

    for base, deco in ((dyntorch, once_differentiable), (torch, t_once)):
        x = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        # the grad reaching Sq's backward must itself require grad (it depends on x)
        y = (make(base, deco).apply(x) ** 2).sum()
        (g,) = base.autograd.grad(y, x, create_graph=True)
        np.testing.assert_allclose(g.detach().numpy(), [4.0, 32.0])
        with pytest.raises(RuntimeError, match="once_differentiable"):
            g.sum().backward()
    # first-order use is unaffected
    x = dyntorch.tensor([3.0], dtype=dyntorch.float64, requires_grad=True)
    make(dyntorch, once_differentiable).apply(x).sum().backward()
    assert x.grad.item() == 6.0


def test_saved_tensor_modified_in_place_raises(torch):
    for base in (dyntorch, torch):
        x = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        a = x * 1
        y = make_relu(base).apply(a)
        with base.no_grad():
            a.mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_saved_tensors_freed_after_backward(torch):
    for base in (dyntorch, torch):
        x = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        y = make_exp(base).apply(x)
        y.sum().backward(retain_graph=True)
        y.sum().backward()
        with pytest.raises(RuntimeError, match="backward through the graph a second time"):
            y.sum().backward()


def test_mark_dirty_in_place_function(torch):
    def make(base):
        class Double_(base.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                x.mul_(2)
                ctx.mark_dirty(x)
                return x

            @staticmethod
            def backward(ctx, g):
                return g * 2

        return Double_

    res = []
    for base in (dyntorch, torch):
        x = base.tensor([1.0, -2.0], dtype=base.float64, requires_grad=True)
        a = x * 3
        b = make(base).apply(a)
        assert b is a and a.grad_fn.name() == "Double_Backward"
        (b * b).sum().backward()
        res.append(x.grad)
        leaf = base.tensor([1.0], dtype=base.float64, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf"):
            make(base).apply(leaf)
    close(res[0], res[1])


def test_wrong_number_of_gradients_and_shape_errors():
    class TooFew(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, g):
            return g

    class BadShape(Function):
        @staticmethod
        def forward(ctx, a):
            return a.sum()

        @staticmethod
        def backward(ctx, g):
            return dyntorch.ones(5, dtype=g.dtype)

    class Broadcast(Function):
        @staticmethod
        def forward(ctx, a):
            return a.sum()

        @staticmethod
        def backward(ctx, g):
            return g * dyntorch.ones(4, 2, 3, dtype=g.dtype)

    a = dyntorch.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        TooFew.apply(a, a).sum().backward()
    with pytest.raises(RuntimeError, match="invalid gradient at index 0"):
        BadShape.apply(a).backward()
    Broadcast.apply(a).backward()  # (4, 2, 3) sums down to (2, 3), as torch does
    np.testing.assert_allclose(a.grad.numpy(), np.full((2, 3), 4.0))
    with pytest.raises(TypeError, match="save_for_backward"):
        class Bad(Function):
            @staticmethod
            def forward(ctx, a):
                ctx.save_for_backward(a, 3)
                return a

        Bad.apply(a)


def test_setup_context_style(torch, rng):
    def make(base):
        class Mul(base.autograd.Function):
            @staticmethod
            def forward(a, b):
                return a * b

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.save_for_backward(*inputs)

            @staticmethod
            def backward(ctx, g):
                a, b = ctx.saved_tensors
                return g * b, g * a

        return Mul

    aa, ba = rng.standard_normal(4), rng.standard_normal(4)
    ad, at = pair(torch, aa)
    bd, bt = pair(torch, ba)
    make(dyntorch).apply(ad, bd).sum().backward()
    make(torch).apply(at, bt).sum().backward()
    close(ad.grad, at.grad)
    close(bd.grad, bt.grad)


def test_legacy_call_is_rejected():
    with pytest.raises(RuntimeError, match="static forward"):
        make_exp(dyntorch)()(dyntorch.ones(1))


def test_saving_an_output_makes_no_reference_cycle():
    import gc
    import weakref

    gc.disable()
    try:
        x = dyntorch.ones(3, dtype=dyntorch.float64, requires_grad=True)
        y = make_exp(dyntorch).apply(x)
        ref = weakref.ref(y.grad_fn)
        (g,) = dyntorch.autograd.grad(y.sum(), x, retain_graph=True)
        np.testing.assert_allclose(g.numpy(), np.e)
        del y, g
        assert ref() is None  # freed by reference counting alone
    finally:
        gc.enable()


def test_saved_output_changed_in_place_raises(torch):
    for base in (dyntorch, torch):
        x = base.tensor([1.0, 2.0], dtype=base.float64, requires_grad=True)
        y = make_exp(base).apply(x)
        with base.no_grad():
            y.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()


def test_readers_see_a_function_node_like_any_other():
    from dyntorch.debug import BackwardStepper
    from dyntorch.viz.graph import graph_json

    x = dyntorch.ones(2, 3, requires_grad=True)
    a = x * 2
    y = make_relu(dyntorch).apply(a)  # the reader must point here
    loss = y.sum()
    doc = graph_json(loss)
    (entry,) = [n for n in doc["nodes"] if n["op"] == "MyReLUBackward"]
    assert entry["outputs"][0]["shape"] == [2, 3]
    assert entry["source"]["line"] > 0 and "make_relu" in entry["source"]["text"]
    st = BackwardStepper(loss)
    assert [n.name() for n in st.order] == ["SumBackward0", "MyReLUBackward", "MulBackward0",
                                            "AccumulateGrad"]
    while not st.done:
        st.step()
    np.testing.assert_allclose(x.grad.numpy(), np.full((2, 3), 2.0))


def test_function_node_records_module_scope(monkeypatch):
    from dyntorch import _dispatch as D

    x = dyntorch.ones(2, requires_grad=True)
    monkeypatch.setattr(D, "scope", "block.0.act")
    y = make_relu(dyntorch).apply(x)
    monkeypatch.setattr(D, "scope", "")
    assert y.grad_fn.scope == "block.0.act"


def test_vjp_instead_of_backward_and_missing_backward():
    class Twice(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def vjp(ctx, g):
            return g * 2

    class NoBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    x = dyntorch.ones(2, requires_grad=True)
    Twice.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    with pytest.raises(NotImplementedError, match="backward or vjp"):
        NoBackward.apply(x).sum().backward()
