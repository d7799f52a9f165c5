"""State of one ONNX export: names, initializers, emitted nodes, and which dims are dynamic.

Converters (``_ops.py``) read a traced node through this context and emit ONNX nodes with
``onnx.helper``. "Dynamic" dims are those that come from an input axis named in
``dynamic_axes``; shape-carrying ops (reshape, expand) consult them so the model runs with
other sizes on those axes.
"""
from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper

from ..jit._ir import Graph, Ref


class UnsupportedOperatorError(RuntimeError):
    """An op of the traced graph has no ONNX mapping."""


def onnx_dtype(np_dtype) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(np_dtype))


class ExportContext:
    def __init__(self, graph: Graph, opset: int):
        self.g = graph
        self.opset = opset
        self.nodes: list = []
        self.inits: list = []
        self.names: dict[int, str] = {}     # value index -> ONNX tensor name
        self.dyn: dict[int, set] = {}       # value index -> dynamic dims
        self._n = 0
        self._cache: dict = {}
        self.node = None                    # the traced node being converted
        self.used: set = set()              # value indices some node or output reads
        self.bases: set = set()             # traced sizes of the dynamic input axes
        self.axis_sources: dict = {}        # traced size -> (input name, axis) of a dyn axis

    # ------------------------------------------------------------------ names
    def fresh(self, hint: str = "t") -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def name(self, a) -> str:
        """ONNX name of a node argument (a Ref, or a literal made into a constant)."""
        if isinstance(a, Ref):
            return self.names[a.i]
        return self.scalar(a, self.out_dtype())

    def value(self, a):
        return self.g.values[a.i]

    def shape(self, a) -> tuple:
        return self.g.values[a.i].shape if isinstance(a, Ref) else ()

    def dtype(self, a) -> str:
        if isinstance(a, Ref):
            return self.g.values[a.i].dtype
        return self.out_dtype()

    def out_dtype(self, k: int = 0) -> str:
        return self.g.values[self.node.outs[k]].dtype

    def out_shape(self, k: int = 0) -> tuple:
        return self.g.values[self.node.outs[k]].shape

    def dyn_of(self, a) -> set:
        return self.dyn.get(a.i, set()) if isinstance(a, Ref) else set()

    # ------------------------------------------------------------------ constants
    def const(self, arr, hint: str = "const") -> str:
        arr = np.asarray(arr)
        key = (arr.dtype.str, arr.shape, arr.tobytes()) if arr.size <= 64 else None
        if key is not None and key in self._cache:
            return self._cache[key]
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(arr.copy(order="C"), name))  # keeps 0-d
        if key is not None:
            self._cache[key] = name
        return name

    def scalar(self, value, dtype) -> str:
        if value is None:
            return ""
        return self.const(np.asarray(value, dtype=np.dtype(dtype)), "scalar")

    def ints(self, values) -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), "ints")

    # ------------------------------------------------------------------ emitting
    def add(self, op_type: str, inputs: list, n_out: int = 1, outputs=None, **attrs) -> list:
        outs = outputs or [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outs),
                                           name=self.fresh("n_" + op_type), **attrs))
        return outs

    def add1(self, op_type: str, inputs: list, **attrs) -> str:
        return self.add(op_type, inputs, **attrs)[0]

    def unsupported(self, why: str = "") -> UnsupportedOperatorError:
        n = self.node
        scope = f" in module '{n.scope}'" if n.scope else " (at top level)"
        return UnsupportedOperatorError(
            f"onnx.export(): op '{n.op}'{scope} cannot be exported to ONNX opset "
            f"{self.opset}{': ' + why if why else ''}. Rewrite that part of the model with "
            "supported ops, or export a different opset_version.")

