"""CPU arrays in memory that several processes map (``Tensor.share_memory_``).

A shared array lives in a file under ``/dev/shm`` (the system temp folder where there is
none), mapped with ``mmap``: children made with ``fork`` inherit the mapping, children made
with ``spawn`` (or any process that receives the tensor through ``multiprocessing``'s
pickler) open the same file by name. Writes by any of them, such as a child's optimizer
step on a parameter, are seen by all of them: this is what Hogwild training needs.

The process that created a file removes its name at exit; mappings already open stay valid
until the last process lets go of them, as with torch's file-system sharing strategy.
"""
from __future__ import annotations

import atexit
import mmap
import os
import tempfile
import uuid
import weakref

import numpy as np

_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
_MAPS: weakref.WeakValueDictionary[str, mmap.mmap] = weakref.WeakValueDictionary()
_PATHS: dict[int, str] = {}  # id(mmap) -> its file, for the maps alive in this process
_CREATED: list[tuple[int, str]] = []  # (pid, path) of files this process made


def _remember(mm: mmap.mmap, path: str) -> None:
    _MAPS[path] = mm
    _PATHS[id(mm)] = path
    weakref.finalize(mm, _PATHS.pop, id(mm), None)


def _mapping_of(arr) -> mmap.mmap | None:
    """The shared mapping under ``arr`` (following views), or None."""
    b = arr
    while b is not None:
        if isinstance(b, memoryview):
            b = b.obj
        if isinstance(b, mmap.mmap):
            return b if id(b) in _PATHS else None
        b = getattr(b, "base", None)
    return None


def is_shared(arr) -> bool:
    """Whether ``arr`` lies in memory made by :func:`share`."""
    return _mapping_of(arr) is not None


def share(arr: np.ndarray) -> np.ndarray:
    """A copy of ``arr`` (same shape, dtype and values) in a new shared mapping."""
    nbytes = max(arr.nbytes, 1)  # mmap refuses length 0
    path = os.path.join(_DIR, f"dyntorch_{os.getpid()}_{uuid.uuid4().hex}")
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, nbytes)
        mm = mmap.mmap(fd, nbytes)
    finally:
        os.close(fd)
    if not _CREATED:
        atexit.register(_unlink_created)
    _CREATED.append((os.getpid(), path))
    _remember(mm, path)
    out = np.frombuffer(mm, dtype=arr.dtype, count=arr.size).reshape(arr.shape)
    out[...] = arr
    return out


def handle(arr) -> tuple:
    """What another process needs to map ``arr`` again: file, offset, shape, strides, dtype."""
    mm = _mapping_of(arr)
    if mm is None:
        raise ValueError("handle(): the array is not in shared memory; call share_memory_() first")
    start = np.frombuffer(mm, dtype=np.uint8, count=0)
    offset = arr.__array_interface__["data"][0] - start.__array_interface__["data"][0]
    return (_PATHS[id(mm)], offset, arr.shape, arr.strides, arr.dtype)


def attach(path: str, offset: int, shape, strides, dtype) -> np.ndarray:
    """Map the shared array described by :func:`handle` (in this or another process)."""
    mm = _MAPS.get(path)
    if mm is None:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise RuntimeError(
                f"shared memory {path} is gone: the process that shared this tensor has ended "
                "or released it; keep it alive until every receiver has mapped it") from None
        try:
            mm = mmap.mmap(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        _remember(mm, path)
    flat = np.frombuffer(mm, dtype=np.uint8)
    return np.ndarray(shape, dtype=dtype, buffer=flat, offset=offset, strides=strides)


def _unlink_created() -> None:
    # only the creator removes a name (fork children inherit this list, not the ownership)
    me = os.getpid()
    for pid, path in _CREATED:
        if pid == me:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
