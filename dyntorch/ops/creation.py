"""Constructors, random sampling, dtype/device conversion."""
from __future__ import annotations

import warnings

import numpy as np

from .. import _backend as B
from .._tensor import Tensor, _init, _make
from ._args import var_or_kw
from ._util import method, shape_arg
from .elementwise import to_copy, to_device


def _dt(dtype, default=None) -> B.dtype:
    if dtype is None:
        return default if default is not None else B.get_default_dtype()
    return B.to_dtype(dtype)


def _finish(arr, device, requires_grad) -> Tensor:
    dev = B.to_device(device)
    if dev.type != "cpu":
        arr = B.move(arr, dev)
    t = _make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _infer(data):
    """An ndarray and the dtype torch would give ``data``."""
    if isinstance(data, Tensor):
        warnings.warn("To copy construct from a tensor, it is recommended to use "
                      "sourceTensor.detach().clone() or "
                      "sourceTensor.detach().clone().requires_grad_(True), rather than "
                      "dyntorch.tensor(sourceTensor).", UserWarning, stacklevel=3)
        return B.to_numpy(data._data), B.from_np(data._data.dtype)
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.asarray(data)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"can't convert np.ndarray of type {arr.dtype}. The only supported "
                            "types are: float64, float32, float16, int64, int32, int16, int8, "
                            "uint8, and bool.")
        return arr, B.from_np(arr.dtype)
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
        data = _untensor(data)
    try:
        arr = np.array(data)
    except ValueError as e:
        where = _ragged(data)
        if where is None:
            raise ValueError(f"tensor(): could not build a tensor from the data: {e}") from None
        raise ValueError(f"tensor(): expected sequence of length {where[0]} at dim {where[1]} "
                         f"(got {where[2]}); nested lists must have the same length at each "
                         "level (pad them, or use nn.utils.rnn.pad_sequence)") from None
    if arr.dtype == object:
        raise TypeError("tensor(): could not infer dtype; nested sequences must be regular and "
                        f"hold numbers (got {type(data).__name__})")
    k = arr.dtype.kind
    if k == "f":
        dt = B.get_default_dtype()
    elif k in "iu":
        dt = B.int64
    elif k == "b":
        dt = B.bool_
    else:
        raise TypeError(f"tensor(): unsupported data of NumPy type {arr.dtype}")
    return arr, dt


def _ragged(data, dim=0):
    """(expected length, dim, got) for the first ragged level of nested lists, or None."""
    if not isinstance(data, (list, tuple)):
        return None
    items = [x for x in data if isinstance(x, (list, tuple))]
    if not items:
        return None
    if len(items) != len(data):
        return (len(items[0]), dim + 1, "a scalar")
    n = len(items[0])
    for x in items[1:]:
        if len(x) != n:
            return (n, dim + 1, len(x))
    for x in items:
        found = _ragged(x, dim + 1)
        if found is not None:
            return found
    return None


def _flat(data):
    for x in data:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def _untensor(data):
    if isinstance(data, Tensor):
        return data.tolist()
    if isinstance(data, (list, tuple)):
        return [_untensor(x) for x in data]
    return data


def tensor(data, *, dtype=None, device=None, requires_grad=False, pin_memory=False) -> Tensor:
    """Build a tensor by copying ``data`` (a number, a nested list, an array or a tensor)."""
    if isinstance(data, Tensor) and device is None:
        device = data.device
    arr, inferred = _infer(data)
    dt = _dt(dtype, inferred)
    arr = np.array(arr, dtype=dt.np, copy=True)
    return _finish(arr, device, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like :func:`tensor` but shares memory when it can (same dtype and device)."""
    if isinstance(data, Tensor):
        t = data
        if dtype is not None:
            t = t.to(B.to_dtype(dtype))
        if device is not None:
            t = t.to(B.to_device(device))
        return t
    if isinstance(data, np.ndarray) and (dtype is None or B.to_dtype(dtype).np == data.dtype):
        return _finish(data, device, False)
    if B._cp is not None and isinstance(data, B._cp.ndarray):
        t = _make(data)
        return t if dtype is None else t.to(B.to_dtype(dtype))
    return tensor(data, dtype=dtype, device=device)


def asarray(obj, *, dtype=None, device=None, copy=None, requires_grad=None) -> Tensor:
    t = tensor(obj, dtype=dtype, device=device) if copy else as_tensor(obj, dtype, device)
    if requires_grad:
        t.requires_grad_()
    return t


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(ndarray).__name__})")
    B.from_np(ndarray.dtype)
    return _make(ndarray)


def _nonneg(shape: tuple) -> tuple:
    for s in shape:
        if s < 0:
            raise RuntimeError(
                f"Trying to create tensor with negative dimension {s}: {list(shape)}")
    return shape


def _need_tensor(name: str, input) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")


def _filled(fill, size, dtype, device, requires_grad, default=None):
    shape = _nonneg(shape_arg(size))
    dt = _dt(dtype, default)
    xp = B.xp_for(B.to_device(device))
    if fill is None:
        arr = xp.empty(shape, dtype=dt.np)
    elif fill == 0:
        arr = xp.zeros(shape, dtype=dt.np)
    else:
        arr = xp.full(shape, fill, dtype=dt.np)
    t = _make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def zeros(*sizes, size=None, dtype=None, device=None, requires_grad=False, out=None,
          layout=None) -> Tensor:
    """A tensor of zeros of the given size (``zeros(2, 3)`` or ``zeros(size=(2, 3))``)."""
    size = var_or_kw("zeros", sizes, "size", size)
    return _into(out, _filled(0, size, dtype, device, requires_grad), "zeros", layout)


def ones(*sizes, size=None, dtype=None, device=None, requires_grad=False, out=None,
         layout=None) -> Tensor:
    """A tensor of ones of the given size (``ones(2, 3)`` or ``ones(size=(2, 3))``)."""
    size = var_or_kw("ones", sizes, "size", size)
    return _into(out, _filled(1, size, dtype, device, requires_grad), "ones", layout)


def empty(*sizes, size=None, dtype=None, device=None, requires_grad=False, memory_format=None,
          out=None, layout=None, pin_memory=False) -> Tensor:
    """An uninitialised tensor of the given size (``empty(2, 3)`` or ``empty(size=...)``)."""
    size = var_or_kw("empty", sizes, "size", size)
    return _into(out, _filled(None, size, dtype, device, requires_grad), "empty", layout)


def _into(out, t: Tensor, name: str, layout=None) -> Tensor:
    """``out=`` and ``layout=`` of the creation functions: honoured or refused, never dropped."""
    if layout is not None and layout != "strided" and str(layout) != "torch.strided":
        raise NotImplementedError(f"{name}(): layout={layout!r} is not supported; dyntorch "
                                  "tensors are dense (strided); leave layout out")
    if out is None:
        return t
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if tuple(out.shape) != tuple(t.shape):
        raise RuntimeError(f"{name}(): out= has shape {list(out.shape)} but the result has "
                           f"shape {list(t.shape)}; dyntorch does not resize out=, so pass "
                           "a tensor of the result's shape or leave out= out")
    return out.copy_(t)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of the given size filled with ``fill_value``."""
    default = B.scalar_dtype(fill_value) if dtype is None else None
    if fill_value == 0:
        return _filled(0, (size,) if isinstance(size, int) else size, dtype, device,
                       requires_grad, default)
    shape = shape_arg((size,) if isinstance(size, int) else size)
    dt = _dt(dtype, default)
    t = _make(B.xp_for(B.to_device(device)).full(shape, fill_value, dtype=dt.np))
    if requires_grad:
        t.requires_grad_(True)
    return t


def zeros_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    _need_tensor("zeros_like", input)
    return _filled(0, input.shape, dtype or input.dtype, device or input.device, requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None) -> Tensor:
    _need_tensor("ones_like", input)
    return _filled(1, input.shape, dtype or input.dtype, device or input.device, requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False, memory_format=None):
    _need_tensor("empty_like", input)
    return _filled(None, input.shape, dtype or input.dtype, device or input.device,
                   requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False,
              memory_format=None) -> Tensor:
    _need_tensor("full_like", input)
    return full(input.shape, fill_value, dtype=dtype or input.dtype,
                device=device or input.device, requires_grad=requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A 2-D identity matrix."""
    xp = B.xp_for(B.to_device(device))
    t = _make(xp.eye(n, m if m is not None else n, dtype=_dt(dtype).np))
    return t.requires_grad_(True) if requires_grad else t


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive) in steps of ``step``."""
    if end is None:
        start, end = 0, start
    vals = [start, end, step]
    vals = [v.item() if isinstance(v, Tensor) else v for v in vals]
    if step == 0:
        raise RuntimeError("arange(): step must be nonzero")
    if dtype is None:
        dt = B.get_default_dtype() if any(isinstance(v, float) for v in vals) else B.int64
    else:
        dt = B.to_dtype(dtype)
    xp = B.xp_for(B.to_device(device))
    arr = xp.arange(*vals, dtype=np.float64 if dt.is_floating_point else np.int64)
    t = _make(arr.astype(dt.np, copy=False))
    return t.requires_grad_(True) if requires_grad else t


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    xp = B.xp_for(B.to_device(device))
    t = _make(xp.linspace(float(start), float(end), int(steps)).astype(_dt(dtype).np))
    return t.requires_grad_(True) if requires_grad else t


def logspace(start, end, steps, base=10.0, *, dtype=None, device=None, requires_grad=False):
    xp = B.xp_for(B.to_device(device))
    t = _make(xp.logspace(float(start), float(end), int(steps), base=base).astype(
        _dt(dtype).np))
    return t.requires_grad_(True) if requires_grad else t


# ----------------------------------------------------------------------------- random
def manual_seed(seed: int) -> B.Generator:
    """Seed the default generator (CPU and CUDA)."""
    return B.default_generator.manual_seed(seed)


def seed() -> int:
    return B.default_generator.seed()


def initial_seed() -> int:
    return B.default_generator.initial_seed()


def get_rng_state():
    return B.default_generator.get_state()


def set_rng_state(new_state) -> None:
    B.default_generator.set_state(new_state)


def _rng(generator, device):
    g = generator if generator is not None else B.default_generator
    return g.rng(B.to_device(device))


def _random(kind, size, generator, dtype, device, requires_grad, **kw):
    shape = _nonneg(shape_arg(size))
    dt = _dt(dtype)
    if not dt.is_floating_point:
        raise RuntimeError(f"{kind}(): expected a floating point dtype, got {dt}")
    r = _rng(generator, device)
    if kind == "rand":
        arr = r.random(shape, dtype=np.float64 if dt is B.float64 else np.float32)
    else:
        arr = r.standard_normal(shape, dtype=np.float64 if dt is B.float64 else np.float32)
    t = _make(arr.astype(dt.np, copy=False))
    return t.requires_grad_(True) if requires_grad else t


def rand(*sizes, size=None, generator=None, dtype=None, device=None, requires_grad=False,
         out=None) -> Tensor:
    """Uniform samples on [0, 1) (``rand(2, 3)`` or ``rand(size=(2, 3))``)."""
    size = var_or_kw("rand", sizes, "size", size)
    return _into(out, _random("rand", size, generator, dtype, device, requires_grad), "rand")


def randn(*sizes, size=None, generator=None, dtype=None, device=None, requires_grad=False,
          out=None) -> Tensor:
    """Standard normal samples (``randn(2, 3)`` or ``randn(size=(2, 3))``)."""
    size = var_or_kw("randn", sizes, "size", size)
    return _into(out, _random("randn", size, generator, dtype, device, requires_grad), "randn")


def rand_like(input, *, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    _need_tensor("rand_like", input)
    return rand(input.shape, dtype=dtype or input.dtype, device=device or input.device,
                requires_grad=requires_grad, generator=generator)


def randn_like(input, *, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    _need_tensor("randn_like", input)
    return randn(input.shape, dtype=dtype or input.dtype, device=device or input.device,
                 requires_grad=requires_grad, generator=generator)


def randint(low=0, high=None, size=None, *, generator=None, dtype=None, device=None,
            requires_grad=False) -> Tensor:
    """Random integers in [low, high); ``randint(high, size)`` starts at 0 like torch."""
    if size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high  # randint(10, (3,))
    elif high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint(): missing the 'size' argument, e.g. randint(0, 10, (3,))")
    shape = _nonneg(shape_arg((size,) if isinstance(size, int) else size))
    if low >= high:
        raise RuntimeError(f"randint(): expects 'low' to be less than 'high', but got "
                           f"low={low} >= high={high}")
    dt = _dt(dtype, B.int64)
    arr = _rng(generator, device).integers(low, high, size=shape)
    return _make(arr.astype(dt.np, copy=False))


def randint_like(input, low=0, high=None, *, generator=None, dtype=None, device=None,
                 requires_grad=False) -> Tensor:
    _need_tensor("randint_like", input)
    t = randint(low, high, input.shape, generator=generator, dtype=dtype or input.dtype,
                device=device or input.device)
    return t.requires_grad_(True) if requires_grad else t


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A random permutation of 0..n-1."""
    arr = _rng(generator, device).permutation(int(n))
    return _make(arr.astype(_dt(dtype, B.int64).np, copy=False))


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad=False) -> Tensor:
    """Normal samples with the given mean and std (numbers or tensors)."""
    if isinstance(std, Tensor):
        if std.numel() and bool((std < 0).any()):
            raise RuntimeError("normal expects all elements of std >= 0.0")
    elif std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        ref = mean if isinstance(mean, Tensor) else std
        return randn(ref.shape, generator=generator, dtype=ref.dtype, device=ref.device) * \
            std + mean
    if size is None:
        raise TypeError("normal(): with float mean and std, pass a size")
    return randn(size, generator=generator, dtype=dtype, device=device,
                 requires_grad=False) * std + mean


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """Draw 0/1 with the probabilities in ``input`` (or ``p``)."""
    probs = input._data if p is None else p
    r = _rng(generator, input.device).random(input.shape)
    return _make((r < (B.to_numpy(probs) if input.device.type == "cpu" else probs)).astype(
        input._data.dtype))


def multinomial(input, num_samples, replacement=False, *, generator=None) -> Tensor:
    """Sample category indices from the rows of ``input`` (unnormalised probabilities)."""
    p = B.to_numpy(input.detach()._data).astype(np.float64)
    if p.ndim not in (1, 2):
        raise RuntimeError("multinomial(): prob_dist must be 1 or 2 dim")
    if (p < 0).any() or not np.isfinite(p).all():
        raise RuntimeError("multinomial(): probability tensor contains either `inf`, `nan` or "
                           "element < 0")
    rows = p.reshape(-1, p.shape[-1])
    if not replacement and num_samples > rows.shape[1]:
        raise RuntimeError("multinomial(): cannot sample n_sample > prob_dist.size(-1) samples "
                           "without replacement")
    r = _rng(generator, "cpu")
    out = np.empty((rows.shape[0], num_samples), dtype=np.int64)
    for i, row in enumerate(rows):
        s = row.sum()
        if s <= 0:
            raise RuntimeError("multinomial(): invalid multinomial distribution (sum of "
                               "probabilities <= 0)")
        out[i] = r.choice(row.shape[0], size=num_samples, replace=replacement, p=row / s)
    res = out.reshape(p.shape[:-1] + (num_samples,))
    return _finish(res, input.device, False)


# ----------------------------------------------------------------------------- conversion
def _parse_to(args, kwargs):
    dev = kwargs.pop("device", None)
    dt = kwargs.pop("dtype", None)
    copy = kwargs.pop("copy", False)
    kwargs.pop("non_blocking", None)
    kwargs.pop("memory_format", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, Tensor):
            dev, dt = a.device, a.dtype
        elif isinstance(a, (B.dtype, type)) or (hasattr(a, "is_floating_point") and
                                                not isinstance(a, (str, B.device))):
            dt = a
        elif isinstance(a, (str, B.device, int)):
            dev = a
        elif isinstance(a, np.dtype):
            dt = a
        elif isinstance(a, bool):
            pass
        else:
            raise TypeError(f"to() received an invalid combination of arguments: {a!r}")
    return (B.to_device(dev) if dev is not None else None,
            B.to_dtype(dt) if dt is not None else None, copy)


def to(self: Tensor, *args, **kwargs) -> Tensor:
    """Convert dtype and/or move to a device; returns ``self`` when nothing changes."""
    dev, dt, copy = _parse_to(args, dict(kwargs))
    t = self
    if dev is not None and dev != B.device_of(t._data):
        t = to_device(t, device=dev)
    if dt is not None and dt.np != t._data.dtype:
        t = to_copy(t, dtype=dt.np)
    if copy and t is self:
        t = self.clone()
    return t


def _cast(dt):
    def m(self, memory_format=None):
        return to(self, dt)

    return m


method("to", to)
method("cpu", lambda self, memory_format=None: to(self, "cpu"))
method("cuda", lambda self, device=None, non_blocking=False, memory_format=None:
       to(self, B.device("cuda", device if isinstance(device, int) else None)
          if not isinstance(device, (str, B.device)) else device))
for _name, _d in (("float", B.float32), ("double", B.float64), ("half", B.float16),
                  ("long", B.int64), ("int", B.int32), ("short", B.int16), ("char", B.int8),
                  ("byte", B.uint8), ("bool", B.bool_), ("bfloat16", getattr(B, "bfloat16", None))):
    if _d is not None:
        method(_name, _cast(_d))


def _type(self, dtype=None, non_blocking=False):
    if dtype is None:
        names = {B.float32: "FloatTensor", B.float64: "DoubleTensor", B.int64: "LongTensor",
                 B.int32: "IntTensor", B.bool_: "BoolTensor", B.float16: "HalfTensor",
                 B.uint8: "ByteTensor", B.int8: "CharTensor", B.int16: "ShortTensor"}
        return f"dyntorch.{names[self.dtype]}"
    if isinstance(getattr(dtype, "dtype", None), B.dtype):  # x.type(dyntorch.LongTensor)
        dtype = dtype.dtype
    elif isinstance(dtype, str) and dtype.endswith("Tensor"):  # x.type('torch.LongTensor')
        from .. import _compat

        legacy = getattr(_compat, dtype.rsplit(".", 1)[-1], None)
        if legacy is None:
            raise ValueError(f"type(): invalid type: '{dtype}'")
        dtype = legacy.dtype
    return to(self, dtype)


method("type", _type)
method("type_as", lambda self, other: to(self, other.dtype))
method("new_tensor", lambda self, data, dtype=None, device=None, requires_grad=False: tensor(
    data, dtype=dtype or self.dtype, device=device or self.device, requires_grad=requires_grad))
method("new_zeros", lambda self, *sizes, size=None, dtype=None, device=None,
       requires_grad=False: zeros(*sizes, size=size, dtype=dtype or self.dtype,
                                  device=device or self.device, requires_grad=requires_grad))
method("new_ones", lambda self, *sizes, size=None, dtype=None, device=None,
       requires_grad=False: ones(*sizes, size=size, dtype=dtype or self.dtype,
                                 device=device or self.device, requires_grad=requires_grad))
method("new_empty", lambda self, *sizes, size=None, dtype=None, device=None,
       requires_grad=False: empty(*sizes, size=size, dtype=dtype or self.dtype,
                                  device=device or self.device, requires_grad=requires_grad))
method("new_full", lambda self, size, fill_value, dtype=None, device=None,
       requires_grad=False: full(size, fill_value, dtype=dtype or self.dtype,
                                 device=device or self.device, requires_grad=requires_grad))


def _legacy_new(cls, *args, **kwargs):
    """``Tensor(...)``: from data (list/array) or a size, float32 like torch."""
    t = object.__new__(cls)
    if len(args) == 1 and not isinstance(args[0], int):
        src = args[0]
        if isinstance(src, Tensor):
            data = src._data
        else:
            data = np.array(src, dtype=B.get_default_dtype().np)
    else:
        size = shape_arg(args) if args else (0,)
        data = np.zeros(size, dtype=B.get_default_dtype().np)
    _init(t, data)
    return t
