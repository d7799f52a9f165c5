"""dyntorch.serialization.safe_globals / add_safe_globals / get_safe_globals /
clear_safe_globals, and weights_only with torch's environment overrides, side by side with
torch 2.13 on the same files."""
from __future__ import annotations

import io
import pickle

import pytest

import dyntorch
from dyntorch import serialization as S
from dyntorch.serialization import LoadError

torch = pytest.importorskip("torch")


class Config:
    """A plain object a user saves next to the weights."""

    def __init__(self, depth=3):
        self.depth = depth


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    monkeypatch.delenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", raising=False)
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", raising=False)
    S.clear_safe_globals()
    torch.serialization.clear_safe_globals()
    yield
    S.clear_safe_globals()
    torch.serialization.clear_safe_globals()


def _files():
    """The same object saved by both libraries."""
    ours, theirs = io.BytesIO(), io.BytesIO()
    dyntorch.save({"cfg": Config(5), "w": dyntorch.ones(2)}, ours)
    torch.save({"cfg": Config(5), "w": torch.ones(2)}, theirs)
    return ours.getvalue(), theirs.getvalue()


def _outcome(fn):
    try:
        out = fn()
    except Exception as e:  # noqa: BLE001 - the kind of failure is what is compared
        return "refused", str(e)
    return ("loaded", out["cfg"].depth) if isinstance(out["cfg"], Config) else ("odd", out)


def _both(data_ours, data_theirs, **kw):
    return (_outcome(lambda: dyntorch.load(io.BytesIO(data_ours), **kw)),
            _outcome(lambda: dyntorch.load(io.BytesIO(data_theirs), **kw)),
            _outcome(lambda: torch.load(io.BytesIO(data_theirs), **kw)))


def test_unknown_globals_are_refused_with_the_way_out():
    ours, theirs = _files()
    a, b, t = _both(ours, theirs)
    assert a[0] == b[0] == t[0] == "refused"
    assert "Config" in a[1] and "add_safe_globals" in a[1] and "weights_only=False" in a[1]
    assert "<_io.BytesIO>" in a[1] or "BytesIO" in a[1]


def test_safe_globals_context_manager_allows_and_forgets():
    ours, theirs = _files()
    with S.safe_globals([Config]), torch.serialization.safe_globals([Config]):
        assert S.get_safe_globals() == [Config]
        a, b, t = _both(ours, theirs)
        assert a == b == t == ("loaded", 5)
    assert S.get_safe_globals() == []
    assert _both(ours, theirs)[0][0] == "refused"


def test_add_get_clear_and_name_pairs():
    ours, theirs = _files()
    S.add_safe_globals([Config])
    assert S.get_safe_globals() == [Config]
    assert _outcome(lambda: dyntorch.load(io.BytesIO(ours)))[0] == "loaded"
    S.clear_safe_globals()
    assert S.get_safe_globals() == []
    # (obj, "module.name"): a class saved under a name it no longer has
    name = f"{Config.__module__}.Config"
    S.add_safe_globals([(Config, name)])
    assert _outcome(lambda: dyntorch.load(io.BytesIO(ours)))[0] == "loaded"
    with pytest.raises(TypeError, match="list"):
        S.add_safe_globals(Config)


def test_weights_only_false_loads_everything_as_torch_does():
    ours, theirs = _files()
    a, b, t = _both(ours, theirs, weights_only=False)
    assert a == b == t == ("loaded", 5)


def test_force_no_weights_only_env_applies_only_when_the_argument_is_left_out(monkeypatch):
    ours, theirs = _files()
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.warns(UserWarning, match="TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"):
        assert dyntorch.load(io.BytesIO(ours))["cfg"].depth == 5
    a, b, t = _both(ours, theirs, weights_only=True)
    assert a[0] == b[0] == t[0] == "refused"


def test_force_weights_only_env_overrides_an_explicit_false(monkeypatch):
    ours, theirs = _files()
    monkeypatch.setenv("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "yes")
    a, b, t = _both(ours, theirs, weights_only=False)
    assert a[0] == b[0] == t[0] == "refused"
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "true")
    with pytest.raises(RuntimeError, match="only one of"):
        dyntorch.load(io.BytesIO(ours))


def test_pickle_module_defaults_weights_only_to_false_as_in_torch():
    ours, theirs = _files()
    assert dyntorch.load(io.BytesIO(ours), pickle_module=pickle)["cfg"].depth == 5
    with pytest.raises(RuntimeError, match="pickle_module"):
        dyntorch.load(io.BytesIO(ours), pickle_module=pickle, weights_only=True)
    with pytest.raises(RuntimeError, match="pickle_module"):
        torch.load(io.BytesIO(theirs), pickle_module=pickle, weights_only=True)


def test_code_in_a_file_never_runs_under_weights_only(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    buf = io.BytesIO()
    dyntorch.save({"x": Evil()}, buf)
    with pytest.raises(LoadError, match="builtins.open|io.open"):
        dyntorch.load(io.BytesIO(buf.getvalue()))
    assert not marker.exists()


def test_get_unsafe_globals_in_checkpoint_matches_torch():
    ours, theirs = _files()
    want = torch.serialization.get_unsafe_globals_in_checkpoint(io.BytesIO(theirs))
    assert want == [f"{Config.__module__}.Config"]
    assert S.get_unsafe_globals_in_checkpoint(io.BytesIO(ours)) == want
    assert S.get_unsafe_globals_in_checkpoint(io.BytesIO(theirs)) == want
    with S.safe_globals([Config]):
        assert S.get_unsafe_globals_in_checkpoint(io.BytesIO(ours)) == []
    buf = io.BytesIO()
    dyntorch.save({"w": dyntorch.ones(2), "n": [1, (2.0, "x")]}, buf)
    assert S.get_unsafe_globals_in_checkpoint(io.BytesIO(buf.getvalue())) == []


def test_reachable_as_torch_serialization():
    import importlib
    import subprocess
    import sys

    code = ("import dyntorch as torch; s = torch.serialization; "
            "print(s.safe_globals.__name__, s.add_safe_globals.__name__, "
            "s.get_safe_globals.__name__, torch.save is s.save)")
    root = importlib.util.find_spec("dyntorch").submodule_search_locations[0]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=root.rsplit("/", 1)[0], timeout=60)
    assert out.stdout.split() == ["safe_globals", "add_safe_globals", "get_safe_globals",
                                  "True"], out.stderr
