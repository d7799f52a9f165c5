"""Reductions: sum, mean, var, prod, max, norm, logsumexp, cumsum ... with ``dim``/``keepdim``.

A reduced gradient is brought back to the input's shape by re-inserting the reduced dims
(:func:`_unreduce`) and letting broadcasting in the formula do the rest; only the plain
``sum``/``mean`` gradients are materialised (their result is the whole gradient).
"""
from __future__ import annotations

import builtins
import math

import numpy as np

from .. import _backend as B
from .._dispatch import apply, op
from .._tensor import Tensor, _make
from ._util import method, norm_dim
from .index import _vi_derivative, return_type


def _unreduce(ns, g, axis, keepdims):
    """Put back the reduced dims (as size 1) so ``g`` broadcasts against the input."""
    if axis is not None and not keepdims:
        g = ns.expand_dims(g, axis)
    return g


def _restore(ns, g, shape, axis, keepdims):
    """Broadcast a reduced gradient back to ``shape`` (materialised)."""
    return ns.broadcast_to(_unreduce(ns, g, axis, keepdims), shape)


def _count(shape, axis) -> int:
    if axis is None:
        n = 1
        for s in shape:
            n *= s
        return n
    n = 1
    for ax in (axis if isinstance(axis, tuple) else (axis,)):
        n *= shape[ax]
    return n


def _axes(dim, ndim: int, name: str):
    """torch's ``dim`` argument as a NumPy ``axis`` (None: all dims)."""
    if dim is None:
        return None
    if ndim == 0:  # dim 0 / -1 (or a bad one, which raises) of a scalar: the whole of it
        norm_dim(dim, 0, name)
        return None
    axis = norm_dim(dim, ndim, name)
    if isinstance(axis, tuple):
        if len(axis) == 0:
            return None
        if len(set(axis)) != len(axis):
            raise RuntimeError(f"{name}(): dim {list(axis)} appears multiple times in the list "
                               "of dims")
    return axis


def _need_float(input: Tensor, name: str) -> None:
    if input._data.dtype.kind != "f" and not B.is_float_np(input._data.dtype):
        raise RuntimeError(f"{name}(): input dtype must be floating point, got {input.dtype}. "
                           "Convert it first, e.g. `.float()`.")


# ----------------------------------------------------------------------------- sum / mean
def _sum_fwd(xp, a, axis=None, keepdims=False, dtype=None, in_shape=None):
    if xp is np:  # what ndarray.sum calls, without its Python layer
        if axis is None and not keepdims:
            # every element, into a 0-d array: no NumPy scalar for the door to wrap again
            # (bench_core.py chain's loss: reduce and wrap 2.08 -> 1.87 us, same sum)
            return np.add.reduce(a, None, dtype, np.empty((), dtype or a.dtype), False)
        return np.add.reduce(a, axis, dtype, None, keepdims)  # (positional: cheaper call)
    return a.sum(axis=axis, keepdims=keepdims, dtype=dtype)


def _sum_grad(ns, g, _a, *, axis=None, keepdims=False, dtype=None, in_shape=None):
    if axis is None:  # every element (a loss): no dims to put back
        return ns.broadcast_to(g, in_shape)
    return _restore(ns, g, in_shape, axis, keepdims)


def _mean_fwd(xp, a, axis=None, keepdims=False, in_shape=None):
    n = _count(a.shape, axis)
    if n == 0 or a.dtype.itemsize < 4:  # NumPy's mean: nan for empty, f32 sums for f16
        return a.mean(axis=axis, keepdims=keepdims)
    return a.sum(axis=axis, keepdims=keepdims) / n  # ndarray.mean's Python layer costs 2x


def _mean_grad(ns, g, _a, *, axis=None, keepdims=False, in_shape=None):
    return _restore(ns, g / _count(in_shape, axis), in_shape, axis, keepdims)


_sum = op(name="sum")(_sum_fwd)
_sum.def_derivative(_sum_grad)
_sum_dim = _sum.variant("SumBackward1")
_mean = op(name="mean")(_mean_fwd)
_mean.def_derivative(_mean_grad)
_mean_dim = _mean.variant("MeanBackward1")


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None, axis=None,
        keepdims=None) -> Tensor:
    """Sum over ``dim`` (``torch.sum``).

    Parameters
    ----------
    input : Tensor
    dim : int or tuple of int, optional
        Dims to reduce; all when None (or an empty tuple).
    keepdim : bool
        Keep the reduced dims with size 1.
    dtype : dtype, optional
        Cast the input first. Without it, bool and integer inputs sum as int64.
    axis, keepdims : optional
        NumPy's names for ``dim`` and ``keepdim`` (torch accepts them too).

    Returns
    -------
    Tensor
    """
    if dim is None and axis is None and input._data.dtype.kind == "f" and not keepdim and \
            dtype is None and keepdims is None:
        # ``t.sum()`` of a float tensor (a loss): only the attribute the derivative needs, the
        # others are the forward's defaults (bench_core.py chain: the sum's forward 4.0 -> 3.5
        # us; fewer keywords to pass to the door, the forward and the derivative)
        return apply(_sum, input, in_shape=input._data.shape)
    if axis is not None or keepdims is not None:
        dim, keepdim = _np_names("sum", dim, keepdim, axis, keepdims)
    npdt = None
    if dtype is not None:
        input = input.to(B.to_dtype(dtype))
    elif input._data.dtype.kind in "biu":
        npdt = np.int64
    if dim is None:
        return apply(_sum, input, axis=None, keepdims=keepdim, dtype=npdt,
                     in_shape=input._data.shape)
    return apply(_sum_dim, input, axis=_axes(dim, input._data.ndim, "sum"), keepdims=keepdim,
                 dtype=npdt, in_shape=input._data.shape)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None, axis=None,
         keepdims=None) -> Tensor:
    """Mean over ``dim`` (``torch.mean``).

    Parameters
    ----------
    input : Tensor
        Floating point (or give ``dtype``).
    dim : int or tuple of int, optional
        Dims to reduce; all when None.
    keepdim : bool
        Keep the reduced dims with size 1.
    dtype : dtype, optional
        Cast the input first.
    axis, keepdims : optional
        NumPy's names for ``dim`` and ``keepdim`` (torch accepts them too).

    Returns
    -------
    Tensor
    """
    if axis is not None or keepdims is not None:
        dim, keepdim = _np_names("mean", dim, keepdim, axis, keepdims)
    if dtype is not None:
        input = input.to(B.to_dtype(dtype))
    if input._data.dtype.kind != "f" and not B.is_float_np(input._data.dtype):
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {input.dtype}. Use .float() first.")
    axis = _axes(dim, input._data.ndim, "mean")
    return apply(_mean if dim is None else _mean_dim, input, axis=axis, keepdims=keepdim,
                 in_shape=input._data.shape)


def nansum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum treating NaN as zero (``torch.nansum``)."""
    from .elementwise import isnan, where

    if (input._data.dtype.kind == "f" or B.is_float_np(input._data.dtype)):
        input = where(isnan(input), 0.0, input)
    return sum(input, dim, keepdim, dtype=dtype)


def nanmean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean of the non-NaN elements (``torch.nanmean``)."""
    from .elementwise import isnan, logical_not

    _need_float(input, "nanmean")
    n = sum(logical_not(isnan(input)), dim, keepdim)
    return nansum(input, dim, keepdim, dtype=dtype) / n


# ----------------------------------------------------------------------------- var / std
def _correction(unbiased, correction) -> float:
    if correction is not None:
        return correction
    if unbiased is None:
        return 1
    return 1 if unbiased else 0


@op(name="var")
def _var(xp, a, axis=None, correction=1, keepdims=False):
    return xp.var(a, axis=axis, ddof=correction, keepdims=keepdims)


def _per_dof(n, correction) -> float:
    """1 / (n - correction), inf where no degree of freedom is left (one element, or a
    correction as large as the count): the gradient is then NaN or inf, as in torch."""
    d = n - correction
    return 1.0 / d if d > 0 else math.inf


@_var.def_derivative
def _(ns, g, a, *, axis=None, correction=1, keepdims=False):
    n = _count(a.shape, axis)
    m = ns.mean(a, axis, True)
    return _unreduce(ns, g, axis, keepdims) * (2.0 * _per_dof(n, correction)) * (a - m)


@op(name="std")
def _std(xp, a, axis=None, correction=1, keepdims=False):
    return xp.sqrt(xp.var(a, axis=axis, ddof=correction, keepdims=keepdims))


@_std.def_derivative
def _(ns, g, a, out, *, axis=None, correction=1, keepdims=False):
    n = _count(a.shape, axis)
    m = ns.mean(a, axis, True)
    o = _unreduce(ns, out, axis, keepdims)
    zero = o == 0
    gr = _unreduce(ns, g, axis, keepdims) / ns.where(zero, 1.0, o) * ns.logical_not(zero)
    return gr * _per_dof(n, correction) * (a - m)


def _var_args(input, dim, unbiased, keepdim, correction, name):
    if isinstance(dim, bool):  # var(x, True): the old `unbiased` positional
        dim, unbiased = None, dim
    if input._data.dtype.kind != "f" and not B.is_float_np(input._data.dtype):
        raise RuntimeError(f"{name}(): std and var only support floating point and complex "
                           f"dtypes, got {input.dtype}")
    return _axes(dim, input._data.ndim, name), _correction(unbiased, correction)


def var(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *,
        correction=None) -> Tensor:
    """Variance over ``dim`` (``torch.var``).

    Parameters
    ----------
    input : Tensor
        Floating point.
    dim : int or tuple of int, optional
        Dims to reduce; all when None.
    unbiased : bool, optional
        Old spelling of ``correction`` (True: 1, False: 0).
    keepdim : bool
        Keep the reduced dims with size 1.
    correction : int or float, optional
        Subtracted from the element count in the divisor; default 1 (Bessel).

    Returns
    -------
    Tensor
    """
    axis, c = _var_args(input, dim, unbiased, keepdim, correction, "var")
    return _var(input, axis=axis, correction=c, keepdims=keepdim)


def std(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *,
        correction=None) -> Tensor:
    """Standard deviation over ``dim`` (``torch.std``); its gradient is 0 where it is 0."""
    axis, c = _var_args(input, dim, unbiased, keepdim, correction, "std")
    return _std(input, axis=axis, correction=c, keepdims=keepdim)


def var_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *,
             correction=None) -> tuple:
    """``(var, mean)`` over ``dim`` (``torch.var_mean``)."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return (var(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))


def std_mean(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *,
             correction=None) -> tuple:
    """``(std, mean)`` over ``dim`` (``torch.std_mean``)."""
    if isinstance(dim, bool):
        dim, unbiased = None, dim
    return (std(input, dim, unbiased, keepdim, correction=correction),
            mean(input, dim, keepdim))


# ----------------------------------------------------------------------------- prod
def _prod_fwd(xp, a, axis=None, keepdims=False, dtype=None):
    return a.prod(axis=axis, keepdims=keepdims, dtype=dtype)


def _prod_grad(ns, g, a, *, axis=None, keepdims=False, dtype=None):
    # d prod / d a_i = product of the others: exact with zeros (one zero: only it gets a
    # gradient; two or more: nobody does), without dividing by zero.
    is0 = a == 0
    safe = ns.where(is0, 1.0, a)
    p = ns.prod(safe, axis, True)
    nz = ns.sum(is0, axis, True)
    others = ns.where(nz == 0, p / safe, ns.where((nz == 1) & is0, p, 0.0))
    return _unreduce(ns, g, axis, keepdims) * others


_prod = op(name="prod")(_prod_fwd)
_prod.def_derivative(_prod_grad)
_prod_dim = _prod.variant("ProdBackward1")


def prod(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Product over ``dim`` (one int) or all elements (``torch.prod``)."""
    npdt = None
    if dtype is not None:
        input = input.to(B.to_dtype(dtype))
    elif input._data.dtype.kind in "biu":
        npdt = np.int64
    if isinstance(dim, (tuple, list)):
        raise TypeError("prod(): dim must be a single int (torch.prod takes one dim)")
    axis = _axes(dim, input._data.ndim, "prod")
    f = _prod if dim is None else _prod_dim
    return f(input, axis=axis, keepdims=keepdim, dtype=npdt)


# ----------------------------------------------------------------------------- max / min
_max_rt = return_type("max")
_min_rt = return_type("min")
_median_rt = return_type("median")
_kth_rt = return_type("kthvalue")
_mode_rt = return_type("mode")
_aminmax_rt = return_type("aminmax", ("min", "max"))
_cummax_rt = return_type("cummax")
_cummin_rt = return_type("cummin")


def _ties_derivative(ns, g, a, out, *, axis=None, keepdims=False):
    """Gradient of an extreme value: shared evenly among the elements equal to it."""
    mask = a == _unreduce(ns, out, axis, keepdims)
    count = ns.astype(ns.sum(mask, axis, True), g)
    return _unreduce(ns, g, axis, keepdims) / count * mask


def _extreme_op(name, backward_name, fn):
    f = op(name=name, backward_name=backward_name)(
        lambda xp, a, axis=None, keepdims=False: getattr(xp, fn)(a, axis=axis,
                                                                 keepdims=keepdims))
    f.def_derivative(_ties_derivative)
    return f


def _evenly_derivative(ns, g, a, out, *, axis=None, keepdims=False):
    """Gradient of ``torch.max(x)`` / ``min(x)``: shared evenly among the elements equal to
    the result, or among the NaN ones when it is NaN (amax's rule would give NaN to all)."""
    mask = (a == out) | (ns.isnan(a) & ns.isnan(out))
    return ns.keep(g / ns.astype(ns.sum(mask), g), mask)  # exact zeros elsewhere


_amax = _extreme_op("amax", "AmaxBackward0", "amax")
_amin = _extreme_op("amin", "AminBackward0", "amin")
_max_all = _amax.variant("MaxBackward1")  # torch.max(x): an amax over everything
_max_all.def_derivative(_evenly_derivative)
_min_all = _amin.variant("MinBackward1")
_min_all.def_derivative(_evenly_derivative)


def _arg_op(name, fn):
    ext = "amax" if fn == "argmax" else "amin"

    def fwd(xp, a, axis, keepdims=False, in_shape=None):
        # the extreme value and the first index of it (NaN counts as the extreme, as in torch)
        idx = getattr(xp, fn)(a, axis=axis, keepdims=keepdims)
        return getattr(xp, ext)(a, axis=axis, keepdims=keepdims), idx.astype(np.int64,
                                                                              copy=False)

    f = op(name=name, backward_name=name.capitalize() + "Backward0", multi=True)(fwd)
    f.def_derivative(_vi_derivative)
    return f


_max_dim = _arg_op("max", "argmax")
_min_dim = _arg_op("min", "argmin")


def _check_nonempty(input, dim, name):
    if input._data.size == 0 and dim is None:
        raise RuntimeError(f"{name}(): Expected reduction dim to be specified for "
                           "input.numel() == 0. Specify the reduction dim with the 'dim' "
                           "argument.")


def _max_min(input, dim, keepdim, other, all_op, dim_op, binary, rt, name):
    if isinstance(dim, Tensor):
        other, dim = dim, None
    if other is not None:
        return binary(input, other)
    _check_nonempty(input, dim, name)
    if dim is None:
        return all_op(input)
    if input._data.ndim == 0:
        d = norm_dim(dim, 0, name, single=True)
        return rt(input.clone() if input._requires_grad else input, _make(
            B.xp_of(input._data).zeros((), dtype=np.int64)))
    d = norm_dim(dim, input._data.ndim, name, single=True)
    if input._data.shape[d] == 0:
        raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
    v, i = dim_op(input, axis=d, keepdims=bool(keepdim), in_shape=input._data.shape)
    return rt(v, i)


def max(input: Tensor, dim=None, keepdim: bool = False, *, other=None):
    """The largest value (``torch.max``).

    Parameters
    ----------
    input : Tensor
    dim : int or Tensor, optional
        None: the largest element, whose gradient is shared evenly among ties. An int: a
        ``(values, indices)`` named tuple along that dim (the gradient goes to the index).
        A tensor: elementwise ``maximum(input, dim)``.
    keepdim : bool
        With ``dim``: keep it with size 1.

    Returns
    -------
    Tensor or (values, indices)
    """
    from .elementwise import maximum

    return _max_min(input, dim, keepdim, other, _max_all, _max_dim, maximum, _max_rt, "max")


def min(input: Tensor, dim=None, keepdim: bool = False, *, other=None):
    """Smallest value; with ``dim``: ``(values, indices)``; with a tensor: ``minimum``."""
    from .elementwise import minimum

    return _max_min(input, dim, keepdim, other, _min_all, _min_dim, minimum, _min_rt, "min")


def amax(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """Largest values over ``dim``; ties share the gradient evenly (``torch.amax``)."""
    axis = _axes(dim, input._data.ndim, "amax")
    _check_nonempty(input, axis, "amax")
    return _amax(input, axis=axis, keepdims=keepdim)


def amin(input: Tensor, dim=(), keepdim: bool = False) -> Tensor:
    """Smallest values over ``dim``; ties share the gradient evenly (``torch.amin``)."""
    axis = _axes(dim, input._data.ndim, "amin")
    _check_nonempty(input, axis, "amin")
    return _amin(input, axis=axis, keepdims=keepdim)


def aminmax(input: Tensor, *, dim=None, keepdim: bool = False):
    return _aminmax_rt(amin(input, () if dim is None else dim, keepdim),
                       amax(input, () if dim is None else dim, keepdim))


def _arg(input, dim, keepdim, fn, name):
    xp = B.xp_of(input._data)
    a = input._data
    _check_nonempty(input, dim, name)
    if dim is None:
        r = getattr(xp, fn)(a.reshape(-1))
        if keepdim:
            r = xp.asarray(r).reshape((1,) * a.ndim)
        return _make(xp.asarray(r, dtype=np.int64))
    if a.ndim == 0:
        norm_dim(dim, 0, name, single=True)
        return _make(xp.zeros((), dtype=np.int64))
    d = norm_dim(dim, a.ndim, name, single=True)
    return _make(getattr(xp, fn)(a, axis=d, keepdims=keepdim).astype(np.int64, copy=False))


def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the largest value (of the flattened tensor when ``dim`` is None)."""
    return _arg(input, dim, keepdim, "argmax", "argmax")


def argmin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Index of the smallest value (of the flattened tensor when ``dim`` is None)."""
    return _arg(input, dim, keepdim, "argmin", "argmin")


def _kth(input, k, dim, keepdim, rt, name):
    """The k-th smallest (1-based) along ``dim`` with its index, via a differentiable sort."""
    from .index import sort
    from .shape import select, unsqueeze

    nd = input._data.ndim
    if nd == 0:
        return rt(input.clone() if input._requires_grad else input,
                  _make(B.xp_of(input._data).zeros((), dtype=np.int64)))
    d = norm_dim(dim, nd, name, single=True)
    n = input._data.shape[d]
    if not 1 <= k <= n:
        raise IndexError(f"{name}(): selected number k out of range for dimension {d} of "
                         f"size {n}")
    v, i = sort(input, d)
    v, i = select(v, d, k - 1), select(i, d, k - 1)
    if keepdim:
        v, i = unsqueeze(v, d), unsqueeze(i, d)
    return rt(v, i.detach())


def median(input: Tensor, dim=None, keepdim: bool = False):
    """The lower median; with ``dim``: ``(values, indices)`` (``torch.median``). A slice
    holding NaN has median NaN (its index: a NaN's), as in torch."""
    return _median(input, dim, keepdim, "median")


def nanmedian(input: Tensor, dim=None, keepdim: bool = False):
    """The lower median of the non-NaN values (NaN where a slice has none), with ``dim``:
    ``(values, indices)`` (``torch.nanmedian``)."""
    return _median(input, dim, keepdim, "nanmedian")


@op(name="median", backward_name="MedianBackward0")
def _median_all(xp, a, ignore_nan=False):
    """The lower median of every element: NaN when one is NaN (or, ignoring NaN, when all
    are), NaN for no element (a float tensor)."""
    flat = a.reshape(-1)
    if a.dtype.kind == "f":
        bad = xp.isnan(flat)
        if ignore_nan:
            flat = flat[~bad]
        elif bad.any():
            return xp.full((), math.nan, a.dtype)
        if not flat.size:
            return xp.full((), math.nan, a.dtype)
    k = (flat.size - 1) // 2
    return xp.partition(flat, k)[k:k + 1].reshape(())


@_median_all.def_derivative
def _(ns, g, a, out, ignore_nan=False):
    return _evenly_derivative(ns, g, a, out)  # torch: shared by the elements equal to it


_nanmedian_all = _median_all.variant("NanmedianBackward0")


def _median(input, dim, keepdim, name):
    if dim is None:
        if input._data.dtype.kind != "f":
            _check_nonempty(input, None, name)
        if name == "median":
            return _median_all(input)
        return _nanmedian_all(input, ignore_nan=True)
    d = norm_dim(dim, input._data.ndim, name, single=True)
    n = input._data.shape[d] if input._data.ndim else 1
    data = input._data
    xp = B.xp_of(data)
    if data.ndim == 0 or data.dtype.kind != "f" or not bool(xp.isnan(data).any()):
        return _kth(input, (n + 1) // 2, d, keepdim, _median_rt, name)
    # sort puts NaN last: pick per slice the first NaN (median) or the lower median of the
    # values before it (nanmedian)
    from .index import gather, sort

    counted = xp.sum(~xp.isnan(data), axis=d, keepdims=True)
    if name == "median":
        k = xp.where(counted < n, counted, (n + 1) // 2 - 1)
    else:
        k = xp.maximum((counted + 1) // 2 - 1, 0)
    k = _make(k.astype(np.int64))
    v, i = sort(input, d)
    v, i = gather(v, d, k), gather(i, d, k)
    if not keepdim:
        v, i = v.squeeze(d), i.squeeze(d)
    return _median_rt(v, i.detach())


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False):
    """The ``k``-th smallest value along ``dim`` and its index (``torch.kthvalue``)."""
    return _kth(input, int(k), dim, keepdim, _kth_rt, "kthvalue")


def mode(input: Tensor, dim: int = -1, keepdim: bool = False):
    """Most frequent value along ``dim`` (the smallest among equals) and its last index."""
    from .shape import unsqueeze

    xp = B.xp_of(input._data)
    nd = input._data.ndim
    if nd == 0:
        return _mode_rt(input, _make(xp.zeros((), dtype=np.int64)))
    d = norm_dim(dim, nd, "mode", single=True)
    a = xp.moveaxis(input._data, d, -1)
    flat = a.reshape(-1, a.shape[-1])
    vals = np.empty(flat.shape[0], dtype=a.dtype)
    idx = np.empty(flat.shape[0], dtype=np.int64)
    for r, row in enumerate(B.to_numpy(flat)):
        u, c = np.unique(row, return_counts=True)
        vals[r] = u[np.argmax(c)]
        idx[r] = np.nonzero(row == vals[r])[0][-1]
    shp = a.shape[:-1]
    v = _make(xp.asarray(vals.reshape(shp)))
    i = _make(xp.asarray(idx.reshape(shp)))
    if input._requires_grad:  # route the gradient through a gather so it reaches that index
        from .index import gather

        v = gather(input, d, unsqueeze(i, d)).squeeze(d)
    if keepdim:
        v, i = unsqueeze(v, d), unsqueeze(i, d)
    return _mode_rt(v, i)


# ----------------------------------------------------------------------------- logsumexp
@op(name="logsumexp")
def _logsumexp(xp, a, axis=None, keepdims=False):
    if not a.size:  # an empty sum is 0, its log -inf (an empty batch: an empty result)
        with np.errstate(divide="ignore"):
            return xp.log(xp.sum(xp.exp(a), axis=axis, keepdims=keepdims)).astype(a.dtype)
    m = xp.amax(a, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)  # all -inf rows give -inf, not nan
    with np.errstate(divide="ignore"):  # rows of -inf give log(0) = -inf, as they should
        s = xp.log(xp.sum(xp.exp(a - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        s = s.squeeze(axis) if axis is not None else s.reshape(())
    return s.astype(a.dtype, copy=False)


@_logsumexp.def_derivative
def _(ns, g, a, out, *, axis=None, keepdims=False):
    return _unreduce(ns, g, axis, keepdims) * ns.exp(a - _unreduce(ns, out, axis, keepdims))


def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    """log(sum(exp(input))) over ``dim``, without overflow (``torch.logsumexp``).

    Parameters
    ----------
    input : Tensor
    dim : int or tuple of int
        Dims to reduce.
    keepdim : bool
        Keep the reduced dims with size 1.

    Returns
    -------
    Tensor
        Rows that are all -inf give -inf (not nan).
    """
    if input._data.dtype.kind != "f" and not B.is_float_np(input._data.dtype):
        from .elementwise import _int_to_float

        input = _int_to_float(input)
    axis = _axes(dim, input._data.ndim, "logsumexp")
    return _logsumexp(input, axis=axis, keepdims=keepdim)


# ----------------------------------------------------------------------------- norms
@op(name="linalg_vector_norm")
def _vector_norm(xp, a, ord=2.0, axis=None, keepdims=False):
    if ord == 2:
        return xp.sqrt(xp.sum(a * a, axis=axis, keepdims=keepdims))
    if ord == 1:
        return xp.sum(xp.abs(a), axis=axis, keepdims=keepdims)
    if ord == math.inf:
        return xp.amax(xp.abs(a), axis=axis, keepdims=keepdims)
    if ord == -math.inf:
        return xp.amin(xp.abs(a), axis=axis, keepdims=keepdims)
    if ord == 0:
        return xp.sum(a != 0, axis=axis, keepdims=keepdims).astype(a.dtype)
    return (xp.sum(xp.abs(a) ** ord, axis=axis, keepdims=keepdims) ** (1.0 / ord)).astype(
        a.dtype, copy=False)


@_vector_norm.def_derivative
def _(ns, g, a, out, *, ord=2.0, axis=None, keepdims=False):
    gr = _unreduce(ns, g, axis, keepdims)
    o = _unreduce(ns, out, axis, keepdims)
    if ord == 0:
        return a * 0.0
    if ord == 1:
        return gr * ns.sign(a)
    if ord in (math.inf, -math.inf):
        mask = ns.abs(a) == o
        count = ns.astype(ns.sum(mask, axis, True), g)
        return gr * ns.sign(a) * mask / count
    zero = o == 0
    if ord == 2:  # gradient 0 at the zero vector, like torch
        return a * (gr / ns.where(zero, 1.0, o) * ns.logical_not(zero))
    scale = gr / ns.where(zero, 1.0, o ** (ord - 1)) * ns.logical_not(zero)
    absa = ns.abs(a)
    pw = ns.where(absa == 0, 0.0, ns.where(absa == 0, 1.0, absa) ** (ord - 2))
    return a * pw * scale


def vector_norm(input: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The vector ``ord``-norm over ``dim`` (all elements when None)."""
    if dtype is not None:
        input = input.to(B.to_dtype(dtype))
    _need_float(input, "linalg.vector_norm")
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.vector_norm(): ord must be a number, got '{ord}'")
    axis = _axes(dim, input._data.ndim, "linalg.vector_norm")
    ordf = float(ord)
    if ordf in (math.inf, -math.inf):
        _check_nonempty(input, axis, "linalg.vector_norm")
    return _vector_norm(input, ord=ordf, axis=axis, keepdims=keepdim)


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, out=None,
         dtype=None) -> Tensor:
    """Vector p-norm (or Frobenius norm) over ``dim`` (``torch.norm``).

    Parameters
    ----------
    input : Tensor
        Floating point.
    p : float, 'fro' or 'nuc'
        2 (= 'fro'), 1, inf, -inf, 0 or any other real order.
    dim : int or tuple of int, optional
        Dims to reduce; all when None.
    keepdim : bool
        Keep the reduced dims with size 1.

    Returns
    -------
    Tensor
        Its gradient is 0 where the norm is 0 (like torch); inf-norm gradients are shared
        evenly among the maximal elements.
    """
    if p is None or p == "fro":
        p = 2
    elif p == "nuc":
        from ..linalg import matrix_norm

        return matrix_norm(input, "nuc", dim if dim is not None else (-2, -1), keepdim)
    elif isinstance(p, str):
        raise RuntimeError(f"norm(): unsupported p '{p}'; use a number, 'fro' or 'nuc'")
    r = vector_norm(input, p, dim, keepdim, dtype=dtype)
    if out is not None:
        out.copy_(r)
        return out
    return r


def dist(input: Tensor, other: Tensor, p=2) -> Tensor:
    """The p-norm of ``input - other`` (``torch.dist``)."""
    return vector_norm(input - other, p)


# ----------------------------------------------------------------------------- scans
@op(name="cumsum")
def _cumsum(xp, a, axis, dtype=None):
    return xp.cumsum(a, axis=axis, dtype=dtype)


@_cumsum.def_derivative
def _(ns, g, _a, *, axis, dtype=None):
    return ns.flip(ns.cumsum(ns.flip(g, axis), axis), axis)


def cumsum(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running sum along ``dim`` (``torch.cumsum``)."""
    npdt = None
    if dtype is not None:
        input = input.to(B.to_dtype(dtype))
    elif input._data.dtype.kind in "biu":
        npdt = np.int64
    if input._data.ndim == 0:
        norm_dim(dim, 0, "cumsum", single=True)
        return _cumsum(input.reshape(1), axis=0, dtype=npdt).reshape(())
    return _cumsum(input, axis=norm_dim(dim, input._data.ndim, "cumsum", single=True), dtype=npdt)


@op(name="cumprod")
def _cumprod(xp, a, axis, dtype=None):
    return xp.cumprod(a, axis=axis, dtype=dtype)


@_cumprod.def_derivative
def _(ns, g, a, out, *, axis, dtype=None):
    # sum_{j>=i} g_j out_j / a_i; elements equal to zero fall back to an exact product of
    # the others, computed from the cumulative product of the input with that zero set to 1.
    safe = ns.where(a == 0, 1.0, a)
    rev = ns.flip(ns.cumsum(ns.flip(g * out, axis), axis), axis)
    plain = rev / safe
    if not bool(_any_zero(a)):
        return plain
    return _cumprod_grad_with_zeros(ns, g, a, axis)


def _any_zero(a):
    d = a._data if isinstance(a, Tensor) else a
    return (d == 0).any()


def _cumprod_grad_with_zeros(ns, g, a, axis):
    """Exact gradient of cumprod for inputs with zeros (O(n^2) along ``axis``)."""
    n = a.shape[axis]
    cols = []
    for i in range(n):
        idx = (slice(None),) * axis + (slice(i, i + 1),)
        ones_i = ns.getitem(a, idx) * 0 + 1
        parts = [ns.getitem(a, (slice(None),) * axis + (slice(0, i),)), ones_i,
                 ns.getitem(a, (slice(None),) * axis + (slice(i + 1, n),))]
        a_i = ns.concatenate([p for p in parts if p.shape[axis]], axis)
        c = _cumprod_ns(ns, a_i, axis)
        tail = (slice(None),) * axis + (slice(i, n),)
        cols.append(ns.sum(ns.getitem(g, tail) * ns.getitem(c, tail), axis, True))
    return ns.concatenate(cols, axis)


def _cumprod_ns(ns, x, axis):
    if isinstance(x, Tensor):
        return cumprod(x, axis)
    return ns.xp.cumprod(x, axis=axis)


def cumprod(input: Tensor, dim: int, *, dtype=None) -> Tensor:
    """Running product along ``dim`` (``torch.cumprod``)."""
    npdt = None
    if dtype is not None:
        input = input.to(B.to_dtype(dtype))
    elif input._data.dtype.kind in "biu":
        npdt = np.int64
    if input._data.ndim == 0:
        return _cumprod(input.reshape(1), axis=0, dtype=npdt).reshape(())
    return _cumprod(input, axis=norm_dim(dim, input._data.ndim, "cumprod", single=True), dtype=npdt)


def _cum_ext(input, dim, fn, name):
    if input._data.ndim == 0:
        v, i = _cum_ext(input.reshape(1), 0, fn, name)
        return (_cummax_rt if name == "cummax" else _cummin_rt)(v.reshape(()), i.reshape(()))
    d = norm_dim(dim, input._data.ndim, name, single=True)
    a = B.to_numpy(input._data)  # ufunc.accumulate is NumPy's; CuPy results move back
    vals = getattr(np, fn).accumulate(a, axis=d)
    n = a.shape[d]
    pos = np.arange(n).reshape((-1,) + (1,) * (a.ndim - d - 1))
    hit = np.where((a == vals) | np.isnan(a), pos, -1)  # a NaN stays the extreme, like torch
    idx = np.maximum.accumulate(hit, axis=d).astype(np.int64)
    dev = input.device
    idx_t = _make(idx if dev.type == "cpu" else B.move(idx, dev))
    from .index import gather

    v = gather(input, d, idx_t) if input._requires_grad else _make(
        vals if dev.type == "cpu" else B.move(vals, dev))
    return (_cummax_rt if name == "cummax" else _cummin_rt)(v, idx_t)


def cummax(input: Tensor, dim: int):
    """Running maximum along ``dim`` and where it was found (``torch.cummax``)."""
    return _cum_ext(input, dim, "maximum", "cummax")


def cummin(input: Tensor, dim: int):
    """Running minimum along ``dim`` and where it was found (``torch.cummin``)."""
    return _cum_ext(input, dim, "minimum", "cummin")


def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """log(cumsum(exp(input))) along ``dim``, shifted by the max for stability."""
    from .elementwise import FLOAT_UNARY

    m = amax(input.detach(), dim, keepdim=True)
    m = m.masked_fill(~m.isfinite(), 0.0)
    return FLOAT_UNARY["log"](cumsum(FLOAT_UNARY["exp"](input - m), dim)) + m


# ----------------------------------------------------------------------------- logical
def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """True where every element (over ``dim``) is non-zero (``torch.all``)."""
    xp = B.xp_of(input._data)
    axis = _axes(dim, input._data.ndim, "all")
    return _make(xp.asarray(xp.all(input._data, axis=axis, keepdims=keepdim)))


def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """True where some element (over ``dim``) is non-zero (``torch.any``)."""
    xp = B.xp_of(input._data)
    axis = _axes(dim, input._data.ndim, "any")
    return _make(xp.asarray(xp.any(input._data, axis=axis, keepdims=keepdim)))


def count_nonzero(input: Tensor, *dims, dim=None) -> Tensor:
    """Number of non-zero elements over ``dim`` (``torch.count_nonzero``)."""
    if dims:  # x.count_nonzero(0, 1) and count_nonzero(x, 0)
        if dim is not None:
            raise TypeError("count_nonzero() got multiple values for argument 'dim'")
        dim = dims[0] if len(dims) == 1 else dims
    xp = B.xp_of(input._data)
    axis = _axes(dim, input._data.ndim, "count_nonzero")
    return _make(xp.asarray(xp.sum(input._data != 0, axis=axis), dtype=np.int64))


# ----------------------------------------------------------------------------- composites
def trace(input: Tensor) -> Tensor:
    """Sum of the main diagonal of a matrix (``torch.trace``)."""
    if input._data.ndim != 2:
        raise RuntimeError(f"trace(): expected a matrix, but got tensor with dim "
                           f"{input._data.ndim}")
    return sum(input.diagonal())


def diff(input: Tensor, n: int = 1, dim: int = -1, prepend=None, append=None) -> Tensor:
    """The ``n``-th forward difference along ``dim`` (``torch.diff``)."""
    from .shape import cat, narrow

    d = norm_dim(dim, input._data.ndim, "diff", single=True)
    parts = [t for t in (prepend, input, append) if t is not None]
    x = cat(parts, d) if len(parts) > 1 else input
    for _ in range(n):
        m = x._data.shape[d]
        if m <= 1:
            return narrow(x, d, 0, 0)
        x = narrow(x, d, 1, m - 1) - narrow(x, d, 0, m - 1)
    return x


def quantile(input: Tensor, q, dim=None, keepdim: bool = False, *,
             interpolation: str = "linear") -> Tensor:
    """The ``q``-quantiles along ``dim`` (of all elements when None) (``torch.quantile``)."""
    from .creation import tensor as _tensor
    from .index import index_select, sort
    from .shape import reshape, unsqueeze

    _need_float(input, "quantile")
    scalar_q = not isinstance(q, Tensor) or q._data.ndim == 0
    qs = [float(q)] if scalar_q else [float(v) for v in q.reshape(-1).tolist()]
    if builtins.any(not 0 <= v <= 1 for v in qs):
        raise RuntimeError("quantile() q values must be in the range [0, 1]")
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise RuntimeError(f"quantile() interpolation must be one of linear, lower, higher, "
                           f"midpoint or nearest. Got {interpolation}")
    x = reshape(input, -1) if dim is None else input
    d = 0 if dim is None else norm_dim(dim, input._data.ndim, "quantile", single=True)
    v = sort(x, d).values
    n = x._data.shape[d]
    outs = []
    for qv in qs:
        pos = qv * (n - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        if interpolation == "lower":
            hi = lo
        elif interpolation == "higher":
            lo = hi
        elif interpolation == "nearest":
            lo = hi = builtins.round(pos)  # round half to even, like torch
        idx = _tensor([lo, hi], device=x.device)
        pair = index_select(v, d, idx)
        a, b = pair.select(d, 0), pair.select(d, 1)
        if interpolation == "midpoint" and lo != hi:
            r = a + (b - a) * 0.5
        elif lo == hi:
            r = a
        else:
            r = a + (b - a) * (pos - lo)
        if keepdim:
            r = unsqueeze(r, d) if dim is not None else reshape(r, (1,) * input._data.ndim)
        outs.append(r)
    if scalar_q:
        return outs[0]
    from .shape import stack

    return stack(outs, 0)  # one q per row, as torch puts the q dim first


def nanquantile(input: Tensor, q, dim=None, keepdim: bool = False, *,
                interpolation: str = "linear") -> Tensor:
    """Like :func:`quantile`, ignoring NaN (a slice of only NaN gives NaN)."""
    from .index import gather, sort
    from .shape import reshape, squeeze, stack

    _need_float(input, "nanquantile")
    scalar_q = not isinstance(q, Tensor) or q._data.ndim == 0
    qs = [float(q)] if scalar_q else [float(v) for v in q.reshape(-1).tolist()]
    if builtins.any(not 0 <= v <= 1 for v in qs):
        raise RuntimeError("nanquantile() q values must be in the range [0, 1]")
    x = reshape(input, -1) if dim is None else input
    d = 0 if dim is None else norm_dim(dim, input._data.ndim, "nanquantile", single=True)
    xp = B.xp_of(x._data)
    v = sort(x, d).values  # NaN sorts last
    valid = xp.sum(~xp.isnan(x._data), axis=d, keepdims=True)
    outs = []
    for qv in qs:
        pos = qv * xp.maximum(valid - 1, 0)
        lo, hi = xp.floor(pos), xp.ceil(pos)
        if interpolation == "lower":
            hi = lo
        elif interpolation == "higher":
            lo = hi
        elif interpolation == "nearest":
            lo = hi = xp.round(pos)
        elif interpolation not in ("linear", "midpoint"):
            raise RuntimeError(f"nanquantile() interpolation must be one of linear, lower, "
                               f"higher, midpoint or nearest. Got {interpolation}")
        a = gather(v, d, _make(lo.astype(np.int64)))
        b = gather(v, d, _make(hi.astype(np.int64)))
        frac = 0.5 * (hi > lo) if interpolation == "midpoint" else pos - lo
        r = a + (b - a) * _make(frac.astype(x._data.dtype))  # all-NaN slices pick a NaN
        if not keepdim:
            r = squeeze(r, d)
        elif dim is None:
            r = reshape(r, (1,) * input._data.ndim)
        outs.append(r)
    return outs[0] if scalar_q else stack(outs, 0)


def trapezoid(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """Integral of ``y`` along ``dim`` by the trapezoidal rule (``torch.trapezoid``)."""
    from .shape import narrow

    d = norm_dim(dim, y._data.ndim, "trapezoid", single=True)
    n = y._data.shape[d]
    if n == 0:
        return sum(y, d) * 0
    mid = (narrow(y, d, 1, n - 1) + narrow(y, d, 0, n - 1)) * 0.5
    if x is not None:
        return sum(mid * _spacing(x, y, d), d)
    return sum(mid, d) * (1.0 if dx is None else dx)


def _spacing(x, y, d):
    """Differences of the sample points ``x``, shaped to broadcast against ``y``'s dim ``d``."""
    if x._data.ndim == 1:
        return diff(x).reshape((-1,) + (1,) * (y._data.ndim - d - 1))
    return diff(x, dim=d)


def cumulative_trapezoid(y: Tensor, x=None, *, dx=None, dim: int = -1) -> Tensor:
    """Running trapezoidal integral of ``y`` along ``dim`` (``torch.cumulative_trapezoid``)."""
    from .shape import narrow

    d = norm_dim(dim, y._data.ndim, "cumulative_trapezoid", single=True)
    n = y._data.shape[d]
    mid = (narrow(y, d, 1, n - 1) + narrow(y, d, 0, n - 1)) * 0.5
    if x is not None:
        return cumsum(mid * _spacing(x, y, d), d)
    return cumsum(mid, d) * (1.0 if dx is None else dx)


# ----------------------------------------------------------------------------- methods
def _m_max(self, dim=None, keepdim=False):
    return max(self, dim, keepdim)


def _m_min(self, dim=None, keepdim=False):
    return min(self, dim, keepdim)


def _np_names(name: str, dim, keepdim, axis, keepdims):
    """``dim``/``keepdim`` from NumPy's ``axis``/``keepdims`` (for ops that take both)."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{name}(): got both 'dim' and its alias 'axis'; pass one")
        dim = axis
    return dim, keepdim if keepdims is None else keepdims


def _numpy_aliases(fn):
    """Accept NumPy's ``axis=``/``keepdims=`` for ``dim=``/``keepdim=``, as torch does."""
    def wrapped(*args, **kwargs):
        if kwargs:
            if "axis" in kwargs:
                kwargs["dim"] = kwargs.pop("axis")
            if "keepdims" in kwargs:
                kwargs["keepdim"] = kwargs.pop("keepdims")
        return fn(*args, **kwargs)

    wrapped.__name__, wrapped.__doc__, wrapped.__wrapped__ = fn.__name__, fn.__doc__, fn
    return wrapped


method("sum", sum)  # these two take the NumPy names themselves: one call less, hot as they are
method("mean", mean)
for _n, _f in (("nansum", nansum), ("nanmean", nanmean),
               ("var", var), ("std", std), ("prod", prod), ("max", _m_max), ("min", _m_min),
               ("amax", amax), ("amin", amin), ("aminmax", aminmax), ("argmax", argmax),
               ("argmin", argmin), ("median", median), ("nanmedian", nanmedian),
               ("kthvalue", kthvalue), ("mode", mode), ("logsumexp", logsumexp),
               ("norm", norm), ("dist", dist), ("cumsum", cumsum), ("cumprod", cumprod),
               ("cummax", cummax), ("cummin", cummin), ("logcumsumexp", logcumsumexp),
               ("all", all), ("any", any), ("count_nonzero", count_nonzero),
               ("trace", trace), ("diff", diff), ("quantile", quantile),
               ("nanquantile", nanquantile)):
    method(_n, _numpy_aliases(_f))

PUBLIC = {
    "sum": sum, "mean": mean, "nansum": nansum, "nanmean": nanmean, "var": var, "std": std,
    "var_mean": var_mean, "std_mean": std_mean, "prod": prod, "max": max, "min": min,
    "amax": amax, "amin": amin, "aminmax": aminmax, "argmax": argmax, "argmin": argmin,
    "median": median, "nanmedian": nanmedian, "kthvalue": kthvalue, "mode": mode,
    "logsumexp": logsumexp, "norm": norm, "dist": dist, "cumsum": cumsum,
    "cumprod": cumprod, "cummax": cummax, "cummin": cummin, "logcumsumexp": logcumsumexp,
    "all": all, "any": any, "count_nonzero": count_nonzero, "trace": trace, "diff": diff,
    "quantile": quantile, "nanquantile": nanquantile, "trapezoid": trapezoid, "trapz": trapezoid,
    "cumulative_trapezoid": cumulative_trapezoid,
}
PUBLIC = {k: _numpy_aliases(v) for k, v in PUBLIC.items()}
