"""viz.export: standalone HTML, SVG and PNG files of any view, opened and read back."""
from __future__ import annotations

import json
import os
import re
import threading
import xml.etree.ElementTree as ET

import pytest

import dyntorch as dt
from dyntorch.debug import BackwardStepper, Recorder
from dyntorch.viz import _static, diff, export, graph_json

NS = "{http://www.w3.org/2000/svg}"


def _model():
    dt.manual_seed(0)
    return dt.nn.Sequential(dt.nn.Linear(3, 4), dt.nn.ReLU(), dt.nn.Linear(4, 1))


def _loss(m):
    return (m(dt.randn(2, 3)) ** 2).mean()


def _texts(svg_text: str) -> list[str]:
    root = ET.fromstring(svg_text)
    return [t.text for t in root.iter(NS + "text") if t.text]


def test_svg_carries_labels_and_colours(tmp_path):
    m = _model()
    loss = _loss(m)
    p = export(loss, tmp_path / "g.svg", model=m, engine="layered")
    texts = _texts(p.read_text())
    doc = graph_json(loss, model=m)
    for n in doc["nodes"]:  # every op and parameter is labelled (a parameter by its own name,
        # inside its module's box)
        assert n["label"].rsplit(".", 1)[-1] in texts, n["label"]
    assert "weight" in texts and "linear" in texts and "relu" in texts
    # a diff: the divergent node is drawn in red and outlined
    m2 = _model()
    with dt.no_grad():
        m2[2].bias += 1.0
    dt.manual_seed(5)
    a = _loss(m)
    dt.manual_seed(5)
    b = _loss(m2)
    d = diff(a, b, model=(m, m2))
    first = d.first_divergent()
    svg = export(d, tmp_path / "d.svg", engine="layered").read_text()
    root = ET.fromstring(svg)
    node = [g for g in root.iter(NS + "g") if g.get("data-id") == first.id_a][0]
    rect = node.find(NS + "rect")
    assert rect.get("fill") == "#ef476f" and rect.get("stroke-width") == "3"
    assert any("first divergent: LinearBackward0 in 2" in t for t in _texts(svg))


def test_explanation_and_diff_save(tmp_path):
    from dyntorch.debug import explain

    a = dt.tensor([1.0, -2.0, 3.0], requires_grad=True)
    ex = explain((a.relu() * 2.0).log().sum())
    svg = export(ex, tmp_path / "why.svg", engine="layered").read_text()
    root = ET.fromstring(svg)
    fills = {g.get("data-id"): g.find(NS + "rect").get("fill")
             for g in root.iter(NS + "g") if g.get("data-id")}
    assert fills[f"n{ex.node.seq}"] == "#ef476f"
    assert any("log of exact 0" in t for t in _texts(svg))
    m = _model()
    dt.manual_seed(1)
    la = _loss(m)
    dt.manual_seed(1)
    lb = _loss(m)
    p = diff(la, lb).save(tmp_path / "same.png")
    assert p.exists() and p.stat().st_size > 1000


def test_png_has_the_size_and_is_not_blank(tmp_path):
    import matplotlib.image as mpimg

    m = _model()
    s = BackwardStepper(_loss(m))
    s.step(3)  # three nodes done: drawn green
    p = export(s, tmp_path / "g.png", model=m, dpi=100, engine="layered")
    img = mpimg.imread(p)
    svg = export(s, tmp_path / "g.svg", model=m, engine="layered").read_text()
    s.close()
    root = ET.fromstring(svg)
    w_pt, h_pt = float(root.get("width")[:-2]), float(root.get("height")[:-2])
    assert abs(img.shape[1] - w_pt * 100 / 72) <= 2 and abs(img.shape[0] - h_pt * 100 / 72) <= 2
    rgb = img[..., :3]
    dark = (rgb.sum(-1) < 1.0).mean()  # label text and outlines
    green = ((rgb[..., 1] - rgb[..., 2]) > 0.15).mean()  # "done" fills, #b7e4b0
    assert 0.001 < dark < 0.5 and green > 0.01
    with pytest.raises(ValueError, match="use a .html, .svg or .png"):
        export(_loss(m), tmp_path / "g.jpg")


def test_html_is_standalone_and_embeds_the_document(tmp_path):
    m = _model()
    s = BackwardStepper(_loss(m))
    s.step(2)
    p = export(s, tmp_path / "s.html", model=m, engine="layered")
    text = p.read_text()
    s.close()
    assert not re.search(r"<script[^>]+src=[\"']?https?:", text)
    assert not re.search(r"<link[^>]+href=[\"']?https?:", text)
    got = json.loads(re.search(r'<script type="application/json" id="dt-doc">(.*?)</script>',
                               text, re.S).group(1).replace("<\\/", "</"))
    assert got["schema"] == "dyntorch.graph" and got["status"]["step"] == 2
    assert "LinearBackward0" in text and "<svg" in text
    esm = json.loads(re.search(r'id="dt-esm">(.*?)</script>', text, re.S).group(1)
                     .replace("<\\/", "</"))
    assert esm == _static.widget_esm()
    # a recorder step exports too, NaN/Inf nodes marked
    with Recorder(m) as rec:
        _loss(m).backward()
    assert export((rec, 0), tmp_path / "r.html", engine="layered").exists()


def _render_offline(url: str, profile: str) -> tuple[str, list[str]]:
    """Open ``url`` in headless Chromium with the network off; the view's text and every URL
    the page asked for."""
    from playwright.sync_api import sync_playwright

    asked: list[str] = []
    with sync_playwright() as play:
        ctx = play.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", headless=True, offline=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        try:
            page = ctx.new_page()
            page.on("request", lambda r: asked.append(r.url))
            page.goto(url)
            page.wait_for_selector("body[data-rendered='1']", timeout=20000)
            page.wait_for_selector("#dt-view svg", timeout=20000)
            return page.locator("#dt-view").inner_text(timeout=20000), asked
        finally:
            ctx.close()


def test_html_renders_offline_in_a_browser(tmp_path):
    missing = [w for w, ok in (("the built front end (make extension)",
                                (_static.STATIC / "widget.js").exists()),
                               ("Chromium", os.path.exists("/usr/bin/chromium"))) if not ok]
    if missing:
        if os.environ.get("DYNTORCH_REQUIRE_BROWSER", "") not in ("", "0"):
            pytest.fail(f"browser tests required but missing: {', '.join(missing)}")
        pytest.skip(f"needs {', '.join(missing)}")
    pytest.importorskip("playwright.sync_api")
    m = _model()
    p = export(_loss(m), tmp_path / "g.html", model=m, engine="layered")
    # Playwright's sync API refuses a thread whose asyncio loop an earlier test (a kernel
    # client) left set; a thread of its own has none
    result: dict = {}

    def run():
        try:
            result["out"] = _render_offline(p.as_uri(), str(tmp_path / "profile"))
        except BaseException as e:  # handed to the test's thread below
            result["err"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(120)
    if "err" in result:
        raise result["err"]
    labels, asked = result["out"]
    assert "linear" in labels
    assert all(u.startswith(("file:", "blob:", "data:")) for u in asked), asked
