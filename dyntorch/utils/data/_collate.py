"""Turning a list of samples into a batch: ``default_collate`` and ``default_convert``."""
from __future__ import annotations

import collections.abc as abc
from typing import Any

import numpy as np

from ... import _backend as B
from ..._tensor import Tensor, _make

__all__ = ["default_collate", "default_convert"]


def _stack(ts: list[Tensor]) -> Tensor:
    shapes = {t._data.shape for t in ts}
    if len(shapes) != 1:
        raise RuntimeError(f"default_collate: stack expects each tensor to be equal size, but "
                           f"got {sorted(shapes)} in the batch; pad the samples or pass a "
                           "collate_fn")
    if any(t._requires_grad for t in ts):
        import dyntorch

        stack = getattr(dyntorch, "stack", None)
        if stack is not None:
            return stack(ts, 0)
    xp = B.xp_of(ts[0]._data)
    datas = [t._data for t in ts]
    kinds = {d.dtype for d in datas}
    if len(kinds) != 1:
        dt = B.to_dtype(ts[0].dtype)
        for t in ts[1:]:
            dt = B.promote_types(dt, t.dtype)
        datas = [d.astype(dt.np, copy=False) for d in datas]
    return _make(xp.stack(datas))


def default_collate(batch: list) -> Any:
    """Stack a list of samples into a batch, recursively, like ``torch``'s.

    Tensors are stacked along a new first dimension; NumPy arrays and numbers become tensors
    (floats as float64, ints as int64); strings stay a list; dicts, named tuples, tuples and
    lists are collated field by field (tuples come back as lists, as in torch).
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack(batch)
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind not in "biuf":
            raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, "
                            f"numbers, dicts or lists; found an array of dtype {elem.dtype}")
        return _stack([_make(np.asarray(b)) for b in batch])
    if isinstance(elem, np.generic):
        if elem.dtype.kind not in "biuf":
            raise TypeError(f"default_collate: unsupported numpy scalar type {elem.dtype}")
        return _make(np.array(batch, dtype=elem.dtype))
    if isinstance(elem, bool):
        return _make(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return _make(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return _make(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, abc.Mapping):
        out = {k: default_collate([d[k] for d in batch]) for k in elem}
        try:
            return type(elem)(out) if type(elem) is not dict else out
        except TypeError:
            return out
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, abc.Sequence):
        n = len(elem)
        if any(len(e) != n for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        cols = [default_collate(list(s)) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return cols
        try:
            return type(elem)(cols)
        except TypeError:
            return cols
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, "
                    f"dicts or lists; found {type(elem).__name__}")


def default_convert(data: Any) -> Any:
    """Turn NumPy arrays (also inside dicts, tuples and lists) into tensors; no batching."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return _make(data) if data.dtype.kind in "biuf" else data
    if isinstance(data, np.generic) and data.dtype.kind in "biuf":
        return _make(np.asarray(data))
    if isinstance(data, abc.Mapping):
        out = {k: default_convert(v) for k, v in data.items()}
        try:
            return type(data)(out) if type(data) is not dict else out
        except TypeError:
            return out
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
