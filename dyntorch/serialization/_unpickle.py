"""The unpickler that rebuilds data and nothing else (``weights_only=True``).

Every global a file names is looked up in a table of functions written here that only build
plain data (tensors, containers, dtypes, devices), then in the user's safe globals; anything
else is refused. With ``weights_only=False`` other globals are imported as ``pickle`` does,
which can run code from the file: only for files the user trusts, as with ``torch.load``.
"""
from __future__ import annotations

import io
import pickle
import pickletools
from collections import Counter, OrderedDict

import numpy as np

try:
    from numpy._core.multiarray import scalar as _scalar
except ImportError:  # numpy < 2
    from numpy.core.multiarray import scalar as _scalar

from .. import _backend as B
from . import _safe_globals
from ._archive import check_shape, numel

_NUMPY_MODULES = ("numpy", "numpy.core.multiarray", "numpy._core.multiarray",
                  "numpy.core.numeric", "numpy._core.numeric")


def prescan(data: bytes, err) -> None:
    """Walk the pickle's opcodes once before unpickling.

    The C unpickler allocates a string or bytes object of the length a header states before
    reading it; a damaged length could ask for gigabytes. ``pickletools`` reads such lengths
    against the bytes present, so a lie fails here, cheaply (a checkpoint's pickle is small:
    the tensor data lives in other records).
    """
    try:
        puts = 0
        for op, arg, _ in pickletools.genops(io.BytesIO(data)):
            # the unpickler grows its memo table to the largest index it is told to fill
            # (and clears every new slot): a damaged index could ask for gigabytes
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                if op.name != "MEMOIZE" and int(arg) > puts + 16:
                    raise ValueError(f"memo index {arg} where at most {puts} were filled")
                puts += 1
    except Exception as e:  # any parse failure is damage: name it
        raise err(f"has a damaged pickle ({type(e).__name__}: {e})") from None


def _np_dtype(*args):
    d = np.dtype(args[0]) if args else None
    if d is None or d.hasobject or d.kind not in "biufcSUV" or d.fields is not None:
        raise pickle.UnpicklingError(f"numpy dtype {args!r} is not a plain numeric dtype")
    return np.dtype(*args[:1])


class Marker:
    """Stands for a class a file names only as an argument (``numpy.ndarray`` for
    ``_reconstruct``): an instance, not a class, so the pickle cannot call or instantiate it
    (``np.ndarray(shape)`` would allocate whatever shape the file says)."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


NDARRAY = Marker("numpy.ndarray")


def _np_reconstruct(cls, shape, typecode):
    # numpy pickles an array as _reconstruct(ndarray, (0,), b'b') followed by its state; a
    # damaged shape here would be allocated at once, so it must be the tiny placeholder
    if cls is not NDARRAY:
        raise pickle.UnpicklingError(f"numpy _reconstruct of {cls!r}")
    shape = check_shape(shape, "a numpy array", pickle.UnpicklingError)
    if numel(shape) > 16:
        raise pickle.UnpicklingError(f"numpy _reconstruct asks for shape {shape}")
    return np.ndarray.__new__(np.ndarray, shape, typecode)


def _np_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise pickle.UnpicklingError(f"numpy scalar of dtype {dtype!r}")
    return _scalar(dtype, data)


def _codecs_encode(text, encoding="latin1") -> bytes:
    # how protocol 2 pickles bytes
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"unexpected _codecs.encode({type(text).__name__}, "
                                     f"{encoding!r})")
    return text.encode("latin1")


def _slice(*a):
    return slice(*a)


def _checked(fn, types):
    def build(*args):
        if len(args) > 1 or (args and not isinstance(args[0], types)):
            raise pickle.UnpicklingError(f"{fn.__name__}() of {[type(a).__name__ for a in args]}")
        return fn(*args)
    build.__name__ = fn.__name__
    return build


_CONTAINERS = (list, tuple, set, frozenset, dict)

BASE_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "Counter"): Counter,
    ("builtins", "set"): _checked(set, _CONTAINERS),
    ("builtins", "frozenset"): _checked(frozenset, _CONTAINERS),
    ("builtins", "slice"): _slice,
    ("builtins", "complex"): complex,
    ("builtins", "bytearray"): _checked(bytearray, (bytes, bytearray, list)),
    ("_codecs", "encode"): _codecs_encode,
}
for _m in _NUMPY_MODULES:
    BASE_GLOBALS[(_m, "_reconstruct")] = _np_reconstruct
    BASE_GLOBALS[(_m, "scalar")] = _np_scalar
BASE_GLOBALS[("numpy", "dtype")] = _np_dtype
BASE_GLOBALS[("numpy", "ndarray")] = NDARRAY
# dyntorch's own dtypes pickle as _dtype_by_name('float32')
BASE_GLOBALS[("dyntorch._backend", "_dtype_by_name")] = _checked(B.to_dtype, str)


def refusal(who: str, name: str, module: str, qualname: str, weights_only: bool) -> str:
    full = f"{module}.{qualname}"
    if weights_only:
        return (f"{who}: '{name}' refers to the Python object `{full}`, which is not plain "
                "data, and weights_only=True only rebuilds tensors, containers, numbers and "
                "strings. If you trust the file and `" + full + "` is safe, allow it with "
                f"`dyntorch.serialization.add_safe_globals([{qualname}])` (or the "
                "`safe_globals([...])` context manager); or pass weights_only=False, which "
                "can run code from the file.")
    return (f"{who}: '{name}' refers to `{full}`, which needs torch itself and dyntorch does "
            "not use torch; save a state_dict() with torch instead.")


def find_global(table: dict, module: str, qualname: str, weights_only: bool):
    """What ``module.qualname`` stands for, or None when it is not allowed."""
    fn = table.get((module, qualname))
    if fn is None:
        fn = BASE_GLOBALS.get((module, qualname))
    if fn is None:
        fn = _safe_globals.lookup(module, qualname)
    if fn is None and not weights_only and not module.startswith("torch"):
        fn = pickle.Unpickler.find_class(_PLAIN, module, qualname)
    return fn


_PLAIN = pickle.Unpickler(io.BytesIO(b""))
