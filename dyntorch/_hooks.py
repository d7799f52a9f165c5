"""The one handle every ``register_*hook`` in dyntorch returns (public as
``dyntorch.utils.hooks.RemovableHandle``, as ``torch.utils.hooks`` has it).

At the bottom floor: it imports nothing of dyntorch, so autograd, nn and optim all use it.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable

_ids = itertools.count()
next_id = _ids.__next__  # one id space, so keys from different registrations never clash


class RemovableHandle:
    """Takes a registered hook out again: ``remove()``, or leave a ``with`` block.

    Parameters
    ----------
    *tables : dict
        Dicts the hook was stored in under this handle's ``id``; ``remove()`` pops it from each.
    on_remove : callable, optional
        Called once by the first ``remove()``, for hooks kept in other structures (a node's
        hook list, a set of states).
    id : int, optional
        The key the hook was stored under, when the caller drew it (default: a fresh id).
    """

    __slots__ = ("id", "_tables", "_on_remove")

    def __init__(self, *tables: dict, on_remove: Callable[[], None] | None = None,
                 id: int | None = None):  # noqa: A002  (torch's name)
        self.id = next_id() if id is None else id
        self._tables = tables
        self._on_remove = on_remove

    def remove(self) -> None:
        """Unregister the hook; a second call does nothing."""
        for t in self._tables:
            t.pop(self.id, None)
        fn, self._on_remove = self._on_remove, None
        if fn is not None:
            fn()

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<RemovableHandle id={self.id}>"
