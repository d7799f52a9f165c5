"""Views of a graph with some nodes marked: an ``explain`` result and a ``diff``.

The document sent to the front end carries three optional fields (``docs/graph-schema.md``):
``marks`` (node id -> fill colour), ``caption`` (a sentence under the toolbar) and ``legend``
(``[colour, text]`` pairs). The front end paints them; the static picture in the output
(:meth:`GraphWidget._repr_mimebundle_`) draws the same colours and caption, so a notebook
saved headless still shows the cause.
"""
from __future__ import annotations

from typing import Any

from .widget import GraphWidget, jsonable

__all__ = ["explain_view", "diff_view", "marked_view"]

CAUSE, CHAIN = "#ef476f", "#ffd166"
DIFF_LEGEND = [["#b7e4b0", "same (within rtol)"], ["#ffd166", "differs (up to 1000 rtol)"],
               ["#ef476f", "diverged"], ["#d9d9d9", "not compared"]]


def marked_view(source: Any, legend: list, **kw: Any) -> GraphWidget:
    """A graph view of ``source`` (anything :func:`dyntorch.viz.export.document_of` reads) with
    its colours, highlight and caption; ``save()`` exports ``source`` itself."""
    from .export import document_of

    doc, colors, highlight, title = document_of(source)
    doc = dict(doc, marks=dict(colors), highlight=list(highlight), caption=title or "",
               legend=legend)
    w = GraphWidget(jsonable(doc), mode="graph", **kw)
    w.source = source
    return w


def explain_view(explanation: Any, **kw: Any) -> GraphWidget:
    """The graph of a :func:`dyntorch.debug.explain` result: the cause red, the chain from it
    to the symptom amber, the reason as the caption."""
    return marked_view(explanation, [[CAUSE, "cause: " + explanation.op],
                                     [CHAIN, "chain to the symptom"]], **kw)


def diff_view(d: Any, **kw: Any) -> GraphWidget:
    """The graph of side ``a`` of a :func:`dyntorch.viz.diff`, coloured by divergence."""
    return marked_view(d, DIFF_LEGEND, **kw)
