"""Readers that draw the autograd graph.

- :func:`graph_json`, :func:`graph_diff`, :func:`apply_diff`, :class:`GraphTracker`: the
  versioned graph document the notebook widget and JupyterLab panel draw
  (``docs/graph-schema.md``).
- :func:`to_dot`: a Graphviz drawing with module scopes as clusters.
- :func:`plot_grad_flow`, :func:`plot_grad_hist`, :class:`GradNormRecorder`: matplotlib plots
  of gradients and a per-module gradient-norm recorder.
- :func:`diff`: compare two runs node by node; :func:`export`: save a view as standalone
  HTML, SVG or PNG.
- ``show`` (``.widget``), ``live`` (``.live_view``), ``stepper_widget`` (``.stepper_view``):
  the notebook views, loaded on first use. Importing this package registers how a
  ``BackwardStepper`` displays in a notebook (``dyntorch._display``).

Graphviz, matplotlib and the widget load lazily, so ``import dyntorch.viz`` stays light and
works where any of them is missing.
"""
from __future__ import annotations

import importlib

from .. import _display
from ..debug import BackwardStepper
from ..debug.explain import Explanation
from ..debug.recorder import Recorder

# Eager, so that the names are the functions even after `import dyntorch.viz.diff` (a lazy
# name would lose to the submodule that the import system sets on the package).
from .diff import GraphDiff, diff
from .export import export
from .graph import (
    DIFF_SCHEMA,
    SCHEMA,
    SCHEMA_VERSION,
    GraphTracker,
    apply_diff,
    graph_diff,
    graph_json,
    graph_nodes,
)

_LAZY = {
    "to_dot": ".dot", "DotGraph": ".dot", "GraphvizNotInstalled": ".dot",
    "plot_grad_flow": ".plots", "plot_grad_hist": ".plots", "GradNormRecorder": ".plots",
    "grad_norms": ".plots",
    "show": ".widget", "live": ".live_view", "stepper_widget": ".stepper_view",
    "profile": ".profile",
}

__all__ = ["SCHEMA", "DIFF_SCHEMA", "SCHEMA_VERSION", "GraphDiff", "GraphTracker", "apply_diff",
           "diff", "export", "graph_diff", "graph_json", "graph_nodes", *_LAZY]


def __getattr__(name):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'dyntorch.viz' has no attribute '{name}'")
    try:
        m = importlib.import_module(mod, __name__)
    except ImportError as e:
        if mod in (".widget", ".live_view", ".stepper_view"):
            raise AttributeError(
                f"dyntorch.viz.{name} needs the notebook widget (dyntorch/viz/widget.py and "
                f"anywidget), which could not be imported: {e}") from e
        raise
    value = getattr(m, name)
    globals()[name] = value
    return value


def _stepper_view(stepper, **kw):
    from .stepper_view import stepper_widget

    return stepper_widget(stepper, **kw)


def _explain_view(explanation, **kw):
    from .marked_view import explain_view

    return explain_view(explanation, **kw)


def _recorder_view(recorder, **kw):
    from .recorder_view import recorder_widget

    return recorder_widget(recorder, **kw)


_display.register(BackwardStepper, _stepper_view)
_display.register(Explanation, _explain_view)
_display.register(Recorder, _recorder_view)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
