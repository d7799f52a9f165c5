"""Activations: gelu, silu, softplus, leaky_relu, elu, hardtanh, softmax, log_softmax,
logsigmoid, mish ... each one fused op whose derivative is written once with ``ns``.

relu, sigmoid and tanh live in ``elementwise.py``.
"""
from __future__ import annotations

import math

from .. import _backend as B
from .._dispatch import op
from .._tensor import Tensor
from ._ns import erf_array
from ._util import method, norm_dim

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


def _sigmoid(ns, z):
    """Overflow-free logistic function written with tanh (works for arrays and tensors)."""
    return 0.5 + 0.5 * ns.tanh(0.5 * z)


def _fsig(xp, z):
    return 0.5 + 0.5 * xp.tanh(0.5 * z)


# ----------------------------------------------------------------------------- gelu
@op(name="gelu", aux=("cdf",))
def _gelu(xp, a, approximate="none"):
    """(gelu(a), cdf): the Gaussian CDF (or the tanh value) is kept for backward, because
    erf is by far the slowest part on NumPy and backward would need it again."""
    if approximate == "tanh":
        if not a.ndim:
            t = xp.tanh(_SQRT_2_PI * (a + _GELU_C * a * a * a))
            return 0.5 * a * (1.0 + t), t
        t = a * a  # sqrt(2/pi) * a * (1 + c a^2), then tanh, all in one new array
        t *= _GELU_C * _SQRT_2_PI
        t += _SQRT_2_PI
        t *= a
        xp.tanh(t, out=t)
        y = t + 1.0
        y *= a
        y *= 0.5
        return y, t
    cdf = erf_array(xp, a * _INV_SQRT2)  # a new array: finish the CDF in place
    cdf += 1.0
    cdf *= 0.5
    return a * cdf, cdf


def _gelu_grad_arrays(xp, g, a, cdf):
    """Plain-path gelu gradient g * (cdf + a * pdf(a)), the ``ns`` formula below computed
    in place on one new array (fewer temporaries: GELU's backward is memory-bound)."""
    p = a * a
    p *= -0.5
    xp.exp(p, out=p)
    p *= a
    p *= _INV_SQRT_2PI
    p += cdf
    if p.dtype == g.dtype:
        p *= g
        return p
    return g * p


def _gelu_tanh_grad_arrays(xp, g, a, t):
    """Plain-path tanh-gelu gradient, the ``ns`` formula below on two new arrays in 11 passes
    (bench_nn's char transformer): g * (0.5 (1 + t) + 0.5 a (1 - t^2) sqrt(2/pi) (1 + 3 c a^2))."""
    d = a * a  # the second term, 0.5 a sqrt(2/pi) (1 + 3 c a^2) (1 - t^2), constants folded
    d *= 1.5 * _GELU_C * _SQRT_2_PI
    d += 0.5 * _SQRT_2_PI
    d *= a
    s = t * t
    xp.subtract(1.0, s, out=s)
    d *= s
    xp.multiply(t, 0.5, out=s)  # plus the first, 0.5 (1 + t)
    d += s
    d += 0.5
    d *= g
    return d


@_gelu.def_derivative
def _(ns, g, a, cdf, approximate="none"):
    # ``cdf``: the auxiliary output (the tanh value when approximate="tanh")
    plain = ns.xp is not None  # under create_graph recompute, so the formula has graph
    if approximate == "tanh":
        if plain and a.ndim and g.dtype == a.dtype:
            return _gelu_tanh_grad_arrays(ns.xp, g, a, cdf)
        t = cdf if plain else ns.tanh(_SQRT_2_PI * (a + _GELU_C * a * a * a))
        return g * (0.5 * (1.0 + t) +
                    0.5 * a * (1.0 - t * t) * _SQRT_2_PI * (1.0 + 3.0 * _GELU_C * a * a))
    if plain and a.ndim:
        return _gelu_grad_arrays(ns.xp, g, a, cdf)
    cdf = cdf if plain else 0.5 * (1.0 + ns.erf(a * _INV_SQRT2))
    return g * (cdf + a * ns.exp(-0.5 * a * a) * _INV_SQRT_2PI)


# ----------------------------------------------------------------------------- silu / mish
@op(name="silu")
def _silu(xp, a):
    return a * _fsig(xp, a)


@_silu.def_derivative
def _(ns, g, a):
    s = _sigmoid(ns, a)
    return g * (s * (1.0 + a * (1.0 - s)))


def _softplus_arr(xp, a):
    return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))


@op(name="mish")
def _mish(xp, a):
    return a * xp.tanh(_softplus_arr(xp, a))


@_mish.def_derivative
def _(ns, g, a):
    sp = ns.maximum(a, 0.0 * a) + ns.log1p(ns.exp(-ns.abs(a)))
    t = ns.tanh(sp)
    return g * (t + a * _sigmoid(ns, a) * (1.0 - t * t))


# ----------------------------------------------------------------------------- softplus
@op(name="softplus")
def _softplus(xp, a, beta=1.0, threshold=20.0):
    z = a * beta
    return xp.where(z > threshold, a, _softplus_arr(xp, z) / beta).astype(a.dtype, copy=False)


@_softplus.def_derivative
def _(ns, g, a, beta=1.0, threshold=20.0):
    z = a * beta
    return ns.where(z > threshold, g, g * _sigmoid(ns, z))


@op(name="log_sigmoid", backward_name="LogSigmoidBackward0")
def _logsigmoid(xp, a):
    return xp.minimum(a, 0) - xp.log1p(xp.exp(-xp.abs(a)))


@_logsigmoid.def_derivative
def _(ns, g, a):
    return g * _sigmoid(ns, -a)


# ----------------------------------------------------------------------------- piecewise
@op(name="leaky_relu")
def _leaky_relu(xp, a, negative_slope=0.01):
    return xp.where(a > 0, a, a * negative_slope).astype(a.dtype, copy=False)


@_leaky_relu.def_derivative
def _(ns, g, a, negative_slope=0.01):
    return ns.where(a > 0, g, g * negative_slope)


@op(name="elu")
def _elu(xp, a, alpha=1.0, scale=1.0, input_scale=1.0):
    return (scale * xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0) * input_scale))
            ).astype(a.dtype, copy=False)


@_elu.def_derivative
def _(ns, g, a, alpha=1.0, scale=1.0, input_scale=1.0):
    # minimum(a, 0), not with 0 * a: -inf * 0 is NaN, and exp(-inf) gives torch's 0
    neg = ns.exp(ns.minimum(a, 0.0) * input_scale) * (alpha * input_scale * scale)
    return ns.where(a <= 0, g * neg, g * scale)  # torch's test: NaN takes the linear side


@op(name="celu")
def _celu(xp, a, alpha=1.0):
    return xp.where(a > 0, a, alpha * xp.expm1(xp.minimum(a, 0) / alpha)).astype(
        a.dtype, copy=False)


@_celu.def_derivative
def _(ns, g, a, alpha=1.0):
    return ns.where(a <= 0, g * ns.exp(ns.minimum(a, 0.0) / alpha), g)


@op(name="hardtanh")
def _hardtanh(xp, a, min_val=-1.0, max_val=1.0):
    return xp.clip(a, min_val, max_val).astype(a.dtype, copy=False)


@_hardtanh.def_derivative
def _(ns, g, a, min_val=-1.0, max_val=1.0):
    # torch's (vectorised) mask: a NaN input gets 0, a dropped inf/NaN gradient too
    return ns.keep(g, (a > min_val) & (a < max_val))


@op(name="hardsigmoid")
def _hardsigmoid(xp, a):
    return (xp.clip(a, -3.0, 3.0) / 6.0 + 0.5).astype(a.dtype, copy=False)


@_hardsigmoid.def_derivative
def _(ns, g, a):
    return ns.keep(g / 6.0, (a > -3.0) & (a < 3.0))


@op(name="hardswish")
def _hardswish(xp, a):
    return (a * (xp.clip(a, -3.0, 3.0) + 3.0) / 6.0).astype(a.dtype, copy=False)


@_hardswish.def_derivative
def _(ns, g, a):
    mid = g * (a / 3.0 + 0.5)
    return ns.zero_where(ns.where(a < 3.0, mid, g), a <= -3.0)  # torch's bounds


@op(name="softsign")
def _softsign(xp, a):
    return a / (1 + xp.abs(a))


@_softsign.def_derivative
def _(ns, g, a):
    d = 1.0 + ns.abs(a)
    return g / (d * d)


@op(name="threshold")
def _threshold(xp, a, threshold=0.0, value=0.0):
    return xp.where(a <= threshold, value, a).astype(a.dtype, copy=False)  # NaN stays


@_threshold.def_derivative
def _(ns, g, a, threshold=0.0, value=0.0):
    return ns.threshold_grad(g, a, threshold)


@op(name="hardshrink")
def _hardshrink(xp, a, lambd=0.5):
    return xp.where((a >= -lambd) & (a <= lambd), xp.zeros((), a.dtype), a)  # NaN stays


@_hardshrink.def_derivative
def _(ns, g, a, lambd=0.5):
    return ns.keep(g, (a < -lambd) | (a > lambd))  # torch's: no gradient for NaN


@op(name="softshrink")
def _softshrink(xp, a, lambd=0.5):
    z = xp.zeros((), a.dtype)
    return xp.where(a > lambd, a - lambd, xp.where(a < -lambd, a + lambd, a * z))


@_softshrink.def_derivative
def _(ns, g, a, lambd=0.5):
    return ns.keep(g, (a < -lambd) | (a > lambd))


@op(name="prelu")
def _prelu(xp, a, w):
    return xp.where(a > 0, a, a * w).astype(a.dtype, copy=False)


@_prelu.def_derivative
def _(ns, g, a, w, needs):
    pos = a > 0
    return (ns.where(pos, g, g * w) if needs[0] else None,
            ns.zero_where(g * a, pos) if needs[1] else None)


# ----------------------------------------------------------------------------- softmax
def _sum_keep(xp, a, axis):
    """a.sum(axis, keepdims=True); along the last axis of a BLAS dtype as a matrix-vector
    product, several times faster than NumPy's pairwise sum on short rows."""
    if axis in (-1, a.ndim - 1) and a.ndim > 1 and a.dtype.char in "fd":
        return (a @ xp.ones(a.shape[-1], dtype=a.dtype))[..., None]
    return a.sum(axis=axis, keepdims=True)


def _dot_keep(xp, a, b, axis):
    """(a * b).sum(axis, keepdims=True) without the full-size temporary where it can."""
    if axis in (-1, a.ndim - 1) and a.ndim > 1 and a.dtype == b.dtype and a.dtype.char in "fd":
        vecdot = getattr(xp, "vecdot", None)
        if vecdot is not None:
            return vecdot(a, b)[..., None]
        return xp.einsum("...i,...i->...", a, b)[..., None]
    return (a * b).sum(axis=axis, keepdims=True)


def softmax_array(xp, a, axis):
    if not a.ndim:  # scalars cannot be updated in place
        return xp.exp(a - a) / xp.exp(a - a)
    if not a.size:  # an empty batch or row: nothing to normalise (max() would refuse)
        return a.copy()
    e = a - a.max(axis=axis, keepdims=True)  # a new array: exp and normalise it in place
    xp.exp(e, out=e)
    e /= _sum_keep(xp, e, axis)
    return e


def log_softmax_array(xp, a, axis):
    if not a.ndim:
        return (a - a) - xp.log(xp.exp(a - a))
    if not a.size:
        return a.copy()
    z = a - a.max(axis=axis, keepdims=True)
    z -= xp.log(_sum_keep(xp, xp.exp(z), axis))
    return z


@op(name="softmax", backward_name="SoftmaxBackward0")
def _softmax(xp, a, axis=-1):
    return softmax_array(xp, a, axis)


@_softmax.def_derivative
def _(ns, g, _a, out, axis=-1):
    if ns.xp is not None and out.ndim and g.dtype == out.dtype:
        # plain path: the formula below with one full-size temporary, updated in place
        gx = g - _dot_keep(ns.xp, g, out, axis)
        gx *= out
        return gx
    return out * (g - ns.sum(g * out, axis, True))


@op(name="log_softmax", backward_name="LogSoftmaxBackward0")
def _log_softmax(xp, a, axis=-1):
    return log_softmax_array(xp, a, axis)


@_log_softmax.def_derivative
def _(ns, g, _a, out, axis=-1):
    return g - ns.exp(out) * ns.sum(g, axis, True)


def log_softmax_ns(ns, x, axis):
    """log_softmax with graph under TensorNS, on raw arrays under ArrayNS."""
    if ns.xp is None:
        return _log_softmax(x, axis=axis)
    return log_softmax_array(ns.xp, x, axis)


# ----------------------------------------------------------------------------- public
def _float(x: Tensor) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a Tensor, got {type(x).__name__}")
    if x._data.dtype.kind != "f" and not B.is_float_np(x._data.dtype):
        raise RuntimeError(f"expected a floating point tensor, got {x.dtype}; convert it with "
                           ".float() first")
    return x


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit (``approximate`` 'none' or 'tanh')."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"gelu(): approximate argument must be either none or tanh, got "
                           f"'{approximate}'")
    return _gelu(_float(input), approximate=approximate)[0]


def silu(input: Tensor) -> Tensor:
    """x * sigmoid(x)."""
    return _silu(_float(input))


def mish(input: Tensor) -> Tensor:
    """x * tanh(softplus(x))."""
    return _mish(_float(input))


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, linear above ``threshold``."""
    return _softplus(_float(input), beta=beta, threshold=threshold)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)), computed stably."""
    return _logsigmoid(_float(input))


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return _leaky_relu(_float(input), negative_slope=negative_slope)


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    return _elu(_float(input), alpha=alpha)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor) -> Tensor:
    return _elu(_float(input), alpha=_SELU_ALPHA, scale=_SELU_SCALE)


def celu(input: Tensor, alpha: float = 1.0) -> Tensor:
    return _celu(_float(input), alpha=alpha)


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    if min_val > max_val:
        raise ValueError("hardtanh(): min_val cannot be greater than max_val")
    return _hardtanh(_float(input), min_val=min_val, max_val=max_val)


def relu6(input: Tensor) -> Tensor:
    return _hardtanh(_float(input), min_val=0.0, max_val=6.0)


def hardsigmoid(input: Tensor) -> Tensor:
    return _hardsigmoid(_float(input))


def hardswish(input: Tensor) -> Tensor:
    return _hardswish(_float(input))


def softsign(input: Tensor) -> Tensor:
    return _softsign(_float(input))


def threshold(input: Tensor, threshold: float, value: float) -> Tensor:
    return _threshold(input, threshold=threshold, value=value)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    return _hardshrink(_float(input), lambd=lambd)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    if lambd < 0:
        raise RuntimeError(f"softshrink(): lambda must be greater or equal to 0, but found "
                           f"to be {lambd}.")
    return _softshrink(_float(input), lambd=lambd)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """max(0, x) + weight * min(0, x); ``weight`` has 1 or C (channel dim 1) entries."""
    w = weight
    if weight.numel() > 1 and input.ndim >= 2:
        w = weight.reshape((weight.numel(),) + (1,) * (input.ndim - 2))
    return _prelu(input, w)


def _dim(input: Tensor, dim, name: str) -> int:
    if dim is None:  # torch's legacy implicit dim
        import warnings

        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the "
                      "call to include dim=X as an argument.", stacklevel=4)
        dim = 0 if input.ndim in (0, 1, 3) else 1
    return norm_dim(dim, input.ndim, name, single=True) if input.ndim else 0


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``."""
    if dtype is not None:
        input = input.to(dtype)
    input = _float(input)
    if input.ndim == 0:
        return _softmax(input.reshape(1), axis=0).reshape(())
    return _softmax(input, axis=_dim(input, dim, "softmax"))


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype=None) -> Tensor:
    """log(softmax(x)) along ``dim``, computed stably."""
    if dtype is not None:
        input = input.to(dtype)
    input = _float(input)
    if input.ndim == 0:
        return _log_softmax(input.reshape(1), axis=0).reshape(())
    return _log_softmax(input, axis=_dim(input, dim, "log_softmax"))


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    return softmax(-input, dim, dtype=dtype)


method("softmax", lambda self, dim=None, dtype=None: softmax(self, dim, dtype=dtype))
method("log_softmax", lambda self, dim=None, dtype=None: log_softmax(self, dim, dtype=dtype))

PUBLIC: dict = {"softmax": softmax, "log_softmax": log_softmax, "selu": selu, "celu": celu,
                "prelu": prelu, "threshold": threshold}
