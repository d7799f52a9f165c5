"""The notebook widget: the live graph, the step-through backward debugger and the inspector.

One anywidget (:class:`GraphWidget`) draws a graph document (``docs/graph-schema.md``). The
kernel sends the full document once (the ``doc`` trait) and then small diffs as custom messages
(new nodes, state changes, gradient summaries); arrays never travel. Layout happens in the
browser (Graphviz WebAssembly in a Web Worker), whose source the kernel sends once per page when
the front end asks for it.

Entry points: :func:`show` (a result's graph), :func:`stepper_widget` (how a
``BackwardStepper`` displays itself) and :func:`live` (a view that grows while forward runs and
follows a training loop).
"""
from __future__ import annotations

import contextlib
import itertools
import math
import time
import weakref
from collections import deque
from collections.abc import Iterator
from typing import Any

import anywidget
import traitlets as T

from . import _static

__all__ = ["GraphWidget", "LiveView", "diff_docs", "live", "show", "stepper_widget"]

_ids = itertools.count(1)



# ----------------------------------------------------------------------------- diffs
def diff_docs(old: dict | None, new: dict) -> dict | None:
    """The diff (``graph.graph_diff`` form) from ``old`` to ``new``; None when only the full
    document will do (no document yet, or another ``graph_id``)."""
    if old is None or old.get("graph_id") != new.get("graph_id"):
        return None
    from .graph import graph_diff

    d = graph_diff(old, new)
    if d.get("remove_nodes") and len(d["remove_nodes"]) * 2 > len(old["nodes"]):
        return None  # mostly a new graph: a fresh layout is cheaper to read
    return d


def _empty(d: dict, old: dict) -> bool:
    return not (d.get("add_nodes") or d.get("add_edges") or d.get("update") or
                d.get("remove_nodes") or d.get("remove_edges") or "scopes" in d or
                d.get("status") != old.get("status") or
                d.get("breakpoints", old.get("breakpoints")) != old.get("breakpoints"))


def _graph_json(obj, model=None) -> dict:
    from .graph import graph_json

    return graph_json(obj, model=model)


def _clean(x):
    """JSON-safe copy: NaN/Inf (not valid JSON) become None; tuples become lists."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


# ----------------------------------------------------------------------------- the widget
class GraphWidget(anywidget.AnyWidget):
    """An interactive drawing of a graph document.

    Parameters
    ----------
    doc : dict, optional
        A graph document (``dyntorch.viz.graph_json(...)``); it can be set later with
        :meth:`set_doc` and updated with :meth:`update`.
    mode : {"graph", "stepper", "live"}
        ``"stepper"`` adds the debugger's controls; ``"live"`` the training charts.
    height : str
        CSS height of the view.
    fold_limit : int
        Graphs with more nodes than this open with module scopes folded.
    """

    _esm = _static.widget_esm()

    doc = T.Dict().tag(sync=True)
    metrics = T.Dict().tag(sync=True)
    mode = T.Unicode("graph").tag(sync=True)
    height = T.Unicode("560px").tag(sync=True)
    fold_limit = T.Int(300).tag(sync=True)
    _snapshot = T.Unicode("").tag(sync=True)

    def __init__(self, doc: dict | None = None, *, mode: str = "graph",
                 height: str = "560px", fold_limit: int = 300, **kw: Any) -> None:
        super().__init__(mode=mode, height=height, fold_limit=fold_limit, **kw)
        self._doc: dict | None = None
        self._rev = 0
        self.selected: str | None = None  # the node clicked last in the front end
        self.sent: deque = deque(maxlen=200)  # messages sent, newest last (for tests, debugging)
        self.controller = None  # receives the front end's commands (the stepper's buttons)
        self.on_msg(self._on_msg)
        if doc is not None:
            self.set_doc(_clean(doc))  # hand-made documents may hold NaN (not JSON)

    # ------------------------------------------------------------------ kernel -> front end
    @property
    def current(self) -> dict | None:
        """The document as the front end has it now."""
        return self._doc

    def set_doc(self, doc: dict) -> None:
        """Send a whole new document (the front end lays it out from scratch)."""
        doc = dict(doc)
        self._rev += 1
        doc["rev"] = self._rev
        self._doc = doc
        self.doc = doc
        self.sent.append({"type": "doc", "rev": self._rev, "graph_id": doc.get("graph_id")})

    def update(self, doc: dict) -> dict | None:
        """Bring the front end to ``doc``: a diff when possible, else the full document.

        Returns the diff sent (None when nothing changed or the full document went).
        ``graph_json`` documents are strict JSON already; pass others through ``_clean``.
        """
        doc = dict(doc)
        old = self._doc
        d = diff_docs(old, doc)
        if d is None:
            self.set_doc(doc)
            return None
        if doc.get("breakpoints") != old.get("breakpoints"):
            d["breakpoints"] = doc.get("breakpoints") or []
        if _empty(d, old):
            return None
        doc["rev"] = d["rev"]
        self._rev = d["rev"]
        self._doc = doc
        self._post({"type": "diff", "diff": d})
        return d

    def push_document(self, doc: dict) -> None:
        """Send ``doc`` whole, keeping its ``rev`` (for a source that numbers its own revs)."""
        self._doc = doc
        self._rev = doc.get("rev", 0)
        self.doc = dict(doc)
        self.sent.append({"type": "doc", "rev": self._rev, "graph_id": doc.get("graph_id")})

    def push_diff(self, diff: dict, doc: dict) -> None:
        """Send ``diff`` that brings the front end to ``doc`` (``rev`` must follow ours)."""
        self._doc = doc
        self._rev = diff["rev"]
        self._post({"type": "diff", "diff": diff})

    def select(self, node_id: str) -> None:
        """Select a node in the front end and open it in the inspector."""
        self.selected = node_id
        self._post({"type": "select", "node": node_id})

    def _repr_mimebundle_(self, **kwargs: Any):
        # A static picture beside the widget view: notebooks saved headless keep the graph in
        # nbconvert's HTML, on GitHub and nbviewer; a live front end still shows the widget.
        from .picture import picture_bundle

        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle  # (data, metadata) or data
        if isinstance(data, dict):
            data.update(picture_bundle(self._doc, include=kwargs.get("include"),
                                       exclude=kwargs.get("exclude")))
        return bundle

    def _post(self, msg: dict) -> None:
        self.sent.append(msg)
        self.send(msg)

    # ------------------------------------------------------------------ front end -> kernel
    def _on_msg(self, _w, content, _buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "need_engine":
            src = _static.layout_worker()
            self.send({"type": "engine", "src": src})
            self.sent.append({"type": "engine", "bytes": len(src)})  # not the 800 kB itself
        elif kind in ("hello", "need_full"):
            if self._doc is not None and content.get("rev") != self._doc.get("rev"):
                self._post({"type": "doc", "doc": self._doc})
        elif kind == "select":
            self.selected = content.get("node")
        elif kind == "cmd" and self.controller is not None:
            self.controller.command(content.get("cmd"), content)


# ----------------------------------------------------------------------------- refresh after cells
_watched: weakref.WeakSet = weakref.WeakSet()
_hooked = False


def _refresh_all(*_a) -> None:
    for c in list(_watched):
        with contextlib.suppress(Exception):
            c.refresh()


def _watch(controller) -> None:
    """Refresh ``controller``'s view after every cell, so ``stepper.step()`` in code shows."""
    global _hooked
    _watched.add(controller)
    if _hooked:
        return
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ip = get_ipython()
    if ip is not None:
        ip.events.register("post_run_cell", _refresh_all)
        _hooked = True


# ----------------------------------------------------------------------------- the debugger
class _StepperController:
    """Connects a ``BackwardStepper`` to its widget: buttons call it, its state is sent back.

    Diffs come from ``graph.GraphTracker``, which updates only the nodes a step touched.
    """

    def __init__(self, stepper, widget: GraphWidget, model=None) -> None:
        from .graph import GraphTracker

        self._stepper = weakref.ref(stepper)
        self.model = model
        self.widget = widget
        self.bps: dict = {}  # node id -> Breakpoint set from the view
        self.last_ms = 0.0
        self._tracker = GraphTracker(stepper, model=model)
        self._seen = None
        self._sent_bps: list = []
        widget.controller = self

    def _key(self, s):
        return (len(s.history), s.done, id(s.current))

    def start(self) -> None:
        s = self._stepper()
        doc = self._tracker.document()
        doc["breakpoints"] = []
        self._tracker.doc["breakpoints"] = []
        self._seen = self._key(s)
        self.widget.push_document(doc)

    def refresh(self) -> None:
        """Send what changed since the last refresh (nothing when the stepper did not move)."""
        s = self._stepper()
        if s is None or s.closed:
            return
        bps = sorted(self.bps)
        key = self._key(s)
        if key == self._seen and bps == self._sent_bps:
            return
        t0 = time.perf_counter()
        self._seen = key
        d = self._tracker.diff()
        if bps != self._sent_bps:
            d["breakpoints"] = self._sent_bps = bps
        self._tracker.doc["breakpoints"] = bps
        self.widget.push_diff(d, self._tracker.doc)
        self.last_ms = (time.perf_counter() - t0) * 1e3

    def command(self, cmd: str, msg: dict) -> None:
        s = self._stepper()
        if s is None or s.closed:
            return
        if cmd == "step":
            s.step()
        elif cmd == "step_out":
            s.step_out()
        elif cmd == "run":
            s.run()
        elif cmd == "back":
            s.back()
        elif cmd == "reset":
            s.reset()
        elif cmd == "break":
            self.toggle_breakpoint(msg.get("node"))
        else:
            return
        self.refresh()

    def toggle_breakpoint(self, node_id: str | None) -> None:
        s = self._stepper()
        if node_id is None or s is None:
            return
        bp = self.bps.pop(node_id, None)
        if bp is not None:
            bp.remove()
            return
        node = next((n for n in s.order if f"n{n.seq}" == node_id), None)
        if node is None:
            return
        self.bps[node_id] = s.break_on(when=lambda st, node=node: st.node is node)


def stepper_widget(stepper, *, model=None, **kw: Any) -> GraphWidget:
    """The debugger view of a ``BackwardStepper``: its graph, node states, controls, status.

    The view follows the stepper whether it is driven by the buttons, the JupyterLab commands
    or code (``stepper.step()`` in a cell: the view updates when the cell finishes).
    ``model`` (an ``nn.Module``) names parameters and module types.
    """
    old = getattr(stepper, "_dt_widget", None)
    if old is not None and not kw and model is None:
        return old  # every display of one stepper shows the same view
    w = GraphWidget(mode="stepper", **kw)
    c = _StepperController(stepper, w, model)
    c.start()
    _watch(c)
    stepper._dt_widget = w  # keep the view alive as long as the stepper
    return w


# ----------------------------------------------------------------------------- show
def show(output, *, model=None, **kw: Any) -> GraphWidget:
    """Draw the autograd graph that produced ``output`` (a tensor, or a sequence of them).

    ``model`` (an ``nn.Module``) names parameters and module types. Returns the widget; as the
    last expression of a cell it displays itself.
    """
    return GraphWidget(_graph_json(output, model), mode="graph", **kw)


# ----------------------------------------------------------------------------- live
class LiveView(GraphWidget):
    """A view that grows as forward ops run and follows a training loop.

    Made by :func:`live`. While the ``with`` block runs, every op that records a graph node
    adds to the drawing (redrawn at most ``1 / interval`` times a second). Each ``backward()``
    ends an iteration: its loss joins the loss curve and the gradient norm of every module's
    parameters the bar chart; the next forward starts a new drawing.
    """

    def __init__(self, *, interval: float = 0.1, model=None, **kw: Any) -> None:
        super().__init__(mode="live", **kw)
        self.interval = interval
        self.model = model
        self.iteration = 0
        self.losses: list[float] = []
        self.grad_norms: dict = {}
        self.redraws = 0
        self._frontier: dict = {}  # node -> newest tensor it produced, not yet consumed
        self._last = 0.0
        self._dirty = False
        self._gid = f"live{next(_ids)}"
        self._sig = None
        self.error: Exception | None = None  # the last failure to draw (forward went on)
        self._cost = 0.0  # seconds the last drawing took in the kernel
        self._last_metrics = 0.0
        self._manual_loss = False
        self.series: dict = {}  # other scalars given to log()

    # called by the dispatch door after every op
    def _on_op(self, _op, _args, _attrs, res) -> None:
        t = res[0] if isinstance(res, tuple) else res
        node = getattr(t, "grad_fn", None)
        if node is None:
            return
        fr = self._frontier
        for e in node.next:
            if e is not None:
                fr.pop(e[0], None)
        fr[node] = t
        self._dirty = True
        if self.iteration:  # in a training loop: draw whole iterations only (at backward)
            return
        now = time.monotonic()
        if now - self._last >= self._gap():
            try:
                self.flush()
            except Exception as e:  # noqa: BLE001 - a viewer must never break the user's forward
                self.error = e

    def _gap(self) -> float:
        # at most 1/interval redraws a second, and never more than ~20% of the time drawing
        # (interval 0: every op, for tests and slow step-by-step demos)
        return max(self.interval, 4 * self._cost) if self.interval > 0 else 0.0

    def flush(self) -> None:
        """Send what forward built since the last redraw."""
        if not self._dirty or not self._frontier:
            return
        self._dirty = False
        t0 = time.monotonic()
        self._last = t0
        outs = list(self._frontier.values())
        self._show(_graph_json(outs if len(outs) > 1 else outs[0], self.model))
        self._cost = time.monotonic() - t0

    def _show(self, doc: dict) -> None:
        doc = dict(doc)
        sig = _signature(doc)
        old = self.current
        if old is not None and sig == self._sig and old.get("graph_id") == self._gid:
            doc = _rename_like(doc, old)  # same structure as the last iteration: no relayout
        doc["graph_id"] = self._gid
        self._sig = sig
        self.update(doc)
        self.redraws += 1

    def _before_backward(self, tensors) -> None:
        outs = list(tensors)
        if not outs:
            return
        self._dirty = False
        t0 = time.monotonic()
        if self.iteration and t0 - self._last < self._gap():
            return  # a fast loop: the view shows a recent iteration, not every one
        self._last = t0
        self._show(_graph_json(outs if len(outs) > 1 else outs[0], self.model))
        self._cost = time.monotonic() - t0

    def _after_backward(self, tensors) -> None:
        from .._backend import xp_of
        from ..autograd.engine import collect
        from ..autograd.node import AccumulateGrad

        outs = list(tensors)
        if len(outs) == 1 and outs[0].numel() == 1 and not self._manual_loss:
            self.losses.append(float(outs[0].item()))
        params = {}
        doc = self.current or {}
        names = {n["id"]: n.get("param") for n in doc.get("nodes", ())}
        roots = [t.grad_fn for t in outs if t.grad_fn is not None]
        _, order = collect(roots)
        for node in order:
            if node.__class__ is not AccumulateGrad:
                continue
            v = node.variable
            g = v.grad
            if g is None:
                continue
            name = names.get(f"n{node.seq}") or ""
            module = name.rsplit(".", 1)[0] if "." in name else (name or "(leaves)")
            a = g._data
            sq = float((xp_of(a).abs(a.astype("float64")) ** 2).sum())
            params[module] = params.get(module, 0.0) + sq
        self.grad_norms = {k: math.sqrt(v) for k, v in params.items()}
        self.iteration += 1
        self._frontier.clear()
        now = time.monotonic()
        if now - self._last_metrics >= self.interval:
            self.push_metrics()

    def log(self, **scalars: float) -> None:
        """Add points to the charts: ``view.log(loss=loss.item(), acc=acc)``.

        Once ``loss`` is logged by hand, the loss of ``backward()`` is no longer recorded
        automatically (the curve would count each iteration twice).
        """
        for k, v in scalars.items():
            v = float(v)
            if k == "loss":
                if not self._manual_loss:
                    self._manual_loss = True
                    self.losses = []
                self.losses.append(v)
            else:
                self.series.setdefault(k, []).append(v)
        if time.monotonic() - self._last_metrics >= self.interval:
            self.push_metrics()

    def push_metrics(self) -> None:
        """Send the loss curve and gradient norms (throttled like the drawing)."""
        self._last_metrics = time.monotonic()
        self.metrics = _clean({"loss": self.losses[-500:], "grad_norms": self.grad_norms,
                               "iteration": self.iteration,
                               "series": {k: v[-500:] for k, v in self.series.items()}})


def _signature(doc: dict) -> tuple:
    nodes = sorted(doc["nodes"], key=lambda n: n["seq"])
    return (tuple((n["op"], n.get("scope", ""), n.get("kind")) for n in nodes),
            len(doc["edges"]))


def _rename_like(doc: dict, old: dict) -> dict:
    """Give ``doc``'s nodes the ids of the structurally identical ``old`` (by creation order)."""
    new_nodes = sorted(doc["nodes"], key=lambda n: n["seq"])
    old_nodes = sorted(old["nodes"], key=lambda n: n["seq"])
    m = {a["id"]: b["id"] for a, b in zip(new_nodes, old_nodes)}
    nodes = []
    for a, b in zip(new_nodes, old_nodes):
        n = dict(a)
        n["id"], n["seq"] = b["id"], b["seq"]
        nodes.append(n)
    edges = [dict(e, src=m.get(e["src"], e["src"]), dst=m.get(e["dst"], e["dst"]))
             for e in doc["edges"]]
    out = dict(doc, nodes=nodes, edges=edges)
    st = out.get("status")
    if isinstance(st, dict) and st.get("current") in m:
        out["status"] = dict(st, current=m[st["current"]])
    return out


class _BackwardObserver:
    """Connects a live view to ``autograd.functional_api.backward_observers``."""

    def __init__(self, view):
        self.view = view

    def before_backward(self, outputs) -> None:
        self.view._before_backward(outputs)

    def after_backward(self, outputs) -> None:
        self.view._after_backward(outputs)

    @property
    def error(self):
        return self.view.error

    @error.setter
    def error(self, e) -> None:
        self.view.error = e


@contextlib.contextmanager
def live(*, interval: float = 0.1, model=None, display: bool = True,
         **kw: Any) -> Iterator[LiveView]:
    """Show a graph that grows while the ``with`` block runs forward ops.

    Parameters
    ----------
    interval : float
        Smallest time between two redraws, in seconds (0.1: at most ten a second).
    model : nn.Module, optional
        Names parameters and module types (and the modules of the gradient-norm chart).
    display : bool
        Display the view right away (in a notebook).

    Yields
    ------
    LiveView
        The view; ``view.losses`` and ``view.grad_norms`` hold what the charts show.

    Examples
    --------
    >>> with dyntorch.viz.live() as view:
    ...     for x, y in loader:
    ...         loss = loss_fn(model(x), y)
    ...         opt.zero_grad(); loss.backward(); opt.step()
    """
    from .. import _dispatch as D
    from ..autograd import functional_api as F

    view = LiveView(interval=interval, model=model, **kw)
    if display:
        try:
            from IPython.display import display as _display

            _display(view)
        except ImportError:
            pass
    observer = _BackwardObserver(view)
    F.backward_observers.append(observer)
    remove = D.add_hook(view._on_op)
    was_profiling, D.profile = D.profile, True  # the "colour: time" overlay of the live view
    try:
        yield view
    finally:
        D.profile = was_profiling
        remove()
        if observer in F.backward_observers:
            F.backward_observers.remove(observer)
        view.flush()
        if view.iteration or view.losses or view.series:
            view.push_metrics()
