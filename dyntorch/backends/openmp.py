"""``dyntorch.backends.openmp``: dyntorch starts no OpenMP threads of its own."""
from __future__ import annotations


def is_available() -> bool:
    return False
