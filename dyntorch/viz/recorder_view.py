"""A :class:`~dyntorch.debug.Recorder` in a notebook: one training step's graph at a time, a
step slider that scrubs its colours across the kept steps, and a history chart per node.

The slider asks the kernel for a step (``{"type": "cmd", "cmd": "rec_step", "step": k}``);
the kernel sends ``rec.at(k)`` as a diff of node updates only: node ids are kept stable by
the recorder's node keys, so scrubbing never lays the graph out again. The inspector asks for
a node's history (``"cmd": "history"``) and gets ``rec.history(key, stat)`` for a few stats.
Only the recorder's public API is read (``steps``, ``at``, ``history``).
"""
from __future__ import annotations

import math
import time
import weakref
from typing import Any

from .widget import GraphWidget, jsonable

__all__ = ["HISTORY_STATS", "RecorderController", "recorder_widget"]

#: The statistics the inspector charts for a node.
HISTORY_STATS = ("grad_norm", "out_zeros", "nonfinite")


class RecorderController:
    """Connects a Recorder to its widget: the slider picks a step, the inspector a history.

    While training runs in the cell that shows the view (a loop, ``Trainer.fit``), the view
    follows it: after each recorded step, at most every :attr:`live_interval` seconds, the
    newest step is drawn, unless the slider was moved back to an older step.
    """

    #: Seconds between two redraws while training runs (each costs a few milliseconds).
    live_interval = 0.25

    def __init__(self, recorder: Any, widget: GraphWidget) -> None:
        self._rec = weakref.ref(recorder) if _weakrefable(recorder) else (lambda: recorder)
        self.widget = widget
        self.step: int | None = None
        self.follow = True  # the newest step is shown: follow training as it goes on
        self.last_ms = 0.0  # kernel time of the last step change
        self._ids: dict = {}  # recorder node key -> the id it is drawn under (stable)
        self._gid = f"recview{id(widget) % 1000003}"
        self._pushed = time.perf_counter()  # when a step was last drawn live
        self.live_redraws = 0
        widget.controller = self
        self._hook = None
        if hasattr(recorder, "register_step_hook"):
            me = weakref.ref(self)

            def follow(rec, step):  # the recorder must not keep a closed view alive
                c = me()
                if c is None:
                    handle.remove()
                else:
                    c._recorded(step)

            handle = self._hook = recorder.register_step_hook(follow)

    @property
    def recorder(self):
        return self._rec()

    # ------------------------------------------------------------------ documents
    def document(self, step: int) -> dict:
        """``rec.at(step)`` with node ids stable across steps (by node key)."""
        d = self.recorder.at(step)
        remap = {}
        for n in d["nodes"]:
            remap[n["id"]] = self._ids.setdefault(n.get("key") or n["id"], n["id"])
        nodes = []
        for n in d["nodes"]:
            nid = remap[n["id"]]
            nodes.append(dict(n, id=nid, seq=int(nid[1:]) if nid[1:].isdigit() else n["seq"]))
        edges = [dict(e, src=remap.get(e["src"], e["src"]), dst=remap.get(e["dst"], e["dst"]))
                 for e in d["edges"]]
        return jsonable(dict(d, nodes=nodes, edges=edges, graph_id=self._gid))

    def show_step(self, step: int | None = None) -> None:
        """Show training ``step`` (the nearest kept one; default the newest)."""
        rec = self.recorder
        steps = rec.steps if rec is not None else []
        if not steps:
            return
        if step is None:
            step = steps[-1]
        step = min(steps, key=lambda s: (abs(s - step), s))
        t0 = time.perf_counter()
        self.widget.update(self.document(step))
        self.step = step
        self.follow = step == steps[-1]
        self.widget._post({"type": "recorder", "steps": steps, "step": step})
        self.last_ms = (time.perf_counter() - t0) * 1e3

    def _recorded(self, step: int) -> None:
        if not self.follow:
            return
        now = time.perf_counter()
        if now - self._pushed < self.live_interval:
            return
        self.show_step(step)
        self._pushed = time.perf_counter()
        self.live_redraws += 1

    def refresh(self) -> None:
        """After a cell: follow the newest step when the view showed the newest before."""
        rec = self.recorder
        if rec is None or not rec.steps:
            return
        steps = rec.steps
        if self.step not in steps or (self.follow and self.step != steps[-1]):
            self.show_step(None)

    def history(self, key: str) -> dict:
        """The inspector's chart data for node ``key``: the kept steps and a few statistics."""
        rec = self.recorder
        series = {}
        for stat in HISTORY_STATS:
            try:
                series[stat] = [None if not math.isfinite(v) else float(v)
                                for v in rec.history(key, stat)]
            except KeyError:
                continue
        return {"type": "history", "key": key, "steps": list(rec.steps), "series": series}

    # ------------------------------------------------------------------ front end
    def command(self, cmd: str, msg: dict) -> None:
        if cmd == "rec_step":
            s = msg.get("step")
            if isinstance(s, int | float):
                self.show_step(int(s))
        elif cmd == "history":
            key = msg.get("key")
            if isinstance(key, str) and self.recorder is not None:
                self.widget._post(self.history(key))


def _weakrefable(obj) -> bool:
    try:
        weakref.ref(obj)
        return True
    except TypeError:
        return False


def recorder_widget(recorder: Any, *, step: int | None = None, **kw: Any) -> GraphWidget:
    """The view of a ``Recorder``: training ``step``'s graph (default the newest kept), a step
    slider over the kept steps and, in the inspector, each node's history.

    Colour by "gradient norm", "NaN/Inf" or "dead (out zeros)" in the toolbar's overlay menu.
    """
    if not recorder.steps:
        raise ValueError("recorder_widget: this Recorder has kept no step yet; run a forward "
                         "and backward() through its model first")
    w = GraphWidget(mode="graph", **kw)
    c = RecorderController(recorder, w)
    c.show_step(step)
    from .stepper_view import _watch

    _watch(c)  # follows training run in later cells
    return w
