"""``dyntorch.backends.cpu``: what the CPU path vectorises with (NumPy's own kernels)."""
from __future__ import annotations


def get_cpu_capability() -> str:
    """"DEFAULT": dyntorch picks no SIMD level itself; NumPy dispatches at run time."""
    return "DEFAULT"
