"""Reading zip archives and ``.npy`` members that may be damaged or hostile.

Every size a header states is checked against the bytes the file really holds before anything
is allocated, and every decoding error becomes a :class:`LoadError` naming the file.
"""
from __future__ import annotations

import io
import os
import warnings
import zipfile

import numpy as np

__all__ = ["LoadError", "Archive", "read_npy"]

MAX_DIMS = 64  # no real tensor has more; a larger count in a header is damage


class LoadError(RuntimeError):
    """A file could not be read as a checkpoint (names the file and what is wrong)."""


def file_name(f) -> str:
    """A readable name for a path or file object, for error messages."""
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    return str(getattr(f, "name", None) or f"<{type(f).__name__}>")


class Archive:
    """A zip archive opened for reading, whose members are checked before they are read.

    Parameters
    ----------
    z : zipfile.ZipFile
        The open archive.
    name : str
        The file's name, for errors.
    who : str
        The reading function (``"dyntorch.load"``), for errors.
    size : int
        The archive's size in bytes: no member may claim more.
    """

    def __init__(self, z: zipfile.ZipFile, name: str, who: str, size: int):
        self.z, self.name, self.who, self.size = z, name, who, size
        self.infos = {i.filename: i for i in z.infolist()}

    def error(self, what: str) -> LoadError:
        return LoadError(f"{self.who}: '{self.name}' {what}")

    def names(self) -> list[str]:
        return list(self.infos)

    def read(self, member: str) -> bytes:
        """The bytes of ``member``, after checking its stated size against the archive."""
        info = self.infos.get(member)
        if info is None:
            raise self.error(f"lacks the record '{member}'; the file is incomplete or corrupt.")
        if info.compress_type != zipfile.ZIP_STORED:
            # neither torch.save nor dyntorch compress; a compressed member could expand
            # without bound, so it is refused rather than inflated
            raise self.error(f"has a compressed record '{member}' (method "
                             f"{info.compress_type}); checkpoints store records uncompressed. "
                             "The file was altered after saving.")
        if info.file_size != info.compress_size or info.file_size > self.size or \
                info.header_offset + info.file_size > self.size:
            raise self.error(f"says its record '{member}' holds {info.file_size} bytes, more "
                             f"than the file's {self.size}; the file is truncated or corrupt.")
        try:
            data = self.z.read(info)
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError,
                RuntimeError) as e:
            raise self.error(f"has a damaged record '{member}' ({type(e).__name__}: {e}); the "
                             "file is truncated or corrupt. Save it again.") from None
        if len(data) != info.file_size:
            raise self.error(f"record '{member}' is {len(data)} bytes instead of "
                             f"{info.file_size}; the file is truncated or corrupt.")
        return data


def open_archive(fh, name: str, who: str) -> Archive:
    """Open ``fh`` (a seekable binary file) as an :class:`Archive`, or raise LoadError."""
    fh.seek(0, io.SEEK_END)
    size = fh.tell()
    fh.seek(0)
    try:
        z = zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError,
            UnicodeDecodeError, OverflowError) as e:
        raise LoadError(f"{who}: '{name}' is a damaged zip archive ({type(e).__name__}: {e}); "
                        "the file is probably truncated or corrupt. Save it again.") from None
    return Archive(z, name, who, size)


def check_shape(shape, what: str, err) -> tuple[int, ...]:
    """``shape`` as a tuple of non-negative ints, or raise ``err(message)``."""
    if not isinstance(shape, (tuple, list)) or len(shape) > MAX_DIMS:
        raise err(f"{what} has shape {shape!r}, which is not a tuple of at most {MAX_DIMS} "
                  "sizes")
    out = []
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 or s >= 2**62:
            raise err(f"{what} has an impossible size {s!r} in its shape {tuple(shape)!r}")
        out.append(int(s))
    return tuple(out)


def numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def read_npy(raw: bytes, what: str, err) -> np.ndarray:
    """Parse the bytes of a ``.npy`` file without trusting its header.

    NumPy's own reader allocates the array the header describes before reading the data, so a
    header that lies about the shape can exhaust memory; here the shape and dtype are checked
    against the bytes present first. Only plain numeric and bool dtypes are accepted (no
    pickled objects). ``err(message)`` builds the exception to raise.
    """
    buf = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(buf)
        with warnings.catch_warnings():  # (numpy warns of Python 2 headers; damage is ours)
            warnings.simplefilter("ignore")
            if version == (1, 0):
                shape, fortran, dt = np.lib.format.read_array_header_1_0(buf)
            elif version == (2, 0):
                shape, fortran, dt = np.lib.format.read_array_header_2_0(buf)
            else:
                raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, SyntaxError, TypeError, KeyError, UnicodeDecodeError, EOFError,
            OverflowError, MemoryError, RecursionError) as e:
        raise err(f"{what} has a damaged array header ({type(e).__name__}: {e})") from None
    if dt.hasobject or dt.fields is not None or dt.kind not in "biuf" or dt.subdtype:
        raise err(f"{what} holds dtype {dt}, not a plain numeric array")
    shape = check_shape(shape, what, err)
    start = buf.tell()
    need = numel(shape) * dt.itemsize
    if need != len(raw) - start:
        raise err(f"{what} says it holds {dt.name}{list(shape)} ({need} bytes) but "
                  f"{len(raw) - start} bytes follow its header")
    arr = np.frombuffer(raw, dtype=dt, count=numel(shape), offset=start)
    arr = arr.reshape(shape, order="F" if fortran else "C")
    return arr.astype(dt.newbyteorder("="), copy=True)  # a writable array in native order
