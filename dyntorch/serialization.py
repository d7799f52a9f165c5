"""``dyntorch.save`` / ``dyntorch.load``: a safe checkpoint format, and PyTorch's files.

Our format is a zip archive (stored, not compressed) holding

* ``dyntorch/format``: the format name and version;
* ``dyntorch/data.json``: the object tree (dicts, lists, tuples, numbers, strings, ...), with
  each tensor or NumPy array replaced by a reference to
* ``dyntorch/data/<n>.npy``: its values, read back with ``allow_pickle=False``.

Loading it runs no code from the file. Objects JSON can't describe (a whole module, say) are
saved with pickle in ``dyntorch/data.pkl`` instead; loading those needs ``weights_only=False``.

Files written by ``torch.save`` (the zip format of torch >= 1.6) load without torch: their
``data.pkl`` is read by an unpickler that only knows the handful of functions a state dict
refers to (``torch._utils._rebuild_tensor_v2`` and friends) and turns storages into NumPy arrays.
"""
from __future__ import annotations

import base64
import io
import json
import os
import pickle
import zipfile
from collections import Counter, OrderedDict
from typing import Any, BinaryIO

import numpy as np

from . import _backend as B
from ._tensor import Tensor, _make

__all__ = ["save", "load", "LoadError"]

_FORMAT = "dyntorch-checkpoint 1"
_PREFIX = "dyntorch/"


class LoadError(RuntimeError):
    """A file could not be read as a checkpoint (names the file and what is wrong)."""


# ============================================================================ save
def save(obj: Any, f: str | os.PathLike | BinaryIO, pickle_module=None,
         pickle_protocol: int = 2, _use_new_zipfile_serialization: bool = True) -> None:
    """Save ``obj`` (state dicts, optimizer states, nested containers of tensors) to ``f``.

    Parameters
    ----------
    obj : object
        What to save. Dicts, lists, tuples, numbers, strings, ``None``, tensors, NumPy arrays,
        dtypes and devices are stored safely; anything else falls back to pickle (then
        :func:`load` needs ``weights_only=False``).
    f : str, PathLike or binary file
        Where to write.
    """
    arrays: list[np.ndarray] = []
    memo: dict[int, dict] = {}
    try:
        tree = _encode(obj, arrays, memo)
        payload, name = json.dumps(tree, allow_nan=True).encode(), "data.json"
    except _NotJSON:
        arrays.clear()
        payload, name = _pickle_dump(obj, arrays, pickle_protocol), "data.pkl"
    own = isinstance(f, (str, os.PathLike))
    fh = open(f, "wb") if own else f
    try:
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr(_PREFIX + "format", _FORMAT)
            z.writestr(_PREFIX + name, payload)
            for i, a in enumerate(arrays):
                buf = io.BytesIO()
                np.save(buf, a, allow_pickle=False)
                z.writestr(f"{_PREFIX}data/{i}.npy", buf.getvalue())
    finally:
        if own:
            fh.close()


def _contig(a: np.ndarray) -> np.ndarray:
    # (np.ascontiguousarray would turn a 0-d array into a 1-d one)
    return a if a.flags.c_contiguous else a.copy(order="C")


class _NotJSON(Exception):
    pass


def _encode(o, arrays: list, memo: dict):
    """The JSON tree for ``o``; tensors and arrays go to ``arrays`` (each object once)."""
    if o is None or isinstance(o, (bool, str)):
        return o
    if isinstance(o, int):
        return o
    if isinstance(o, float):
        return o
    if isinstance(o, Tensor):
        ref = memo.get(id(o))
        if ref is not None:
            return ref
        arrays.append(_contig(B.to_numpy(o._data)))
        ref = {"__tensor__": len(arrays) - 1, "device": str(o.device),
               "requires_grad": bool(o._rg)}
        if type(o).__name__ == "Parameter":
            ref["parameter"] = True
        memo[id(o)] = ref
        return ref
    if isinstance(o, np.ndarray):
        if o.dtype.kind not in "biuf":
            raise _NotJSON
        arrays.append(_contig(o))
        return {"__ndarray__": len(arrays) - 1}
    if isinstance(o, np.generic):
        if o.dtype.kind not in "biuf":
            raise _NotJSON
        return {"__npscalar__": o.item(), "dtype": o.dtype.str}
    if isinstance(o, B.dtype):
        return {"__dtype__": o.name}
    if isinstance(o, B.device):
        return {"__device__": str(o)}
    if isinstance(o, bytes):
        return {"__bytes__": base64.b64encode(o).decode()}
    if type(o) in (dict, OrderedDict):
        items = [[_encode(k, arrays, memo), _encode(v, arrays, memo)] for k, v in o.items()]
        out = {"__odict__" if type(o) is OrderedDict else "__dict__": items}
        meta = getattr(o, "_metadata", None)  # nn state dicts carry per-module versions
        if meta is not None:
            out["_metadata"] = _encode(meta, arrays, memo)
        return out
    if type(o) is Counter:
        return {"__counter__": [[_encode(k, arrays, memo), _encode(v, arrays, memo)]
                                for k, v in o.items()]}
    if type(o) is list:
        return [_encode(v, arrays, memo) for v in o]
    if type(o) is tuple:
        return {"__tuple__": [_encode(v, arrays, memo) for v in o]}
    if type(o) in (set, frozenset):
        return {"__set__": [_encode(v, arrays, memo) for v in o],
                "frozen": type(o) is frozenset}
    if type(o) is slice:
        return {"__slice__": [_encode(v, arrays, memo) for v in (o.start, o.stop, o.step)]}
    raise _NotJSON


def _pickle_dump(obj, arrays: list, protocol: int) -> bytes:
    memo: dict[int, int] = {}

    class P(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, Tensor):
                if id(o) not in memo:
                    arrays.append(_contig(B.to_numpy(o._data)))
                    memo[id(o)] = len(arrays) - 1
                return ("tensor", memo[id(o)], str(o.device), bool(o._rg),
                        type(o).__name__ == "Parameter")
            return None

    buf = io.BytesIO()
    P(buf, protocol=max(protocol, 2)).dump(obj)
    return buf.getvalue()


# ============================================================================ load
def load(f: str | os.PathLike | BinaryIO, map_location=None, pickle_module=None, *,
         weights_only: bool = True, mmap: bool | None = None, **pickle_load_args) -> Any:
    """Load what :func:`save` (or ``torch.save``) wrote.

    Parameters
    ----------
    f : str, PathLike or binary file
        The checkpoint.
    map_location : str, device, dict or callable, optional
        Where tensors go: ``'cpu'``, ``'cuda'``, a device, a ``{saved: wanted}`` mapping of
        device names, or ``fn(tensor, saved_location) -> tensor``. Default: where they were.
    weights_only : bool
        Only rebuild data (tensors, containers, numbers, strings). ``False`` also unpickles
        arbitrary objects, which can run code from the file: use it only for files you trust.

    Raises
    ------
    LoadError
        The file is not a checkpoint, is truncated or corrupt, is an old (pre-1.6) PyTorch
        file, or (with ``weights_only``) refers to objects that are not plain data.
    """
    name = _name_of(f)
    own = isinstance(f, (str, os.PathLike))
    fh = open(f, "rb") if own else f
    try:
        head = fh.read(64)
        fh.seek(0)
        if not zipfile.is_zipfile(fh):
            fh.seek(0)
            raise LoadError(_why_not_zip(name, head, fh))
        fh.seek(0)
        try:
            z = zipfile.ZipFile(fh)
        except zipfile.BadZipFile as e:
            raise LoadError(f"dyntorch.load: '{name}' is a damaged zip archive ({e}); the file is "
                            "probably truncated or corrupt. Save it again.") from None
        with z:
            names = z.namelist()
            try:
                if _PREFIX + "format" in names:
                    return _load_ours(z, names, name, map_location, weights_only)
                pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
                if pkl:
                    return _load_torch(z, pkl[0][:-len("data.pkl")], name, map_location,
                                       weights_only)
            except LoadError:
                raise
            except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError,
                    pickle.UnpicklingError, json.JSONDecodeError, IndexError) as e:
                raise LoadError(f"dyntorch.load: '{name}' is truncated or corrupt: "
                                f"{type(e).__name__}: {e}") from None
            raise LoadError(f"dyntorch.load: '{name}' is a zip archive but not a checkpoint "
                            f"(no dyntorch/format or <name>/data.pkl inside; it holds "
                            f"{names[:5]}{'...' if len(names) > 5 else ''})")
    finally:
        if own:
            fh.close()


def _name_of(f) -> str:
    if isinstance(f, (str, os.PathLike)):
        return os.fspath(f)
    return getattr(f, "name", None) or f"<{type(f).__name__}>"


_LEGACY_MAGIC = b"\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"


def _why_not_zip(name: str, head: bytes, fh) -> str:
    if not head:
        return f"dyntorch.load: '{name}' is empty (0 bytes); it was probably not written fully."
    if head[:1] == b"\x80" and _LEGACY_MAGIC in head[:20]:
        return (f"dyntorch.load: '{name}' is in PyTorch's legacy (pre-1.6, non-zip) format, "
                "which dyntorch does not read. Re-save it with a recent torch: "
                "`torch.save(torch.load(path), new_path)`.")
    if head.startswith(b"PK"):
        return (f"dyntorch.load: '{name}' starts like a zip archive but its directory is "
                "missing or damaged: the file is truncated or corrupt. Save it again.")
    return (f"dyntorch.load: '{name}' is not a dyntorch or PyTorch checkpoint (not a zip "
            f"archive; it starts with {head[:16]!r}).")


# ----------------------------------------------------------------------------- our format
def _load_ours(z: zipfile.ZipFile, names, name, map_location, weights_only):
    fmt = z.read(_PREFIX + "format").decode(errors="replace")
    if not fmt.startswith("dyntorch-checkpoint "):
        raise LoadError(f"dyntorch.load: '{name}' has an unknown format tag {fmt!r}")
    cache: dict[int, np.ndarray] = {}

    def array(i: int) -> np.ndarray:
        a = cache.get(i)
        if a is None:
            with z.open(f"{_PREFIX}data/{i}.npy") as fh:
                a = np.lib.format.read_array(fh, allow_pickle=False)
            cache[i] = a
        return a

    tensors: dict[int, Tensor] = {}

    def tensor(i, dev, rg, param):
        t = tensors.get(i)
        if t is None:
            t = _place(array(i), dev, map_location)
            if param:
                t = _parameter(t, rg)
            elif rg:
                t._rg = True
            tensors[i] = t
        return t

    if _PREFIX + "data.json" in names:
        tree = json.loads(z.read(_PREFIX + "data.json"))
        return _decode(tree, array, tensor)
    if weights_only:
        raise LoadError(
            f"dyntorch.load: '{name}' holds arbitrary Python objects (saved with pickle because "
            "they are not plain data), and weights_only=True refuses to unpickle them since "
            "that can run code. If you trust the file, pass weights_only=False; better, save "
            "a state_dict() instead of the object.")

    class U(pickle.Unpickler):
        def persistent_load(self, pid):
            _, i, dev, rg, param = pid
            return tensor(i, dev, rg, param)

    return U(io.BytesIO(z.read(_PREFIX + "data.pkl"))).load()


def _decode(o, array, tensor):
    if isinstance(o, list):
        return [_decode(v, array, tensor) for v in o]
    if not isinstance(o, dict):
        return o
    if "__tensor__" in o:
        return tensor(o["__tensor__"], o.get("device", "cpu"), o.get("requires_grad", False),
                      o.get("parameter", False))
    if "__dict__" in o or "__odict__" in o:
        items = o.get("__dict__", o.get("__odict__"))
        d = (OrderedDict if "__odict__" in o else dict)(
            (_key(_decode(k, array, tensor)), _decode(v, array, tensor)) for k, v in items)
        if "_metadata" in o:
            d._metadata = _decode(o["_metadata"], array, tensor)
        return d
    if "__counter__" in o:
        return Counter({_key(_decode(k, array, tensor)): _decode(v, array, tensor)
                        for k, v in o["__counter__"]})
    if "__tuple__" in o:
        return tuple(_decode(v, array, tensor) for v in o["__tuple__"])
    if "__ndarray__" in o:
        return array(o["__ndarray__"]).copy()
    if "__npscalar__" in o:
        return np.dtype(o["dtype"]).type(o["__npscalar__"])
    if "__dtype__" in o:
        return B.to_dtype(o["__dtype__"])
    if "__device__" in o:
        return B.device(o["__device__"])
    if "__bytes__" in o:
        return base64.b64decode(o["__bytes__"])
    if "__set__" in o:
        vals = [_key(_decode(v, array, tensor)) for v in o["__set__"]]
        return frozenset(vals) if o.get("frozen") else set(vals)
    if "__slice__" in o:
        return slice(*(_decode(v, array, tensor) for v in o["__slice__"]))
    raise LoadError(f"dyntorch.load: unknown entry in data.json: {sorted(o)[:3]}")


def _key(k):
    return tuple(_key(x) for x in k) if isinstance(k, list) else k


# ----------------------------------------------------------------------------- devices
def _target(saved: str, map_location) -> B.device:
    if map_location is None:
        return B.to_device(saved)
    if isinstance(map_location, dict):
        return B.to_device(map_location.get(saved, saved))
    return B.to_device(map_location)


def _place(arr: np.ndarray, saved: str, map_location) -> Tensor:
    if callable(map_location) and not isinstance(map_location, (str, B.device, dict)):
        t = _make(arr)
        out = map_location(t, saved)
        return out if isinstance(out, Tensor) else t
    dev = _target(saved, map_location)
    if dev.type == "cuda" and not B.cuda_available():
        raise LoadError(
            f"dyntorch.load: a tensor was saved on '{saved}', but CUDA is not available here. "
            "Pass map_location='cpu' to load it on the CPU.")
    return _make(B.move(arr, dev) if dev.type != "cpu" else arr)


def _parameter(t: Tensor, rg: bool) -> Tensor:
    try:
        from .nn.parameter import Parameter
    except ImportError:  # nn not available: a plain tensor that requires grad
        t._rg = bool(rg) and t._data.dtype.kind == "f"
        return t
    return Parameter(t, requires_grad=bool(rg) and t._data.dtype.kind == "f")


# ----------------------------------------------------------------------------- torch format
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "BFloat16Storage": "bfloat16",
}
_TORCH_DTYPES = {"float32": np.float32, "float": np.float32, "float64": np.float64,
                 "double": np.float64, "float16": np.float16, "half": np.float16,
                 "int64": np.int64, "long": np.int64, "int32": np.int32, "int": np.int32,
                 "int16": np.int16, "short": np.int16, "int8": np.int8, "uint8": np.uint8,
                 "bool": np.bool_, "bfloat16": "bfloat16"}


class _StorageType:
    """Stands for ``torch.FloatStorage`` & co. while unpickling: just a dtype."""

    def __init__(self, name: str, dtype):
        self.name, self.dtype = name, dtype


class _Storage:
    __slots__ = ("array", "location")

    def __init__(self, array: np.ndarray, location: str):
        self.array, self.location = array, location


class _ParamMarker:
    """Stands for ``torch.nn.Parameter`` as the type argument of ``_rebuild_from_type_v2``."""


def _codecs_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1"):
        raise LoadError(f"dyntorch.load: unexpected byte encoding {encoding!r} in the pickle")
    return text.encode(encoding)


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    # bfloat16 is the top half of a float32: widen the bits (exact)
    return (raw.astype(np.uint32) << 16).view(np.float32)


def _load_torch(z: zipfile.ZipFile, prefix: str, name: str, map_location, weights_only: bool):
    big = False
    if prefix + "byteorder" in z.namelist():
        big = z.read(prefix + "byteorder").strip() == b"big"
    storages: dict[str, _Storage] = {}

    def read_storage(stype: _StorageType, key: str, location: str, numel: int) -> _Storage:
        s = storages.get(key)
        if s is not None:
            return s
        raw = z.read(f"{prefix}data/{key}")
        if stype.dtype == "bfloat16":
            u = np.frombuffer(raw, dtype=">u2" if big else "<u2").astype(np.uint16)
            arr = _bf16_to_f32(u)
            nbytes = 2
        else:
            dt = np.dtype(stype.dtype)
            dt = dt.newbyteorder(">") if big and dt.itemsize > 1 else dt
            nbytes = dt.itemsize
            arr = np.frombuffer(raw, dtype=dt).astype(dt.newbyteorder("="), copy=True)
        if len(raw) < numel * nbytes:
            raise LoadError(f"dyntorch.load: '{name}': storage '{key}' holds {len(raw)} bytes "
                            f"but should hold {numel} elements of {stype.name}; the file is "
                            "truncated or corrupt.")
        s = _Storage(arr, str(location))
        storages[key] = s
        return s

    def rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None,
                       metadata=None):
        if not isinstance(storage, _Storage):
            raise LoadError(f"dyntorch.load: '{name}': a tensor refers to {type(storage)}, not "
                            "a storage; the file is corrupt or not a state dict")
        a = storage.array
        size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        if any(s == 0 for s in size):
            arr = np.zeros(size, dtype=a.dtype)
        else:
            last = offset + sum((n - 1) * st for n, st in zip(size, stride))
            if offset < 0 or last >= a.size or any(st < 0 for st in stride):
                raise LoadError(f"dyntorch.load: '{name}': a tensor of size {list(size)} and "
                                f"stride {list(stride)} at offset {offset} does not fit its "
                                f"storage of {a.size} elements; the file is corrupt.")
            it = a.itemsize
            arr = np.lib.stride_tricks.as_strided(a[offset:], shape=size,
                                                  strides=[s * it for s in stride]).copy()
        t = _place(arr, storage.location, map_location)
        if requires_grad and t._data.dtype.kind == "f":
            t._rg = True
        return t

    def rebuild_parameter(data, requires_grad, hooks=None, state=None):
        return _parameter(data, requires_grad)

    def rebuild_from_type_v2(func, new_type, args, state):
        out = func(*args)
        if new_type is _ParamMarker and isinstance(out, Tensor):
            out = _parameter(out, True)
        return out

    def torch_size(*args):
        return tuple(*args) if args else ()

    allowed = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
        ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
        ("torch._tensor", "_rebuild_from_type_v2"): rebuild_from_type_v2,
        ("torch.nn.parameter", "Parameter"): _ParamMarker,
        ("torch", "Tensor"): Tensor,
        ("torch", "Size"): torch_size,
        ("torch", "device"): lambda *a: B.device(*a),
        ("_codecs", "encode"): _codecs_encode,  # how protocol 2 pickles bytes (numpy arrays)
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("builtins", "tuple"): tuple,
        ("builtins", "list"): list,
        ("builtins", "dict"): dict,
    }

    class TorchUnpickler(pickle.Unpickler):
        def find_class(self, module: str, qualname: str):
            fn = allowed.get((module, qualname))
            if fn is not None:
                return fn
            if module == "torch" and qualname in _STORAGE_DTYPES:
                return _StorageType(qualname, _STORAGE_DTYPES[qualname])
            if module == "torch" and qualname in _TORCH_DTYPES:
                d = _TORCH_DTYPES[qualname]
                return B.from_np(np.float32 if d == "bfloat16" else d)
            if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray") and \
                    qualname in ("dtype", "scalar", "_reconstruct", "ndarray"):
                return super().find_class(module, qualname)
            if not weights_only and not module.startswith("torch"):
                return super().find_class(module, qualname)
            raise LoadError(
                f"dyntorch.load: '{name}' refers to the Python object `{module}.{qualname}`, "
                "which is not plain data. weights_only=True only rebuilds tensors, containers, "
                "numbers and strings." + (
                    " Pass weights_only=False if you trust the file (it can run code)."
                    if weights_only else " It needs torch itself, which dyntorch does not use; "
                    "save a state_dict() with torch instead."))

        def persistent_load(self, pid):
            if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
                raise LoadError(f"dyntorch.load: '{name}': unknown persistent id {pid!r}")
            _, stype, key, location, numel = pid
            if not isinstance(stype, _StorageType):
                raise LoadError(f"dyntorch.load: '{name}': unsupported storage type {stype!r}")
            return read_storage(stype, str(key), location, int(numel))

    return TorchUnpickler(io.BytesIO(z.read(prefix + "data.pkl"))).load()
