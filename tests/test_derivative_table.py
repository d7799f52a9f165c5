"""docs/derivatives.md is generated from the op registry and must match it."""
from __future__ import annotations

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _maker():
    spec = importlib.util.spec_from_file_location(
        "make_derivatives", os.path.join(ROOT, "docs", "make_derivatives.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_derivative_table_is_current():
    mod = _maker()
    with open(mod.OUT, encoding="utf-8") as fh:
        on_disk = fh.read()
    assert on_disk == mod.table(), (
        "docs/derivatives.md is out of date with the op registry: run "
        "`python docs/make_derivatives.py` and commit the result")


def test_every_differentiable_op_is_listed_with_its_source():
    import dyntorch  # noqa: F401
    from dyntorch._dispatch import REGISTRY

    text = _maker().table()
    for d in REGISTRY.values():
        if not d.forward.__module__.startswith("dyntorch."):
            continue  # registered by another test
        assert f"| `{d.name}` | `{d.backward_name}` |" in text, d.name
        if d.derivative is not None:
            assert f"\n### `{d.name}`\n" in text, d.name


def test_saved_follows_the_signature():
    mod = _maker()
    from dyntorch._dispatch import REGISTRY

    assert mod._saved(REGISTRY["add"]) == "(nothing)"  # a + b keeps nothing for backward
    assert mod._saved(REGISTRY["mul"]) == "a (for b), b (for a)"  # OpDef.read_for
    assert mod._saved(REGISTRY["div"]) == "a (for b), b"
    assert mod._saved(REGISTRY["softmax"]) == "out"
