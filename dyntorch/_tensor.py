"""The Tensor: an array of the device's module plus its place in the autograd graph.

Ops attach their methods to :class:`Tensor` from their own family files (``ops/*.py``); this
file holds only what a tensor is, not what can be computed with it.
"""
from __future__ import annotations

import warnings

import numpy as np

from . import _backend as B

_new = object.__new__


class Tensor:
    """A multi-dimensional array with autograd, mirroring ``torch.Tensor``."""

    # Hot fields are slots; rarely set ones are class-level defaults that an instance
    # overrides in its __dict__ only when needed, so creating a tensor writes four fields.
    __slots__ = ("_data", "_requires_grad", "grad_fn", "_version_box", "__dict__", "__weakref__")
    # NumPy defers binary operators to ours (np.float64(2) * t is a Tensor, with its graph,
    # not an ndarray that silently drops autograd); torch sets the same priority
    __array_priority__ = 1000
    _out_nr = 0
    _grad = None
    _base = None
    _acc = None
    _extra = None

    # ------------------------------------------------------------------ construction
    def __new__(cls, *args, **kwargs):
        from .ops.creation import _legacy_new

        return _legacy_new(cls, *args, **kwargs)

    def __init__(self, *args, **kwargs):
        pass

    @classmethod
    def _wrap_like(cls, value, like):
        return _make(B.xp_of(like).asarray(value, dtype=like.dtype))

    # ------------------------------------------------------------------ metadata
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim, "size")]

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def dtype(self) -> B.dtype:
        return B.from_np(self._data.dtype)

    @property
    def device(self) -> B.device:
        return B.device_of(self._data)

    @property
    def is_cuda(self) -> bool:
        return self._data.__class__ is not np.ndarray

    @property
    def is_cpu(self) -> bool:
        return self._data.__class__ is np.ndarray

    # dyntorch's devices are the CPU and CUDA (CuPy): never Intel XPU, Apple MPS or "meta"
    is_xpu = is_mps = is_meta = is_quantized = is_mkldnn = is_vulkan = is_ipu = property(
        lambda self: False)

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f" or B.is_float_np(self._data.dtype)

    def is_complex(self) -> bool:
        return False

    def is_contiguous(self, memory_format=None) -> bool:
        return bool(self._data.flags.c_contiguous)

    def share_memory_(self) -> Tensor:
        """Move this CPU tensor's data into memory that other processes map (in place).

        Processes started afterwards with ``fork``, or given the tensor through
        ``dyntorch.multiprocessing`` (``Process`` arguments, ``Queue``), see and make the same
        writes. Views taken before the move keep the old memory.
        """
        if self._data.__class__ is not np.ndarray:
            raise RuntimeError(
                f"share_memory_(): the tensor is on {self.device}; dyntorch shares CPU tensors "
                "only (CuPy arrays have no inter-process handle here): move it with .cpu() first")
        from . import _shared_memory
        from .multiprocessing.reductions import register

        register(type(self))
        if not _shared_memory.is_shared(self._data):
            self._data = _shared_memory.share(self._data)
        return self

    def is_shared(self) -> bool:
        """Whether the data lies in inter-process shared memory (``share_memory_``)."""
        from . import _shared_memory

        return _shared_memory.is_shared(self._data)

    def stride(self, dim: int | None = None):
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[_wrap_dim(dim, self._data.ndim, "stride")]

    def data_ptr(self) -> int:
        d = self._data
        return d.ctypes.data if d.__class__ is np.ndarray else d.data.ptr

    @property
    def _version(self) -> int:
        return self._version_box[0] if self._version_box is not None else 0

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        self.requires_grad_(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if self.grad_fn is not None and not requires_grad:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use "
                "a computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach().")
        if requires_grad and (self._data.dtype.kind != "f" and not B.is_float_np(self._data.dtype)):
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients, got "
                f"{self.dtype}. Convert it first, e.g. `t.float().requires_grad_()`.")
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def grad(self):
        g = self._grad
        if g is None and self.grad_fn is not None and not (
                self._extra and self._extra.get("retains")):
            # torch warns here: a common slip is `w = randn(3, requires_grad=True).to(dev)`,
            # whose `.grad` stays None because `w` is no longer the leaf
            warnings.warn(
                "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. "
                "Its .grad attribute won't be populated during autograd.backward(). If you "
                "indeed want the .grad field to be populated for a non-leaf Tensor, use "
                ".retain_grad() on the non-leaf Tensor. If you access the non-leaf Tensor by "
                "mistake (e.g. `w = dyntorch.randn(3, requires_grad=True).to(device)`), make "
                "sure you access the leaf Tensor instead (create it on the device, or call "
                ".requires_grad_() after moving it).", UserWarning, stacklevel=2)
        return g

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            if not isinstance(value, Tensor):
                raise TypeError(f"assigned grad expected to be a Tensor or None but got "
                                f"{type(value).__name__}")
            if value._data.shape != self._data.shape:
                raise RuntimeError(f"assigned grad has data of a different size: "
                                   f"{list(value.shape)} vs {list(self.shape)}")
        self._grad = value

    @property
    def data(self) -> Tensor:
        t = _make(self._data)
        if self._version_box is None:
            self._version_box = [0]
        t._version_box = self._version_box
        return t

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value._data

    @property
    def name(self):
        return (self._extra or {}).get("name")

    # ------------------------------------------------------------------ conversion
    def item(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar; "
                "use .tolist() or index a single element first")
        return B.to_numpy(self._data).reshape(()).item()

    def tolist(self):
        return B.to_numpy(self._data).tolist()

    def numpy(self, *, force: bool = False) -> np.ndarray:
        if self._requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead.")
        if self._data.__class__ is not np.ndarray:
            if not force:
                raise TypeError(
                    f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() "
                    "to copy the tensor to host memory first.")
            return B.to_numpy(self._data)
        return self._data

    def __array__(self, dtype=None, copy=None):
        a = B.to_numpy(self._data)
        return a.astype(dtype) if dtype is not None else a

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self._data.size} values is ambiguous; use "
                ".any() or .all()")
        return bool(self.item())

    def __float__(self) -> float:
        if self._data.size != 1:
            raise self._not_scalar("float")
        return float(self.item())

    def __int__(self) -> int:
        if self._data.size != 1:
            raise self._not_scalar("int")
        return int(self.item())

    def _not_scalar(self, kind: str) -> ValueError:
        # torch raises ValueError here (RuntimeError only from .item())
        return ValueError(
            f"only one element tensors can be converted to Python scalars: {kind}() got a "
            f"tensor of shape {list(self._data.shape)} ({self._data.size} elements); reduce "
            "it first (e.g. .sum(), .mean()) or index a single element")

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return int(self.item())

    def __complex__(self):
        return complex(self.item())

    def __hash__(self) -> int:
        return id(self)

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0 and spec:
            return format(self.item(), spec)
        return str(self)

    def __reduce_ex__(self, protocol):
        return (_rebuild, (B.to_numpy(self._data), str(self.device), self._requires_grad))

    def __deepcopy__(self, memo):
        t = type(self).__new__(type(self)) if type(self) is not Tensor else _new(Tensor)
        _init(t, self._data.copy())
        t._requires_grad = self._requires_grad
        if self._grad is not None:
            t._grad = self._grad.__deepcopy__(memo)
        extra = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        if extra:
            import copy

            t.__dict__.update(copy.deepcopy(extra, memo))
        memo[id(self)] = t
        return t

    def __repr__(self) -> str:
        from ._printing import tensor_repr

        return tensor_repr(self)

    # ------------------------------------------------------------------ autograd
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate gradients of this tensor into the graph leaves (``Tensor.backward``)."""
        _backward((self,), None if gradient is None else (gradient,), retain_graph,
                 create_graph, inputs=inputs)

    def detach(self) -> Tensor:
        t = _make(self._data)
        if self._version_box is None:
            self._version_box = [0]
        t._version_box = self._version_box
        return t

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self._requires_grad = False
        return self

    def retain_grad(self) -> None:
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None:
            return
        ex = self._ensure_extra()
        if ex.get("retains"):
            return
        from .autograd.hooks import install_retain_grad

        install_retain_grad(self)
        ex["retains"] = True

    @property
    def retains_grad(self) -> bool:
        return bool((self._extra or {}).get("retains"))

    def register_hook(self, hook):
        """Run ``hook(grad)`` when this tensor's gradient is computed; it may return a new one."""
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        from .autograd.hooks import register_tensor_hook

        return register_tensor_hook(self, hook)

    def _ensure_extra(self) -> dict:
        if self._extra is None:
            self._extra = {}
        return self._extra


class Size(tuple):
    """torch.Size: a tuple of dimensions."""

    def __repr__(self) -> str:
        return f"dyntorch.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n


#: How many in-place writes have happened, anywhere. A graph node remembers the count at its
#: creation; while it is unchanged, nothing the node saved can have changed, so backward skips
#: the per-input version checks.
MUTATIONS = [0]


def bump_version(t, create: bool = True) -> None:
    """Mark ``t`` as changed in place (its autograd version counter, and :data:`MUTATIONS`).

    With ``create=False`` a tensor that never had a counter keeps none (a swap of ``.data``
    that torch does not count as an in-place change).
    """
    vc = t._version_box
    if vc is None:
        if not create:
            return
        t._version_box = [1]
    else:
        vc[0] += 1
    MUTATIONS[0] += 1


def _init(t, data):
    t._data = data
    t._requires_grad = False
    t.grad_fn = None
    t._version_box = None


def _make(data, node=None) -> Tensor:
    """Wrap an array as a Tensor (the fast path, no checks)."""
    t = _new(Tensor)
    t._data = data
    t._requires_grad = node is not None
    t.grad_fn = node
    t._version_box = None
    return t


def _rebuild(arr, dev, rg):
    t = _make(B.move(arr, B.to_device(dev)))
    t._requires_grad = rg
    return t


def _wrap_dim(dim: int, ndim: int, op: str = "") -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{op + '(): ' if op else ''}Dimension out of range (expected to be in range of "
            f"[{-n}, {n - 1}], but got {dim})")
    return dim % n if ndim else 0


def _backward(*args, **kwargs):
    from .autograd.functional_api import backward

    global _backward
    _backward = backward
    return backward(*args, **kwargs)
