"""The static SVG picture of a graph document (dyntorch.viz.picture.render_svg)."""
from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import pytest

import dyntorch as torch
from dyntorch import nn
from dyntorch.viz import graph_json
from dyntorch.viz.picture import render_svg, text_color

SVG = "{http://www.w3.org/2000/svg}"
ENGINES = ["layered", pytest.param("dot", marks=pytest.mark.skipif(
    shutil.which("dot") is None, reason="Graphviz dot is not installed"))]


def _mlp_doc():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    loss = m(torch.randn(3, 4)).pow(2).sum()
    return graph_json(loss, model=m)


def _parse(svg: str):
    root = ET.fromstring(svg)
    assert root.tag == SVG + "svg"
    nodes = {g.get("data-id"): g for g in root.iter(SVG + "g") if g.get("class") == "node"}
    edges = [g for g in root.iter(SVG + "g") if g.get("class") == "edge"]
    return root, nodes, edges


def _texts(g) -> list[str]:
    return [t.text for t in g.iter(SVG + "text")]


def _center(g) -> tuple[float, float]:
    r = g.find(SVG + "rect")
    return (float(r.get("x")) + float(r.get("width")) / 2,
            float(r.get("y")) + float(r.get("height")) / 2)


@pytest.mark.parametrize("engine", ENGINES)
def test_every_node_label_and_edge_is_drawn(engine):
    doc = _mlp_doc()
    root, nodes, edges = _parse(render_svg(doc, engine=engine))
    assert root.get("data-layout") == engine
    assert set(nodes) == {n["id"] for n in doc["nodes"]}
    pairs = {(e["src"], e["dst"]) for e in doc["edges"]}
    assert len(edges) == len(pairs) == 8
    assert {(e.get("data-src"), e.get("data-dst")) for e in edges} == pairs
    by_id = {n["id"]: n for n in doc["nodes"]}
    for nid, g in nodes.items():
        n = by_id[nid]
        want = n["param"].split(".")[-1] if n["kind"] == "leaf" else n["label"]
        assert _texts(g)[0] == want
        shape = n["outputs"][0]["shape"]
        assert _texts(g)[1] == ("\u00d7".join(map(str, shape)) if shape else "scalar")
    # forward flows down the page, as in the live view (rankdir=TB)
    for e in doc["edges"]:
        assert _center(nodes[e["src"]])[1] < _center(nodes[e["dst"]])[1], e
    # every box inside the drawing
    W, H = (float(v) for v in root.get("viewBox").split()[2:])
    for g in nodes.values():
        x, y = _center(g)
        assert 0 < x < W and 0 < y < H


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")
def test_dot_layout_draws_module_scopes_as_clusters():
    root, _, _ = _parse(render_svg(_mlp_doc(), engine="dot"))
    scopes = {g.get("data-scope"): _texts(g)[0] for g in root.iter(SVG + "g")
              if g.get("class") == "cluster"}
    assert scopes == {"0": "0 : Linear", "1": "1 : ReLU", "2": "2 : Linear"}


def test_without_dot_on_path_auto_uses_the_builtin_layout(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `dot`
    doc = _mlp_doc()
    root, nodes, edges = _parse(render_svg(doc))
    assert root.get("data-layout") == "layered"
    assert len(nodes) == len(doc["nodes"]) and len(edges) == 8
    with pytest.raises(RuntimeError, match="dot"):
        render_svg(doc, engine="dot")


@pytest.mark.parametrize("engine", ENGINES)
def test_node_colors_and_contrasting_text(engine):
    doc = _mlp_doc()
    ids = [n["id"] for n in doc["nodes"]]
    colors = {ids[0]: "#000080", ids[2]: "#ffe3a3", ids[3]: "red", ids[4]: "#fff"}
    _, nodes, _ = _parse(render_svg(doc, node_colors=colors, engine=engine,
                                    highlight=[ids[-1]], title="root cause"))
    for nid, fill in colors.items():
        rect = nodes[nid].find(SVG + "rect")
        assert rect.get("fill") == fill
    txt = {nid: nodes[nid].find(SVG + "text").get("fill") for nid in colors}
    assert txt[ids[0]] == "#ffffff"          # navy: white text
    assert txt[ids[2]] == "#1f1f1f"          # pale yellow: dark text
    assert txt[ids[4]] == "#1f1f1f"
    assert nodes[ids[-1]].find(SVG + "rect").get("stroke") == "#d63384"
    assert nodes[ids[1]].find(SVG + "rect").get("stroke") != "#d63384"


def test_text_color_follows_wcag_contrast():
    assert text_color("#000000") == "#ffffff"
    assert text_color("#ffffff") == "#1f1f1f"
    assert text_color("#ff7a45") == "#1f1f1f"   # the live view's "current" orange
    assert text_color("#2f6b2a") == "#ffffff"   # its dark-theme green
    assert text_color("navy") == "#ffffff"


def test_title_is_drawn_and_names_the_svg():
    root, _, _ = _parse(render_svg(_mlp_doc(), title="my <graph>", engine="layered"))
    assert root.find(SVG + "title").text == "my <graph>"
    assert "my <graph>" in [t.text for t in root.iter(SVG + "text")]


def test_stepper_states_fill_nodes_like_the_live_view():
    torch.manual_seed(1)
    w = torch.randn(3, requires_grad=True)
    loss = (w * 2).sin().sum()
    from dyntorch.debug import BackwardStepper

    s = BackwardStepper(loss)
    s.step()
    s.step()
    doc = graph_json(s)
    states = {n["id"]: n["state"] for n in doc["nodes"]}
    assert {"done", "current", "ready"} <= set(states.values()), states
    _, nodes, _ = _parse(render_svg(doc, engine="layered"))
    fill = {"done": "#b7e4b0", "ready": "#ffe3a3", "current": "#ff7a45", "pending": "#e8ecf3"}
    for nid, st in states.items():
        if st in fill:
            assert nodes[nid].find(SVG + "rect").get("fill") == fill[st], (nid, st)


@pytest.mark.parametrize("engine", ENGINES)
def test_big_graphs_fold_into_module_scopes(engine):
    torch.manual_seed(0)
    m = nn.Sequential(*[nn.Sequential(nn.Linear(4, 4), nn.Tanh()) for _ in range(6)])
    doc = graph_json(m(torch.randn(2, 4)).sum(), model=m)
    assert len(doc["nodes"]) > 20
    _, nodes, edges = _parse(render_svg(doc, fold_limit=10, engine=engine))
    assert {f"s:{i}" for i in range(6)} <= set(nodes)
    assert len(nodes) <= 10
    in_first = [n for n in doc["nodes"] if n["scope"] == "0" or n["scope"].startswith("0.")]
    assert _texts(nodes["s:0"]) == ["Sequential", f"0 ({len(in_first)})"]
    # the chain of blocks is still connected: block i feeds block i + 1
    pairs = {(e.get("data-src"), e.get("data-dst")) for e in edges}
    assert all((f"s:{i}", f"s:{i + 1}") in pairs for i in range(5))


@pytest.mark.parametrize("engine", ENGINES)
def test_a_shared_leaf_is_drawn_once_per_consumer_like_the_live_view(engine):
    torch.manual_seed(0)
    v = torch.randn(3, 3, requires_grad=True)
    h = torch.randn(2, 3, requires_grad=True)
    for _ in range(12):  # an RNN-like chain: v feeds every step
        h = torch.tanh(h @ v)
    doc = graph_json(h.sum())
    vid = next(n["id"] for n in doc["nodes"]
               if n["kind"] == "leaf" and n["outputs"][0]["shape"] == [3, 3])
    consumers = [e["dst"] for e in doc["edges"] if e["src"] == vid]
    assert len(consumers) == 12
    root = ET.fromstring(render_svg(doc, engine=engine, highlight=[vid]))
    groups = [g for g in root.iter(SVG + "g") if g.get("class") == "node"]
    copies = [g for g in groups if g.get("data-id") == vid]
    assert sorted(g.get("id") for g in copies) == sorted(f"{vid}~{k}" for k in range(12))
    assert all(g.find(SVG + "rect").get("stroke") == "#d63384" for g in copies)
    edges = [(g.get("data-src"), g.get("data-dst")) for g in root.iter(SVG + "g")
             if g.get("class") == "edge"]
    assert sorted(edges) == sorted({(e["src"], e["dst"]) for e in doc["edges"]})


def test_bad_input_is_refused_with_the_reason():
    doc = _mlp_doc()
    with pytest.raises(ValueError, match="graph document"):
        render_svg({"nodes": []})
    with pytest.raises(ValueError, match="not nodes of this document"):
        render_svg(doc, node_colors={"n999999": "#fff"})
    with pytest.raises(ValueError, match="colour 'reddish'"):
        render_svg(doc, node_colors={doc["nodes"][0]["id"]: "reddish"})
    with pytest.raises(ValueError, match="highlight"):
        render_svg(doc, highlight=["nope"])
    with pytest.raises(ValueError, match="engine"):
        render_svg(doc, engine="neato")


def test_empty_document_is_still_a_valid_picture():
    doc = {"schema": "dyntorch.graph", "version": 1, "graph_id": "g0", "rev": 0,
           "nodes": [], "edges": [], "scopes": []}
    root, nodes, edges = _parse(render_svg(doc))
    assert nodes == {} and edges == []


# ----------------------------------------------------------------------------- in a notebook
def test_widget_bundle_carries_the_picture_beside_the_widget_view():
    pytest.importorskip("anywidget")
    from dyntorch.viz import show

    torch.manual_seed(0)
    w = torch.randn(2, 3, requires_grad=True)
    y = (w.exp() * 3).sum()
    bundle = show(y)._repr_mimebundle_()
    bundle = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in bundle
    _, nodes, edges = _parse(bundle["image/svg+xml"])
    labels = {_texts(g)[0] for g in nodes.values()}
    assert {"exp", "mul", "sum"} <= labels and len(edges) == 3
    # a front end that asks for other types only gets what it asked for
    other = show(y)._repr_mimebundle_(exclude=["image/svg+xml"])
    assert "image/svg+xml" not in (other[0] if isinstance(other, tuple) else other)


def _run_headless(tmp_path, monkeypatch, **client_kw):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("anywidget")
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    monkeypatch.setenv("PYTHONPATH", str(root))  # the kernel imports this checkout's dyntorch
    cells = ["import dyntorch as torch\nfrom dyntorch.viz import show\n"
             "from dyntorch.debug import BackwardStepper\n"
             "w = torch.randn(3, 4, requires_grad=True)\n"
             "loss = (w.tanh() * 2).sum()",
             "show(loss)",
             "BackwardStepper((w.sigmoid() ** 2).mean())"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}},
                            **client_kw).execute()
    for c in nb.cells[1:]:
        kinds = [set(o.get("data", {})) for o in c.outputs]
        assert any({"image/svg+xml", "application/vnd.jupyter.widget-view+json"} <= k
                   for k in kinds), kinds
    return nb


def _labels(svg: str) -> set:
    import re

    return set(re.findall(r"<text[^>]*>([^<]*)</text>", svg))


@pytest.mark.notebook
@pytest.mark.timeout(300)
def test_headless_notebook_saved_and_converted_to_html_shows_the_graph(tmp_path, monkeypatch):
    """Run headless with no widget state kept (as a notebook saved from JupyterLab without
    "save widget state"), then `jupyter nbconvert --to html`: the graph must be in the page as
    a drawing with its labels."""
    import re
    import subprocess
    import sys

    nbformat = pytest.importorskip("nbformat")
    nb = _run_headless(tmp_path, monkeypatch, store_widget_state=False)
    assert "widgets" not in nb.metadata
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)
    out = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    html = (tmp_path / "run.html").read_text(encoding="utf-8")
    # nbconvert embeds SVG outputs as data-URI images (inline when should_not_encode_svg)
    import base64

    svgs = [base64.b64decode(b).decode("utf-8") for b in
            re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html)]
    svgs += re.findall(r"<svg[^>]*class=\"dyntorch-graph\".*?</svg>", html, flags=re.S)
    svgs = [s for s in svgs if 'class="dyntorch-graph"' in s]
    assert len(svgs) == 2, f"found {len(svgs)} dyntorch drawings in the HTML"
    assert {"tanh", "mul", "sum"} <= _labels(svgs[0])
    assert {"sigmoid", "pow", "mean"} <= _labels(svgs[1])
    for s in svgs:
        ET.fromstring(s)  # a well-formed standalone SVG


@pytest.mark.notebook
@pytest.mark.timeout(300)
def test_headless_run_that_keeps_widget_state_still_saves_the_picture(tmp_path, monkeypatch):
    """nbclient's default keeps the widget state, and then nbconvert's HTML hands the output to
    the widget (the HTML manager) instead; the picture is still saved in every output for
    renderers that do not run widgets (GitHub)."""
    nb = _run_headless(tmp_path, monkeypatch)
    assert "widgets" in nb.metadata
    pictures = [o["data"]["image/svg+xml"] for c in nb.cells for o in c.get("outputs", [])
                if "image/svg+xml" in o.get("data", {})]
    assert len(pictures) == 2
    assert {"tanh", "mul", "sum"} <= _labels(pictures[0])
    assert {"sigmoid", "pow", "mean"} <= _labels(pictures[1])
