"""``dyntorch.backends.mkldnn``: oneDNN, which dyntorch does not call."""
from __future__ import annotations

enabled: bool = False


def is_available() -> bool:
    return False
