"""In-place ops (``add_``, ``mul_``, ``copy_`` ...).

With no graph to record they write straight into the tensor's memory. When the graph is
recorded they compute the out-of-place op on an alias of the tensor (a copy of its old data
when the derivative needs it), write the result back and point the tensor at the new node;
the version counter lets backward catch saved tensors changed afterwards.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .. import _backend as B
from .. import _dispatch as D
from .._dispatch import _device_error
from .._tensor import Tensor, _make, bump_version
from . import creation as C
from . import elementwise as E
from ._util import method

_CAT = {"b": 0, "i": 1, "u": 1, "f": 2}


bump = bump_version


def _leaf_check(t: Tensor, name: str) -> None:
    if t._requires_grad and t.grad_fn is None and D.grad_enabled:
        raise RuntimeError(
            f"{name}(): a leaf Variable that requires grad is being used in an in-place "
            "operation. Wrap the update in `with dyntorch.no_grad():` (as optimizers do) or "
            "use an out-of-place op.")


def _store(t: Tensor, arr, name: str) -> None:
    d = t._data
    if arr.__class__ is not d.__class__:
        arr = B.move(arr, B.device_of(d))
    if _CAT[np.dtype(arr.dtype).kind] > _CAT[d.dtype.kind]:
        raise RuntimeError(
            f"{name}(): result type {B.from_np(arr.dtype)} can't be cast to the desired output "
            f"type {B.from_np(d.dtype)}. Convert the tensor first (e.g. `.float()`).")
    if arr.shape != d.shape:
        try:
            bshape = np.broadcast_shapes(arr.shape, d.shape)
        except ValueError:
            bshape = None
        if bshape != d.shape:
            raise RuntimeError(
                f"{name}(): output with shape {list(d.shape)} doesn't match the broadcast shape "
                f"of the result {list(arr.shape)}")
    if not B.writeable(d):
        raise RuntimeError(
            f"{name}(): unsupported operation: more than one element of the written-to tensor "
            "refers to a single memory location (it is an expanded view). Please clone() the "
            "tensor before performing the operation.")
    d[...] = arr


def inplace(t: Tensor, name: str, compute, *others) -> Tensor:
    """Run ``compute(alias)`` out of place and write its result into ``t``."""
    _leaf_check(t, name)
    recording = D.grad_enabled and (t._requires_grad or any(
        isinstance(o, Tensor) and o._requires_grad for o in others))
    if not recording:
        res = compute(t)
        _store(t, res._data, name)
        bump(t)
        return t
    if t._base is not None:
        return _inplace_on_view(t, name, compute)
    res = _compute_on_alias(t, compute)
    node = res.grad_fn
    _store(t, res._data, name)
    bump(t)
    if node is not None:
        t.grad_fn = node
        t._out_nr = res._out_nr
        t._requires_grad = True
        if t._extra is not None and t._extra.get("retains"):  # retain_grad follows the tensor
            from ..autograd.hooks import rebase_retain_grad

            rebase_retain_grad(t)
    return t


def _alias(t: Tensor) -> Tensor:
    a = _make(t._data, t.grad_fn)
    a._requires_grad = t._requires_grad
    a._out_nr = t._out_nr
    a._acc = t._acc
    return a


def _compute_on_alias(t: Tensor, compute) -> Tensor:
    """``compute`` run on an alias of ``t`` (same graph identity); when the recorded node saves
    that alias for its derivative, it gets a copy of the old values, which the in-place write
    is about to overwrite."""
    alias = _alias(t)
    res = compute(alias)
    node = res.grad_fn
    if node is not None and getattr(node, "inputs", None) is not None:
        for i, a in enumerate(node.inputs):
            if a is alias and node.op.used(node.next)[i]:
                alias._data = node.arrays[i] = t._data.copy()
                break
    return res


def _view_positions(view, base):
    """Flat positions in ``base`` (C-contiguous) of each element of its strided ``view``."""
    xp = B.xp_of(base)
    item = base.itemsize
    ptr = (lambda a: a.ctypes.data) if xp is np else (lambda a: a.data.ptr)
    off = (ptr(view) - ptr(base)) // item
    ids = xp.arange(base.size, dtype=np.int64)
    pos = xp.lib.stride_tricks.as_strided(
        ids[off:], shape=view.shape, strides=tuple(st // item * 8 for st in view.strides))
    return xp.ascontiguousarray(pos)


def _inplace_on_view(t: Tensor, name: str, compute) -> Tensor:
    """In-place change of a view while recording: the view's new value is computed out of
    place, written into the base's memory, and the base gets a node that puts it at the
    view's positions (so gradients reach both the old base and the new values); the view
    is then re-derived from the new base."""
    from .index import _adv, _index_put

    base = t._base
    bd = base._data
    if not bd.flags.c_contiguous or not B.writeable(t._data):
        raise RuntimeError(
            f"{name}(): in-place change of this view while recording gradients is not "
            "supported in dyntorch (its base is not contiguous, or it is an expanded view). "
            "Use an out-of-place op and assign the result, or clone() the view first.")
    if base._requires_grad and base.grad_fn is None:
        raise RuntimeError(
            f"{name}(): a view of a leaf Variable that requires grad is being used in an "
            "in-place operation. Wrap it in `with dyntorch.no_grad():` or clone() first.")
    pos = _view_positions(t._data, bd).reshape(-1)
    res = _compute_on_alias(t, compute)
    if res._data.dtype != bd.dtype:
        _store(t, res._data, name)  # raises the cast error for a lossy result type
        res = res.to(B.from_np(bd.dtype))
    flat = _alias(base).reshape(-1)
    new = _index_put(flat, res.reshape(-1), key=(pos,), accumulate=False)
    _store(t, res._data, name)
    bump(t)
    new_base = new.reshape(bd.shape)
    base.grad_fn = new_base.grad_fn
    base._out_nr = new_base._out_nr
    base._requires_grad = True
    again = _adv(new, key=(pos.reshape(t._data.shape),), in_shape=(bd.size,))
    t.grad_fn = again.grad_fn
    t._out_nr = again._out_nr
    t._requires_grad = True
    return t


def _scalar_or_data(o):
    return o._data if isinstance(o, Tensor) else o


def _fast(t: Tensor, others) -> bool:
    return (not D.grad_enabled or (not t._requires_grad and not any(
        isinstance(o, Tensor) and o._requires_grad for o in others))) and B.writeable(t._data)


def _fast_error(self: Tensor, name: str, others) -> RuntimeError:
    """torch's message for a fast-path in-place op NumPy refused (a shape that does not
    broadcast into ``self``, or an operand on another device)."""
    ts = [o for o in others if isinstance(o, Tensor)]
    if any(o._data.__class__ is not self._data.__class__ for o in ts):
        return _device_error(SimpleNamespace(name=name), (self, *ts))
    shapes = [list(o.shape) for o in ts]
    try:
        bshape = list(np.broadcast_shapes(self._data.shape, *(o._data.shape for o in ts)))
    except ValueError:
        return RuntimeError(
            f"{name}(): the size of the other operand{'s' if len(ts) > 1 else ''} {shapes} "
            f"does not broadcast with the tensor's shape {list(self.shape)}")
    return RuntimeError(
        f"{name}(): output with shape {list(self.shape)} doesn't match the broadcast shape "
        f"{bshape} (other operand shapes {shapes}). An in-place op cannot change the "
        "tensor's shape; use the out-of-place op instead.")


def add_(self, other, *, alpha=1):
    if _fast(self, (other,)) and self._data.dtype.kind == "f":
        o = _scalar_or_data(other)
        if isinstance(other, Tensor) and other._data.__class__ is not self._data.__class__:
            raise _device_error(E.add, (self, other))
        try:
            self._data += o if alpha == 1 else o * alpha
        except ValueError:
            raise _fast_error(self, "add_", (other,)) from None
        bump(self)
        return self
    return inplace(self, "add_", lambda s: E.add_scaled(s, other, alpha=alpha), other)


def sub_(self, other, *, alpha=1):
    if _fast(self, (other,)) and self._data.dtype.kind == "f":
        o = _scalar_or_data(other)
        try:
            self._data -= o if alpha == 1 else o * alpha
        except (ValueError, TypeError):
            raise _fast_error(self, "sub_", (other,)) from None
        bump(self)
        return self
    return inplace(self, "sub_", lambda s: E.sub_scaled(s, other, alpha=alpha), other)


def mul_(self, other):
    if _fast(self, (other,)) and self._data.dtype.kind == "f":
        try:
            self._data *= _scalar_or_data(other)
        except (ValueError, TypeError):
            raise _fast_error(self, "mul_", (other,)) from None
        bump(self)
        return self
    return inplace(self, "mul_", lambda s: E.mul(s, other), other)


def div_(self, other, *, rounding_mode=None):
    if rounding_mode is None and _fast(self, (other,)) and self._data.dtype.kind == "f":
        try:
            self._data /= _scalar_or_data(other)
        except (ValueError, TypeError):
            raise _fast_error(self, "div_", (other,)) from None
        bump(self)
        return self
    return inplace(self, "div_", lambda s: E.true_divide(s, other, rounding_mode=rounding_mode),
                   other)


def copy_(self, other, non_blocking=False):
    """Copy ``other`` (broadcast, cast, moved) into this tensor (torch's name: ``src``)."""
    src = other
    if not isinstance(src, Tensor):
        src = C.tensor(src)
    if _fast(self, (src,)):
        _store_cast(self, src._data)
        bump(self)
        return self

    def compute(s):
        r = src.to(self.device).to(self.dtype)
        r = r + s * 0 if r.shape != s.shape else r * 1
        return r

    return inplace(self, "copy_", compute, src)


def _store_cast(t: Tensor, arr) -> None:
    d = t._data
    if arr.__class__ is not d.__class__:
        arr = B.move(arr, B.device_of(d))
    if not B.writeable(d):
        raise RuntimeError("copy_(): the destination is an expanded view; clone() it first")
    try:
        d[...] = arr
    except ValueError as e:
        raise RuntimeError(f"copy_(): the size of src {list(arr.shape)} can't be broadcast to "
                           f"the destination's size {list(d.shape)}: {e}") from None


def fill_(self, value):
    if isinstance(value, Tensor) and value._requires_grad and D.grad_enabled:
        return inplace(self, "fill_", lambda s: s * 0 + value, value)
    _leaf_check(self, "fill_")
    if D.grad_enabled and self._requires_grad:
        return inplace(self, "fill_", lambda s: s * 0 + value)
    self._data.fill(_scalar_or_data(value) if not isinstance(value, Tensor) else value.item())
    bump(self)
    return self


def zero_(self):
    return fill_(self, 0)


def _unary_inplace(name, fn):
    def m(self, *args, **kwargs):
        return inplace(self, name, lambda s: fn(s, *args, **kwargs),
                       *[a for a in args if isinstance(a, Tensor)])

    m.__name__ = name
    return m


for _n, _f in (("neg_", E.neg), ("abs_", E.abs), ("relu_", E.relu), ("floor_", E.floor),
               ("ceil_", E.ceil), ("trunc_", E.trunc), ("sign_", E.sign),
               ("square_", E.square), ("clamp_", E.clamp), ("clip_", E.clamp),
               ("clamp_min_", E.clamp_min), ("clamp_max_", E.clamp_max), ("pow_", E.pow),
               ("lerp_", E.lerp), ("round_", E.round), ("remainder_", E.remainder),
               ("fmod_", E.fmod), ("maximum_", E.maximum), ("minimum_", E.minimum),
               ("nan_to_num_", E.nan_to_num), ("floor_divide_", E.floor_divide)):
    method(_n, _unary_inplace(_n, _f))
for _n, _f in E.FLOAT_UNARY.items():
    method(_n + "_", _unary_inplace(_n + "_", _f))


def addcmul_(self, tensor1, tensor2, *, value=1):
    t1, t2 = tensor1, tensor2
    if _fast(self, (t1, t2)):
        try:
            self._data += value * (t1._data * t2._data)
        except (ValueError, TypeError):
            raise _fast_error(self, "addcmul_", (t1, t2)) from None
        bump(self)
        return self
    return inplace(self, "addcmul_", lambda s: s + value * t1 * t2, t1, t2)


def addcdiv_(self, tensor1, tensor2, *, value=1):
    t1, t2 = tensor1, tensor2
    if _fast(self, (t1, t2)):
        try:
            self._data += value * (t1._data / t2._data)
        except (ValueError, TypeError):
            raise _fast_error(self, "addcdiv_", (t1, t2)) from None
        bump(self)
        return self
    return inplace(self, "addcdiv_", lambda s: s + value * t1 / t2, t1, t2)


def addcmul(input, tensor1, tensor2, *, value=1):
    return input + value * tensor1 * tensor2


def addcdiv(input, tensor1, tensor2, *, value=1):
    return input + value * tensor1 / tensor2


def uniform_(self, from_=0.0, to=1.0, *, generator=None, **kwargs):
    """Fill with samples of U(from, to); torch's keyword ``from`` is a Python keyword, so it
    arrives in ``kwargs`` (``x.uniform_(**{"from": -1, "to": 1})``)."""
    if kwargs:
        if set(kwargs) != {"from"}:
            raise TypeError(f"uniform_() got an unexpected keyword argument "
                            f"'{next(k for k in kwargs if k != 'from')}'")
        from_ = kwargs["from"]
    a, b = from_, to
    _leaf_check_random(self, "uniform_")
    r = C._rng(generator, self.device).random(self._data.shape)
    _store(self, B.move((r * (b - a) + a).astype(self._data.dtype), self.device), "uniform_")
    bump(self)
    return self


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    _leaf_check_random(self, "normal_")
    r = C._rng(generator, self.device).standard_normal(self._data.shape)
    _store(self, B.move((r * std + mean).astype(self._data.dtype), self.device), "normal_")
    bump(self)
    return self


def bernoulli_(self, p=0.5, *, generator=None):
    r = C._rng(generator, self.device).random(self._data.shape)
    self._data[...] = B.move((r < p).astype(self._data.dtype), self.device)
    bump(self)
    return self


def random_(self, low=0, high=None, *, generator=None):
    if high is None:
        low, high = 0, low if low else 2**24
    r = C._rng(generator, self.device).integers(low, high, size=self._data.shape)
    self._data[...] = B.move(r.astype(self._data.dtype), self.device)
    bump(self)
    return self


def exponential_(self, lambd=1.0, *, generator=None):
    r = C._rng(generator, self.device).exponential(1.0 / lambd, size=self._data.shape)
    self._data[...] = B.move(r.astype(self._data.dtype), self.device)
    bump(self)
    return self


def _leaf_check_random(t, name):
    if t._requires_grad and t.grad_fn is None and D.grad_enabled:
        raise RuntimeError(f"{name}(): a leaf Variable that requires grad is being used in an "
                           "in-place operation. Use `with dyntorch.no_grad():` (as nn.init does).")


def iadd(self, other):
    return add_(self, other)


for _n, _f in (("add_", add_), ("sub_", sub_), ("subtract_", sub_), ("mul_", mul_),
               ("multiply_", mul_), ("div_", div_), ("divide_", div_), ("copy_", copy_),
               ("fill_", fill_), ("zero_", zero_), ("addcmul_", addcmul_),
               ("addcdiv_", addcdiv_), ("addcmul", addcmul), ("addcdiv", addcdiv),
               ("uniform_", uniform_), ("normal_", normal_), ("bernoulli_", bernoulli_),
               ("random_", random_), ("exponential_", exponential_),
               ("__iadd__", add_), ("__isub__", sub_), ("__imul__", mul_),
               ("__itruediv__", div_)):
    method(_n, _f)
