"""Sparse COO tensors (``torch.sparse_coo_tensor``, ``Tensor.to_sparse``, ``torch.sparse.mm``).

A :class:`SparseCOOTensor` holds an int64 index array (sparse_dim, nnz) on the values' device
and a values :class:`Tensor` (nnz, *dense dims) that may require grad. Its arithmetic runs
through three ops of the door, each with its derivative beside it, so gradients reach the
values and the dense operands:

- ``sparse_to_dense``: scatter-add the values into zeros (derivative: gather);
- ``sparse_coalesce``: sum the values of repeated indices (derivative: gather);
- ``sparse_mm``: (n, m) sparse @ (m, p) dense, one row-scatter of values * dense rows
  (derivatives: the same scatter with rows and columns swapped, and a row-wise dot).

NumPy on the CPU, CuPy on the GPU (the array module of the values), no SciPy. Operations not
listed in ``SUPPORTED`` raise an error that says so and how to continue (``.to_dense()``).
"""
from __future__ import annotations

from .. import _backend as B
from .._dispatch import array_ns, op
from .._tensor import Tensor, _make
from ._util import method

SPARSE_COO = "sparse_coo"  # torch.sparse_coo (dyntorch names layouts by strings, as strided)


# ----------------------------------------------------------------------------- the ops
@op(name="sparse_to_dense", backward_name="ToDenseBackward0")
def _to_dense(xp, values, idx=None, shape=()):
    return array_ns(xp).index_add(tuple(shape), tuple(idx), values)


@_to_dense.def_derivative
def _(ns, g, _values, idx=None, shape=()):
    return ns.getitem(g, tuple(idx))


@op(name="sparse_coalesce", backward_name="CoalesceBackward0")
def _coalesce(xp, values, inverse=None, nnz=0):
    return array_ns(xp).index_add((nnz,) + values.shape[1:], inverse, values)


@_coalesce.def_derivative
def _(ns, g, _values, inverse=None, nnz=0):
    return ns.getitem(g, inverse)


def _expand(v, ndim):
    """(nnz,) values as (nnz, 1, ...) against dense rows of ``ndim`` - 1 trailing dims."""
    return v.reshape(v.shape + (1,) * (ndim - 1))


@op(name="sparse_mm", backward_name="SparseAddmmBackward0")
def _sparse_mm(xp, values, dense, rows=None, cols=None, n=0):
    prod = _expand(values, dense.ndim) * dense[cols]
    return array_ns(xp).index_add((n,) + dense.shape[1:], rows, prod)


@_sparse_mm.def_derivative
def _(ns, g, values, dense, rows=None, cols=None, n=0, needs=(True, True)):
    gr = ns.getitem(g, rows)
    gv = ns.sum(gr * ns.getitem(dense, cols), 1) if needs[0] else None
    gd = ns.index_add(tuple(dense.shape), cols, _expand(values, len(dense.shape)) * gr) \
        if needs[1] else None
    return gv, gd


# ----------------------------------------------------------------------------- the tensor
def _unsupported(what: str) -> NotImplementedError:
    return NotImplementedError(
        f"{what} is not supported for sparse COO tensors in dyntorch (supported: "
        f"{', '.join(SUPPORTED)}). Call .to_dense() first to use the dense operation.")


class SparseCOOTensor:
    """A sparse tensor in coordinate format (see ``torch.sparse_coo_tensor``)."""

    __slots__ = ("_idx", "_vals", "_shape", "_coalesced")
    is_sparse = True
    is_sparse_csr = False
    layout = SPARSE_COO
    # arrays of this type refuse to become NumPy arrays (so dense ops fail with our message)
    __array_priority__ = 1000

    def __init__(self, idx, values: Tensor, shape, coalesced: bool = False):
        self._idx = idx
        self._vals = values
        self._shape = tuple(int(s) for s in shape)
        self._coalesced = coalesced

    # --- what it is ---------------------------------------------------------------------
    @property
    def shape(self):
        from .._tensor import Size

        return Size(self._shape)

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self._shape[dim]

    def dim(self) -> int:
        return len(self._shape)

    ndim = property(dim)

    def sparse_dim(self) -> int:
        return int(self._idx.shape[0])

    def dense_dim(self) -> int:
        return len(self._shape) - self.sparse_dim()

    def _nnz(self) -> int:
        return int(self._idx.shape[1])

    @property
    def dtype(self):
        return self._vals.dtype

    @property
    def device(self):
        return self._vals.device

    @property
    def is_cuda(self) -> bool:
        return self._vals.is_cuda

    @property
    def requires_grad(self) -> bool:
        return self._vals.requires_grad

    def requires_grad_(self, requires_grad: bool = True) -> SparseCOOTensor:
        self._vals.requires_grad_(requires_grad)
        return self

    def is_coalesced(self) -> bool:
        return self._coalesced

    def numel(self) -> int:
        n = 1
        for s in self._shape:
            n *= s
        return n

    # --- parts ----------------------------------------------------------------------------
    def _indices(self) -> Tensor:
        return _make(self._idx)

    def _values(self) -> Tensor:
        return self._vals

    def indices(self) -> Tensor:
        if not self._coalesced:
            raise RuntimeError("Cannot get indices on an uncoalesced tensor, please call "
                               ".coalesce() first")
        return _make(self._idx)

    def values(self) -> Tensor:
        if not self._coalesced:
            raise RuntimeError("Cannot get values on an uncoalesced tensor, please call "
                               ".coalesce() first")
        return self._vals

    def coalesce(self) -> SparseCOOTensor:
        """Indices sorted (row-major) and unique, values of repeated indices summed."""
        if self._coalesced:
            return self
        xp = B.xp_of(self._idx)
        sd = self.sparse_dim()
        flat = xp.zeros(self._idx.shape[1], dtype=xp.int64)
        for d in range(sd):
            flat = flat * self._shape[d] + self._idx[d]
        uniq, inverse = xp.unique(flat, return_inverse=True)
        inverse = inverse.reshape(-1)
        idx = xp.stack(xp.unravel_index(uniq, self._shape[:sd])).astype(xp.int64) if sd \
            else self._idx
        vals = _coalesce(self._vals, inverse=inverse, nnz=int(uniq.shape[0]))
        return SparseCOOTensor(idx.reshape(sd, -1), vals, self._shape, True)

    def to_dense(self, dtype=None, *, masked_grad=None) -> Tensor:
        out = _to_dense(self._vals, idx=tuple(self._idx), shape=self._shape)
        return out if dtype is None else out.to(dtype)

    def to_sparse(self, *args, **kwargs) -> SparseCOOTensor:
        return self

    # --- moves and casts ----------------------------------------------------------------
    def to(self, *args, **kwargs) -> SparseCOOTensor:
        vals = self._vals.to(*args, **kwargs)
        dev = B.device_of(vals._data)
        idx = self._idx if B.device_of(self._idx) == dev else B.move(self._idx, dev)
        return SparseCOOTensor(idx, vals, self._shape, self._coalesced)

    def cpu(self) -> SparseCOOTensor:
        return self.to("cpu")

    def cuda(self, device=None) -> SparseCOOTensor:
        return self.to("cuda" if device is None else device)

    def double(self) -> SparseCOOTensor:
        return self.to(B.float64)

    def float(self) -> SparseCOOTensor:
        return self.to(B.float32)

    def detach(self) -> SparseCOOTensor:
        return SparseCOOTensor(self._idx, self._vals.detach(), self._shape, self._coalesced)

    def clone(self) -> SparseCOOTensor:
        return SparseCOOTensor(self._idx.copy(), self._vals.clone(), self._shape,
                               self._coalesced)

    # --- arithmetic ---------------------------------------------------------------------
    def t(self) -> SparseCOOTensor:
        if self.dim() != 2 or self.sparse_dim() != 2:
            raise RuntimeError(f"t() expects a 2-D sparse tensor, got shape {list(self._shape)}")
        return SparseCOOTensor(self._idx[::-1].copy(), self._vals, self._shape[::-1], False)

    def transpose(self, dim0: int, dim1: int) -> SparseCOOTensor:
        if sorted((dim0 % self.dim(), dim1 % self.dim())) != [0, 1] or self.dim() != 2:
            raise _unsupported(f"transpose({dim0}, {dim1}) of shape {list(self._shape)}")
        return self.t()

    def mm(self, other):
        return mm(self, other)

    def matmul(self, other):
        return mm(self, other)

    def __matmul__(self, other):
        return mm(self, other)

    def __rmatmul__(self, other):
        return mm(other, self)

    def __add__(self, other):
        if isinstance(other, SparseCOOTensor):
            _same_shape(self, other, "add")
            xp = B.xp_of(self._idx)
            from .shape import cat

            return SparseCOOTensor(xp.concatenate([self._idx, B.move(other._idx, B.device_of(
                self._idx))], axis=1), cat([self._vals, other._vals.to(self._vals.dtype)]),
                self._shape).coalesce()
        raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) "
                           "instead.")

    def __radd__(self, other):
        if isinstance(other, Tensor):  # dense + sparse is dense, as in torch
            return other + self.to_dense()
        return NotImplemented

    def __mul__(self, other):
        if isinstance(other, (int, float)) or (isinstance(other, Tensor) and other.ndim == 0):
            return SparseCOOTensor(self._idx, self._vals * other, self._shape, self._coalesced)
        raise _unsupported("multiplying by a non-scalar")

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, (int, float)) or (isinstance(other, Tensor) and other.ndim == 0):
            return SparseCOOTensor(self._idx, self._vals / other, self._shape, self._coalesced)
        raise _unsupported("dividing by a non-scalar")

    def __neg__(self):
        return SparseCOOTensor(self._idx, -self._vals, self._shape, self._coalesced)

    def sum(self, dim=None, keepdim: bool = False, dtype=None):
        if dim is None:
            return self._vals.sum(dtype=dtype)
        raise _unsupported("sum over some dims (torch.sparse.sum)")

    # --- everything else ------------------------------------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError("a sparse COO tensor was given where a dense one is needed; call "
                        ".to_dense() first")

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise _unsupported(f"Tensor.{name}")

    def __len__(self) -> int:
        return self._shape[0]

    def __bool__(self):
        raise _unsupported("bool()")

    def __repr__(self) -> str:
        dense = self._vals.detach()
        return (f"tensor(indices={_make(self._idx)!r},\n       values={dense!r},\n"
                f"       size={self._shape}, nnz={self._nnz()}, layout=torch.sparse_coo"
                + (", requires_grad=True)" if self.requires_grad else ")"))


SUPPORTED = ("to_dense", "coalesce", "indices", "values", "mm / @ with a dense matrix",
             "dense + sparse", "sparse + sparse", "scalar * and /", "t", "to", "detach",
             "sum()")


def _same_shape(a, b, name):
    if a._shape != b._shape:
        raise RuntimeError(f"{name}(): sparse tensors of different sizes {list(a._shape)} and "
                           f"{list(b._shape)}")


# ----------------------------------------------------------------------------- public
def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None,
                      requires_grad: bool = False, check_invariants=None,
                      is_coalesced: bool | None = None) -> SparseCOOTensor:
    """A sparse COO tensor from ``indices`` (sparse_dim, nnz) and ``values`` (nnz, *dense).

    Parameters
    ----------
    indices : Tensor or array-like of int
        Coordinates, one row per sparse dim.
    values : Tensor or array-like
        One value (or dense block) per coordinate.
    size : sequence of int, optional
        The shape; by default one more than the largest index in each sparse dim.
    dtype, device : optional
        Of the values (and indices).
    requires_grad : bool
        Make the values a leaf that requires grad.
    is_coalesced : bool, optional
        Declare the indices sorted and unique (not checked, as in torch).
    """
    from .creation import as_tensor

    vals = values if isinstance(values, Tensor) else as_tensor(values)
    if dtype is not None or device is not None:
        vals = vals.to(device=device, dtype=dtype)
    idx_t = indices if isinstance(indices, Tensor) else as_tensor(indices)
    idx = idx_t._data
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"sparse_coo_tensor(): indices must be an int64 tensor, got "
                           f"{idx_t.dtype}")
    if idx.ndim != 2:
        raise RuntimeError(f"sparse_coo_tensor(): indices must be sparse_dim x nnz, but got: "
                           f"{list(idx.shape)}")
    dev = B.device_of(vals._data)
    idx = B.move(idx.astype(B.xp_of(idx).int64), dev) if B.device_of(idx) != dev else \
        idx.astype(B.xp_of(idx).int64)
    sd, nnz = idx.shape
    if vals.ndim == 0 or vals.shape[0] != nnz:
        raise RuntimeError(f"sparse_coo_tensor(): indices and values must have the same number "
                           f"of elements, but got {nnz} and "
                           f"{vals.shape[0] if vals.ndim else 0}")
    dense_shape = tuple(vals.shape[1:])
    xp = B.xp_of(idx)
    if size is None:
        size = tuple(int(idx[d].max()) + 1 if nnz else 0 for d in range(sd)) + dense_shape
    size = tuple(int(s) for s in size)
    if len(size) != sd + len(dense_shape) or size[sd:] != dense_shape:
        raise RuntimeError(f"sparse_coo_tensor(): number of dimensions must be sparse_dim "
                           f"({sd}) + dense_dim ({len(dense_shape)}), but got size {list(size)}")
    if nnz:
        hi = xp.max(idx, axis=1)
        lo = xp.min(idx, axis=1)
        for d in range(sd):
            if int(lo[d]) < 0 or int(hi[d]) >= size[d]:
                raise RuntimeError(f"sparse_coo_tensor(): size is inconsistent with indices: "
                                   f"for dim {d}, size is {size[d]} but found index "
                                   f"{int(hi[d]) if int(hi[d]) >= size[d] else int(lo[d])}")
    if requires_grad:
        vals = vals.detach().requires_grad_(True)
    return SparseCOOTensor(idx, vals, size, bool(is_coalesced))


def to_sparse(self: Tensor, sparse_dim: int | None = None, *, layout=None, blocksize=None,
              dense_dim=None) -> SparseCOOTensor:
    """The nonzero entries of a dense tensor as a coalesced sparse COO tensor."""
    if layout not in (None, SPARSE_COO) or blocksize is not None:
        raise NotImplementedError(f"to_sparse(): only the sparse COO layout is supported, not "
                                  f"{layout}")
    nd = self.ndim
    if sparse_dim is not None and sparse_dim != nd:
        raise NotImplementedError(f"to_sparse(sparse_dim={sparse_dim}): hybrid sparse tensors "
                                  "(dense dims) are not supported; use the full rank")
    if not nd:
        raise NotImplementedError("to_sparse(): 0-d tensors are not supported")
    xp = B.xp_of(self._data)
    nz = xp.nonzero(self._data)
    idx = xp.stack(nz).astype(xp.int64)
    from .index import getitem_arrays

    vals = getitem_arrays(self, tuple(nz)) if self.requires_grad else _make(self._data[nz])
    return SparseCOOTensor(idx.reshape(nd, -1), vals, tuple(self.shape), True)


def mm(mat1, mat2):
    """``torch.sparse.mm`` / ``torch.spmm`` / ``torch.mm`` with a sparse operand.

    sparse @ dense and dense @ sparse give dense results; sparse @ sparse a sparse one.
    Gradients reach the dense operand and the sparse operand's values.
    """
    s1, s2 = isinstance(mat1, SparseCOOTensor), isinstance(mat2, SparseCOOTensor)
    if s1 and s2:
        return mm(mat1, mat2.to_dense()).to_sparse()
    if not s1 and not s2:
        from .linalg import mm as dense_mm

        return dense_mm(mat1, mat2)
    sp, dn = (mat1, mat2) if s1 else (mat2, mat1)
    if not isinstance(dn, Tensor):
        raise TypeError(f"mm(): expected Tensor arguments, got {type(mat1).__name__} and "
                        f"{type(mat2).__name__}")
    if sp.dim() != 2 or sp.sparse_dim() != 2 or dn.ndim != 2:
        raise RuntimeError(f"mm(): both arguments must be 2-D matrices, got shapes "
                           f"{list(mat1.shape)} and {list(mat2.shape)}")
    a_shape, b_shape = tuple(mat1.shape), tuple(mat2.shape)
    if a_shape[1] != b_shape[0]:
        raise RuntimeError(f"mm(): mat1 and mat2 shapes cannot be multiplied "
                           f"({a_shape[0]}x{a_shape[1]} and {b_shape[0]}x{b_shape[1]})")
    if sp.dtype != dn.dtype:
        raise RuntimeError(f"mm(): expected mat1 and mat2 to have the same dtype, but got: "
                           f"{mat1.dtype} != {mat2.dtype}")
    if B.device_of(sp._idx) != B.device_of(dn._data):
        raise RuntimeError(f"mm(): Expected all tensors to be on the same device, but found "
                           f"{sp.device} and {dn.device}")
    if s1:
        return _sparse_mm(sp._vals, dn, rows=sp._idx[0], cols=sp._idx[1], n=sp._shape[0])
    # dense @ sparse = (sparse^T @ dense^T)^T
    return _sparse_mm(sp._vals, dn.t(), rows=sp._idx[1], cols=sp._idx[0],
                      n=sp._shape[1]).t()


def is_sparse(obj) -> bool:
    return isinstance(obj, SparseCOOTensor)


method("to_sparse", to_sparse)
method("to_sparse_coo", to_sparse)
Tensor.is_sparse = False  # the dense tensor's answer (a class attribute: no per-tensor cost)

def spmm(input, mat2):
    """``torch.spmm``: :func:`mm` under torch's argument names for it."""
    return mm(input, mat2)


PUBLIC: dict = {"sparse_coo_tensor": sparse_coo_tensor, "spmm": spmm, "sparse_coo": SPARSE_COO}
