"""jit.load refuses a damaged traced graph at load, with LoadError naming the file: a missing
constant, an unknown op, an out-of-range or not-yet-computed reference, a fused-chain local
that is not an int in range, a lying constant header, a lying reshape target."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import dyntorch
from dyntorch import jit
from dyntorch.jit import LoadError

X = np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)


def _linear_file(tmp_path):
    nn = dyntorch.nn
    dyntorch.manual_seed(0)
    m = nn.Sequential(nn.Linear(6, 5), nn.ReLU()).eval()
    p = tmp_path / "m.dtj"
    jit.trace(m, dyntorch.tensor(X)).save(p)
    return p, m


def _fused_file(tmp_path):
    def f(a):
        return (a * 2.0 + 1.0).tanh().reshape(6, 4).sum(0)

    p = tmp_path / "f.dtj"
    jit.optimize_for_inference(jit.trace(f, dyntorch.tensor(X))).save(p)
    return p, f


def _rewrite(src, dst, edit_doc=None, drop=(), replace=None):
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    doc = json.loads(members["graph.json"])
    if edit_doc:
        edit_doc(doc)
    members["graph.json"] = json.dumps(doc).encode()
    for n in drop:
        del members[n]
    for n, b in (replace or {}).items():
        members[n] = b
    with zipfile.ZipFile(dst, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    return dst


def test_intact_files_load_and_match(tmp_path):
    p, m = _linear_file(tmp_path)
    np.testing.assert_allclose(jit.load(p)(X).numpy(), m(dyntorch.tensor(X)).detach().numpy(),
                               rtol=1e-6)
    q, f = _fused_file(tmp_path)
    np.testing.assert_allclose(jit.load(q)(X).numpy(), f(dyntorch.tensor(X)).numpy(), rtol=1e-6)


def test_missing_constant_is_refused(tmp_path):
    p, _ = _linear_file(tmp_path)

    def drop_const(doc):
        del doc["consts"]["1"]

    bad = _rewrite(p, tmp_path / "noconst.dtj", drop_const, drop=["consts/1.npy"])
    with pytest.raises(LoadError, match=r"noconst\.dtj.*constant '0\.weight'.*does not hold"):
        jit.load(bad)
    gone = _rewrite(p, tmp_path / "gone.dtj", drop=["consts/2.npy"])
    with pytest.raises(LoadError, match=r"gone\.dtj.*lacks the record 'consts/2\.npy'"):
        jit.load(gone)


def test_unknown_op_is_refused(tmp_path):
    p, _ = _linear_file(tmp_path)

    def rename(doc):
        doc["nodes"][1]["op"] = "relu_from_the_future"

    bad = _rewrite(p, tmp_path / "op.dtj", rename)
    with pytest.raises(LoadError, match=r"op\.dtj.*relu_from_the_future.*not registered"):
        jit.load(bad)


@pytest.mark.parametrize("ref", [99, -1, 4])
def test_out_of_range_or_undefined_reference_is_refused(tmp_path, ref):
    p, _ = _linear_file(tmp_path)

    def point(doc):  # node 0 (linear) reads value `ref`: 4 is node 1's output, not yet made
        doc["nodes"][0]["args"]["__tuple"][0] = {"__ref": ref}

    bad = _rewrite(p, tmp_path / "ref.dtj", point)
    with pytest.raises(LoadError, match=r"ref\.dtj.*(outside 0\.\.4|before any node)"):
        jit.load(bad)


def test_graph_input_index_out_of_range_is_refused(tmp_path):
    p, _ = _linear_file(tmp_path)

    def inputs(doc):
        doc["inputs"] = [7]

    with pytest.raises(LoadError, match=r"in\.dtj.*input index 7"):
        jit.load(_rewrite(p, tmp_path / "in.dtj", inputs))


@pytest.mark.parametrize("local", [{"__in": 3}, {"__step": 5}, {"__in": "0) or exit(1) or (0"}])
def test_fused_locals_must_be_ints_in_range(tmp_path, local):
    p, _ = _fused_file(tmp_path)

    def edit(doc):  # step 1 (add) reads `local` instead of step 0
        doc["nodes"][0]["steps"][1][1]["__tuple"][0] = local

    with pytest.raises(LoadError, match=r"loc\.dtj"):
        jit.load(_rewrite(p, tmp_path / "loc.dtj", edit))


def test_lying_constant_header_is_refused_before_allocating(tmp_path):
    p, _ = _linear_file(tmp_path)
    with zipfile.ZipFile(p) as z:
        raw = z.read("consts/1.npy")
    lie = raw.replace(b"(5, 6)", b"(9, 9)")  # more elements than the bytes that follow
    assert lie != raw
    bad = _rewrite(p, tmp_path / "npy.dtj", replace={"consts/1.npy": lie})
    with pytest.raises(LoadError, match=r"npy\.dtj.*consts/1\.npy.*float32\[9, 9\]"):
        jit.load(bad)


def test_lying_reshape_target_fails_at_load_not_at_call(tmp_path):
    p, _ = _fused_file(tmp_path)

    def edit(doc):
        doc["nodes"][1]["attrs"]["__dict"]["shape"] = {"__tuple": [3, 8]}

    with pytest.raises(LoadError, match=r"shape\.dtj.*output '2'.*float32\[8\].*float32\[4\]"):
        jit.load(_rewrite(p, tmp_path / "shape.dtj", edit))
