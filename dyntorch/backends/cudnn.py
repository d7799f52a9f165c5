"""``dyntorch.backends.cudnn``: cuDNN's switches, kept and unused (dyntorch has no cuDNN path;
its GPU convolutions run through CuPy)."""
from __future__ import annotations

import contextlib

enabled: bool = True
benchmark: bool = False
benchmark_limit: int = 10
deterministic: bool = False
allow_tf32: bool = True


def is_available() -> bool:
    """False: dyntorch does not call cuDNN (as torch answers on a machine without it)."""
    return False


def version() -> int | None:
    """None: no cuDNN is loaded."""
    return None


def is_acceptable(tensor) -> bool:
    """False: no tensor goes to cuDNN."""
    return False


@contextlib.contextmanager
def flags(enabled: bool = False, benchmark: bool = False, benchmark_limit: int = 10,
          deterministic: bool = False, allow_tf32: bool = True):
    """Set the switches inside a ``with`` block and restore them after (``cudnn.flags``)."""
    g = globals()
    names = ("enabled", "benchmark", "benchmark_limit", "deterministic", "allow_tf32")
    old = {n: g[n] for n in names}
    g.update(enabled=enabled, benchmark=benchmark, benchmark_limit=benchmark_limit,
             deterministic=deterministic, allow_tf32=allow_tf32)
    try:
        yield
    finally:
        g.update(old)
