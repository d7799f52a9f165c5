"""explain() results and diffs display as the graph with the cause/chain or divergence marked,
a caption and a legend; the static picture beside the widget keeps the marks."""
from __future__ import annotations

import pytest

import dyntorch as dt
from dyntorch.debug import explain

pytest.importorskip("anywidget")

import dyntorch.viz  # noqa: E402, F401 - registers the displays
from dyntorch.viz.marked_view import CAUSE, CHAIN  # noqa: E402

WIDGET = "application/vnd.jupyter.widget-view+json"


def _explanation():
    dt.manual_seed(0)
    m = dt.nn.Sequential(dt.nn.Linear(3, 4), dt.nn.ReLU())
    with dt.no_grad():
        m[0].bias.fill_(-100.0)  # every ReLU output is exactly 0
    loss = (m(dt.randn(2, 3)).log() * 2.0).sum()  # -inf at log, carried on to the loss
    return explain(loss)


def test_explanation_displays_graph_with_cause_chain_and_reason():
    ex = _explanation()
    b = ex._repr_mimebundle_()
    data = b[0] if isinstance(b, tuple) else b
    assert WIDGET in data and "image/svg+xml" in data and "text/markdown" in data
    from dyntorch import _display

    w = _display.view(ex)
    doc = w.current
    cause = f"n{ex.node.seq}"
    assert doc["marks"][cause] == CAUSE
    chain = [f"n{n.seq}" for n in ex.chain if f"n{n.seq}" != cause]
    assert chain and all(doc["marks"][i] == CHAIN for i in chain)
    assert ex.reason in doc["caption"]
    assert [c for c, _ in doc["legend"]] == [CAUSE, CHAIN]
    # the picture (what a notebook saved headless shows) carries the marks and the reason
    svg = data["image/svg+xml"]
    assert CAUSE in svg.lower() and CHAIN in svg.lower()
    assert ex.reason.split(",")[0][:30].replace("&", "&amp;") in svg
    assert w.source is ex


def test_diff_displays_coloured_by_divergence_with_legend():
    def net():
        dt.manual_seed(0)
        return dt.nn.Sequential(dt.nn.Linear(3, 4), dt.nn.Tanh(), dt.nn.Linear(4, 1))

    m, m2 = net(), net()
    with dt.no_grad():
        m2[2].weight.mul_(2.0)  # the edit: only the last layer differs
    x = dt.randn(5, 3)
    d = dt.viz.diff(m(x).sum(), m2(x).sum(), model=(m, m2))
    bundle = d._repr_mimebundle_()
    assert WIDGET in bundle and "text/html" in bundle and "image/svg+xml" in bundle
    from dyntorch.viz.marked_view import diff_view

    w = diff_view(d)
    marks = w.current["marks"]
    colours = d.node_colors()
    assert marks == colours
    assert "#ef476f" in marks.values() and "#b7e4b0" in marks.values()
    assert len(w.current["legend"]) == 4 and "first divergent" in w.current["caption"]
