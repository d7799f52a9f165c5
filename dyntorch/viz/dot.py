"""The graph as a Graphviz drawing: module scopes as clusters, folded below a depth.

Built from the same document as the front end (:func:`~dyntorch.viz.graph.graph_json`), so a
drawing and the live view always agree.
"""
from __future__ import annotations

import graphviz

from .graph import graph_json

__all__ = ["to_dot", "DotGraph", "GraphvizNotInstalled"]

_INSTALL = (
    "Graphviz's `dot` program was not found on PATH, so this graph cannot be rendered (the "
    "`graphviz` Python package only writes the DOT text). Install Graphviz: `sudo apt-get "
    "install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), `conda install -c "
    "conda-forge graphviz`, or the installer from https://graphviz.org/download/ (Windows; "
    "add its bin folder to PATH). Without it, use `.source` for the DOT text or "
    "`dyntorch.viz.graph_json(...)` / the notebook widget.")


class GraphvizNotInstalled(RuntimeError):
    """Rendering needs Graphviz's ``dot`` executable, which is not installed."""


class DotGraph(graphviz.Digraph):
    """A ``graphviz.Digraph`` whose rendering says how to install Graphviz when it is missing."""

    def pipe(self, *args, **kwargs):
        try:
            return super().pipe(*args, **kwargs)
        except graphviz.ExecutableNotFound as e:
            raise GraphvizNotInstalled(_INSTALL) from e

    def render(self, *args, **kwargs):
        try:
            return super().render(*args, **kwargs)
        except graphviz.ExecutableNotFound as e:
            raise GraphvizNotInstalled(_INSTALL) from e

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        try:
            return super()._repr_mimebundle_(include=include, exclude=exclude, **kwargs)
        except graphviz.ExecutableNotFound as e:
            raise GraphvizNotInstalled(_INSTALL) from e


_FILL = {"idle": "white", "pending": "white", "ready": "#fff3b0", "current": "#ffb347",
         "done": "#c8f7c5"}


def _fmt_shape(outs) -> str:
    if not outs:
        return ""
    o = outs[0]
    return "[" + ", ".join(str(s) for s in o["shape"]) + "] " + o["dtype"]


def _grad_text(grad) -> str:
    if not grad:
        return ""
    for key in ("out", "in"):
        for s in grad.get(key) or ():
            if s is not None:
                bad = ""
                if s["nan"] or s["inf"]:
                    bad = f" nan={s['nan']} inf={s['inf']}"
                n = s["norm"]
                return ("|g|=n/a" if n is None else f"|g|={n:.3g}") + bad
    return ""


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(output_or_stepper, depth: int | None = None, show_shapes: bool = True,
           show_grads: bool = True, *, model=None) -> DotGraph:
    """Draw the autograd graph with Graphviz.

    Parameters
    ----------
    output_or_stepper : Tensor, sequence of Tensors or BackwardStepper
        What to draw; a stepper colours nodes by state (ready, current, done).
    depth : int, optional
        Module scopes nested deeper than ``depth`` levels are folded into one box each
        (``depth=0`` folds every top-level module; None draws every node).
    show_shapes : bool
        Put each node's output shape and dtype in its label.
    show_grads : bool
        Put the gradient norm in the label of nodes a stepper has run.
    model : nn.Module, optional
        Names parameters and module types.

    Returns
    -------
    DotGraph
        A ``graphviz.Digraph``; ``.source`` is the DOT text. Rendering needs Graphviz's ``dot``
        and says how to install it when it is missing. Edges follow the data (forward).
    """
    doc = graph_json(output_or_stepper, model=model, grads=show_grads)
    types = {s["name"]: s["type"] for s in doc["scopes"]}
    counts = {s["name"]: s["nodes"] for s in doc["scopes"]}
    g = DotGraph(name="dyntorch", graph_attr={"rankdir": "BT", "fontsize": "10",
                                              "compound": "true"},
                 node_attr={"shape": "box", "style": "rounded,filled", "fontsize": "10",
                            "fontname": "Helvetica"})
    members: dict = {}  # cluster scope -> [(dot id, attrs)]
    alias: dict = {}  # node id -> dot id (its fold box when folded)
    folds: dict = {}
    for n in doc["nodes"]:
        parts = n["scope"].split(".") if n["scope"] else []
        if depth is not None and len(parts) > depth:
            box = ".".join(parts[:depth + 1])
            host = ".".join(parts[:depth])
            fid = folds.get(box)
            if fid is None:
                fid = folds[box] = f"fold{len(folds)}"
                typ = types.get(box)
                label = f"{box}" + (f" ({typ})" if typ else "") + f"\n{counts.get(box, 0)} nodes"
                members.setdefault(host, []).append(
                    (fid, {"label": label, "shape": "box3d", "style": "filled",
                           "fillcolor": "#dde7f5"}))
            alias[n["id"]] = fid
            continue
        alias[n["id"]] = n["id"]
        lines = [n["label"]]
        if show_shapes:
            sh = _fmt_shape(n["outputs"])
            if sh:
                lines.append(sh)
        if show_grads:
            gt = _grad_text(n["grad"])
            if gt:
                lines.append(gt)
        fill = "#d6eaff" if n["kind"] == "leaf" and n["state"] in ("idle", "pending") else \
            _FILL.get(n["state"], "white")
        attrs = {"label": "\n".join(lines), "fillcolor": fill}
        if n["source"]:
            attrs["tooltip"] = f"{n['source']['file']}:{n['source']['line']}  " \
                               f"{n['source']['text']}"
        if n["kind"] == "leaf":
            attrs["shape"] = "ellipse"
        if n["kind"] == "output":
            attrs["penwidth"] = "2"
        members.setdefault(n["scope"], []).append((n["id"], attrs))
    # every scope that holds something (directly or below) becomes a cluster
    shown = set()
    for s in list(members):
        parts = s.split(".") if s else []
        for k in range(1, len(parts) + 1):
            shown.add(".".join(parts[:k]))
    children: dict = {}
    for s in shown:
        parent = s.rsplit(".", 1)[0] if "." in s else ""
        children.setdefault(parent, []).append(s)

    def emit(graph, scope):
        for nid_, attrs in members.get(scope, ()):
            graph.node(nid_, **attrs)
        for child in sorted(children.get(scope, ())):
            with graph.subgraph(name="cluster_" + child.replace(".", "_")) as sg:
                typ = types.get(child)
                sg.attr(label=_esc(child + (f" ({typ})" if typ else "")), style="rounded",
                        color="#8899aa", fontsize="10")
                emit(sg, child)

    emit(g, "")
    seen = set()
    for e in doc["edges"]:
        a, b = alias.get(e["src"]), alias.get(e["dst"])
        if a is None or b is None or a == b or (a, b) in seen:
            continue
        seen.add((a, b))
        g.edge(a, b)
    return g
