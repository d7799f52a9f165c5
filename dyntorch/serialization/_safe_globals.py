"""The user's list of extra globals that a ``weights_only`` load may rebuild, and the
environment variables that override ``weights_only`` (the same rules as ``torch.load``)."""
from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["add_safe_globals", "get_safe_globals", "clear_safe_globals", "safe_globals",
           "resolve_weights_only"]

_lock = threading.Lock()
_SAFE: list[Any] = []  # callables, or (callable, "module.qualname") pairs, as torch keeps them


def _check(entries) -> list:
    if not isinstance(entries, (list, tuple)):
        raise TypeError(f"safe globals must be a list of classes or functions (or "
                        f"(obj, 'module.name') pairs), got {type(entries).__name__}")
    for e in entries:
        if isinstance(e, tuple):
            if len(e) != 2 or not isinstance(e[1], str) or "." not in e[1]:
                raise TypeError(f"a safe global given as a tuple must be (obj, "
                                f"'module.qualname'), got {e!r}")
        elif not hasattr(e, "__module__") or not hasattr(e, "__qualname__"):
            raise TypeError(f"safe global {e!r} has no __module__/__qualname__; pass it as "
                            "(obj, 'module.qualname')")
    return list(entries)


def add_safe_globals(safe_globals: list[Callable | tuple[Callable, str]]) -> None:
    """Mark globals as safe for ``dyntorch.load(weights_only=True)`` (``torch.serialization``'s
    name and meaning).

    Parameters
    ----------
    safe_globals : list
        Classes or functions the file may name, each optionally as ``(obj, "module.name")``
        when the name in the file differs from where ``obj`` lives now.
    """
    entries = _check(safe_globals)
    with _lock:
        _SAFE.extend(entries)


def get_safe_globals() -> list[Callable | tuple[Callable, str]]:
    """The globals added by :func:`add_safe_globals` (and active :class:`safe_globals`)."""
    with _lock:
        return list(_SAFE)


def clear_safe_globals() -> None:
    """Forget every global added by :func:`add_safe_globals`."""
    with _lock:
        _SAFE.clear()


class safe_globals:
    """Context manager: the given globals are safe for ``weights_only`` loads inside the block.

    Parameters
    ----------
    safe_globals : list
        As for :func:`add_safe_globals`.

    Examples
    --------
    >>> with dyntorch.serialization.safe_globals([MyConfig]):     # doctest: +SKIP
    ...     ckpt = dyntorch.load("run.pt")
    """

    def __init__(self, safe_globals: list[Callable | tuple[Callable, str]]):
        self.safe_globals = _check(safe_globals)
        self._before: list | None = None

    def __enter__(self):
        with _lock:
            self._before = list(_SAFE)
            _SAFE.extend(self.safe_globals)
        return self

    def __exit__(self, *exc) -> None:
        with _lock:
            _SAFE[:] = self._before or []
        return None


def lookup(module: str, qualname: str):
    """The safe global stored under ``module.qualname``, or None."""
    full = f"{module}.{qualname}"
    with _lock:
        entries = list(_SAFE)
    for e in entries:
        if isinstance(e, tuple):
            if e[1] == full:
                return e[0]
        elif f"{e.__module__}.{e.__qualname__}" == full:
            return e
    return None


def names() -> Iterable[str]:
    with _lock:
        return [e[1] if isinstance(e, tuple) else f"{e.__module__}.{e.__qualname__}"
                for e in _SAFE]


_TRUE = ("1", "y", "yes", "true")


def resolve_weights_only(weights_only: bool | None, pickle_module, who: str) -> bool:
    """``weights_only`` after torch's defaults and environment overrides.

    Not given: ``True``, unless a ``pickle_module`` is given. ``TORCH_FORCE_WEIGHTS_ONLY_LOAD``
    makes it ``True`` even when ``False`` was passed; ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` makes
    it ``False`` only when it was not passed (with a warning); both set is an error.
    """
    not_set = weights_only is None
    if not_set:
        weights_only = pickle_module is None
    force = os.getenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "0").lower() in _TRUE
    force_no = os.getenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "0").lower() in _TRUE
    if force and force_no:
        raise RuntimeError(f"{who}: only one of TORCH_FORCE_WEIGHTS_ONLY_LOAD and "
                           "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD may be set; unset one of them.")
    if force:
        return True
    if force_no and not_set:
        warnings.warn(f"Environment variable TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD detected: since "
                      f"`weights_only` was not passed to {who}, it loads with "
                      "weights_only=False, which can run code from the file.", stacklevel=3)
        return False
    return bool(weights_only)
