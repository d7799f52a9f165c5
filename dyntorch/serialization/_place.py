"""Turning loaded arrays into tensors on the wanted device (``map_location``)."""
from __future__ import annotations

import numpy as np

from .. import _backend as B
from .._tensor import Tensor, _make
from ._archive import LoadError


def _target(saved: str, map_location) -> B.device:
    if map_location is None:
        return B.to_device(saved)
    if isinstance(map_location, dict):
        return B.to_device(map_location.get(saved, saved))
    return B.to_device(map_location)


def place(arr: np.ndarray, saved: str, map_location, who: str = "dyntorch.load",
          name: str = "?") -> Tensor:
    """A tensor holding ``arr`` where ``map_location`` says (saved location ``saved``)."""
    if callable(map_location) and not isinstance(map_location, (str, B.device, dict)):
        t = _make(arr)
        out = map_location(t, saved)
        return out if isinstance(out, Tensor) else t
    try:
        dev = _target(saved, map_location)
    except (TypeError, ValueError, RuntimeError) as e:
        raise LoadError(f"{who}: '{name}': a tensor was saved on {saved!r}, which is not a "
                        f"device this dyntorch knows ({e}); pass map_location='cpu'.") from None
    if dev.type == "cuda" and not B.cuda_available():
        raise LoadError(
            f"{who}: '{name}': a tensor was saved on '{saved}', but CUDA is not available here. "
            "Pass map_location='cpu' to load it on the CPU.")
    return _make(B.move(arr, dev) if dev.type != "cpu" else arr)


def parameter(t: Tensor, rg: bool) -> Tensor:
    """``t`` as an ``nn.Parameter`` (a plain tensor that requires grad if nn is missing)."""
    try:
        from ..nn.parameter import Parameter
    except ImportError:  # pragma: no cover - nn not available
        t._requires_grad = bool(rg) and t._data.dtype.kind == "f"
        return t
    return Parameter(t, requires_grad=bool(rg) and t._data.dtype.kind == "f")
