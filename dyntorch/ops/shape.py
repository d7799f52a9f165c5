"""Shape ops: views (reshape, transpose, expand ...) and joins (cat, stack ...).

Derivatives of pure shape changes take the input's shape as an attribute rather than the input
itself, so an in-place change of the input after the view does not trip the version check.
"""
from __future__ import annotations

import builtins
import warnings

import numpy as np

from .._dispatch import op
from .._tensor import Tensor, _make
from . import index as _ix
from ._args import var_or_kw
from ._util import method, norm_dim, shape_arg


class _NoInputUsed:
    """``OpDef.uses`` for ops with a variable number of inputs whose derivative needs none."""

    __slots__ = ()

    def __getitem__(self, i):
        return False

    def __iter__(self):
        return iter(())


NO_INPUT_USED = _NoInputUsed()


def _dim(d, ndim, name):
    return norm_dim(d, ndim, name)


# ----------------------------------------------------------------------------- expand
@op(name="expand", view=True)
def _expand(xp, a, shape, in_shape=None):
    return xp.broadcast_to(a, shape)


@_expand.def_derivative
def _(ns, g, _a, *, shape, in_shape=None):
    return ns.sum_to(g, in_shape)


def expand(self: Tensor, *sizes, size=None, implicit: bool = False) -> Tensor:
    """Broadcast to ``size`` without copying (-1 keeps a dim) (``torch.Tensor.expand``)."""
    size = shape_arg(sizes if size is None else var_or_kw("expand", sizes, "size", size))
    nd = self._data.ndim
    if len(size) < nd:
        raise RuntimeError(
            f"expand(): the number of sizes provided ({len(size)}) must be greater or equal to "
            f"the number of dimensions in the tensor ({nd})")
    lead = len(size) - nd
    shape = tuple(self._data.shape[i - lead] if s == -1 and i >= lead else s
                  for i, s in enumerate(size))
    for i in range(nd):
        have, want = self._data.shape[i], shape[i + lead]
        if have != want and have != 1:
            raise RuntimeError(
                f"expand(): The expanded size of the tensor ({want}) must match the existing "
                f"size ({have}) at non-singleton dimension {i + lead}. Target sizes: "
                f"{list(size)}. Tensor sizes: {list(self._data.shape)}")
    if shape == self._data.shape:
        return self
    return _expand(self, shape=shape, in_shape=self._data.shape)


def broadcast_to(input: Tensor, size) -> Tensor:
    """``input`` expanded to ``size`` (``torch.broadcast_to``)."""
    return expand(input, *shape_arg((size,) if isinstance(size, int) else size))


def broadcast_shapes(*shapes) -> tuple:
    """The shape all ``shapes`` broadcast to (``torch.broadcast_shapes``)."""
    try:
        return tuple(np.broadcast_shapes(*[(s,) if isinstance(s, int) else tuple(s)
                                           for s in shapes]))
    except ValueError:
        raise RuntimeError(f"broadcast_shapes(): shapes {[list(s) for s in shapes]} cannot be "
                           "broadcast together") from None


def broadcast_tensors(*tensors) -> tuple:
    """Expand every tensor to their common broadcast shape (``torch.broadcast_tensors``)."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = broadcast_shapes(*[t._data.shape for t in tensors])
    return tuple(expand(t, *shape) for t in tensors)


# ----------------------------------------------------------------------------- reshapes
@op(name="reshape", backward_name="ViewBackward0", view=True)
def _view(xp, a, shape, in_shape=None):
    v = a.view()
    v.shape = shape  # raises when the strides cannot express it without a copy
    return v


@_view.def_derivative
def _(ns, g, _a, *, shape, in_shape=None):
    return ns.reshape(g, in_shape)


@op(name="reshape_copy", backward_name="ReshapeAliasBackward0")
def _reshape_copy(xp, a, shape, in_shape=None):
    return a.reshape(shape)


@_reshape_copy.def_derivative
def _(ns, g, _a, *, shape, in_shape=None):
    return ns.reshape(g, in_shape)


def _view_op(name, backward_name):
    """A reshape that is always a view (squeeze, unsqueeze, ...), under its torch name."""
    f = op(name=name, backward_name=backward_name, view=True)(
        lambda xp, a, shape, in_shape=None: xp.reshape(a, shape))

    @f.def_derivative
    def _(ns, g, _a, *, shape, in_shape=None):
        return ns.reshape(g, in_shape)

    return f


_squeeze = _view_op("squeeze", "SqueezeBackward1")
_unsqueeze = _view_op("unsqueeze", "UnsqueezeBackward0")


def infer_shape(size, numel: int, op: str) -> tuple:
    size = list(size)
    neg = [i for i, s in enumerate(size) if s == -1]
    if len(neg) > 1:
        raise RuntimeError(f"{op}(): only one dimension can be inferred")
    known = 1
    for s in size:
        if s != -1:
            if s < 0:
                raise RuntimeError(f"{op}(): invalid shape dimension {s}")
            known *= s
    if neg:
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}(): shape '{size}' is invalid for input of size {numel}")
        size[neg[0]] = numel // known
    elif known != numel:
        raise RuntimeError(f"{op}(): shape '{size}' is invalid for input of size {numel}")
    return tuple(size)


def _can_view(arr, shape) -> bool:
    try:
        v = arr.view()
        v.shape = shape
    except AttributeError:
        return False
    return True


def view(self: Tensor, *shape, size=None, dtype=None) -> Tensor:
    """A view with a new shape; errors when the memory layout needs a copy (use reshape)."""
    if dtype is not None:
        if shape or size is not None:
            raise TypeError("view() takes either a shape or dtype=, not both")
        return view(self, dtype)
    if size is not None:  # the keyword form only: the common call pays no extra frame
        shape = var_or_kw("view", shape, "size", size)
    if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list)) and \
            not hasattr(shape[0], "__index__"):
        return self.to(shape[0])  # view(dtype)
    shape = infer_shape(shape_arg(shape), self._data.size, "view")
    if shape != self._data.shape and not _can_view(self._data, shape):
        raise RuntimeError(
            f"view size is not compatible with input tensor's size and stride (at least one "
            f"dimension spans across two contiguous subspaces): input {list(self._data.shape)}"
            f" -> {list(shape)}. Use .reshape(...) instead.")
    return _view(self, shape=shape, in_shape=self._data.shape)


def reshape(input: Tensor, *shapes, shape=None) -> Tensor:
    """A tensor with a new shape: a view when the strides allow it, else a copy.

    Parameters
    ----------
    *shapes, shape : int or sequence of int
        The new shape, by position or as ``shape=``; one entry may be -1 (inferred).

    Returns
    -------
    Tensor
    """
    self = input
    if shape is not None:  # the keyword form only: the common call pays no extra frame
        shapes = var_or_kw("reshape", shapes, "shape", shape)
    shape = infer_shape(shape_arg(shapes), self._data.size, "reshape")
    if shape == self._data.shape:
        return self
    if _can_view(self._data, shape):
        return _view(self, shape=shape, in_shape=self._data.shape)
    return _reshape_copy(self, shape=shape, in_shape=self._data.shape)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one (``torch.flatten``)."""
    shp = input._data.shape
    if not shp:
        return reshape(input, 1)
    s = _dim(start_dim, len(shp), "flatten")
    e = _dim(end_dim, len(shp), "flatten")
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    n = 1
    for d in shp[s:e + 1]:
        n *= d
    return reshape(input, shp[:s] + (n,) + shp[e + 1:])


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one may be -1) (``torch.unflatten``)."""
    shp = input._data.shape
    d = _dim(dim, len(shp), "unflatten")
    sizes = infer_shape(shape_arg(sizes), shp[d], "unflatten")
    return reshape(input, shp[:d] + sizes + shp[d + 1:])


def ravel(input: Tensor) -> Tensor:
    return reshape(input, -1)


def squeeze(input: Tensor, dim=None) -> Tensor:
    """Remove size-1 dims (all, or those in ``dim``) (``torch.squeeze``)."""
    shp = input._data.shape
    if dim is None:
        drop = {i for i, s in enumerate(shp) if s == 1}
    else:
        dims = norm_dim(dim, len(shp), "squeeze")
        dims = dims if isinstance(dims, tuple) else (dims,)
        drop = {d for d in dims if shp and shp[d] == 1}
    if not drop:
        return _squeeze(input, shape=shp, in_shape=shp)
    new = tuple(s for i, s in enumerate(shp) if i not in drop)
    return _squeeze(input, shape=new, in_shape=shp)


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a size-1 dim at ``dim`` (``torch.unsqueeze``)."""
    shp = input._data.shape
    n = len(shp) + 1
    if not -n <= dim < n:
        raise IndexError(f"unsqueeze(): Dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    d = dim % n
    return _unsqueeze(input, shape=shp[:d] + (1,) + shp[d:], in_shape=shp)


def atleast_1d(*tensors):
    r = tuple(t if t.ndim >= 1 else reshape(t, 1) for t in _flat_args(tensors))
    return r[0] if len(r) == 1 else r


def atleast_2d(*tensors):
    r = tuple(t if t.ndim >= 2 else reshape(t, (1,) * (2 - t.ndim) + t._data.shape)
              for t in _flat_args(tensors))
    return r[0] if len(r) == 1 else r


def atleast_3d(*tensors):
    out = []
    for t in _flat_args(tensors):
        s = t._data.shape
        if t.ndim == 0:
            t = reshape(t, 1, 1, 1)
        elif t.ndim == 1:
            t = reshape(t, 1, s[0], 1)
        elif t.ndim == 2:
            t = reshape(t, s[0], s[1], 1)
        out.append(t)
    return out[0] if len(out) == 1 else tuple(out)


def _flat_args(tensors):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return tuple(tensors[0])
    return tensors


@op(name="contiguous", backward_name="CloneBackward0")
def _contiguous(xp, a):
    return xp.ascontiguousarray(a)


@_contiguous.def_derivative
def _(ns, g, _a):
    return g


def contiguous(self: Tensor, memory_format=None) -> Tensor:
    """The tensor itself when C-contiguous, else a contiguous copy."""
    if self._data.flags.c_contiguous:
        return self
    return _contiguous(self)


# ----------------------------------------------------------------------------- permutations
@op(name="permute", view=True)
def _permute(xp, a, dims):
    return xp.transpose(a, dims)


@_permute.def_derivative
def _(ns, g, _a, *, dims):
    inv = [0] * len(dims)
    for i, d in enumerate(dims):
        inv[d] = i
    return ns.transpose(g, tuple(inv))


@op(name="transpose", view=True)
def _transpose(xp, a, dim0, dim1):
    return xp.swapaxes(a, dim0, dim1)


@_transpose.def_derivative
def _(ns, g, _a, *, dim0, dim1):
    return ns.swapaxes(g, dim0, dim1)


def permute(input: Tensor, *dim_args, dims=None) -> Tensor:
    """Reorder dims (a view) (``torch.permute``).

    Parameters
    ----------
    input : Tensor
    *dim_args, dims : int or sequence of int
        A permutation of the dims (negative ones count from the end), by position or as
        ``dims=``.

    Returns
    -------
    Tensor
    """
    nd = input._data.ndim
    dims = dim_args if dims is None else var_or_kw("permute", dim_args, "dims", dims)
    dims = shape_arg(dims) if dims else ()
    if len(dims) != nd:
        raise RuntimeError(f"permute(sparse_coo): number of dimensions in the tensor input does "
                           f"not match the length of the desired ordering of dimensions i.e. "
                           f"input.dim() = {nd} is not equal to len(dims) = {len(dims)}")
    dims = norm_dim(tuple(dims), nd, "permute") if nd else ()
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"permute(): duplicate dims are not allowed, got {list(dims)}")
    return _permute(input, dims=tuple(dims))


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """Swap two dims (a view) (``torch.transpose``)."""
    nd = input._data.ndim
    if nd == 0:
        return input
    d0, d1 = _dim(dim0, nd, "transpose"), _dim(dim1, nd, "transpose")
    return _transpose(input, dim0=d0, dim1=d1)


def t(input: Tensor) -> Tensor:
    """Transpose a matrix; 0-D and 1-D tensors come back as they are (``torch.t``)."""
    nd = input._data.ndim
    if nd > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {nd}D. Use "
                           ".transpose(dim0, dim1) or .mT instead.")
    return input if nd < 2 else _transpose(input, dim0=0, dim1=1)


def movedim(input: Tensor, source, destination) -> Tensor:
    """Move dims ``source`` to positions ``destination`` (``torch.movedim``)."""
    nd = input._data.ndim
    src = norm_dim(source if isinstance(source, (tuple, list)) else (source,), nd, "movedim")
    dst = norm_dim(destination if isinstance(destination, (tuple, list)) else (destination,),
                   nd, "movedim")
    if len(src) != len(dst):
        raise RuntimeError(f"movedim(): Invalid source or destination dims: source "
                           f"({list(src)} dims) should contain the same number of dims as "
                           f"destination ({list(dst)} dims)")
    order = [d for d in range(nd) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    if order == list(range(nd)):
        return input
    return _permute(input, dims=tuple(order))


def _reversed_dims(self: Tensor) -> Tensor:
    nd = self._data.ndim
    return self if nd < 2 else _permute(self, dims=tuple(reversed(range(nd))))


def _T(self: Tensor) -> Tensor:
    nd = self._data.ndim
    if nd > 2:
        # torch deprecates this: code written for matrices that meets a batch silently
        # reverses the batch dim too. Python's default filter shows it once per call site.
        warnings.warn(f"The use of `x.T` on tensors of dimension other than 2 to reverse their "
                      f"shape is deprecated and will be an error in a future release (got a "
                      f"{nd}-D tensor of shape {list(self._data.shape)}). Use `x.mT` to "
                      f"transpose batches of matrices, or `x.permute(*range(x.ndim - 1, -1, "
                      f"-1))` to reverse all dims.", UserWarning, stacklevel=2)
    return _reversed_dims(self)


def _H(self: Tensor) -> Tensor:
    # Real tensors only, so the conjugate transpose is the transpose; torch allows it on
    # matrices (and, deprecated, on 0-D tensors) and refuses everything else.
    nd = self._data.ndim
    if nd == 2:
        return _reversed_dims(self)
    if nd == 0:
        warnings.warn("Tensor.H is deprecated on 0-D tensors. Consider using x.conj().",
                      UserWarning, stacklevel=2)
        return self
    raise RuntimeError(
        f"tensor.H is only supported on matrices (2-D tensors). Got {nd}-D tensor of shape "
        f"{list(self._data.shape)}." + (" For batches of matrices, consider using tensor.mH"
                                        if nd > 2 else ""))


def _mT(self: Tensor) -> Tensor:
    if self._data.ndim < 2:
        raise RuntimeError("tensor.mT is only supported on matrices or batches of matrices. "
                           f"Got {self._data.ndim}-D tensor.")
    return _transpose(self, dim0=self._data.ndim - 2, dim1=self._data.ndim - 1)


# ----------------------------------------------------------------------------- copies
@op(name="repeat")
def _repeat(xp, a, reps, in_shape=None):
    return xp.tile(a, reps)


@_repeat.def_derivative
def _(ns, g, _a, *, reps, in_shape=None):
    shp = (1,) * (len(reps) - len(in_shape)) + tuple(in_shape)
    split = []
    for r, s in zip(reps, shp):
        split += [r, s]
    g = ns.reshape(g, tuple(split))
    g = ns.sum(g, tuple(range(0, 2 * len(reps), 2)))
    return ns.reshape(g, in_shape)


def repeat(input: Tensor, *sizes, repeats=None) -> Tensor:
    """Tile the tensor ``sizes[i]`` times along each dim (``torch.Tensor.repeat``)."""
    reps = shape_arg(var_or_kw("repeat", sizes, "repeats", repeats))
    if len(reps) < input._data.ndim:
        raise RuntimeError("repeat(): Number of dimensions of repeat dims can not be smaller "
                           f"than number of dimensions of tensor ({len(reps)} < "
                           f"{input._data.ndim})")
    return _repeat(input, reps=reps, in_shape=input._data.shape)


def tile(input: Tensor, *dim_args, dims=None) -> Tensor:
    """Like ``repeat``, padding ``dims`` with leading ones (``torch.tile``)."""
    dims = var_or_kw("tile", dim_args, "dims", dims)
    dims = dims[0] if len(dims) == 1 else dims
    reps = shape_arg((dims,) if isinstance(dims, int) else dims)
    reps = (1,) * (input._data.ndim - len(reps)) + reps
    return repeat(input, *reps)


@op(name="flip")
def _flip(xp, a, dims):
    return xp.ascontiguousarray(xp.flip(a, dims))  # torch.flip copies


@_flip.def_derivative
def _(ns, g, _a, *, dims):
    return ns.flip(g, dims)


def flip(input: Tensor, *dim_args, dims=None) -> Tensor:
    """Reverse the order along ``dims`` (a copy) (``torch.flip``)."""
    dims = var_or_kw("flip", dim_args, "dims", dims)
    dims = shape_arg(dims) if dims else ()
    if not input._data.ndim:
        return _flip(input, dims=None)
    return _flip(input, dims=norm_dim(tuple(dims), input._data.ndim, "flip"))


def fliplr(input: Tensor) -> Tensor:
    return flip(input, 1)


def flipud(input: Tensor) -> Tensor:
    return flip(input, 0)


@op(name="roll")
def _roll(xp, a, shifts, dims):
    return xp.roll(a, shifts, dims)


@_roll.def_derivative
def _(ns, g, _a, *, shifts, dims):
    neg = tuple(-s for s in shifts) if isinstance(shifts, tuple) else -shifts
    return ns.roll(g, neg, dims)


def roll(input: Tensor, shifts, dims=()) -> Tensor:
    """Shift elements cyclically along ``dims`` (flattened when None) (``torch.roll``)."""
    if dims is None or (isinstance(dims, (list, tuple)) and not dims):
        dims = None  # torch's default () and None both mean "the flattened tensor"
    if isinstance(shifts, (list, tuple)):
        shifts = tuple(int(s) for s in shifts)
    if dims is not None:
        dims = norm_dim(dims if isinstance(dims, (list, tuple)) else dims, input._data.ndim,
                        "roll")
        if isinstance(dims, tuple) != isinstance(shifts, tuple) or (
                isinstance(dims, tuple) and len(dims) != len(shifts)):
            raise RuntimeError(f"roll(): shifts and dimensions must align. shifts: {shifts}, "
                               f"dims: {dims}")
    return _roll(input, shifts=shifts, dims=dims)


@op(name="tril")
def _tril(xp, a, k):
    return xp.tril(a, k)


@_tril.def_derivative
def _(ns, g, _a, *, k):
    return ns.tril(g, k)


@op(name="triu")
def _triu(xp, a, k):
    return xp.triu(a, k)


@_triu.def_derivative
def _(ns, g, _a, *, k):
    return ns.triu(g, k)


def _check_2d(input, name):
    if input._data.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions, got "
                           f"{input._data.ndim}")


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """Lower triangle (the rest zeroed) of the last two dims (``torch.tril``)."""
    _check_2d(input, "tril")
    return _tril(input, k=int(diagonal))


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """Upper triangle (the rest zeroed) of the last two dims (``torch.triu``)."""
    _check_2d(input, "triu")
    return _triu(input, k=int(diagonal))


# ----------------------------------------------------------------------------- diagonals
def _diag_view(xp, a, offset, d1, d2):
    if xp is not np:
        return xp.diagonal(a, offset, d1, d2)
    # np.diagonal is read-only; torch's diagonal is a writable view, so stride it ourselves.
    idx = [slice(None)] * a.ndim
    idx[d1] = slice(builtins.max(-offset, 0), None)
    idx[d2] = slice(builtins.max(offset, 0), None)
    s = a[tuple(idx)]
    n = builtins.max(0, builtins.min(s.shape[d1], s.shape[d2]))
    keep = [i for i in range(a.ndim) if i not in (d1, d2)]
    shape = tuple(s.shape[i] for i in keep) + (n,)
    strides = tuple(s.strides[i] for i in keep) + (s.strides[d1] + s.strides[d2],)
    return np.lib.stride_tricks.as_strided(s, shape, strides, writeable=s.flags.writeable)


def diag_index(in_shape, offset, d1, d2, n, xp=np):
    """Index tuple (for ``x[idx]``) of the diagonal and where its dim lands in ``x[idx]``."""
    xp_idx = [slice(None)] * len(in_shape)
    xp_idx[d1] = xp.arange(n) + builtins.max(-offset, 0)
    xp_idx[d2] = xp.arange(n) + builtins.max(offset, 0)
    lo, hi = sorted((d1, d2))
    pos = lo if hi == lo + 1 else 0
    return tuple(xp_idx), pos


@op(name="diagonal", view=True)
def _diagonal(xp, a, offset, d1, d2, in_shape=None):
    return _diag_view(xp, a, offset, d1, d2)


@_diagonal.def_derivative
def _(ns, g, _a, *, offset, d1, d2, in_shape=None):
    shp = in_shape
    n = g.shape[-1]
    idx, pos = diag_index(shp, offset, d1, d2, n, _ix.xp_like(g))
    if pos != g.ndim - 1:
        g = ns.moveaxis(g, -1, pos)
    return ns.index_add(shp, idx, g, basic=True)


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal w.r.t. ``dim1``/``dim2``, as a last dim (a view) (``torch.diagonal``)."""
    nd = input._data.ndim
    d1, d2 = _dim(dim1, nd, "diagonal"), _dim(dim2, nd, "diagonal")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return _diagonal(input, offset=int(offset), d1=d1, d2=d2, in_shape=input._data.shape)


@op(name="diag_embed1", backward_name="DiagEmbedBackward0")
def _diag_from_vector(xp, a, k):
    return xp.diag(a, k)


@_diag_from_vector.def_derivative
def _(ns, g, _a, *, k):
    return ns.diagonal(g, k)


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """1-D: a matrix with ``input`` on a diagonal; 2-D: that diagonal (``torch.diag``)."""
    nd = input._data.ndim
    if nd == 1:
        return _diag_from_vector(input, k=int(diagonal))
    if nd == 2:
        return contiguous(_diagonal(input, offset=int(diagonal), d1=0, d2=1,
                                     in_shape=input._data.shape))
    raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {nd}D")


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Place the last dim of ``input`` on a diagonal of new dims (``torch.diag_embed``)."""
    n = input._data.shape[-1] + builtins.abs(offset)
    nd = input._data.ndim + 1
    d1, d2 = _dim(dim1, nd, "diag_embed"), _dim(dim2, nd, "diag_embed")
    rest = list(input._data.shape[:-1])
    shape = [0] * nd
    it = iter(rest)
    for i in range(nd):
        shape[i] = n if i in (d1, d2) else next(it)
    idx, pos = diag_index(tuple(shape), offset, d1, d2, input._data.shape[-1],
                          _ix.xp_like(input))
    src = input if pos == input._data.ndim - 1 else movedim(input, -1, pos)
    return _ix.index_add_arrays(tuple(shape), idx, src, True)


# ----------------------------------------------------------------------------- slicing views
def narrow(input: Tensor, dim: int, start, length: int) -> Tensor:
    """``length`` elements of dim ``dim`` from ``start`` (a view) (``torch.narrow``)."""
    nd = input._data.ndim
    d = _dim(dim, nd, "narrow")
    size = input._data.shape[d]
    start = int(start)
    if start < 0:
        start += size
    if not 0 <= start <= size or length < 0 or start + length > size:
        raise IndexError(f"narrow(): start ({start}) + length ({length}) exceeds dimension size "
                         f"({size}) of dimension {d}.")
    return _ix.slice_dim(input, d, start, start + length)


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice at ``index`` of dim ``dim``, that dim removed (a view) (``torch.select``)."""
    nd = input._data.ndim
    d = _dim(dim, nd, "select")
    size = input._data.shape[d]
    i = int(index)
    if not -size <= i < size:
        raise IndexError(f"select(): index {i} out of range for tensor of size "
                         f"{list(input._data.shape)} at dimension {d}")
    return _ix.select_dim(input, d, i % size)


def split(tensor: Tensor, split_size_or_sections=None, dim: int = 0, *,
          split_size=None) -> tuple:
    """Split into pieces of a size, or of the listed sizes, along ``dim`` (``torch.split``).

    ``split_size=`` is ``Tensor.split``'s name for the same argument."""
    if split_size is not None:
        if split_size_or_sections is not None:
            raise TypeError("split() got multiple values for argument 'split_size'")
        split_size_or_sections = split_size
    elif split_size_or_sections is None:
        raise TypeError("split() missing required argument 'split_size_or_sections'")
    nd = tensor._data.ndim
    d = _dim(dim, nd, "split")
    n = tensor._data.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n:
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} "
                               f"(input tensor's size at dimension {d}), but got split_sizes="
                               f"{sizes}")
    else:
        s = int(split_size_or_sections)
        if s <= 0 and n:
            raise RuntimeError(f"split(): split_size must be positive, got {s}")
        sizes = [builtins.min(s, n - i) for i in range(0, n, s)] if n else [0]
    out, start = [], 0
    for s in sizes:
        out.append(_ix.slice_dim(tensor, d, start, start + s))
        start += s
    return tuple(out)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Split into ``chunks`` pieces of equal size (the last may be smaller) (``torch.chunk``)."""
    if chunks <= 0:
        raise RuntimeError(f"chunk(): chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = _dim(dim, input._data.ndim, "chunk")
    n = input._data.shape[d]
    size = -(-n // chunks) if n else 1
    return split(input, size, d)


def tensor_split(input: Tensor, indices_or_sections=None, dim: int = 0, *, indices=None,
                 sections=None, tensor_indices_or_sections=None) -> tuple:
    """Split into ``sections`` near-equal pieces, or at ``indices`` (``torch.tensor_split``).

    torch names the second argument after its kind: ``sections=``, ``indices=`` or
    ``tensor_indices_or_sections=``; any one of them may be given."""
    given = [v for v in (indices_or_sections, indices, sections, tensor_indices_or_sections)
             if v is not None]
    if len(given) != 1:
        raise TypeError("tensor_split() takes exactly one of indices_or_sections, indices, "
                        f"sections, tensor_indices_or_sections; got {len(given)}")
    indices_or_sections = given[0]
    if isinstance(indices_or_sections, Tensor):
        indices_or_sections = (indices_or_sections.item() if indices_or_sections.ndim == 0
                               else indices_or_sections.tolist())
    d = _dim(dim, input._data.ndim, "tensor_split")
    n = input._data.shape[d]
    if isinstance(indices_or_sections, int):
        k = indices_or_sections
        bounds = [i * (n // k) + builtins.min(i, n % k) for i in range(k + 1)]
    else:
        bounds = [0] + [builtins.min(builtins.max(int(i), 0), n) for i in indices_or_sections]
        bounds.append(n)
    return tuple(_ix.slice_dim(input, d, a, builtins.max(a, b))
                 for a, b in zip(bounds[:-1], bounds[1:]))


def unbind(input: Tensor, dim: int = 0) -> tuple:
    """The slices along ``dim``, that dim removed (``torch.unbind``)."""
    d = _dim(dim, input._data.ndim, "unbind")
    return tuple(_ix.select_dim(input, d, i) for i in range(input._data.shape[d]))


# ----------------------------------------------------------------------------- joins
@op(name="cat", promote=True)
def _cat(xp, *arrays, axis, sizes):
    return xp.concatenate(arrays, axis=axis)


@_cat.def_derivative
def _(ns, g, *_xs, axis, sizes):
    outs, start = [], 0
    lead = (slice(None),) * axis
    for s in sizes:
        outs.append(ns.getitem(g, lead + (slice(start, start + s),)))
        start += s
    return outs[0] if len(outs) == 1 else tuple(outs)


_cat.uses = NO_INPUT_USED


@op(name="stack", promote=True)
def _stack(xp, *arrays, axis):
    return xp.stack(arrays, axis=axis)


@_stack.def_derivative
def _(ns, g, *_xs, axis):
    n = g.shape[axis]
    lead = (slice(None),) * axis
    outs = tuple(ns.getitem(g, lead + (i,)) for i in range(n))
    return outs[0] if n == 1 else outs


_stack.uses = NO_INPUT_USED


def _tensors(tensors, name):
    if isinstance(tensors, Tensor):
        raise TypeError(f"{name}(): expected a sequence of Tensors, got a Tensor; wrap it in a "
                        "list")
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{name}(): expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): expected Tensor as element {i} in argument 0, but got "
                            f"{type(t).__name__}")
    return tensors


def cat(tensors, dim: int = 0, *, out=None) -> Tensor:
    """Join tensors along an existing dim (``torch.cat``).

    Parameters
    ----------
    tensors : sequence of Tensor
        Same shape except in ``dim``; dtypes promote; legacy empty 1-D tensors are skipped.
    dim : int
        The dim to join along.

    Returns
    -------
    Tensor
    """
    tensors = _tensors(tensors, "cat")
    # torch skips legacy empty 1-D tensors of shape (0,)
    ts = [t for t in tensors if not (t._data.ndim == 1 and t._data.shape[0] == 0)] or tensors[:1]
    ref = ts[0]
    nd = ref._data.ndim
    if nd == 0:
        raise RuntimeError("cat(): zero-dimensional tensor (at position 0) cannot be "
                           "concatenated")
    d = _dim(dim, nd, "cat")
    for i, t in enumerate(ts):
        s = t._data.shape
        if len(s) != nd:
            raise RuntimeError(f"cat(): Tensors must have same number of dimensions: got {nd} "
                               f"and {len(s)}")
        for k in range(nd):
            if k != d and s[k] != ref._data.shape[k]:
                raise RuntimeError(
                    f"cat(): Sizes of tensors must match except in dimension {d}. Expected "
                    f"size {ref._data.shape[k]} but got size {s[k]} for tensor number {i} in "
                    f"the list (shapes {[list(x._data.shape) for x in ts]})")
    r = _cat(*ts, axis=d, sizes=tuple(t._data.shape[d] for t in ts))
    if out is not None:
        out.copy_(r)
        return out
    return r


def stack(tensors, dim: int = 0, *, out=None) -> Tensor:
    """Join equally shaped tensors along a new dim (``torch.stack``).

    Parameters
    ----------
    tensors : sequence of Tensor
    dim : int
        Where the new dim goes (``-1``: last).

    Returns
    -------
    Tensor
    """
    tensors = _tensors(tensors, "stack")
    shp = tensors[0]._data.shape
    for i, t in enumerate(tensors):
        if t._data.shape != shp:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(shp)} at entry 0 and {list(t._data.shape)} at entry {i}")
    n = len(shp) + 1
    if not -n <= dim < n:
        raise IndexError(f"stack(): Dimension out of range (expected to be in range of "
                         f"[{-n}, {n - 1}], but got {dim})")
    r = _stack(*tensors, axis=dim % n)
    if out is not None:
        out.copy_(r)
        return out
    return r


def hstack(tensors) -> Tensor:
    """Stack horizontally: along dim 0 for 1-D tensors, else dim 1 (``torch.hstack``)."""
    ts = [atleast_1d(t) for t in _tensors(tensors, "hstack")]
    return cat(ts, 0 if ts[0]._data.ndim == 1 else 1)


def vstack(tensors) -> Tensor:
    """Stack vertically after making each tensor at least 2-D (``torch.vstack``)."""
    return cat([atleast_2d(t) for t in _tensors(tensors, "vstack")], 0)


def dstack(tensors) -> Tensor:
    return cat([atleast_3d(t) for t in _tensors(tensors, "dstack")], 2)


def column_stack(tensors) -> Tensor:
    ts = [reshape(t, -1, 1) if t._data.ndim <= 1 else t for t in _tensors(tensors, "column_stack")]
    return cat(ts, 1)


def meshgrid(*tensors, indexing: str | None = None) -> tuple:
    """Coordinate grids from 1-D tensors (``torch.meshgrid``; ``indexing`` 'ij' (the default)
    or 'xy')."""
    indexing = "ij" if indexing is None else indexing
    ts = list(_flat_args(tensors))
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid(): indexing must be 'ij' or 'xy', got '{indexing}'")
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    n = len(ts)
    shape = tuple(t.numel() for t in ts)
    out = []
    for i, t in enumerate(ts):
        s = [1] * n
        s[i] = shape[i]
        out.append(expand(reshape(t, *s), *shape))
    if swap:  # 'xy': the first two grids come out with their dims exchanged
        out[0], out[1] = out[1], out[0]
    return tuple(out)


# ----------------------------------------------------------------------------- more layouts
def rot90(input: Tensor, k: int = 1, dims=(0, 1)) -> Tensor:
    """Rotate by 90 degrees ``k`` times in the plane ``dims`` (``torch.rot90``)."""
    if len(dims) != 2:
        raise RuntimeError(f"rot90(): expected total rotation dims == 2, but got dims = "
                           f"{len(dims)}")
    nd = input._data.ndim
    d0, d1 = _dim(dims[0], nd, "rot90"), _dim(dims[1], nd, "rot90")
    if d0 == d1:
        raise RuntimeError(f"rot90(): expected rotation dims to be different, but got dim0 = "
                           f"{d0} and dim1 = {d1}")
    k %= 4
    if k == 1:
        return transpose(flip(input, d1), d0, d1)
    if k == 2:
        return flip(input, d0, d1)
    if k == 3:
        return flip(transpose(input, d0, d1), d1)
    return input.clone()


def block_diag(*tensors) -> Tensor:
    """A block-diagonal matrix from 0-, 1- or 2-D blocks (``torch.block_diag``)."""
    from .creation import zeros

    ts = [atleast_2d(t) if t._data.ndim < 2 else t for t in _flat_args(tensors)]
    if not ts:
        return zeros(1, 0)
    for i, t in enumerate(ts):
        if t._data.ndim != 2:
            raise RuntimeError(f"block_diag(): Input tensors must have 2 or fewer dimensions. "
                               f"Input {i} has {t._data.ndim} dimensions")
    total = builtins.sum(t._data.shape[1] for t in ts)
    rows, left = [], 0
    for t in ts:
        r, c = t._data.shape
        parts = []
        if left:
            parts.append(zeros(r, left, dtype=t.dtype, device=t.device))
        parts.append(t)
        if total - left - c:
            parts.append(zeros(r, total - left - c, dtype=t.dtype, device=t.device))
        rows.append(cat(parts, 1) if len(parts) > 1 else t)
        left += c
    return cat(rows, 0)


def cartesian_prod(*tensors) -> Tensor:
    """All combinations of the elements of 1-D tensors, one per row (``torch.cartesian_prod``)."""
    ts = _flat_args(tensors)
    if len(ts) == 1:
        return ts[0]
    grids = meshgrid(*ts, indexing="ij")
    return stack([reshape(g, -1) for g in grids], 1)


def unfold(self: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """Sliding windows of ``size`` with ``step`` along ``dimension``, as a new last dim."""
    nd = self._data.ndim
    d = _dim(dimension, nd, "unfold") if nd else 0
    n = self._data.shape[d] if nd else 1
    if size > n or size < 0:
        raise RuntimeError(f"unfold(): maximum size for tensor at dimension {d} is {n} but size "
                           f"is {size}")
    if step <= 0:
        raise RuntimeError(f"unfold(): step is {step} but must be > 0")
    if not nd:
        return reshape(self, 1)
    xp = _ix.xp_like(self)
    count = (n - size) // step + 1
    win = xp.arange(count)[:, None] * step + xp.arange(size)[None, :]
    out = _ix.getitem(self, (slice(None),) * d + (_make(win),))
    return movedim(out, d + 1, -1)


def _flat_in_place(name, fn):
    def m(self, *args, **kwargs):
        from .. import _dispatch as D

        if self._requires_grad and D.grad_enabled:
            raise RuntimeError(f"{name}(): changing the shape of a tensor that requires grad in "
                               f"place is not supported in dyntorch; use the out-of-place "
                               f"`{name[:-1]}` and assign the result")
        self._data = fn(self, *args, **kwargs)._data
        return self

    return m


# ----------------------------------------------------------------------------- methods
def _squeeze_m(self, *dims, dim=None):
    dims = var_or_kw("squeeze", dims, "dim", dim)
    return squeeze(self, None if not dims else dims[0] if len(dims) == 1 else dims)


def swapaxes(input: Tensor, axis0: int, axis1: int) -> Tensor:
    """Swap two dims (a view); ``torch.transpose`` under NumPy's names (``torch.swapaxes``)."""
    return transpose(input, axis0, axis1)


method("expand", expand)
method("view", view)
method("reshape", reshape)
method("contiguous", contiguous)
method("expand_as", lambda self, other: expand(self, *other.shape))
method("broadcast_to", lambda self, *sizes, size=None: broadcast_to(
    self, var_or_kw("broadcast_to", sizes, "size", size)))
method("view_as", lambda self, other: view(self, *other.shape))
method("reshape_as", lambda self, other: reshape(self, *other.shape))
method("flatten", lambda self, start_dim=0, end_dim=-1: flatten(self, start_dim, end_dim))
method("unflatten", lambda self, dim, sizes: unflatten(self, dim, sizes))
method("ravel", ravel)
method("squeeze", _squeeze_m)
method("unsqueeze", unsqueeze)
method("permute", permute)
method("transpose", transpose)
method("swapaxes", swapaxes)
method("swapdims", transpose)
method("t", t)
method("movedim", movedim)
method("moveaxis", movedim)
Tensor.T = property(_T)
Tensor.mT = property(_mT)
Tensor.H = property(_H)
Tensor.mH = property(_mT)
method("repeat", repeat)
method("tile", tile)
method("flip", flip)
method("fliplr", fliplr)
method("flipud", flipud)
method("roll", lambda self, shifts, dims=(): roll(self, shifts, dims))
method("tril", tril)
method("triu", triu)
method("diagonal", lambda self, offset=0, dim1=0, dim2=1: diagonal(self, offset, dim1, dim2))
method("diag", diag)
method("diag_embed", lambda self, offset=0, dim1=-2, dim2=-1: diag_embed(self, offset, dim1,
                                                                          dim2))
method("narrow", narrow)
method("select", select)
method("split", split)
method("chunk", chunk)
method("tensor_split", tensor_split)
method("unbind", unbind)
method("unfold", unfold)
method("rot90", lambda self, k=1, dims=(0, 1): rot90(self, k, dims))
for _n, _f in (("squeeze_", _squeeze_m), ("unsqueeze_", unsqueeze), ("t_", t),
               ("transpose_", transpose), ("swapaxes_", swapaxes), ("swapdims_", transpose)):
    method(_n, _flat_in_place(_n, _f))

PUBLIC = {
    "reshape": reshape, "flatten": flatten, "unflatten": unflatten, "ravel": ravel,
    "squeeze": squeeze, "unsqueeze": unsqueeze, "permute": permute, "transpose": transpose,
    "swapaxes": swapaxes, "swapdims": transpose, "t": t, "movedim": movedim,
    "moveaxis": movedim, "tile": tile, "flip": flip, "fliplr": fliplr, "flipud": flipud,
    "roll": roll, "tril": tril, "triu": triu, "diagonal": diagonal, "diag": diag,
    "diag_embed": diag_embed, "narrow": narrow, "select": select, "split": split,
    "chunk": chunk, "tensor_split": tensor_split, "unbind": unbind, "cat": cat,
    "concat": cat, "concatenate": cat, "stack": stack, "hstack": hstack, "vstack": vstack,
    "dstack": dstack, "column_stack": column_stack, "meshgrid": meshgrid,
    "broadcast_to": broadcast_to, "broadcast_tensors": broadcast_tensors,
    "broadcast_shapes": broadcast_shapes, "atleast_1d": atleast_1d, "atleast_2d": atleast_2d,
    "atleast_3d": atleast_3d, "rot90": rot90, "block_diag": block_diag,
    "cartesian_prod": cartesian_prod,
}
