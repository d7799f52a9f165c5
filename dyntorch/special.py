"""``dyntorch.special``: torch.special's functions, each with its derivative.

The special functions themselves are ops in ``dyntorch.ops.special``; the rest are the
everyday ops under the names scipy.special made familiar (``expit``, ``gammaln``, ``psi``).
"""
from __future__ import annotations

from ._tensor import Tensor
from .ops import activation as _act
from .ops import elementwise as _E
from .ops import math_extra as _M
from .ops import reduce as _R
from .ops.special import (
    digamma,
    entr,
    erfc,
    erfcx,
    erfinv,
    i0,
    i0e,
    i1,
    i1e,
    log_ndtr,
    ndtr,
    ndtri,
    polygamma,
    spherical_bessel_j0,
    xlog1py,
    zeta,
)
from .ops.special import igamma as gammainc
from .ops.special import igammac as gammaincc
from .ops.special import lgamma as gammaln
from .ops.special import mvlgamma as _mvlgamma

__all__ = ["digamma", "entr", "erf", "erfc", "erfcx", "erfinv", "exp2", "expit", "expm1",
           "gammainc", "gammaincc", "gammaln", "i0", "i0e", "i1", "i1e", "log1p", "log_ndtr",
           "log_softmax", "logit", "logsumexp", "multigammaln", "ndtr", "ndtri", "polygamma",
           "psi", "round", "sinc", "softmax", "spherical_bessel_j0", "xlog1py", "xlogy",
           "zeta"]

psi = digamma


def _out(out, r: Tensor) -> Tensor:
    return r if out is None else out.copy_(r)


def expit(input: Tensor, *, out=None) -> Tensor:
    """The logistic sigmoid 1 / (1 + e^-x) (``torch.special.expit``)."""
    return _out(out, _E.FLOAT_UNARY["sigmoid"](input))


def logit(input: Tensor, eps: float | None = None, *, out=None) -> Tensor:
    """log(p / (1 - p)), ``p`` clamped to [eps, 1 - eps] when ``eps`` is given."""
    return _out(out, _M.logit(input, eps))


def erf(input: Tensor, *, out=None) -> Tensor:
    return _E.FLOAT_UNARY["erf"](input, out=out)


def exp2(input: Tensor, *, out=None) -> Tensor:
    return _E.FLOAT_UNARY["exp2"](input, out=out)


def expm1(input: Tensor, *, out=None) -> Tensor:
    return _E.FLOAT_UNARY["expm1"](input, out=out)


def log1p(input: Tensor, *, out=None) -> Tensor:
    return _E.FLOAT_UNARY["log1p"](input, out=out)


def round(input: Tensor, *, decimals: int = 0, out=None) -> Tensor:  # noqa: A001
    return _E.round(input, decimals=decimals, out=out)


def sinc(input: Tensor, *, out=None) -> Tensor:
    """sin(pi x) / (pi x), and 1 at 0."""
    return _out(out, _M.sinc(input))


def xlogy(input, other, *, out=None) -> Tensor:
    """x * log(y), and 0 where x == 0."""
    return _out(out, _M.xlogy(input, other))


def multigammaln(input: Tensor, p: int, *, out=None) -> Tensor:
    """The log of the multivariate gamma function (``torch.special.multigammaln``)."""
    return _mvlgamma(input, p, out=out)


def softmax(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    return _act.softmax(input, dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    return _act.log_softmax(input, dim, dtype=dtype)


def logsumexp(input: Tensor, dim, keepdim: bool = False, *, out=None) -> Tensor:
    return _out(out, _R.logsumexp(input, dim, keepdim))
