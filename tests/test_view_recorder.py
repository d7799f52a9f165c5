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


def test_recorder_displays_its_view_without_importing_viz_first():
    """A notebook that imports only ``dyntorch.debug`` still gets the view as a cell's value:
    the display registry loads ``dyntorch.viz`` on the first rich display."""
    import subprocess
    import sys

    code = """if True:
        import sys
        from IPython.core.formatters import DisplayFormatter
        import dyntorch as dt
        from dyntorch.debug import Recorder
        net = dt.nn.Linear(3, 1)
        rec = Recorder(net)
        dt.nn.functional.mse_loss(net(dt.randn(4, 3)), dt.randn(4, 1)).backward()
        assert "dyntorch.viz" not in sys.modules
        data, _ = DisplayFormatter().format(rec)
        print(sorted(data))
        """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "application/vnd.jupyter.widget-view+json" in out.stdout
    assert "image/svg+xml" in out.stdout


def _fit_with(cb, batches=4):
    from dyntorch.train import LightningModule, Trainer
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
    loader = DataLoader(TensorDataset(dt.randn(8 * batches, 3), dt.randn(8 * batches, 1)),
                        batch_size=8)
    Trainer(max_epochs=1, callbacks=[cb], enable_progress_bar=False, logger=False,
            enable_checkpointing=False).fit(Reg(), loader)


def test_graph_recorder_callback_shows_its_recorder():
    from dyntorch.train.callbacks import GraphRecorder

    cb = GraphRecorder(keep=10)
    _fit_with(cb)
    w = widget.show(cb)
    assert w.controller.recorder is cb.recorder
    assert w.current["recorder"]["steps"] == cb.recorder.steps == [0, 1, 2, 3]
    scopes = {n["scope"] for n in w.current["nodes"]}
    assert "net.0" in scopes and "net.2" in scopes


def test_graph_recorder_show_displays_the_view_during_fit_and_it_follows():
    """``GraphRecorder(show=True)`` in an IPython shell: one view is displayed at the first
    recorded step, inside ``fit``, and it follows the later steps before ``fit`` returns."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from dyntorch.train.callbacks import GraphRecorder

    had = InteractiveShell.initialized()
    InteractiveShell.instance()
    try:
        from dyntorch.viz.recorder_view import RecorderController

        old, RecorderController.live_interval = RecorderController.live_interval, 0.0
        try:
            cb = GraphRecorder(keep=10, show=True)
            with capture_output() as cap:
                _fit_with(cb, batches=5)
        finally:
            RecorderController.live_interval = old
        shown = [o.data for o in cap.outputs]
        assert len(shown) == 1
        assert "application/vnd.jupyter.widget-view+json" in shown[0]
        model_id = shown[0]["application/vnd.jupyter.widget-view+json"]["model_id"]
        import warnings

        from ipywidgets import Widget

        with warnings.catch_warnings():  # the registry's name is deprecated, not the registry
            warnings.simplefilter("ignore", DeprecationWarning)
            w = Widget.widgets[model_id]
        assert w.controller.recorder is cb.recorder
        assert w.controller.step == 4 == cb.recorder.steps[-1]  # followed during fit
        assert w.controller.live_redraws == 4
    finally:
        if not had:
            InteractiveShell.clear_instance()
    # outside IPython nothing is displayed (and nothing fails)
    cb2 = GraphRecorder(keep=10, show=True)
    _fit_with(cb2, batches=2)
    assert cb2.recorder.steps == [0, 1]


def test_step_hook_runs_once_per_recorded_step_and_never_breaks_training():
    dt.manual_seed(0)
    m = dt.nn.Sequential(dt.nn.Linear(3, 4), dt.nn.Tanh(), dt.nn.Linear(4, 1)).double()
    x, y = dt.randn(5, 3).double(), dt.randn(5, 1).double()
    rec = Recorder(m, every=2)
    seen = []
    h = rec.register_step_hook(lambda r, step: seen.append((r is rec, step, r.steps[-1])))
    bad = rec.register_step_hook(lambda r, step: 1 / 0)
    try:
        for i in range(7):
            if i == 5:
                h.remove()
            m.zero_grad()
            ((m(x) - y) ** 2).mean().backward()
            assert all(p.grad is not None for p in m.parameters())  # training went on
    finally:
        rec.close()
    assert seen == [(True, 0, 0), (True, 2, 2), (True, 4, 4)]  # every=2; removed before 6
    assert rec.steps == [0, 2, 4, 6]
    assert isinstance(rec.error, ZeroDivisionError)
    bad.remove()
    with pytest.raises(TypeError, match="register_step_hook: expected a callable"):
        rec.register_step_hook(3)


def test_view_follows_training_in_the_same_cell_until_the_slider_goes_back():
    """The view made after the first step follows later steps as they are recorded (no
    cell boundary in between), at most every ``live_interval`` seconds; moving the slider to
    an older step stops that."""
    from dyntorch.viz.recorder_view import recorder_widget

    dt.manual_seed(0)
    m = dt.nn.Sequential(dt.nn.Linear(3, 6), dt.nn.ReLU(), dt.nn.Linear(6, 1)).double()
    x, y = dt.randn(8, 3).double(), dt.randn(8, 1).double()
    rec = Recorder(m, keep=50)

    def step():
        m.zero_grad()
        ((m(x) - y) ** 2).mean().backward()

    step()
    w = recorder_widget(rec)
    c = w.controller
    c.live_interval = 0.0
    try:
        for k in range(1, 4):
            step()
            assert c.step == k  # drawn while "the cell" runs
            assert w.sent[-1] == {"type": "recorder", "steps": rec.steps, "step": k}
        assert c.live_redraws == 3
        c.show_step(1)  # the user scrubs back
        step()
        assert c.step == 1 and c.live_redraws == 3
        c.show_step(None)  # back to the newest: following again
        c.live_interval = 3600.0  # throttled: no redraw within the interval
        step()
        assert c.step == 4 and c.live_redraws == 3
    finally:
        rec.close()
