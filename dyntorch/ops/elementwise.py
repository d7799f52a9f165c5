"""Elementwise ops: arithmetic, math functions, comparisons, casts. Forward and derivative
side by side; broadcasting and dtype of gradients are undone by the door."""
from __future__ import annotations

import inspect
import math
import numbers

import numpy as np

from .. import _backend as B
from .._dispatch import OpDef, apply, op
from .._tensor import Tensor, _make
from ._ns import erf_array, np_zero, sign_array
from ._util import as_tensor_like, method

_SQRT_PI_2 = 2.0 / math.sqrt(math.pi)


# ----------------------------------------------------------------------------- arithmetic
@op(promote=True)
def add(xp, a, b):
    return a + b


@add.def_derivative
def _(ns, g, _a, _b):
    return g, g


@op(promote=True)
def sub(xp, a, b):
    return a - b


@sub.def_derivative
def _(ns, g, _a, _b):
    if _b.__class__ is float or _b.__class__ is int:  # `t - 1.0`: no -g for the number
        return g, None
    return g, -g


rsub = sub.variant("RsubBackward1")  # ``1 - t``: torch's name for a number minus a tensor


@op(promote=True, read_for=(1, 0))  # `t * 0.5`, `t * mask`: nothing reads t
def mul(xp, a, b):
    return a * b


@mul.def_derivative
def _(ns, g, a, b):
    # a Python number gets no gradient, so its product is not computed (bench_core's chain
    # has two `y * 0.5`). A constant tensor's product is (`x * mask`): asking for ``needs``
    # costs every mul a keyword call, +2-3% on bench_core.py's chain (ab.py)
    if b.__class__ is float or b.__class__ is int:
        return g * ns.number(b, g), None
    if a.__class__ is float or a.__class__ is int:
        return None, g * ns.number(a, g)
    return g * b, g * a


@op(promote=True, read_for=(1, None))  # `t / 2`: only the divisor is read
def div(xp, a, b):
    return a / b


@div.def_derivative
def _(ns, g, a, b, needs):
    gb = g / b
    if b.__class__ is float or b.__class__ is int or not needs[1]:  # `t / 2.0`, `t / s.detach()`
        return gb if needs[0] else None, None
    return gb if needs[0] else None, -gb * a / b


@op(name="neg")
def neg(xp, a):
    return -a


@neg.def_derivative
def _(ns, g, _a):
    return -g


@op(name="pow", backward_name="PowBackward0")
def pow_scalar(xp, a, exponent):
    return a ** exponent


@pow_scalar.def_derivative
def _(ns, g, a, exponent):
    if exponent == 0:
        return ns.zeros_like(g)  # exact zeros, as torch (not NaN * 0)
    if exponent == 2:
        return g * 2 * a
    return g * exponent * a ** (exponent - 1)


@op(name="pow_tensor", promote=True, backward_name="PowBackward1")
def pow_tensor(xp, a, b):
    return a ** b


@pow_tensor.def_derivative
def _(ns, g, a, b, out, needs):
    ga = g * b * a ** (b - 1) if needs[0] else None
    gb = None
    if needs[1]:
        gb = ns.where((a == 0) & (b >= 0), 0.0, g * out * ns.log(ns.where(a == 0, 1.0, a)))
    return ga, gb


pow_number_base = pow_tensor.variant("PowBackward2")  # ``2 ** t``: torch's name for it


@op(promote=True)
def remainder(xp, a, b):
    _int_divisor_check("remainder", a, b)
    return xp.remainder(a, b)


@remainder.def_derivative
def _(ns, g, a, b):
    return g, -g * ns.floor(a / b)


@op(promote=True)
def fmod(xp, a, b):
    _int_divisor_check("fmod", a, b)
    return xp.fmod(a, b)


@fmod.def_derivative
def _(ns, g, a, b):
    q = a / b
    return g, -g * ns.where(q < 0, -ns.floor(-q), ns.floor(q))


@op(promote=True)
def floor_divide(xp, a, b):
    _int_divisor_check("floor_divide", a, b)
    return xp.floor_divide(a, b)


# ``div(rounding_mode="floor")``: the same values, and, as torch's DivBackward2, a gradient
# (zero: the result is flat almost everywhere) where ``a // b`` (floor_divide) has none
@op(name="div_floor", promote=True, backward_name="DivBackward2")
def div_floor(xp, a, b):
    _int_divisor_check("div", a, b)
    return xp.floor_divide(a, b)


@div_floor.def_derivative
def _(ns, g, _a, _b):
    return ns.zeros_like(g), ns.zeros_like(g)


def _kind(x) -> str:
    dt = getattr(x, "dtype", None)
    if dt is not None:
        return dt.kind
    return "i" if isinstance(x, int) else "f"


def _int_divisor_check(name: str, a, b) -> None:
    """Integer division by zero raises, as in torch on the CPU (NumPy would give 0 and a
    RuntimeWarning that dyntorch silences)."""
    if _kind(a) not in "iub" or _kind(b) not in "iub":
        return
    zero = (b == 0) if isinstance(b, int) else bool((b == 0).any())
    if zero:
        raise RuntimeError(f"{name}(): ZeroDivisionError: integer division by zero; divide "
                           "a float tensor (x.float()) to get inf/nan instead")


@op(promote=True)
def maximum(xp, a, b):
    return xp.maximum(a, b)


@maximum.def_derivative
def _(ns, g, a, b):
    # torch's rule: ties share, the smaller side gets exact zeros, and where a NaN is
    # compared (no order) both sides get the gradient
    h = ns.where(a == b, g * 0.5, g)
    return ns.zero_where(h, a < b), ns.zero_where(h, a > b)


@op(promote=True)
def minimum(xp, a, b):
    return xp.minimum(a, b)


@minimum.def_derivative
def _(ns, g, a, b):
    h = ns.where(a == b, g * 0.5, g)  # as maximum's, mirrored
    return ns.zero_where(h, a > b), ns.zero_where(h, a < b)


@op(promote=True)
def atan2(xp, a, b):
    # integers and bools (one dtype after promotion) give the default float dtype, as torch;
    # NumPy would give float16 for int8 and float64 for int32
    if getattr(a, "dtype", getattr(b, "dtype", None)).kind in "biu":
        f = B.get_default_dtype().np
        a = a.astype(f) if hasattr(a, "astype") else a
        b = b.astype(f) if hasattr(b, "astype") else b
    return xp.arctan2(a, b)


@atan2.def_derivative
def _(ns, g, a, b):
    r = a * a + b * b
    with np.errstate(divide="ignore"):
        inv = ns.zero_where(1.0 / r, r == 0)  # at the origin: 0, as torch (not 0 / 0)
    return g * b * inv, -g * a * inv


# ----------------------------------------------------------------------------- unary math
@op
def exp(xp, a):
    return xp.exp(a)


@exp.def_derivative
def _(ns, g, _a, out):
    return g * out


@op
def exp2(xp, a):
    return xp.exp2(a)


@exp2.def_derivative
def _(ns, g, _a, out):
    return g * out * math.log(2.0)


@op
def log(xp, a):
    return xp.log(a)


@log.def_derivative
def _(ns, g, a):
    return g / a


@op
def log2(xp, a):
    return xp.log2(a)


@log2.def_derivative
def _(ns, g, a):
    return g / (a * math.log(2.0))


@op
def log10(xp, a):
    return xp.log10(a)


@log10.def_derivative
def _(ns, g, a):
    return g / (a * math.log(10.0))


@op
def log1p(xp, a):
    return xp.log1p(a)


@log1p.def_derivative
def _(ns, g, a):
    return g / (a + 1)


@op
def expm1(xp, a):
    return xp.expm1(a)


@expm1.def_derivative
def _(ns, g, _a, out):
    return g * (out + 1)


@op
def sqrt(xp, a):
    return xp.sqrt(a)


@sqrt.def_derivative
def _(ns, g, _a, out):
    return g / (2 * out)


@op
def rsqrt(xp, a):
    return 1 / xp.sqrt(a)


@rsqrt.def_derivative
def _(ns, g, _a, out):
    return g * -0.5 * out * out * out


@op
def square(xp, a):
    return a * a


@square.def_derivative
def _(ns, g, a):
    return g * 2 * a


@op
def reciprocal(xp, a):
    return 1 / a


@reciprocal.def_derivative
def _(ns, g, _a, out):
    return -g * (out * out)  # torch's order of rounding: ``2.5 / t`` is reciprocal(t) * 2.5


@op
def abs(xp, a):
    return xp.abs(a)


@abs.def_derivative
def _(ns, g, a):
    return g * ns.sign(a)


@op
def sign(xp, a):
    return sign_array(xp, a)


@sign.def_derivative
def _(ns, g, _a):
    return ns.zeros_like(g)


@op
def sin(xp, a):
    return xp.sin(a)


@sin.def_derivative
def _(ns, g, a):
    return g * ns.cos(a)


@op
def cos(xp, a):
    return xp.cos(a)


@cos.def_derivative
def _(ns, g, a):
    return -g * ns.sin(a)


@op
def tan(xp, a):
    return xp.tan(a)


@tan.def_derivative
def _(ns, g, _a, out):
    return g * (1 + out * out)


@op
def asin(xp, a):
    return xp.arcsin(a)


@asin.def_derivative
def _(ns, g, a):
    return g / ns.sqrt(1 - a * a)


@op
def acos(xp, a):
    return xp.arccos(a)


@acos.def_derivative
def _(ns, g, a):
    return -g / ns.sqrt(1 - a * a)


@op
def atan(xp, a):
    return xp.arctan(a)


@atan.def_derivative
def _(ns, g, a):
    return g / (1 + a * a)


@op
def sinh(xp, a):
    return xp.sinh(a)


@sinh.def_derivative
def _(ns, g, a):
    return g * ns.cosh(a)


@op
def cosh(xp, a):
    return xp.cosh(a)


@cosh.def_derivative
def _(ns, g, a):
    return g * ns.sinh(a)


@op
def tanh(xp, a):
    return xp.tanh(a)


@tanh.def_derivative
def _(ns, g, _a, out):
    # torch's form and order: g - g * out * out gave inf - NaN = NaN for an inf gradient
    return g * (ns.number(1.0, out) - out * out)


@op
def sigmoid(xp, a):
    # split by sign so exp never overflows
    e = xp.exp(-xp.abs(a))
    return xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)


@sigmoid.def_derivative
def _(ns, g, _a, out):
    return g * (ns.number(1.0, out) - out) * out  # torch's order of rounding


@op
def relu(xp, a):
    if a.__class__ is np.ndarray:  # beside a 0-d zero of a's dtype: 0.45 us against 1.1 with
        return np.maximum(a, np_zero(a.dtype))  # a Python 0 (4x4); array-likes (sparse) below
    return xp.maximum(a, 0).astype(a.dtype, copy=False)


@relu.def_derivative
def _(ns, g, _a, out):
    return ns.threshold_grad(g, out)


@op
def erf(xp, a):
    return erf_array(xp, a)


@erf.def_derivative
def _(ns, g, a):
    return g * _SQRT_PI_2 * ns.exp(-a * a)


def _zero_grad_unary(name):
    f = op(name=name)(lambda xp, a: getattr(xp, name)(a))

    @f.def_derivative
    def _(ns, g, _a):
        return ns.zeros_like(g)  # exact zeros, as torch: a NaN gradient does not pass

    return f


floor = _zero_grad_unary("floor")
ceil = _zero_grad_unary("ceil")
trunc = _zero_grad_unary("trunc")


@op(name="round")
def _round(xp, a, decimals=0):
    return xp.round(a, decimals) if decimals else xp.rint(a)


@_round.def_derivative
def _(ns, g, _a, decimals=0):
    return ns.zeros_like(g)


@op(name="clamp", backward_name="ClampBackward1")
def _clamp(xp, a, min=None, max=None):
    return xp.clip(a, min, max).astype(a.dtype, copy=False)


@_clamp.def_derivative
def _(ns, g, a, min=None, max=None):
    # torch's mask: a NaN input gets no gradient; a dropped entry is 0 even for inf/NaN g
    if min is not None and max is not None:
        return ns.keep(g, (a >= min) & (a <= max))
    return ns.keep(g, a >= min) if min is not None else ns.keep(g, a <= max)


@op(name="clamp_tensor", promote=True, backward_name="ClampBackward0")
def _clamp_tensor(xp, a, lo, hi):
    """``clamp`` with tensor bounds (either may be None); NaN in any operand gives NaN."""
    r = a if lo is None else xp.maximum(a, lo)
    return r if hi is None else xp.minimum(r, hi)


@_clamp_tensor.def_derivative
def _(ns, g, a, lo, hi):
    # torch's masks: a tie goes to the input; crossed bounds (lo > hi) give max's result,
    # so its gradient; a NaN anywhere gives no gradient
    if lo is not None and hi is not None:
        return (ns.keep(g, (a >= lo) & (a <= hi)), ns.keep(g, (a < lo) & (lo < hi)),
                ns.keep(g, (a > hi) | (hi < lo)))
    if lo is not None:
        return ns.keep(g, a >= lo), ns.keep(g, a < lo), None
    return ns.keep(g, a <= hi), None, ns.keep(g, a > hi)


@op(name="where")
def _where(xp, cond, a, b):
    return xp.where(cond, a, b)


@_where.def_derivative
def _(ns, g, cond, _a, _b):
    return None, ns.keep(g, cond), ns.zero_where(g, cond)  # exact zeros, as torch


@op(name="lerp", promote=True)
def _lerp(xp, a, b, w):
    return a + w * (b - a)


@_lerp.def_derivative
def _(ns, g, a, b, w):
    return g * (1 - w), g * w, g * (b - a)


@op(name="to_copy", backward_name="ToCopyBackward0")
def to_copy(xp, a, dtype):
    return a.astype(dtype)


@to_copy.def_derivative
def _(ns, g, _a, dtype):
    return g  # the door casts it back to the input's dtype


@op(name="to_device", backward_name="ToCopyBackward0")
def to_device(xp, a, device):
    return B.move(a, device)


@to_device.def_derivative
def _(ns, g, a, device):
    if isinstance(g, Tensor):  # create_graph: a move back that is itself differentiable
        return g.to(a.device)
    return B.move(g, B.device_of(a))


@op(name="clone")
def _clone(xp, a):
    return a.copy()


@_clone.def_derivative
def _(ns, g, _a):
    return g


# ----------------------------------------------------------------------------- no gradient
def _cmp(name, fn):
    return op(name=name, promote=True)(fn)


eq = _cmp("eq", lambda xp, a, b: a == b)
ne = _cmp("ne", lambda xp, a, b: a != b)
lt = _cmp("lt", lambda xp, a, b: a < b)
le = _cmp("le", lambda xp, a, b: a <= b)
gt = _cmp("gt", lambda xp, a, b: a > b)
ge = _cmp("ge", lambda xp, a, b: a >= b)
logical_and = op(name="logical_and")(lambda xp, a, b: xp.logical_and(a, b))
logical_or = op(name="logical_or")(lambda xp, a, b: xp.logical_or(a, b))
logical_xor = op(name="logical_xor")(lambda xp, a, b: xp.logical_xor(a, b))
logical_not = op(name="logical_not")(lambda xp, a: xp.logical_not(a))
bitwise_not = op(name="bitwise_not")(lambda xp, a: ~a)
bitwise_and = op(name="bitwise_and", promote=True)(lambda xp, a, b: a & b)
bitwise_or = op(name="bitwise_or", promote=True)(lambda xp, a, b: a | b)
bitwise_xor = op(name="bitwise_xor", promote=True)(lambda xp, a, b: a ^ b)
isnan = op(name="isnan")(lambda xp, a: xp.isnan(a))
isinf = op(name="isinf")(lambda xp, a: xp.isinf(a))
isfinite = op(name="isfinite")(lambda xp, a: xp.isfinite(a))
isposinf = op(name="isposinf")(lambda xp, a: xp.isposinf(a))
isneginf = op(name="isneginf")(lambda xp, a: xp.isneginf(a))
signbit = op(name="signbit")(lambda xp, a: xp.signbit(a))


@op(name="nan_to_num")
def _nan_to_num(xp, a, nan=0.0, posinf=None, neginf=None):
    return xp.nan_to_num(a, nan=nan, posinf=posinf, neginf=neginf)


@_nan_to_num.def_derivative
def _(ns, g, a, nan=0.0, posinf=None, neginf=None):
    return g * (a == a) * (ns.abs(a) != math.inf)


# ----------------------------------------------------------------------------- public API
def _num(x) -> bool:
    return isinstance(x, numbers.Number) and not isinstance(x, Tensor)


def _int_to_float(a):
    """Promote integer/bool tensors before ops that always give floats (torch does)."""
    if isinstance(a, Tensor) and a._data.dtype.kind in "biu":
        return a.to(B.get_default_dtype())
    return a


def _float_unary(fn):
    def wrapped(input, *, out=None):
        r = fn(_int_to_float(input))
        return _write_out(out, r)

    wrapped.__name__ = fn.name
    wrapped.__doc__ = f"Elementwise ``{fn.name}`` (see ``torch.{fn.name}``)."
    return wrapped


def _write_out(out, r):
    if out is None:
        return r
    out.copy_(r)
    return out


def _scaled(b, alpha):
    return b if alpha == 1 else b * alpha


def add_scaled(input, other, *, alpha=1, out=None):
    """input + alpha * other, broadcasting (``torch.add``)."""
    return _write_out(out, add(input, _scaled(other, alpha)))


def sub_scaled(input, other, *, alpha=1, out=None):
    """input - alpha * other, broadcasting (``torch.sub``)."""
    return _write_out(out, sub(input, _scaled(other, alpha)))


def true_divide(input, other, *, rounding_mode=None, out=None):
    """input / other (``torch.div``); ``rounding_mode`` 'trunc' or 'floor' rounds it."""
    a, b = input, other
    if isinstance(a, _NP_SCALAR):  # a Python number, as the operators (_other)
        a = a.item()
    if isinstance(b, _NP_SCALAR):
        b = b.item()
    if rounding_mode is None:
        if not (isinstance(a, Tensor) and B.is_float_np(a._data.dtype)) and not (
                isinstance(b, Tensor) and B.is_float_np(b._data.dtype)) and not isinstance(
                a, float) and not isinstance(b, float):  # (bfloat16's NumPy kind is "V")
            a = _int_to_float(a) if isinstance(a, Tensor) else float(a)
        return _write_out(out, div(a, b))
    if rounding_mode == "floor":
        return _write_out(out, div_floor(a, b))
    if rounding_mode == "trunc":
        _int_divisor_check("div", a._data if isinstance(a, Tensor) else a,
                           b._data if isinstance(b, Tensor) else b)
        q = div(a, b)
        q = trunc(q)
        dt = B.result_type(*(x for x in (a, b)))
        return _write_out(out, q.to(dt) if q.dtype is not dt else q)
    raise ValueError(f"div(): rounding_mode must be None, 'trunc' or 'floor', got "
                     f"'{rounding_mode}'")


def pow(input, exponent, *, out=None):
    """input ** exponent (``torch.pow``)."""
    if isinstance(input, Tensor) and _num(exponent):
        if input._data.dtype.kind in "biu" and isinstance(exponent, float):
            input = _int_to_float(input)
        if input._data.dtype.kind in "iu" and isinstance(exponent, int) and exponent < 0:
            raise RuntimeError("pow(): Integers to negative integer powers are not allowed.")
        return _write_out(out, pow_scalar(input, exponent=exponent))
    if _num(input):
        return _write_out(out, pow_number_base(as_tensor_like(input, exponent), exponent))
    return _write_out(out, pow_tensor(input, exponent))


def clamp(input, min=None, max=None, *, out=None):
    """Clamp every element into [min, max] (``torch.clamp``); min/max may be tensors."""
    if min is None and max is None:
        raise RuntimeError("clamp(): At least one of 'min' or 'max' must not be None")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        lo = min if min is None or isinstance(min, Tensor) else as_tensor_like(min, input)
        hi = max if max is None or isinstance(max, Tensor) else as_tensor_like(max, input)
        return _write_out(out, _clamp_tensor(input, lo, hi))
    return _write_out(out, _clamp(input, min=min, max=max))


def clamp_min(input, min):
    return clamp(input, min=min)


def clamp_max(input, max):
    return clamp(input, max=max)


def where(condition, input=None, other=None, *, out=None):
    """Pick from ``input`` where ``condition`` holds, else from ``other`` (``torch.where``)."""
    if input is None and other is None:
        from .index import nonzero

        return nonzero(condition, as_tuple=True)
    if not isinstance(condition, Tensor):
        raise TypeError("where(): condition must be a bool Tensor")
    if condition._data.dtype.kind != "b":
        condition = condition.to(B.bool_)
    dt = B.result_type(input, other)
    ref = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else condition
    a = input.to(dt) if isinstance(input, Tensor) else as_tensor_like(input, ref, dt)
    b = other.to(dt) if isinstance(other, Tensor) else as_tensor_like(other, ref, dt)
    return _write_out(out, _where(condition, a, b))


def lerp(input, end, weight, *, out=None):
    """input + weight * (end - input) (``torch.lerp``)."""
    return _write_out(out, _lerp(input, end, weight))


def round(input, *, decimals=0, out=None):
    """Round to ``decimals`` places, halves to even (``torch.round``)."""
    return _write_out(out, _round(input, decimals=decimals))


def nan_to_num(input, nan=None, posinf=None, neginf=None, *, out=None):
    nan = 0.0 if nan is None else nan  # torch's None means 0
    return _write_out(out, _nan_to_num(input, nan=nan, posinf=posinf, neginf=neginf))


def positive(input):
    return input


def _make_float_unaries():
    g = globals()
    names = ["exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "sqrt", "rsqrt", "sin",
             "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "sigmoid", "erf",
             "reciprocal"]
    public = {}
    for n in names:
        public[n] = _float_unary(g[n])
    return public


FLOAT_UNARY = _make_float_unaries()


# ----------------------------------------------------------------------------- Tensor methods
_NP_SCALAR = np.generic


def _other(other):
    """A NumPy scalar as its Python number; NotImplemented for operands torch refuses
    (str, None, dict ...), so Python raises torch's 'unsupported operand type(s)'."""
    if isinstance(other, _NP_SCALAR):
        return other.item()
    if other is None or isinstance(other, (str, bytes, dict, set)):
        return NotImplemented
    if getattr(other, "is_sparse", False):  # dense (op) sparse: the sparse type answers
        return NotImplemented
    return other


def _refuse(fn, other):
    name = getattr(fn, "name", getattr(fn, "__name__", "op"))
    raise TypeError(f"{name}(): argument 'other' must be Tensor or Number, not "
                    f"{type(other).__name__}")


def _binary(fn, operator: bool = True):
    # A NumPy scalar operand (np.float64(2), np.sqrt(d)) counts as a Python number, as in
    # torch: it must not turn a float32 tensor into float64 (NEP 50 makes np.float64 strong)
    if isinstance(fn, OpDef):  # straight to the door: this is the hottest path there is
        def m(self, other):
            c = other.__class__
            if c is not Tensor and c is not float and c is not int:
                o = _other(other)
                if o is NotImplemented:
                    return o if operator else _refuse(fn, other)
                other = o
            return apply(fn, self, other)
    else:
        def m(self, other):
            c = other.__class__
            if c is not Tensor and c is not float and c is not int:
                o = _other(other)
                if o is NotImplemented:
                    return o if operator else _refuse(fn, other)
                other = o
            return fn(self, other)

    return m


def _rbinary(fn):
    if isinstance(fn, OpDef):
        def m(self, other):
            c = other.__class__
            if c is not float and c is not int:
                other = _other(other)
                if other is NotImplemented:
                    return other
            return apply(fn, other, self)
    else:
        def m(self, other):
            c = other.__class__
            if c is not float and c is not int:
                other = _other(other)
                if other is NotImplemented:
                    return other
            return fn(other, self)

    return m


method("__add__", _binary(add))
method("__radd__", _rbinary(add))
method("__sub__", _binary(sub))
method("__rsub__", _rbinary(rsub))
method("__mul__", _binary(mul))
method("__rmul__", _rbinary(mul))
method("__truediv__", _binary(true_divide))
method("__rtruediv__", _rbinary(lambda number, t: FLOAT_UNARY["reciprocal"](t) * number))
method("__floordiv__", _binary(floor_divide))
method("__rfloordiv__", _rbinary(floor_divide))
method("__mod__", _binary(remainder))
method("__rmod__", _rbinary(remainder))
method("__pow__", _binary(pow))
method("__rpow__", _rbinary(pow))
method("__neg__", lambda self: neg(self))
method("__pos__", lambda self: self)
method("__abs__", lambda self: abs(self))


def _eq_none(fn, result):
    """``t == None`` is False (``!=`` True) as in torch, so `if mask == None:` works."""
    m = _binary(fn)

    def cmp(self, other):
        if other is None:
            return result
        return m(self, other)

    return cmp


method("__eq__", _eq_none(eq, False))
method("__ne__", _eq_none(ne, True))
method("__lt__", _binary(lt))
method("__le__", _binary(le))
method("__gt__", _binary(gt))
method("__ge__", _binary(ge))
method("__and__", _binary(lambda a, b: logical_and(a, b) if a.dtype is B.bool_
                          else bitwise_and(a, b)))
method("__or__", _binary(lambda a, b: logical_or(a, b) if a.dtype is B.bool_
                         else bitwise_or(a, b)))
method("__xor__", _binary(lambda a, b: logical_xor(a, b) if a.dtype is B.bool_
                          else bitwise_xor(a, b)))
method("__rand__", _rbinary(lambda a, b: b.__and__(a)))
method("__ror__", _rbinary(lambda a, b: b.__or__(a)))
method("__invert__", lambda self: logical_not(self) if self.dtype is B.bool_
       else bitwise_not(self))
method("add", lambda self, other, *, alpha=1: add_scaled(self, other, alpha=alpha))
method("sub", lambda self, other, *, alpha=1: sub_scaled(self, other, alpha=alpha))
method("subtract", lambda self, other, *, alpha=1: sub_scaled(self, other, alpha=alpha))
method("mul", _binary(mul, operator=False))
method("multiply", _binary(mul, operator=False))
method("div", lambda self, other, *, rounding_mode=None: true_divide(
    self, other, rounding_mode=rounding_mode))
method("divide", lambda self, other, *, rounding_mode=None: true_divide(
    self, other, rounding_mode=rounding_mode))
method("true_divide", _binary(true_divide, operator=False))
method("floor_divide", _binary(floor_divide, operator=False))
method("remainder", _binary(remainder, operator=False))
method("fmod", _binary(fmod, operator=False))
method("pow", lambda self, exponent: pow(self, exponent))
method("neg", lambda self: apply(neg, self))
method("negative", lambda self: neg(self))
method("abs", lambda self: apply(abs, self))
method("absolute", lambda self: abs(self))
method("sign", lambda self: apply(sign, self))
method("square", lambda self: apply(square, self))
method("relu", lambda self: apply(relu, self))
def _float_method(fn, slow):
    def m(self):
        if self._data.dtype.kind == "f":
            return apply(fn, self)
        return slow(self)

    return m


for _n, _f in FLOAT_UNARY.items():
    method(_n, _float_method(globals()[_n], _f))
method("arcsin", FLOAT_UNARY["asin"])
method("arccos", FLOAT_UNARY["acos"])
method("arctan", FLOAT_UNARY["atan"])
method("floor", lambda self: apply(floor, self))
method("ceil", lambda self: apply(ceil, self))
method("trunc", lambda self: apply(trunc, self))
method("round", lambda self, *, decimals=0: round(self, decimals=decimals))
method("clamp", lambda self, min=None, max=None: clamp(self, min, max))
method("clip", lambda self, min=None, max=None: clamp(self, min, max))
method("clamp_min", lambda self, min: clamp(self, min=min))
method("clamp_max", lambda self, max: clamp(self, max=max))
method("maximum", _binary(maximum, operator=False))
method("minimum", _binary(minimum, operator=False))
method("atan2", _binary(atan2, operator=False))
method("lerp", lambda self, end, weight: lerp(self, end, weight))
method("where", lambda self, condition, other: where(condition, self, other))
method("eq", _binary(eq, operator=False))
method("ne", _binary(ne, operator=False))
method("lt", _binary(lt, operator=False))
method("le", _binary(le, operator=False))
method("gt", _binary(gt, operator=False))
method("ge", _binary(ge, operator=False))
method("greater", _binary(gt, operator=False))
method("less", _binary(lt, operator=False))
method("logical_and", _binary(logical_and, operator=False))
method("logical_or", _binary(logical_or, operator=False))
method("logical_xor", _binary(logical_xor, operator=False))
method("logical_not", lambda self: apply(logical_not, self))
method("isnan", lambda self: apply(isnan, self))
method("isinf", lambda self: apply(isinf, self))
method("isfinite", lambda self: apply(isfinite, self))
method("nan_to_num", lambda self, nan=None, posinf=None, neginf=None: nan_to_num(
    self, nan, posinf, neginf))


def _clone_m(self, *, memory_format=None):
    return _clone(self)


method("clone", _clone_m)


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and elements."""
    return input.shape == other.shape and bool(eq(input, other).all())


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    return bool(isclose(input, other, rtol, atol, equal_nan).all())


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> Tensor:
    a, b = input, other
    xp = B.xp_of(a._data)
    bd = b._data if isinstance(b, Tensor) else b
    return _make(xp.isclose(a._data, bd, rtol=rtol, atol=atol, equal_nan=equal_nan))


method("equal", equal)
method("allclose", allclose)
method("isclose", isclose)
_ = _make



def _public() -> dict:
    """The names users call as ``dyntorch.<name>``, with torch's keyword arguments."""
    names = ["mul", "neg", "remainder", "fmod", "floor_divide", "maximum", "minimum", "atan2",
             "abs", "sign", "square", "relu", "floor", "ceil", "trunc", "round", "clamp",
             "clamp_min", "clamp_max", "where", "lerp", "eq", "ne", "lt", "le", "gt", "ge",
             "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_not",
             "bitwise_and", "bitwise_or", "bitwise_xor", "isnan", "isinf", "isfinite",
             "isposinf", "isneginf", "signbit", "nan_to_num", "equal", "allclose", "isclose",
             "positive", "pow"]
    g = globals()
    pub = {n: _torch_names(g[n]) for n in names}
    pub.update(FLOAT_UNARY)
    pub.update(add=add_scaled, sub=sub_scaled, subtract=sub_scaled, multiply=mul,
               div=true_divide, divide=true_divide, true_divide=true_divide, negative=neg,
               absolute=abs,
               greater=gt, less=lt, greater_equal=ge, less_equal=le, not_equal=ne, clip=clamp,
               arcsin=FLOAT_UNARY["asin"], arccos=FLOAT_UNARY["acos"],
               arctan=FLOAT_UNARY["atan"], arctan2=atan2)
    for n in ("multiply", "negative", "absolute", "greater", "less", "greater_equal",
              "less_equal", "not_equal", "arctan2"):
        pub[n] = _torch_names(pub[n], n)
    return pub


def _torch_names(fn, name=None):
    """An op object under torch's argument names (``input``, ``other``) and ``out=``: an op
    object passes keywords to its forward as attributes, so ``torch.mul(input=a, other=b)``
    needs this thin function in front (the Tensor operators go straight to the door)."""
    if not isinstance(fn, OpDef):
        return fn
    n_in = len(inspect.signature(fn.forward).parameters) - 1
    if n_in == 1:
        def f(input, *, out=None):
            return _write_out(out, apply(fn, input))
    else:
        def f(input, other, *, out=None):
            if isinstance(other, _NP_SCALAR):  # a Python number, as the operators (_other)
                other = other.item()
            if isinstance(input, _NP_SCALAR):
                input = input.item()
            return _write_out(out, apply(fn, input, other))
    f.__name__ = f.__qualname__ = name or fn.name
    f.__doc__ = f"Elementwise ``{fn.name}`` (see ``torch.{name or fn.name}``)."
    return f


PUBLIC = _public()
