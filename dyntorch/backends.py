"""``dyntorch.backends``: the switches training scripts set up front.

dyntorch has no cuDNN, MPS or TF32 paths, so the flags are plain attributes that keep their
values (``torch.backends.cudnn.benchmark = True`` works) and change nothing.
"""
from __future__ import annotations

from types import SimpleNamespace

from . import _backend as B

cudnn = SimpleNamespace(
    enabled=True, benchmark=False, deterministic=False, allow_tf32=True,
    is_available=lambda: False, version=lambda: None)

mps = SimpleNamespace(is_available=lambda: False, is_built=lambda: False)

cuda = SimpleNamespace(
    matmul=SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True),
    is_built=lambda: B.cuda_available())

mkldnn = SimpleNamespace(enabled=False, is_available=lambda: False)
openmp = SimpleNamespace(is_available=lambda: False)
