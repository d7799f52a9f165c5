"""debug.Recorder's batched statistics (one flush of a step's outputs and gradients after
backward, float32 samples of big float32 gradients, segment offsets reused across steps):
every number equals NumPy computed by hand on the very arrays of the step, in float64 and
float32, whatever the layout of the batch does from one step to the next."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch as dt
from dyntorch.debug import Recorder


def _sample(a, sample):
    flat = np.asarray(a).ravel()
    if flat.size <= 2 * sample:
        return flat
    return flat[::(flat.size // sample) | 1]


def _model(dtype, d_in=40, d_hid=300, seed=0):
    dt.manual_seed(seed)
    m = dt.nn.Sequential(dt.nn.Linear(d_in, d_hid), dt.nn.ReLU(), dt.nn.Linear(d_hid, d_hid),
                         dt.nn.Tanh(), dt.nn.Linear(d_hid, 3))
    return m.double() if dtype == np.float64 else m


def _capture(m):
    """Copies of every module's output and of the gradients that reach them, this step."""
    outs, grads = {}, {}

    def hook(name):
        def fn(mod, args, out):
            outs[name] = out.detach().numpy().copy()
            out.register_hook(lambda g: grads.__setitem__(name, g.numpy().copy()))
        return fn

    hs = [mod.register_forward_hook(hook(name)) for name, mod in m.named_children()]
    return outs, grads, hs


def _check_step(rec, step, m, outs, grads, sample, rtol, nr=0):
    ops = {"0": "LinearBackward0", "1": "ReluBackward0", "2": "LinearBackward0",
           "3": "TanhBackward0", "4": "LinearBackward0"}
    for name, op in ops.items():
        s = rec.summary(step, f"{name}/{op}#{nr}")
        y, g = outs[name], grads[name]
        ys = _sample(y, sample).astype(np.float64)
        np.testing.assert_allclose([s.out_mean, s.out_std, s.out_min, s.out_max],
                                   [ys.mean(), ys.std(), ys.min(), ys.max()], rtol=rtol,
                                   atol=1e-12, err_msg=f"{name} output")
        assert s.out_zeros == pytest.approx((ys == 0).mean(), abs=1e-15)
        if op == "TanhBackward0":
            assert s.out_saturated == pytest.approx((abs(ys) > 0.99).mean(), abs=1e-15)
        # the norm is over every entry (a BLAS dot in the array's dtype), max |g| on the sample
        np.testing.assert_allclose(s.grad_norm, np.linalg.norm(g.astype(np.float64)),
                                   rtol=max(rtol, 1e-6 if g.dtype == np.float32 else 0))
        assert s.grad_max == abs(_sample(g, sample)).max()
        assert s.nonfinite == 0
    for pname, p in m.named_parameters():
        s = rec.summary(step, pname)
        g = p.grad.numpy()
        np.testing.assert_allclose(s.grad_norm, np.linalg.norm(g.astype(np.float64)),
                                   rtol=max(rtol, 1e-6 if g.dtype == np.float32 else 0))
        assert s.grad_max == abs(_sample(g, sample)).max()


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-10), (np.float32, 1e-6)])
@pytest.mark.parametrize("sample", [4096, 64])
def test_statistics_equal_numpy_on_the_same_arrays(dtype, rtol, sample):
    m = _model(dtype)
    rng = np.random.default_rng(1)
    opt = dt.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    outs, grads, hs = _capture(m)
    with Recorder(m, keep=5, optimizer=opt, sample=sample) as rec:
        # batch sizes change between steps: the batch's segments move (offsets reused only
        # while they repeat), and no step may see another's numbers
        for step, n in enumerate((32, 32, 7, 32)):
            x = dt.tensor(rng.standard_normal((n, 40)).astype(dtype))
            opt.zero_grad()
            m(x).square().mean().backward()
            _check_step(rec, step, m, outs, grads, sample, rtol)
            before = [p.detach().numpy().copy() for p in m.parameters()]
            opt.step()
            for (pname, p), b in zip(m.named_parameters(), before):
                a = p.detach().numpy()
                if b.size <= 4096:  # compared whole (bigger ones on runs: test_debug_recorder)
                    np.testing.assert_allclose(rec.history(pname, "update_ratio")[step],
                                               np.linalg.norm(a - b) /
                                               np.linalg.norm(b), rtol=max(rtol, 1e-5))
    for h in hs:
        h.remove()
    assert rec.steps == [0, 1, 2, 3]


def test_mixed_float32_and_float64_gradients_in_one_step():
    # float32 samples go to a float32 batch, float64 ones to a float64 batch: each exact
    m32, m64 = _model(np.float32), _model(np.float64, seed=1)
    top = dt.nn.ModuleDict({"a": m32, "b": m64})
    rng = np.random.default_rng(2)
    x32 = dt.tensor(rng.standard_normal((32, 40)).astype(np.float32))
    x64 = dt.tensor(rng.standard_normal((32, 40)))
    with Recorder(top, keep=2, sample=256) as rec:
        (m32(x32).double().sum() + m64(x64).sum()).backward()
    for pname, p in top.named_parameters():
        s = rec.summary(0, pname)
        g = p.grad.numpy()
        assert s.dtype == str(g.dtype)
        assert s.grad_max == abs(_sample(g, 256)).max()
        np.testing.assert_allclose(s.grad_norm, np.linalg.norm(g.astype(np.float64)),
                                   rtol=1e-6 if g.dtype == np.float32 else 1e-12)


def test_nan_in_a_whole_gradient_of_the_batch_is_counted_exactly():
    m = _model(np.float64)
    x = np.random.default_rng(3).standard_normal((4, 40))
    with Recorder(m, keep=2) as rec:
        out = m(dt.tensor(x))
        w = dt.tensor(np.array([[1.0, np.nan, 2.0]]).repeat(4, 0))
        (out * w).sum().backward()
    s = rec.summary(0, "4/LinearBackward0#0")  # its gradient is w: 4 NaN out of 12
    assert (s.grad_nan, s.grad_inf) == (4, 0)
    np.testing.assert_allclose(s.grad_norm, np.linalg.norm([1.0, 2.0] * 4), rtol=1e-12)
    assert s.grad_max == 2.0
    assert rec.summary(0, "4.bias").grad_nan == 1  # the column sums of w
    assert rec.summary(0, "4.weight").grad_nan == 300  # one row of its (3, 300) gradient


def test_a_forward_without_backward_is_not_mixed_into_the_next_step():
    m = _model(np.float64)
    rng = np.random.default_rng(4)
    outs, grads, hs = _capture(m)
    with Recorder(m, keep=3) as rec:
        m(dt.tensor(rng.standard_normal((16, 40))))  # no backward: its records are dropped
        x = rng.standard_normal((16, 40))
        m(dt.tensor(x)).sum().backward()
    for h in hs:
        h.remove()
    assert rec.steps == [0]
    # the step's nodes count on from the dangling forward's (keys "#1"), their numbers are
    # their own
    assert "0/LinearBackward0#0" not in rec.keys() and "0/LinearBackward0#1" in rec.keys()
    _check_step(rec, 0, m, outs, grads, 4096, 1e-10, nr=1)
