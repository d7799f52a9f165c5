"""Write a file so that a reader sees either the old content or the whole new one, never a
torn mix: the bytes go to a temporary file in the same folder, which is flushed, synced and
then renamed over the target (a rename within one file system is atomic)."""
from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["atomic_write"]


def _fsync_dir(folder: str) -> None:
    # The rename lives in the folder's entry table: sync it too, or a power cut can undo it.
    # Windows cannot open a folder for syncing; its rename is already journalled.
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems (tmpfs on old kernels, network mounts) refuse
        pass
    finally:
        os.close(fd)


def _open_temp(folder: str, base: str) -> tuple[str, BinaryIO]:
    for _ in range(100):
        tmp = os.path.join(folder, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            # O_EXCL: never reuse a name another writer holds; mode 0o666 lets the umask decide
            # the permissions, as open(path, "wb") would.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                         0o666)
        except FileExistsError:
            continue
        return tmp, os.fdopen(fd, "wb")
    raise FileExistsError(f"atomic_write: could not create a temporary file in '{folder}'")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open ``path`` for writing so that it is replaced whole or not at all.

    Yields a binary file opened on a temporary file in the same folder. When the ``with`` block
    ends normally the data is flushed and ``fsync``-ed, the temporary file is renamed over
    ``path`` with :func:`os.replace`, and the folder is synced. When the block raises (any
    exception, ``KeyboardInterrupt`` included) the temporary file is removed and ``path`` keeps
    its previous content. A process killed outright may leave a hidden ``.<name>.<hex>.tmp``
    file behind, but never a torn ``path``.

    Parameters
    ----------
    path : str or PathLike
        The file to write.

    Examples
    --------
    >>> with atomic_write("model.pt") as f:      # doctest: +SKIP
    ...     dyntorch.save(state, f)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp, fh = _open_temp(folder, os.path.basename(path))
    try:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        os.replace(tmp, path)
    except BaseException:
        fh.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)
