"""Writing PyTorch's zip checkpoint layout, so ``torch.load(f, weights_only=True)`` reads it.

The archive holds, under the folder ``archive/``:

* ``data.pkl``: the object tree, pickled (protocol 2). A tensor is written as a call of
  ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)``, a
  parameter as ``torch._utils._rebuild_parameter(tensor, requires_grad, hooks)``, dtypes as the
  globals ``torch.float32`` & co., devices as ``torch.device('cpu')``; storages are persistent
  ids ``('storage', torch.FloatStorage, key, location, numel)``;
* ``data/<key>``: each storage's raw bytes, little-endian, aligned to 64 bytes in the file;
* ``byteorder``, ``version`` (``3``), ``.format_version`` and ``.storage_alignment``.

Only these globals (plus ``collections.OrderedDict``, ``collections.Counter``, ``builtins.set``
and ``_codecs.encode`` for bytes) appear for plain data, all of which torch's weights-only
unpickler allows. Other objects are pickled as usual (NumPy arrays by NumPy's own reduction,
a whole module by its classes); loading those takes ``weights_only=False`` or safe globals, as
with torch.
"""
from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np

from .. import _backend as B
from .._tensor import Tensor

ARCHIVE = "archive"
ALIGN = 64

# dyntorch dtype name -> torch's storage class name (the typed storage torch pickles)
STORAGE_OF = {"float32": "FloatStorage", "float64": "DoubleStorage", "float16": "HalfStorage",
              "bfloat16": "BFloat16Storage", "int64": "LongStorage", "int32": "IntStorage",
              "int16": "ShortStorage", "int8": "CharStorage", "uint8": "ByteStorage",
              "bool": "BoolStorage"}


class _Global:
    """A name written as a pickle GLOBAL without importing it (torch need not be installed)."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle insists a reduce function be callable
        raise TypeError(f"{self.module}.{self.name} is a name written into a file, not code")


_GLOBALS: dict[tuple[str, str], _Global] = {}


def _g(module: str, name: str) -> _Global:
    # one object per name, so the pickler's memo writes each global once
    g = _GLOBALS.get((module, name))
    if g is None:
        g = _GLOBALS[(module, name)] = _Global(module, name)
    return g


class _StorageRef:
    """One storage to write: a flat array and its key in ``data/``."""

    __slots__ = ("array", "key", "location", "stype")

    def __init__(self, array: np.ndarray, key: str, location: str, stype: str):
        self.array, self.key, self.location, self.stype = array, key, location, stype


class _Storages:
    """Maps tensors to storages, so that views of one array share one storage as in torch."""

    def __init__(self):
        self.by_id: dict[int, _StorageRef] = {}
        self.order: list[_StorageRef] = []
        self._keep: list = []  # keeps arrays alive so their ids stay unique while saving

    def _new(self, flat: np.ndarray, location: str, stype: str) -> _StorageRef:
        ref = _StorageRef(flat, str(len(self.order)), location, stype)
        self.order.append(ref)
        return ref

    def place(self, t: Tensor) -> tuple[_StorageRef, int, tuple, tuple]:
        """(storage, offset, size, stride) in elements for tensor ``t``."""
        a = t._data
        location = "cpu" if a.__class__ is np.ndarray else f"cuda:{B.device_of(a).index or 0}"
        a = B.to_numpy(a)
        if not isinstance(a, np.ndarray):
            a = np.asarray(a)
        name = B.from_np(a.dtype).name if a.dtype.name != "bfloat16" else "bfloat16"
        stype = STORAGE_OF.get(name)
        if stype is None:
            raise TypeError(f"dyntorch.save: tensors of dtype {a.dtype} have no storage type "
                            "in PyTorch's format; convert them (.to(dyntorch.float32)) first")
        it = a.itemsize
        root = a
        while isinstance(root.base, np.ndarray):
            root = root.base
        if (root is not a and root.dtype == a.dtype and root.flags.c_contiguous
                and all(s >= 0 and s % it == 0 for s in a.strides) and a.size):
            off = a.__array_interface__["data"][0] - root.__array_interface__["data"][0]
            if off >= 0 and off % it == 0:
                ref = self.by_id.get(id(root))
                if ref is None:
                    self._keep.append(root)
                    ref = self.by_id[id(root)] = self._new(root.reshape(-1), location, stype)
                return ref, off // it, a.shape, tuple(s // it for s in a.strides)
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a) if a.ndim else a.copy()
        ref = self.by_id.get(id(a))
        if ref is None:
            self._keep.append(a)
            ref = self.by_id[id(a)] = self._new(a.reshape(-1), location, stype)
        stride, acc = [], 1
        for n in reversed(a.shape):
            stride.append(acc)
            acc *= max(n, 1)
        return ref, 0, a.shape, tuple(reversed(stride))


class _Pickler(pickle._Pickler):
    """The pure-Python pickler, taught to write torch's globals for tensors, dtypes, devices.

    (The C pickler cannot write a global it cannot import, and torch must not be needed.)
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, protocol: int, storages: _Storages):
        super().__init__(file, protocol=protocol, fix_imports=False)
        self.storages = storages

    def save_torch_global(self, obj: _Global) -> None:
        x = self.memo.get(id(obj))
        if x is not None:
            self.write(self.get(x[0]))
            return
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    def save_dtype(self, obj) -> None:  # torch pickles its dtypes as the globals torch.<name>
        self.save_torch_global(_g("torch", obj.name))

    dispatch[_Global] = save_torch_global
    dispatch[B.dtype] = save_dtype

    def persistent_id(self, obj):
        if obj.__class__ is _StorageRef:
            return ("storage", _g("torch", obj.stype), obj.key, obj.location, obj.array.size)
        return None

    def reducer_override(self, obj):
        if isinstance(obj, Tensor):
            ref, offset, size, stride = self.storages.place(obj)
            rg = bool(obj._requires_grad)
            t = (_g("torch._utils", "_rebuild_tensor_v2"),
                 (ref, offset, tuple(size), stride, rg and not _is_param(obj), OrderedDict()))
            if _is_param(obj):
                return (_g("torch._utils", "_rebuild_parameter"), (_Rebuilt(t), rg,
                                                                    OrderedDict()))
            return t
        if isinstance(obj, _Rebuilt):
            return obj.reduce
        if isinstance(obj, B.device):
            return (_g("torch", "device"), (str(obj),))
        return NotImplemented


class _Rebuilt:
    """The inner tensor of a parameter: written with the given reduce tuple."""

    __slots__ = ("reduce",)

    def __init__(self, reduce):
        self.reduce = reduce


def _is_param(t: Tensor) -> bool:
    return type(t).__name__ == "Parameter"


def _pad_extra(offset: int, name: str) -> bytes:
    # the bytes of a record start after its 30-byte local header, name and extra field;
    # a padding extra field (id 'FB', as torch writes) puts them on a 64-byte boundary
    start = offset + 30 + len(name.encode()) + 4
    pad = (-start) % ALIGN
    return struct.pack("<HH", 0x4246, pad) + b"Z" * pad


def write_archive(obj, fh, protocol: int = 2) -> None:
    """Write ``obj`` to the binary file ``fh`` in torch's zip layout."""
    storages = _Storages()
    buf = io.BytesIO()
    _Pickler(buf, protocol, storages).dump(obj)
    records = [("data.pkl", buf.getvalue()), ("byteorder", b"little"),
               (".format_version", b"1"), (".storage_alignment", str(ALIGN).encode())]
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
        for name, data in records:
            z.writestr(zipfile.ZipInfo(f"{ARCHIVE}/{name}", (1980, 1, 1, 0, 0, 0)), data)
        for ref in storages.order:
            name = f"{ARCHIVE}/data/{ref.key}"
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.extra = _pad_extra(z.fp.tell(), name)
            arr = ref.array
            if arr.dtype.byteorder == ">":
                arr = arr.astype(arr.dtype.newbyteorder("<"))
            z.writestr(info, memoryview(np.ascontiguousarray(arr).view(np.uint8)))
        z.writestr(zipfile.ZipInfo(f"{ARCHIVE}/version", (1980, 1, 1, 0, 0, 0)), b"3\n")
