"""Record a dynamic forward pass into a static :class:`~dyntorch.jit._ir.Graph`.

The tracer is a reader of the one door: it registers a forward observer with
``dyntorch._dispatch.add_hook`` and, for each op call, records the op's registered name, its
arguments (as references to values seen earlier, graph inputs or captured constants) and its
attributes. Tensors never seen before become named constants: parameters and buffers of a
traced module take their qualified names, anything else ``_const<k>``.
"""
from __future__ import annotations

import warnings

from .. import _dispatch as D
from .._tensor import Tensor
from ._ir import Graph, Node, Ref


class TracerWarning(Warning):
    """The trace may not generalise to other inputs (Python values taken from tensors ...)."""


_DATA_DEP = {
    "__bool__": "a Python boolean",
    "item": "a Python number",
    "tolist": "a Python list",
    "__index__": "a Python index",
    "__int__": "a Python integer",
    "__float__": "a Python float",
}


class Tracer:
    """Collects the graph of one forward call; use as a context manager."""

    def __init__(self, names: dict | None = None):
        self.g = Graph()
        self.ids: dict[int, int] = {}        # id(Tensor) -> value index
        self.vers: dict[int, int] = {}       # value index -> version when recorded
        self.dep: list[bool] = []            # value index -> depends on a graph input
        self.keep: list = []                 # keeps traced tensors alive so ids stay unique
        self.data_ids: dict[int, int] = {}   # id(array) of input-dependent values -> index
        self.names = names or {}             # id(param/buffer) -> qualified name
        self.nconst = 0
        self._remove = None
        self._saved: dict = {}
        self._depth = 0
        self.warned: set = set()

    # ------------------------------------------------------------------ values
    def _bind(self, t: Tensor, idx: int, dep: bool) -> int:
        self.ids[id(t)] = idx
        self.vers[idx] = t._version
        self.keep.append(t)
        while len(self.dep) <= idx:
            self.dep.append(False)
        self.dep[idx] = dep
        if dep:
            self.data_ids[id(t._data)] = idx
        return idx

    def add_input(self, t: Tensor, name: str) -> int:
        if not isinstance(t, Tensor):
            raise TypeError(f"jit.trace(): example inputs must be Tensors, got "
                            f"{type(t).__name__} for '{name}'")
        i = self.g.add_value("input", name, t._data.shape, t._data.dtype)
        self.g.inputs.append(i)
        if id(t) in self.ids:  # ops cannot tell the two apart: they all read the first one
            self.warn(f"the same tensor is passed as two example inputs ('{name}' and an "
                      "earlier one); the trace uses the first for both. Pass distinct tensors "
                      "(e.g. x.clone()) if they may differ.", key=("dup", i))
            return i
        return self._bind(t, i, True)

    def const(self, t: Tensor) -> int:
        name = self.names.get(id(t))
        if name is None:
            name = f"_const{self.nconst}"
            self.nconst += 1
        i = self.g.add_const(name, t._data)
        return self._bind(t, i, False)

    def ref(self, t: Tensor) -> Ref:
        i = self.ids.get(id(t))
        if i is None:
            return Ref(self.const(t))
        if t._version != self.vers[i]:
            self.warn(
                f"tensor %{self.g.values[i].name} was modified in place after it was recorded "
                f"(version {self.vers[i]} -> {t._version}); the trace replays the value before "
                "the change. Use out-of-place ops (`x = x + y` rather than `x += y`) in the "
                "traced forward.", key=("inplace", i))
            self.vers[i] = t._version
        return Ref(i)

    def arg(self, a):
        if isinstance(a, Tensor):
            return self.ref(a)
        if isinstance(a, tuple):
            return tuple(self.arg(x) for x in a)
        if isinstance(a, list):
            return [self.arg(x) for x in a]
        return a

    # ------------------------------------------------------------------ the hook
    def hook(self, op, args, attrs, result) -> None:
        rargs = tuple(self.arg(a) for a in args)
        dep = any(self.dep[r.i] for r in _refs(rargs))
        outs = result if isinstance(result, tuple) else (result,)
        idxs = []
        for t in outs:
            i = self.g.add_value("node", str(len(self.g.values)), t._data.shape, t._data.dtype)
            self._bind(t, i, dep)
            idxs.append(i)
        if attrs and self.data_ids:
            self._check_attrs(op, attrs)
        self.g.nodes.append(Node(op.name, rargs, dict(attrs), idxs, D.scope))

    def _check_attrs(self, op, attrs) -> None:
        """Arrays in attributes (index keys ...) are constants of the trace; warn when one is
        the data of a value computed from the inputs."""
        stack = list(attrs.values())
        while stack:
            a = stack.pop()
            if isinstance(a, (tuple, list)):
                stack.extend(a)
            elif hasattr(a, "__array_interface__") or hasattr(a, "__cuda_array_interface__"):
                i = self.data_ids.get(id(a))
                if i is None and getattr(a, "base", None) is not None:
                    i = self.data_ids.get(id(a.base))
                if i is not None:
                    self.warn(
                        f"{op.name}(): an index computed from the inputs (%"
                        f"{self.g.values[i].name}) is passed as an attribute, so the trace "
                        "records its current values as a constant; the graph will not follow "
                        "other inputs. Use index ops that take tensors (gather, index_select, "
                        "embedding) in traced code.", key=("index", i))

    def warn(self, msg: str, key=None) -> None:
        if key is not None:
            if key in self.warned:
                return
            self.warned.add(key)
        warnings.warn(msg, TracerWarning, stacklevel=4)

    # ------------------------------------------------------------------ data-dependent flow
    def _wrap_conversion(self, name: str, what: str):
        orig = getattr(Tensor, name)
        tracer = self

        def wrapped(t, *a, **k):
            i = tracer.ids.get(id(t))
            if tracer._depth == 0 and i is not None and tracer.dep[i]:
                tracer.warn(
                    f"Converting a tensor to {what} (Tensor.{name}) during tracing: the trace "
                    "cannot record how this Python value is used (e.g. in `if`/`for` or as a "
                    "size), so it is treated as a constant and the traced graph may be wrong "
                    "for other inputs.", key=(name, i))
            tracer._depth += 1
            try:
                return orig(t, *a, **k)
            finally:
                tracer._depth -= 1

        wrapped.__name__ = name
        return orig, wrapped

    def _wrap_index(self, name: str):
        orig = getattr(Tensor, name)
        tracer = self

        def wrapped(t, idx, *rest):
            for v in (idx if isinstance(idx, tuple) else (idx,)):
                i = tracer.ids.get(id(v)) if isinstance(v, Tensor) else None
                if i is not None and tracer.dep[i] and v._data.ndim > 0:
                    tracer.warn(
                        f"Tensor.{name} with an index tensor computed from the inputs (%"
                        f"{tracer.g.values[i].name}): the trace records its current values as "
                        "a constant, so the graph will not follow other inputs. Use "
                        "gather/index_select/embedding in traced code.", key=("index", i))
            return orig(t, idx, *rest)

        return orig, wrapped

    def _detach(self, orig):
        tracer = self

        def detach(t):
            r = orig(t)
            i = tracer.ids.get(id(t))
            if i is not None:  # same values, no graph: an alias of the same traced value
                tracer._bind(r, i, tracer.dep[i])
            return r

        return detach

    def __enter__(self):
        for name, what in _DATA_DEP.items():
            orig, wrapped = self._wrap_conversion(name, what)
            self._saved[name] = orig
            setattr(Tensor, name, wrapped)
        for name in ("__getitem__", "__setitem__"):
            orig, wrapped = self._wrap_index(name)
            self._saved[name] = orig
            setattr(Tensor, name, wrapped)
        self._saved["detach"] = Tensor.detach
        Tensor.detach = self._detach(Tensor.detach)
        self._remove = D.add_hook(self.hook)
        return self

    def __exit__(self, *exc):
        self._remove()
        for name, orig in self._saved.items():
            setattr(Tensor, name, orig)
        self._saved.clear()
        return False

    # ------------------------------------------------------------------ outputs
    def output(self, obj):
        """The nested structure of Refs for a forward's return value."""
        if isinstance(obj, Tensor):
            i = self.ids.get(id(obj))
            if i is None:
                self.warn("an output of the traced function was not computed by any dyntorch "
                          "op; it is saved as a constant.")
            return self.ref(obj)
        if isinstance(obj, tuple):
            return tuple(self.output(o) for o in obj)
        if isinstance(obj, list):
            return [self.output(o) for o in obj]
        raise TypeError(
            f"jit.trace(): the traced function must return a Tensor or a (nested) tuple/list "
            f"of Tensors, got {type(obj).__name__}")


def _refs(obj):
    if isinstance(obj, Ref):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _refs(o)
