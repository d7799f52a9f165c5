"""The built front end (``extension/pybuild.py`` writes it into ``dyntorch/viz/static/``; the
wheel and sdist carry it)."""
from __future__ import annotations

import functools
from pathlib import Path

STATIC = Path(__file__).with_name("static")

# Shown instead of the graph when the package was installed without its built front end.
MISSING_ESM = """
export default { render({ el }) {
  el.innerHTML = '<div style="padding:8px;border:1px solid #c92a2a;color:#c92a2a">' +
    'dyntorch: the notebook front end is not built. In a checkout run ' +
    '<code>make extension</code> (needs Node 20); or install dyntorch from a wheel or ' +
    'sdist (<code>pip install "dyntorch[notebook]"</code>), which carry it.</div>';
} };
"""


def widget_esm() -> str:
    """The anywidget ES module text (or a module that explains how to build it)."""
    p = STATIC / "widget.js"
    return p.read_text(encoding="utf-8") if p.exists() else MISSING_ESM


@functools.lru_cache(maxsize=1)
def layout_worker() -> str:
    """Source of the Graphviz WebAssembly worker, sent once per page on request."""
    p = STATIC / "layout_worker.js"
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: run `make extension` to build the front end")
    return p.read_text(encoding="utf-8")
