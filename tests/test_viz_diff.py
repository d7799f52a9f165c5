"""viz.diff: two runs of one program matched node by node; the first divergent node."""
from __future__ import annotations

import json

import numpy as np
import pytest

import dyntorch as dt
from dyntorch.debug import BackwardStepper, Recorder
from dyntorch.viz import diff


def _model(seed=0):
    dt.manual_seed(seed)
    return dt.nn.Sequential(dt.nn.Linear(6, 8), dt.nn.ReLU(), dt.nn.Linear(8, 8), dt.nn.Tanh(),
                            dt.nn.Linear(8, 2))


def _loss(m, x, y):
    return ((m(x) - y) ** 2).mean()


def test_weight_edit_names_the_edited_module():
    m = _model()
    x, y = dt.randn(5, 6), dt.randn(5, 2)
    a = _loss(m, x, y)
    m2 = _model()  # same seed, same weights (copy.deepcopy shares accumulators: see report)
    m2.load_state_dict(m.state_dict())
    with dt.no_grad():
        m2[2].weight[0, 0] += 1e-3  # edit one weight of module "2"
    b = _loss(m2, x, y)
    d = diff(a, b, model=(m, m2))
    first = d.first_divergent(rtol=1e-6)
    assert first is not None and first.scope == "2" and first.op == "LinearBackward0"
    assert first.source is not None and first.source[0].endswith("test_viz_diff.py")
    rows = {r.key: r for r in d.table()}
    # module "0" is untouched: identical values; its gradient changes (backprop through "2")
    assert rows["0/LinearBackward0#0"].value_rel == 0.0
    assert rows["0/LinearBackward0#0"].grad_rel > 0
    # the relative difference is the real one
    ha = m[2](m[1](m[0](x))).detach().numpy()
    hb = m2[2](m2[1](m2[0](x))).detach().numpy()
    np.testing.assert_allclose(rows["2/LinearBackward0#0"].value_rel,
                               np.abs(ha - hb).max() / np.abs(hb).max(), rtol=1e-6)
    # the leaf that changed is listed, in its module's scope
    leaf = [r for r in d.table() if r.kind == "leaf" and r.value_rel > 0]
    assert [r.scope for r in leaf] == ["2"]
    assert d.first_divergent(rtol=1e-6, include_leaves=True).kind == "leaf"
    # gradients are left as they were, and the graphs still run backward
    assert all(p.grad is None for p in m.parameters())
    a.backward()
    assert m[0].weight.grad is not None
    doc = d.document(rtol=1e-6)
    json.dumps(doc, allow_nan=False)
    marked = [n["id"] for n in doc["nodes"] if n.get("diff", {}).get("divergent")]
    assert marked == [first.id_a]
    assert d.node_colors(1e-6)[first.id_a] != d.node_colors(1e-6)[rows["0/LinearBackward0#0"].id_a]
    svg = d.svg(rtol=1e-6)
    assert "first divergent: LinearBackward0 in 2" in svg


def test_float32_vs_float64_small_differences_no_divergence():
    m = _model(1)
    m64 = _model(1).double()
    x, y = dt.randn(5, 6), dt.randn(5, 2)
    d = diff(_loss(m, x, y), _loss(m64, x.double(), y.double()))
    rels = [r.value_rel for r in d.table() if r.kind == "op"]
    assert max(rels) < 1e-5 and max(rels) > 0  # float32 rounding, not zero
    assert d.first_divergent(rtol=1e-4) is None
    assert d.first_divergent(rtol=1e-4, on="grad") is None
    assert d.first_divergent(rtol=1e-12) is not None
    assert "no divergence" in repr(diff(_loss(m, x, y), _loss(m, x, y)))


def test_steppers_and_recorder_steps():
    m = _model(2)
    x, y = dt.randn(4, 6), dt.randn(4, 2)
    sa, sb = BackwardStepper(_loss(m, x, y)), BackwardStepper(_loss(m, x, y * 2))
    sa.run()
    sb.run()
    d = diff(sa, sb)
    first = d.first_divergent(rtol=1e-9)
    assert first.op == "SubBackward0"  # y enters at the subtraction
    sa.close()
    sb.close()
    opt = dt.optim.SGD(m.parameters(), lr=0.5)
    with Recorder(m) as rec:
        for i in range(3):
            opt.zero_grad()
            _loss(m, x, y).backward()
            opt.step()
    d2 = diff((rec, 0), (rec, 2))
    assert d2.first_divergent(rtol=1e-9).scope == "0"  # step 1 changed the first layer's output
    assert diff(rec.at(1), rec.at(1)).first_divergent(rtol=0.0) is None
    with pytest.raises(TypeError, match="expected two losses"):
        diff(1, 2)
