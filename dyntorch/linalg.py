"""``dyntorch.linalg``: norms and a few dense solvers, with gradients (``torch.linalg``)."""
from __future__ import annotations

import math

from ._dispatch import op
from ._tensor import Tensor
from .ops.linalg import matmul
from .ops.reduce import amax, amin, vector_norm
from .ops.reduce import sum as _sum

__all__ = ["norm", "vector_norm", "matrix_norm", "inv", "det", "solve", "multi_dot"]


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
        raise NotImplementedError(f"linalg.matrix_norm(ord={ord!r}) needs an SVD, which "
                                  "dyntorch does not provide yet; use 'fro', 1, -1, inf or -inf")
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


def norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """Vector norm, or matrix norm when ``ord`` is given with 2 dims (``torch.linalg.norm``)."""
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


def _square(A: Tensor, name: str) -> None:
    s = A._data.shape
    if len(s) < 2 or s[-1] != s[-2]:
        raise RuntimeError(f"linalg.{name}(): A must be batches of square matrices, but they "
                           f"are {s[-2] if len(s) > 1 else '?'} by {s[-1] if s else '?'} "
                           "matrices")
    if A._data.dtype.kind != "f":
        raise RuntimeError(f"linalg.{name}(): Expected a floating point tensor as input. Got "
                           f"{A.dtype}")


@op(name="linalg_inv_ex", backward_name="LinalgInvExBackward0")
def _inv(xp, a):
    return xp.linalg.inv(a)


@_inv.def_derivative
def _(ns, g, _a, out):
    t = ns.swapaxes(out, -1, -2)
    return -ns.matmul(ns.matmul(t, g), t)


def inv(A: Tensor) -> Tensor:
    """Inverse of (batches of) square matrices (``torch.linalg.inv``)."""
    _square(A, "inv")
    return _inv(A)


@op(name="linalg_det", backward_name="LinalgDetBackward0")
def _det(xp, a):
    return xp.linalg.det(a)


@_det.def_derivative
def _(ns, g, a, out):
    # d det(A) = det(A) * A^{-T}; solve rather than invert where it is plain arrays
    inv_t = ns.swapaxes(_inv_any(ns, a), -1, -2)
    return ns.expand_dims(ns.expand_dims(g * out, -1), -1) * inv_t


def _inv_any(ns, a):
    if isinstance(a, Tensor):
        return _inv(a)
    return ns.xp.linalg.inv(a)


def det(A: Tensor) -> Tensor:
    """Determinant of (batches of) square matrices (``torch.linalg.det``)."""
    _square(A, "det")
    return _det(A)


@op(name="linalg_solve", backward_name="LinalgSolveExBackward0")
def _solve(xp, a, b):
    return xp.linalg.solve(a, b)


@_solve.def_derivative
def _(ns, g, a, _b, out, *, needs):
    # X = A^{-1} B:  gB = A^{-T} g,  gA = -gB X^T
    at = ns.swapaxes(a, -1, -2)
    gb = _solve_any(ns, at, g)
    ga = -ns.matmul(gb, ns.swapaxes(out, -1, -2)) if needs[0] else None
    return ga, gb if needs[1] else None


def _solve_any(ns, a, b):
    if isinstance(a, Tensor):
        return _solve(a.contiguous(), b)
    return ns.xp.linalg.solve(a, b)


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """Solve ``A X = B`` for square ``A`` (``torch.linalg.solve``)."""
    _square(A, "solve")
    if not left:
        return solve(A.mT, B.mT).mT
    if B._data.ndim == 1 or (B._data.ndim == A._data.ndim - 1 and
                             B._data.shape == A._data.shape[:-1]):
        return _solve(A, B.unsqueeze(-1)).squeeze(-1)
    if B._data.shape[-2] != A._data.shape[-1]:
        raise RuntimeError(f"linalg.solve(): Incompatible shapes of A and B for the equation "
                           f"AX = B ({A._data.shape[-2]}x{A._data.shape[-1]} and "
                           f"{B._data.shape[-2]}x{B._data.shape[-1]})")
    return _solve(A, B)


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
