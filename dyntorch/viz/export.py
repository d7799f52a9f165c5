"""Save any graph view as a file: standalone interactive HTML, an SVG or a PNG picture.

- ``.html``: one file that opens offline. It carries the built widget ES module
  (``dyntorch/viz/static/widget.js``), the Graphviz layout worker the widget asks for, and the
  graph document; a small stand-in for the kernel's widget model answers the widget's
  messages. No network script, no CDN. The static SVG picture sits below the view (and is
  what shows where scripts are off).
- ``.svg``: :func:`dyntorch.viz.picture.render_svg` of the document, coloured by what the
  view shows (divergence for a diff, NaN/Inf for recorder steps).
- ``.png``: that same SVG drawn with matplotlib (the ``viz`` extra), no browser: rectangles,
  paths and labels at the SVG's own coordinates, so the PNG shows the SVG's layout.
"""
from __future__ import annotations

import html
import json
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from .._tensor import Tensor
from . import _static
from .graph import graph_json
from .picture import render_svg

__all__ = ["export", "document_of", "svg_to_png"]


# ----------------------------------------------------------------------------- what to draw
def document_of(view, *, model=None) -> tuple[dict, dict, list, str | None]:
    """``(doc, node_colors, highlight, title)`` for anything that shows a graph.

    ``view`` may be a graph document, a :class:`~dyntorch.viz.diff.GraphDiff`, an
    ``explain`` result (cause red, chain amber), a
    ``BackwardStepper``, a Tensor (its graph), a ``(Recorder, step)`` pair, or a notebook view
    (``show``, the stepper view, ``live``) whose ``doc`` it reads.
    """
    from ..debug import BackwardStepper
    from .diff import GraphDiff

    if isinstance(view, GraphDiff):
        doc = view.document()
        first = view.first_divergent()
        return (doc, view.node_colors(), [first.id_a] if first is not None and first.id_a
                else [], doc["status"]["text"])
    if hasattr(view, "chain") and hasattr(view, "reason"):  # a debug.explain result
        doc = graph_json(view.chain[-1], model=model)
        ids = {n["id"] for n in doc["nodes"]}
        chain = [f"n{n.seq}" for n in view.chain if f"n{n.seq}" in ids]
        colors = {i: "#ffd166" for i in chain}
        cause = f"n{view.node.seq}"
        if cause in ids:
            colors[cause] = "#ef476f"
        return doc, colors, [cause] if cause in ids else [], f"{view.op}: {view.reason}"
    if isinstance(view, tuple) and len(view) == 2 and hasattr(view[0], "at"):
        view = view[0].at(view[1])
    if isinstance(view, (Tensor, BackwardStepper)):
        view = graph_json(view, model=model)
    elif not isinstance(view, Mapping):
        doc = getattr(view, "current", None)
        if not isinstance(doc, Mapping):
            doc = getattr(view, "doc", None)
        if not isinstance(doc, Mapping) or not doc:
            raise TypeError(f"export: cannot find a graph in {type(view).__name__}; pass a graph "
                            "document, a GraphDiff, a BackwardStepper, a Tensor, "
                            "(recorder, step) or a notebook view")
        view = doc
    if view.get("schema") != "dyntorch.graph":
        raise ValueError(f"export: expected a graph document (schema 'dyntorch.graph'), got "
                         f"{view.get('schema')!r}")
    doc = dict(view)
    colors, marked = {}, []
    for n in doc.get("nodes", ()):
        rec = n.get("record") or {}
        if any(rec.get(k) for k in ("grad_nan", "grad_inf", "out_nan", "out_inf")):
            colors[n["id"]] = "#ef476f"  # a recorder step: NaN/Inf in red
            marked.append(n["id"])
        d = n.get("diff")
        if d and d.get("divergent"):
            marked.append(n["id"])
    title = (doc.get("status") or {}).get("text")
    return doc, colors, marked, title


# ----------------------------------------------------------------------------- html
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<style>body{{font-family:Helvetica,Arial,sans-serif;margin:16px}}
#dt-view{{border:1px solid #ddd}} .dt-note{{color:#666;font-size:12px}}</style>
</head><body>
<h3>{title}</h3>
<div id="dt-view"></div>
<p class="dt-note">Saved by dyntorch; this page works offline (the view, its layout engine and
the graph are inside it). Below: the same graph as a picture.</p>
<div id="dt-picture">{svg}</div>
<script type="application/json" id="dt-doc">{doc}</script>
<script type="application/json" id="dt-esm">{esm}</script>
<script type="application/json" id="dt-engine">{engine}</script>
<script type="module">
const read = (id) => JSON.parse(document.getElementById(id).textContent);
const state = {{doc: read("dt-doc"), mode: "graph", height: "{height}", fold_limit: 300,
                metrics: {{}}}};
const listeners = {{}};
// A stand-in for the kernel side of the widget model: it holds the state and answers the
// one request a drawing needs (the layout engine), from this page.
const model = {{
  get: (k) => state[k],
  set: (k, v) => {{ state[k] = v; }},
  save_changes: () => {{}},
  on: (ev, cb) => {{ (listeners[ev] = listeners[ev] || []).push(cb); }},
  off: () => {{}},
  send: (msg) => {{
    if (msg && msg.type === "need_engine") {{
      const src = read("dt-engine");
      setTimeout(() => (listeners["msg:custom"] || []).forEach((cb) =>
        cb({{type: "engine", src}})), 0);
    }}
  }},
}};
const url = URL.createObjectURL(new Blob([read("dt-esm")], {{type: "text/javascript"}}));
const mod = await import(url);
const widget = mod.default;
const spec = typeof widget === "function" ? await widget() : widget;
await spec.render({{model, el: document.getElementById("dt-view")}});
document.body.dataset.rendered = "1";
</script>
</body></html>
"""


def _json_script(obj) -> str:
    # inside <script type="application/json">, only "</" can end the element early
    return json.dumps(obj, allow_nan=False).replace("</", "<\\/")


def to_html(doc: Mapping, svg: str, title: str, height: str = "600px") -> str:
    """The standalone page for ``doc`` (see the module docstring)."""
    try:
        engine = _static.layout_worker()
    except FileNotFoundError:
        engine = ""  # not built: the page shows the widget's own "not built" note
    return _PAGE.format(title=html.escape(title), svg=svg, doc=_json_script(dict(doc)),
                        esm=_json_script(_static.widget_esm()), engine=_json_script(engine),
                        height=html.escape(height))


# ----------------------------------------------------------------------------- png
_NUM = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


def _path_points(d: str):
    """(codes, points) of an SVG path made of M, L and C commands (what render_svg writes)."""
    from matplotlib.path import Path as MPath

    verts, codes = [], []
    for cmd, body in re.findall(r"([MLC])([^MLC]*)", d):
        nums = [float(v) for v in _NUM.findall(body)]
        pts = list(zip(nums[0::2], nums[1::2]))
        if cmd == "M":
            verts.append(pts[0])
            codes.append(MPath.MOVETO)
        elif cmd == "L":
            verts += pts
            codes += [MPath.LINETO] * len(pts)
        else:
            verts += pts
            codes += [MPath.CURVE4] * len(pts)
    return MPath(verts, codes)


def svg_to_png(svg: str, path: str | os.PathLike, *, dpi: int = 144) -> tuple[int, int]:
    """Draw an SVG written by ``render_svg`` into a PNG with matplotlib; returns (w, h) px.

    Only what ``render_svg`` writes is understood: ``rect``, ``path`` (M/L/C), ``polygon``,
    ``text`` and ``g transform="translate(x,y)"``. The picture is ``width``/``height`` points
    of the SVG at ``dpi``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import PathPatch, Polygon, Rectangle

    ns = "{http://www.w3.org/2000/svg}"
    root = ET.fromstring(svg)
    W = float(root.get("width", "100").rstrip("pt"))
    H = float(root.get("height", "100").rstrip("pt"))
    fig = plt.figure(figsize=(W / 72, H / 72), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, W)
    ax.set_ylim(H, 0)  # SVG's y grows downwards
    ax.axis("off")
    size = float(root.get("font-size", "9"))

    def walk(el, dx, dy):
        tag = el.tag.replace(ns, "")
        tr = el.get("transform", "")
        m = re.match(r"translate\(([-\d.e]+),([-\d.e]+)\)", tr)
        if m:
            dx, dy = dx + float(m.group(1)), dy + float(m.group(2))
        if tag == "rect":
            fill = el.get("fill", "none")
            ax.add_patch(Rectangle(
                (float(el.get("x", 0)) + dx, float(el.get("y", 0)) + dy),
                float(el.get("width")), float(el.get("height")),
                facecolor="none" if fill == "none" else fill,
                edgecolor=el.get("stroke", "none"), linewidth=float(el.get("stroke-width", 1)),
                linestyle="--" if el.get("stroke-dasharray") else "-"))
        elif tag == "path":
            p = _path_points(el.get("d", ""))
            p.vertices[:, 0] += dx
            p.vertices[:, 1] += dy
            ax.add_patch(PathPatch(p, facecolor="none", edgecolor=el.get("stroke", "#999"),
                                   linewidth=float(el.get("stroke-width", 1))))
        elif tag == "polygon":
            nums = [float(v) for v in _NUM.findall(el.get("points", ""))]
            pts = [(x + dx, y + dy) for x, y in zip(nums[0::2], nums[1::2])]
            ax.add_patch(Polygon(pts, closed=True, facecolor=el.get("fill", "#999"),
                                 edgecolor="none"))
        elif tag == "text" and el.text:
            anchor = {"middle": "center", "end": "right"}.get(el.get("text-anchor"), "left")
            ax.text(float(el.get("x", 0)) + dx, float(el.get("y", 0)) + dy, el.text,
                    ha=anchor, va="baseline", color=el.get("fill", "#000"),
                    fontsize=float(el.get("font-size", size)),
                    fontweight="bold" if el.get("font-weight") == "bold" else "normal",
                    family="sans-serif")
        if tag == "title":
            return
        for ch in el:
            walk(ch, dx, dy)

    walk(root, 0.0, 0.0)
    fig.savefig(os.fspath(path), dpi=dpi, facecolor="white")
    w, h = fig.canvas.get_width_height()
    plt.close(fig)
    return w, h


# ----------------------------------------------------------------------------- the entry point
def export(view_or_doc, path: str | os.PathLike, *, model=None, title: str | None = None,
           dpi: int = 144, engine: str = "auto") -> Path:
    """Save a graph view to ``path``; the suffix picks the format.

    Parameters
    ----------
    view_or_doc
        A graph document, a ``GraphDiff``, a ``BackwardStepper``, a Tensor, a
        ``(Recorder, step)`` pair, or a notebook view (see :func:`document_of`).
    path : str or PathLike
        ``*.html`` (standalone interactive page), ``*.svg`` or ``*.png``.
    model : nn.Module, optional
        Names parameters and module types when the graph is read from a tensor or stepper.
    title : str, optional
        Caption (default: the document's status text).
    dpi : int
        PNG resolution (pixels per inch; the SVG's size is in points).
    engine : {"auto", "dot", "layered"}
        Layout of the picture (``render_svg``'s ``engine``).

    Returns
    -------
    Path
        The file written.
    """
    p = Path(path)
    kind = p.suffix.lower()
    if kind not in (".html", ".htm", ".svg", ".png"):
        raise ValueError(f"export: cannot write '{p.name}': use a .html, .svg or .png file name")
    doc, colors, marked, dtitle = document_of(view_or_doc, model=model)
    title = title or dtitle or "dyntorch graph"
    svg = render_svg(doc, node_colors=colors, highlight=marked or None, title=title,
                     engine=engine)
    if kind == ".svg":
        p.write_text(svg, encoding="utf-8")
    elif kind == ".png":
        svg_to_png(svg, p, dpi=dpi)
    else:
        p.write_text(to_html(doc, svg, title), encoding="utf-8")
    return p
