"""Devices, array modules (NumPy | CuPy), dtypes, type promotion and random generators.

This is the only floor that talks to NumPy or CuPy by name; everything above asks it for the
array module of a device (:func:`xp_of`, :func:`xp_for`).
"""
from __future__ import annotations

import numpy as np

try:  # CuPy is optional: the `cuda` extra.
    import cupy as _cp

    try:
        _CUDA_COUNT = _cp.cuda.runtime.getDeviceCount()
    except Exception:  # no driver, no device
        _CUDA_COUNT = 0
except Exception:  # pragma: no cover - depends on the machine
    _cp = None
    _CUDA_COUNT = 0

ndarray = np.ndarray
ARRAY_TYPES: tuple = (np.ndarray,) if _cp is None else (np.ndarray, _cp.ndarray)


# ----------------------------------------------------------------------------- devices
class device:
    """Where a tensor's data lives: ``cpu`` or ``cuda:N``."""

    __slots__ = ("type", "index")

    def __init__(self, type: str | device, index: int | None = None):
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        if not isinstance(type, str):
            raise TypeError(f"device(): expected a string such as 'cpu' or 'cuda:0', got {type!r}")
        name = type.strip().lower()
        if ":" in name:
            name, _, idx = name.partition(":")
            if not idx.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}'")
            index = int(idx)
        if name not in ("cpu", "cuda"):
            raise RuntimeError(
                f"Expected one of cpu, cuda device type at start of device string: {type}"
            )
        if name == "cuda" and index is None:
            index = 0
        if name == "cpu":
            index = None
        self.type, self.index = name, index

    def __repr__(self) -> str:
        return f"device(type='{self.type}')" if self.index is None else (
            f"device(type='{self.type}', index={self.index})")

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))


CPU = device("cpu")


def to_device(d) -> device:
    if d is None:
        return CPU
    if isinstance(d, device):
        return d
    if isinstance(d, int):
        return device("cuda", d)
    return device(d)


def cuda_available() -> bool:
    return _CUDA_COUNT > 0


def require_cuda(what: str = "this operation") -> None:
    if _cp is None:
        raise RuntimeError(
            f"{what} needs CUDA, but CuPy is not installed. Install it with "
            "`pip install dyntorch[cuda]` on a machine with an NVIDIA GPU, or keep the tensor on "
            "the CPU (device='cpu')."
        )
    if _CUDA_COUNT == 0:
        raise RuntimeError(
            f"{what} needs CUDA, but no CUDA device was found (CuPy is installed, the driver "
            "reports 0 devices). Keep the tensor on the CPU (device='cpu')."
        )


def xp_for(dev: device):
    """The array module for a device."""
    if dev.type == "cpu":
        return np
    require_cuda(f"device '{dev}'")
    return _cp


def check_gpu_dtype(dev: device, dt) -> None:
    """Refuse a dtype that the GPU's array module lacks (bfloat16), naming the fix."""
    if dev.type != "cpu" and dt is bfloat16:
        raise TypeError(f"bfloat16 is not supported on '{dev}': CuPy has no bfloat16 dtype. "
                        "Use float16 or float32 on the GPU, or keep bfloat16 on the CPU.")


def xp_of(arr):
    """The array module that owns ``arr``."""
    return np if arr.__class__ is np.ndarray else (_cp if _cp is not None and
                                                    isinstance(arr, _cp.ndarray) else np)


def device_of(arr) -> device:
    if arr.__class__ is np.ndarray:
        return CPU
    if _cp is not None and isinstance(arr, _cp.ndarray):
        return device("cuda", arr.device.id)
    return CPU


def move(arr, dev: device):
    """Copy ``arr`` to ``dev`` (no copy when it is already there)."""
    src = device_of(arr)
    if src == dev:
        return arr
    if dev.type == "cpu":
        return arr.get()
    require_cuda(f"moving a tensor to '{dev}'")
    if arr.dtype == BF16_NP and BF16_NP is not None:
        raise TypeError(f"cannot move a bfloat16 tensor to '{dev}': CuPy has no bfloat16 "
                        "dtype, so dyntorch keeps bfloat16 on the CPU. Use float16 or float32 "
                        "on the GPU (e.g. `.to(device, dtype=dyntorch.float16)`).")
    with _cp.cuda.Device(dev.index):
        return _cp.asarray(arr)


def to_numpy(arr) -> np.ndarray:
    return arr if arr.__class__ is np.ndarray else arr.get()


def writeable(arr) -> bool:
    """May we write into ``arr``? NumPy marks broadcast views read-only; CuPy has no flag."""
    return getattr(arr.flags, "writeable", True)


def synchronize() -> None:
    if _cp is not None and _CUDA_COUNT:
        _cp.cuda.Device().synchronize()


# ----------------------------------------------------------------------------- dtypes
class dtype:
    """A tensor element type (``dyntorch.float32`` ...), mirroring ``torch.dtype``."""

    __slots__ = ("name", "np", "is_floating_point", "is_signed", "itemsize", "category", "rank")

    def __init__(self, name, np_dtype, category, rank):
        self.name = name
        self.np = np.dtype(np_dtype)
        self.category = category  # 0 bool, 1 integer, 2 floating
        self.rank = rank
        self.is_floating_point = category == 2
        self.is_signed = self.np.kind in "if"
        self.itemsize = self.np.itemsize

    def __getattr__(self, attr):
        # only reached while a slot is unset: bfloat16's ``np`` before its first use
        if attr == "np" and self.name == "bfloat16":
            return load_bfloat16()
        raise AttributeError(f"'dtype' object has no attribute '{attr}'")

    def __repr__(self) -> str:
        return f"dyntorch.{self.name}"

    def __reduce__(self):  # dtypes are singletons, also through pickle
        return (_dtype_by_name, (self.name,))

    @property
    def is_complex(self) -> bool:
        return False

    def to_complex(self):  # pragma: no cover - complex is not supported
        raise NotImplementedError("dyntorch does not support complex dtypes")


bool_ = dtype("bool", np.bool_, 0, 0)
uint8 = dtype("uint8", np.uint8, 1, 1)
int8 = dtype("int8", np.int8, 1, 1)
int16 = dtype("int16", np.int16, 1, 2)
int32 = dtype("int32", np.int32, 1, 3)
int64 = dtype("int64", np.int64, 1, 4)
float16 = dtype("float16", np.float16, 2, 1)
float32 = dtype("float32", np.float32, 2, 2)
float64 = dtype("float64", np.float64, 2, 3)

# bfloat16: NumPy storage through ml_dtypes (the package JAX uses). Ops compute it in float32
# and round the result to bfloat16, as torch's CPU kernels do (see the door's bf16 branch).
# CuPy has no bfloat16, so such tensors stay on the CPU (``move`` says so).
# ml_dtypes takes about 1 s to import (bench_core's `import dyntorch`: 946 ms eager against a
# 200 ms target), so the NumPy dtype is loaded on first use: ``bfloat16.np`` is unset until then
# and :meth:`dtype.__getattr__` loads it; no bfloat16 array can exist before that.
BF16_NP = None
_bf16_hooks: list = []
bfloat16 = dtype.__new__(dtype)
bfloat16.name, bfloat16.category, bfloat16.rank = "bfloat16", 2, 1  # rank of float16: together
bfloat16.is_floating_point, bfloat16.is_signed, bfloat16.itemsize = True, True, 2  # float32


def on_bfloat16(fn) -> None:
    """Call ``fn(numpy_dtype)`` when bfloat16's NumPy dtype is loaded (now, if it is)."""
    _bf16_hooks.append(fn)
    if BF16_NP is not None:
        fn(BF16_NP)


def load_bfloat16():
    """bfloat16's NumPy dtype, importing ml_dtypes on first use."""
    global BF16_NP
    if BF16_NP is None:
        try:
            import ml_dtypes
        except ImportError:  # pragma: no cover - ml_dtypes is a dependency
            raise TypeError("bfloat16 needs the ml_dtypes package: pip install ml_dtypes") from None
        BF16_NP = np.dtype(ml_dtypes.bfloat16)
        bfloat16.np = BF16_NP
        _BY_NP[BF16_NP] = bfloat16
        for fn in _bf16_hooks:
            fn(BF16_NP)
    return BF16_NP


ALL_DTYPES = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64, bfloat16)
_BY_NP = {d.np: d for d in ALL_DTYPES if d is not bfloat16}  # bfloat16's joins when loaded
_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NAME.update(half=float16, float=float32, double=float64, short=int16, int=int32,
                long=int64, bool=bool_)


def is_float_np(np_dtype) -> bool:
    """Whether a NumPy dtype is floating point (bfloat16's NumPy kind is 'V', not 'f')."""
    return np_dtype.kind == "f" or (BF16_NP is not None and np_dtype == BF16_NP)


def _dtype_by_name(name: str) -> dtype:
    return _BY_NAME[name]


def from_np(np_dtype) -> dtype:
    try:
        return _BY_NP[np_dtype]
    except KeyError:
        d = _BY_NP.get(np.dtype(np_dtype))
        if d is None and np.dtype(np_dtype).name == "bfloat16":
            load_bfloat16()
            d = _BY_NP.get(np.dtype(np_dtype))
        if d is None:
            raise TypeError(f"dyntorch has no dtype for NumPy's {np.dtype(np_dtype)}") from None
        return d


def to_dtype(d) -> dtype:
    """Accept a dyntorch dtype, a NumPy dtype, a Python type or a name."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return _default_float[0]
    if d is int:
        return int64
    if d is bool:
        return bool_
    if isinstance(d, str):
        if d in _BY_NAME:
            return _BY_NAME[d]
        raise TypeError(f"unknown dtype name '{d}'")
    tname = getattr(d, "name", None)  # a torch.dtype, say
    if tname is None and hasattr(d, "__str__") and str(d).startswith("torch."):
        tname = str(d)[6:]
    if isinstance(tname, str) and tname in _BY_NAME and not isinstance(d, np.dtype):
        return _BY_NAME[tname]
    return from_np(np.dtype(d))


_default_float = [float32]


def get_default_dtype() -> dtype:
    return _default_float[0]


def set_default_dtype(d) -> None:
    d = to_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_float[0] = d


def promote_types(a: dtype, b: dtype) -> dtype:
    """torch.promote_types for two dtypes."""
    if a is b:
        return a
    if a.category != b.category:
        return a if a.category > b.category else b
    if a.category == 1 and (a is uint8) != (b is uint8):
        # uint8 with a signed type: the smallest signed type that holds both
        other = b if a is uint8 else a
        return int16 if other is int8 else other
    if a.rank == b.rank and a.category == 2:  # float16 with bfloat16: neither holds the other
        return float32
    return a if a.rank >= b.rank else b


def scalar_dtype(value) -> dtype:
    """The dtype a bare Python number takes on its own."""
    if isinstance(value, bool):
        return bool_
    if isinstance(value, int):
        return int64
    if isinstance(value, float):
        return _default_float[0]
    if isinstance(value, complex):
        raise TypeError("dyntorch does not support complex numbers")
    d = getattr(value, "dtype", None)  # NumPy scalar
    if d is not None:
        return from_np(d)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def result_type(*operands) -> dtype:
    """torch.result_type: dimensioned tensors > zero-dim tensors > Python numbers.

    A lower tier only counts when it is of a higher category (bool < integer < float) than
    everything above it; Python floats then take the default dtype, Python ints int64.
    """
    tiers = [None, None, None]  # dims, zero-dim, scalars
    for op in operands:
        data = getattr(op, "_data", None)
        if data is not None:
            d = from_np(data.dtype)
            t = 0 if data.ndim else 1
        else:
            d = scalar_dtype(op)
            t = 2
        tiers[t] = d if tiers[t] is None else promote_types(tiers[t], d)
    out = None
    for t in tiers:
        if t is None:
            continue
        if out is None or t.category > out.category:
            out = t
    return out


# ----------------------------------------------------------------------------- random
class Generator:
    """A random number generator for a device, seeded with :meth:`manual_seed`."""

    def __init__(self, device="cpu"):
        self.device = to_device(device)
        self._seed = 67280421310721
        self.manual_seed(self._seed)

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self._np = np.random.Generator(np.random.PCG64(self._seed))
        self._cp = None
        return self

    def seed(self) -> int:
        s = int(np.random.SeedSequence().entropy % (2**63))
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        return dict(self._np.bit_generator.state)

    def set_state(self, state) -> Generator:
        self._np.bit_generator.state = state
        return self

    def rng(self, dev: device):
        """The NumPy or CuPy generator that draws numbers for ``dev``."""
        if dev.type == "cpu":
            return self._np
        require_cuda("random numbers on CUDA")
        if self._cp is None:
            self._cp = _cp.random.default_rng(self._seed)
        return self._cp


default_generator = Generator()
