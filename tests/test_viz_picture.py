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


CELLS = ["import dyntorch as torch\nfrom dyntorch.viz import show\n"
         "from dyntorch.debug import BackwardStepper\n"
         "w = torch.randn(3, 4, requires_grad=True)\n"
         "loss = (w.tanh() * 2).sum()",
         "show(loss)",
         "BackwardStepper((w.sigmoid() ** 2).mean())",
         # another library's widget, made after ours: its state must still be saved
         "import ipywidgets\nipywidgets.IntSlider(value=7, description='knob')"]


def _notebook(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    pytest.importorskip("anywidget")
    pytest.importorskip("ipywidgets")
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    monkeypatch.setenv("PYTHONPATH", str(root))  # the kernel imports this checkout's dyntorch
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    path = tmp_path / "run.ipynb"
    nbformat.write(nb, path)
    return path


def _views(nb) -> list[dict]:
    """The outputs of the cells that show a dyntorch view."""
    outs = [o for c in nb.cells[1:3] for o in c.outputs if "data" in o]
    for o in outs:
        assert {"image/svg+xml", "application/vnd.jupyter.widget-view+json"} <= set(o["data"])
    return outs


def _saved_state(nb) -> dict:
    return nb.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {}).get("state", {})


def _labels(svg: str) -> set:
    import re

    return set(re.findall(r"<text[^>]*>([^<]*)</text>", svg))


def _drawings(html: str) -> list[str]:
    """The dyntorch pictures in an nbconvert HTML page."""
    import base64
    import re

    # nbconvert embeds SVG outputs as data-URI images (inline when should_not_encode_svg)
    svgs = [base64.b64decode(b).decode("utf-8") for b in
            re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html)]
    svgs += re.findall(r"<svg[^>]*class=\"dyntorch-graph\".*?</svg>", html, flags=re.S)
    return [s for s in svgs if 'class="dyntorch-graph"' in s]


@pytest.mark.notebook
@pytest.mark.timeout(300)
def test_nbconvert_execute_to_html_with_its_defaults_shows_the_graph(tmp_path, monkeypatch):
    """What a user runs: `jupyter nbconvert --to html --execute nb.ipynb`, defaults untouched
    (nbclient saves widget state). The page must show both graphs as drawings with their
    labels, not widgets that need a kernel; the other library's widget keeps its saved state."""
    import subprocess
    import sys

    path = _notebook(tmp_path, monkeypatch)
    out = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "html", "--execute",
                          str(path)], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    html = (tmp_path / "run.html").read_text(encoding="utf-8")
    svgs = _drawings(html)
    assert len(svgs) == 2, f"found {len(svgs)} dyntorch drawings in the HTML"
    assert {"tanh", "mul", "sum"} <= _labels(svgs[0])
    assert {"sigmoid", "pow", "mean"} <= _labels(svgs[1])
    for s in svgs:
        ET.fromstring(s)  # a well-formed standalone SVG
    # the slider is still handed to the widget manager with its saved state
    assert html.count('<script type="application/vnd.jupyter.widget-view+json">') == 1
    assert '"knob"' in html


@pytest.mark.notebook
@pytest.mark.timeout(300)
def test_headless_run_saves_the_picture_and_no_state_for_dyntorch_views(tmp_path, monkeypatch):
    """nbclient, default and with store_widget_state=False: every view's output keeps the
    widget view (for a live front end) and the picture; our views' models are not in the saved
    widget state (so nbconvert draws the picture), while the slider's model is."""
    nbformat = pytest.importorskip("nbformat")
    import nbclient

    path = _notebook(tmp_path, monkeypatch)
    for keep_state in (True, False):
        nb = nbformat.read(path, as_version=4)
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}},
                                store_widget_state=keep_state).execute()
        views = _views(nb)
        assert len(views) == 2
        assert {"tanh", "mul", "sum"} <= _labels(views[0]["data"]["image/svg+xml"])
        assert {"sigmoid", "pow", "mean"} <= _labels(views[1]["data"]["image/svg+xml"])
        state = _saved_state(nb)
        ids = {o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for o in views}
        assert not ids & set(state), "a dyntorch view's model was saved as widget state"
        sliders = [s for s in state.values() if s["model_name"] == "IntSliderModel"]
        if keep_state:
            assert len(sliders) == 1 and sliders[0]["state"]["value"] == 7
        else:
            assert "widgets" not in nb.metadata
