"""The static graph a trace produces: values, nodes, and a readable print-out.

A :class:`Graph` is plain data. Each value has an index; a node's arguments are either
:class:`Ref` (a reference to a value) or Python literals (numbers, tuples, None, dtypes), kept
exactly as the op received them through the dispatch door, so that replay can call the
registered ``OpDef.forward`` with the same arguments.
"""
from __future__ import annotations

import numpy as np

# torch's short type names in IR print-outs (Float(32, 10)).
_TYPE_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long",
               "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
               "bool": "Bool"}

FUSED = "prim::fused"  # op name of a fused elementwise chain (see jit/_fusion.py)


class Ref:
    """A reference to value ``i`` of the graph, used inside node arguments."""

    __slots__ = ("i",)

    def __init__(self, i: int):
        self.i = i

    def __repr__(self) -> str:
        return f"Ref({self.i})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Ref) and other.i == self.i

    def __hash__(self) -> int:
        return hash(("Ref", self.i))


class Local:
    """Inside a fused node's steps: the node's ``k``-th argument (kind "in") or the result of
    step ``k`` (kind "step")."""

    __slots__ = ("kind", "k")

    def __init__(self, kind: str, k: int):
        self.kind = kind
        self.k = k

    def __repr__(self) -> str:
        return f"${self.kind}{self.k}"


class Value:
    """One value of the graph: a graph input, a constant, or the output of a node."""

    __slots__ = ("idx", "kind", "name", "shape", "dtype")

    def __init__(self, idx: int, kind: str, name: str, shape: tuple, dtype: str):
        self.idx = idx
        self.kind = kind  # "input" | "const" | "node"
        self.name = name
        self.shape = tuple(shape)
        self.dtype = dtype if isinstance(dtype, str) else np.dtype(dtype).name  # "float32"

    def type_str(self) -> str:
        t = _TYPE_NAMES.get(self.dtype, self.dtype)
        return f"{t}({', '.join(str(s) for s in self.shape)})"


class Node:
    """One recorded op call: ``outs = op(*args, **attrs)`` inside module ``scope``.

    A fused node (``op == FUSED``) carries its chain in ``steps``: a list of
    ``(op_name, args, attrs)`` whose args are ``("in", k)`` (the node's k-th argument),
    ``("step", j)`` (the result of step j) or literals.
    """

    __slots__ = ("op", "args", "attrs", "outs", "scope", "steps")

    def __init__(self, op: str, args: tuple, attrs: dict, outs: list, scope: str = "",
                 steps=None):
        self.op = op
        self.args = args
        self.attrs = attrs
        self.outs = outs
        self.scope = scope
        self.steps = steps

    def refs(self):
        """Indices of the values this node reads."""
        return [r.i for r in iter_refs(self.args)]


def iter_refs(obj):
    """Every :class:`Ref` inside a nested argument structure."""
    if isinstance(obj, Ref):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from iter_refs(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from iter_refs(o)


def iter_locals(obj):
    """Every :class:`Local` inside a nested argument structure (a fused chain's steps)."""
    if isinstance(obj, Local):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from iter_locals(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from iter_locals(o)


def map_refs(obj, fn):
    """Copy of a nested argument structure with each Ref replaced by ``fn(ref)``."""
    if isinstance(obj, Ref):
        return fn(obj)
    if isinstance(obj, tuple):
        return tuple(map_refs(o, fn) for o in obj)
    if isinstance(obj, list):
        return [map_refs(o, fn) for o in obj]
    return obj


class Graph:
    """A traced program: ``inputs`` -> ``nodes`` -> ``outputs``, plus captured constants."""

    def __init__(self):
        self.values: list[Value] = []
        self.nodes: list[Node] = []
        self.inputs: list[int] = []
        self.outputs = None  # nested structure (tuple/list) of Refs, or a single Ref
        self.consts: dict[int, object] = {}  # value index -> array (NumPy or CuPy)

    # ------------------------------------------------------------------ building
    def add_value(self, kind: str, name: str, shape, dtype) -> int:
        v = Value(len(self.values), kind, name, shape, np.dtype(dtype).name)
        self.values.append(v)
        return v.idx

    def add_const(self, name: str, arr) -> int:
        i = self.add_value("const", name, arr.shape, arr.dtype)
        self.consts[i] = arr
        return i

    def output_refs(self) -> list[Ref]:
        return list(iter_refs(self.outputs))

    def copy(self) -> Graph:
        g = Graph()
        g.values = [Value(v.idx, v.kind, v.name, v.shape, v.dtype) for v in self.values]
        g.nodes = [Node(n.op, n.args, dict(n.attrs), list(n.outs), n.scope, n.steps)
                   for n in self.nodes]
        g.inputs = list(self.inputs)
        g.outputs = self.outputs
        g.consts = dict(self.consts)
        return g

    # ------------------------------------------------------------------ printing
    def _vname(self, i: int) -> str:
        v = self.values[i]
        return f"%{v.name}"

    def _fmt(self, a) -> str:
        if isinstance(a, Ref):
            return self._vname(a.i)
        if isinstance(a, tuple):
            inner = ", ".join(self._fmt(x) for x in a)
            return f"({inner}{',' if len(a) == 1 else ''})"
        if isinstance(a, list):
            return "[" + ", ".join(self._fmt(x) for x in a) + "]"
        if isinstance(a, (type, np.dtype)):
            return np.dtype(a).name
        if isinstance(a, np.ndarray):
            return f"<array {a.dtype.name}{list(a.shape)}>"
        return repr(a)

    def node_str(self, n: Node) -> str:
        outs = ", ".join(f"{self._vname(o)} : {self.values[o].type_str()}" for o in n.outs)
        args = [self._fmt(a) for a in n.args]
        args += [f"{k}={self._fmt(v)}" for k, v in n.attrs.items()]
        op = n.op
        if n.steps is not None:
            op = FUSED + "[" + " -> ".join(s[0] for s in n.steps) + "]"
        line = f"  {outs} = {op}({', '.join(args)})"
        if n.scope:
            line += f"  # {n.scope}"
        return line

    def __str__(self) -> str:
        heads = [f"{self._vname(i)} : {self.values[i].type_str()}" for i in self.inputs]
        used = sorted({r for n in self.nodes for r in n.refs()
                       if self.values[r].kind == "const"}
                      | {r.i for r in self.output_refs() if self.values[r.i].kind == "const"})
        heads += [f"{self._vname(i)} : {self.values[i].type_str()}" for i in used]
        sep = ",\n      "
        lines = [f"graph({sep.join(heads)}):"]
        lines += [self.node_str(n) for n in self.nodes]
        lines.append(f"  return ({self._fmt(self.outputs)})")
        return "\n".join(lines) + "\n"

    __repr__ = __str__

    def op_counts(self) -> dict:
        out: dict = {}
        for n in self.nodes:
            out[n.op] = out.get(n.op, 0) + 1
        return out
