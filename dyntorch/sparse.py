"""``torch.sparse``: sparse COO tensors and their products (see ``dyntorch/ops/sparse.py``)."""
from __future__ import annotations

from .ops.sparse import SUPPORTED, SparseCOOTensor, is_sparse, mm, sparse_coo_tensor, spmm


def sum(input: SparseCOOTensor, dim=None, dtype=None):
    """Sum of every stored value (``dim=None``); other dims are not supported yet."""
    if not isinstance(input, SparseCOOTensor):
        return input.sum() if dim is None else input.sum(dim)
    return input.sum(dim, dtype=dtype)


__all__ = ["SparseCOOTensor", "mm", "spmm", "sparse_coo_tensor", "is_sparse", "sum",
           "SUPPORTED"]
