"""``dyntorch.backends.cuda``: CUDA's switches (``matmul.allow_tf32`` ...), kept and unused:
CuPy's matrix products run in the tensor's own dtype."""
from __future__ import annotations

from types import SimpleNamespace

from .. import cuda as _cuda

matmul = SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True,
                         allow_bf16_reduced_precision_reduction=True)


def is_built() -> bool:
    """True when a CUDA device is usable through CuPy."""
    return _cuda.is_available()
