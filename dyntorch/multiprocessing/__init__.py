"""``torch.multiprocessing``: Python's ``multiprocessing`` with tensors that can be shared.

Everything ``multiprocessing`` offers is here under the same names (``Process``, ``Queue``,
``set_start_method``, ``get_context``, ...). On top, tensors moved to shared memory with
``Tensor.share_memory_()`` / ``Module.share_memory()`` travel to other processes as handles
to the same memory, so Hogwild-style training (several processes stepping one model's
parameters) works with ``fork`` and ``spawn`` alike; ``spawn`` starts ``nprocs`` copies of a
function and re-raises a child's error in the parent. CPU tensors only.
"""
from __future__ import annotations

import multiprocessing as _mp
from multiprocessing import *  # noqa: F401,F403  (the standard names, as torch re-exports them)

from .reductions import init_reductions
from .spawn import (
    ProcessContext,
    ProcessExitedException,
    ProcessRaisedException,
    spawn,
    start_processes,
)

__all__ = ["set_sharing_strategy", "get_sharing_strategy", "get_all_sharing_strategies",
           "spawn", "start_processes", "ProcessContext", "ProcessRaisedException",
           "ProcessExitedException", "init_reductions"] + list(_mp.__all__)

# dyntorch keeps shared tensors in named files under /dev/shm, which is torch's
# "file_system" strategy; "file_descriptor" (fds passed over sockets) is not implemented.
_STRATEGIES = {"file_system"}
_strategy = "file_system"


def set_sharing_strategy(new_strategy: str) -> None:
    """Choose how shared tensors are handed over; dyntorch has ``"file_system"`` only."""
    global _strategy
    if new_strategy not in _STRATEGIES:
        raise ValueError(f"set_sharing_strategy(): {new_strategy!r} is not available in dyntorch; "
                         f"the strategies are {sorted(_STRATEGIES)}")
    _strategy = new_strategy


def get_sharing_strategy() -> str:
    """The current sharing strategy (``"file_system"``)."""
    return _strategy


def get_all_sharing_strategies() -> set[str]:
    """The strategies this build supports."""
    return set(_STRATEGIES)


init_reductions()
