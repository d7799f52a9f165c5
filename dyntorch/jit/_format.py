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
from ._ir import FUSED, Graph, Local, Node, Ref, Value

MAGIC = "dyntorch.jit"
FORMAT_VERSION = 1


class LoadError(RuntimeError):
    """A file that is not a readable dyntorch traced model."""


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
        return Ref(v)
    if tag in ("__in", "__step"):
        return Local(tag[2:], v)
    if tag == "__tuple":
        return tuple(_dec(o, arrays) for o in v)
    if tag == "__dict":
        return {k: _dec(x, arrays) for k, x in v.items()}
    if tag == "__dtype":
        return np.dtype(v)
    if tag == "__tdtype":
        return B.to_dtype(v)
    if tag == "__device":
        return B.device(v)
    if tag == "__slice":
        return slice(*(_dec(x, arrays) for x in v))
    if tag == "__ellipsis":
        return Ellipsis
    if tag == "__scalar":
        return np.dtype(v[0]).type(v[1])
    if tag == "__array":
        return arrays(v)
    raise LoadError(f"unknown tag {tag!r} in graph.json")


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
        path = os.fspath(path)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("graph.json", json.dumps(doc))
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
            z.writestr(key, buf.getvalue())


# ----------------------------------------------------------------------------- load
def load_graph(path) -> tuple[Graph, dict]:
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "<file object>"
    hint = ("Expected a file written by dyntorch.jit.save() / TracedModule.save(); model "
            "checkpoints from dyntorch.save() load with dyntorch.load().")
    try:
        z = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise LoadError(f"jit.load(): '{name}' is not a dyntorch traced model (not a zip "
                        f"archive, or truncated: {e}). {hint}") from None
    with z:
        try:
            doc = json.loads(z.read("graph.json"))
        except KeyError:
            raise LoadError(f"jit.load(): '{name}' is a zip archive without graph.json, so "
                            f"it is not a dyntorch traced model. {hint}") from None
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
            raise LoadError(f"jit.load(): '{name}' is damaged: graph.json cannot be read "
                            f"({e}). Save the model again.") from None
        if not isinstance(doc, dict) or doc.get("format") != MAGIC:
            raise LoadError(f"jit.load(): '{name}' has a graph.json that is not a dyntorch "
                            f"traced graph. {hint}")
        ver = doc.get("version")
        if ver != FORMAT_VERSION:
            raise LoadError(
                f"jit.load(): '{name}' uses traced-model format version {ver}, but this "
                f"dyntorch reads version {FORMAT_VERSION}. Re-save the model with this "
                "dyntorch version (or load it with the version that wrote it).")

        cache: dict = {}

        def array(key):
            if key not in cache:
                try:
                    cache[key] = np.load(io.BytesIO(z.read(key)), allow_pickle=False)
                except KeyError:
                    raise LoadError(f"jit.load(): '{name}' lacks {key}; the file is "
                                    "incomplete. Save the model again.") from None
                except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
                    raise LoadError(f"jit.load(): '{name}' is damaged: {key} cannot be read "
                                    f"({e}). Save the model again.") from None
            return cache[key]

        try:
            g = Graph()
            g.values = [Value(i, k, n, tuple(s), d)
                        for i, (k, n, s, d) in enumerate(doc["values"])]
            g.inputs = list(doc["inputs"])
            g.outputs = _dec(doc["outputs"], array)
            for nd in doc["nodes"]:
                steps = None
                if nd.get("steps") is not None:
                    steps = [(s[0], _dec(s[1], array), _dec(s[2], array), tuple(s[3]), s[4])
                             for s in nd["steps"]]
                g.nodes.append(Node(nd["op"], _dec(nd["args"], array),
                                    _dec(nd["attrs"], array), list(nd["outs"]),
                                    nd.get("scope", ""), steps))
                if nd["op"] == FUSED and steps is None:
                    raise LoadError("fused node without steps")
            for i, key in doc["consts"].items():
                g.consts[int(i)] = array(key)
        except LoadError:
            raise
        except (KeyError, TypeError, ValueError, IndexError) as e:
            raise LoadError(f"jit.load(): '{name}' has a malformed graph.json ({type(e).__name__}"
                            f": {e}). Save the model again.") from None
    return g, doc.get("meta", {})
