"""Reading dyntorch's first checkpoint format (``dyntorch/format`` + ``data.json`` + ``.npy``
arrays, or ``data.pkl`` for arbitrary objects), which ``dyntorch.save`` wrote before it wrote
PyTorch's layout. Nothing writes it any more; files already on disk keep loading."""
from __future__ import annotations

import base64
import io
import json
import pickle
from collections import Counter, OrderedDict

import numpy as np

from .. import _backend as B
from .._tensor import Tensor
from ._archive import Archive, LoadError, read_npy
from ._place import parameter, place
from ._unpickle import find_global, prescan, refusal

PREFIX = "dyntorch/"
MARKER = PREFIX + "format"


def load_legacy(ar: Archive, map_location, weights_only: bool):
    who, name = ar.who, ar.name

    def err(what: str) -> LoadError:
        return LoadError(f"{who}: '{name}' {what}; the file is damaged.")

    fmt = ar.read(MARKER).decode("utf-8", errors="replace")
    if not fmt.startswith("dyntorch-checkpoint "):
        raise LoadError(f"{who}: '{name}' has an unknown format tag {fmt[:40]!r}")
    cache: dict[int, np.ndarray] = {}

    def array(i) -> np.ndarray:
        if isinstance(i, bool) or not isinstance(i, int):
            raise err(f"refers to array {i!r}")
        a = cache.get(i)
        if a is None:
            key = f"{PREFIX}data/{i}.npy"
            a = cache[i] = read_npy(ar.read(key), f"record '{key}'", err)
        return a

    tensors: dict[int, Tensor] = {}

    def tensor(i, dev, rg, param):
        t = tensors.get(i)
        if t is None:
            if not isinstance(dev, str):
                raise err(f"names a device {dev!r}")
            t = place(array(i), dev, map_location, who, name)
            if param:
                t = parameter(t, bool(rg))
            elif rg and t._data.dtype.kind == "f":
                t._requires_grad = True
            tensors[i] = t
        return t

    if PREFIX + "data.json" in ar.infos:
        try:
            tree = json.loads(ar.read(PREFIX + "data.json"))
        except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
            raise err(f"has a malformed data.json ({type(e).__name__}: {e})") from None
        try:
            return _decode(tree, array, tensor, err)
        except RecursionError:
            raise err("nests data.json too deeply") from None
    if PREFIX + "data.pkl" not in ar.infos:
        raise err("has neither data.json nor data.pkl")

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, qualname: str):
            fn = find_global({}, module, qualname, weights_only)
            if fn is None:
                raise LoadError(refusal(who, name, module, qualname, weights_only))
            return fn

        def persistent_load(self, pid):
            if not isinstance(pid, tuple) or len(pid) != 5 or pid[0] != "tensor":
                raise err(f"has an unknown persistent id {pid!r:.80}")
            return tensor(*pid[1:])

    data = ar.read(PREFIX + "data.pkl")
    prescan(data, err)
    return Unpickler(io.BytesIO(data)).load()


def _decode(o, array, tensor, err):
    def d(x):
        return _decode(x, array, tensor, err)

    if isinstance(o, list):
        return [d(v) for v in o]
    if not isinstance(o, dict):
        return o
    if "__tensor__" in o:
        return tensor(o["__tensor__"], o.get("device", "cpu"), o.get("requires_grad", False),
                      o.get("parameter", False))
    if "__dict__" in o or "__odict__" in o:
        items = o.get("__dict__", o.get("__odict__"))
        out = (OrderedDict if "__odict__" in o else dict)(
            (_key(d(k)), d(v)) for k, v in items)
        if "_metadata" in o:
            out._metadata = d(o["_metadata"])
        return out
    if "__counter__" in o:
        return Counter({_key(d(k)): d(v) for k, v in o["__counter__"]})
    if "__tuple__" in o:
        return tuple(d(v) for v in o["__tuple__"])
    if "__ndarray__" in o:
        return array(o["__ndarray__"]).copy()
    if "__npscalar__" in o:
        dt = np.dtype(o["dtype"])
        if dt.kind not in "biuf":
            raise err(f"has a NumPy scalar of dtype {dt}")
        return dt.type(o["__npscalar__"])
    if "__dtype__" in o:
        return B.to_dtype(o["__dtype__"])
    if "__device__" in o:
        return B.device(o["__device__"])
    if "__bytes__" in o:
        return base64.b64decode(o["__bytes__"])
    if "__set__" in o:
        vals = [_key(d(v)) for v in o["__set__"]]
        return frozenset(vals) if o.get("frozen") else set(vals)
    if "__slice__" in o:
        return slice(*(d(v) for v in o["__slice__"]))
    raise err(f"has an unknown entry in data.json: {sorted(o)[:3]}")


def _key(k):
    return tuple(_key(x) for x in k) if isinstance(k, list) else k
