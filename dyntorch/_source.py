"""Where an op was called, as a user reads it.

A node records its user frame as ``(filename, line)``. In a notebook that file is the kernel's
temporary one (``/tmp/ipykernel_<pid>/<hash>.py``), which means nothing to the user; the cell's
execution count does. Every place that shows a source line (the stepper's status, errors,
the recorder, explain, diff and the views) formats it here, so they all say the same thing.
"""
from __future__ import annotations

import linecache
import sys

__all__ = ["cell_of", "source_entry", "where"]


def cell_of(filename: str) -> int | None:
    """The execution count of the notebook cell compiled to ``filename`` (None elsewhere)."""
    if "IPython" not in sys.modules:  # never import IPython just to ask
        return None
    try:
        from IPython import get_ipython

        ip = get_ipython()
        named = ip.compile.format_code_name(filename) if ip is not None else None
    except Exception:  # noqa: BLE001 - an odd shell: show the file name instead
        return None
    if not named or not named[1].startswith("In["):
        return None
    try:
        return int(named[1][3:-1])
    except ValueError:
        return None


def where(source: tuple[str, int] | None) -> str:
    """``"In [3], line 8"`` for a notebook cell, ``"file.py:8"`` elsewhere, ``""`` for None."""
    if not source:
        return ""
    filename, line = source
    cell = cell_of(filename)
    return f"In [{cell}], line {line}" if cell is not None else f"{filename}:{line}"


def source_entry(source: tuple[str, int] | None) -> dict | None:
    """A source as the graph document carries it: file, line, the line's text and, in a
    notebook, the cell's execution count (shown as ``In [3], line 8``)."""
    if not source:
        return None
    filename, line = source
    out = {"file": filename, "line": int(line),
           "text": linecache.getline(filename, int(line)).strip()}
    cell = cell_of(filename)
    if cell is not None:
        out["cell"] = cell
    return out
