"""graph_json (schema fields), diffs, to_dot clusters and folding, plots and the recorder."""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

import dyntorch as dt
from dyntorch.debug import BackwardStepper
from dyntorch.nn.module import Module
from dyntorch.nn.parameter import Parameter
from dyntorch.viz import GraphTracker, apply_diff, graph_diff, graph_json

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


class Mlp(Module):
    def __init__(self, n, seed):
        super().__init__()
        r = np.random.default_rng(seed)
        self.w = Parameter(dt.tensor(r.standard_normal((2, n))))
        self.b = Parameter(dt.tensor(r.standard_normal(n)))

    def forward(self, x):
        h = (x * self.w + self.b).tanh()  # MLPLINE
        return h * h


class Block(Module):
    def __init__(self, n, seed):
        super().__init__()
        self.mlp = Mlp(n, seed)

    def forward(self, x):
        return x + self.mlp(x)


class Net(Module):
    def __init__(self, n=4, depth=3):
        super().__init__()
        for i in range(depth):
            setattr(self, f"b{i}", Block(n, i))
        self.depth = depth

    def forward(self, x):
        for i in range(self.depth):
            x = getattr(self, f"b{i}")(x)
        return x.exp().sum()


def _setup():
    model = Net()
    x = dt.tensor(np.random.default_rng(0).standard_normal((2, 4)), requires_grad=True)
    return model, x, model(x)


# The documented fields of docs/graph-schema.md, version 1 (plus the announced additions).
NODE_FIELDS = {"id", "seq", "op", "kind", "label", "scope", "source", "inputs", "outputs",
               "saved", "param", "state", "grad", "time_us"}
SUMMARY_FIELDS = {"shape", "dtype", "device", "count", "mean", "std", "min", "max", "norm",
                  "nan", "inf", "zeros", "hist", "preview", "heat"}


def _schema_fields_from_doc() -> set:
    import pathlib

    text = (pathlib.Path(__file__).parent.parent / "docs" / "graph-schema.md").read_text()
    return set(re.findall(r'"([a-z_]+)":', text))


def _check_doc(doc, model=None):
    documented = _schema_fields_from_doc()
    assert doc["schema"] == "dyntorch.graph" and doc["version"] == 1
    assert set(doc) == {"schema", "version", "graph_id", "rev", "nodes", "edges", "scopes",
                        "status"}
    ids = set()
    for n in doc["nodes"]:
        assert set(n) == NODE_FIELDS and set(n) <= documented
        assert n["id"] == f"n{n['seq']}"
        assert n["kind"] in ("op", "leaf", "output")
        assert n["state"] in ("idle", "pending", "ready", "current", "done")
        for m in n["outputs"]:
            assert set(m) == {"shape", "dtype", "device"}
        for m in n["inputs"]:
            assert {"shape", "dtype", "device", "requires_grad"} >= set(m) >= {"shape", "dtype"}
        if n["source"] is not None:
            assert set(n["source"]) == {"file", "line", "text"}
        if n["grad"] is not None:
            for s in n["grad"]["in"] + n["grad"]["out"]:
                assert s is None or set(s) == SUMMARY_FIELDS
        ids.add(n["id"])
    seqs = [n["seq"] for n in doc["nodes"]]
    assert seqs == sorted(seqs)
    for e in doc["edges"]:
        assert set(e) == {"src", "dst", "slot", "src_out"} and set(e) <= documented
        assert e["src"] in ids and e["dst"] in ids
    for s in doc["scopes"]:
        assert set(s) == {"name", "parent", "type", "nodes", "repeat_of"}
    assert set(doc["status"]) == {"step", "total", "current", "done", "text"}
    json.dumps(doc, allow_nan=False)  # strict JSON: the front end parses it


def test_graph_json_fields_edges_and_sources():
    model, x, out = _setup()
    doc = graph_json(out, model=model)
    _check_doc(doc)
    nodes = {n["id"]: n for n in doc["nodes"]}
    # every edge of the Node API is in the document, pointing data-forward
    for n in doc["nodes"]:
        pass
    root = out.grad_fn
    rootdoc = nodes[f"n{root.seq}"]
    assert rootdoc["kind"] == "output" and rootdoc["op"] == "SumBackward0"
    assert rootdoc["outputs"][0]["shape"] == []
    child = root.next_functions[0][0]
    assert {"src": f"n{child.seq}", "dst": f"n{root.seq}", "slot": 0, "src_out": 0} \
        in doc["edges"]
    # leaves: parameters named, x unnamed
    leaves = [n for n in doc["nodes"] if n["kind"] == "leaf"]
    params = sorted(n["param"] for n in leaves if n["param"])
    assert params == sorted(k for k, _ in model.named_parameters())
    assert any(n["param"] is None and n["outputs"][0]["shape"] == [2, 4] for n in leaves)
    # tanh sits in its module scope, with the user's line
    tanh = [n for n in doc["nodes"] if n["op"] == "TanhBackward0"]
    assert sorted(n["scope"] for n in tanh) == ["b0.mlp", "b1.mlp", "b2.mlp"]
    import inspect

    lines, start = inspect.getsourcelines(Mlp.forward)
    want = start + next(i for i, t in enumerate(lines) if "# MLPLINE" in t)
    assert all(n["source"]["file"] == __file__ and n["source"]["line"] == want for n in tanh)
    mul = [n for n in doc["nodes"] if n["op"] == "MulBackward0" and n["scope"] == "b0.mlp"]
    assert any(s["name"] in ("a", "b") for n in mul for s in n["saved"])
    # scopes and repeated blocks
    sc = {s["name"]: s for s in doc["scopes"]}
    assert sc["b0.mlp"]["parent"] == "b0" and sc["b0"]["parent"] is None
    assert sc["b0"]["type"] == "Block" and sc["b1.mlp"]["type"] == "Mlp"
    assert sc["b0"]["repeat_of"] is None and sc["b1"]["repeat_of"] == "b0"
    assert sc["b2"]["repeat_of"] == "b0" and sc["b2.mlp"]["repeat_of"] is None
    assert sc["b0"]["nodes"] == sum(1 for n in doc["nodes"] if n["scope"].startswith("b0"))


def test_graph_json_from_stepper_states_and_grads():
    model, x, out = _setup()
    s = BackwardStepper(out)
    doc0 = graph_json(s, model=model)
    _check_doc(doc0)
    states = [n["state"] for n in doc0["nodes"]]
    assert states.count("ready") == 1 and set(states) == {"ready", "pending"}
    s.step(5)
    doc = graph_json(s, model=model)
    _check_doc(doc)
    by = {n["id"]: n for n in doc["nodes"]}
    cur = by[doc["status"]["current"]]
    assert cur["state"] == "current" and cur["id"] == f"n{s.current.node.seq}"
    assert sum(n["state"] == "done" for n in doc["nodes"]) == 4
    assert doc["status"]["step"] == 5 and doc["status"]["total"] == s.total
    # the gradient summaries are the step's own numbers
    st = s.current
    g = by[cur["id"]]["grad"]
    assert g["out"][0]["norm"] == pytest.approx(float(np.linalg.norm(st.grad_inputs[0].numpy())))
    # ready nodes are exactly the ones the engine can run next
    ready = {n["id"] for n in doc["nodes"] if n["state"] == "ready"}
    assert f"n{s.pending[0].seq}" in ready
    s.run()
    docf = graph_json(s, model=model)
    assert all(n["state"] == "done" for n in docf["nodes"]) and docf["status"]["done"]
    s.close()


def test_diffs_reproduce_final_document():
    model, x, out = _setup()
    s = BackwardStepper(out)
    tr = GraphTracker(s, model=model)
    first = tr.document()
    doc = first
    diffs = []
    while s.step(3) is not None:
        diffs.append(tr.diff())
    s.back(4)
    diffs.append(tr.diff())
    assert tr.doc == {**graph_json(s, model=model), "rev": tr.doc["rev"]}
    s.step(2)
    diffs.append(tr.diff())
    s.reset()
    diffs.append(tr.diff())
    assert all(n["state"] in ("ready", "pending") and n["grad"] is None
               for n in tr.doc["nodes"])
    s.run()
    diffs.append(tr.diff())
    final = tr.doc
    for d in diffs:
        assert d["schema"] == "dyntorch.graph.diff" and d["rev"] == doc["rev"] + 1
        json.dumps(d, allow_nan=False)
        doc = apply_diff(doc, d)
    assert doc == final
    assert final == {**graph_json(s, model=model), "rev": final["rev"]}
    # an update carries only what changed
    assert all(set(u) <= NODE_FIELDS for d in diffs for u in d["update"])
    assert any(u.get("state") == "done" and "grad" in u for u in diffs[1]["update"])
    assert not any("outputs" in u for d in diffs for u in d["update"])
    with pytest.raises(ValueError):
        apply_diff(first, diffs[1])  # out of order
    s.close()


def test_diff_of_a_growing_forward_graph():
    x = dt.tensor(np.arange(3.0), requires_grad=True)
    y = x * 2.0
    z = y.exp()
    d1 = graph_json(z)
    w = (z + y).sum()
    d2 = graph_json(w)
    assert d2["graph_id"] == d1["graph_id"]  # the same forward pass, grown
    diff = graph_diff(d1, d2)
    assert {n["op"] for n in diff["add_nodes"]} == {"AddBackward0", "SumBackward0"}
    assert len(diff["add_edges"]) == 3
    assert [u["id"] for u in diff["update"]] == [f"n{z.grad_fn.seq}"]  # no longer the output
    assert diff["update"][0]["kind"] == "op"
    assert apply_diff(d1, diff) == {**d2, "rev": 1}
    # nothing changed: an empty diff
    again = graph_diff(d2, graph_json(w))
    assert again["add_nodes"] == [] and again["update"] == [] and again["add_edges"] == []
    # the next iteration (same leaf, new ops) is another graph
    other = graph_json((x * 3.0).sum())
    assert other["graph_id"] != d1["graph_id"]
    with pytest.raises(ValueError):
        graph_diff(d2, other)
    # a stepper over w continues the same graph
    s = BackwardStepper(w)
    assert graph_json(s)["graph_id"] == d1["graph_id"]
    s.close()


def test_to_dot_clusters_and_folding():
    from dyntorch.viz import to_dot

    model, x, out = _setup()
    g = to_dot(out, model=model)
    src = g.source
    for scope in ("b0", "b0_mlp", "b1", "b1_mlp", "b2", "b2_mlp"):
        assert f"subgraph cluster_{scope} " in src
    assert src.count("TanhBackward0") == 0 and src.count("tanh") >= 3
    assert "[2, 4] float64" in src
    folded = to_dot(out, depth=1, model=model).source
    assert "subgraph cluster_b0 " in folded and "cluster_b0_mlp" not in folded
    assert folded.count("box3d") == 3 and "b0.mlp (Mlp)" in folded
    assert "tanh" not in folded
    top = to_dot(out, depth=0, model=model).source
    assert "cluster_" not in top and top.count("box3d") == 3
    # folded edges: no self-loops
    assert not re.search(r"(fold\d+) -> \1\b", top)
    s = BackwardStepper(out)
    s.step(4)
    stepped = to_dot(s, model=model).source
    assert "|g|=" in stepped and "#ffb347" in stepped  # norms and the current node
    s.close()


@pytest.mark.skipif(shutil.which("dot") is not None, reason="Graphviz is installed here")
def test_render_without_graphviz_says_how_to_install(tmp_path):
    from dyntorch.viz import GraphvizNotInstalled, to_dot

    _, _, out = _setup()
    g = to_dot(out)
    with pytest.raises(GraphvizNotInstalled, match="apt-get install graphviz"):
        g.render(str(tmp_path / "g"), format="svg")
    with pytest.raises(GraphvizNotInstalled, match="brew install graphviz"):
        g.pipe(format="svg")


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
def test_render_with_graphviz():
    from dyntorch.viz import to_dot

    _, _, out = _setup()
    assert b"<svg" in to_dot(out).pipe(format="svg")


def test_plots_and_recorder():
    import matplotlib

    matplotlib.use("Agg")
    from dyntorch.viz import GradNormRecorder, plot_grad_flow, plot_grad_hist

    model, x, out = _setup()
    rec = GradNormRecorder(model)
    out.backward()
    norms = rec.record()
    for name in ("b0.mlp", "b1.mlp", "b2.mlp"):
        w = model.get_submodule(name) if hasattr(model, "get_submodule") else None
        mod = w if w is not None else getattr(getattr(model, name.split(".")[0]), "mlp")
        ref = np.sqrt(sum(float((p.grad.numpy() ** 2).sum()) for p in mod.parameters()))
        assert norms[name] == pytest.approx(ref)
    for p in model.parameters():
        p.grad = None
    model(x).backward()
    rec.record()
    (model(x) * 2.0).backward()  # gradients accumulate: 1x + 2x = 3x the first
    rec.record()
    assert rec.steps == [0, 1, 2]
    np.testing.assert_allclose(rec.norms["b1.mlp"], [norms["b1.mlp"], norms["b1.mlp"],
                                                     3 * norms["b1.mlp"]], rtol=1e-12)
    assert rec.total()[0] == pytest.approx(np.sqrt(sum(v * v for v in norms.values())))
    fig = plot_grad_flow(model)
    assert len(fig.axes[0].patches) == 2 * len(list(model.parameters()))
    fig2 = plot_grad_hist(model)
    assert len(fig2.axes[0].lines) == len(list(model.parameters()))
    fig3 = rec.plot()
    assert len(fig3.axes[0].lines) == len(rec.norms)
    import matplotlib.pyplot as plt

    plt.close("all")


def test_viz_import_is_light_and_widget_lazy():
    import dyntorch.viz as viz

    assert "show" in dir(viz)
    try:
        viz.show
    except AttributeError as e:  # the widget file may not exist yet: a clear message
        assert "widget" in str(e)


_WASM = (__import__("pathlib").Path(__file__).parent.parent / "extension" / "node_modules" /
         "@hpcc-js" / "wasm-graphviz" / "dist" / "index.js")


@pytest.mark.skipif(shutil.which("node") is None or not _WASM.exists(),
                    reason="needs node and the extension's Graphviz WebAssembly build")
def test_to_dot_lays_out_with_graphviz(tmp_path):
    """The DOT text is valid Graphviz: lay it out with Graphviz itself (its WASM build)."""
    import subprocess

    from dyntorch.viz import to_dot

    model, x, out = _setup()
    s = BackwardStepper(out)
    s.step(5)
    files = []
    for i, g in enumerate([to_dot(out, model=model), to_dot(out, depth=1, model=model),
                           to_dot(s, depth=0, model=model)]):
        p = tmp_path / f"g{i}.dot"
        p.write_text(g.source)
        files.append(str(p))
    s.close()
    script = tmp_path / "layout.mjs"
    script.write_text(
        f'import {{ Graphviz }} from "{_WASM.as_posix()}";\n'
        'import fs from "fs";\n'
        "const gv = await Graphviz.load();\n"
        "for (const f of process.argv.slice(2)) {\n"
        '  const svg = gv.layout(fs.readFileSync(f, "utf8"), "svg", "dot");\n'
        '  console.log((svg.match(/<g id="clust/g) || []).length,'
        ' (svg.match(/class="node"/g) || []).length);\n'
        "}\n")
    r = subprocess.run(["node", str(script), *files], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    counts = [tuple(map(int, line.split())) for line in r.stdout.split("\n") if line]
    n_nodes = len(graph_json(out)["nodes"])
    assert counts[0] == (6, n_nodes)       # b0, b0.mlp, b1, ... as clusters; every node
    assert counts[1][0] == 3 and counts[1][1] < n_nodes  # mlp folded into boxes
    assert counts[2][0] == 0


# ----------------------------------------------------------------------------- issue 12
def test_repeats_are_consecutive_sibling_blocks_only():
    import dyntorch as dt
    import dyntorch.nn as nn

    dt.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4), nn.Tanh(),
                      nn.Linear(4, 4), nn.Linear(4, 2))
    doc = graph_json(m(dt.randn(3, 4)).sum())
    rep = {s["name"]: s["repeat_of"] for s in doc["scopes"]}
    # 0,1,2 are one run; 4 is apart from them (Tanh between) and 5 has another shape
    assert rep == {"0": None, "1": "0", "2": "0", "3": None, "4": None, "5": None}


def test_parameters_are_named_without_a_model():
    import dyntorch as dt
    import dyntorch.nn as nn

    dt.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Sequential(nn.Linear(8, 1)))
    doc = graph_json(m(dt.randn(3, 4)).pow(2).mean())
    leaves = sorted(n["label"] for n in doc["nodes"] if n["kind"] == "leaf")
    assert leaves == ["0.bias", "0.weight", "2.0.bias", "2.0.weight"]
    assert {n["label"]: n["scope"] for n in doc["nodes"] if n["kind"] == "leaf"}["2.0.weight"] == "2.0"


def test_scopes_in_the_models_names_when_its_child_ran_outermost():
    # the Trainer's pattern: the model passed to name parameters wraps the network that
    # ran as the outermost module; ops and their parameters must share one scope
    class Wrap(dt.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = dt.nn.Sequential(dt.nn.Linear(3, 4), dt.nn.Tanh(), dt.nn.Linear(4, 1))

    w = Wrap()
    loss = w.net(dt.randn(2, 3)).sum()  # net called directly, as training_step does
    doc = dt.viz.graph_json(loss, model=w)
    by_label = {n["label"]: n["scope"] for n in doc["nodes"]}
    assert by_label["net.0.weight"] == "net.0"
    ops = {(n["label"], n["scope"]) for n in doc["nodes"] if n["kind"] != "leaf"}
    assert ("linear", "net.0") in ops and ("tanh", "net.1") in ops and ("linear", "net.2") in ops
    assert {s["name"] for s in doc["scopes"]} >= {"net", "net.0", "net.1", "net.2"}
    # without a model, scopes stay as the modules ran them
    plain = dt.viz.graph_json(loss)
    assert ("linear", "0") in {(n["label"], n["scope"]) for n in plain["nodes"]}
