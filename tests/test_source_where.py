"""Source lines read as the user wrote them: ``In [n], line k`` for a notebook cell."""
import pytest

from dyntorch._source import cell_of, where

IPython = pytest.importorskip("IPython")


def test_plain_files_keep_their_name():
    assert where(("train.py", 12)) == "train.py:12"
    assert where(None) == ""
    assert cell_of("train.py") is None


def test_a_cell_is_named_by_its_execution_count_everywhere_a_source_is_shown():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    try:
        ip.run_cell("import dyntorch as dt\nfrom dyntorch.debug import BackwardStepper",
                    store_history=True)
        res = ip.run_cell(
            "x = dt.randn(3, requires_grad=True)\n"
            "loss = (x.tanh() * 2).sum()\n"
            "s = BackwardStepper(loss)\n"
            "s.step(2)\n"
            "status = s.status_text()\n", store_history=True)
        res.raise_error()
        count = res.execution_count
        status = ip.user_ns["status"]
        assert f"In [{count}], line 2" in status, status
        assert "ipykernel" not in status and ".py:" not in status
        node = ip.user_ns["s"].current.node
        assert where(node.source) == f"In [{count}], line 2"
    finally:
        InteractiveShell.clear_instance()


def test_recorder_documents_name_the_cell():
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    try:
        ip.run_cell("import dyntorch as dt\nfrom dyntorch.debug import Recorder", store_history=True)
        res = ip.run_cell(
            "m = dt.nn.Sequential(dt.nn.Linear(3, 2), dt.nn.ReLU())\n"
            "with Recorder(m) as rec:\n"
            "    m(dt.randn(4, 3)).sum().backward()\n"
            "doc = rec.at(rec.steps[0])\n", store_history=True)
        res.raise_error()
        sources = [n["source"] for n in ip.user_ns["doc"]["nodes"] if n.get("source")]
        assert sources and all(s.get("cell") == res.execution_count for s in sources), sources
    finally:
        InteractiveShell.clear_instance()
