"""Build notebooks/NN_*.ipynb from the cell scripts beside this file.

A script holds cells separated by lines `# %%` (code) or `# %% [markdown]` (markdown, each
line starting with `# `). Outputs are not stored: CI executes every notebook for real.
Run: `python notebooks/_src/build.py`.
"""
from __future__ import annotations

import hashlib
import pathlib
import re

import nbformat

HERE = pathlib.Path(__file__).resolve().parent


def cells_of(text: str):
    parts = re.split(r"^# %%(.*)$", text, flags=re.M)
    # parts: [preamble, marker1, body1, marker2, body2, ...]
    for marker, body in zip(parts[1::2], parts[2::2]):
        body = body.strip("\n")
        if "[markdown]" in marker:
            lines = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in
                     body.splitlines()]
            yield nbformat.v4.new_markdown_cell("\n".join(lines).strip())
        elif body.strip():
            yield nbformat.v4.new_code_cell(body)


def build(src: pathlib.Path, out_dir: pathlib.Path | None = None) -> pathlib.Path:
    """Write ``src``'s notebook into ``out_dir`` (default: ``notebooks/``); return its path."""
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells_of(src.read_text()))
    # ids from each cell's text (nbformat draws random ones): a rebuild changes only the
    # cells that changed, so diffs of the notebooks stay readable
    seen: set = set()
    for cell in nb.cells:
        h = hashlib.sha1(f"{src.stem}\0{cell.source}".encode()).hexdigest()
        cid = h[:8]
        k = 8
        while cid in seen:  # the same text twice in one notebook
            k += 1
            cid = h[:k]
        seen.add(cid)
        cell.id = cid
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    out = (HERE.parent if out_dir is None else out_dir) / (src.stem + ".ipynb")
    nbformat.write(nb, out)
    return out


if __name__ == "__main__":
    for src in sorted(HERE.glob("[0-9][0-9]_*.py")):
        print("built", build(src).name)
