"""Accuracy of the fast float32 erf (ops/_ns.py) against SciPy / math.erf, and the fused nn
ops that use it against torch in float32."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dyntorch.ops._ns import erf_array


def _ulps(a, b):
    return np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))


def _wide_float32(n=200_000):
    rng = np.random.default_rng(0)
    mag = np.geomspace(1e-38, 30.0, n)
    return np.concatenate([mag, -mag, np.linspace(-6, 6, n), rng.standard_normal(n) * 3,
                           [0.0, -0.0, 3.919, 3.92, 3.921, 1e-45]]).astype(np.float32)


def test_erf_float32_within_few_ulps_of_scipy():
    special = pytest.importorskip("scipy.special")
    x = _wide_float32()
    got = erf_array(np, x)
    assert got.dtype == np.float32 and got.shape == x.shape
    exact = special.erf(x.astype(np.float64))
    ref = exact.astype(np.float32)
    u = _ulps(got, ref)
    assert u.max() <= 8, (u.max(), x[u.argmax()])
    assert u.mean() < 1.5
    assert np.abs(got - exact).max() < 5e-7
    assert np.all(np.abs(got) <= 1.0)
    # tails are exactly +-1; odd symmetry holds exactly
    np.testing.assert_array_equal(erf_array(np, np.float32([4.0, 10.0, 1e30, np.inf])), 1.0)
    np.testing.assert_array_equal(erf_array(np, -x), -got)


def test_erf_float32_against_math_erf_and_special_values():
    xs = np.float32([-5.0, -2.5, -1.0, -0.3, -1e-5, 0.0, 1e-20, 0.1, 0.5, 1.5, 3.0, 3.9])
    got = erf_array(np, xs)
    for x, g in zip(xs.tolist(), got.tolist()):
        assert g == pytest.approx(math.erf(x), rel=5e-7, abs=1e-30)
    out = erf_array(np, np.float32([np.nan, np.inf, -np.inf, -0.0]))
    assert np.isnan(out[0]) and out[1] == 1.0 and out[2] == -1.0
    assert out[3] == 0.0 and np.signbit(out[3])
    assert erf_array(np, np.array(0.5, np.float32)).shape == ()
    strided = np.linspace(-2, 2, 24, dtype=np.float32).reshape(4, 6)[:, ::2]
    np.testing.assert_array_equal(erf_array(np, strided), erf_array(np, strided.copy()))


def test_erf_float64_stays_exact():
    special = pytest.importorskip("scipy.special")
    x = np.linspace(-7, 7, 10001)
    got = erf_array(np, x)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, special.erf(x))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_float32_matches_torch(approximate):
    torch = pytest.importorskip("torch")
    import dyntorch

    rng = np.random.default_rng(3)
    x = (rng.standard_normal((64, 97)) * 3).astype(np.float32)
    g = rng.standard_normal((64, 97)).astype(np.float32)
    a = dyntorch.tensor(x, requires_grad=True)
    b = torch.tensor(x, requires_grad=True)
    ya = dyntorch.nn.functional.gelu(a, approximate=approximate)
    yb = torch.nn.functional.gelu(b, approximate=approximate)
    np.testing.assert_allclose(ya.detach().numpy(), yb.detach().numpy(), rtol=2e-6, atol=1e-5)
    ya.backward(dyntorch.tensor(g))
    yb.backward(torch.tensor(g))
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=2e-6, atol=1e-5)


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_norm_fast_path_matches_torch(affine, dtype):
    """The per-row in-place layer_norm path: 2 normalised dims, a non-contiguous input."""
    torch = pytest.importorskip("torch")
    import dyntorch

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((6, 7, 5, 3)) * 2 + 1).astype(dtype).transpose(1, 0, 2, 3)
    g = rng.standard_normal(x.shape).astype(dtype)
    w = rng.standard_normal((5, 3)).astype(dtype) if affine else None
    b = rng.standard_normal((5, 3)).astype(dtype) if affine else None
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)

    def run(lib):
        xs = lib.tensor(x, requires_grad=True)
        ws = lib.tensor(w, requires_grad=True) if affine else None
        bs = lib.tensor(b, requires_grad=True) if affine else None
        y = lib.nn.functional.layer_norm(xs, (5, 3), ws, bs)
        y.backward(lib.tensor(g))
        return [y.detach().numpy(), xs.grad.numpy()] + (
            [ws.grad.numpy(), bs.grad.numpy()] if affine else [])

    for a, b_ in zip(run(dyntorch), run(torch)):
        np.testing.assert_allclose(a, b_, **tol)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("grads", [(True, True, True), (False, True, False), (True, False, True)])
@pytest.mark.parametrize("shape", [(8, 4), (5, 4, 3, 6)])
def test_batch_norm_fast_path_matches_torch(train, grads, shape):
    """Per-channel BLAS statistics and the folded gradient, for every subset of inputs that
    need a gradient, in float32 and 2-D (S = 1) as well as 4-D input."""
    torch = pytest.importorskip("torch")
    import dyntorch

    rng = np.random.default_rng(7)
    c = shape[1]
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    w, b = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
    rm, rv = rng.standard_normal(c).astype(np.float32), rng.random(c).astype(np.float32) + 0.5

    def run(lib):
        ts = [lib.tensor(a, requires_grad=r) for a, r in zip((x, w, b), grads)]
        y = lib.nn.functional.batch_norm(ts[0], lib.tensor(rm), lib.tensor(rv), ts[1], ts[2],
                                         training=train)
        y.backward(lib.tensor(g))
        return [y.detach().numpy()] + [t.grad.numpy() for t, r in zip(ts, grads) if r]

    for a, b_ in zip(run(dyntorch), run(torch)):
        np.testing.assert_allclose(a, b_, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("grads", [(True, True, True), (False, True, True), (True, False, False)])
@pytest.mark.parametrize("shape,groups", [((4, 6, 5, 3), 3), ((5, 6), 2), ((3, 4, 7), 4)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_group_norm_fast_path_matches_torch(grads, shape, groups, dtype):
    torch = pytest.importorskip("torch")
    import dyntorch

    rng = np.random.default_rng(11)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w, b = rng.standard_normal(c).astype(dtype), rng.standard_normal(c).astype(dtype)
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)

    def run(lib):
        ts = [lib.tensor(a, requires_grad=r) for a, r in zip((x, w, b), grads)]
        y = lib.nn.functional.group_norm(ts[0], groups, ts[1], ts[2])
        y.backward(lib.tensor(g))
        return [y.detach().numpy()] + [t.grad.numpy() for t, r in zip(ts, grads) if r]

    for a, b_ in zip(run(dyntorch), run(torch)):
        np.testing.assert_allclose(a, b_, **tol)
