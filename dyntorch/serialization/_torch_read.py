"""Reading PyTorch's zip layout (what ``torch.save`` and ``dyntorch.save`` write) without torch.

``data.pkl`` is unpickled with the data-only unpickler; storages become NumPy arrays and each
tensor a view into its storage (so views saved together stay views of one array, as in torch).
Every number the pickle gives (storage sizes, offsets, shapes, strides) is checked against the
bytes in the archive before anything is allocated.
"""
from __future__ import annotations

import io
import pickle

import numpy as np

from .. import _backend as B
from .._tensor import Tensor
from ._archive import Archive, LoadError, check_shape, numel
from ._place import parameter, place
from ._unpickle import Marker, find_global, prescan, refusal

STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "BFloat16Storage": "bfloat16",
}
TORCH_DTYPES = {"float32": np.float32, "float": np.float32, "float64": np.float64,
                "double": np.float64, "float16": np.float16, "half": np.float16,
                "int64": np.int64, "long": np.int64, "int32": np.int32, "int": np.int32,
                "int16": np.int16, "short": np.int16, "int8": np.int8, "uint8": np.uint8,
                "bool": np.bool_, "bfloat16": "bfloat16"}
# tensors whose strides repeat elements (an expand()) are copied out; this caps what a header
# can make us allocate beyond the storages themselves
EXPAND_BUDGET = 1 << 26


# the torch names a weights-only load rebuilds (besides the storage and dtype names above)
TORCH_NAMES = {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor"),
               ("torch._utils", "_rebuild_parameter"),
               ("torch._utils", "_rebuild_parameter_with_state"),
               ("torch._tensor", "_rebuild_from_type_v2"), ("torch.nn.parameter", "Parameter"),
               ("torch", "Tensor"), ("torch", "Size"), ("torch", "device")}


def allowed_by_default(module: str, qualname: str) -> bool:
    """Whether a weights-only load rebuilds ``module.qualname`` without safe globals."""
    from ._unpickle import BASE_GLOBALS

    return ((module, qualname) in TORCH_NAMES or (module, qualname) in BASE_GLOBALS or
            (module == "torch" and (qualname in STORAGE_DTYPES or qualname in TORCH_DTYPES)))


class _StorageType:
    """Stands for ``torch.FloatStorage`` & co. while unpickling: just a dtype."""

    def __init__(self, name: str, dtype):
        self.name, self.dtype = name, dtype

    def __repr__(self) -> str:
        return f"torch.{self.name}"


class _Storage:
    __slots__ = ("array", "location", "stype")

    def __init__(self, array: np.ndarray, location: str, stype: _StorageType):
        self.array, self.location, self.stype = array, location, stype


# ``torch.nn.Parameter`` and ``torch.Tensor`` as the type argument of _rebuild_from_type_v2:
# markers, so that a pickle cannot call or instantiate them (Tensor(n) would allocate n)
_PARAM = Marker("torch.nn.parameter.Parameter")
_TENSOR = Marker("torch.Tensor")


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    # bfloat16 is the top half of a float32: widening the bits is exact
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _overlaps(size: tuple, stride: tuple) -> bool:
    """Whether some element is reachable by two indices (a sufficient test: sorted by stride,
    each stride must step over everything the smaller ones span)."""
    span = 0
    for n, st in sorted((p for p in zip(size, stride) if p[0] > 1), key=lambda p: p[1]):
        if st <= span:
            return True
        span += (n - 1) * st
    return False


def load_torch(ar: Archive, prefix: str, map_location, weights_only: bool):
    """The object in the torch-layout archive ``ar`` whose records start with ``prefix``."""
    who, name = ar.who, ar.name

    def err(what: str) -> LoadError:
        return LoadError(f"{who}: '{name}' {what}; the file is damaged or not a checkpoint.")

    big = False
    if prefix + "byteorder" in ar.infos:
        order = ar.read(prefix + "byteorder").strip()
        if order not in (b"little", b"big"):
            raise err(f"has an unknown byteorder record {order[:20]!r}")
        big = order == b"big"
    storages: dict[str, _Storage] = {}
    budget = [EXPAND_BUDGET]

    def read_storage(stype, key, location, count) -> _Storage:
        if not isinstance(stype, _StorageType):
            raise err(f"names a storage of unsupported type {stype!r}")
        if not isinstance(key, str) or not isinstance(location, str) or \
                isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise err(f"has a malformed storage reference ({key!r}, {location!r}, {count!r})")
        s = storages.get(key)
        if s is not None:
            if s.stype.name != stype.name:
                raise err(f"reads storage '{key}' as {stype.name} and as {s.stype.name}")
            return s
        raw = ar.read(f"{prefix}data/{key}")
        itemsize = 2 if stype.dtype == "bfloat16" else np.dtype(stype.dtype).itemsize
        if len(raw) != count * itemsize:
            raise err(f"says storage '{key}' holds {count} elements of {stype.name} "
                      f"({count * itemsize} bytes) but its record holds {len(raw)} bytes")
        if stype.dtype == "bfloat16":
            arr = _bf16_to_f32(np.frombuffer(raw, dtype=">u2" if big else "<u2"))
        else:
            dt = np.dtype(stype.dtype).newbyteorder(">" if big else "<")
            arr = np.frombuffer(raw, dtype=dt).astype(dt.newbyteorder("="), copy=True)
        s = storages[key] = _Storage(arr, location, stype)
        return s

    def rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None,
                       metadata=None):
        if not isinstance(storage, _Storage):
            raise err(f"builds a tensor from {type(storage).__name__}, not a storage")
        size = check_shape(size, "a tensor", err)
        stride = check_shape(stride, "a tensor's stride", err)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0 or \
                len(size) != len(stride):
            raise err(f"has a tensor of size {list(size)}, stride {list(stride)} and offset "
                      f"{offset!r}, which do not match")
        a = storage.array
        n = numel(size)
        if n == 0:
            arr = np.empty(size, dtype=a.dtype)
        else:
            last = offset + sum((k - 1) * st for k, st in zip(size, stride))
            if last >= a.size:
                raise err(f"has a tensor of size {list(size)} and stride {list(stride)} at "
                          f"offset {offset} that does not fit its storage of {a.size} "
                          "elements")
            it = a.itemsize
            arr = np.lib.stride_tricks.as_strided(a[offset:], shape=size,
                                                  strides=[s * it for s in stride])
            if _overlaps(size, stride):  # an expand(): materialise it, within the budget
                budget[0] -= n * it
                if budget[0] < 0:
                    raise err(f"expands tensors to more than {EXPAND_BUDGET} bytes")
                arr = arr.copy()
        t = place(arr, storage.location, map_location, who, name)
        if requires_grad is True and t._data.dtype.kind == "f":
            t._requires_grad = True
        return t

    def rebuild_parameter(data, requires_grad, hooks=None, state=None):
        if not isinstance(data, Tensor):
            raise err(f"builds a parameter from {type(data).__name__}")
        return parameter(data, bool(requires_grad))

    def rebuild_from_type_v2(func, new_type, args, state):
        if func not in (rebuild_tensor, rebuild_parameter) or not isinstance(args, tuple):
            raise err(f"rebuilds a tensor with {func!r}")
        out = func(*args)
        if new_type is _PARAM:
            out = parameter(out, True)
        elif new_type is not _TENSOR:
            raise err(f"rebuilds a tensor as {new_type!r}")
        return out

    def torch_size(*args):
        if len(args) > 1:
            raise err("has a malformed torch.Size")
        return check_shape(args[0], "a torch.Size", err) if args else ()

    def torch_device(*a):
        try:
            return B.device(*a)
        except (TypeError, ValueError, RuntimeError) as e:
            raise err(f"names a device {a!r} that is not valid ({e})") from None

    table = {  # (keys: TORCH_NAMES)
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type_v2,
        ("torch.nn.parameter", "Parameter"): _PARAM,
        ("torch", "Tensor"): _TENSOR,
        ("torch", "Size"): torch_size,
        ("torch", "device"): torch_device,
    }
    for k, v in STORAGE_DTYPES.items():
        table[("torch", k)] = _StorageType(k, v)
    for k, v in TORCH_DTYPES.items():
        table[("torch", k)] = B.from_np(np.float32 if v == "bfloat16" else v)

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, qualname: str):
            fn = find_global(table, module, qualname, weights_only)
            if fn is None:
                raise LoadError(refusal(who, name, module, qualname, weights_only))
            return fn

        def persistent_load(self, pid):
            if not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "storage":
                raise err(f"has an unknown persistent id {pid!r:.80}")
            return read_storage(*pid[1:])

    data = ar.read(prefix + "data.pkl")
    prescan(data, err)
    return Unpickler(io.BytesIO(data)).load()


__all__ = ["load_torch", "allowed_by_default"]
