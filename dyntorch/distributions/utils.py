"""Helpers shared by the distributions: broadcasting parameters, probabilities <-> logits."""
from __future__ import annotations

import numbers

import dyntorch as torch

from .._tensor import Tensor


def broadcast_all(*values) -> tuple[Tensor, ...]:
    """Numbers and tensors broadcast to one shape; numbers take the tensors' float dtype."""
    if not all(isinstance(v, (Tensor, numbers.Number)) for v in values):
        raise ValueError("Input arguments must all be instances of numbers.Number or "
                         f"torch.tensor, got {[type(v).__name__ for v in values]}")
    tensors = [v for v in values if isinstance(v, Tensor)]
    dtype = tensors[0].dtype if tensors else torch.get_default_dtype()
    device = tensors[0].device if tensors else None
    vals = [v if isinstance(v, Tensor) else torch.tensor(float(v), dtype=dtype, device=device)
            for v in values]
    return tuple(torch.broadcast_tensors(*vals))


def clamp_probs(probs: Tensor) -> Tensor:
    """Probabilities kept inside (0, 1) by the dtype's eps, so their logs stay finite."""
    eps = torch.finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """Log-odds (binary) or log-probabilities (categorical) of ``probs``."""
    p = clamp_probs(probs)
    return torch.log(p) - torch.log1p(-p) if is_binary else torch.log(p)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """Sigmoid (binary) or softmax over the last dimension (categorical) of ``logits``."""
    return torch.sigmoid(logits) if is_binary else torch.softmax(logits, dim=-1)


class lazy_property:
    """A property computed on first access and then stored on the instance."""

    def __init__(self, fn):
        self.fn = fn
        self.__doc__ = fn.__doc__

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        with torch.enable_grad():
            value = self.fn(obj)
        obj.__dict__[self.fn.__name__] = value
        return value
