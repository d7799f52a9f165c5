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


def norm_dim(dim, ndim: int, op: str, single: bool = False):
    """Normalise an int or a sequence of dims to non-negative ints; None stays None.

    ``single``: the op takes exactly one dim, so a list or tuple is refused.
    """
    if dim is None:
        return None
    n = ndim if ndim > 0 else 1
    if dim.__class__ is int:  # almost every call: no type checks beyond this one
        if -n <= dim < n:
            return dim % n
        raise _out_of_range(op, n, dim)
    if isinstance(dim, (tuple, list)):
        if single:
            raise TypeError(f"{op}(): argument 'dim' must be int, not {type(dim).__name__} "
                            f"({dim!r}); {op}() works along one dim at a time, so pass a "
                            "single int")
        out = []
        for pos, d in enumerate(dim):
            if d.__class__ is not int:
                d = _as_dim(d, f"{op}(): argument 'dim' must be a tuple of ints, but element "
                               f"{pos} of {dim!r} is")
            if not -n <= d < n:
                raise _out_of_range(op, n, d)
            out.append(d % n)
        return tuple(out)
    d = _as_dim(dim, f"{op}(): argument 'dim' must be "
                     f"{'int' if single else 'int or tuple of ints'}, not")
    if not -n <= d < n:
        raise _out_of_range(op, n, d)
    return d % n


def _as_dim(d, prefix: str) -> int:
    # NumPy integers and one-element integer tensors stand in for ints (they have
    # __index__); bools do too in Python, but torch refuses them as dims, and so do we.
    if isinstance(d, bool) or not hasattr(d, "__index__"):
        raise TypeError(f"{prefix} {type(d).__name__} ({d!r}); give dims as ints counted "
                        "by position, e.g. dim=0 or dim=-1")
    try:
        return d.__index__()
    except TypeError as e:  # e.g. a float tensor, or a tensor of several elements
        raise TypeError(f"{prefix} a {type(d).__name__} that is not one integer ({e})") from None


def _out_of_range(op: str, n: int, d) -> IndexError:
    return IndexError(f"{op}(): Dimension out of range (expected to be in range of "
                      f"[{-n}, {n - 1}], but got {d})")


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
