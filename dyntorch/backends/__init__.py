"""``dyntorch.backends``: the switches training scripts set up front.

dyntorch has no cuDNN, MPS, MKL-DNN or TF32 paths, so each flag is a plain module attribute
that keeps the value a script gives it (``torch.backends.cudnn.benchmark = True``) and
changes nothing. Each backend is a module, so ``import torch.backends.cudnn as cudnn`` works.
"""
from __future__ import annotations

from . import cpu, cuda, cudnn, mkldnn, mps, openmp  # noqa: F401

__all__ = ["cpu", "cuda", "cudnn", "mkldnn", "mps", "openmp"]
