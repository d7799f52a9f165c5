"""Compare two runs of the same program node by node: where did they start to differ?

``diff(a, b)`` takes two losses (or two :class:`~dyntorch.debug.BackwardStepper`, or two
recorder steps ``(recorder, step)`` / ``recorder.at(step)`` documents), matches their graph
nodes by module scope, op and order (the k-th ``AddmmBackward0`` in scope ``"2"``), and
compares forward values and gradients. Values are recomputed from what each node saved
(``dyntorch.debug.node_value``); gradients come from a backward run on a stepper that keeps
the graph and puts the leaves' ``.grad`` back afterwards.
"""
from __future__ import annotations

import html
import math
from collections.abc import Mapping

import numpy as np

from .. import _backend as B
from .._source import where as source_where
from .._tensor import Tensor
from ..autograd.node import AccumulateGrad
from ..debug import BackwardStepper, node_value
from .graph import graph_json, graph_nodes

__all__ = ["diff", "GraphDiff", "DiffRow"]


def _host(a):
    if a is None:
        return None
    if isinstance(a, Tensor):
        a = a._data
    return B.to_numpy(a) if not isinstance(a, np.ndarray) else a


def rel_diff(a, b) -> float:
    """max |a - b| / max |b| (NaN-aware: a NaN on one side only is infinite; on both, equal)."""
    if a is None or b is None:
        return math.nan
    x, y = np.asarray(_host(a), np.float64), np.asarray(_host(b), np.float64)
    if x.shape != y.shape:
        return math.inf
    if x.size == 0:
        return 0.0
    nx, ny = ~np.isfinite(x), ~np.isfinite(y)
    if (nx != ny).any() or (nx & ny & (np.nan_to_num(x) != np.nan_to_num(y))).any():
        return math.inf
    f = ~nx
    if not f.any():
        return 0.0
    d = float(np.max(np.abs(x[f] - y[f])))
    scale = float(np.max(np.abs(y[f])))
    return d / scale if scale > 0 else (0.0 if d == 0 else math.inf)


class DiffRow:
    """One matched (or unmatched) node: ``key``, ``op``, ``scope``, ``source``, ``kind``,
    ``value_rel`` and ``grad_rel`` (max relative difference; NaN where not compared),
    ``id_a``/``id_b`` (document ids, None where the node is only on one side)."""

    __slots__ = ("key", "op", "scope", "source", "kind", "value_rel", "grad_rel", "id_a",
                 "id_b", "seq")

    def __init__(self, key, op, scope, source, kind, value_rel, grad_rel, id_a, id_b, seq):
        self.key, self.op, self.scope, self.source, self.kind = key, op, scope, source, kind
        self.value_rel, self.grad_rel, self.id_a, self.id_b = value_rel, grad_rel, id_a, id_b
        self.seq = seq

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self) -> str:
        src = f" at {source_where(self.source)}" if self.source else ""
        where = f" in '{self.scope}'" if self.scope else ""
        return (f"DiffRow({self.op}{where}{src}: value {_fmt(self.value_rel)}, "
                f"grad {_fmt(self.grad_rel)})")


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return "inf" if v == math.inf else f"{v:.3g}"


class DiffTable(list):
    """The rows of a diff, printable as a table (and as HTML in a notebook)."""

    def __str__(self) -> str:
        head = f"{'node':34s} {'scope':12s} {'value rel':>10s} {'grad rel':>10s}"
        lines = [head, "-" * len(head)]
        for r in self:
            lines.append(f"{r.op[:34]:34s} {r.scope[:12]:12s} {_fmt(r.value_rel):>10s} "
                         f"{_fmt(r.grad_rel):>10s}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(r.op)}</td><td>{html.escape(r.scope)}</td>"
            f"<td>{_fmt(r.value_rel)}</td><td>{_fmt(r.grad_rel)}</td></tr>" for r in self)
        return ("<table><tr><th>node</th><th>scope</th><th>value rel</th><th>grad rel</th>"
                f"</tr>{rows}</table>")


# ----------------------------------------------------------------------------- one side
class _Side:
    """Entries of one run: key -> (node id, op, scope, source, kind, value, grad, seq)."""

    def __init__(self, entries: dict, doc: dict | None):
        self.entries, self.doc = entries, doc


def _keyed(items):
    """Stable keys: scope/op#k, k counting that scope and op in forward order."""
    count: dict = {}
    out = {}
    for it in items:
        ck = (it["scope"], it["op"])
        k = count.get(ck, 0)
        count[ck] = k + 1
        out[f"{it['scope']}/{it['op']}#{k}"] = it
    return out


def _from_graph(source, model) -> _Side:
    stepper = source if isinstance(source, BackwardStepper) else None
    _, nodes = graph_nodes(source)
    params = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
    grads: dict = {}
    if stepper is not None:
        for st in stepper.history:
            gs = st.grad_outputs
            grads[st.node] = gs[0] if gs else None
    else:
        s = BackwardStepper(source, retain_graph=True)
        try:
            for st in s:
                gs = st.grad_outputs
                grads[st.node] = None if not gs or gs[0] is None else _host(gs[0]).copy()
        finally:
            s.reset()  # the leaves' .grad as they were
            s.close()
    items = []
    for n in nodes:
        leaf = n.__class__ is AccumulateGrad
        scope = n.scope
        if leaf:
            pname = params.get(id(n.variable))
            if pname and "." in pname:
                scope = pname.rsplit(".", 1)[0]
        items.append({"id": f"n{n.seq}", "op": n.name(), "scope": scope, "source": n.source,
                      "kind": "leaf" if leaf else "op", "value": node_value(n),
                      "grad": grads.get(n), "seq": n.seq})
    doc = graph_json(stepper if stepper is not None else source, model=model, grads=False)
    return _Side(_keyed(items), doc)


def _from_doc(doc: Mapping) -> _Side:
    items = []
    for n in doc["nodes"]:
        src = n.get("source")
        items.append({"id": n["id"], "op": n["op"], "scope": n["scope"],
                      "source": (src["file"], src["line"]) if src else None,
                      "kind": "leaf" if n["kind"] == "leaf" else "op",
                      "stats": n.get("record") or {}, "seq": n["seq"]})
    return _Side(_keyed(items), dict(doc))


def _side(x, model) -> _Side:
    if isinstance(x, tuple) and len(x) == 2 and hasattr(x[0], "at"):
        return _from_doc(x[0].at(x[1]))
    if isinstance(x, Mapping):
        if x.get("schema") != "dyntorch.graph":
            raise ValueError("diff: a dict must be a graph document (recorder.at(step))")
        return _from_doc(x)
    if isinstance(x, (Tensor, BackwardStepper)):
        if isinstance(x, BackwardStepper) and x.closed:
            raise RuntimeError("diff: this BackwardStepper is closed")
        return _from_graph(x, model)
    raise TypeError(f"diff: expected two losses (Tensors), BackwardSteppers, (recorder, step) "
                    f"pairs or recorder.at(step) documents, got {type(x).__name__}")


def _stat_rel(sa: dict, sb: dict, names) -> float:
    best = math.nan
    for k in names:
        if k in sa and k in sb and sa[k] is not None and sb[k] is not None:
            r = rel_diff(np.asarray(sa[k]), np.asarray(sb[k]))
            best = r if math.isnan(best) else max(best, r)
    return best


_OUT = ("out_mean", "out_std", "out_min", "out_max")


# ----------------------------------------------------------------------------- the diff
class GraphDiff:
    """The node-by-node comparison of two runs (see :func:`diff`)."""

    def __init__(self, a: _Side, b: _Side):
        self._a, self._b = a, b
        rows = []
        for key, ea in a.entries.items():
            eb = b.entries.get(key)
            if eb is None:
                rows.append(DiffRow(key, ea["op"], ea["scope"], ea["source"], ea["kind"],
                                    math.inf, math.inf, ea["id"], None, ea["seq"]))
                continue
            if "stats" in ea:
                v = _stat_rel(ea["stats"], eb["stats"], _OUT)
                g = _stat_rel(ea["stats"], eb["stats"], ("grad_norm",))
            else:
                v = rel_diff(ea["value"], eb["value"])
                g = rel_diff(ea["grad"], eb["grad"]) if ea["grad"] is not None or \
                    eb["grad"] is not None else math.nan
                if (ea["grad"] is None) != (eb["grad"] is None):
                    g = math.inf
            rows.append(DiffRow(key, ea["op"], ea["scope"], ea["source"], ea["kind"], v, g,
                                ea["id"], eb["id"], ea["seq"]))
        for key, eb in b.entries.items():
            if key not in a.entries:
                rows.append(DiffRow(key, eb["op"], eb["scope"], eb["source"], eb["kind"],
                                    math.inf, math.inf, None, eb["id"], eb["seq"]))
        rows.sort(key=lambda r: (r.id_a is None, r.seq))
        self.rows = rows

    def table(self) -> DiffTable:
        """Per-node relative differences (``max |a-b| / max |b|``), in forward order."""
        return DiffTable(self.rows)

    def first_divergent(self, rtol: float = 1e-5, *, include_leaves: bool = False,
                        on: str = "value") -> DiffRow | None:
        """The first node in forward order whose output (``on="value"``) or incoming gradient
        (``on="grad"``) differs by more than ``rtol`` (relative), or that exists on one side
        only; None when every node agrees. Leaves (parameters, inputs) are skipped unless
        ``include_leaves``: an edited weight shows as the first op that uses it."""
        if on not in ("value", "grad"):
            raise ValueError(f"first_divergent: on must be 'value' or 'grad', not {on!r}")
        for r in self.rows:
            if r.kind == "leaf" and not include_leaves:
                continue
            v = r.value_rel if on == "value" else r.grad_rel
            if not math.isnan(v) and v > rtol:
                return r
        return None

    def node_colors(self, rtol: float = 1e-5) -> dict:
        """Document id (of side a) -> fill colour: green within ``rtol``, amber up to 1000x
        ``rtol``, red beyond, grey where not compared."""
        out = {}
        for r in self.rows:
            if r.id_a is None:
                continue
            v = r.value_rel if not math.isnan(r.value_rel) else r.grad_rel
            if math.isnan(v):
                out[r.id_a] = "#d9d9d9"
            elif v <= rtol:
                out[r.id_a] = "#b7e4b0"
            elif v <= 1e3 * rtol:
                out[r.id_a] = "#ffd166"
            else:
                out[r.id_a] = "#ef476f"
        return out

    def document(self, rtol: float = 1e-5) -> dict:
        """Side a's graph document with a ``diff`` object per node (``value_rel``,
        ``grad_rel``, ``divergent``; ``docs/graph-schema.md``) and ``status.text`` naming the
        first divergent node."""
        doc = dict(self._a.doc)
        by_id = {r.id_a: r for r in self.rows if r.id_a is not None}
        first = self.first_divergent(rtol)
        nodes = []
        for n in doc["nodes"]:
            n = dict(n)
            r = by_id.get(n["id"])
            if r is not None:
                n["diff"] = {"value_rel": _json(r.value_rel), "grad_rel": _json(r.grad_rel),
                             "divergent": bool(first is not None and r is first)}
            nodes.append(n)
        doc["nodes"] = nodes
        txt = ("no node differs by more than " + f"{rtol:g}" if first is None else
               f"first divergent: {first.op}" + (f" in {first.scope}" if first.scope else "")
               + f" (relative difference {_fmt(first.value_rel)})")
        doc["status"] = dict(doc.get("status") or {}, text=txt)
        return doc

    def svg(self, rtol: float = 1e-5) -> str:
        """The graph of side a coloured by divergence (``dyntorch.viz.picture.render_svg``)."""
        from .picture import render_svg

        first = self.first_divergent(rtol)
        return render_svg(self.document(rtol), node_colors=self.node_colors(rtol),
                          highlight=[first.id_a] if first is not None and first.id_a else None,
                          title=self.document(rtol)["status"]["text"])

    def save(self, path, **kw):
        """Write this diff as ``.html`` (interactive, offline), ``.svg`` or ``.png``
        (:func:`dyntorch.viz.export.export`)."""
        from .export import export

        return export(self, path, **kw)

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        b = {"text/plain": repr(self), "text/html": self.table()._repr_html_()}
        try:
            b["image/svg+xml"] = self.svg()
        except Exception:  # noqa: BLE001 - the table still shows
            pass
        try:  # the live view coloured by divergence, with its legend (needs anywidget)
            from .marked_view import diff_view

            w = diff_view(self)._repr_mimebundle_(include=include, exclude=exclude)
            w = w[0] if isinstance(w, tuple) else w
            b.update({k: v for k, v in w.items() if k.startswith("application/vnd.jupyter")})
        except Exception:  # noqa: BLE001 - the picture and the table still show
            pass
        return b

    def __repr__(self) -> str:
        f = self.first_divergent()
        return (f"<GraphDiff {len(self.rows)} nodes; "
                + ("no divergence at rtol=1e-05>" if f is None else f"first divergent: {f!r}>"))


def _json(v):
    """Strict JSON: NaN (not compared) is null, infinity (structure differs) is 1e308."""
    if v is None or math.isnan(v):
        return None
    return 1e308 if v == math.inf else v


def diff(a, b, *, model=None) -> GraphDiff:
    """Compare two runs of the same program node by node.

    Parameters
    ----------
    a, b : Tensor, BackwardStepper, (Recorder, step) or graph document
        Two losses (their graphs alive: before ``backward()``), two steppers (their steps so
        far), or two recorder steps (statistics are compared: output mean/std/min/max and
        gradient norm).
    model : nn.Module or (nn.Module, nn.Module), optional
        Names parameters, so a leaf sits in its module's scope (a pair: one model per side,
        e.g. a model and its edited copy).

    Returns
    -------
    GraphDiff
        ``.first_divergent(rtol=)``, ``.table()``, ``.document()``, ``.svg()``; in a notebook
        it shows the graph coloured by divergence.

    Examples
    --------
    >>> d = dyntorch.viz.diff(loss_before_edit, loss_after_edit)
    >>> d.first_divergent(rtol=1e-6).scope
    '2'
    """
    ma, mb = model if isinstance(model, tuple) else (model, model)
    return GraphDiff(_side(a, ma), _side(b, mb))
