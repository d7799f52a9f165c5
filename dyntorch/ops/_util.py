"""Small helpers shared by the op families."""
from __future__ import annotations

from .. import _backend as B
from .._tensor import Tensor, _make


def method(name: str, fn) -> None:
    """Attach ``fn`` to :class:`Tensor` as ``name``."""
    setattr(Tensor, name, fn)


def as_tensor_like(value, like, dtype=None) -> Tensor:
    """A constant tensor on ``like``'s device (dtype: given, else torch's scalar rule)."""
    if isinstance(value, Tensor):
        return value
    dt = dtype if dtype is not None else B.scalar_dtype(value)
    xp = B.xp_of(like._data) if isinstance(like, Tensor) else B.np
    return _make(xp.asarray(value, dtype=dt.np))


def norm_dim(dim, ndim: int, op: str):
    """Normalise an int or a sequence of dims to non-negative ints; None stays None."""
    if dim is None:
        return None
    n = max(ndim, 1)
    if isinstance(dim, (tuple, list)):
        out = []
        for d in dim:
            if not -n <= d < n:
                raise IndexError(f"{op}(): Dimension out of range (expected to be in range of "
                                 f"[{-n}, {n - 1}], but got {d})")
            out.append(d % n)
        return tuple(out)
    if not -n <= dim < n:
        raise IndexError(f"{op}(): Dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    return dim % n


def shape_arg(args) -> tuple:
    """Accept f(2, 3), f((2, 3)), f([2, 3]) or f(Size)."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = args[0]
    out = []
    for a in args:
        if isinstance(a, Tensor):
            a = int(a.item())
        if not isinstance(a, int) and not hasattr(a, "__index__"):
            raise TypeError(f"expected a sequence of integers as the size, got {args!r}")
        out.append(int(a))
    return tuple(out)
