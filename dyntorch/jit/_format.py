"""The saved form of a traced graph: a zip holding ``graph.json`` and one ``.npy`` per constant.

The JSON names every op by its registry name, so a file needs only dyntorch to run, not the
code of the model that produced it. ``FORMAT_VERSION`` changes when the layout does; a reader
refuses files of a version it does not know.
"""
from __future__ import annotations

import io
import json
import os
import zipfile

import numpy as np

from .. import _backend as B
from ..serialization import LoadError as SerializationLoadError
from ..serialization import atomic_write, check_shape
from ._ir import FUSED, Graph, Local, Node, Ref, Value, iter_locals, iter_refs

MAGIC = "dyntorch.jit"
FORMAT_VERSION = 1


class LoadError(SerializationLoadError):
    """A file that is not a readable dyntorch traced model (also a
    ``dyntorch.serialization.LoadError``)."""


# ----------------------------------------------------------------------------- encoding
def _enc(obj, arrays: dict, where: str):
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Ref):
        return {"__ref": obj.i}
    if isinstance(obj, Local):
        return {"__" + obj.kind: obj.k}
    if isinstance(obj, tuple):
        return {"__tuple": [_enc(o, arrays, where) for o in obj]}
    if isinstance(obj, list):
        return [_enc(o, arrays, where) for o in obj]
    if isinstance(obj, dict):
        return {"__dict": {str(k): _enc(v, arrays, where) for k, v in obj.items()}}
    if isinstance(obj, np.dtype) or (isinstance(obj, type) and issubclass(obj, np.generic)):
        return {"__dtype": np.dtype(obj).name}
    if isinstance(obj, B.dtype):
        return {"__tdtype": obj.name}
    if isinstance(obj, B.device):
        return {"__device": str(obj)}
    if isinstance(obj, slice):
        return {"__slice": [_enc(x, arrays, where) for x in (obj.start, obj.stop, obj.step)]}
    if obj is Ellipsis:
        return {"__ellipsis": True}
    if isinstance(obj, np.generic):
        return {"__scalar": [obj.dtype.name, obj.item()]}
    if isinstance(obj, B.ARRAY_TYPES):
        key = f"attrs/{len(arrays)}.npy"
        arrays[key] = B.to_numpy(obj)
        return {"__array": key}
    raise TypeError(f"jit.save(): cannot serialise argument {obj!r} of type "
                    f"{type(obj).__name__} in {where}")


def _dec(obj, arrays):
    if isinstance(obj, list):
        return [_dec(o, arrays) for o in obj]
    if not isinstance(obj, dict):
        return obj
    (tag, v), = obj.items()
    if tag == "__ref":
        return Ref(_index(v))
    if tag in ("__in", "__step"):
        return Local(tag[2:], _index(v))  # an int: it is spliced into generated code
    if tag == "__tuple":
        return tuple(_dec(o, arrays) for o in v)
    if tag == "__dict":
        return {k: _dec(x, arrays) for k, x in v.items()}
    if tag == "__dtype":
        return _np_plain(v)
    if tag == "__tdtype":
        return B.to_dtype(v)
    if tag == "__device":
        return B.device(v)
    if tag == "__slice":
        return slice(*(_dec(x, arrays) for x in v))
    if tag == "__ellipsis":
        return Ellipsis
    if tag == "__scalar":
        if not isinstance(v[1], (bool, int, float)):
            raise ValueError(f"scalar {v!r:.40}")
        return _np_plain(v[0]).type(v[1])
    if tag == "__array":
        return arrays(v)
    raise ValueError(f"unknown tag {tag!r:.40}")


def _index(v) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"index {v!r:.40} is not an int")
    return v


def _np_plain(name) -> np.dtype:
    dt = np.dtype(name)
    if dt.kind not in "biuf" or dt.fields is not None:
        raise ValueError(f"dtype {dt} is not a plain numeric dtype")
    return dt


def _enc_steps(steps, arrays, where):
    if steps is None:
        return None
    return [[s[0], _enc(s[1], arrays, where), _enc(s[2], arrays, where), list(s[3]), s[4]]
            for s in steps]


# ----------------------------------------------------------------------------- save
def _dyntorch_version() -> str:
    from .. import __version__

    return __version__


def save_graph(graph: Graph, path, meta: dict | None = None) -> None:
    arrays: dict = {}
    nodes = []
    for n in graph.nodes:
        where = f"op '{n.op}'" + (f" (scope '{n.scope}')" if n.scope else "")
        nodes.append({"op": n.op, "args": _enc(n.args, arrays, where),
                      "attrs": _enc(n.attrs, arrays, where), "outs": list(n.outs),
                      "scope": n.scope, "steps": _enc_steps(n.steps, arrays, where)})
    consts = {}
    for i, a in graph.consts.items():
        key = f"consts/{i}.npy"
        arrays[key] = B.to_numpy(a)
        consts[str(i)] = key
    doc = {
        "format": MAGIC,
        "version": FORMAT_VERSION,
        "dyntorch": _dyntorch_version(),
        "meta": meta or {},
        "values": [[v.kind, v.name, list(v.shape), v.dtype] for v in graph.values],
        "inputs": list(graph.inputs),
        "outputs": _enc(graph.outputs, arrays, "outputs"),
        "nodes": nodes,
        "consts": consts,
    }
    if isinstance(path, (str, os.PathLike)):
        with atomic_write(path) as fh:  # a kill mid-save keeps the previous file whole
            _write(fh, doc, arrays)
    else:
        _write(path, doc, arrays)


def _write(fh, doc: dict, arrays: dict) -> None:
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("graph.json", json.dumps(doc))
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
            z.writestr(key, buf.getvalue())


# ----------------------------------------------------------------------------- load
_HINT = ("Expected a file written by dyntorch.jit.save() / TracedModule.save(); model "
         "checkpoints from dyntorch.save() load with dyntorch.load().")
_KINDS = ("input", "const", "node")


def _plain_dtype(name, err) -> np.dtype:
    try:
        dt = np.dtype(name)
    except (TypeError, ValueError) as e:
        raise err(f"names an unknown dtype {name!r:.40} ({e})") from None
    if dt.kind not in "biuf" or dt.fields is not None:
        raise err(f"names dtype {dt}, which no traced value has")
    return dt


def _int(v, what: str, hi: int, err) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < hi:
        raise err(f"has {what} {v!r:.40}, outside 0..{hi - 1}")
    return v


def _check_graph(g: Graph, err) -> None:
    """Refuse a graph that could fail at call time: every reference is to a value defined
    before it is used, every local of a fused chain is in range, every constant is present
    with its recorded shape and dtype, and every op is registered with a signature that
    accepts the recorded arguments."""
    import inspect

    from ._run import UnknownOpError, resolve_op

    n = len(g.values)
    defined = set()
    for i in g.inputs:
        if g.values[_int(i, "an input index", n, err)].kind != "input":
            raise err(f"lists value {i} as an input, but it is a {g.values[i].kind}")
        defined.add(i)
    for i, arr in g.consts.items():
        v = g.values[_int(i, "a constant index", n, err)]
        if v.kind != "const":
            raise err(f"stores a constant for value {i}, which is a {v.kind}")
        if tuple(arr.shape) != v.shape or arr.dtype.name != v.dtype:
            raise err(f"has constant '{v.name}' of {arr.dtype.name}{list(arr.shape)}, but the "
                      f"graph says {v.dtype}{list(v.shape)}")
        defined.add(i)
    missing = [v.name for v in g.values if v.kind == "const" and v.idx not in g.consts]
    sigs: dict = {}

    def check_call(op_name: str, args, attrs, where: str) -> None:
        try:
            op = resolve_op(op_name, where)
        except UnknownOpError as e:
            raise err(f"uses an unknown op: {e}") from None
        if not isinstance(attrs, dict):
            raise err(f"gives op '{op_name}'{where} attributes {attrs!r:.40}")
        sig = sigs.get(op_name)
        if sig is None:
            try:
                sig = sigs[op_name] = inspect.signature(op.forward)
            except (TypeError, ValueError):
                return  # a builtin without a signature: nothing to check against
        try:
            sig.bind(None, *args, **attrs)
        except TypeError as e:
            raise err(f"calls op '{op_name}'{where} with arguments its forward does not take "
                      f"({e})") from None

    for k, node in enumerate(g.nodes):
        where = f" (node {k}" + (f", scope '{node.scope}')" if node.scope else ")")
        if not isinstance(node.op, str) or not isinstance(node.args, (list, tuple)):
            raise err(f"has a malformed node {k}")
        for r in iter_refs((node.args, node.attrs)):
            i = _int(r.i, f"a reference in node {k}", n, err)
            if i not in defined:
                if g.values[i].kind == "const":
                    raise err(f"refers to constant '{g.values[i].name}' in node {k}, but the "
                              "file does not hold it")
                raise err(f"uses value {i} in node {k} before any node computes it")
        if not node.outs:
            raise err(f"has node {k} without outputs")
        for o in node.outs:
            if g.values[_int(o, f"an output of node {k}", n, err)].kind != "node" or \
                    o in defined:
                raise err(f"has node {k} writing value {o}, which is not a fresh node value")
            defined.add(o)
        if node.op == FUSED:
            if not isinstance(node.steps, list) or not node.steps:
                raise err(f"has fused node {k} without steps")
            for j, st in enumerate(node.steps):
                if not isinstance(st[0], str) or not isinstance(st[1], (list, tuple)):
                    raise err(f"has a malformed step {j} in fused node {k}")
                check_shape(st[3], f"step {j} of fused node {k}", err)
                _plain_dtype(st[4], err)
                for a in iter_locals(st[1]):
                    hi = len(node.args) if a.kind == "in" else j
                    _int(a.k, f"a local ${a.kind} in step {j} of fused node {k}", max(hi, 0),
                         err)
                check_call(st[0], [None] * len(st[1]), st[2], where)
        else:
            check_call(node.op, node.args, node.attrs, where)
    outs = list(iter_refs(g.outputs))
    if not outs and g.outputs is not None and not isinstance(g.outputs, (tuple, list)):
        raise err(f"has outputs {g.outputs!r:.40}, which are not values")
    for r in outs:
        i = _int(r.i, "an output reference", n, err)
        if i not in defined:
            raise err(f"returns value {i}, which nothing computes")
    if missing and any(g.values[i].kind == "const" for i in (r.i for r in outs)):
        raise err(f"lacks constants {missing[:3]}")




def load_graph(path) -> tuple[Graph, dict]:
    """The graph and metadata in a traced-model file, checked so that a damaged file fails
    here with :class:`LoadError` rather than when the model is called."""
    from ..serialization import file_name, open_archive

    who = "jit.load()"
    name = file_name(path) if isinstance(path, (str, os.PathLike)) else "<file object>"
    own = isinstance(path, (str, os.PathLike))
    if own and not os.path.exists(path):
        raise FileNotFoundError(f"{who}: no such file: '{name}'")
    fh = open(path, "rb") if own else path
    try:
        head = fh.read(4)
        fh.seek(0)
        if not head.startswith(b"PK"):
            raise LoadError(f"{who}: '{name}' is not a dyntorch traced model (not a zip "
                            f"archive). {_HINT}")
        try:
            ar = open_archive(fh, name, who)
        except SerializationLoadError as e:
            raise LoadError(f"{e} {_HINT}") from None
        with ar.z:
            return _read_graph(ar, name, who)
    finally:
        if own:
            fh.close()


def _read_graph(ar, name: str, who: str) -> tuple[Graph, dict]:
    from ..serialization import read_npy

    def err(what: str) -> LoadError:
        return LoadError(f"{who}: '{name}' {what}; the file is damaged. Save the model again.")

    if "graph.json" not in ar.infos:
        raise LoadError(f"{who}: '{name}' is a zip archive without graph.json, so it is not a "
                        f"dyntorch traced model. {_HINT}")
    try:
        doc = json.loads(_as_loaderror(ar.read, "graph.json"))
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise err(f"has a graph.json that cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(doc, dict) or doc.get("format") != MAGIC:
        raise LoadError(f"{who}: '{name}' has a graph.json that is not a dyntorch traced "
                        f"graph. {_HINT}")
    ver = doc.get("version")
    if ver != FORMAT_VERSION:
        raise LoadError(
            f"{who}: '{name}' uses traced-model format version {ver!r:.20}, but this dyntorch "
            f"reads version {FORMAT_VERSION}. Re-save the model with this dyntorch version "
            "(or load it with the version that wrote it).")
    cache: dict = {}

    def array(key):
        if not isinstance(key, str):
            raise err(f"refers to array {key!r:.40}")
        if key not in cache:
            cache[key] = read_npy(_as_loaderror(ar.read, key), f"record '{key}'", err)
        return cache[key]

    try:
        g = Graph()
        for i, (k, nm, shp, dt) in enumerate(doc["values"]):
            if k not in _KINDS or not isinstance(nm, str):
                raise err(f"has a malformed value {i}")
            g.values.append(Value(i, k, nm, check_shape(shp, f"value {i}", err),
                                  _plain_dtype(dt, err).name))
        g.inputs = list(doc["inputs"])
        g.outputs = _dec(doc["outputs"], array)
        for nd in doc["nodes"]:
            steps = None
            if nd.get("steps") is not None:
                steps = [(s[0], _dec(s[1], array), _dec(s[2], array), tuple(s[3]), s[4])
                         for s in nd["steps"]]
            g.nodes.append(Node(nd["op"], _dec(nd["args"], array), _dec(nd["attrs"], array),
                                list(nd["outs"]), nd.get("scope", "") or "", steps))
        for i, key in doc["consts"].items():
            g.consts[int(i)] = array(key)
        _check_graph(g, err)
    except LoadError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError,
            OverflowError) as e:
        raise err(f"has a malformed graph.json ({type(e).__name__}: {e})") from None
    meta = doc.get("meta", {})
    return g, meta if isinstance(meta, dict) else {}


def _as_loaderror(read, key):
    try:
        return read(key)
    except SerializationLoadError as e:
        raise LoadError(str(e)) from None
