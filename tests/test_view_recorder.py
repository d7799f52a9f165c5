"""A Recorder in the view: the step slider scrubs colours by diffs of node updates (no new
layout), the inspector's history is ``rec.history``, and a BreakpointHit's stepper displays
positioned at the node that fired."""
from __future__ import annotations

import time

import numpy as np
import pytest

import dyntorch as dt
from dyntorch import _display
from dyntorch.debug import BreakpointHit, Recorder

pytest.importorskip("anywidget")

import dyntorch.viz  # noqa: E402, F401 - registers the displays
from dyntorch.viz import widget  # noqa: E402
from dyntorch.viz.recorder_view import RecorderController  # noqa: E402


def _train(steps=6, blow_at=None, **kw):
    dt.manual_seed(0)
    m = dt.nn.Sequential(dt.nn.Linear(3, 6), dt.nn.ReLU(), dt.nn.Linear(6, 1)).double()
    x, y = dt.randn(8, 3).double(), dt.randn(8, 1).double()
    opt = dt.optim.SGD(m.parameters(), lr=0.1)
    rec = Recorder(m, keep=50, **kw)
    hit = None
    try:
        for i in range(steps):
            opt.zero_grad()
            scale = 1e6 if blow_at is not None and i >= blow_at else 1.0
            loss = ((m(x) - y) ** 2).mean() * scale
            loss.backward()
            opt.step()
    except BreakpointHit as e:
        hit = e
    finally:
        rec.close()
    return rec, hit


def _grad_norms(doc):
    return {n["key"]: (n["grad"]["in"][0]["norm"] if n.get("grad") else None)
            for n in doc["nodes"]}


def test_show_recorder_scrubs_steps_by_updates_only():
    rec, _ = _train()
    w = widget.show(rec)
    c = w.controller
    assert isinstance(c, RecorderController)
    assert w.current["recorder"] == {"steps": rec.steps, "step": rec.steps[-1]}
    ids_before = sorted(n["id"] for n in w.current["nodes"])
    edges_before = w.current["edges"]
    for step in (0, 3, 1):
        n_sent = len(w.sent)
        t0 = time.perf_counter()
        c.command("rec_step", {"step": step})
        ms = (time.perf_counter() - t0) * 1e3
        msgs = list(w.sent)[n_sent:]
        d = next(m for m in msgs if m["type"] == "diff")["diff"]
        assert not d["add_nodes"] and not d.get("remove_nodes") and not d["add_edges"]
        assert d["update"], "the colours must change between steps"
        assert msgs[-1] == {"type": "recorder", "steps": rec.steps, "step": step}
        assert sorted(n["id"] for n in w.current["nodes"]) == ids_before
        assert w.current["edges"] == edges_before
        # the numbers drawn are the recorder's own, at that step
        k = rec.steps.index(step)
        for key, g in _grad_norms(w.current).items():
            want = rec.history(key, "grad_norm")[k] if key in rec.keys() else np.nan
            if g is None:
                assert np.isnan(want) or key not in rec.keys()
            else:
                np.testing.assert_allclose(g, want, rtol=1e-12)
        print(f"[timing] recorder step change: {ms:.1f} ms for {len(w.current['nodes'])} nodes")
    c.command("rec_step", {"step": 99})  # the nearest kept step
    assert w.current["recorder"]["step"] == rec.steps[-1] or w.sent[-1]["step"] == rec.steps[-1]


def test_history_message_is_rec_history():
    rec, _ = _train()
    w = widget.show(rec, step=2)
    assert w.sent[-1]["step"] == 2 or w.current["recorder"]["step"] == 2
    key = next(n["key"] for n in w.current["nodes"] if n["op"] in ("relu", "ReLU", "threshold")
               or "relu" in n["op"].lower())
    w.controller.command("history", {"key": key})
    h = w.sent[-1]
    assert h["type"] == "history" and h["key"] == key and h["steps"] == rec.steps
    for stat in ("grad_norm", "out_zeros"):
        got = np.array([np.nan if v is None else v for v in h["series"][stat]])
        np.testing.assert_allclose(got, rec.history(key, stat), rtol=1e-12)
    # a fraction of zeros of a ReLU's output, in [0, 1], and some are zero
    assert 0 <= np.nanmin(got) and np.nanmax(got) <= 1


def test_recorder_without_steps_is_refused():
    m = dt.nn.Linear(2, 1)
    rec = Recorder(m)
    try:
        with pytest.raises(ValueError, match="kept no step"):
            widget.show(rec)
    finally:
        rec.close()


def test_breakpoint_hit_stepper_displays_at_the_node():
    rec, hit = _train(steps=12, blow_at=8, break_when="exploding")
    assert hit is not None and hit.step == 8
    v = _display.view(hit.stepper)
    st = v.current["status"]
    node = next(n for n in v.current["nodes"] if n["id"] == st["current"])
    assert node["op"] == hit.node.op and node["scope"] == hit.node.scope
    assert st["step"] > 0 and not st["done"]
    hit.stepper.close()


def test_recorder_as_a_cells_value_displays_its_view():
    from IPython.core.formatters import DisplayFormatter

    rec, _ = _train(steps=3)
    df = DisplayFormatter()
    dyntorch.viz.register_formatters(df.mimebundle_formatter)
    data, _md = df.format(rec)
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "image/svg+xml" in data and "<svg" in data["image/svg+xml"]
    empty = Recorder(dt.nn.Linear(2, 1))
    try:
        data, _md = df.format(empty)  # nothing kept yet: plain text
        assert "application/vnd.jupyter.widget-view+json" not in data
        assert "Recorder" in data["text/plain"]
    finally:
        empty.close()


def test_graph_recorder_callback_shows_its_recorder():
    from dyntorch.train import LightningModule, Trainer
    from dyntorch.train.callbacks import GraphRecorder
    from dyntorch.utils.data import DataLoader, TensorDataset

    class Reg(LightningModule):
        def __init__(self):
            super().__init__()
            self.net = dt.nn.Sequential(dt.nn.Linear(3, 4), dt.nn.Tanh(), dt.nn.Linear(4, 1))

        def training_step(self, batch, batch_idx):
            x, y = batch
            return ((self.net(x) - y) ** 2).mean()

        def configure_optimizers(self):
            return dt.optim.SGD(self.parameters(), lr=1e-2)

    dt.manual_seed(0)
    loader = DataLoader(TensorDataset(dt.randn(32, 3), dt.randn(32, 1)), batch_size=8)
    cb = GraphRecorder(keep=10)
    Trainer(max_epochs=1, callbacks=[cb], enable_progress_bar=False, logger=False,
            enable_checkpointing=False).fit(Reg(), loader)
    w = widget.show(cb)
    assert w.controller.recorder is cb.recorder
    assert w.current["recorder"]["steps"] == cb.recorder.steps == [0, 1, 2, 3]
    scopes = {n["scope"] for n in w.current["nodes"]}
    assert "net.0" in scopes and "net.2" in scopes
