"""debug.Recorder's forward statistics and keys, checked against NumPy on the same arrays in
the cases that are easy to get wrong: multi-output ops
and Functions, shared outputs, custom Functions, retained graphs, in-place ops, dtype
promotion, repeated modules, branches, ``every``, breaks and the Trainer callback.

The expected values are computed by hand here (float64, from the parameters' arrays and the
inputs); the recorder's are read back with ``rec.history(key, stat)``."""
from __future__ import annotations

import math

import numpy as np
import pytest

import dyntorch as dt
from dyntorch.debug import BackwardStepper, BreakpointHit, Recorder

RTOL = 1e-10


def _want(a) -> dict:
    """The forward statistics of array ``a`` as the recorder defines them: mean, std
    (population), min and max over the finite entries, zero fraction over every entry,
    NaN and Inf counts."""
    a = np.asarray(a, dtype=np.float64).ravel()
    fin = a[np.isfinite(a)]
    return {"out_mean": fin.mean(), "out_std": fin.std(), "out_min": fin.min(),
            "out_max": fin.max(), "out_zeros": np.count_nonzero(a == 0) / a.size,
            "out_nan": float(np.count_nonzero(np.isnan(a))),
            "out_inf": float(np.count_nonzero(np.isinf(a)))}


def _got(rec, key, i=-1) -> dict:
    return {s: rec.history(key, s)[i] for s in
            ("out_mean", "out_std", "out_min", "out_max", "out_zeros", "out_nan", "out_inf")}


def _check(rec, key, arr, i=-1, rtol=RTOL):
    """The recorded forward statistics of ``key`` at kept step ``i`` equal those of ``arr``."""
    got, want = _got(rec, key, i), _want(arr)
    for s, w in want.items():
        np.testing.assert_allclose(got[s], w, rtol=rtol, atol=1e-12 * (1 + abs(w)),
                                   err_msg=f"{key} {s} at kept step {i}")


def _right_or_none(rec, key, arr, i=-1):
    """Either no forward statistics at all (NaN) or the right ones: never wrong numbers."""
    if np.isnan(rec.history(key, "out_mean")[i]):
        assert np.isnan(rec.history(key, "out_max")[i])
        return
    _check(rec, key, arr, i)


def _lin(i, o, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    m = dt.nn.Linear(i, o)
    m = m.double() if dtype == np.float64 else m
    with dt.no_grad():
        m.weight.copy_(dt.tensor(rng.standard_normal((o, i)).astype(dtype)))
        m.bias.copy_(dt.tensor(rng.standard_normal(o).astype(dtype)))
    return m


def _affine(x, lin):
    """``lin(x)`` by hand (float64 unless the module is float32: then in float32)."""
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    return x.astype(w.dtype) @ w.T + b


def _x(n=6, i=3, seed=1):
    return np.random.default_rng(seed).standard_normal((n, i))


class _Seq(dt.nn.Module):
    """Runs ``body(self, x)`` with the linear layers ``l1``, ``l2`` as children."""

    def __init__(self, body, i=3, h=4, o=2):
        super().__init__()
        self.l1, self.l2 = _lin(i, h, 10), _lin(h, o, 11)
        self.body = body

    def forward(self, x):
        return self.body(self, x)


def _run(model, x, loss=lambda out: (out * out).sum(), **kw):
    with Recorder(model, **kw) as rec:
        loss(model(dt.tensor(x))).backward()
    assert rec.error is None, rec.error
    assert rec.steps == [0]
    return rec


# ----------------------------------------------------------------------- 1. multi-output ops
@pytest.mark.parametrize("kind", ["max", "topk", "sort"])
def test_multi_output_op_records_its_values_output(kind):
    def body(m, x):
        y = m.l1(x)
        if kind == "max":
            v, _ = dt.max(y, dim=1)
        elif kind == "topk":
            v, _ = y.topk(2, dim=1)
        else:
            v, _ = y.sort(dim=1)
        return v

    x = _x()
    m = _Seq(body)
    rec = _run(m, x)
    y = _affine(x, m.l1)
    v = {"max": y.max(1), "topk": -np.sort(-y, axis=1)[:, :2], "sort": np.sort(y, axis=1)}[kind]
    op = {"max": "MaxBackward0", "topk": "TopkBackward0", "sort": "SortBackward0"}[kind]
    assert f"/{op}#0" in rec.keys()
    _check(rec, "l1/LinearBackward0#0", y)
    _check(rec, f"/{op}#0", v)
    _check(rec, "/MulBackward0#0", v * v)
    _check(rec, "/SumBackward0#0", (v * v).sum())


def test_indices_only_of_a_multi_output_op_leave_it_out_of_the_graph():
    def body(m, x):
        y = m.l1(x)
        _, i = y.max(dim=1)
        return y.gather(1, i[:, None])

    x = _x()
    m = _Seq(body)
    rec = _run(m, x)
    y = _affine(x, m.l1)
    assert not any("Max" in k for k in rec.keys())
    _check(rec, "l1/LinearBackward0#0", y)
    _check(rec, "/GatherBackward0#0", y.max(1, keepdims=True))


class _Two(dt.autograd.Function):
    """Two outputs: ``(2 x, 3 x)``."""

    @staticmethod
    def forward(ctx, x):
        return x * 2, x * 3

    @staticmethod
    def backward(ctx, g0, g1):
        return 2 * g0 + 3 * g1


def test_function_with_only_its_second_output_used_records_no_wrong_numbers():
    def body(m, x):
        y = m.l1(x)
        _, b = _Two.apply(y)
        return m.l2(b)

    x = _x()
    m = _Seq(body)
    rec = _run(m, x)
    y = _affine(x, m.l1)
    # output 1 (3 y) is what l2 saw; the node's statistics are of output 0 (2 y) or none
    _right_or_none(rec, "/_TwoBackward#0", 2 * y)
    _check(rec, "l2/LinearBackward0#0", _affine(3 * y, m.l2))
    np.testing.assert_allclose(m.l1.weight.grad.numpy(),
                               (3 * (2 * _affine(3 * y, m.l2)) @ m.l2.weight.detach().numpy()).T
                               @ x, rtol=RTOL)


class _VecAndSum(dt.autograd.Function):
    """Two outputs: ``(x, sum(x^2))``; backward is run from the second one."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * 1, (x * x).sum()

    @staticmethod
    def backward(ctx, g0, g1):
        (x,) = ctx.saved_tensors
        return g0 + 2 * x * g1


def test_root_that_is_a_second_output_is_not_taken_as_the_first():
    def body(m, x):
        return _VecAndSum.apply(m.l1(x))[1]

    x = _x()
    m = _Seq(body)
    rec = _run(m, x, loss=lambda out: out)
    y = _affine(x, m.l1)
    _right_or_none(rec, "/_VecAndSumBackward#0", y)  # output 0 is y itself, output 1 a scalar
    assert rec.history("loss")[0] == pytest.approx((y * y).sum(), rel=RTOL)


# ----------------------------------------------------------------------- 2. consumers
def test_output_used_by_two_consumers():
    def body(m, x):
        y = m.l1(x)
        return m.l2(y.tanh() + y * 3)

    x = _x()
    m = _Seq(body)
    rec = _run(m, x)
    y = _affine(x, m.l1)
    _check(rec, "l1/LinearBackward0#0", y)
    _check(rec, "/TanhBackward0#0", np.tanh(y))
    np.testing.assert_allclose(rec.history("/TanhBackward0#0", "out_saturated")[0],
                               np.mean(np.abs(np.tanh(y)) > 0.99))
    _check(rec, "/MulBackward0#0", y * 3)
    _check(rec, "/AddBackward0#0", np.tanh(y) + 3 * y)
    _check(rec, "l2/LinearBackward0#0", _affine(np.tanh(y) + 3 * y, m.l2))


def test_output_consumed_only_by_the_loss_root_and_a_non_scalar_root():
    x = _x()
    m = _Seq(lambda m, x: m.l2(m.l1(x)))
    rec = _run(m, x, loss=lambda out: out.sum())
    z = _affine(_affine(x, m.l1), m.l2)
    _check(rec, "l2/LinearBackward0#0", z)  # saved only by the root (sum)
    _check(rec, "/SumBackward0#0", z.sum())
    # backward from a non-scalar root with a gradient: the root's output is its tensor's
    with Recorder(m) as rec2:
        out = m(dt.tensor(x))
        out.backward(dt.ones(out.shape, dtype=out.dtype))
    assert rec2.steps == [0] and rec2.error is None
    _check(rec2, "l2/LinearBackward0#0", z)
    _check(rec2, "l1/LinearBackward0#0", _affine(x, m.l1))


# ----------------------------------------------------------------------- 3. custom Function
class _Cube(dt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 3 * x * x * g


class _CubeCtxArrays(_Cube):
    """The same, keeping a NumPy array on ``ctx`` under a user's name that an OpNode uses."""

    @staticmethod
    def forward(ctx, x):
        ctx.arrays = [np.full(x.shape, 7.0)]  # a user's ctx attribute: any name is allowed
        return _Cube.forward(ctx, x)


def _cube_model(fn):
    return _Seq(lambda m, x: m.l2(fn.apply(m.l1(x))))


def test_custom_function_node_and_the_op_after_it():
    x = _x()
    m = _cube_model(_Cube)
    rec = _run(m, x)
    y = _affine(x, m.l1)
    assert "/_CubeBackward#0" in rec.keys()
    _check(rec, "/_CubeBackward#0", y ** 3)
    _check(rec, "l2/LinearBackward0#0", _affine(y ** 3, m.l2))
    np.testing.assert_allclose(rec.history("/_CubeBackward#0", "grad_norm")[0],
                               np.linalg.norm(2 * _affine(y ** 3, m.l2)
                                              @ m.l2.weight.detach().numpy()), rtol=RTOL)


def test_custom_function_input_keeps_its_forward_statistics():
    # l1's output is consumed only by the Function: it keeps its own statistics
    x = _x()
    m = _cube_model(_Cube)
    rec = _run(m, x)
    _check(rec, "l1/LinearBackward0#0", _affine(x, m.l1))


def test_custom_function_ctx_attribute_named_arrays_is_not_read_as_saved_inputs():
    x = _x()
    m = _cube_model(_CubeCtxArrays)
    rec = _run(m, x)
    _right_or_none(rec, "l1/LinearBackward0#0", _affine(x, m.l1))  # never the 7s on ctx
    _check(rec, "/_CubeCtxArraysBackward#0", _affine(x, m.l1) ** 3)


# ----------------------------------------------------------------------- 4. several backwards
def test_retain_graph_two_backwards_on_one_graph():
    x = _x()
    m = _Seq(lambda m, x: m.l2(m.l1(x).tanh()))
    with Recorder(m) as rec:
        loss = (m(dt.tensor(x)) ** 2).sum()
        loss.backward(retain_graph=True)
        g1 = m.l1.weight.grad.numpy().copy()
        loss.backward()
    assert rec.error is None and rec.steps == [0, 1]
    y = _affine(x, m.l1)
    z = _affine(np.tanh(y), m.l2)
    assert set(rec.keys()) == {"l1.weight", "l1.bias", "l1/LinearBackward0#0",
                               "/TanhBackward0#0", "l2.weight", "l2.bias",
                               "l2/LinearBackward0#0", "/PowBackward0#0", "/SumBackward0#0"}
    for i in (0, 1):
        _check(rec, "l1/LinearBackward0#0", y, i)
        _check(rec, "/TanhBackward0#0", np.tanh(y), i)
        _check(rec, "l2/LinearBackward0#0", z, i)
        _check(rec, "/PowBackward0#0", z ** 2, i)
    np.testing.assert_allclose(rec.history("l1.weight"), [np.linalg.norm(g1)] * 2, rtol=RTOL)
    np.testing.assert_allclose(m.l1.weight.grad.numpy(), 2 * g1, rtol=RTOL)


def test_gradient_accumulation_two_forward_backward_per_optimizer_step():
    m = _Seq(lambda m, x: m.l2(m.l1(x).relu()))
    opt = dt.optim.SGD(m.parameters(), lr=0.1)
    xs = [_x(seed=s) for s in range(4)]
    want = []
    with Recorder(m, optimizer=opt) as rec:
        for k in range(2):
            opt.zero_grad()
            for j in range(2):
                x = xs[2 * k + j]
                y = _affine(x, m.l1)
                want.append((y, np.maximum(y, 0), _affine(np.maximum(y, 0), m.l2)))
                (m(dt.tensor(x)) ** 2).mean().backward()
            opt.step()
    assert rec.error is None and rec.steps == [0, 1, 2, 3]
    for i, (y, r, z) in enumerate(want):
        _check(rec, "l1/LinearBackward0#0", y, i)
        _check(rec, "/ReluBackward0#0", r, i)
        _check(rec, "l2/LinearBackward0#0", z, i)
    ratio = rec.history("l1.weight", "update_ratio")
    assert np.isnan(ratio[0]) and np.isnan(ratio[2]) and (ratio[[1, 3]] > 0).all()


# ----------------------------------------------------------------------- 5. in-place, dtypes
def _inplace_model(how):
    act = dt.nn.ReLU(inplace=True)

    def body(m, x):
        y = m.l1(x)
        if how == "add_":
            y.add_(1)
        elif how == "relu_":
            y.relu_()
        elif how == "mul_":
            y.mul_(2)
        else:
            y = act(y)
        return m.l2(y)

    return _Seq(body)


@pytest.mark.parametrize("how", ["add_", "relu_", "ReLU(inplace=True)", "mul_"])
def test_inplace_op_after_the_producer_gives_it_no_wrong_statistics(how):
    x = _x()
    m = _inplace_model(how)
    rec = _run(m, x)
    y = _affine(x, m.l1)
    after = {"add_": y + 1, "mul_": 2 * y}.get(how, np.maximum(y, 0))
    _check(rec, "l2/LinearBackward0#0", _affine(after, m.l2))
    _check(rec, "/" + {"add_": "AddBackward0", "mul_": "MulBackward0"}.get(how, "ReluBackward0")
           + "#0", after)
    # the Linear's own output, before the in-place op changed its memory (or nothing)
    _right_or_none(rec, "l1/LinearBackward0#0", y)
    # and the gradients are torch's
    import torch

    tl1 = torch.nn.Linear(3, 4).double()
    tl2 = torch.nn.Linear(4, 2).double()
    with torch.no_grad():
        for t, d in ((tl1, m.l1), (tl2, m.l2)):
            t.weight.copy_(torch.from_numpy(d.weight.detach().numpy()))
            t.bias.copy_(torch.from_numpy(d.bias.detach().numpy()))
    ty = tl1(torch.from_numpy(x))
    if how == "add_":
        ty.add_(1)
    elif how == "mul_":
        ty.mul_(2)
    else:
        ty.relu_()
    (tl2(ty) ** 2).sum().backward()
    np.testing.assert_allclose(m.l1.weight.grad.numpy(), tl1.weight.grad.numpy(), rtol=RTOL)


def test_inplace_relu_leaves_the_producer_its_forward_statistics():
    # nn.ReLU(inplace=True) after a layer (ResNet's pattern): the layer's output statistics
    # are those of its output, as the op made them (before the in-place change)
    x = _x()
    m = _inplace_model("ReLU(inplace=True)")
    rec = _run(m, x)
    _check(rec, "l1/LinearBackward0#0", _affine(x, m.l1))


def test_inplace_on_a_view_gives_every_node_its_own_output():
    # y[1].add_(5) while recording: dyntorch writes into y's memory and gives y a new node
    # (IndexPut of the old y, then a view); every node reports what it produced then
    def body(m, x):
        y = m.l1(x)
        y[1].add_(5)
        return m.l2(y)

    x = _x()
    m = _Seq(body)
    rec = _run(m, x)
    y = _affine(x, m.l1)
    new = y.copy()
    new[1] += 5
    _check(rec, "l1/LinearBackward0#0", y)
    _check(rec, "/SelectBackward0#0", y[1])
    _check(rec, "/AddBackward0#0", y[1] + 5)
    _check(rec, "/ViewBackward0#0", y)  # the old y, flat: what IndexPut wrote into
    _check(rec, "/IndexPutBackward0#0", new)
    _check(rec, "/ViewBackward0#1", new)
    _check(rec, "l2/LinearBackward0#0", _affine(new, m.l2))


def test_inplace_change_after_a_consumer_saved_the_output():
    # z saved y's array, then y changed in place: y's producer must not report the new values
    def body(m, x):
        y = m.l1(x)
        z = y + 1.5  # add saves its inputs' arrays but needs none of them
        y.add_(10)
        return m.l2(z + y)

    x = _x()
    m = _Seq(body)
    rec = _run(m, x)
    y = _affine(x, m.l1)
    _check(rec, "/AddBackward0#2", (y + 1.5) + (y + 10))
    _check(rec, "/AddBackward0#1", y + 10)
    _check(rec, "/AddBackward0#0", y + 1.5)
    _right_or_none(rec, "l1/LinearBackward0#0", y)


def test_dtype_promotion_float32_with_float64_and_int_with_float():
    w64 = np.random.default_rng(3).standard_normal((6, 4))
    idx = np.arange(24).reshape(6, 4) % 5

    def body(m, x):
        y = m.l1(x)  # float32
        s = m.scale * 1e-50  # 0-dim float64, far below float32's range
        p = y * s  # float32 (a 0-dim tensor does not promote): s becomes float32 0
        r = (y + dt.tensor(w64)) + dt.tensor(idx)  # float64, then int64 joins float64
        return r.sum() + p.sum()

    m = _Seq(body)
    m.l1 = _lin(3, 4, 10, dtype=np.float32)
    m.scale = dt.nn.Parameter(dt.tensor(3.0, dtype=dt.float64))
    x = _x().astype(np.float32)
    rec = _run(m, x, loss=lambda out: out)
    y = _affine(x, m.l1)  # float32 arithmetic, as the model's
    assert y.dtype == np.float32
    _check(rec, "l1/LinearBackward0#0", y, rtol=1e-6)
    _check(rec, "/MulBackward0#0", np.array(3e-50))  # the float64 product, not its cast
    _check(rec, "/ToCopyBackward0#0", np.array(0.0))  # its float32 cast (underflows to 0)
    _check(rec, "/MulBackward0#1", y * np.float32(0))
    _check(rec, "/ToCopyBackward0#1", y, rtol=1e-6)  # y cast to float64: exact
    _check(rec, "/AddBackward0#0", y.astype(np.float64) + w64, rtol=1e-6)
    _check(rec, "/AddBackward0#1", y.astype(np.float64) + w64 + idx, rtol=1e-6)
    # d loss / d scale = 1e-50 * sum(y): the sum in float32 (the cast's backward), then float64
    np.testing.assert_allclose(rec.history("scale")[0], abs(1e-50 * float(y.sum())), rtol=1e-6)


def test_bfloat16_outputs_get_forward_statistics():
    if not hasattr(dt, "bfloat16"):
        pytest.skip("no bfloat16")
    m = _Seq(lambda m, x: m.l2(m.l1(x).tanh()))
    m.to(dt.bfloat16)
    x = _x().astype(np.float32)
    with Recorder(m) as rec:
        out = m(dt.tensor(x).to(dt.bfloat16))
        (out.float() ** 2).sum().backward()
    assert rec.error is None and rec.steps == [0]
    xb = dt.tensor(x).to(dt.bfloat16)
    with dt.no_grad():
        y = m.l1(xb).float().numpy()  # the same bfloat16 arithmetic, read back exactly
    _check(rec, "l1/LinearBackward0#0", y, rtol=1e-12)


def test_float16_outputs_and_a_big_output_with_nan_sampled():
    m = _Seq(lambda m, x: m.l2(m.l1(x)))
    m.half()
    x = _x().astype(np.float16)
    rec = _run(m, x, loss=lambda out: out.float().sum())
    w, b = m.l1.weight.detach().numpy(), m.l1.bias.detach().numpy()
    with dt.no_grad():
        y = m.l1(dt.tensor(x)).numpy()  # the same float16 arithmetic
    assert y.dtype == np.float16 and w.dtype == np.float16 and b.dtype == np.float16
    _check(rec, "l1/LinearBackward0#0", y, rtol=1e-12)
    # a 120 x 4 output (above 2 * sample entries) with NaN: the counts are exact, the rest
    # over the finite entries of the strided sample
    big = _Seq(lambda m, x: (m.l1(x) * dt.tensor(mask)).sum())
    mask = np.ones((120, 4))
    mask[::7, 0] = np.nan  # flat 28 k: in the stride-7 sample
    xb = _x(n=120)
    rec = _run(big, xb, loss=lambda out: out, sample=64)
    yb = _affine(xb, big.l1)
    got = _got(rec, "l1/LinearBackward0#0")  # finite: a strided sample, inside the range
    assert yb.min() <= got["out_min"] <= got["out_max"] <= yb.max()
    assert got["out_nan"] == got["out_inf"] == 0 and abs(got["out_mean"] - yb.mean()) < 0.5
    full = yb * mask
    samp = full.ravel()[::(full.size // 64) | 1]
    assert np.isnan(samp).any() and not np.isnan(samp).all()  # the sample meets NaNs too
    got, want = _got(rec, "/MulBackward0#0"), _want(samp)
    for k in ("out_mean", "out_std", "out_min", "out_max", "out_zeros"):
        np.testing.assert_allclose(got[k], want[k], rtol=RTOL, atol=1e-12, err_msg=k)
    assert rec.history("/MulBackward0#0", "out_nan")[0] == len(range(0, 120, 7))
    assert rec.history("/MulBackward0#0", "out_inf")[0] == 0


# ----------------------------------------------------------------------- 6. keys
class _Twice(dt.nn.Module):
    """One Linear called twice in a forward (keys "#0" and "#1")."""

    def __init__(self):
        super().__init__()
        self.l = _lin(3, 3, 5)

    def forward(self, x):
        return self.l(self.l(x).tanh())


def test_module_called_twice_keys_0_and_1():
    m = _Twice()
    x = _x()
    rec = _run(m, x)
    y0 = _affine(x, m.l)
    y1 = _affine(np.tanh(y0), m.l)
    _check(rec, "l/LinearBackward0#0", y0)
    _check(rec, "l/LinearBackward0#1", y1)
    assert "l/LinearBackward0#2" not in rec.keys()


def test_branch_on_some_steps_keys_follow_the_program_and_every_3():
    def body(m, x):
        h = m.l1(x)
        if m.odd:
            h = h.sigmoid()
        return m.l2(h)

    m = _Seq(body)
    xs = [_x(seed=20 + s) for s in range(7)]
    for every, steps in ((1, list(range(7))), (3, [0, 3, 6])):
        want = []
        with Recorder(m, every=every) as rec:
            for s, x in enumerate(xs):
                m.odd = s % 2 == 1
                y = _affine(x, m.l1)
                h = 1 / (1 + np.exp(-y)) if m.odd else y
                want.append((y, h, _affine(h, m.l2)))
                m.zero_grad()
                (m(dt.tensor(x)) ** 2).sum().backward()
        assert rec.error is None and rec.steps == steps
        for i, s in enumerate(steps):
            y, h, z = want[s]
            _check(rec, "l1/LinearBackward0#0", y, i)
            _check(rec, "l2/LinearBackward0#0", z, i)
            if s % 2:
                _check(rec, "/SigmoidBackward0#0", h, i)
                np.testing.assert_allclose(
                    rec.history("/SigmoidBackward0#0", "out_saturated")[i],
                    np.mean((h < 0.01) | (h > 0.99)))
            elif "/SigmoidBackward0#0" in rec.keys():  # kept steps without the branch
                assert np.isnan(rec.history("/SigmoidBackward0#0", "out_mean")[i])
        assert "l2/LinearBackward0#1" not in rec.keys()


def test_graph_carried_across_steps_keys_this_steps_forward_first():
    # a hidden state never detached (the bug a debugger is for): each backward runs through
    # the earlier steps' nodes too. "#0" stays this step's call of the layer, as the keys
    # follow this step's program; the earlier steps' nodes come after it
    lin = _lin(3, 3, 4)
    m = dt.nn.Sequential(lin)
    h = dt.zeros(2, 3, dtype=dt.float64)
    xs = [_x(n=2, seed=s) for s in range(3)]
    with Recorder(m) as rec:
        for x in xs:
            h = (m(dt.tensor(x)) + h).tanh()
            m.zero_grad()
            h.sum().backward(retain_graph=True)
    assert rec.error is None and rec.steps == [0, 1, 2]
    ys = [_affine(x, lin) for x in xs]
    for i in range(3):
        _check(rec, "0/LinearBackward0#0", ys[i], i)
    # the earlier calls have keys of their own, with their own numbers (or none)
    for i, k in ((1, 1), (2, 1), (2, 2)):
        key = f"0/LinearBackward0#{k}"
        got = rec.history(key, "out_mean")[i]
        assert np.isnan(got) or any(np.isclose(got, y.mean(), rtol=RTOL) for y in ys[:i])


def test_second_backward_through_a_module_called_twice_keeps_its_keys():
    # retain_graph=True and two backwards on one graph whose module runs twice: both
    # steps key the first call "#0" and the second "#1"
    m = _Twice()
    x = _x()
    with Recorder(m) as rec:
        loss = (m(dt.tensor(x)) ** 2).sum()
        loss.backward(retain_graph=True)
        loss.backward()
    assert rec.error is None and rec.steps == [0, 1]
    y0 = _affine(x, m.l)
    y1 = _affine(np.tanh(y0), m.l)
    for i in (0, 1):
        _check(rec, "l/LinearBackward0#0", y0, i)
        _check(rec, "l/LinearBackward0#1", y1, i)


# ----------------------------------------------------------------------- 7. breaks
def _nan_model():
    def body(m, x):
        y = m.l1(x).log()  # NaN where l1's output is negative
        return m.l2(dt.where(dt.isnan(y), dt.zeros_like(y), y))  # masked: finite after

    return _Seq(body)


def test_nonfinite_break_fires_at_the_node_whose_output_is_nan():
    m = _nan_model()
    x = _x()
    with Recorder(m, break_when="nonfinite") as rec:
        with pytest.raises(BreakpointHit) as ei:
            (m(dt.tensor(x)) ** 2).sum().backward()
    hit = ei.value
    y = _affine(x, m.l1)
    assert (y < 0).any() and (y > 0).any()
    assert hit.step == 0 and hit.node.op == "LogBackward0"
    with np.errstate(invalid="ignore"):
        ly = np.log(y)
    assert hit.node.out_nan == np.count_nonzero(np.isnan(ly))
    assert hit.node.nonfinite == hit.node.out_nan + hit.node.grad_nan + hit.node.grad_inf
    assert hit.node.out_max == pytest.approx(np.nanmax(ly), rel=RTOL)
    _check(rec, "/LogBackward0#0", ly)
    _check(rec, "l1/LinearBackward0#0", y)  # backward never reached it: forward stats kept
    s = hit.stepper
    assert isinstance(s, BackwardStepper)
    assert s.current.node.name() == "LogBackward0"
    assert s.run() is None  # the rest of that backward runs to the parameters
    gw = m.l1.weight.grad.numpy()
    s.close()
    # the same gradient by hand: d/dy of log masked where it was NaN
    z = _affine(np.where(np.isnan(ly), 0, ly), m.l2)
    gl = 2 * z @ m.l2.weight.detach().numpy()
    gy = np.where(np.isnan(ly), 0, gl) / y
    np.testing.assert_allclose(gw, gy.T @ x, rtol=1e-9)


def test_nonfinite_break_sees_an_inf_output_squashed_in_place_afterwards():
    def body(m, x):
        y = m.l1(x) * math.inf  # +-Inf everywhere in the product's output
        return m.l2(y.sigmoid_())  # finite again, in the same memory

    m = _Seq(body)
    x = _x()
    with Recorder(m, break_when="nonfinite") as rec:
        with pytest.raises(BreakpointHit) as ei:
            (m(dt.tensor(x)) ** 2).sum().backward()
    assert rec.error is None
    assert ei.value.node.key == "/MulBackward0#0" and ei.value.node.out_inf == x.shape[0] * 4
    ei.value.stepper.close()


# ----------------------------------------------------------------------- 8. Trainer
def _fit(x, y):
    from dyntorch.train import Trainer, TrainModule
    from dyntorch.train.callbacks import GraphRecorder
    from dyntorch.utils.data import DataLoader, TensorDataset

    class Reg(TrainModule):
        def __init__(self):
            super().__init__()
            self.net = dt.nn.Sequential(_lin(3, 4, 7), dt.nn.Tanh(), _lin(4, 1, 8))

        def training_step(self, batch, batch_idx):
            x, y = batch
            return ((self.net(x) - y) ** 2).mean()

        def configure_optimizers(self):
            return dt.optim.SGD(self.parameters(), lr=0.0)  # weights stay: values by hand

    loader = DataLoader(TensorDataset(dt.tensor(x), dt.tensor(y)), batch_size=8)
    mod = Reg()
    cb = GraphRecorder(keep=10)
    Trainer(max_epochs=2, callbacks=[cb], enable_progress_bar=False, logger=False,
            enable_checkpointing=False).fit(mod, loader)
    return mod, cb.recorder


def test_trainer_graph_recorder_records_forward_statistics():
    x, y = _x(n=16), _x(n=16, i=1, seed=2)
    mod, rec = _fit(x, y)
    assert rec.error is None and rec.steps == [0, 1, 2, 3]
    keys = rec.keys()

    def key(suffix):  # the node keys' module scope is checked on its own (below)
        got = [k for k in keys if k.endswith(suffix)]
        assert len(got) == 1, (suffix, keys)
        return got[0]

    for i in range(4):
        xb, yb = x[8 * (i % 2):8 * (i % 2) + 8], y[8 * (i % 2):8 * (i % 2) + 8]
        h = _affine(xb, mod.net[0])
        z = _affine(np.tanh(h), mod.net[2])
        _check(rec, key("0/LinearBackward0#0"), h, i)
        _check(rec, key("1/TanhBackward0#0"), np.tanh(h), i)
        _check(rec, key("2/LinearBackward0#0"), z, i)
        _check(rec, "/SubBackward0#0", z - yb, i)
        assert rec.history("loss")[i] == pytest.approx(((z - yb) ** 2).mean(), rel=RTOL)


def test_trainer_node_keys_use_the_module_names_of_the_parameters():
    # parameters are named from the TrainModule ("net.0.weight"); their op nodes should be
    # keyed in the same names ("net.0/LinearBackward0#0"), as rec.at() groups both by scope
    x, y = _x(n=16), _x(n=16, i=1, seed=2)
    _, rec = _fit(x, y)
    assert "net.0.weight" in rec.keys()
    assert "net.0/LinearBackward0#0" in rec.keys(), rec.keys()
    doc = rec.at(0)
    scopes = {n["key"]: n["scope"] for n in doc["nodes"]}
    assert scopes["net.0.weight"] == scopes["net.0/LinearBackward0#0"]
