"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_``."""
from __future__ import annotations

import math

from ... import _backend as B
from ..._tensor import Tensor, _make, bump_version

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def _norm_of(g, norm_type: float):
    xp = B.xp_of(g)
    if norm_type == math.inf:
        return xp.abs(g).max() if g.size else xp.asarray(0.0, dtype=g.dtype)
    if norm_type == 2.0:
        return xp.sqrt((g * g).sum())
    return (xp.abs(g) ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """The norm of all ``tensors`` together (as if concatenated)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = [t for t in tensors if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return _make(B.np.asarray(0.0, dtype=B.get_default_dtype().np))
    arrs = [t._data for t in tensors]
    xp = B.xp_of(arrs[0])
    norms = xp.stack([_norm_of(a, norm_type).astype(arrs[0].dtype) for a in arrs])
    total = norms.max() if norm_type == math.inf else _norm_of(norms, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the gradients "
            "by the non-finite norm anyway, set `error_if_nonfinite=False`")
    return _make(xp.asarray(total, dtype=arrs[0].dtype))


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor,
                          foreach=None) -> None:
    """Scale gradients by max_norm / (total_norm + 1e-6) when that is below 1."""
    grads = _grads(parameters)
    if not grads:
        return
    coef = float(max_norm) / (float(total_norm.item()) + 1e-6)
    if coef < 1.0 or math.isnan(coef):
        for p in grads:
            g = p.grad._data
            g *= min(coef, 1.0) if not math.isnan(coef) else coef
            _bump(p.grad)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale all gradients so that their total norm is at most ``max_norm``.

    Returns the total norm before clipping (a 0-d tensor), like torch.
    """
    grads = _grads(parameters)
    total = get_total_norm([p.grad for p in grads], norm_type, error_if_nonfinite)
    if grads:
        clip_grads_with_norm_(grads, max_norm, total)
    return total


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element into [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    for p in _grads(parameters):
        g = p.grad._data
        xp = B.xp_of(g)
        xp.clip(g, -clip_value, clip_value, out=g)
        _bump(p.grad)


_bump = bump_version


clip_grad_norm = clip_grad_norm_
