"""The live view: a graph that grows while forward runs and follows a training loop.

:func:`live` hooks the dispatch door (every op that records a node) and the backward observers
(every ``backward()`` ends an iteration) and feeds a :class:`LiveView`, a
:class:`~.widget.GraphWidget` in ``"live"`` mode with a loss curve and per-module gradient norms.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Iterator
from typing import Any

from .widget import GraphWidget, graph_doc, jsonable

__all__ = ["LiveView", "live"]

_ids = itertools.count(1)


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
        self._show(graph_doc(outs if len(outs) > 1 else outs[0], self.model))
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
        self._show(graph_doc(outs if len(outs) > 1 else outs[0], self.model))
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
        self.metrics = jsonable({"loss": self.losses[-500:], "grad_norms": self.grad_norms,
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


class _FinalPicture:
    """The live view's final drawing as HTML around its SVG picture. The widget's stylesheet
    hides ``.dt-static-picture`` wherever the widget itself is drawn."""

    def __init__(self, doc: dict | None) -> None:
        self.doc = doc

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        from .picture import picture_bundle

        svg = picture_bundle(self.doc).get("image/svg+xml", "") if self.doc else ""
        return {"text/html": f'<div class="dt-static-picture">{svg}</div>', "text/plain": ""}


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
    handle = None
    if display:
        try:
            from IPython.display import display as _display

            _display(view)
            # a second output that receives the final drawing as a picture (below)
            handle = _display(_FinalPicture(None), display_id=True)
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
        if handle is not None:
            # the output keeps a picture of the final drawing (saved headless, on GitHub or
            # nbviewer the graph still shows). Updating the widget's own output would make a
            # live front end draw the view again; this one is hidden where the widget runs.
            try:
                handle.update(_FinalPicture(view.current))
            except Exception as e:  # noqa: BLE001 - the live widget already shows
                view.error = e
