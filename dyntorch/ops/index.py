"""Indexing: ``x[...]`` and ``x[...] = v``, gather/scatter, masks, sorting, nonzero, unique.

An index is normalised once into a key of ints, slices, None, Ellipsis and integer arrays on
the tensor's device (bool masks become their ``nonzero()`` coordinates); the key travels with
the node as an attribute. Gradients scatter back: by assignment for basic keys (no position
repeats), by ``add.at`` for advanced keys (repeated indices add up).
"""
from __future__ import annotations

import builtins
import collections
import numbers
from collections.abc import Sequence as _Sequence

import numpy as np

from .. import _backend as B
from .. import _dispatch as D
from .._dispatch import op
from .._tensor import Tensor, _make
from ._ns import _add_at, _along_index
from ._util import method, norm_dim


def xp_like(v):
    """Array module of an array or Tensor."""
    return B.xp_of(v._data if isinstance(v, Tensor) else v)


def _raw(v):
    return v._data if isinstance(v, Tensor) else v


# ----------------------------------------------------------------------------- index keys
def _index_error(i, d, size):
    return IndexError(f"index {i} is out of bounds for dimension {d} with size {size}")


def _check_range(xp, arr, size, d):
    if arr.size == 0:
        return
    lo, hi = int(arr.min()), int(arr.max())
    if hi >= size:
        raise _index_error(hi, d, size)
    if lo < -size:
        raise _index_error(lo, d, size)


def _as_index_array(v, xp):
    """An integer or bool index array on ``xp`` from a Tensor, list or array."""
    if isinstance(v, Tensor):
        a = v._data
        if a.dtype.kind not in "biu":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors, "
                             f"got {v.dtype}")
        if B.xp_of(a) is not xp:
            a = xp.asarray(B.to_numpy(a)) if xp is not np else B.to_numpy(a)
        return a
    if isinstance(v, (list, tuple)):
        v = [_raw(x) if isinstance(x, Tensor) else x for x in v]
        a = np.asarray(v)
        if a.size == 0:
            a = a.astype(np.int64)
    else:
        a = v
    if a.dtype.kind not in "biu":
        raise IndexError("tensors used as indices must be long, int, byte or bool tensors, got "
                         f"{a.dtype}")
    return xp.asarray(a) if xp is not np else np.asarray(a)


def normalize_key(shape, idx, xp):
    """``(key, basic)``: ``idx`` as a tuple NumPy/CuPy can index with, checked against ``shape``."""
    if not isinstance(idx, tuple):
        if isinstance(idx, list) and len(idx) < 32 and builtins.any(
                isinstance(v, (Tensor, list, tuple, slice, range)) or v is None or
                v is Ellipsis for v in idx):
            idx = tuple(idx)  # torch's (deprecated) rule: such a list means a tuple
        else:
            idx = (idx,)
    n_used = 0
    for v in idx:
        if v is None or v is Ellipsis:
            continue
        if isinstance(v, Tensor) and v._data.dtype.kind == "b":
            n_used += v._data.ndim
        elif isinstance(v, np.ndarray) and v.dtype.kind == "b":
            n_used += v.ndim
        else:
            n_used += 1
    nd = len(shape)
    if n_used > nd:
        raise IndexError(f"too many indices for tensor of dimension {nd}")
    key = []
    basic = True
    d = 0  # the input dim the next entry indexes
    for v in idx:
        if isinstance(v, _Sequence) and not isinstance(v, (list, tuple, str, bytes, Tensor)):
            v = list(v)  # range and other sequences of ints index as the list would (torch)
        if v is None:
            key.append(None)
            continue
        if v is Ellipsis:
            key.append(Ellipsis)
            d += nd - n_used
            continue
        if isinstance(v, slice):
            if v.step is not None and int(v.step) <= 0:
                raise ValueError("step must be greater than zero")
            key.append(slice(None if v.start is None else int(v.start),
                             None if v.stop is None else int(v.stop),
                             None if v.step is None else int(v.step)))
            d += 1
            continue
        if isinstance(v, (bool, np.bool_)):
            key.append(bool(v))  # numpy semantics: adds a dim of size 1 or 0
            basic = False
            continue
        if isinstance(v, numbers.Integral) or (isinstance(v, Tensor) and v._data.ndim == 0 and
                                               v._data.dtype.kind in "iu"):
            i = int(v)
            size = shape[d]
            if not -size <= i < size:
                raise _index_error(i, d, size)
            key.append(i)
            d += 1
            continue
        if isinstance(v, (Tensor, list, tuple, np.ndarray)) or hasattr(
                v, "__cuda_array_interface__"):
            a = _as_index_array(v, xp)
            if a.dtype.kind == "b":
                msh = a.shape
                if a.ndim == 0:
                    key.append(a)
                    basic = False
                    continue
                for k, s in enumerate(msh):
                    if shape[d + k] != s:
                        raise IndexError(
                            f"The shape of the mask {list(msh)} at index {k} does not match the "
                            f"shape of the indexed tensor {list(shape)} at index {d + k}")
                key.extend(xp.nonzero(a))
                d += a.ndim
            else:
                _check_range(xp, a, shape[d], d)
                key.append(a)
                d += 1
            basic = False
            continue
        raise IndexError(f"only integers, slices (`:`), ellipsis (`...`), None and long or byte "
                         f"Variables are valid indices (got {type(v).__name__})")
    if basic and Ellipsis not in key:
        key.append(Ellipsis)  # so an all-int key gives a 0-d view, not a scalar copy
    return tuple(key), basic


# ----------------------------------------------------------------------------- getitem ops
def _basic_forward(xp, a, key, in_shape=None):
    return a[key]


def _basic_derivative(ns, g, _a, *, key, in_shape=None):
    return ns.index_add(in_shape, key, g, basic=True)


_slice = op(name="slice", view=True)(_basic_forward)
_slice.def_derivative(_basic_derivative)
_select = op(name="select", view=True)(_basic_forward)
_select.def_derivative(_basic_derivative)


@op(name="index")
def _adv(xp, a, key, in_shape=None):
    return a[key]


@_adv.def_derivative
def _(ns, g, _a, *, key, in_shape=None):
    return ns.index_add(in_shape, key, g)


def _is_basic(key) -> bool:
    for k in key:
        if k is not None and k is not Ellipsis and not isinstance(k, (int, slice)):
            return False
        if isinstance(k, bool):
            return False
    return True


def _run_key(x: Tensor, key, basic: bool) -> Tensor:
    shp = x._data.shape
    if basic:
        f = _select if builtins.any(isinstance(k, int) for k in key) else _slice
        return f(x, key=key, in_shape=shp)
    return _adv(x, key=key, in_shape=shp)


def _fast_key(shape, idx):
    """The key for the common ``x[i]``, ``x[a:b]``, ``x[i, a:b]`` forms, or None."""
    if idx.__class__ is int:
        idx = (idx,)
    elif idx.__class__ is slice:
        return (idx, Ellipsis)
    elif idx.__class__ is not tuple or len(idx) > len(shape):
        return None
    for d, k in enumerate(idx):
        c = k.__class__
        if c is int:
            if not -shape[d] <= k < shape[d]:
                return None  # normalize_key raises the error
        elif c is not slice or (k.step is not None and k.step.__class__ is not int) or (
                k.step is not None and k.step <= 0):
            return None
    return idx + (Ellipsis,)


def getitem(self: Tensor, idx) -> Tensor:
    """``x[idx]`` (``Tensor.__getitem__``).

    Parameters
    ----------
    idx : int, slice, None, Ellipsis, Tensor, list, ndarray or a tuple of these
        Basic keys (ints, slices, None, ...) give views; integer and bool tensors/lists
        index as in torch/NumPy (advanced indexing copies).

    Returns
    -------
    Tensor
        Its gradient scatters back into the input's shape (repeated indices add up).

    Raises
    ------
    IndexError
        "index 3 is out of bounds for dimension 0 with size 3", a bad mask shape, too many
        indices, or a float index tensor.
    """
    shp = self._data.shape
    key = _fast_key(shp, idx)
    if key is not None:
        f = _select if idx.__class__ is int or builtins.any(k.__class__ is int
                                                            for k in key) else _slice
        return f(self, key=key, in_shape=shp)
    key, basic = normalize_key(shp, idx, xp_like(self))
    return _run_key(self, key, basic)


def select_dim(x: Tensor, d: int, i: int) -> Tensor:
    return _select(x, key=(slice(None),) * d + (i, Ellipsis), in_shape=x._data.shape)


def slice_dim(x: Tensor, d: int, start: int, stop: int) -> Tensor:
    return _slice(x, key=(slice(None),) * d + (slice(start, stop), Ellipsis),
                  in_shape=x._data.shape)


def _unwrap_key(key):
    return tuple(_raw(k) if isinstance(k, Tensor) else k for k in key)


def getitem_arrays(x: Tensor, idx) -> Tensor:
    """``x[idx]`` for an already normalised key (TensorNS vocabulary; records graph)."""
    key = _unwrap_key(idx if isinstance(idx, tuple) else (idx,))
    return _run_key(x, key, _is_basic(key))


@op(name="index_into_zeros", backward_name="IndexPutBackward0")
def _into_zeros(xp, g, shape, key, basic):
    out = xp.zeros(shape, dtype=g.dtype)
    if basic:
        out[key] = g
    else:
        _add_at(xp, out, key, g)
    return out


@_into_zeros.def_derivative
def _(ns, gg, _g, *, shape, key, basic):
    return ns.getitem(gg, key)


def index_add_arrays(shape, idx, g, basic=False) -> Tensor:
    """zeros(shape) with ``g`` put (``basic``) or added at ``idx`` (TensorNS vocabulary)."""
    key = _unwrap_key(idx if isinstance(idx, tuple) else (idx,))
    if not isinstance(g, Tensor):
        g = _make(g)
    return _into_zeros(g, shape=tuple(shape), key=key, basic=bool(basic))


# ----------------------------------------------------------------------------- setitem
@op(name="index_put")
def _index_put(xp, a, v, key, accumulate=False):
    out = a.copy()
    if accumulate:
        _add_at(xp, out, key, v)
    else:
        out[key] = v
    return out


@_index_put.def_derivative
def _(ns, g, _a, _v, *, key, accumulate=False, needs):
    picked = ns.getitem(g, key) if needs[1] or not accumulate else None
    ga = None
    if needs[0]:
        ga = g if accumulate else g - ns.index_add(tuple(g.shape), key, picked, basic=True)
    return ga, picked if needs[1] else None


def _value_like(self: Tensor, value) -> Tensor:
    if isinstance(value, Tensor):
        if value._data.__class__ is not self._data.__class__ and value._data.ndim == 0:
            value = value.to(self.device)  # a 0-dim CPU tensor acts like a number (torch)
        if value._data.__class__ is not self._data.__class__:
            raise RuntimeError(f"setitem: expected the value on {self.device}, got it on "
                               f"{value.device}. Move it with `.to(device)` first.")
        return value.to(self.dtype) if value._data.dtype != self._data.dtype else value
    xp = xp_like(self)
    return _make(xp.asarray(value, dtype=self._data.dtype))


def _recording(self, value) -> bool:
    return D.grad_enabled and (self._requires_grad or (
        isinstance(value, Tensor) and value._requires_grad))


def _put(self: Tensor, key, value, accumulate, name) -> Tensor:
    from .inplace import bump, inplace

    v = _value_like(self, value)
    if _recording(self, v):
        return inplace(self, name, lambda s: _index_put(s, v, key=key, accumulate=accumulate), v)
    d = self._data
    if not B.writeable(d):
        raise RuntimeError(
            f"{name}(): unsupported operation: more than one element of the written-to tensor "
            "refers to a single memory location (it is an expanded view). Please clone() the "
            "tensor before performing the operation.")
    try:
        if accumulate:
            _add_at(xp_like(self), d, key, v._data)
        else:
            d[key] = v._data
    except ValueError as e:
        raise RuntimeError(f"{name}(): shape mismatch: value tensor of shape "
                           f"{list(v._data.shape)} cannot be broadcast to the indexed result: "
                           f"{e}") from None
    bump(self)
    return self


def setitem(self: Tensor, idx, value) -> None:
    """``x[idx] = value`` in place; differentiable when ``x`` or ``value`` requires grad."""
    key, _ = normalize_key(self._data.shape, idx, xp_like(self))
    _put(self, key, value, False, "setitem")


def _indices_key(self, indices):
    if isinstance(indices, Tensor) or not isinstance(indices, (tuple, list)):
        indices = (indices,)
    return normalize_key(self._data.shape, tuple(slice(None) if i is None else i
                                                  for i in indices), xp_like(self))[0]


def index_put_(input: Tensor, indices, values, accumulate: bool = False) -> Tensor:
    """``input[indices] = values`` (or ``+=`` when ``accumulate``) in place."""
    self = input
    return _put(self, _indices_key(self, indices), values, accumulate, "index_put_")


def index_put(input: Tensor, indices, values, accumulate: bool = False) -> Tensor:
    """Out-of-place :func:`index_put_` (``torch.index_put``)."""
    key = _indices_key(input, indices)
    return _index_put(input, _value_like(input, values), key=key, accumulate=accumulate)


# ----------------------------------------------------------------------------- gather/scatter
def _check_index_tensor(index, name):
    if not isinstance(index, Tensor) or index._data.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int64 for index")


def _check_along(input, dim, index, name, other=None):
    nd = input._data.ndim
    if index._data.ndim != nd and not (nd == 0 and index._data.ndim <= 1):
        raise RuntimeError(f"{name}(): Index tensor must have the same number of dimensions as "
                           f"input tensor ({index._data.ndim} vs {nd})")
    for k in range(nd):
        if k != dim and index._data.shape[k] > input._data.shape[k]:
            raise RuntimeError(
                f"{name}(): Size does not match at dimension {k} expected index "
                f"{list(index._data.shape)} to be no larger than self "
                f"{list(input._data.shape)} apart from dimension {dim}")
        if other is not None and index._data.shape[k] > other._data.shape[k]:
            raise RuntimeError(
                f"{name}(): Expected index {list(index._data.shape)} to be no larger than src "
                f"{list(other._data.shape)} in any dimension")
    if nd:
        _check_range(xp_like(index), index._data, input._data.shape[dim], dim)


@op(name="gather")
def _gather(xp, a, index, axis, in_shape=None):
    return a[_along_index(xp, index, axis)]


@_gather.def_derivative
def _(ns, g, _a, index, *, axis, in_shape=None):
    return ns.scatter_add(in_shape, index, g, axis), None


def gather(input: Tensor, dim: int, index: Tensor, *, sparse_grad: bool = False) -> Tensor:
    """Values of ``input`` at ``index`` along ``dim`` (``torch.gather``).

    Parameters
    ----------
    input : Tensor
    dim : int
    index : Tensor
        Integer, same number of dims as ``input``, no larger than it outside ``dim``.

    Returns
    -------
    Tensor
        Shaped like ``index``: ``out[i][j] = input[index[i][j]][j]`` for ``dim=0``.

    Raises
    ------
    IndexError
        For an index out of range ("index 5 is out of bounds for dimension 1 with size 3").
    """
    _check_index_tensor(index, "gather")
    d = norm_dim(dim, input._data.ndim, "gather", single=True)
    _check_along(input, d, index, "gather")
    if input._data.ndim == 0:
        return _adv(input, key=(index._data.reshape(-1) * 0,), in_shape=()).reshape(
            index.shape)
    return _gather(input, index, axis=d, in_shape=input._data.shape)


def take_along_arrays(x, idx, axis) -> Tensor:
    """``np.take_along_axis`` on Tensors (TensorNS vocabulary; records graph)."""
    from .shape import expand

    idx = idx if isinstance(idx, Tensor) else _make(idx)
    axis = axis % x.ndim
    xs, ids = list(x._data.shape), list(idx._data.shape)
    full = [builtins.max(a, b) for a, b in zip(xs, ids)]
    xs_t = [s if k == axis else full[k] for k, s in enumerate(xs)]
    id_t = [s if k == axis else full[k] for k, s in enumerate(ids)]
    if xs_t != xs:
        x = expand(x, *xs_t)
    if id_t != ids:
        idx = expand(idx, *id_t)
    return _gather(x, idx, axis=axis, in_shape=tuple(xs_t))


@op(name="scatter_into_zeros", backward_name="ScatterAddBackward0")
def _scatter_zeros(xp, src, index, shape, axis):
    out = xp.zeros(shape, dtype=src.dtype)
    _add_at(xp, out, _along_index(xp, index, axis), src)
    return out


@_scatter_zeros.def_derivative
def _(ns, gg, _src, index, *, shape, axis):
    return ns.getitem(gg, _along_index(xp_like(index), _raw(index), axis)), None


def scatter_add_arrays(shape, idx, src, axis) -> Tensor:
    """zeros(shape) with ``src`` added at ``idx`` along ``axis`` (TensorNS vocabulary)."""
    idx = idx if isinstance(idx, Tensor) else _make(idx)
    src = src if isinstance(src, Tensor) else _make(src)
    return _scatter_zeros(src, idx, shape=tuple(shape), axis=axis % len(shape))


def _crop(src, index_shape):
    if tuple(src.shape) == tuple(index_shape):
        return src
    return src[tuple(slice(0, s) for s in index_shape)]


@op(name="scatter", backward_name="ScatterBackward0")
def _scatter(xp, a, index, src, axis, reduce=None):
    out = a.copy()
    where = _along_index(xp, index, axis)
    v = _crop(src, index.shape) if hasattr(src, "shape") and src.ndim else src
    if reduce is None:
        out[where] = v
    elif reduce == "add":
        _add_at(xp, out, where, v)
    else:
        xp.multiply.at(out, where, v)
    return out


def _pad_to(ns, gsrc, src_shape):
    if tuple(gsrc.shape) == tuple(src_shape):
        return gsrc
    return ns.index_add(tuple(src_shape), tuple(slice(0, s) for s in gsrc.shape), gsrc,
                        basic=True)


@_scatter.def_derivative
def _(ns, g, _a, index, src, *, axis, reduce=None, needs):
    if reduce == "multiply":
        raise RuntimeError("scatter(reduce='multiply'): the gradient is not implemented")
    where = _along_index(xp_like(index), _raw(index), axis)
    picked = ns.getitem(g, where)
    ga = None
    if needs[0]:
        ga = g if reduce == "add" else g - ns.index_add(tuple(g.shape), where, picked,
                                                       basic=True)
    gs = _pad_to(ns, picked, src.shape) if needs[2] else None
    return ga, None, gs


def scatter(input: Tensor, dim: int, index: Tensor, src=None, *, value=None,
            reduce=None) -> Tensor:
    """Write ``src`` (or ``value``) into a copy of ``input`` at ``index`` along ``dim``.

    Parameters
    ----------
    input : Tensor
    dim : int
    index : Tensor
        Integer, same number of dims as ``input``.
    src : Tensor or number
        What is written (only its leading ``index.shape`` part is used).
    value : number, optional
        Keyword spelling of a number ``src``.
    reduce : {None, 'add', 'multiply'}
        Combine with the present values instead of overwriting.

    Returns
    -------
    Tensor
    """
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter(): pass `src` (a tensor) or `value` (a number)")
    _check_index_tensor(index, "scatter")
    d = norm_dim(dim, input._data.ndim, "scatter", single=True)
    _check_along(input, d, index, "scatter", src if isinstance(src, Tensor) else None)
    if reduce not in (None, "add", "multiply"):
        raise RuntimeError(f"scatter(): reduce argument must be either add or multiply, got "
                           f"{reduce}")
    if isinstance(src, Tensor) and src._data.dtype != input._data.dtype:
        src = src.to(input.dtype)
    return _scatter(input, index, src, axis=d, reduce=reduce)


def scatter_add(input: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """Add ``src`` into a copy of ``input`` at ``index`` along ``dim`` (``torch.scatter_add``)."""
    return scatter(input, dim, index, src, reduce="add")


def _scatter_(self, dim, index, src=None, *, value=None, reduce=None):
    from .inplace import inplace

    s = src if src is not None else value
    return inplace(self, "scatter_", lambda t: scatter(t, dim, index, s, reduce=reduce),
                   *([s] if isinstance(s, Tensor) else []))


def _scatter_add_(self, dim, index, src):
    from .inplace import inplace

    return inplace(self, "scatter_add_", lambda t: scatter_add(t, dim, index, src), src)


def scatter_reduce(input: Tensor, dim: int, index: Tensor, src: Tensor, reduce: str, *,
                   include_self: bool = True) -> Tensor:
    """Reduce ``src`` into ``input`` at ``index`` ('sum', 'prod', 'mean', 'amax', 'amin').

    Differentiable in ``input`` and ``src`` for every reduction, with torch's rules (ties of
    amax/amin share the gradient; prod's zeros are counted). 'prod', 'amax' and 'amin' run
    on the CPU only.
    """
    if reduce == "sum":
        if include_self:
            return scatter_add(input, dim, index, src)
        base = scatter(input, dim, index, 0.0)
        return scatter_add(base, dim, index, src)
    if reduce == "mean":
        ones = _make(xp_like(src).ones(index._data.shape, dtype=input._data.dtype))
        tot = scatter_reduce(input, dim, index, src, "sum", include_self=include_self)
        cnt = scatter_reduce(_make(xp_like(input).full(input._data.shape,
                                                       1.0 if include_self else 0.0,
                                                       dtype=input._data.dtype)),
                             dim, index, ones, "sum", include_self=True)
        return tot / cnt.clamp(min=1)
    if reduce not in _EXTREME_UFUNC:
        raise RuntimeError(f"scatter_reduce(): reduce argument must be one of sum, prod, mean, "
                           f"amax, amin, got {reduce}")
    if xp_like(input) is not np:
        raise NotImplementedError(f"scatter_reduce('{reduce}') is CPU-only in dyntorch")
    d = norm_dim(dim, input._data.ndim, "scatter_reduce", single=True)
    return _scatter_reduce(input, index, src, axis=d, reduce=reduce, include_self=include_self)


_EXTREME_UFUNC = {"prod": "multiply", "amax": "maximum", "amin": "minimum"}


def _identity(reduce, dtype):
    if reduce == "prod":
        return 1
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return info.min if reduce == "amax" else info.max
    return -np.inf if reduce == "amax" else np.inf


@op(name="scatter_reduce", backward_name="ScatterReduceBackward0")
def _scatter_reduce(xp, a, index, src, axis, reduce, include_self=True):
    out = a.copy()
    where = _along_index(xp, index, axis)
    if not include_self:
        out[where] = _identity(reduce, a.dtype)
    getattr(xp, _EXTREME_UFUNC[reduce]).at(out, where, _crop(src, index.shape))
    return out


@_scatter_reduce.def_derivative
def _(ns, g, a, index, src, out, axis, reduce, include_self=True):
    # torch's rules: amax/amin share the gradient evenly among the input and source entries
    # equal to the result; prod gives each entry the product of the others (zeros counted)
    xp = ns.xp
    if xp is None:
        raise RuntimeError(f"scatter_reduce(reduce='{reduce}'): double backward "
                           "(create_graph=True) is not supported")
    where = _along_index(xp, index, axis)
    s = _crop(src, index.shape)
    joins = xp.ones(a.shape, bool)  # where the input takes part in its result
    if not include_self:
        joins[where] = False
    if reduce == "prod":
        zeros = (joins & (a == 0)).astype(np.int64)
        xp.add.at(zeros, where, (s == 0).astype(np.int64))
        rest = xp.where(joins & (a != 0), a, 1).astype(g.dtype)  # product of the nonzero ones
        xp.multiply.at(rest, where, xp.where(s == 0, 1, s))

        def others(e, z, p):
            return xp.where(e == 0, xp.where(z == 1, p, 0),
                            xp.where(z == 0, p / xp.where(e == 0, 1, e), 0))

        ga = xp.where(joins, g * others(a, zeros, rest), 0)
        gs = g[where] * others(s, zeros[where], rest[where])
    else:
        # torch counts an input entry equal to the result among the ties even when
        # include_self=False (then its share goes nowhere); so do we, to give its numbers
        self_in = a == out
        src_in = s == out[where]
        count = self_in.astype(g.dtype)
        xp.add.at(count, where, src_in.astype(g.dtype))
        share = g / xp.where(count > 0, count, 1)
        ga = xp.where(self_in & joins, share, 0)
        gs = xp.where(src_in, share[where], 0)
    if gs.shape != src.shape:  # src larger than index: its other entries took no part
        full = xp.zeros(src.shape, gs.dtype)
        full[tuple(slice(0, n) for n in index.shape)] = gs
        gs = full
    return ga.astype(g.dtype, copy=False), None, gs.astype(g.dtype, copy=False)


# ----------------------------------------------------------------------------- index_select
@op(name="index_select")
def _index_select(xp, a, index, axis, in_shape=None):
    return xp.take(a, index, axis=axis)


@_index_select.def_derivative
def _(ns, g, _a, index, *, axis, in_shape=None):
    return ns.index_add(in_shape, (slice(None),) * axis + (_raw(index),), g), None


def index_select(input: Tensor, dim: int, index: Tensor) -> Tensor:
    """Rows (along ``dim``) of ``input`` picked by a 1-D ``index`` (``torch.index_select``)."""
    _check_index_tensor(index, "index_select")
    if index._data.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    if index._data.ndim == 0:
        index = index.reshape(1)
    nd = input._data.ndim
    d = norm_dim(dim, nd, "index_select", single=True)
    if nd == 0:
        return _adv(input.reshape(1), key=(index._data,), in_shape=(1,))
    _check_range(xp_like(index), index._data, input._data.shape[d], d)
    return _index_select(input, index, axis=d, in_shape=input._data.shape)


@op(name="index_add")
def _index_add(xp, a, index, src, axis, alpha=1):
    out = a.copy()
    _add_at(xp, out, (slice(None),) * axis + (index,), src if alpha == 1 else src * alpha)
    return out


@_index_add.def_derivative
def _(ns, g, _a, index, _src, *, axis, alpha=1, needs):
    gs = None
    if needs[2]:
        gs = ns.getitem(g, (slice(None),) * axis + (_raw(index),))
        if alpha != 1:
            gs = gs * alpha
    return g, None, gs


def index_add(input: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha=1) -> Tensor:
    """A copy of ``input`` with ``alpha * source`` added at ``index`` along ``dim``."""
    _check_index_tensor(index, "index_add")
    d = norm_dim(dim, input._data.ndim, "index_add", single=True)
    _check_range(xp_like(index), index._data, input._data.shape[d], d)
    if source._data.dtype != input._data.dtype:
        source = source.to(input.dtype)
    return _index_add(input, index.reshape(-1), source, axis=d, alpha=alpha)


def _index_add_(self, dim, index, source, *, alpha=1):
    from .inplace import inplace

    return inplace(self, "index_add_", lambda t: index_add(t, dim, index, source, alpha=alpha),
                   source)


def index_fill(input: Tensor, dim: int, index: Tensor, value) -> Tensor:
    d = norm_dim(dim, input._data.ndim, "index_fill", single=True)
    key = (slice(None),) * d + (index._data.reshape(-1),)
    return _index_put(input, _value_like(input, value), key=key, accumulate=False)


# ----------------------------------------------------------------------------- masks
@op(name="masked_fill")
def _masked_fill(xp, a, mask, value):
    return xp.where(mask, value, a).astype(a.dtype, copy=False)


@_masked_fill.def_derivative
def _(ns, g, _a, mask, _value, *, needs):
    ga = ns.where(mask, 0.0, g) if needs[0] else None
    gv = ns.sum(ns.where(mask, g, 0.0)) if needs[2] else None
    return ga, None, gv


def masked_fill(input: Tensor, mask: Tensor, value) -> Tensor:
    """``value`` where ``mask`` is True, else ``input`` (``torch.masked_fill``)."""
    if not isinstance(mask, Tensor) or mask._data.dtype.kind != "b":
        raise RuntimeError(f"masked_fill_ only supports boolean masks, but got mask with dtype "
                           f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if isinstance(value, Tensor):
        if value._data.ndim != 0:
            raise RuntimeError(f"masked_fill_ only supports a 0-dimensional value tensor, but "
                               f"got tensor with {value._data.ndim} dimension(s).")
        if value._data.dtype != input._data.dtype:
            value = value.to(input.dtype)
    return _masked_fill(input, mask, value)


def _masked_fill_(self, mask, value):
    from .inplace import inplace

    return inplace(self, "masked_fill_", lambda t: masked_fill(t, mask, value),
                   *([value] if isinstance(value, Tensor) else []))


def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """1-D tensor of the elements where ``mask`` (broadcast) is True (``torch.masked_select``)."""
    from .shape import broadcast_tensors

    if mask._data.dtype.kind != "b":
        raise RuntimeError(f"masked_select: expected BoolTensor for mask, got {mask.dtype}")
    x, m = broadcast_tensors(input, mask)
    return getitem(x, m)


def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    from .shape import broadcast_tensors

    x, m = broadcast_tensors(input, mask)
    key, _ = normalize_key(x._data.shape, m, xp_like(x))
    n = int(key[0].shape[0]) if key else 0
    vals = source.reshape(-1)[:n]
    return _index_put(x.contiguous() if x._base is not None else x, vals, key=key,
                      accumulate=False)


def take_along_dim(input: Tensor, indices: Tensor, dim=None) -> Tensor:
    """Values of ``input`` at ``indices`` along ``dim`` (broadcasting the other dims)."""
    if dim is None:
        return take_along_arrays(input.reshape(-1), indices.reshape(-1), 0)
    d = norm_dim(dim, input._data.ndim, "take_along_dim", single=True)
    _check_range(xp_like(indices), indices._data, input._data.shape[d], d)
    return take_along_arrays(input, indices, d)


def take(input: Tensor, index: Tensor) -> Tensor:
    """``input.flatten()[index]``, shaped like ``index`` (``torch.take``)."""
    return getitem(input.reshape(-1), index)


# ----------------------------------------------------------------------------- nonzero
def nonzero(input: Tensor, *, as_tuple: bool = False):
    """Indices of the non-zero elements (``torch.nonzero``)."""
    xp = xp_like(input)
    d = input._data
    if d.ndim == 0:
        d = d.reshape(1)
        nz = xp.nonzero(d)
        if as_tuple:
            return (_make(nz[0].astype(np.int64)),)
        return _make(xp.zeros((int(nz[0].shape[0]), 0), dtype=np.int64))
    nz = xp.nonzero(d)
    if as_tuple:
        return tuple(_make(a.astype(np.int64, copy=False)) for a in nz)
    return _make(xp.stack(nz, axis=1).astype(np.int64, copy=False))


def argwhere(input: Tensor) -> Tensor:
    return nonzero(input)


# ----------------------------------------------------------------------------- sorting
def return_type(name: str, fields=("values", "indices")):
    """A named tuple printed like ``torch.return_types.<name>(values=..., indices=...)``."""
    base = collections.namedtuple(name, fields)

    def __repr__(self):
        body = ",\n".join(f"{f}={v!r}" for f, v in zip(self._fields, self))
        return f"dyntorch.return_types.{name}(\n{body})"

    cls = type(name, (base,), {"__slots__": (), "__repr__": __repr__})
    cls.__module__ = "dyntorch.return_types"
    return cls


_sort_rt = return_type("sort")
_topk_rt = return_type("topk")


def _argsort(xp, a, axis, descending):
    """Stable argsort; descending keeps ties in their order and puts NaN first, like torch."""
    if not descending:
        return xp.argsort(a, axis=axis, kind="stable")
    idx = xp.argsort(xp.flip(a, axis), axis=axis, kind="stable")
    return (a.shape[axis] - 1) - xp.flip(idx, axis)


def _vi_derivative(ns, g, _a, out, *, axis, in_shape, keepdims=True, **_):
    """Gradient of (values, indices) ops: each value's gradient goes to its index."""
    idx = out[1]
    if not keepdims and len(in_shape):
        g = ns.expand_dims(g, axis)
        idx = idx.unsqueeze(axis) if isinstance(idx, Tensor) else ns.xp.expand_dims(idx, axis)
    if not len(in_shape):
        return g
    return ns.scatter_add(in_shape, idx, g, axis)


@op(name="sort", multi=True)
def _sort(xp, a, axis, descending=False, in_shape=None):
    if a.ndim == 0:
        return a.copy(), xp.zeros((), dtype=np.int64)
    idx = _argsort(xp, a, axis, descending)
    return xp.take_along_axis(a, idx, axis=axis), idx.astype(np.int64, copy=False)


_sort.def_derivative(_vi_derivative)


def sort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """Sorted values and their indices along ``dim`` (``torch.sort``).

    Parameters
    ----------
    input : Tensor
    dim : int
    descending : bool
        Largest first; NaN counts as the largest, as in torch.
    stable : bool
        Accepted for torch compatibility; the sort is always stable.

    Returns
    -------
    (values, indices)
        A named tuple; gradients of ``values`` go back to the sorted positions.
    """
    d = norm_dim(dim, input._data.ndim, "sort", single=True)
    v, i = _sort(input, axis=d, descending=bool(descending), in_shape=input._data.shape)
    return _sort_rt(v, i)


def argsort(input: Tensor, dim: int = -1, descending: bool = False, stable: bool = False):
    """Indices that sort ``input`` along ``dim`` (``torch.argsort``)."""
    xp = xp_like(input)
    d = input._data
    if d.ndim == 0:
        return _make(xp.zeros((), dtype=np.int64))
    ax = norm_dim(dim, d.ndim, "argsort", single=True)
    return _make(_argsort(xp, d, ax, descending).astype(np.int64, copy=False))


@op(name="topk", multi=True)
def _topk(xp, a, k, axis, largest=True, in_shape=None):
    if a.ndim == 0:
        return a.copy(), xp.zeros((), dtype=np.int64)
    n = a.shape[axis]
    if 0 < k and 8 * k <= n and a.dtype.kind == "f" and xp is np:
        # a partial selection first (O(n)), then only the k winners are sorted (NumPy's
        # argpartition orders NaN as the largest, like torch; CuPy's does not: full sort there)
        part = xp.argpartition(a, n - k if largest else k - 1, axis=axis)
        part = xp.take(part, xp.arange(n - k, n) if largest else xp.arange(k), axis=axis)
        order = _argsort(xp, xp.take_along_axis(a, part, axis=axis), axis, largest)
        idx = xp.take_along_axis(part, order, axis=axis)
    else:
        idx = xp.take(_argsort(xp, a, axis, largest), xp.arange(k), axis=axis)
    return xp.take_along_axis(a, idx, axis=axis), idx.astype(np.int64, copy=False)


_topk.def_derivative(_vi_derivative)


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """The ``k`` largest (or smallest) values along ``dim`` (``torch.topk``).

    Parameters
    ----------
    input : Tensor
    k : int
    dim : int
    largest : bool
        False: the ``k`` smallest.
    sorted : bool
        Accepted; the values always come sorted.

    Returns
    -------
    (values, indices)
    """
    d = norm_dim(dim, input._data.ndim, "topk", single=True)
    n = input._data.shape[d] if input._data.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError(f"topk(): selected index k out of range (k={k}, size {n} at "
                           f"dimension {d})")
    v, i = _topk(input, k=int(k), axis=d, largest=bool(largest), in_shape=input._data.shape)
    return _topk_rt(v, i)


def msort(input: Tensor) -> Tensor:
    return sort(input, 0).values


def unique(input: Tensor, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim=None):
    """The distinct values (sorted), optionally with inverse indices and counts (no grad)."""
    xp = xp_like(input)
    a = input._data
    if dim is None:
        res = xp.unique(a.reshape(-1), return_inverse=return_inverse,
                        return_counts=return_counts)
    else:
        d = norm_dim(dim, a.ndim, "unique", single=True)
        res = xp.unique(a, return_inverse=return_inverse, return_counts=return_counts, axis=d)
    if not (return_inverse or return_counts):
        return _make(res)
    res = list(res)
    out = [_make(res[0])]
    k = 1
    if return_inverse:
        inv = res[k].astype(np.int64, copy=False)
        out.append(_make(inv.reshape(a.shape if dim is None else (a.shape[d],))))
        k += 1
    if return_counts:
        out.append(_make(res[k].astype(np.int64, copy=False)))
    return tuple(out)


def unique_consecutive(input: Tensor, return_inverse=False, return_counts=False, dim=None):
    if dim is not None:
        raise NotImplementedError("unique_consecutive(dim=...) is not supported by dyntorch")
    xp = xp_like(input)
    a = input._data.reshape(-1)
    if a.size == 0:
        keep = xp.zeros(0, dtype=bool)
    else:
        keep = xp.concatenate([xp.ones(1, dtype=bool), a[1:] != a[:-1]])
    vals = _make(a[keep])
    if not (return_inverse or return_counts):
        return vals
    out = [vals]
    if return_inverse:
        out.append(_make((xp.cumsum(keep) - 1).astype(np.int64).reshape(input._data.shape)))
    if return_counts:
        starts = xp.nonzero(keep)[0]
        out.append(_make(xp.diff(xp.concatenate([starts, xp.asarray([a.size])])).astype(
            np.int64)))
    return tuple(out)


def bucketize(input: Tensor, boundaries: Tensor, *, out_int32=False, right=False) -> Tensor:
    xp = xp_like(input)
    r = xp.searchsorted(boundaries._data, input._data, side="right" if right else "left")
    return _make(r.astype(np.int32 if out_int32 else np.int64))


def searchsorted(sorted_sequence: Tensor, input, *, out_int32=False, right=False,
                 side=None, out=None, sorter=None) -> Tensor:
    """Where ``input``'s values would go in the innermost dim of ``sorted_sequence``; with
    ``sorter``, the indices that sort an unsorted ``sorted_sequence`` (``torch.searchsorted``).
    """
    if out is not None:
        return out.copy_(searchsorted(sorted_sequence, input, out_int32=out_int32,
                                      right=right, side=side, sorter=sorter))
    if sorter is not None:
        sorted_sequence = sorted_sequence.gather(-1, sorter)
    values = input
    xp = xp_like(sorted_sequence)
    side = side or ("right" if right else "left")
    s = sorted_sequence._data
    v = _raw(values) if isinstance(values, Tensor) else xp.asarray(values)
    if s.ndim == 1:
        r = xp.searchsorted(s, v, side=side)
    else:
        flat_s = s.reshape(-1, s.shape[-1])
        flat_v = v.reshape(-1, v.shape[-1])
        r = xp.stack([xp.searchsorted(a, b, side=side) for a, b in zip(flat_s, flat_v)])
        r = r.reshape(v.shape)
    return _make(r.astype(np.int32 if out_int32 else np.int64))


# ----------------------------------------------------------------------------- more
def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """A copy of ``input`` with the slices at ``index`` along ``dim`` replaced by ``source``."""
    _check_index_tensor(index, "index_copy")
    d = norm_dim(dim, input._data.ndim, "index_copy", single=True)
    _check_range(xp_like(index), index._data, input._data.shape[d], d)
    key = (slice(None),) * d + (index._data.reshape(-1),)
    return _index_put(input, _value_like(input, source), key=key, accumulate=False)


def _index_copy_(self, dim, index, source):
    from .inplace import inplace

    return inplace(self, "index_copy_", lambda t: index_copy(t, dim, index, source), source)


def _index_fill_(self, dim, index, value):
    from .inplace import inplace

    return inplace(self, "index_fill_", lambda t: index_fill(t, dim, index, value),
                   *([value] if isinstance(value, Tensor) else []))


def _masked_scatter_(self, mask, source):
    from .inplace import inplace

    return inplace(self, "masked_scatter_", lambda t: masked_scatter(t, mask, source), source)


def isin(elements, test_elements, *, assume_unique: bool = False, invert: bool = False):
    """True where an element of ``elements`` is in ``test_elements`` (``torch.isin``)."""
    ref = elements if isinstance(elements, Tensor) else test_elements
    xp = xp_like(ref)
    a = _raw(elements) if isinstance(elements, Tensor) else xp.asarray(elements)
    b = _raw(test_elements) if isinstance(test_elements, Tensor) else xp.asarray(test_elements)
    return _make(xp.asarray(xp.isin(a, b, invert=invert)))


def bincount(input: Tensor, weights=None, minlength: int = 0) -> Tensor:
    """Count of each non-negative integer (weighted sums with ``weights``) (no grad)."""
    if input._data.ndim != 1 or input._data.dtype.kind not in "iu":
        raise RuntimeError("bincount(): only 1-d non-negative integral inputs are supported")
    xp = xp_like(input)
    w = None if weights is None else _raw(weights)
    r = xp.bincount(input._data, weights=w, minlength=minlength)
    if w is None:
        r = r.astype(np.int64, copy=False)
    elif weights._data.dtype.kind == "f":
        r = r.astype(weights._data.dtype, copy=False)
    return _make(r)


def histc(input: Tensor, bins: int = 100, min=0, max=0) -> Tensor:
    """Histogram with ``bins`` equal bins over [min, max] (data range when both 0)."""
    xp = xp_like(input)
    a = input._data
    lo, hi = float(min), float(max)
    if lo == hi and a.size:
        lo, hi = float(a.min()), float(a.max())
    if lo == hi:
        lo, hi = lo - 1, hi + 1
    h, _ = xp.histogram(a, bins=bins, range=(lo, hi))
    return _make(h.astype(a.dtype))


def _tri_indices(row, col, offset, upper, dtype, device):
    from .. import _backend as B

    rows, cols = np.nonzero(np.triu(np.ones((row, col), dtype=bool), offset) if upper
                            else np.tril(np.ones((row, col), dtype=bool), offset))
    arr = np.stack([rows, cols]).astype(B.to_dtype(dtype).np if dtype is not None
                                        else np.int64)
    dev = B.to_device(device)
    return _make(B.move(arr, dev) if dev.type != "cpu" else arr)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None,
                 requires_grad: bool = False) -> Tensor:
    """Row and column indices (2 x N) of the lower triangle (``torch.tril_indices``)."""
    _int_result_grad("tril_indices", requires_grad)
    return _tri_indices(row, col, offset, False, dtype, device)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype=None, device=None,
                 requires_grad: bool = False) -> Tensor:
    """Row and column indices (2 x N) of the upper triangle (``torch.triu_indices``)."""
    _int_result_grad("triu_indices", requires_grad)
    return _tri_indices(row, col, offset, True, dtype, device)


def _int_result_grad(name: str, requires_grad: bool) -> None:
    if requires_grad:
        raise RuntimeError(f"{name}(): only Tensors of floating point dtype can require "
                           "gradients; the indices are integers, so leave requires_grad out")


def repeat_interleave(input: Tensor, repeats=None, dim=None, *, output_size=None) -> Tensor:
    """Repeat each element (or slice along ``dim``) ``repeats`` times, in place order.

    ``repeat_interleave(repeats_tensor)`` alone gives ``arange(len)`` repeated that way.
    """
    if repeats is None:  # torch.repeat_interleave(repeats)
        xp = xp_like(input)
        r = input._data.reshape(-1)
        return _make(xp.repeat(xp.arange(r.shape[0], dtype=np.int64), r))
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else norm_dim(dim, input._data.ndim, "repeat_interleave", single=True)
    n = x._data.shape[d] if x._data.ndim else 1
    xp = xp_like(x)
    if isinstance(repeats, Tensor):
        reps = repeats._data.reshape(-1)
        if reps.__class__ is not x._data.__class__:  # repeats may live on the CPU (torch too)
            reps = xp.asarray(B.to_numpy(reps))
        if reps.shape[0] not in (1, n):
            raise RuntimeError(f"repeat_interleave(): repeats must have the same size as input "
                               f"along dim, but got repeats.size(0) = {reps.shape[0]} and "
                               f"input.size({d}) = {n}")
        if reps.shape[0] == 1:
            reps = int(reps[0])
    else:
        reps = int(repeats)
    idx = xp.repeat(xp.arange(n, dtype=np.int64), reps)
    if x._data.ndim == 0:
        x = x.reshape(1)
    return _index_select(x, _make(idx), axis=d, in_shape=x._data.shape)


# ----------------------------------------------------------------------------- methods
def _index_put_m(self, indices, values, accumulate=False):
    return index_put(self, indices, values, accumulate)


method("__getitem__", getitem)
method("__contains__", lambda self, element: bool(xp_like(self).any(
    self._data == (_raw(element) if isinstance(element, Tensor) else element))))
method("__setitem__", setitem)
method("index_put_", index_put_)
method("index_put", _index_put_m)
method("gather", lambda self, dim, index, *, sparse_grad=False: gather(self, dim, index))
method("scatter", lambda self, dim, index, src=None, *, value=None, reduce=None: scatter(
    self, dim, index, src, value=value, reduce=reduce))
method("scatter_", _scatter_)
method("scatter_add", lambda self, dim, index, src: scatter_add(self, dim, index, src))
method("scatter_add_", _scatter_add_)
method("scatter_reduce", lambda self, dim, index, src, reduce, *, include_self=True:
       scatter_reduce(self, dim, index, src, reduce, include_self=include_self))
method("index_select", lambda self, dim, index: index_select(self, dim, index))
method("index_add", lambda self, dim, index, source, *, alpha=1: index_add(
    self, dim, index, source, alpha=alpha))
method("index_add_", _index_add_)
method("index_fill", lambda self, dim, index, value: index_fill(self, dim, index, value))
method("masked_fill", masked_fill)
method("masked_fill_", _masked_fill_)
method("masked_select", masked_select)
method("masked_scatter", masked_scatter)
method("take_along_dim", lambda self, indices, dim=None: take_along_dim(self, indices, dim))
method("take", take)
method("nonzero", lambda self, *, as_tuple=False: nonzero(self, as_tuple=as_tuple))
method("argwhere", argwhere)
method("sort", lambda self, dim=-1, descending=False, stable=False: sort(
    self, dim, descending, stable))
method("argsort", lambda self, dim=-1, descending=False, stable=False: argsort(
    self, dim, descending, stable))
method("topk", lambda self, k, dim=-1, largest=True, sorted=True: topk(
    self, k, dim, largest, sorted))
method("msort", msort)
method("unique", lambda self, sorted=True, return_inverse=False, return_counts=False,
       dim=None: unique(self, sorted, return_inverse, return_counts, dim))
method("unique_consecutive", unique_consecutive)
method("index_copy", lambda self, dim, index, source: index_copy(self, dim, index, source))
method("index_copy_", _index_copy_)
method("index_fill_", _index_fill_)
method("masked_scatter_", _masked_scatter_)
method("isin", lambda self, test_elements, *, assume_unique=False, invert=False: isin(
    self, test_elements, invert=invert))
method("bincount", lambda self, weights=None, minlength=0: bincount(self, weights, minlength))
method("repeat_interleave", lambda self, repeats=None, dim=None, *, output_size=None:
       repeat_interleave(self, repeats, dim))
method("histc", lambda self, bins=100, min=0, max=0: histc(self, bins, min, max))

PUBLIC = {
    "index_put": index_put, "index_put_": index_put_, "gather": gather, "scatter": scatter,
    "scatter_add": scatter_add, "scatter_reduce": scatter_reduce,
    "index_select": index_select, "index_add": index_add, "index_fill": index_fill,
    "masked_fill": masked_fill, "masked_select": masked_select,
    "masked_scatter": masked_scatter, "take_along_dim": take_along_dim, "take": take,
    "nonzero": nonzero, "argwhere": argwhere, "sort": sort, "argsort": argsort, "topk": topk,
    "msort": msort, "unique": unique, "unique_consecutive": unique_consecutive,
    "bucketize": bucketize, "searchsorted": searchsorted, "index_copy": index_copy,
    "isin": isin, "bincount": bincount, "histc": histc, "tril_indices": tril_indices,
    "triu_indices": triu_indices, "repeat_interleave": repeat_interleave,
}
