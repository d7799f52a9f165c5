"""The committed notebooks are what ``notebooks/_src/build.py`` makes of their scripts: an edit
to a script that was not rebuilt (or an edit made to the .ipynb only) fails here."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "notebooks" / "_src"
SCRIPTS = sorted(SRC.glob("[0-9][0-9]_*.py"))


def _builder():
    spec = importlib.util.spec_from_file_location("notebook_build", SRC / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_committed_notebook_is_built_from_its_script(script, tmp_path):
    pytest.importorskip("nbformat")
    built = _builder().build(script, tmp_path)
    committed = ROOT / "notebooks" / built.name
    assert committed.exists(), f"{committed.name} missing: run python notebooks/_src/build.py"
    assert built.read_text() == committed.read_text(), (
        f"{committed.name} differs from {script.name}: run python notebooks/_src/build.py")


def test_every_notebook_has_a_script():
    names = {p.stem for p in SCRIPTS}
    assert SCRIPTS and {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")} == names
