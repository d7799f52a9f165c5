"""A standalone SVG picture of a graph document, for saved notebooks and static pages.

:func:`render_svg` turns the document of :func:`dyntorch.viz.graph_json`
(``docs/graph-schema.md``) into one ``image/svg+xml`` string with node labels, edges and module
scopes. Every dyntorch notebook view puts it beside the widget in its output, so a notebook run
headless (nbclient, ``nbconvert --execute``) and saved still shows the graph in ``nbconvert
--to html``, on GitHub and on nbviewer, where no kernel brings the widget to life.

How it is laid out, and why
---------------------------
The live view lays graphs out with Graphviz ``dot`` (compiled to WebAssembly, in a Web Worker),
from a DOT text with fixed attributes (``extension/src/fold.ts``). Options weighed for the
kernel side:

1. the Graphviz ``dot`` program: the very algorithm and attributes of the live view, so the
   picture and the view agree; a system package (Debian ``graphviz``, installed by the
   Makefile and binder/apt.txt), not a pip dependency;
2. the same WebAssembly build run from Python: would need a WebAssembly runtime dependency
   (or Node) in every kernel, for a picture;
3. a layout package from PyPI (Sugiyama-style engines exist, some in Rust): a second
   algorithm anyway, and a binary dependency for every user;
4. a small layered layout written here: no dependency, readable for the graphs people draw
   in notebooks, but not Graphviz's picture.

So: ``dot`` when it is on PATH (``-Tjson0``: positions only; this module draws the SVG itself
so colours, labels and structure are the same either way), and option 4 when it is not, so a
plain ``pip install dyntorch`` still gives a picture. ``engine=`` picks one explicitly.

Big graphs fold into their module scopes the way the live view does on open (one box per
scope, at the shallowest scope depth that keeps the drawing under ``fold_limit`` boxes).
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from xml.sax.saxutils import escape, quoteattr

__all__ = ["render_svg", "have_dot", "picture_bundle"]

SVG_MIME = "image/svg+xml"

# The live view's look (extension/src/style.css, light theme; fold.ts for sizes).
STATE_FILL = {"idle": "#ffffff", "pending": "#e8ecf3", "ready": "#ffe3a3",
              "current": "#ff7a45", "done": "#b7e4b0"}
LEAF_FILL = "#eef3fb"
SCOPE_FILL = "#f3f0ff"
STROKE = "#8a8a8a"
EDGE = "#9a9a9a"
HIGHLIGHT = "#d63384"
DARK_TEXT = "#1f1f1f"
LIGHT_TEXT = "#ffffff"
FONT = "Helvetica, Arial, sans-serif"
FONT_PT = 9.0
LINE_PT = 11.0
PAD = 8.0

_NAMED = {  # CSS names people are likely to pass; anything else: give hex
    "black": "#000000", "white": "#ffffff", "red": "#ff0000", "green": "#008000",
    "blue": "#0000ff", "yellow": "#ffff00", "orange": "#ffa500", "purple": "#800080",
    "pink": "#ffc0cb", "gray": "#808080", "grey": "#808080", "lightgray": "#d3d3d3",
    "lightgrey": "#d3d3d3", "darkgray": "#a9a9a9", "darkgrey": "#a9a9a9", "brown": "#a52a2a",
    "cyan": "#00ffff", "magenta": "#ff00ff", "lime": "#00ff00", "navy": "#000080",
    "teal": "#008080", "gold": "#ffd700", "salmon": "#fa8072", "tomato": "#ff6347",
    "crimson": "#dc143c", "lightgreen": "#90ee90", "lightblue": "#add8e6",
    "darkred": "#8b0000", "darkgreen": "#006400", "darkblue": "#00008b",
}


def have_dot() -> bool:
    """Whether Graphviz's ``dot`` program is on PATH (the picture then uses it)."""
    return shutil.which("dot") is not None


# ----------------------------------------------------------------------------- colours
def _rgb(color: str, where: str) -> tuple[int, int, int]:
    c = color.strip().lower()
    c = _NAMED.get(c, c)
    if c.startswith("#") and len(c) in (4, 7):
        h = c[1:] if len(c) == 7 else "".join(ch * 2 for ch in c[1:])
        try:
            return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
        except ValueError:
            pass
    raise ValueError(
        f"render_svg: {where} colour {color!r} is not understood; give '#rrggbb', '#rgb' or "
        f"one of the CSS names {', '.join(sorted(_NAMED))}")


def _luminance(rgb: tuple[int, int, int]) -> float:
    # WCAG 2 relative luminance
    def lin(v: int) -> float:
        s = v / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def text_color(fill: str) -> str:
    """The text colour (dark or white) with the higher WCAG contrast against ``fill``."""
    L = _luminance(_rgb(fill, "fill"))
    dark = _luminance(_rgb(DARK_TEXT, "text"))
    on_dark = (L + 0.05) / (dark + 0.05)
    on_light = 1.05 / (L + 0.05)
    return DARK_TEXT if on_dark >= on_light else LIGHT_TEXT


# ----------------------------------------------------------------------------- boxes to draw
class _Box:
    __slots__ = ("id", "ref", "lines", "fill", "scope", "kind", "members", "w", "h", "x", "y")

    def __init__(self, id_, lines, fill, scope, kind, members, ref=None):
        self.id, self.ref, self.lines, self.fill = id_, ref or id_, lines, fill
        self.scope, self.kind, self.members = scope, kind, members
        self.w = max(max((_text_width(t) for t in lines), default=0.0) + 12.0, 36.0)
        self.h = max(LINE_PT * len(lines) + 6.0, 18.0)
        self.x = self.y = 0.0  # centre, SVG coordinates (y down)


def _text_width(text: str) -> float:
    # Helvetica's mean advance is a little over half the font size
    return 0.56 * FONT_PT * len(text)


def _shape_text(n: Mapping) -> str:
    outs = n.get("outputs") or []
    o = outs[0] if outs else None
    if not o or o.get("shape") is None:
        return ""
    return "\u00d7".join(str(s) for s in o["shape"]) if o["shape"] else "scalar"


def _node_lines(n: Mapping) -> list[str]:
    # same text as the live view's boxes (fold.ts label())
    param = n.get("param")
    name = param.split(".")[-1] if n.get("kind") == "leaf" and param else (
        n.get("label") or n.get("op") or n["id"])
    sh = _shape_text(n)
    return [name, sh] if sh else [name]


def _scope_depth(s: str) -> int:
    return s.count(".") + 1 if s else 0


def _cut(scope: str, depth: int) -> str:
    return ".".join(scope.split(".")[:depth]) if scope else ""


def _fold_depth(nodes: list, limit: int) -> int | None:
    """Shallowest scope depth whose folding keeps at most ``limit`` boxes (None: no folding)."""
    if len(nodes) <= limit:
        return None
    deepest = max((_scope_depth(n.get("scope") or "") for n in nodes), default=0)
    best = 1
    for d in range(deepest, 0, -1):
        count = len({_cut(n.get("scope") or "", d) or n["id"] for n in nodes})
        if count <= limit:
            return d
        best = d
    return best


def _boxes(doc: Mapping, node_colors: Mapping, fold_limit: int):
    nodes = list(doc.get("nodes") or [])
    known = {n["id"] for n in nodes}
    unknown = [k for k in node_colors if k not in known]
    if unknown:
        raise ValueError(
            f"render_svg: node_colors names {unknown[:5]} which are not nodes of this document "
            f"(ids look like {sorted(known)[:3]}); colour only ids from doc['nodes']")
    depth = _fold_depth(nodes, fold_limit)
    scope_types = {s.get("name"): s.get("type") for s in doc.get("scopes") or []}
    boxes: dict[str, _Box] = {}
    rep: dict[str, str] = {}
    folded: dict[str, list] = {}
    for n in nodes:
        scope = n.get("scope") or ""
        key = _cut(scope, depth) if depth is not None else ""
        if key:  # folded into its scope's box
            rep[n["id"]] = "s:" + key
            if key not in folded:
                folded[key] = []
                boxes["s:" + key] = None  # keeps first-seen order
            folded[key].append(n["id"])
            continue
        fill = node_colors.get(n["id"])
        if fill is not None:
            _rgb(fill, f"node_colors[{n['id']!r}]")
        elif n.get("state", "idle") == "idle" and n.get("kind") == "leaf":
            fill = LEAF_FILL
        else:
            fill = STATE_FILL.get(n.get("state", "idle"), STATE_FILL["idle"])
        boxes[n["id"]] = _Box(n["id"], _node_lines(n), fill, scope, n.get("kind"), [n["id"]])
        rep[n["id"]] = n["id"]
    for key, members in folded.items():
        t = scope_types.get(key)
        lines = ([t] if t else []) + [f"{key} ({len(members)})"]
        colored = [node_colors[m] for m in members if m in node_colors]
        fill = colored[0] if colored else SCOPE_FILL  # a folded scope shows its members' colour
        if colored:
            _rgb(fill, f"node_colors[{members[0]!r}]")
        boxes["s:" + key] = _Box("s:" + key, lines, fill, _parent(key), "scope", members)
    edges: list[tuple[str, str, bool]] = []
    seen = set()
    for e in doc.get("edges") or []:
        a, b = rep.get(e["src"]), rep.get(e["dst"])
        if a is None or b is None:
            raise ValueError(f"render_svg: edge {e} names a node that is not in doc['nodes']")
        if a == b or (a, b) in seen:
            continue
        seen.add((a, b))
        edges.append((a, b, boxes[a].kind == "leaf"))
    return (*_ghost_shared_leaves(boxes, edges), rep)


def _ghost_shared_leaves(boxes: dict, edges: list):
    """One copy of a leaf per consumer, as the live view draws it (fold.ts): a weight shared by
    many ops would otherwise pull long edges across the drawing, which Graphviz lays out in
    time quadratic in their length (a 250-step RNN: over 20 s instead of about one)."""
    fan = {}
    for a, _, _ in edges:
        fan[a] = fan.get(a, 0) + 1
    shared = {a for a, k in fan.items() if k > 1 and boxes[a].kind == "leaf"}
    if not shared:
        return boxes, edges
    copies: dict[str, list] = {a: [] for a in shared}
    out_edges = []
    for a, b, from_leaf in edges:
        if a in shared:
            src = boxes[a]
            c = _Box(f"{a}~{len(copies[a])}", src.lines, src.fill, src.scope, src.kind,
                     src.members, ref=a)
            copies[a].append(c)
            a = c.id
        out_edges.append((a, b, from_leaf))
    out = {}
    for bid, bx in boxes.items():  # copies where the leaf was: the order stays topological
        for c in copies.get(bid, [bx]):
            out[c.id] = c
    return out, out_edges


def _parent(scope: str) -> str:
    return scope.rsplit(".", 1)[0] if "." in scope else ""


# ----------------------------------------------------------------------------- Graphviz layout
def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot_source(boxes: dict, edges: list, scope_types: Mapping) -> str:
    # the live view's graph attributes (fold.ts); node sizes fixed to this module's text metrics
    lines = ["digraph G {",
             "graph [rankdir=TB, nodesep=0.2, ranksep=0.3, fontname=\"Helvetica\", fontsize=10"
             + (", mclimit=0.3];" if len(boxes) > 300 else "];"),
             "node [shape=box, fixedsize=true, label=\"\"];"]
    placed: dict[str, list] = {}
    need = set()
    for b in boxes.values():
        placed.setdefault(b.scope, []).append(b)
        s = b.scope
        while s:
            need.add(s)
            s = _parent(s)
    children: dict[str, list] = {}
    for s in need:
        children.setdefault(_parent(s), []).append(s)

    def emit(scope: str, indent: str) -> None:
        for b in placed.get(scope, []):
            lines.append(f"{indent}{_q(b.id)} [width={b.w / 72:.4f}, height={b.h / 72:.4f}];")
        for c in sorted(children.get(scope, [])):
            t = scope_types.get(c)
            lines.append(f"{indent}subgraph {_q('cluster_' + c)} {{")
            lines.append(f"{indent}  label={_q(c + (' : ' + t if t else ''))};")
            emit(c, indent + "  ")
            lines.append(f"{indent}}}")

    emit("", "")
    for a, b, from_leaf in edges:
        # op-to-op edges weigh more: the data path stays straight (as in the live view)
        lines.append(f"{_q(a)} -> {_q(b)}{'' if from_leaf else ' [weight=4]'};")
    lines.append("}")
    return "\n".join(lines)


def _pt(s: str) -> tuple[float, float]:
    x, y = s.split(",")[:2]
    return float(x), float(y)


def _layout_dot(boxes: dict, edges: list, scope_types: Mapping, timeout: float):
    src = _dot_source(boxes, edges, scope_types)
    out = subprocess.run(["dot", "-Tjson0"], input=src, capture_output=True, text=True,
                         timeout=timeout, check=True)
    g = json.loads(out.stdout)
    x0, y0, x1, y1 = (float(v) for v in g["bb"].split(","))
    H = y1 - y0

    def flip(p):
        return p[0] - x0 + PAD, H - (p[1] - y0) + PAD

    clusters = []
    by_gvid = {}
    for o in g.get("objects", []):
        by_gvid[o["_gvid"]] = o
        name = o.get("name", "")
        if name.startswith("cluster_") and "bb" in o:
            a, b, c, d = (float(v) for v in o["bb"].split(","))
            (ax, ay), (cx, cy) = flip((a, d)), flip((c, b))
            clusters.append((name[len("cluster_"):], o.get("label", ""), ax, ay, cx - ax, cy - ay))
        elif name in boxes and "pos" in o:
            bx = boxes[name]
            bx.x, bx.y = flip(_pt(o["pos"]))
    paths = []
    for e in g.get("edges", []):
        tail, head = by_gvid[e["tail"]]["name"], by_gvid[e["head"]]["name"]
        spl = e.get("pos", "").split(";")[0].split()
        end = None
        pts = []
        for tok in spl:
            if tok.startswith("e,"):
                end = flip(_pt(tok[2:]))
            elif tok.startswith("s,"):
                continue
            else:
                pts.append(flip(_pt(tok)))
        if pts:
            paths.append((tail, head, pts, end))
    return x1 - x0 + 2 * PAD, H + 2 * PAD, clusters, paths


# ----------------------------------------------------------------------------- fallback layout
def _layout_layered(boxes: dict, edges: list):
    """A small Sugiyama-style layout: longest-path layers, barycentre ordering, centred rows."""
    ids = list(boxes)  # document order = creation order, a topological order of forward
    order_index = {i: k for k, i in enumerate(ids)}
    preds: dict[str, list] = {i: [] for i in ids}
    succs: dict[str, list] = {i: [] for i in ids}
    for a, b, _ in edges:
        if order_index[a] < order_index[b]:  # ignore anything against creation order
            preds[b].append(a)
            succs[a].append(b)
    layer = {}
    for i in ids:
        layer[i] = 1 + max((layer[p] for p in preds[i]), default=-1)
    # pull sources (leaves, inputs) down next to their first consumer
    for i in reversed(ids):
        if not preds[i] and succs[i]:
            layer[i] = max(0, min(layer[s] for s in succs[i]) - 1)
    rows: dict[int, list] = {}
    for i in ids:
        rows.setdefault(layer[i], []).append(i)
    nl = max(rows) + 1 if rows else 0
    pos = {}
    for r in range(nl):
        for k, i in enumerate(rows.get(r, [])):
            pos[i] = float(k)
    for sweep in range(4):  # down then up, twice: fewer crossings
        rng = range(1, nl) if sweep % 2 == 0 else range(nl - 2, -1, -1)
        for r in rng:
            row = rows.get(r, [])
            nb = preds if sweep % 2 == 0 else succs

            def bary(i, nb=nb):
                ps = [pos[p] for p in nb[i]]
                return sum(ps) / len(ps) if ps else pos[i]
            row.sort(key=lambda i: (bary(i), pos[i]))
            for k, i in enumerate(row):
                pos[i] = float(k)
    gap_x, gap_y = 14.0, 22.0
    widths = {r: sum(boxes[i].w for i in rows.get(r, [])) + gap_x * (len(rows.get(r, [])) - 1)
              for r in range(nl)}
    W = max(widths.values(), default=0.0)
    y = PAD
    for r in range(nl):
        row = rows.get(r, [])
        h = max((boxes[i].h for i in row), default=0.0)
        x = PAD + (W - widths[r]) / 2
        for i in row:
            b = boxes[i]
            b.x, b.y = x + b.w / 2, y + h / 2
            x += b.w + gap_x
        y += h + gap_y
    paths = []
    for a, b, _ in edges:
        A, B = boxes[a], boxes[b]
        p0 = (A.x, A.y + A.h / 2)
        p3 = (B.x, B.y - B.h / 2 - 4.0)
        dy = max((p3[1] - p0[1]) / 2, 8.0)
        ctrl = [p0, (p0[0], p0[1] + dy), (p3[0], p3[1] - dy), p3]
        paths.append((a, b, ctrl, (B.x, B.y - B.h / 2)))
    return W + 2 * PAD, y - gap_y + PAD, [], paths


# ----------------------------------------------------------------------------- SVG
def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _arrow(tip, base) -> str:
    dx, dy = tip[0] - base[0], tip[1] - base[1]
    d = math.hypot(dx, dy) or 1.0
    ux, uy = dx / d, dy / d
    L, Wd = 5.0, 2.5
    bx, by = tip[0] - ux * L, tip[1] - uy * L
    pts = [tip, (bx - uy * Wd, by + ux * Wd), (bx + uy * Wd, by - ux * Wd)]
    return " ".join(f"{_f(x)},{_f(y)}" for x, y in pts)


def render_svg(doc: Mapping, *, node_colors: Mapping[str, str] | None = None,
               highlight: Iterable[str] | None = None, title: str | None = None,
               engine: str = "auto", fold_limit: int = 300, timeout: float = 20.0) -> str:
    """Draw a graph document as a standalone SVG (``image/svg+xml``) string.

    Parameters
    ----------
    doc : dict
        A graph document (``dyntorch.viz.graph_json(...)``, schema ``dyntorch.graph``).
    node_colors : mapping of str to str, optional
        Node id -> fill colour (``'#rrggbb'``, ``'#rgb'`` or a common CSS name); the text on
        it is dark or white, whichever contrasts more. Other nodes are filled by their
        ``state`` as in the live view.
    highlight : iterable of str, optional
        Node ids drawn with a thick magenta outline.
    title : str, optional
        A caption above the drawing (also the SVG's ``<title>``).
    engine : {"auto", "dot", "layered"}
        ``"dot"``: Graphviz's ``dot`` program (the live view's algorithm; it must be on PATH);
        ``"layered"``: the built-in layered layout; ``"auto"``: ``dot`` when it is on PATH
        and succeeds, else ``"layered"``.
    fold_limit : int
        Graphs with more nodes than this fold into their module scopes.
    timeout : float
        Seconds ``dot`` may take before the built-in layout is used instead (``"auto"``).

    Returns
    -------
    str
        The SVG document (UTF-8 text, no XML prolog), with the node id as ``data-id`` on each
        node group (a leaf feeding several ops is drawn once per consumer, as in the live
        view: ``id`` is then ``"<node id>~k"``).
    """
    if not isinstance(doc, Mapping) or doc.get("schema") != "dyntorch.graph":
        got = doc.get("schema") if isinstance(doc, Mapping) else type(doc).__name__
        raise ValueError(f"render_svg: expected a graph document (schema 'dyntorch.graph', "
                         f"from dyntorch.viz.graph_json), got {got!r}")
    if engine not in ("auto", "dot", "layered"):
        raise ValueError(f"render_svg: engine must be 'auto', 'dot' or 'layered', not {engine!r}")
    node_colors = dict(node_colors or {})
    marked = set(highlight or ())
    boxes, edges, rep = _boxes(doc, node_colors, fold_limit)
    marked_boxes = {rep[i] for i in marked if i in rep}
    if len(marked_boxes) < len(marked):
        missing = sorted(i for i in marked if i not in rep)
        raise ValueError(f"render_svg: highlight names {missing[:5]} which are not nodes of "
                         "this document")
    scope_types = {s.get("name"): s.get("type") for s in doc.get("scopes") or []}
    used = "layered"
    layout = None
    if boxes and engine in ("auto", "dot"):
        if engine == "dot" and not have_dot():
            raise RuntimeError("render_svg(engine='dot'): Graphviz's `dot` is not on PATH; "
                               "install Graphviz (apt-get install graphviz, brew install "
                               "graphviz) or use engine='layered'")
        if have_dot():
            try:
                layout = _layout_dot(boxes, edges, scope_types, timeout)
                used = "dot"
            except (OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
                if engine == "dot":
                    raise RuntimeError(f"render_svg: Graphviz dot failed: {e}") from e
    if layout is None:
        layout = _layout_layered(boxes, edges)
    W, H, clusters, paths = layout
    top = LINE_PT + 8.0 if title else 0.0
    W = max(W, _text_width(title) + 2 * PAD if title else 0.0, 40.0)
    H = max(H, 20.0) + top
    caption = title or f"dyntorch graph {doc.get('graph_id', '')}".strip()
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="dyntorch-graph" '
           f'data-layout="{used}" width="{_f(W)}pt" height="{_f(H)}pt" '
           f'viewBox="0 0 {_f(W)} {_f(H)}" font-family={quoteattr(FONT)} '
           f'font-size="{_f(FONT_PT)}">',
           f"<title>{escape(caption)}</title>",
           f'<rect width="{_f(W)}" height="{_f(H)}" fill="#ffffff"/>']
    if title:
        out.append(f'<text x="{_f(PAD)}" y="{_f(PAD + LINE_PT - 2)}" font-size="11" '
                   f'font-weight="bold" fill="{DARK_TEXT}">{escape(title)}</text>')
    out.append(f'<g transform="translate(0,{_f(top)})">')
    for name, label, x, y, w, h in clusters:
        out.append(f'<g class="cluster" data-scope={quoteattr(name)}>'
                   f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" rx="4" '
                   f'fill="none" stroke="#b0b0b0" stroke-dasharray="4,3"/>'
                   f'<text x="{_f(x + 4)}" y="{_f(y + 11)}" fill="#777777">{escape(label)}</text>'
                   "</g>")
    for a, b, pts, end in paths:
        d = f"M{_f(pts[0][0])},{_f(pts[0][1])}"
        rest = pts[1:]
        if len(rest) % 3 == 0 and rest:
            d += "C" + " ".join(f"{_f(x)},{_f(y)}" for x, y in rest)
        else:
            d += "L" + " ".join(f"{_f(x)},{_f(y)}" for x, y in rest)
        arrow = ""
        if end is not None:
            arrow = f'<polygon points="{_arrow(end, pts[-1])}" fill="{EDGE}"/>'
        src, dst = quoteattr(boxes[a].ref), quoteattr(boxes[b].ref)
        out.append(f'<g class="edge" data-src={src} data-dst={dst}>'
                   f'<path d="{d}" fill="none" stroke="{EDGE}" stroke-width="0.8"/>{arrow}</g>')
    for bx in boxes.values():
        stroke, sw = STROKE, 1.0
        if bx.kind == "output":
            sw = 2.0
        if bx.ref in marked_boxes:
            stroke, sw = HIGHLIGHT, 3.0
        fg = text_color(bx.fill)
        x, y = bx.x - bx.w / 2, bx.y - bx.h / 2
        rx = "1" if bx.kind in ("leaf", "scope") else "4"
        # id as in the live view's drawing, so the widget can index a saved picture's nodes
        out.append(f'<g class="node" id={quoteattr(bx.id)} data-id={quoteattr(bx.ref)}>'
                   f'<title>{escape(bx.ref)}</title>'
                   f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(bx.w)}" height="{_f(bx.h)}" '
                   f'rx="{rx}" fill={quoteattr(bx.fill)} stroke="{stroke}" '
                   f'stroke-width="{_f(sw)}"/>')
        y0 = bx.y - LINE_PT * (len(bx.lines) - 1) / 2 + FONT_PT * 0.35
        for k, line in enumerate(bx.lines):
            out.append(f'<text x="{_f(bx.x)}" y="{_f(y0 + k * LINE_PT)}" text-anchor="middle" '
                       f'fill="{fg}">{escape(line)}</text>')
        out.append("</g>")
    out.append("</g></svg>")
    return "\n".join(out)


def picture_bundle(doc: Mapping | None, *, include=None, exclude=None) -> dict:
    """``{"image/svg+xml": svg}`` of ``doc`` for a display's mime bundle; ``{}`` when there is
    no document, the type is excluded, or drawing fails.

    A front end with a running kernel shows the widget view (its renderer ranks first in
    JupyterLab and Notebook 7); nbconvert's HTML exporter, GitHub and nbviewer find no widget
    state in a notebook saved headless and show this picture instead. Drawing must never break
    a display, so failures only warn.
    """
    if doc is None or not doc.get("nodes"):
        return {}
    if (include is not None and SVG_MIME not in include) or (exclude and SVG_MIME in exclude):
        return {}
    try:
        # a display must not stall: past 5 s of dot the built-in layout draws it
        return {SVG_MIME: render_svg(doc, timeout=5.0)}
    except Exception as e:  # noqa: BLE001 - a picture is an extra; the widget still shows
        import warnings

        warnings.warn(f"dyntorch: no static picture for this view ({e})", stacklevel=2)
        return {}
