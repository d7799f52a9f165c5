"""Gradients at NaN and inf, and reductions of empty or one-element tensors, as torch 2.13.

torch writes masked backward formulas as ``where(mask, grad, 0)``: a dropped entry gets an
exact 0 even where the incoming gradient is inf or NaN, and a NaN input passes or drops its
gradient by the comparison's own rule. A NaN hunt (``debug.explain``, the Recorder) must see
the gradients torch computes, so every case compares values and gradients with torch in
float64, NaN for NaN, at inputs and upstream gradients holding NaN and +-inf.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import dyntorch

NAN, INF = float("nan"), float("inf")
X = np.array([NAN, -INF, INF, -7.0, -3.0, -1.0, -0.0, 0.0, 0.5, 1.0, 3.0, 7.0])
G_FINITE = np.linspace(-1.5, 2.0, X.size)
G_NONFINITE = np.array([INF, NAN, -INF, INF, NAN, -INF, NAN, INF, -INF, NAN, INF, NAN])

UNARY = {
    "relu": lambda m, x: x.relu(),
    "hardtanh": lambda m, x: m.nn.functional.hardtanh(x),
    "relu6": lambda m, x: m.nn.functional.relu6(x),
    "threshold": lambda m, x: m.nn.functional.threshold(x, 0.5, -2.0),
    "hardsigmoid*6": lambda m, x: m.nn.functional.hardsigmoid(x) * 6,
    "hardswish": lambda m, x: m.nn.functional.hardswish(x),
    "elu": lambda m, x: m.nn.functional.elu(x),
    "celu": lambda m, x: m.nn.functional.celu(x, 2.0),
    "selu": lambda m, x: m.nn.functional.selu(x),
    "leaky_relu": lambda m, x: m.nn.functional.leaky_relu(x, 0.1),
    "clamp": lambda m, x: x.clamp(-2.0, 2.0),
    "clamp_min": lambda m, x: x.clamp(min=0.0),
    "clamp_max": lambda m, x: x.clamp(max=0.0),
    "where": lambda m, x: m.where(x > 0, x, x * 3),
    "floor": lambda m, x: x.floor(),
    "ceil": lambda m, x: x.ceil(),
    "trunc": lambda m, x: x.trunc(),
    "round": lambda m, x: x.round(),
    "sign": lambda m, x: x.sign(),
    "abs": lambda m, x: x.abs(),
    "pow0": lambda m, x: x ** 0,
    "tanh": lambda m, x: x.tanh(),
    "sigmoid": lambda m, x: x.sigmoid(),
    "max()": lambda m, x: x.max(),
    "min()": lambda m, x: x.min(),
    "amax": lambda m, x: x.amax(),
    "maximum": lambda m, x: m.maximum(x, x.flip(0)),
    "minimum": lambda m, x: m.minimum(x, m.zeros_like(x)),
    "clamp_tensors": lambda m, x: x.clamp(x.flip(0) * 0.5, x.roll(3) + 1.0),
    "clamp_min_tensor": lambda m, x: x.clamp(min=x.flip(0)),
    "xlogy": lambda m, x: m.xlogy(m.where(x > 2.0, 0.0, x), x.flip(0)),
    "smooth_l1": lambda m, x: m.nn.functional.smooth_l1_loss(x, x.flip(0) * 0.3,
                                                             reduction="none"),
    "huber": lambda m, x: m.nn.functional.huber_loss(x, x.roll(2), reduction="none",
                                                     delta=0.5),
    "hardshrink": lambda m, x: m.nn.functional.hardshrink(x, 0.75),
    "softshrink": lambda m, x: m.nn.functional.softshrink(x, 0.75),
    "atan2": lambda m, x: m.atan2(x, x.flip(0)),
    "hypot": lambda m, x: m.hypot(x, x.roll(1)),
    "logaddexp": lambda m, x: m.logaddexp(x, x.roll(5)),
    "median": lambda m, x: x.median(),
    "nanmedian": lambda m, x: x.nanmedian(),
}


def _run(m, fn, x, g, dtype):
    t = m.tensor(x, dtype=getattr(m, dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = fn(m, t)
        gy = m.tensor(np.broadcast_to(g[: y.numel()].reshape(y.shape) if y.numel() > 1 else
                                      g[:1].reshape(y.shape), y.shape).copy(),
                      dtype=getattr(m, dtype))
        y.backward(gy)
    return np.array(y.detach().numpy()), np.array(t.grad.numpy())


@pytest.mark.parametrize("upstream", ["finite", "nonfinite"])
@pytest.mark.parametrize("name", list(UNARY))
def test_gradient_at_nan_and_inf_matches_torch(torch, name, upstream):
    g = G_FINITE if upstream == "finite" else G_NONFINITE
    ours = _run(dyntorch, UNARY[name], X, g, "float64")
    theirs = _run(torch, UNARY[name], X, g, "float64")
    # torch's own rounding: its double hardsigmoid kernel multiplies by a float32 1/6, its
    # tanh backward fuses 1 - y*y (the cancellation near |y| = 1 shows at 1e-11)
    rtol = {"hardsigmoid*6": 1e-7, "tanh": 1e-9}.get(name, 1e-12)
    for what, a, b in zip(("value", "gradient"), ours, theirs):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0, equal_nan=True,
                                   err_msg=f"{name}: {what} (x={X}, upstream={g})")


@pytest.mark.parametrize("name", ["relu", "hardtanh", "clamp", "where", "maximum", "threshold",
                                  "abs", "sign"])
def test_big_arrays_take_the_bit_mask_path_with_the_same_result(torch, name, rng):
    # 4096 entries: keep / zero_where use an integer mask on the gradient's bits there
    x = np.resize(X, 4096) * rng.uniform(0.5, 1.5, 4096)
    g = np.resize(G_NONFINITE, 4096) * np.where(rng.random(4096) < 0.5, 1.0, 0.25)
    for dtype in ("float64", "float32"):
        ours = _run(dyntorch, UNARY[name], x, g, dtype)
        theirs = _run(torch, UNARY[name], x, g, dtype)
        np.testing.assert_array_equal(ours[1], theirs[1], err_msg=f"{name} {dtype}")


@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
@pytest.mark.parametrize("fn", ["std", "var"])
def test_spread_of_one_element_is_nan_not_an_exception(torch, shape, fn):
    res = []
    for m in (dyntorch, torch):
        t = m.full(shape, 2.5, dtype=m.float64, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = getattr(t, fn)()
            y.backward()
        res.append((y.item(), t.grad.numpy().tolist()))
    assert np.isnan(res[0][0]) and np.isnan(res[1][0])
    np.testing.assert_array_equal(res[0][1], res[1][1])


@pytest.mark.parametrize("shape,dim", [((2, 0), -1), ((0, 3), -1), ((0, 3), 0), ((0,), 0)])
def test_softmax_and_logsumexp_of_empty_tensors(torch, shape, dim):
    res = []
    for m in (dyntorch, torch):
        x = m.zeros(shape, requires_grad=True)
        outs = (x.softmax(dim), x.log_softmax(dim), x.logsumexp(dim),
                m.logsumexp(x, dim, keepdim=True))
        sum(o.nan_to_num(0.0, 0.0, 0.0).sum() for o in outs).backward()
        res.append([(tuple(o.shape), o.detach().numpy().tolist()) for o in outs] +
                   [tuple(x.grad.shape)])
    assert res[0] == res[1]


def test_median_and_nanmedian_with_nan_along_a_dim(torch):
    x = np.array([[3.0, NAN, 1.0, 2.0], [2.0, 5.0, 4.0, 0.5], [NAN, NAN, NAN, NAN]])
    res = []
    for m in (dyntorch, torch):
        t = m.tensor(x, requires_grad=True)
        a, b = t.median(1), t.nanmedian(1, keepdim=True)
        (a.values.nan_to_num(0.0).sum() + 2 * b.values.nan_to_num(0.0).sum()).backward()
        # (which NaN an all-NaN row's nanmedian points at is torch's sort's choice)
        res.append((a.values.tolist(), a.indices.tolist(), b.values.tolist(),
                    b.indices.tolist()[:2], t.grad.tolist()))
    np.testing.assert_equal(res[0], res[1])
    e = dyntorch.zeros(0, requires_grad=True)
    v = e.median()
    v.backward()
    assert np.isnan(v.item()) and tuple(e.grad.shape) == (0,)
