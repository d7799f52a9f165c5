"""Reductions against torch 2.13 (float64): values, gradients (ties, zeros), dims, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
from _opcheck import check, check_double, finite_diff

import dyntorch

R = np.random.default_rng(1)
X = R.standard_normal((3, 4, 5))


@pytest.mark.parametrize("name", ["sum", "mean", "nansum", "nanmean", "logsumexp", "amax",
                                  "amin"])
@pytest.mark.parametrize("dim,keepdim", [(None, False), (1, False), (-1, True), ((0, 2), False),
                                         ((0, 2), True)])
def test_simple_reductions(torch, device, name, dim, keepdim):
    if dim is None and name == "logsumexp":
        dim = (0, 1, 2)
    if dim is None:
        check(torch, lambda m, x: getattr(m, name)(x), X, device=device)
        check(torch, lambda m, x: getattr(x, name)(), X, device=device)
    else:
        check(torch, lambda m, x: getattr(m, name)(x, dim, keepdim), X, device=device)
        check(torch, lambda m, x: getattr(x, name)(dim, keepdim=keepdim), X, device=device)


def test_sum_of_ints_and_bools(torch, device):
    i = R.integers(-5, 5, (3, 4))
    check(torch, lambda m, x: (x.sum(), x.sum(0), (x > 0).sum(1), x.sum(dtype=m.float64)), i,
          device=device)
    check(torch, lambda m, x: x.prod(1), i, device=device)


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("kw", [{}, {"dim": 1}, {"dim": (0, 2), "keepdim": True},
                                {"dim": -1, "unbiased": False}, {"dim": 1, "correction": 0},
                                {"dim": 2, "correction": 2}, {"unbiased": False}])
def test_var_std(torch, device, name, kw):
    check(torch, lambda m, x: getattr(m, name)(x, **kw), X, device=device)
    check(torch, lambda m, x: getattr(x, name)(**kw), X, device=device)


def test_var_mean_std_mean(torch, device):
    check(torch, lambda m, x: m.var_mean(x, 1), X, device=device)
    check(torch, lambda m, x: m.std_mean(x, (0, 1), keepdim=True), X, device=device)


def test_std_gradient_at_zero_spread_is_zero(torch):
    check(torch, lambda m, x: x.std(1), np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 4.0]]))


@pytest.mark.parametrize("zeros", [0, 1, 2])
def test_prod_with_zeros(torch, device, zeros):
    a = R.uniform(0.5, 2.0, (3, 5)) * R.choice([-1, 1], (3, 5))
    a[0, :zeros] = 0.0
    a[2, 1:1 + zeros] = 0.0
    check(torch, lambda m, x: x.prod(1), a, device=device)
    check(torch, lambda m, x: m.prod(x, 0, keepdim=True), a, device=device)
    check(torch, lambda m, x: x.prod(), a, device=device)


def test_prod_second_order(torch):
    check_double(torch, lambda m, x: x.prod(1), R.uniform(0.5, 2, (2, 4)))


def test_max_min_ties_share_gradient(torch, device):
    a = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [5.0, -1.0, 5.0, 4.0]])
    for name in ["max", "min", "amax", "amin"]:
        check(torch, lambda m, x: getattr(m, name)(x), a, device=device)
        check(torch, lambda m, x: getattr(x, name)(), a, device=device)
    check(torch, lambda m, x: m.amax(x, 1), a, device=device)
    check(torch, lambda m, x: x.amin(0, keepdim=True), a, device=device)
    check(torch, lambda m, x: m.amax(x, (0, 1)), a, device=device)


@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim,keepdim", [(0, False), (1, True), (-1, False), (2, True)])
def test_max_min_with_dim(torch, device, name, dim, keepdim):
    out = check(torch, lambda m, x: getattr(m, name)(x, dim, keepdim), X, device=device)
    assert out.values is out[0] and out.indices is out[1]
    check(torch, lambda m, x: getattr(x, name)(dim=dim, keepdim=keepdim), X, device=device)


def test_max_min_binary_and_ints(torch, device):
    check(torch, lambda m, x, y: (m.max(x, y), m.min(x, y)), X, R.standard_normal(5),
          device=device)
    i = R.integers(0, 9, (4, 6))
    check(torch, lambda m, x: (x.max(), x.min(1), m.max(x, 0, keepdim=True)), i, device=device)


def test_argmax_argmin(torch, device):
    check(torch, lambda m, x: (m.argmax(x), m.argmin(x), x.argmax(1), x.argmin(-1, True),
                               m.argmax(x, 2, keepdim=True)), X, device=device)
    check(torch, lambda m, x: (x.argmax(keepdim=True), x.argmin()), X[0], device=device)


def test_logsumexp_is_stable(torch, device):
    a = np.array([[1000.0, 1000.5, 999.0], [-1000.0, -1001.0, -1000.5], [0.0, 1.0, -np.inf]])
    check(torch, lambda m, x: m.logsumexp(x, 1), a, device=device)
    check(torch, lambda m, x: x.logsumexp(0, keepdim=True), a[:2], device=device)
    b = np.array([[-np.inf, -np.inf], [0.0, 1.0]])
    check(torch, lambda m, x: m.logsumexp(x, 1), b, device=device, grad=False)


@pytest.mark.parametrize("p", [2, 1, math.inf, -math.inf, 3, 0.5, "fro", 0])
@pytest.mark.parametrize("dim", [None, 1, (0, 2)])
def test_norm(torch, device, p, dim):
    if p in (math.inf, -math.inf) and dim is None:
        a = np.array([[1.0, -3.0, 3.0], [0.5, 2.0, -3.0]])
        check(torch, lambda m, x: m.norm(x, p), a, device=device)
        return
    if p == "fro" and dim == 1:
        dim = (0, 1)
    check(torch, lambda m, x: m.norm(x, p, dim), X, device=device)
    check(torch, lambda m, x: x.norm(p, dim, keepdim=True), X, device=device)


def test_norm_gradient_at_zero_is_zero(torch, device):
    z = np.zeros((2, 3))
    z[1] = [1.0, 2.0, 2.0]
    check(torch, lambda m, x: x.norm(dim=1), z, device=device)
    check(torch, lambda m, x: m.linalg.vector_norm(x, 3, dim=1), z, device=device)
    check(torch, lambda m, x: x.norm(), np.zeros(4), device=device)


def test_linalg_norms(torch, device):
    A = R.standard_normal((3, 4))
    check(torch, lambda m, x: m.linalg.norm(x), A, device=device)
    check(torch, lambda m, x: m.linalg.vector_norm(x, 1, dim=-1), A, device=device)
    check(torch, lambda m, x: m.linalg.vector_norm(x, math.inf), A, device=device)
    for ord_ in ["fro", 1, -1, math.inf, -math.inf]:
        check(torch, lambda m, x: m.linalg.matrix_norm(x, ord_), A, device=device)
        check(torch, lambda m, x: m.linalg.norm(x, ord_), A, device=device)
    check(torch, lambda m, x: m.linalg.matrix_norm(x, keepdim=True), X, device=device)
    check(torch, lambda m, x: m.dist(x, x * 0.5 + 1), A, device=device)


def test_cumsum_cumprod(torch, device):
    check(torch, lambda m, x: (m.cumsum(x, 1), x.cumsum(-1), x.cumsum(0)), X, device=device)
    a = R.uniform(0.5, 1.5, (3, 5))
    check(torch, lambda m, x: (m.cumprod(x, 1), x.cumprod(0)), a, device=device)
    a[0, 2] = 0.0
    a[1, 1] = a[1, 3] = 0.0
    check(torch, lambda m, x: m.cumprod(x, 1), a, device=device)
    i = R.integers(0, 4, (6,))
    check(torch, lambda m, x: (x.cumsum(0), (x > 1).cumsum(0)), i, device=device)


def test_cummax_cummin_logcumsumexp(torch, device):
    a = R.standard_normal((3, 6))
    check(torch, lambda m, x: (m.cummax(x, 1), m.cummin(x, 0)), a, device=device)
    check(torch, lambda m, x: m.logcumsumexp(x, 1), a, device=device)


def test_all_any_count_nonzero(torch, device):
    b = R.random((3, 4, 2)) > 0.3
    check(torch, lambda m, x: (m.all(x), m.any(x), x.all(1), x.any(-1, keepdim=True),
                               m.all(x, 0)), b, device=device)
    i = R.integers(0, 3, (3, 4))
    check(torch, lambda m, x: (m.count_nonzero(x), m.count_nonzero(x, 1), x.count_nonzero(),
                               x.all(), x.any(0)), i, device=device)


def test_median_kthvalue_mode(torch, device):
    a = R.permutation(24).astype(float).reshape(4, 6) + 0.5
    check(torch, lambda m, x: m.median(x), a, device=device)
    check(torch, lambda m, x: (m.median(x, 1), x.median(0, keepdim=True)), a, device=device)
    check(torch, lambda m, x: (m.kthvalue(x, 2, 1), x.kthvalue(3, 0, True)), a, device=device)
    b = np.array([[1.0, 2.0, 2.0, 3.0], [4.0, 4.0, 1.0, 1.0]])
    check(torch, lambda m, x: m.mode(x, 1), b, device=device)


def test_aminmax(torch, device):
    check(torch, lambda m, x: m.aminmax(x), X, device=device, grad=False)
    check(torch, lambda m, x: m.aminmax(x, dim=1, keepdim=True), X, device=device, grad=False)


def test_reduction_errors():
    x = dyntorch.ones(2, 3)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.sum(2)
    with pytest.raises(RuntimeError, match="floating point"):
        dyntorch.tensor([1, 2]).var()
    with pytest.raises(RuntimeError, match="mean"):
        dyntorch.tensor([1, 2]).mean()
    with pytest.raises(RuntimeError, match="numel"):
        dyntorch.ones(0).max()
    with pytest.raises(RuntimeError, match="multiple times"):
        x.sum((0, 0))


def test_second_order_reductions(torch):
    check_double(torch, lambda m, x: x.sum(1) ** 2, X[0])
    check_double(torch, lambda m, x: x.var(1), X[0])
    check_double(torch, lambda m, x: m.logsumexp(x, 1), X[0])
    check_double(torch, lambda m, x: x.norm(dim=1), X[0])
    check_double(torch, lambda m, x: x.max(1).values * x.sum(1), X[0])
    check_double(torch, lambda m, x: x.cumsum(1) ** 2, X[0])


def test_finite_differences():
    finite_diff(lambda m, x: x.std(1) + x.logsumexp(1), X[0])
    finite_diff(lambda m, x: x.prod(0), R.uniform(0.5, 2.0, (3, 2)))
    finite_diff(lambda m, x: x.cumprod(1), R.uniform(0.5, 2.0, (2, 4)))


def test_trace_diff(torch, device):
    check(torch, lambda m, x: (m.trace(x[0]), x[1, :, :4].trace()), X, device=device)
    check(torch, lambda m, x: (m.diff(x), x.diff(2, 1), m.diff(x, dim=0, prepend=x[:1] * 2,
                                                              append=x[-1:]), x.diff(n=5)),
          X, device=device)


@pytest.mark.parametrize("interp", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile(torch, device, interp):
    a = R.standard_normal((4, 7))
    check(torch, lambda m, x: (m.quantile(x, 0.3, interpolation=interp),
                               x.quantile(0.75, 1, keepdim=True, interpolation=interp),
                               m.quantile(x, m.tensor([0.1, 0.5, 1.0], dtype=x.dtype), dim=0,
                                          interpolation=interp),
                               m.quantile(x, m.tensor([0.25, 0.5], dtype=x.dtype),
                                          interpolation=interp)), a, device=device)


def test_trapezoid(torch, device):
    y, xs = R.standard_normal((3, 5)), np.sort(R.standard_normal(5))
    check(torch, lambda m, a, b: (m.trapezoid(a), m.trapezoid(a, dx=0.5, dim=0),
                                  m.trapezoid(a, b), m.trapz(a, b),
                                  m.cumulative_trapezoid(a), m.cumulative_trapezoid(a, b),
                                  m.cumulative_trapezoid(a, dx=2.0, dim=0)), y, xs,
          device=device)


@pytest.mark.parametrize("interp", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_nanquantile(torch, device, interp):
    a = R.standard_normal((4, 7))
    a[0, 2] = a[0, 5] = a[2, 0] = np.nan
    a[3] = np.nan
    check(torch, lambda m, x: (m.nanquantile(x, 0.3, 1, interpolation=interp),
                               x.nanquantile(0.8, 1, keepdim=True, interpolation=interp),
                               m.nanquantile(x, m.tensor([0.0, 0.5, 1.0], dtype=x.dtype), dim=1,
                                             interpolation=interp),
                               m.nanquantile(x[:3], 0.4, interpolation=interp)), a,
          device=device)
