"""logit, logaddexp(2), hypot, xlogy, sinc, deg2rad, rad2deg, frac, copysign, float_power:
values and gradients (first and second order) against torch 2.13.0 in float64."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch

reference = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
A = RNG.uniform(-3, 3, (4, 5))
B = RNG.uniform(-3, 3, (4, 5))
P = RNG.uniform(0.05, 0.95, (4, 5))
POS = RNG.uniform(0.1, 3, (4, 5))

CASES = [
    ("logit", lambda t, a, b: t.logit(a), P, None),
    ("logit_eps", lambda t, a, b: t.logit(a, eps=0.2), P, None),
    ("logit_method", lambda t, a, b: a.logit(), P, None),
    ("logaddexp", lambda t, a, b: t.logaddexp(a, b), A, B),
    ("logaddexp_big", lambda t, a, b: t.logaddexp(a * 400, b * 400), A, B),
    ("logaddexp2", lambda t, a, b: t.logaddexp2(a, b), A, B),
    ("hypot", lambda t, a, b: t.hypot(a, b), A, B),
    ("xlogy", lambda t, a, b: t.xlogy(a, b), A, POS),
    ("xlogy_zero_x", lambda t, a, b: t.xlogy(a * (a > 0), b), A, POS),
    ("sinc", lambda t, a, b: t.sinc(a), A, None),
    ("deg2rad", lambda t, a, b: t.deg2rad(a), A, None),
    ("rad2deg", lambda t, a, b: a.rad2deg(), A, None),
    ("frac", lambda t, a, b: t.frac(a), A, None),
    ("copysign", lambda t, a, b: t.copysign(a, b), A, B),
    ("float_power", lambda t, a, b: t.float_power(a, 2.5), POS, None),
    ("float_power_tensor", lambda t, a, b: t.float_power(a, b), POS, B),
]


def _run(lib, fn, a0, b0):
    a = lib.tensor(a0, requires_grad=True)
    b = lib.tensor(b0, requires_grad=True) if b0 is not None else None
    out = fn(lib, a, b)
    w = lib.tensor(np.linspace(-1, 1, out.numel()).reshape(tuple(out.shape)))
    ins = [a] + ([b] if b is not None else [])
    # copysign: torch sends zeros to `other`, we send None (it only reads its sign bit)
    grads = lib.autograd.grad((out * w).sum(), ins, create_graph=True, allow_unused=True)
    used = [(x, g) for x, g in zip(ins, grads) if g is not None and g.requires_grad]
    second = [None] * len(ins)
    if used:
        s2 = lib.autograd.grad(sum((g * g).sum() for _, g in used), ins, allow_unused=True)
        second = list(s2)
    as_np = lambda gs: [None if g is None else g.detach().numpy() for g in gs]
    return out.detach().numpy(), as_np(grads), as_np(second)


def _same(g, r, rtol, atol):
    if g is None or r is None:  # an unused input: None on one side, zeros on the other
        assert np.allclose(g if g is not None else 0.0, 0.0)
        assert np.allclose(r if r is not None else 0.0, 0.0)
        return
    if np.isnan(r).any() and not np.isnan(g).any():
        return  # torch's second derivative of logaddexp overflows to nan for big inputs
    np.testing.assert_allclose(g, r, rtol=rtol, atol=atol)


@pytest.mark.parametrize(("fn", "a0", "b0"), [pytest.param(f, a, b, id=i) for i, f, a, b in CASES])
def test_matches_torch(fn, a0, b0):
    ours, ref = _run(dyntorch, fn, a0, b0), _run(reference, fn, a0, b0)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-12, atol=1e-12)
    for g, r in zip(ours[1], ref[1]):
        _same(g, r, 1e-10, 1e-12)
    for g, r in zip(ours[2], ref[2]):
        _same(g, r, 1e-9, 1e-10)


def test_limits_like_torch():
    for lib in (dyntorch, reference):
        assert lib.xlogy(lib.tensor([0.0]), lib.tensor([0.0])).item() == 0.0
        assert lib.sinc(lib.tensor([0.0])).item() == 1.0
        assert lib.logaddexp(lib.tensor([-float("inf")]), lib.tensor([-float("inf")])).item() \
            == -float("inf")
    assert dyntorch.float_power(dyntorch.tensor([2.0]), 2).dtype == dyntorch.float64
    x = dyntorch.tensor([0.0, 1.0], requires_grad=True)
    dyntorch.xlogy(x, dyntorch.tensor([0.0, 2.0])).sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
