"""``dyntorch.finfo`` / ``dyntorch.iinfo``: numeric limits of a dtype, like torch's.

User code reaches for these in masks and clamps (``scores.masked_fill(mask,
torch.finfo(scores.dtype).min)``), so they take dyntorch dtypes and answer in Python numbers.
"""
from __future__ import annotations

import numpy as np

from . import _backend as B


class finfo:
    """Machine limits of a floating point dtype (default: the default dtype).

    Attributes ``bits``, ``eps``, ``max``, ``min``, ``tiny`` (= ``smallest_normal``),
    ``resolution`` and ``dtype`` (its name, e.g. ``'float32'``) match ``torch.finfo``.
    """

    __slots__ = ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype")

    def __init__(self, type: B.dtype | None = None) -> None:
        dt = B.get_default_dtype() if type is None else B.to_dtype(type)
        if not dt.is_floating_point:
            raise TypeError(f"finfo(): requires a floating point input type, got {dt}. Use "
                            "dyntorch.iinfo for integer types.")
        info = np.finfo(dt.np)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.tiny = self.smallest_normal = float(info.smallest_normal)
        self.resolution = 10.0 ** -int(info.precision)  # exact, as torch gives it
        self.dtype = dt.name

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution}, min={self.min}, max={self.max}, "
                f"eps={self.eps}, smallest_normal={self.tiny}, tiny={self.tiny}, "
                f"dtype={self.dtype})")


class iinfo:
    """Limits of an integer (or bool) dtype: ``bits``, ``max``, ``min``, ``dtype``."""

    __slots__ = ("bits", "max", "min", "dtype")

    def __init__(self, type: B.dtype) -> None:
        dt = B.to_dtype(type)
        if dt.is_floating_point:
            raise TypeError(f"iinfo(): requires an integer input type, got {dt}. Use "
                            "dyntorch.finfo for floating point types.")
        if dt.np.kind == "b":
            self.bits, self.min, self.max = 8, 0, 1
        else:
            info = np.iinfo(dt.np)
            self.bits, self.min, self.max = int(info.bits), int(info.min), int(info.max)
        self.dtype = dt.name

    def __repr__(self) -> str:
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype})"
