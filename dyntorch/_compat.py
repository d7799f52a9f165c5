"""Script boilerplate that ordinary PyTorch programs call and that has a plain meaning here.

Legacy typed constructors (``torch.FloatTensor([1, 2])``, ``isinstance(x, torch.LongTensor)``),
thread and determinism switches, and ``torch.compile`` (dyntorch runs eagerly, so compiling
returns the model itself; its graph view and tracer are elsewhere).
"""
from __future__ import annotations

import os

from . import _backend as B
from ._tensor import Tensor


class _LegacyTensorType(type):
    """``isinstance(t, FloatTensor)`` is true for a CPU tensor of that dtype, as in torch."""

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype is cls.dtype and obj.device.type == "cpu"


def _legacy_type(name: str, dt: B.dtype) -> type:
    def __new__(cls, *args, **kwargs):
        from .ops.creation import tensor, zeros

        if kwargs.get("device") not in (None, "cpu"):
            raise RuntimeError(f"{name}(): legacy constructor expects device type cpu; use "
                               f"dyntorch.tensor(data, dtype=dyntorch.{dt.name}, device=...)")
        if not args:
            return zeros(0, dtype=dt)
        if len(args) == 1 and not isinstance(args[0], int):
            src = args[0]
            if isinstance(src, Tensor):
                return src.to(dt)
            if isinstance(src, (tuple, list)) or hasattr(src, "__array__"):
                return tensor(src, dtype=dt)
        if all(isinstance(a, int) for a in args):
            return zeros(*args, dtype=dt)  # torch leaves it uninitialised; zeros are safe
        raise TypeError(f"{name}(): expected a sequence of data or integer sizes, got "
                        f"{tuple(type(a).__name__ for a in args)}")

    doc = (f"Legacy constructor: ``{name}(data)`` or ``{name}(*sizes)`` makes a "
           f"{dt.name} CPU tensor; prefer ``dyntorch.tensor(data, dtype=dyntorch.{dt.name})``.")
    return _LegacyTensorType(name, (), {"__new__": __new__, "dtype": dt, "__doc__": doc,
                                        "__module__": "dyntorch"})


FloatTensor = _legacy_type("FloatTensor", B.float32)
DoubleTensor = _legacy_type("DoubleTensor", B.float64)
HalfTensor = _legacy_type("HalfTensor", B.float16)
LongTensor = _legacy_type("LongTensor", B.int64)
IntTensor = _legacy_type("IntTensor", B.int32)
ShortTensor = _legacy_type("ShortTensor", B.int16)
CharTensor = _legacy_type("CharTensor", B.int8)
ByteTensor = _legacy_type("ByteTensor", B.uint8)
BoolTensor = _legacy_type("BoolTensor", B.bool_)

_threads = {"intra": None, "interop": 1}
_deterministic = {"on": False, "warn_only": False}


def set_num_threads(n: int, /) -> None:
    """Limit the BLAS threads NumPy uses (through threadpoolctl when installed)."""
    if not isinstance(n, int) or n < 1:
        raise RuntimeError(f"set_num_threads expects a positive integer, got {n!r}")
    _threads["intra"] = n
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without it the value is only recorded
        return
    threadpool_limits(n)


def get_num_threads() -> int:
    """The thread count set with :func:`set_num_threads`, else the CPU count."""
    return _threads["intra"] or os.cpu_count() or 1


def set_num_interop_threads(n: int, /) -> None:
    _threads["interop"] = int(n)


def get_num_interop_threads() -> int:
    return _threads["interop"]


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Recorded for compatibility: dyntorch's CPU kernels are already deterministic."""
    _deterministic.update(on=bool(mode), warn_only=bool(warn_only))


def are_deterministic_algorithms_enabled() -> bool:
    return _deterministic["on"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _deterministic["warn_only"]


def compile(model=None, *, fullgraph: bool = False, dynamic=None, backend=None,
            mode=None, options=None, name=None, disable: bool = False, recompile_limit=None,
            isolate_recompiles: bool = False, shapes_spec=None):
    """``torch.compile``: dyntorch runs eagerly, so this returns ``model`` unchanged; every
    option only tunes a compiler dyntorch does not have, so each is accepted and has no effect.

    Works as a call (``compile(model)``) and as a decorator (``@compile`` or
    ``@compile(mode=...)``); results are those of the eager model.
    """
    if model is None:
        return lambda fn: fn
    return model
