"""Shape ops: views (reshape, transpose, expand ...) and joins (cat, stack ...)."""
from __future__ import annotations

from .._dispatch import op
from .._tensor import Tensor, _make
from ._util import method, shape_arg


@op(name="expand", view=True)
def _expand(xp, a, shape):
    return xp.broadcast_to(a, shape)


@_expand.def_derivative
def _(ns, g, a, shape):
    return ns.sum_to(g, a.shape)


def expand(self: Tensor, *size) -> Tensor:
    """Broadcast to ``size`` without copying (-1 keeps a dim) (``torch.Tensor.expand``)."""
    size = shape_arg(size)
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
    return _expand(self, shape=shape)


@op(name="reshape", backward_name="ViewBackward0", view=True)
def _view(xp, a, shape):
    v = a.view()
    v.shape = shape  # raises when the strides cannot express it without a copy
    return v


@_view.def_derivative
def _(ns, g, a, shape):
    return ns.reshape(g, a.shape)


@op(name="reshape_copy", backward_name="ReshapeAliasBackward0")
def _reshape_copy(xp, a, shape):
    return a.reshape(shape)


@_reshape_copy.def_derivative
def _(ns, g, a, shape):
    return ns.reshape(g, a.shape)


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


def view(self: Tensor, *shape) -> Tensor:
    """A view with a new shape; errors when the memory layout needs a copy (use reshape)."""
    if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list)) and \
            not hasattr(shape[0], "__index__"):
        return self.to(shape[0])  # view(dtype)
    shape = infer_shape(shape_arg(shape), self._data.size, "view")
    if shape == self._data.shape:
        return _view(self, shape=shape)
    try:
        v = self._data.view()
        v.shape = shape
    except AttributeError:
        raise RuntimeError(
            f"view size is not compatible with input tensor's size and stride (at least one "
            f"dimension spans across two contiguous subspaces): input {list(self._data.shape)}"
            f" -> {list(shape)}. Use .reshape(...) instead.") from None
    return _view(self, shape=shape)


def reshape(self: Tensor, *shape) -> Tensor:
    """A tensor with a new shape: a view when possible, else a copy."""
    shape = infer_shape(shape_arg(shape), self._data.size, "reshape")
    if shape == self._data.shape:
        return self
    try:
        v = self._data.view()
        v.shape = shape
    except AttributeError:
        return _reshape_copy(self, shape=shape)
    return _view(self, shape=shape)


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


method("expand", expand)
method("view", view)
method("reshape", reshape)
method("contiguous", contiguous)
method("expand_as", lambda self, other: expand(self, *other.shape))
method("view_as", lambda self, other: view(self, *other.shape))
method("reshape_as", lambda self, other: reshape(self, *other.shape))

PUBLIC = {"reshape": reshape}
_ = _make
