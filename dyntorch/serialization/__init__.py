"""``dyntorch.save`` / ``dyntorch.load``: PyTorch's checkpoint files, written safely and read
without running code.

:func:`save` writes PyTorch's zip layout (``archive/data.pkl``, storages under
``archive/data/``, the ``version`` and ``byteorder`` records), so ``torch.load(f,
weights_only=True)`` reads state dicts, tensors, nested containers and numbers saved here.
Saving to a path is atomic: a kill or a crash mid-save leaves the previous file whole.

:func:`load` reads those files, files written by ``torch.save`` (torch >= 1.6), and dyntorch's
earlier format, without torch. With ``weights_only=True`` (the default, as in torch) the
pickle may only name the functions that rebuild tensors and plain containers, plus what the
user allowed with :func:`add_safe_globals` / :class:`safe_globals`; a damaged or hostile file
raises :class:`LoadError` naming the file and what is wrong, after checking every size,
shape, offset and count against the bytes present and before allocating. ``weights_only=False``
means what it means in torch: the pickle is loaded in full and can run code from the file, so
it is for files you trust, and only when asked for explicitly (the argument, or
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` with the argument left out);
``TORCH_FORCE_WEIGHTS_ONLY_LOAD=1`` forces ``weights_only=True`` even where ``False`` was passed.
"""
from __future__ import annotations

import io
import os
import pickle
import warnings
from typing import Any, BinaryIO

from ._archive import Archive, LoadError, check_shape, file_name, open_archive, read_npy
from ._atomic import atomic_write
from ._legacy import MARKER, load_legacy
from ._safe_globals import (
    add_safe_globals,
    clear_safe_globals,
    get_safe_globals,
    resolve_weights_only,
    safe_globals,
)
from ._torch_read import allowed_by_default, load_torch
from ._torch_write import write_archive

__all__ = ["save", "load", "LoadError", "atomic_write", "safe_globals", "add_safe_globals",
           "get_safe_globals", "clear_safe_globals", "open_archive", "read_npy", "Archive",
           "check_shape", "file_name", "get_unsafe_globals_in_checkpoint", "DEFAULT_PROTOCOL"]

DEFAULT_PROTOCOL = 2


def _check_pickle_module(pickle_module, who: str) -> None:
    if pickle_module is not None and pickle_module is not pickle:
        raise TypeError(f"{who}: pickle_module={getattr(pickle_module, '__name__', pickle_module)}"
                        " is not supported; dyntorch reads and writes with the standard "
                        "`pickle` module. Leave pickle_module out.")


# ============================================================================ save
def save(obj: Any, f: str | os.PathLike | BinaryIO, pickle_module: Any = None,
         pickle_protocol: int = DEFAULT_PROTOCOL, _use_new_zipfile_serialization: bool = True,
         _disable_byteorder_record: bool = False) -> None:
    """Save ``obj`` (state dicts, optimizer states, nested containers of tensors) to ``f``.

    Parameters
    ----------
    obj : object
        What to save. Tensors, parameters, dicts, lists, tuples, sets, numbers, strings,
        bytes, ``None``, dtypes and devices are written so that ``torch.load(f,
        weights_only=True)`` and ``dyntorch.load(f)`` read them. Other objects are pickled as
        they are (loading them takes ``weights_only=False`` or safe globals, as with torch).
    f : str, PathLike or binary file
        Where to write. A path is replaced atomically (see :func:`atomic_write`): a process
        killed while saving leaves the previous file whole. A file object is written as is.
    pickle_module : None or pickle
        Only the standard ``pickle`` module is supported.
    pickle_protocol : int
        Pickle protocol of ``data.pkl`` (2 to 5; torch writes 2).
    """
    _check_pickle_module(pickle_module, "dyntorch.save")
    if not _use_new_zipfile_serialization:
        raise ValueError("dyntorch.save: _use_new_zipfile_serialization=False (PyTorch's legacy "
                         "pre-1.6 format) is not written by dyntorch; leave it out.")
    if _disable_byteorder_record:
        raise ValueError("dyntorch.save: _disable_byteorder_record=True is not supported")
    if not isinstance(pickle_protocol, int) or not 2 <= pickle_protocol <= pickle.HIGHEST_PROTOCOL:
        raise ValueError(f"dyntorch.save: pickle_protocol must be 2..{pickle.HIGHEST_PROTOCOL}, "
                         f"got {pickle_protocol!r}")
    if isinstance(f, (str, os.PathLike)):
        with atomic_write(f) as fh:
            write_archive(obj, fh, pickle_protocol)
    else:
        write_archive(obj, f, pickle_protocol)


# ============================================================================ load
def load(f: str | os.PathLike | BinaryIO, map_location=None, pickle_module: Any = None, *,
         weights_only: bool | None = None, mmap: bool | None = None,
         **pickle_load_args) -> Any:
    """Load what :func:`save` or ``torch.save`` wrote.

    Parameters
    ----------
    f : str, PathLike or binary file
        The checkpoint.
    map_location : str, device, dict or callable, optional
        Where tensors go: ``'cpu'``, ``'cuda'``, a device, a ``{saved: wanted}`` mapping of
        device names, or ``fn(tensor, saved_location) -> tensor``. Default: where they were.
    pickle_module : None or pickle
        Only the standard ``pickle``; giving it makes ``weights_only`` default to ``False``
        (as in torch), and giving it with ``weights_only=True`` is an error.
    weights_only : bool, optional
        ``True`` (the default): only rebuild tensors, containers, numbers, strings, dtypes,
        devices and the user's safe globals (:func:`add_safe_globals`). ``False``: unpickle in
        full, which can run code from the file; only for files you trust. The environment
        variables ``TORCH_FORCE_WEIGHTS_ONLY_LOAD`` and ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``
        override it as they do ``torch.load``.
    mmap : bool, optional
        Not supported (the file is read into memory); ``True`` is refused.

    Raises
    ------
    LoadError
        The file is not a checkpoint, is truncated or damaged (the message names the file and
        the record), is an old (pre-1.6) PyTorch file, or (with ``weights_only``) names objects
        that are not plain data.
    """
    who = "dyntorch.load"
    weights_only = resolve_weights_only(weights_only, pickle_module, who)
    _check_pickle_module(pickle_module, who)
    if weights_only and pickle_module is not None:
        raise RuntimeError(f"{who}: cannot safely load weights when an explicit pickle_module "
                           "is given; leave pickle_module out, or pass weights_only=False for "
                           "a file you trust.")
    if mmap:
        raise ValueError(f"{who}: mmap=True is not supported; dyntorch reads the file into "
                         "memory. Leave mmap out.")
    unknown = set(pickle_load_args) - {"encoding"}
    if unknown:
        raise TypeError(f"{who}: unexpected keyword argument(s) {sorted(unknown)}")
    if pickle_load_args and weights_only:
        warnings.warn("pickle_load_args only works if `weights_only=False`.", stacklevel=2)
    name = file_name(f)
    own = isinstance(f, (str, os.PathLike))
    fh = open(f, "rb") if own else f
    try:
        if not own and not (getattr(fh, "seekable", lambda: False)()):
            fh = io.BytesIO(fh.read())  # zip needs to seek
        return _load_file(fh, name, who, map_location, weights_only)
    finally:
        if own:
            fh.close()


def _load_file(fh, name: str, who: str, map_location, weights_only: bool):
    start = fh.tell()
    head = fh.read(64)
    fh.seek(start)
    if start:  # a checkpoint written after other data in the same stream
        fh = io.BytesIO(fh.read())
    if not head.startswith(b"PK"):
        raise LoadError(_why_not_zip(who, name, head))
    ar = open_archive(fh, name, who)
    with ar.z:
        names = ar.names()
        try:
            if MARKER in ar.infos:
                return load_legacy(ar, map_location, weights_only)
            pkl = sorted(n for n in names if n.endswith("/data.pkl") and n.count("/") == 1)
            if pkl:
                return load_torch(ar, pkl[0][:-len("data.pkl")], map_location, weights_only)
        except LoadError:
            raise
        except Exception as e:  # any other failure while decoding is damage: name the file
            raise LoadError(f"{who}: '{name}' is damaged or not a checkpoint: "
                            f"{type(e).__name__}: {e}") from e
    raise LoadError(f"{who}: '{name}' is a zip archive but not a checkpoint (no "
                    f"<name>/data.pkl or dyntorch/format inside; it holds "
                    f"{names[:5]}{'...' if len(names) > 5 else ''})")


def get_unsafe_globals_in_checkpoint(f: str | os.PathLike | BinaryIO) -> list[str]:
    """The ``module.name`` globals in a checkpoint that a ``weights_only`` load would refuse
    (not rebuilt by default, not in the safe globals), read without unpickling anything.

    Parameters
    ----------
    f : str, PathLike or binary file
        The checkpoint.
    """
    import pickletools

    from ._safe_globals import lookup

    who, name = "get_unsafe_globals_in_checkpoint", file_name(f)
    own = isinstance(f, (str, os.PathLike))
    fh = open(f, "rb") if own else f
    try:
        ar = open_archive(fh, name, who)
        with ar.z:
            pkl = sorted(n for n in ar.names() if n.endswith("/data.pkl") and n.count("/") == 1)
            if MARKER in ar.infos:
                pkl = ["dyntorch/data.pkl"] if "dyntorch/data.pkl" in ar.infos else []
            if not pkl:
                return []
            data = ar.read(pkl[0])
    finally:
        if own:
            fh.close()
    found: list[str] = []
    strings: list[str] = []
    try:
        for op, arg, _ in pickletools.genops(io.BytesIO(data)):
            if op.name == "GLOBAL":
                mod, _, qual = arg.partition(" ")
            elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                mod, qual = strings[-2], strings[-1]
            else:
                if isinstance(arg, str):
                    strings.append(arg)
                continue
            full = f"{mod}.{qual}"
            if not allowed_by_default(mod, qual) and lookup(mod, qual) is None and \
                    full not in found:
                found.append(full)
    except Exception as e:  # noqa: BLE001 - any parse failure is damage
        raise LoadError(f"{who}: '{name}' has a damaged pickle ({type(e).__name__}: {e})") \
            from None
    return found


_LEGACY_MAGIC = b"\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"


def _why_not_zip(who: str, name: str, head: bytes) -> str:
    if not head:
        return f"{who}: '{name}' is empty (0 bytes); it was probably not written fully."
    if head[:1] == b"\x80" and _LEGACY_MAGIC in head[:20]:
        return (f"{who}: '{name}' is in PyTorch's legacy (pre-1.6, non-zip) format, which "
                "dyntorch does not read. Re-save it with a recent torch: "
                "`torch.save(torch.load(path), new_path)`.")
    return (f"{who}: '{name}' is not a dyntorch or PyTorch checkpoint (not a zip archive; it "
            f"starts with {head[:16]!r}).")

