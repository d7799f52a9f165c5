"""``dyntorch.linalg``: norms and a few dense solvers, with gradients (``torch.linalg``)."""
from __future__ import annotations

import math

from ._tensor import Tensor
from .ops import linalg as _L
from .ops.linalg import cross as _cross
from .ops.linalg import (
    eigh,
    eigvalsh,
    matmul,
    qr,
    solve,
)
from .ops.reduce import amax, amin
from .ops.reduce import sum as _sum
from .ops.reduce import vector_norm as _vector_norm

__all__ = ["norm", "vector_norm", "matrix_norm", "inv", "det", "slogdet", "solve", "cholesky",
           "matrix_power", "cross", "vecdot", "multi_dot", "inv_ex", "cholesky_ex", "eigh",
           "eigvalsh", "svd", "svdvals", "qr"]


# torch.linalg names its arguments A (matrices) and x (vectors), unlike torch.det(input);
# these take those names and pass on to the one op each.
def inv(A: Tensor, *, out=None) -> Tensor:
    """Inverse of (batches of) square matrices (``torch.linalg.inv``)."""
    return _out(out, _L.inverse(A))


def det(A: Tensor, *, out=None) -> Tensor:
    """Determinant of (batches of) square matrices (``torch.linalg.det``)."""
    return _out(out, _L.det(A))


def slogdet(A: Tensor, *, out=None):
    """``(sign, logabsdet)`` of the determinant (``torch.linalg.slogdet``)."""
    _no_out(out, "slogdet")
    return _L.slogdet(A)


def cholesky(A: Tensor, *, upper: bool = False, out=None) -> Tensor:
    """Cholesky factor of a symmetric positive-definite matrix (``torch.linalg.cholesky``)."""
    return _out(out, _L.cholesky(A, upper))


def matrix_power(A: Tensor, n: int, *, out=None) -> Tensor:
    """``A`` multiplied by itself ``n`` times; negative ``n`` uses the inverse."""
    return _out(out, _L.matrix_power(A, n))


def svd(A: Tensor, full_matrices: bool = True, *, driver=None, out=None):
    """``(U, S, Vh)`` with ``A = U diag(S) Vh`` (``torch.linalg.svd``)."""
    _cpu_driver(driver, "svd")
    _no_out(out, "svd")
    return _L.svd(A, full_matrices)


def svdvals(A: Tensor, *, driver=None, out=None) -> Tensor:
    """Singular values, descending (``torch.linalg.svdvals``)."""
    _cpu_driver(driver, "svdvals")
    return _out(out, _L.svdvals(A))


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None,
                out=None) -> Tensor:
    """The vector ``ord``-norm over ``dim`` (all elements when None)."""
    return _out(out, _vector_norm(x, ord, dim, keepdim, dtype=dtype))


def _out(out, r: Tensor) -> Tensor:
    return r if out is None else out.copy_(r)


def _no_out(out, name: str) -> None:
    if out is not None:
        raise NotImplementedError(f"linalg.{name}(): out= is not supported for its tuple "
                                  "result; use the returned tensors")


def _cpu_driver(driver, name: str) -> None:
    # torch takes driver= only for cuSOLVER on CUDA and refuses it elsewhere; so do we
    if driver is not None:
        raise RuntimeError(f"torch.linalg.{name}: keyword argument `driver=` is only supported "
                           "on CUDA inputs with cuSOLVER backend; leave driver out")


def _two_dims(A: Tensor, dim, name: str) -> tuple:
    nd = A._data.ndim
    if nd < 2:
        raise RuntimeError(f"linalg.{name}(): The input tensor A must have at least 2 "
                           f"dimensions, got {nd}")
    d0, d1 = dim
    d0, d1 = d0 % nd, d1 % nd
    if d0 == d1:
        raise RuntimeError(f"linalg.{name}(): dims must be different. Got ({dim[0]}, {dim[1]})")
    return d0, d1


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *,
                dtype=None) -> Tensor:
    """Matrix norm over the two dims ``dim``: 'fro', 1, -1, inf, -inf (``torch.linalg``)."""
    if dtype is not None:
        A = A.to(dtype)
    d0, d1 = _two_dims(A, dim, "matrix_norm")
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord == "nuc" or ord in (2, -2):
        s = svdvals(A.movedim((d0, d1), (-2, -1)))
        r = s.sum(-1) if ord == "nuc" else (s.amax(-1) if ord == 2 else s.amin(-1))
        if keepdim:
            r = r.unsqueeze(min(d0, d1)).unsqueeze(max(d0, d1))
        return r
    if ord in (1, -1):
        col = _sum(A.abs(), d0, keepdim=True)
        r = amax(col, d1, keepdim=True) if ord == 1 else amin(col, d1, keepdim=True)
    elif ord in (math.inf, -math.inf):
        row = _sum(A.abs(), d1, keepdim=True)
        r = amax(row, d0, keepdim=True) if ord > 0 else amin(row, d0, keepdim=True)
    else:
        raise RuntimeError(f"linalg.matrix_norm(): Order {ord} not supported.")
    if not keepdim:
        r = r.squeeze((d0, d1))
    return r


def norm(input: Tensor, ord=None, dim=None, keepdim: bool = False, *, out=None,
         dtype=None) -> Tensor:
    """Vector norm, or matrix norm when ``ord`` is given with 2 dims (``torch.linalg.norm``)."""
    if out is not None:
        return out.copy_(norm(input, ord, dim, keepdim, dtype=dtype))
    A = input
    if dim is not None and not isinstance(dim, (tuple, list)):
        dim = (dim,)
    if ord is None:
        if dim is None and A.ndim == 2:
            return matrix_norm(A, "fro", (-2, -1), keepdim, dtype=dtype)
        return vector_norm(A, 2, dim, keepdim, dtype=dtype)
    if dim is None:
        if A.ndim == 2:
            dim = (-2, -1)
        elif A.ndim == 1:
            dim = (-1,)
        else:
            raise RuntimeError("linalg.norm(): If dim is not specified but ord is, the input "
                               f"must be 1D or 2D. Got {A.ndim}D.")
    if len(dim) == 2:
        return matrix_norm(A, ord, tuple(dim), keepdim, dtype=dtype)
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.norm(): ord '{ord}' needs two dims")
    return vector_norm(A, ord, dim, keepdim, dtype=dtype)


def multi_dot(tensors) -> Tensor:
    """Product of a chain of matrices, left to right (``torch.linalg.multi_dot``)."""
    tensors = list(tensors)
    if len(tensors) < 2:
        raise RuntimeError("linalg.multi_dot(): expected at least 2 tensors but got "
                           f"{len(tensors)}")
    r = tensors[0]
    for t in tensors[1:]:
        r = matmul(r, t)
    return r


def cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """Cross product of 3-vectors along ``dim`` (default the last) (``torch.linalg.cross``)."""
    return _cross(input, other, dim)


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """Dot product of vectors along ``dim`` (``torch.linalg.vecdot``)."""
    return _sum(x * y, dim)


def inv_ex(A: Tensor, *, check_errors: bool = False):
    """``(inverse, info)`` (``torch.linalg.inv_ex``); info is all zeros."""
    from .ops.index import return_type

    r = inv(A)
    info = r.new_zeros(A.shape[:-2], dtype="int32")
    return return_type("inv_ex", ("inverse", "info"))(r, info)


def cholesky_ex(A: Tensor, *, upper: bool = False, check_errors: bool = False):
    """``(L, info)`` (``torch.linalg.cholesky_ex``)."""
    from .ops.index import return_type

    r = cholesky(A, upper=upper)
    return return_type("cholesky_ex", ("L", "info"))(r, r.new_zeros(A.shape[:-2],
                                                                   dtype="int32"))
