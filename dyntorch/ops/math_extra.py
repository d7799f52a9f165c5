"""Less common elementwise math (``logit``, ``logaddexp``, ``xlogy``, ``hypot`` ...) composed
from the core ops, so each records its graph and supports ``create_graph`` with no new
derivative to get wrong. Values where torch defines a limit (``xlogy(0, 0) = 0``,
``sinc(0) = 1``) take a safe branch whose gradient is finite."""
from __future__ import annotations

import math

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


def logaddexp(input: Tensor, other) -> Tensor:
    """log(exp(a) + exp(b)) without overflow."""
    a, b = _t(input), _t(other, input)
    m = E.maximum(a, b).detach()
    m = E.where(E.isfinite(m), m, 0.0)  # both -inf (or an inf) must not give inf - inf
    return m + E.log(E.exp(a - m) + E.exp(b - m))


def logaddexp2(input: Tensor, other) -> Tensor:
    """log2(2**a + 2**b) without overflow."""
    ln2 = math.log(2.0)
    return logaddexp(_t(input) * ln2, _t(other, input) * ln2) / ln2


def hypot(input: Tensor, other) -> Tensor:
    """sqrt(a**2 + b**2)."""
    b = _t(other, input)
    return E.sqrt(input * input + b * b)


def xlogy(input, other) -> Tensor:
    """x * log(y), and 0 where x == 0 (even for y == 0)."""
    like = input if isinstance(input, Tensor) else other
    x, y = _t(input, like), _t(other, like)
    zero = x == 0
    safe_y = E.where(zero, 1.0, y)  # log(1) = 0 and a finite gradient on the masked side
    return E.where(zero, 0.0, x * E.log(safe_y))


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
