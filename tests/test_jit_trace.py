"""jit.trace on functions of core ops: recording, replay, IR print-out, warnings, save/load."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

import dyntorch
from dyntorch import jit
from dyntorch.jit import LoadError, TracerWarning


def _np(t):
    return t.detach().numpy() if isinstance(t, dyntorch.Tensor) else np.asarray(t)


def _close(a, b, tol=1e-5):
    if isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _close(x, y, tol)
        return
    np.testing.assert_allclose(_np(a), _np(b), rtol=tol, atol=tol)


def mixed(x, w, lib=dyntorch):
    """Elementwise, shape, reduction and softmax ops; two outputs."""
    h = (x.reshape(x.shape[0], -1) * 2.0 + 1.0).relu()
    s = lib.softmax(h * w, 1)
    return s.sum(1, keepdim=True) - h.mean(), lib.tanh(h).permute(1, 0)


def test_trace_matches_eager_and_torch(rng, torch):
    x = rng.standard_normal((4, 2, 3))
    w = rng.standard_normal((1, 6))
    tx, tw = dyntorch.tensor(x), dyntorch.tensor(w)
    traced = jit.trace(mixed, (tx, tw))
    out = traced(tx, tw)
    _close(out, mixed(tx, tw))
    # the same function in torch gives the same numbers (reference for the eager ops)
    ref = mixed(torch.tensor(x), torch.tensor(w), torch)
    _close(out, tuple(r.numpy() for r in ref))
    # replay on new data of the same shape
    x2 = dyntorch.tensor(rng.standard_normal((4, 2, 3)))
    _close(traced(x2, tw), mixed(x2, tw))


def test_outputs_are_plain_tensors_without_grad(rng):
    x = dyntorch.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    traced = jit.trace(lambda a: (a * a).sum(0), x)
    y = traced(x)
    assert isinstance(y, dyntorch.Tensor) and not y.requires_grad and y.grad_fn is None
    assert traced(x.detach().numpy()).shape == (4,)  # arrays are accepted too


def test_graph_printout_one_line_per_op_with_shapes():
    x = dyntorch.randn(5, 3)
    traced = jit.trace(lambda a: dyntorch.relu(a * 3.0).sum(1), x)
    text = str(traced.graph)
    assert text.startswith("graph(%a : Float(5, 3)")
    lines = [ln for ln in text.splitlines() if " = " in ln]
    assert len(lines) == 3
    assert lines[0].strip() == "%0 : Float(5, 3) = mul(%a, 3.0)"
    assert lines[1].strip() == "%1 : Float(5, 3) = relu(%0)"
    assert lines[2].strip().startswith("%2 : Float(5) = sum(%1, axis=1")
    assert "return (%2)" in text
    assert "def forward(self, a):" in traced.code


def test_constants_are_captured_and_named():
    w = dyntorch.randn(3, 3)
    traced = jit.trace(lambda a: a * w, dyntorch.randn(3, 3))
    names = list(traced.constants())
    assert names == ["_const0"]
    assert "%_const0 : Float(3, 3)" in str(traced.graph)


def test_dead_code_is_not_in_the_graph():
    def f(a):
        _unused = dyntorch.exp(a) * 5.0  # noqa: F841 - computed and dropped
        return a + 1.0

    traced = jit.trace(f, dyntorch.randn(2))
    assert traced.graph.op_counts() == {"add": 1}


def test_multi_output_structure_and_list_outputs(rng):
    x = dyntorch.tensor(rng.standard_normal((2, 3)))
    traced = jit.trace(lambda a: [a + 1.0, (a * 2.0, a)], x)
    out = traced(x)
    assert isinstance(out, list) and isinstance(out[1], tuple)
    _close(out[0], x + 1.0)
    _close(out[1][0], x * 2.0)
    _close(out[1][1], x)


def test_same_input_twice_warns():
    x = dyntorch.randn(3)
    with pytest.warns(TracerWarning, match="same tensor"):
        traced = jit.trace(lambda a, b: a * b, (x, x), check_trace=False)
    assert len(traced.graph.inputs) == 2


@pytest.mark.parametrize("conv", ["bool", "item", "tolist", "index"])
def test_data_dependent_python_values_warn(conv):
    def f(a):
        s = a.sum()
        if conv == "bool":
            return a * 2.0 if s > 0 else a
        if conv == "item":
            return a * s.item()
        if conv == "tolist":
            return a * float(len(s.reshape(1).tolist()))
        i = (s > 100).long()
        return a * float([1.0, 2.0][i])

    with pytest.warns(TracerWarning, match="Python"):
        jit.trace(f, dyntorch.randn(4))


def test_no_warning_for_shape_logic_and_methods_restored():
    orig = dyntorch.Tensor.__bool__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jit.trace(lambda a: a.reshape(a.shape[0], -1) * 2.0, dyntorch.randn(2, 3))
    assert dyntorch.Tensor.__bool__ is orig
    # outside a trace, conversions do not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bool(dyntorch.ones(1) > 0)


def test_inplace_change_outside_the_door_warns():
    def f(a):
        b = a * 2.0
        b.add_(1.0)  # fast in-place path under no_grad: bypasses the door
        return b * 3.0

    with pytest.warns(TracerWarning, match="in place"):
        jit.trace(f, dyntorch.randn(3), check_trace=False)


def test_detach_inside_forward_stays_in_the_graph(rng):
    x = dyntorch.tensor(rng.standard_normal(3))
    traced = jit.trace(lambda a: (a * 2.0).detach() + 1.0, x)
    x2 = dyntorch.tensor(rng.standard_normal(3))
    _close(traced(x2), x2 * 2.0 + 1.0)


def test_wrong_inputs_fail_clearly():
    traced = jit.trace(lambda a: a + 1.0, dyntorch.randn(3))
    with pytest.raises(TypeError, match="expected 1 input"):
        traced(dyntorch.randn(3), dyntorch.randn(3))
    with pytest.raises(RuntimeError, match="traced as Float"):
        traced(dyntorch.randn(3).double())


# ----------------------------------------------------------------------------- save / load
def test_save_load_roundtrip(tmp_path, rng):
    x = dyntorch.tensor(rng.standard_normal((4, 2, 3)).astype(np.float32))
    w = dyntorch.tensor(rng.standard_normal((1, 6)).astype(np.float32))
    traced = jit.trace(mixed, (x, w))
    p = tmp_path / "m.dtj"
    traced.save(p)
    loaded = jit.load(p)
    _close(loaded(x, w), mixed(x, w))
    assert str(loaded.graph) == str(traced.graph)
    buf = io.BytesIO()
    traced.save(buf)
    buf.seek(0)
    _close(jit.load(buf)(x, w), mixed(x, w))


_CHILD = r"""
import sys, numpy as np
import dyntorch
m = dyntorch.jit.load(sys.argv[1])
x = np.load(sys.argv[2])
y = m(dyntorch.from_numpy(x))
np.save(sys.argv[3], y.numpy())
assert "Scaler" not in sys.modules and not any("test_jit" in k for k in sys.modules)
"""


def test_load_in_a_process_without_the_model_code(tmp_path):
    class Scaler:  # the "model class" exists only in this process
        def __init__(self):
            self.w = dyntorch.randn(5)

        def __call__(self, a):
            return dyntorch.tanh(a * self.w + 0.5).sum(0)

    model = Scaler()
    x = dyntorch.randn(3, 5)
    jit.trace(model, x).save(tmp_path / "s.dtj")
    np.save(tmp_path / "x.npy", x.numpy())
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    subprocess.run([sys.executable, str(script), str(tmp_path / "s.dtj"),
                    str(tmp_path / "x.npy"), str(tmp_path / "y.npy")], check=True,
                   cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=os.getcwd()))
    _close(np.load(tmp_path / "y.npy"), model(x))


def _saved(tmp_path):
    p = tmp_path / "ok.dtj"
    jit.trace(lambda a: a * 2.0 + 1.0, dyntorch.randn(3)).save(p)
    return p


def test_load_garbage_fails_clearly(tmp_path):
    p = tmp_path / "garbage.dtj"
    p.write_bytes(b"this is not a model at all" * 10)
    with pytest.raises(LoadError, match="not a dyntorch traced model"):
        jit.load(p)


def test_load_truncated_fails_clearly(tmp_path):
    data = _saved(tmp_path).read_bytes()
    p = tmp_path / "cut.dtj"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError, match="truncated|damaged|not a dyntorch"):
        jit.load(p)


def test_load_wrong_version_fails_clearly(tmp_path):
    src = _saved(tmp_path)
    with zipfile.ZipFile(src) as z:
        doc = json.loads(z.read("graph.json"))
        files = {n: z.read(n) for n in z.namelist()}
    doc["version"] = 99
    files["graph.json"] = json.dumps(doc).encode()
    p = tmp_path / "v99.dtj"
    with zipfile.ZipFile(p, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    with pytest.raises(LoadError, match="version 99"):
        jit.load(p)


def test_load_other_zip_and_unknown_op_fail_clearly(tmp_path):
    p = tmp_path / "other.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(LoadError, match="without graph.json"):
        jit.load(p)
    src = _saved(tmp_path)
    with zipfile.ZipFile(src) as z:
        doc = json.loads(z.read("graph.json"))
    doc["nodes"][0]["op"] = "no_such_op"
    q = tmp_path / "unknown.dtj"
    with zipfile.ZipFile(q, "w") as z:
        z.writestr("graph.json", json.dumps(doc))
    with pytest.raises(LoadError, match="no_such_op"):
        jit.load(q)


def test_load_missing_file():
    with pytest.raises(FileNotFoundError):
        jit.load("/nonexistent/model.dtj")


def test_index_from_inputs_baked_as_constant_warns():
    def f(a):
        return a[(a > 0).long()] * 2.0

    with pytest.warns(TracerWarning, match="index tensor computed from the inputs"):
        jit.trace(f, dyntorch.randn(5), check_trace=False)


def test_check_trace_catches_values_frozen_by_untraced_code():
    def f(a):
        return a * a.sum().item()  # a Python number taken from the data

    with pytest.warns(TracerWarning) as rec:
        jit.trace(f, dyntorch.ones(4))
    assert any("does not generalise" in str(w.message) for w in rec)


def test_check_trace_quiet_for_a_clean_trace():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jit.trace(lambda a: dyntorch.tanh(a * 2.0).sum(0), dyntorch.randn(3, 4))


def test_ops_with_array_arguments_save_and_load(tmp_path, rng):
    import dyntorch.nn.functional as F

    def f(a):  # pooling/upsampling pass constant matrices as op arguments
        return F.interpolate(F.adaptive_avg_pool2d(a, (2, 3)), scale_factor=2) + 1.0

    x = dyntorch.tensor(rng.standard_normal((2, 3, 7, 7)))
    jit.trace(f, x).save(tmp_path / "s.dtj")
    _close(jit.load(tmp_path / "s.dtj")(x), f(x))


def test_torch_compat_helpers():
    seen = []

    def f(a):
        seen.append(jit.is_tracing())
        return a + 1.0

    jit.trace(f, dyntorch.randn(2), check_trace=False)
    assert seen == [True] and not jit.is_tracing() and not jit.is_scripting()
    with pytest.raises(NotImplementedError, match="jit.trace"):
        jit.script(f)
    assert jit.ignore(f) is f and jit.annotate(int, 3) == 3


def test_replay_error_names_the_op_and_traced_shapes():
    c = dyntorch.randn(4)
    traced = jit.trace(lambda a: (a * 2.0) + c, dyntorch.randn(3, 4))
    with pytest.raises(RuntimeError, match=r"op #1 'add' failed.*Float\(3, 4\)"):
        traced(dyntorch.randn(3, 5))
