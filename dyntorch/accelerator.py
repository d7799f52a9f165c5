"""``dyntorch.accelerator``: the device-neutral accelerator API of ``torch.accelerator``.

dyntorch's one accelerator is CUDA through CuPy. Without one (no CuPy, or no device),
``is_available()`` is False and ``current_accelerator()`` is None, and the calls that need a
device raise the same RuntimeError torch raises, so ``device = acc if acc else "cpu"`` idioms
pick the CPU.
"""
from __future__ import annotations

import contextlib

from . import _backend as B
from . import cuda as _cuda

__all__ = ["is_available", "current_accelerator", "device_count", "current_device_index",
           "current_device_idx", "set_device_index", "set_device_idx", "synchronize",
           "device_index", "empty_cache"]


def _need() -> None:
    if not _cuda.is_available():
        raise RuntimeError("Cannot access accelerator device when none is available. "
                           "(dyntorch's accelerator is CUDA through CuPy; check "
                           "dyntorch.accelerator.is_available() first, or use device='cpu')")


def _index(device) -> int:
    if device is None:
        return current_device_index()
    if isinstance(device, int):
        return device
    d = B.to_device(device)
    if d.type != "cuda":
        raise ValueError(f"accelerator: {d} is not the current accelerator type 'cuda'")
    return d.index or 0


def is_available() -> bool:
    """True when a CUDA device answers through CuPy."""
    return _cuda.is_available()


def current_accelerator(check_available: bool = False):
    """``device('cuda')`` when dyntorch has a CUDA build (CuPy with a device), else None.

    Parameters
    ----------
    check_available : bool
        Also require that a device is usable now (here the same test).

    Returns
    -------
    dyntorch.device or None
    """
    if not _cuda.is_available():
        return None
    return B.device("cuda")


def device_count() -> int:
    """The number of CUDA devices (0 without CuPy or a GPU)."""
    return _cuda.device_count()


def current_device_index() -> int:
    """The index of the current CUDA device."""
    _need()
    return _cuda.current_device()


current_device_idx = current_device_index


def set_device_index(device, /) -> None:
    """Make ``device`` (an index, ``'cuda:1'`` or a device) the current CUDA device."""
    _need()
    _cuda.set_device(_index(device))


set_device_idx = set_device_index


def synchronize(device=None, /) -> None:
    """Wait until the queued work of ``device`` (the current one when None) is done."""
    _need()
    if device is None:
        _cuda.synchronize()
        return
    with device_index(_index(device)):
        _cuda.synchronize()


@contextlib.contextmanager
def device_index(device, /):
    """Make ``device`` current inside a ``with`` block; None changes nothing."""
    if device is None:
        yield
        return
    _need()
    old = current_device_index()
    set_device_index(device)
    try:
        yield
    finally:
        set_device_index(old)


def empty_cache() -> None:
    """Give cached GPU memory back to the driver (nothing to do without one)."""
    _cuda.empty_cache()
