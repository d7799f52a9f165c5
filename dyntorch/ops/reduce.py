"""Reductions: sum, mean, var, max ... with ``dim``/``keepdim``."""
from __future__ import annotations

from .._dispatch import op
from .._tensor import Tensor
from ._util import method, norm_dim


def _restore(ns, g, shape, axis, keepdims):
    """Broadcast a reduced gradient back to ``shape``."""
    if axis is not None and not keepdims:
        g = ns.expand_dims(g, axis)
    return ns.broadcast_to(g, shape)


@op(name="sum")
def _sum(xp, a, axis=None, keepdims=False, dtype=None):
    return a.sum(axis=axis, keepdims=keepdims, dtype=dtype)


@_sum.def_derivative
def _(ns, g, a, axis=None, keepdims=False, dtype=None):
    return _restore(ns, g, a.shape, axis, keepdims)


@op(name="mean")
def _mean(xp, a, axis=None, keepdims=False):
    return a.mean(axis=axis, keepdims=keepdims)


@_mean.def_derivative
def _(ns, g, a, axis=None, keepdims=False):
    n = a.size if axis is None else _count(a.shape, axis)
    return _restore(ns, g / n, a.shape, axis, keepdims)


def _count(shape, axis) -> int:
    n = 1
    for ax in (axis if isinstance(axis, tuple) else (axis,)):
        n *= shape[ax]
    return n


def sum(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Sum over ``dim`` (all dims when None); bool/int inputs sum as int64 (``torch.sum``)."""
    axis = norm_dim(dim, input.ndim, "sum")
    if isinstance(axis, tuple) and len(axis) == 0:
        axis = None
    npdt = None
    if dtype is not None:
        from .. import _backend as B

        input = input.to(B.to_dtype(dtype))
    elif input._data.dtype.kind in "biu":
        import numpy as np

        npdt = np.int64
    if input.ndim == 0:
        axis = None
    return _sum(input, axis=axis, keepdims=keepdim, dtype=npdt)


def mean(input: Tensor, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Mean over ``dim`` (all dims when None) (``torch.mean``)."""
    if dtype is not None:
        from .. import _backend as B

        input = input.to(B.to_dtype(dtype))
    if input._data.dtype.kind != "f":
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {input.dtype}. Use .float() first.")
    axis = norm_dim(dim, input.ndim, "mean")
    if isinstance(axis, tuple) and len(axis) == 0:
        axis = None
    if input.ndim == 0:
        axis = None
    return _mean(input, axis=axis, keepdims=keepdim)


method("sum", sum)
method("mean", mean)

PUBLIC = {"sum": sum, "mean": mean}
