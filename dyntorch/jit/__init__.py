"""From research to deployment: trace a dynamic forward into a static graph, save, load, replay.

``trace(model, example_inputs)`` runs the forward once while a dispatch hook records every op
(see ``_tracer.py``); the result is a :class:`TracedModule` that replays the graph with NumPy or
CuPy only, prints its IR (``.graph``) and saves itself as a self-contained zip (``.save``).
``load(path)`` needs dyntorch, not the model's code.

Example
-------
>>> traced = dyntorch.jit.trace(model.eval(), torch.randn(8, 10))
>>> print(traced.graph)                       # one line per op, with shapes
>>> fast = dyntorch.jit.optimize_for_inference(traced)   # fold constants, fuse elementwise
>>> fast.save("model.dtj"); dyntorch.jit.load("model.dtj")(x)
"""
from __future__ import annotations

import inspect
import os
import warnings

from .. import _backend as B
from .._tensor import Tensor, _make
from ._format import FORMAT_VERSION, LoadError, load_graph, save_graph
from ._ir import Graph
from ._passes import (  # noqa: F401  (the passes, for users who run them one by one)
    compact,
    dce,
    fold_batchnorm,
    fold_constants,
    fuse_elementwise,
    optimize,
)
from ._run import Plan, UnknownOpError
from ._tracer import Tracer, TracerWarning

__all__ = ["trace", "load", "save", "TracedModule", "ScriptModule", "TracerWarning",
           "optimize_for_inference", "freeze", "LoadError", "UnknownOpError", "FORMAT_VERSION",
           "script", "is_tracing", "is_scripting", "ignore", "unused", "export", "annotate"]

_TRACING = [0]


def is_tracing() -> bool:
    """True while :func:`trace` records a forward (model code may branch on it)."""
    return _TRACING[0] > 0


def is_scripting() -> bool:
    """Always False: dyntorch has no TorchScript compiler."""
    return False


def script(obj, *args, **kwargs):
    """Not available: dyntorch records graphs by tracing, it does not compile Python."""
    raise NotImplementedError(
        "dyntorch.jit.script: dyntorch has no TorchScript compiler. Use "
        "dyntorch.jit.trace(model.eval(), example_inputs) to get a static graph that saves, "
        "loads and exports to ONNX.")


def ignore(fn=None, **_kw):
    """Decorator kept for torch compatibility (no effect under tracing)."""
    return fn if fn is not None else (lambda f: f)


unused = export = ignore


def annotate(the_type, the_value):
    return the_value


class TracedModule:
    """A static graph with the call interface of the module it was traced from.

    Calling it replays the graph on the inputs' device with NumPy/CuPy; outputs are tensors
    that do not require grad.
    """

    def __init__(self, graph: Graph, name: str = "TracedModule", meta: dict | None = None):
        self._graph = graph
        self._name = name
        self._plan = None
        self.meta = dict(meta or {})
        self.training = False

    # ------------------------------------------------------------------ running
    @property
    def plan(self) -> Plan:
        if self._plan is None:
            self._plan = Plan(self._graph)
        return self._plan

    def __call__(self, *inputs):
        g = self._graph
        if len(inputs) != len(g.inputs):
            names = ", ".join(g.values[i].name for i in g.inputs)
            raise TypeError(f"{self._name}(): expected {len(g.inputs)} input(s) ({names}), "
                            f"got {len(inputs)}")
        arrays = []
        for k, (x, i) in enumerate(zip(inputs, g.inputs)):
            a = x._data if isinstance(x, Tensor) else x
            if not isinstance(a, B.ARRAY_TYPES):
                a = B.np.asarray(a)
            v = g.values[i]
            if a.ndim != len(v.shape) or a.dtype.name != v.dtype:
                raise RuntimeError(
                    f"{self._name}(): input {k} ('{v.name}') was traced as {v.type_str()} "
                    f"({v.dtype}), got {a.dtype.name}{list(a.shape)}. Pass the same dtype and "
                    "number of dimensions (sizes may differ where the graph allows it).")
            arrays.append(a)
        return _wrap(self.plan.run(arrays))

    forward = __call__

    # ------------------------------------------------------------------ inspection
    @property
    def graph(self) -> Graph:
        """The IR: ``print(traced.graph)`` shows one line per op with its output shape."""
        return self._graph

    @property
    def inlined_graph(self) -> Graph:
        return self._graph

    @property
    def code(self) -> str:
        """The graph as straight-line Python (op registry names as functions)."""
        g = self._graph

        def nm(i):
            v = g.values[i]
            return {"input": v.name, "const": f"self.{v.name}"}.get(v.kind, f"_{v.name}")

        def fmt(a):
            from ._ir import Ref

            if isinstance(a, Ref):
                return nm(a.i)
            if isinstance(a, (tuple, list)):
                inner = ", ".join(fmt(x) for x in a)
                return f"({inner}{',' if len(a) == 1 else ''})" if isinstance(a, tuple) \
                    else f"[{inner}]"
            return g._fmt(a)

        lines = [f"def forward(self, {', '.join(nm(i) for i in g.inputs)}):"]
        for n in g.nodes:
            args = [fmt(a) for a in n.args] + [f"{k}={fmt(v)}" for k, v in n.attrs.items()]
            op = n.op if n.steps is None else "fused_" + "_".join(s[0] for s in n.steps)
            lines.append(f"    {', '.join(nm(o) for o in n.outs)} = {op}({', '.join(args)})")
        lines.append(f"    return {fmt(g.outputs)}")
        return "\n".join(lines) + "\n"

    def constants(self) -> dict:
        """Captured parameters, buffers and constants by name (as tensors)."""
        g = self._graph
        return {g.values[i].name: _make(a) for i, a in g.consts.items()}

    # ------------------------------------------------------------------ module-like API
    def eval(self) -> TracedModule:
        return self

    def train(self, mode: bool = True) -> TracedModule:
        if mode:
            warnings.warn("a traced module has no training mode: its graph was recorded once "
                          "(in eval mode) and runs without autograd", TracerWarning,
                          stacklevel=2)
        return self

    def to(self, device) -> TracedModule:
        """Move the constants to ``device`` (inputs on that device then run there)."""
        dev = B.to_device(device)
        g = self._graph.copy()
        g.consts = {i: B.move(a, dev) for i, a in g.consts.items()}
        return TracedModule(g, self._name, self.meta)

    def cpu(self) -> TracedModule:
        return self.to("cpu")

    def cuda(self, device=None) -> TracedModule:
        return self.to("cuda" if device is None else f"cuda:{int(device)}")

    def save(self, path) -> None:
        """Write the graph and its constants to ``path`` (a zip; load with :func:`load`)."""
        save_graph(self._graph, path, dict(self.meta, name=self._name))

    def __repr__(self) -> str:
        g = self._graph
        return (f"{self._name}(traced: {len(g.nodes)} ops, {len(g.inputs)} input(s), "
                f"{len(g.consts)} constant(s))")


ScriptModule = TracedModule


def _wrap(obj):
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    return _make(obj)


def _input_names(fn, n: int) -> list[str]:
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        params = []
    names = []
    for k in range(n):
        nm = params[k] if k < len(params) else f"input{k}"
        names.append(nm if nm not in names else f"{nm}{k}")
    return names


def trace(func, example_inputs, check_trace: bool = True, strict: bool = True,
          optimize: bool = False, **_ignored) -> TracedModule:
    """Run ``func`` once on ``example_inputs`` and record its ops into a static graph.

    Parameters
    ----------
    func : Module or callable
        An ``nn.Module`` (its parameters and buffers become named constants) or a function of
        tensors. Put modules in ``eval()`` mode first: the trace records one path (dropout,
        batch-norm statistics ...) and replays it forever.
    example_inputs : Tensor or tuple of Tensors
        Inputs for the recording run; the graph is specialised to their dtypes and, where an op
        bakes a size in (``view(32, -1)``), to their sizes.
    check_trace : bool
        Replay the graph on the example inputs and warn if it does not reproduce the eager
        outputs.
    optimize : bool
        Also fold constants and fuse elementwise chains (see :func:`optimize_for_inference`).

    Returns
    -------
    TracedModule
        Callable; ``.graph`` prints the IR, ``.save(path)`` writes it.

    Warns
    -----
    TracerWarning
        When the forward converts a traced tensor to a Python value (``if x.sum() > 0``,
        ``.item()``, ``.tolist()``, indexing with a tensor), which the trace cannot record, or
        changes a recorded tensor in place outside the dispatch door.
    """
    g, _tracer, out, label = record(func, example_inputs)
    g = compact(dce(g))
    if isinstance(example_inputs, Tensor):
        example_inputs = (example_inputs,)
    tm = TracedModule(g, label)
    if optimize:
        tm = optimize_for_inference(tm)
    if check_trace:
        _check(tm, example_inputs, out, func)
    return tm


def record(func, example_inputs, on_tracer=None):
    """Run ``func`` once under the tracer; (raw graph, tracer, eager output, label).

    ``on_tracer(tracer)`` is called before the run (the ONNX exporter uses it to mark module
    boundaries). The graph is not yet cleaned (no DCE, values not renumbered).
    """
    from .. import _dispatch as D
    from ..autograd.grad_mode import no_grad

    if isinstance(example_inputs, Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    names: dict = {}
    fwd = func
    label = getattr(func, "__name__", type(func).__name__)
    is_module = hasattr(func, "named_parameters") and hasattr(func, "forward")
    if is_module:
        label = type(func).__name__
        fwd = func.forward
        for n, p in func.named_parameters():
            names[id(p)] = n
        if hasattr(func, "named_buffers"):
            for n, b in func.named_buffers():
                names[id(b)] = n
        if getattr(func, "training", False):
            warnings.warn(
                f"jit.trace(): {label} is in training mode; the trace records this one pass "
                "(dropout masks, batch statistics) as it ran. Call .eval() before tracing for "
                "inference.", TracerWarning, stacklevel=3)
    tracer = Tracer(names)
    for t, nm in zip(example_inputs, _input_names(fwd, len(example_inputs))):
        tracer.add_input(t, nm)
    if on_tracer is not None:
        on_tracer(tracer)
    saved_scope = D.scope
    _TRACING[0] += 1
    try:
        with no_grad(), tracer:
            out = func(*example_inputs)
            outputs = tracer.output(out)
    finally:
        _TRACING[0] -= 1
        D.scope = saved_scope
    g = tracer.g
    g.outputs = outputs
    return g, tracer, out, label


def _check(tm: TracedModule, inputs, eager, func=None) -> None:
    """Replay on the example inputs, then on perturbed ones against a fresh eager run: a
    value taken from the inputs by an op outside the dispatch door (or by Python control
    flow) shows up as a difference there."""
    try:
        got = tm(*inputs)
    except Exception as e:  # a trace that cannot replay is a bug worth surfacing loudly
        raise RuntimeError(f"jit.trace(): the traced graph failed to replay on the example "
                           f"inputs: {e}") from e
    if not _same(eager, got):
        warnings.warn("jit.trace(): the traced graph does not reproduce the eager output "
                      "on the example inputs (nondeterministic or untraceable code?)",
                      TracerWarning, stacklevel=3)
        return
    if func is None or getattr(func, "training", False):
        return
    from ..autograd.grad_mode import no_grad

    other = tuple(_perturb(x, k) for k, x in enumerate(inputs))
    try:
        with no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = func(*other)
        got = tm(*other)
    except Exception:  # inputs the model rejects (e.g. out-of-range ids): nothing to compare
        return
    if not _same(want, got, tol=1e-4):
        warnings.warn(
            "jit.trace(): on other inputs of the same shapes the traced graph differs from "
            "the eager forward: some values computed from the inputs were recorded as "
            "constants (Python control flow on tensor values, or ops that do not pass the "
            "dispatch door such as argmax/nonzero). The trace does not generalise.",
            TracerWarning, stacklevel=3)


def _perturb(x: Tensor, k: int) -> Tensor:
    d = x._data
    xp = B.xp_of(d)
    if d.dtype.kind == "f":
        rng = B.np.random.default_rng(1234 + k)
        noise = xp.asarray(rng.standard_normal(d.shape).astype(d.dtype))
        scale = float(B.to_numpy(abs(d)).mean()) if d.size else 1.0
        return _make(d + noise * (0.5 * scale + 0.1))
    if d.dtype.kind in "iu" and d.size > 1:
        return _make(xp.roll(d.reshape(-1), 1).reshape(d.shape))
    return x


def _same(a, b, tol: float = 1e-5) -> bool:
    for x, y in zip(_flat(a), _flat(b)):
        xa, xb = B.to_numpy(x._data), B.to_numpy(y._data)
        if xa.shape != xb.shape or not B.np.allclose(xa, xb, rtol=tol, atol=tol,
                                                      equal_nan=True):
            return False
    return True


def _flat(obj):
    if isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _flat(o)
    else:
        yield obj


def optimize_for_inference(mod: TracedModule, fold: bool = True,
                           fuse: bool = True) -> TracedModule:
    """A copy of ``mod`` with constant folding and elementwise fusion applied (after DCE)."""
    return TracedModule(optimize(mod.graph, fold=fold, fuse=fuse), mod._name, mod.meta)


def freeze(mod: TracedModule) -> TracedModule:
    """Fold everything that depends only on parameters into constants (``torch.jit.freeze``)."""
    return TracedModule(compact(fold_constants(dce(mod.graph))), mod._name, mod.meta)


def save(mod: TracedModule, path) -> None:
    """Save a traced module (same as ``mod.save(path)``)."""
    if not isinstance(mod, TracedModule):
        raise TypeError(f"jit.save(): expected a TracedModule from jit.trace(), got "
                        f"{type(mod).__name__}")
    mod.save(path)


DRY_RUN_BYTES = 1 << 30  # graphs whose recorded values total more are not dry-run at load


def _dry_run(tm: TracedModule, path) -> None:
    """Run a loaded graph once on zeros of its traced input shapes and check that the outputs
    have the recorded shapes and dtypes, so that a graph damaged in a way no structural check
    sees (a lying reshape target, say) fails at load rather than at the first call."""
    import numpy as np

    g = tm.graph
    total = sum(int(np.prod(v.shape, dtype=object)) * np.dtype(v.dtype).itemsize
                for v in g.values)
    if total > DRY_RUN_BYTES:
        return
    where = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "<file object>"
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outs = tm.plan.run([np.zeros(g.values[i].shape, g.values[i].dtype)
                                for i in g.inputs])
    except Exception as e:
        raise LoadError(f"jit.load(): '{where}' holds a graph that fails when run on zeros of "
                        f"its traced input shapes ({type(e).__name__}: {str(e)[:300]}); the "
                        "file is damaged. Save the model again.") from None
    got = outs if isinstance(outs, (tuple, list)) else [outs]
    refs = g.output_refs()
    for r, a in zip(refs, _flat(got)):
        v = g.values[r.i]
        if tuple(a.shape) != v.shape or a.dtype.name != v.dtype:
            raise LoadError(f"jit.load(): '{where}' holds a graph whose output '{v.name}' comes "
                            f"out as {a.dtype.name}{list(a.shape)} but was traced as "
                            f"{v.dtype}{list(v.shape)}; the file is damaged. Save the model "
                            "again.")


def _flat(obj):
    for o in obj:
        if isinstance(o, (tuple, list)):
            yield from _flat(o)
        else:
            yield o


def load(path, map_location=None) -> TracedModule:
    """Load a traced module saved by :meth:`TracedModule.save`; needs only dyntorch.

    The file is checked before it is returned: sizes against the archive, every reference and
    op of the graph, and one run on zeros of the traced input shapes whose outputs must have
    the recorded shapes (skipped for graphs whose values total over ``DRY_RUN_BYTES``).

    Raises
    ------
    dyntorch.jit.LoadError
        If the file is not a traced model, is truncated or damaged, or was written in a format
        version this dyntorch does not read.
    """
    g, meta = load_graph(path)
    name = meta.get("name", "TracedModule")
    tm = TracedModule(g, name if isinstance(name, str) else "TracedModule", meta)
    try:
        _ = tm.plan  # resolve every op now: a missing op fails at load, not at first call
    except UnknownOpError as e:
        raise LoadError(f"jit.load(): {e}") from None
    except Exception as e:  # anything else in building the plan is a damaged graph
        where = os.fspath(path) if isinstance(path, (str, os.PathLike)) else "<file object>"
        raise LoadError(f"jit.load(): '{where}' holds a graph that cannot be prepared "
                        f"({type(e).__name__}: {e}); the file is damaged. Save the model "
                        "again.") from None
    _dry_run(tm, path)
    if map_location is not None:
        tm = tm.to(map_location)
    return tm

