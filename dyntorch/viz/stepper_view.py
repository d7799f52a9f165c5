"""The step debugger in a notebook: a ``BackwardStepper`` driven by the widget's buttons.

:class:`StepperController` connects one stepper to one :class:`~.widget.GraphWidget`: the
buttons (and the JupyterLab commands) call the stepper, and what changed is sent back as small
diffs. The view also follows a stepper driven from code (``stepper.step()`` in a cell): every
watched controller refreshes when a cell finishes.

Importing :mod:`dyntorch.viz` registers :func:`stepper_widget` as the way a stepper displays
(``dyntorch._display``); ``dyntorch.debug`` never imports this module. Only the stepper's public
read API is used here.
"""
from __future__ import annotations

import contextlib
import time
import weakref
from typing import Any

from ..debug import BackwardStepper
from .graph import GraphTracker
from .widget import GraphWidget

__all__ = ["StepperController", "stepper_widget"]

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


# ----------------------------------------------------------------------------- the controller
class StepperController:
    """Connects a ``BackwardStepper`` to its widget: buttons call it, its state is sent back.

    Diffs come from ``graph.GraphTracker``, which updates only the nodes a step touched.
    """

    def __init__(self, stepper: BackwardStepper, widget: GraphWidget, model=None) -> None:
        self._stepper = weakref.ref(stepper)
        self.model = model
        self.widget = widget
        self.bps: dict = {}  # node id -> Breakpoint set from the view
        self.last_ms = 0.0
        self.tracker = GraphTracker(stepper, model=model)
        self._seen = None
        self._sent_bps: list = []
        widget.controller = self

    def start(self) -> None:
        s = self._stepper()
        doc = self.tracker.document()
        doc["breakpoints"] = []
        self.tracker.doc["breakpoints"] = []
        self._seen = s.version
        self.widget.push_document(doc)

    def refresh(self) -> None:
        """Send what changed since the last refresh (nothing when the stepper did not move)."""
        s = self._stepper()
        if s is None or s.closed:
            return
        bps = sorted(self.bps)
        if s.version == self._seen and bps == self._sent_bps:
            return
        t0 = time.perf_counter()
        self._seen = s.version
        d = self.tracker.diff()
        if bps != self._sent_bps:
            d["breakpoints"] = self._sent_bps = bps
        self.tracker.doc["breakpoints"] = bps
        self.widget.push_diff(d, self.tracker.doc)
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


# one view per stepper, kept alive as long as the stepper (not stored on the stepper)
_views: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def stepper_widget(stepper: BackwardStepper, *, model=None, **kw: Any) -> GraphWidget:
    """The debugger view of a ``BackwardStepper``: its graph, node states, controls, status.

    The view follows the stepper whether it is driven by the buttons, the JupyterLab commands
    or code (``stepper.step()`` in a cell: the view updates when the cell finishes).
    ``model`` (an ``nn.Module``) names parameters and module types; without it, parameters
    are named from the modules whose forward made the graph.
    """
    old = _views.get(stepper)
    if old is not None and not kw and model is None:
        return old  # every display of one stepper shows the same view
    w = GraphWidget(mode="stepper", **kw)
    c = StepperController(stepper, w, model)
    c.start()
    _watch(c)
    _views[stepper] = w
    return w
