"""The notebook widget that carries a graph to the front end (the transport).

One anywidget (:class:`GraphWidget`) draws a graph document (``docs/graph-schema.md``). The
kernel sends the full document once (the ``doc`` trait) and then small diffs as custom messages
(new nodes, state changes, gradient summaries); arrays never travel. Layout happens in the
browser (Graphviz WebAssembly in a Web Worker), whose source the kernel sends once per page when
the front end asks for it.

Entry points: :func:`show` (a result's graph) here; the step debugger's view is in
:mod:`.stepper_view` (``stepper_widget``) and the training view in :mod:`.live_view`
(``live``), both re-exported here for convenience.
"""
from __future__ import annotations

import math
import os
from collections import deque
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anywidget
import traitlets as T

from . import _static

__all__ = ["EXPORT_FORMATS", "GraphWidget", "diff_docs", "graph_doc", "jsonable", "show"]

#: What the toolbar's export buttons (and :meth:`GraphWidget.save`) write.
EXPORT_FORMATS = ("html", "svg", "png")


# ----------------------------------------------------------------------------- diffs
def diff_docs(old: dict | None, new: dict) -> dict | None:
    """The diff (``graph.graph_diff`` form) from ``old`` to ``new``; None when only the full
    document will do (no document yet, or another ``graph_id``)."""
    if old is None or old.get("graph_id") != new.get("graph_id"):
        return None
    from .graph import graph_diff

    d = graph_diff(old, new)
    if d.get("remove_nodes") and len(d["remove_nodes"]) * 2 > len(old["nodes"]):
        return None  # mostly a new graph: a fresh layout is cheaper to read
    return d


def _empty(d: dict, old: dict) -> bool:
    return not (d.get("add_nodes") or d.get("add_edges") or d.get("update") or
                d.get("remove_nodes") or d.get("remove_edges") or "scopes" in d or
                d.get("status") != old.get("status") or
                d.get("breakpoints", old.get("breakpoints")) != old.get("breakpoints"))


def graph_doc(obj, model=None) -> dict:
    """``graph.graph_json(obj, model=model)`` (imported on first use)."""
    from .graph import graph_json

    return graph_json(obj, model=model)


def jsonable(x):
    """JSON-safe copy: NaN/Inf (not valid JSON) become None; tuples become lists."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    return x


_clean = jsonable  # the old private name, kept for callers of this module


# ----------------------------------------------------------------------------- the comm
@contextmanager
def _outside_the_cell():
    """Publish the kernel's messages within this block with no parent request.

    A headless runner (nbclient, and so ``jupyter nbconvert --execute``, papermill, nbmake)
    reads only the messages whose parent is the cell it runs, and saves the state of every
    widget whose ``comm_open`` it read (``store_widget_state``, on by default). nbconvert then
    prefers that saved widget to the picture beside it, and the HTML shows a widget that needs
    the network and a widget manager to draw instead of the graph. A view's comm opened outside
    the cell's message chain is not saved by such runners, so their notebooks keep the picture;
    a live front end handles ``comm_open`` whatever its parent (JupyterLab, Notebook 7: it
    belongs to the kernel connection, not to a cell), so the live view is unchanged.
    Outside an IPython kernel this does nothing.
    """
    kernel = None
    try:
        from ipykernel.kernelbase import Kernel

        if Kernel.initialized():
            kernel = Kernel.instance()
    except Exception:  # noqa: BLE001 - no ipykernel (plain Python, another kernel): nothing to do
        kernel = None
    if kernel is None or "get_parent" in vars(kernel):
        yield
        return
    # Comm.publish_msg asks the kernel for the parent of what it sends (ipykernel 6 and 7)
    kernel.get_parent = lambda channel=None: {}
    try:
        yield
    finally:
        del kernel.get_parent


# ----------------------------------------------------------------------------- the widget
class GraphWidget(anywidget.AnyWidget):
    """An interactive drawing of a graph document.

    Parameters
    ----------
    doc : dict, optional
        A graph document (``dyntorch.viz.graph_json(...)``); it can be set later with
        :meth:`set_doc` and updated with :meth:`update`.
    mode : {"graph", "stepper", "live"}
        ``"stepper"`` adds the debugger's controls; ``"live"`` the training charts.
    height : str
        CSS height of the view.
    fold_limit : int
        Graphs with more nodes than this open with module scopes folded.
    """

    _esm = _static.widget_esm()

    doc = T.Dict().tag(sync=True)
    metrics = T.Dict().tag(sync=True)
    mode = T.Unicode("graph").tag(sync=True)
    height = T.Unicode("560px").tag(sync=True)
    fold_limit = T.Int(300).tag(sync=True)

    def __init__(self, doc: dict | None = None, *, mode: str = "graph",
                 height: str = "560px", fold_limit: int = 300, **kw: Any) -> None:
        super().__init__(mode=mode, height=height, fold_limit=fold_limit, **kw)
        self._doc: dict | None = None
        self._rev = 0
        self.selected: str | None = None  # the node clicked last in the front end
        self.sent: deque = deque(maxlen=200)  # messages sent, newest last (for tests, debugging)
        self.controller = None  # receives the front end's commands (the stepper's buttons)
        # what save() exports when the view was made from something richer than its document
        # (an explain result or a diff keeps its colours); None: the document drawn
        self.source: Any = None
        self.export_dir: str | os.PathLike | None = None  # the toolbar's files (default: cwd)
        self.on_msg(self._on_msg)
        if doc is not None:
            self.set_doc(jsonable(doc))  # hand-made documents may hold NaN (not JSON)

    def open(self) -> None:
        """Open the comm to the front end (see :func:`_outside_the_cell` for why its
        ``comm_open`` carries no parent)."""
        with _outside_the_cell():
            super().open()

    # ------------------------------------------------------------------ kernel -> front end
    @property
    def current(self) -> dict | None:
        """The document as the front end has it now."""
        return self._doc

    def set_doc(self, doc: dict) -> None:
        """Send a whole new document (the front end lays it out from scratch)."""
        doc = dict(doc)
        self._rev += 1
        doc["rev"] = self._rev
        self._doc = doc
        self.doc = doc
        self.sent.append({"type": "doc", "rev": self._rev, "graph_id": doc.get("graph_id")})

    def update(self, doc: dict) -> dict | None:
        """Bring the front end to ``doc``: a diff when possible, else the full document.

        Returns the diff sent (None when nothing changed or the full document went).
        ``graph_json`` documents are strict JSON already; pass others through ``jsonable``.
        """
        doc = dict(doc)
        old = self._doc
        d = diff_docs(old, doc)
        if d is None:
            self.set_doc(doc)
            return None
        if doc.get("breakpoints") != old.get("breakpoints"):
            d["breakpoints"] = doc.get("breakpoints") or []
        if _empty(d, old):
            return None
        doc["rev"] = d["rev"]
        self._rev = d["rev"]
        self._doc = doc
        self._post({"type": "diff", "diff": d})
        return d

    def push_document(self, doc: dict) -> None:
        """Send ``doc`` whole, keeping its ``rev`` (for a source that numbers its own revs)."""
        self._doc = doc
        self._rev = doc.get("rev", 0)
        self.doc = dict(doc)
        self.sent.append({"type": "doc", "rev": self._rev, "graph_id": doc.get("graph_id")})

    def push_diff(self, diff: dict, doc: dict) -> None:
        """Send ``diff`` that brings the front end to ``doc`` (``rev`` must follow ours)."""
        self._doc = doc
        self._rev = diff["rev"]
        self._post({"type": "diff", "diff": diff})

    def select(self, node_id: str) -> None:
        """Select a node in the front end and open it in the inspector."""
        self.selected = node_id
        self._post({"type": "select", "node": node_id})

    def _post(self, msg: dict) -> None:
        self.sent.append(msg)
        self.send(msg)

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any):
        """What a notebook stores for this view: the widget view (the live drawing) and, beside
        it, a static ``image/svg+xml`` picture, so notebooks saved headless keep the graph in
        nbconvert's HTML, on GitHub and nbviewer; a live front end still shows the widget.

        Every dyntorch view (``show``, the stepper, the live view) displays through here.
        """
        from .picture import picture_bundle

        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle  # (data, metadata) or data
        if isinstance(data, dict):
            data.update(picture_bundle(self._doc, include=kwargs.get("include"),
                                       exclude=kwargs.get("exclude")))
            marks = (self._doc or {}).get("marks")
            if marks and "image/svg+xml" in data:
                # a marked view (explain, diff): the picture keeps the marks and the caption
                from .picture import render_svg

                try:
                    data["image/svg+xml"] = render_svg(
                        self._doc, node_colors=marks, highlight=self._doc.get("highlight"),
                        title=self._doc.get("caption"), timeout=5.0)
                except Exception:  # noqa: BLE001 - the unmarked picture stays
                    pass
        return bundle

    # ------------------------------------------------------------------ export
    def save(self, path: str | os.PathLike, **kw: Any) -> Path:
        """Save this view: ``.html`` (standalone, interactive, offline), ``.svg`` or ``.png``.

        Parameters
        ----------
        path : str or PathLike
            The file; its suffix picks the format (:func:`dyntorch.viz.export.export`).
        **kw
            Passed to ``export`` (``title``, ``dpi``, ``engine``, ``model``).

        Returns
        -------
        Path
            The file written.
        """
        from .export import export

        return export(self if self.source is None else self.source, path, **kw)

    def _export_request(self, fmt: object, png: object = None) -> None:
        # a toolbar button: write the file beside the notebook (the kernel's working
        # directory) and tell the front end where, or why not
        if fmt not in EXPORT_FORMATS:
            self._post({"type": "exported", "error": f"unknown export format {fmt!r}; "
                        f"use one of {', '.join(EXPORT_FORMATS)}"})
            return
        folder = Path(self.export_dir if self.export_dir is not None else os.getcwd())
        stem = "dyntorch-graph"
        k = 1
        while (folder / f"{stem}-{k}.{fmt}").exists():
            k += 1
        try:
            if fmt == "png" and isinstance(png, str):
                p = _write_png(folder / f"{stem}-{k}.png", png)
            else:
                p = self.save(folder / f"{stem}-{k}.{fmt}")
        except Exception as e:  # noqa: BLE001 - the status line says what failed
            self._post({"type": "exported", "format": fmt, "error": f"{type(e).__name__}: {e}"})
            return
        self._post({"type": "exported", "format": fmt, "path": str(p), "name": p.name})

    # ------------------------------------------------------------------ front end -> kernel
    def _on_msg(self, _w, content, _buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "need_engine":
            src = _static.layout_worker()
            self.send({"type": "engine", "src": src})
            self.sent.append({"type": "engine", "bytes": len(src)})  # not the 800 kB itself
        elif kind in ("hello", "need_full"):
            if self._doc is not None and content.get("rev") != self._doc.get("rev"):
                self._post({"type": "doc", "doc": self._doc})
        elif kind == "select":
            self.selected = content.get("node")
        elif kind == "export":
            self._export_request(content.get("format"), content.get("png"))
        elif kind == "cmd" and self.controller is not None:
            self.controller.command(content.get("cmd"), content)


def _write_png(path: Path, b64: str) -> Path:
    """Write a PNG the front end rasterised (base64), after checking that it is one."""
    import base64
    import binascii

    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"export: the drawing sent for {path.name} is not base64 ({e})") from e
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"export: the drawing sent for {path.name} is not a PNG image")
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- show
def show(output, *, model=None, **kw: Any) -> GraphWidget:
    """Draw the autograd graph that produced ``output`` (a tensor, or a sequence of them).

    ``model`` (an ``nn.Module``) names parameters and module types. A
    ``dyntorch.debug.Recorder`` (or a ``GraphRecorder`` callback after ``fit``) shows its newest
    kept step with a step slider (``step=`` picks another). Returns the widget; as the last
    expression of a cell it displays itself.
    """
    rec = getattr(output, "recorder", None)  # a train.callbacks.GraphRecorder
    if rec is not None and all(hasattr(rec, a) for a in ("steps", "at", "history")):
        output = rec
    if all(hasattr(output, a) for a in ("steps", "at", "history")):  # a debug.Recorder
        from .recorder_view import recorder_widget

        return recorder_widget(output, **kw)
    return GraphWidget(graph_doc(output, model), mode="graph", **kw)


# ----------------------------------------------------------------------------- re-exports
_MOVED = {"stepper_widget": ".stepper_view", "StepperController": ".stepper_view",
          "_refresh_all": ".stepper_view", "live": ".live_view", "LiveView": ".live_view"}


def __getattr__(name: str):
    # the debugger and the live view live in their own modules, which import this one
    mod = _MOVED.get(name)
    if mod is None:
        raise AttributeError(f"module 'dyntorch.viz.widget' has no attribute '{name}'")
    import importlib

    return getattr(importlib.import_module(mod, __package__), name)
