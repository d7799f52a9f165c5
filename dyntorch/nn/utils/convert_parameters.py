"""``parameters_to_vector`` and ``vector_to_parameters``."""
from __future__ import annotations

from ..._tensor import Tensor, bump_version

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated into one 1-D tensor (differentiable)."""
    from ...ops.shape import cat

    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters`` (their data)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    if vec.ndim != 1:
        raise RuntimeError(f"vector_to_parameters(): expected a 1-D vector, got shape "
                           f"{list(vec.shape)}")
    v = vec._data
    off = 0
    for p in parameters:
        n = p.numel()
        if off + n > v.shape[0]:
            raise RuntimeError(f"vector_to_parameters(): vector of length {v.shape[0]} is too "
                               "short for the parameters")
        p._data = v[off:off + n].reshape(p._data.shape).astype(p._data.dtype, copy=True)
        bump_version(p, create=False)
        off += n
