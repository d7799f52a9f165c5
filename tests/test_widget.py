"""The notebook widget's model on the Python side: documents, diffs, commands, live view.

The front end's messages are fed to the widget's real handler; what the widget sends is read
from ``widget.sent`` (every message, in order). Diffs are checked by applying them with
``dyntorch.viz.apply_diff`` (the front end's contract) and comparing with a fresh document.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest

pytest.importorskip("anywidget")

import dyntorch as torch  # noqa: E402
import dyntorch.nn.functional as F  # noqa: E402
from dyntorch.debug import BackwardStepper  # noqa: E402
from dyntorch.viz import apply_diff, graph_json  # noqa: E402
from dyntorch.viz import widget as W  # noqa: E402


def _graph(seed=0):
    torch.manual_seed(seed)
    x = torch.randn(4, 6, requires_grad=True)
    w = torch.randn(3, 6, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    y = F.linear(x, w, b).tanh()
    return (y * y).mean(), (x, w, b)


def _msg(w, **content):
    w._on_msg(w, content, [])


def _strip(doc):
    d = copy.deepcopy(doc)
    d.pop("rev", None)
    return d


def test_show_sends_the_whole_document_once():
    loss, _ = _graph()
    w = W.show(loss)
    ref = graph_json(loss)
    assert w.mode == "graph"
    assert [n["id"] for n in w.doc["nodes"]] == [n["id"] for n in ref["nodes"]]
    assert len(w.doc["edges"]) == len(ref["edges"])
    assert [m["type"] for m in w.sent] == ["doc"]
    # a new view says hello with the rev it has: no resend when it is current
    _msg(w, type="hello", rev=w.doc["rev"], graph_id=w.doc["graph_id"])
    assert [m["type"] for m in w.sent] == ["doc"]
    _msg(w, type="need_full", rev=-1)
    assert w.sent[-1]["type"] == "doc" and w.sent[-1]["doc"]["rev"] == w.doc["rev"]


def test_stepper_diffs_rebuild_the_document():
    loss, _ = _graph(1)
    s = BackwardStepper(loss, retain_graph=True)
    w = W.stepper_widget(s)
    assert w.mode == "stepper" and w.controller is not None
    front = copy.deepcopy(w.current)  # what the front end holds
    for k in range(1, len(s) + 1):
        _msg(w, type="cmd", cmd="step")
        assert len(s.history) == k
        m = w.sent[-1]
        assert m["type"] == "diff" and m["diff"]["rev"] == front["rev"] + 1
        assert "add_nodes" not in m["diff"] or not m["diff"]["add_nodes"]  # only states/grads
        front = apply_diff(front, m["diff"])
        assert _strip(front) == _strip(W._clean(graph_json(s)) | {"breakpoints": []})
    _msg(w, type="cmd", cmd="step")  # past the last node: backward finishes
    front = apply_diff(front, w.sent[-1]["diff"])
    states = {n["id"]: n["state"] for n in front["nodes"]}
    assert set(states.values()) == {"done"}
    assert front["status"]["done"] is True
    s.close()


def test_state_and_gradients_after_steps_match_the_stepper():
    loss, _ = _graph(2)
    s = BackwardStepper(loss, retain_graph=True)
    w = W.stepper_widget(s)
    for _ in range(3):
        _msg(w, type="cmd", cmd="step")
    doc = w.current
    by_id = {n["id"]: n for n in doc["nodes"]}
    for i, node in enumerate(s.order):
        assert by_id[f"n{node.seq}"]["state"] == s.state_of(i)
    cur = s.current
    assert doc["status"]["current"] == f"n{cur.node.seq}" and doc["status"]["step"] == 3
    g_in = by_id[f"n{cur.node.seq}"]["grad"]["in"][0]
    arr = cur.grad_outputs[0].numpy().astype(np.float64)
    assert math.isclose(g_in["norm"], float(np.linalg.norm(arr)), rel_tol=1e-6)
    assert math.isclose(g_in["mean"], float(arr.mean()), rel_tol=1e-6, abs_tol=1e-12)
    assert sum(g_in["hist"]["counts"]) == arr.size
    s.close()


def test_back_reset_and_step_from_code():
    loss, _ = _graph(3)
    s = BackwardStepper(loss, retain_graph=True)
    w = W.stepper_widget(s)
    for cmd in ("step", "step", "back"):
        _msg(w, type="cmd", cmd=cmd)
    assert w.current["status"]["step"] == 1 == len(s.history)
    s.step(2)  # from code: the view catches up after the cell (post_run_cell) or on refresh
    W._refresh_all()
    assert w.current["status"]["step"] == 3
    _msg(w, type="cmd", cmd="reset")
    assert w.current["status"]["step"] == 0
    assert {n["state"] for n in w.current["nodes"]} <= {"pending", "ready"}
    _msg(w, type="cmd", cmd="run")
    assert w.current["status"]["done"] is True
    s.close()


def test_breakpoint_on_selected_node():
    loss, _ = _graph(4)
    s = BackwardStepper(loss, retain_graph=True)
    w = W.stepper_widget(s)
    target = s.order[3]
    tid = f"n{target.seq}"
    _msg(w, type="select", node=tid)
    assert w.selected == tid
    _msg(w, type="cmd", cmd="break", node=tid)
    assert w.current["breakpoints"] == [tid]
    _msg(w, type="cmd", cmd="run")
    assert s.current.node is target and w.current["status"]["current"] == tid
    _msg(w, type="cmd", cmd="break", node=tid)  # toggles off
    assert w.current["breakpoints"] == [] and not s.breakpoints
    s.close()


def test_layout_engine_is_sent_on_request():
    pytest.importorskip("dyntorch.viz._static")
    from dyntorch.viz import _static

    if not (_static.STATIC / "layout_worker.js").exists():
        pytest.skip("front end not built (make extension)")
    loss, _ = _graph()
    w = W.show(loss)
    _msg(w, type="need_engine")
    assert w.sent[-1] == {"type": "engine", "bytes": len(_static.layout_worker())}
    assert "wasm" in _static.layout_worker().lower()
    assert w._esm == _static.widget_esm()


def test_diff_docs_needs_full_document_for_another_graph():
    a, _ = _graph(5)
    b, _ = _graph(6)
    da, db = graph_json(a), graph_json(b)
    assert W.diff_docs(None, da) is None
    assert W.diff_docs(da, db) is None
    assert W.diff_docs(da, copy.deepcopy(da))["update"] == []


def test_clean_makes_strict_json():
    assert W._clean({"a": [float("nan"), 1.0, float("inf")], "b": (1, 2)}) == \
        {"a": [None, 1.0, None], "b": [1, 2]}


def test_live_view_grows_and_follows_training():
    torch.manual_seed(7)
    w1 = torch.randn(5, 4, requires_grad=True)
    x = torch.randn(8, 4)
    t = torch.randn(8, 5)
    with W.live(display=False, interval=0.0) as view:
        h = F.linear(x, w1)
        first = len(view.current["nodes"])
        h = h.tanh()
        assert len(view.current["nodes"]) > first  # grew op by op (interval 0: every op)
        losses = []
        for _ in range(3):
            w1.grad = None
            loss = F.mse_loss(F.linear(x, w1).tanh(), t)
            losses.append(float(loss.item()))
            loss.backward()
            g = w1.grad.numpy().astype(np.float64)
            with torch.no_grad():
                w1 -= 0.1 * w1.grad
    assert view.error is None
    assert view.iteration == 3
    assert view.losses == pytest.approx(losses)
    assert view.metrics["loss"] == pytest.approx(losses)
    (name, norm), = view.grad_norms.items()
    assert norm == pytest.approx(float(np.linalg.norm(g)), rel=1e-6)
    # iterations 2 and 3 have the graph of iteration 1: diffs only, no new layout
    kinds = [m["type"] for m in view.sent]
    last_doc = max(i for i, k in enumerate(kinds) if k == "doc")
    assert kinds[last_doc + 1:].count("diff") >= 2
    # the hooks are gone after the block
    from dyntorch import _dispatch as D
    from dyntorch.autograd import functional_api as FA

    assert view._on_op not in D._hooks and FA.backward.__name__ == "backward"
    assert FA.backward.__module__ == "dyntorch.autograd.functional_api"


def test_stepper_displays_as_its_widget():
    loss, _ = _graph(8)
    s = BackwardStepper(loss)
    w = s.widget()
    assert W.stepper_widget(s) is w  # one view per stepper
    bundle = s._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == w.model_id
    s.close()


def test_live_view_log_replaces_the_automatic_loss():
    torch.manual_seed(9)
    w1 = torch.randn(3, 4, requires_grad=True)
    x = torch.randn(6, 4)
    logged = []
    with W.live(display=False) as view:
        for _ in range(3):
            loss = F.linear(x, w1).pow(2).mean()
            loss.backward()
            logged.append(float(loss.item()) * 2)
            view.log(loss=logged[-1], lr=0.1)
    assert view.losses == pytest.approx(logged)  # not the backward() losses as well
    assert view.metrics["loss"] == pytest.approx(logged)
    assert view.metrics["series"] == {"lr": [0.1, 0.1, 0.1]}


def test_display_registry_is_filled_from_above():
    from dyntorch import _display

    class Thing:
        pass

    with pytest.raises(LookupError, match="no notebook view is registered for Thing"):
        _display.view(Thing())
    assert _display.mimebundle(Thing()) is None
    remove = _display.register(Thing, lambda obj, **kw: W.show(_graph(3)[0]))
    try:
        assert isinstance(_display.view(Thing()), W.GraphWidget)
    finally:
        remove()
    with pytest.raises(LookupError):
        _display.view(Thing())
