"""Less common elementwise math (``logit``, ``logaddexp``, ``xlogy``, ``hypot`` ...) composed
from the core ops, so each records its graph and supports ``create_graph`` with no new
derivative to get wrong. Values where torch defines a limit (``sinc(0) = 1``) take a safe
branch whose gradient is finite. ``xlogy``, ``logaddexp`` and ``hypot`` are ops of their own:
at x = 0 xlogy's value is pinned to 0 but its slope in x is still log y, which no such branch
keeps; an infinite operand of logaddexp takes all of the gradient; hypot must not overflow."""
from __future__ import annotations

import math

import numpy as np

from .._dispatch import op
from .._tensor import Tensor
from . import elementwise as E
from ._util import method


def _t(x, like: Tensor | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    from .creation import tensor

    dt = like.dtype if like is not None and like.is_floating_point() else None
    return tensor(x, dtype=dt, device=like.device if like is not None else None)


def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """log(p / (1 - p)), with ``p`` clamped to [eps, 1 - eps] when ``eps`` is given."""
    p = input if eps is None else E.clamp(input, eps, 1 - eps)
    return E.log(p / (1 - p))


@op(name="logaddexp", promote=True)
def _logaddexp(xp, a, b):
    return xp.logaddexp(a, b)  # without overflow; (-inf, -inf) gives -inf


@_logaddexp.def_derivative
def _(ns, g, a, b):
    # torch's form: an infinite operand takes all of the gradient, the other none
    with np.errstate(over="ignore", invalid="ignore"):
        return g / (1.0 + ns.exp(b - a)), g / (1.0 + ns.exp(a - b))


def logaddexp(input: Tensor, other) -> Tensor:
    """log(exp(a) + exp(b)) without overflow."""
    return _logaddexp(_t(input), _t(other, input))


def logaddexp2(input: Tensor, other) -> Tensor:
    """log2(2**a + 2**b) without overflow."""
    ln2 = math.log(2.0)
    return logaddexp(_t(input) * ln2, _t(other, input) * ln2) / ln2


@op(name="hypot", promote=True)
def _hypot(xp, a, b):
    return xp.hypot(a, b)  # no overflow of a**2 for |a| > 1.8e19 in float32


@_hypot.def_derivative
def _(ns, g, a, b, out):
    return g * a / out, g * b / out  # NaN at the origin, as torch


def hypot(input: Tensor, other) -> Tensor:
    """sqrt(a**2 + b**2)."""
    return _hypot(input, _t(other, input))


@op(name="xlogy", promote=True)
def _xlogy(xp, x, y):
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0), log(-1): as torch
        r = x * xp.log(y)
    return xp.where((x == 0) & (y == y), xp.zeros((), r.dtype), r)  # 0 log 0 = 0; NaN y stays


@_xlogy.def_derivative
def _(ns, g, x, y):
    # d/dx x log y = log y, also at x = 0 (where the value is pinned to 0 but the slope is
    # not), except where y <= 0 there; d/dy = x / y (0 / 0 = NaN at x = y = 0, as torch)
    with np.errstate(divide="ignore", invalid="ignore"):
        return ns.zero_where(g * ns.log(y), (x == 0) & (y <= 0)), g * x / y


def xlogy(input, other) -> Tensor:
    """x * log(y), and 0 where x == 0 (even for y == 0; NaN where y is NaN)."""
    like = input if isinstance(input, Tensor) else other
    return _xlogy(_t(input, like), _t(other, like))


def sinc(input: Tensor) -> Tensor:
    """sin(pi x) / (pi x), and 1 at x == 0."""
    zero = input == 0
    px = E.where(zero, 1.0, input) * math.pi
    return E.where(zero, 1.0, E.sin(px) / px)


def deg2rad(input: Tensor) -> Tensor:
    return input * (math.pi / 180.0)


def rad2deg(input: Tensor) -> Tensor:
    return input * (180.0 / math.pi)


def frac(input: Tensor) -> Tensor:
    """The fractional part, x - trunc(x), with the sign of x."""
    return input - E.trunc(input)


def copysign(input: Tensor, other) -> Tensor:
    """|a| with the sign of b (sign bit, so -0.0 counts as negative)."""
    b = _t(other, input)
    return E.abs(input) * E.where(E.signbit(b), -1.0, 1.0)


def float_power(input, exponent) -> Tensor:
    """input ** exponent computed in float64, as torch does."""
    from .. import _backend as B

    base = _t(input).to(B.float64)
    exp = exponent.to(B.float64) if isinstance(exponent, Tensor) else float(exponent)
    return base ** exp


PUBLIC = {f.__name__: f for f in (logit, logaddexp, logaddexp2, hypot, xlogy, sinc, deg2rad,
                                   rad2deg, frac, copysign, float_power)}
for _name, _fn in PUBLIC.items():
    method(_name, _fn)
