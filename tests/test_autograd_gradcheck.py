"""gradcheck / gradgradcheck: pass on correct gradients, fail (naming what) on wrong ones."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch
from dyntorch.autograd import Function, GradcheckError, gradcheck, gradgradcheck


def inp(rng, *shape, device="cpu"):
    return dyntorch.tensor(rng.standard_normal(shape), dtype=dyntorch.float64, device=device,
                           requires_grad=True)


class GoodSquare(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g


class WrongSquare(Function):
    """Deliberately wrong: forgets the factor 2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return x * g


class WrongSecondInput(Function):
    """Right for input 0, wrong sign for input 1."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b, a + b

    @staticmethod
    def backward(ctx, g1, g2):
        a, b = ctx.saved_tensors
        return g1 * b + g2, g1 * a - g2


def test_gradcheck_passes_on_builtin_ops(rng, device):
    x, w = inp(rng, 3, 4, device=device), inp(rng, 4, device=device)
    assert gradcheck(lambda a, b: ((a * b).tanh() + a.exp() * b).sum(1), (x, w))
    assert gradcheck(lambda a: (a.sin(), a.sigmoid() * 3), (x,))


def test_gradcheck_passes_on_correct_function(rng):
    assert gradcheck(GoodSquare.apply, (inp(rng, 5),))


def test_gradcheck_fails_on_wrong_function(rng):
    x = inp(rng, 4)
    with pytest.raises(GradcheckError,
                       match="Jacobian mismatch for output 0 with respect to input 0"):
        gradcheck(WrongSquare.apply, (x,))
    assert gradcheck(WrongSquare.apply, (x,), raise_exception=False) is False


def test_gradcheck_names_the_wrong_output_and_input(rng):
    a, b = inp(rng, 3), inp(rng, 3)
    with pytest.raises(GradcheckError, match="output 1 with respect to input 1") as ei:
        gradcheck(WrongSecondInput.apply, (a, b))
    msg = str(ei.value)
    assert "numerical:" in msg and "analytical:" in msg


def test_gradcheck_with_non_tensor_and_frozen_inputs(rng):
    x = inp(rng, 3)
    c = dyntorch.tensor(rng.standard_normal(3), dtype=dyntorch.float64)  # no grad
    assert gradcheck(lambda a, k, b: (a * k + b).exp(), (x, 2.5, c))


def test_gradcheck_requires_float64_and_a_grad_input(rng):
    x32 = dyntorch.randn(3, requires_grad=True)
    with pytest.raises(ValueError, match="double precision"):
        gradcheck(lambda a: a * 2, (x32,))
    with pytest.raises(ValueError, match="at least one input tensor to require gradient"):
        gradcheck(lambda a: a * 2, (dyntorch.ones(2, dtype=dyntorch.float64),))


def test_gradcheck_agrees_with_torch_on_the_same_wrong_function(torch, rng):
    class TWrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return x * g

    arr = rng.standard_normal(4)
    xt = torch.tensor(arr, dtype=torch.float64, requires_grad=True)
    xd = dyntorch.tensor(arr, dtype=dyntorch.float64, requires_grad=True)
    t_ok = torch.autograd.gradcheck(TWrong.apply, (xt,), raise_exception=False)
    d_ok = gradcheck(WrongSquare.apply, (xd,), raise_exception=False)
    assert t_ok is False and d_ok is False
    assert torch.autograd.gradcheck(torch.tanh, (xt,))
    assert gradcheck(dyntorch.tanh, (xd,))


def test_gradcheck_detects_nondeterministic_backward(rng):
    calls = []

    class Noisy(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            return g * (1 + 1e-7 * len(calls))

    with pytest.raises(GradcheckError, match="not reentrant"):
        gradcheck(Noisy.apply, (inp(rng, 2),))
    assert gradcheck(Noisy.apply, (inp(rng, 2),), nondet_tol=1e-3)


def test_gradgradcheck(rng):
    x, w = inp(rng, 3), inp(rng, 3)
    assert gradgradcheck(lambda a, b: (a * b).tanh() * a.exp(), (x, w))
    assert gradgradcheck(GoodSquare.apply, (x,))


def test_gradgradcheck_fails_on_wrong_double_backward(rng):
    class WrongDouble(Function):
        """First derivative right (2x), but written with a detached x: 2nd order is lost."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return 2 * x.detach() * g

    x = inp(rng, 3)
    assert gradcheck(WrongDouble.apply, (x,))
    with pytest.raises(GradcheckError, match="Jacobian mismatch"):
        gradgradcheck(WrongDouble.apply, (x,))


def test_numerical_jacobian_layout_matches_torch(torch, rng):
    # a function whose Jacobian is not symmetric, so a transposed layout would show
    arr = rng.standard_normal(3)
    m = rng.standard_normal((2, 3))
    xd = dyntorch.tensor(arr, dtype=dyntorch.float64, requires_grad=True)
    md = dyntorch.tensor(m, dtype=dyntorch.float64)

    class Lin(Function):
        @staticmethod
        def forward(ctx, x):
            return (md * x).sum(1)

        @staticmethod
        def backward(ctx, g):
            return (md.T * g).T.sum(0) * 0  # wrong on purpose

    with pytest.raises(GradcheckError) as ei:
        gradcheck(Lin.apply, (xd,))
    from dyntorch.autograd.gradcheck import _numerical

    num = _numerical(Lin.apply, (xd,), [0], 1e-6)[0][0]
    assert num.shape == (3, 2)  # rows: input elements, columns: output elements (torch's)
    np.testing.assert_allclose(num, m.T, atol=1e-6)
    assert "numerical" in str(ei.value)
