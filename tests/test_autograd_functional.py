"""autograd.functional (vjp, jvp, jacobian, hessian, vhp, hvp) against torch 2.13, float64."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch
from dyntorch.autograd import functional as F


def close(a, b, tol=1e-10):
    if isinstance(b, tuple):
        assert isinstance(a, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            close(x, y, tol)
        return
    assert tuple(a.shape) == tuple(b.shape)
    np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().numpy(), rtol=tol, atol=tol)


def fns(base):
    def f1(x):
        return (x.exp() * x.sin()).sum()

    def f2(x, w):
        return (x * w).tanh(), (x + w).sigmoid().sum()

    def f3(x, w):
        return (x * x * w).sum() + (w.exp() * x).sum()

    return f1, f2, f3


@pytest.fixture
def arrs(rng):
    return rng.standard_normal((2, 3)), rng.standard_normal((2, 3))


def make(torch, arrs, device="cpu"):
    d = tuple(dyntorch.tensor(a, dtype=dyntorch.float64, device=device) for a in arrs)
    t = tuple(torch.tensor(a, dtype=torch.float64) for a in arrs)
    return d, t


def test_jacobian(torch, arrs, device):
    d, t = make(torch, arrs, device)
    f2d, f2t = fns(dyntorch)[1], fns(torch)[1]
    close(F.jacobian(f2d, d), torch.autograd.functional.jacobian(f2t, t))
    g = lambda base: (lambda x: x.exp() * 2)  # noqa: E731  single input, single output
    close(F.jacobian(g(dyntorch), d[0]), torch.autograd.functional.jacobian(g(torch), t[0]))


def test_hessian(torch, arrs):
    d, t = make(torch, arrs)
    f1d, f1t = fns(dyntorch)[0], fns(torch)[0]
    close(F.hessian(f1d, d[0]), torch.autograd.functional.hessian(f1t, t[0]))
    f3d, f3t = fns(dyntorch)[2], fns(torch)[2]
    close(F.hessian(f3d, d), torch.autograd.functional.hessian(f3t, t))


def test_vjp_jvp(torch, arrs, rng):
    d, t = make(torch, arrs)
    f2d, f2t = fns(dyntorch)[1], fns(torch)[1]
    va = (rng.standard_normal((2, 3)), rng.standard_normal(()))
    vd = tuple(dyntorch.tensor(v, dtype=dyntorch.float64) for v in va)
    vt = tuple(torch.tensor(v, dtype=torch.float64) for v in va)
    close(F.vjp(f2d, d, vd), torch.autograd.functional.vjp(f2t, t, vt))
    ua = (rng.standard_normal((2, 3)), rng.standard_normal((2, 3)))
    ud = tuple(dyntorch.tensor(u, dtype=dyntorch.float64) for u in ua)
    ut = tuple(torch.tensor(u, dtype=torch.float64) for u in ua)
    close(F.jvp(f2d, d, ud), torch.autograd.functional.jvp(f2t, t, ut))


def test_vhp_hvp(torch, arrs, rng):
    d, t = make(torch, arrs)
    f3d, f3t = fns(dyntorch)[2], fns(torch)[2]
    va = (rng.standard_normal((2, 3)), rng.standard_normal((2, 3)))
    vd = tuple(dyntorch.tensor(v, dtype=dyntorch.float64) for v in va)
    vt = tuple(torch.tensor(v, dtype=torch.float64) for v in va)
    close(F.vhp(f3d, d, vd), torch.autograd.functional.vhp(f3t, t, vt))
    close(F.hvp(f3d, d, vd), torch.autograd.functional.hvp(f3t, t, vt))


def test_inputs_untouched_and_unused_input_is_zero(torch):
    x = dyntorch.ones(2, dtype=dyntorch.float64, requires_grad=True)
    y = dyntorch.ones(2, dtype=dyntorch.float64)
    (jx, jy) = F.jacobian(lambda a, b: a * 3, (x, y))
    assert x.grad is None and not jx.requires_grad
    np.testing.assert_allclose(jx.numpy(), 3 * np.eye(2))
    np.testing.assert_allclose(jy.numpy(), np.zeros((2, 2)))
    with pytest.raises(RuntimeError, match="independent of input 1"):
        F.jacobian(lambda a, b: a * 3, (x, y), strict=True)


def test_create_graph_allows_differentiating_the_result(torch, rng):
    arr = rng.standard_normal(3)
    xd = dyntorch.tensor(arr, dtype=dyntorch.float64, requires_grad=True)
    xt = torch.tensor(arr, dtype=torch.float64, requires_grad=True)
    jd = F.jacobian(lambda a: a.tanh(), xd, create_graph=True)
    jt = torch.autograd.functional.jacobian(lambda a: a.tanh(), xt, create_graph=True)
    jd.sum().backward()
    jt.sum().backward()
    close(xd.grad, xt.grad)


def test_bad_arguments():
    with pytest.raises(TypeError, match="Tensor or a tuple of Tensors"):
        F.jacobian(lambda a: a, [1.0])
    x = dyntorch.ones(2, dtype=dyntorch.float64)
    with pytest.raises(RuntimeError, match="single element"):
        F.vjp(lambda a: a * 2, x)
    with pytest.raises(RuntimeError, match="shape"):
        F.vjp(lambda a: a * 2, x, dyntorch.ones(3, dtype=dyntorch.float64))
