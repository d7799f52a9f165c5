"""dyntorch.save/load: safe round trips, torch.save files without torch, clear errors."""
from __future__ import annotations

import io
import math
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import dyntorch
from dyntorch.serialization import LoadError

torch = pytest.importorskip("torch")


def _eq(a, b):
    assert type(a) is type(b), (type(a), type(b))
    if isinstance(a, dyntorch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.requires_grad == b.requires_grad
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _eq(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _eq(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def test_round_trip_nested(tmp_path):
    w = dyntorch.randn(3, 4, dtype=dyntorch.float64)
    obj = {
        "model": OrderedDict(weight=w, bias=dyntorch.zeros(4), steps=dyntorch.tensor(7)),
        "opt": {"state": {0: {"step": dyntorch.tensor(3.0), "exp_avg": dyntorch.ones(2, 2)}},
                "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1],
                                  "nesterov": False, "foreach": None}]},
        "epoch": 3, "name": "run-1", "nums": [1.5, float("inf"), float("nan"), -0.0],
        "arr": np.arange(6, dtype=np.int16).reshape(2, 3), "np_scalar": np.float32(2.5),
        (1, "a"): {1, 2}, "dtype": dyntorch.float16, "bytes": b"\x00\xff",
        "bools": dyntorch.tensor([True, False]), "u8": dyntorch.tensor([1, 255]).to(
            dyntorch.uint8), "empty": dyntorch.zeros(0, 3),
        "rg": dyntorch.ones(2, requires_grad=True),
    }
    obj["model"]._metadata = {"": {"version": 1}}
    path = tmp_path / "ckpt.pt"
    dyntorch.save(obj, path)
    back = dyntorch.load(path)
    _eq(obj, back)
    assert back["model"]._metadata == {"": {"version": 1}}
    # torch's layout, and the pickle names only globals that build data
    import pickletools
    with zipfile.ZipFile(path) as z:
        assert {"archive/data.pkl", "archive/version", "archive/byteorder"} <= set(z.namelist())
        ops = list(pickletools.genops(z.read("archive/data.pkl")))
    names = {a.replace(" ", ".") for op, a, _ in ops if op.name == "GLOBAL"}
    assert names <= {"torch._utils._rebuild_tensor_v2", "collections.OrderedDict",
                     "torch.DoubleStorage", "torch.FloatStorage", "torch.LongStorage",
                     "torch.BoolStorage", "torch.ByteStorage", "torch.float16",
                     "builtins.set", "builtins.slice", "_codecs.encode",
                     "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
                     "numpy.ndarray", "numpy.dtype", "numpy.core.multiarray.scalar",
                     "numpy._core.multiarray.scalar"}, names


def test_round_trip_file_object_and_shared_tensor():
    t = dyntorch.arange(5)
    buf = io.BytesIO()
    dyntorch.save({"a": t, "b": t}, buf)
    buf.seek(0)
    out = dyntorch.load(buf, map_location="cpu")
    assert out["a"] is out["b"]


def test_arbitrary_objects_need_weights_only_false(tmp_path):
    class Thing:
        pass

    global _Thing
    _Thing = Thing
    Thing.__qualname__ = "_Thing"
    obj = {"t": dyntorch.ones(2), "thing": Thing()}
    p = tmp_path / "obj.pt"
    dyntorch.save(obj, p)
    with pytest.raises(LoadError, match="weights_only=False"):
        dyntorch.load(p)
    out = dyntorch.load(p, weights_only=False)
    assert isinstance(out["thing"], Thing) and out["t"].tolist() == [1.0, 1.0]


def test_torch_state_dict_file_loads_without_torch_into_arrays(tmp_path):
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    sd = m.state_dict()
    extra = {
        "i16_view": torch.arange(12, dtype=torch.int16).reshape(3, 4)[:, 1:3],
        "t_view": torch.arange(6.0, dtype=torch.float64).reshape(2, 3).t(),
        "half": torch.tensor([1.5, -2.0], dtype=torch.float16),
        "bf16": torch.tensor([1.5, -2.25, 3e10], dtype=torch.bfloat16),
        "long": torch.tensor([2**40, -1]), "int": torch.tensor([1, 2], dtype=torch.int32),
        "i8": torch.tensor([-3], dtype=torch.int8), "u8": torch.tensor([200], dtype=torch.uint8),
        "bool": torch.tensor([True, False]), "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 2),
    }
    path = tmp_path / "torch_sd.pt"
    torch.save({"model": sd, "extra": extra, "epoch": 4, "lrs": [0.1, 0.01]}, path)
    out = dyntorch.load(path)
    assert out["epoch"] == 4 and out["lrs"] == [0.1, 0.01]
    assert isinstance(out["model"], OrderedDict) and list(out["model"]) == list(sd)
    for k, v in list(sd.items()) + list(extra.items()):
        got = out["model"].get(k) if k in sd else out["extra"][k]
        ref = v.float() if v.dtype == torch.bfloat16 else v
        assert got.shape == tuple(ref.shape), k
        assert str(got.dtype).split(".")[1] == str(ref.dtype).split(".")[1], k
        np.testing.assert_array_equal(got.numpy(), ref.numpy())


def test_torch_model_file_gives_same_outputs_in_dyntorch(tmp_path):
    nn = pytest.importorskip("dyntorch.nn")
    if not hasattr(nn, "Linear"):
        pytest.skip("dyntorch.nn.Linear not available yet")
    torch.manual_seed(1)
    tm = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    path = tmp_path / "m.pt"
    torch.save(tm.state_dict(), path)
    dm = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    dm.load_state_dict(dyntorch.load(path))
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_allclose(dm(dyntorch.tensor(x)).detach().numpy(),
                               tm(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_torch_file_with_numpy_values_and_torch_types(tmp_path):
    path = tmp_path / "np.pt"
    torch.save({"a": np.float64(1.5), "arr": np.arange(3), "dt": torch.float16,
                "size": torch.Size([2, 3]), "i": np.int32(7)}, path)
    out = dyntorch.load(path)
    assert out["a"] == 1.5 and out["arr"].tolist() == [0, 1, 2] and out["i"] == 7
    assert out["dt"] is dyntorch.float16 and out["size"] == (2, 3)


def test_whole_module_round_trip_needs_weights_only_false(tmp_path):
    nn = pytest.importorskip("dyntorch.nn")
    m = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    p = tmp_path / "m.pt"
    dyntorch.save(m, p)
    with pytest.raises(LoadError, match="weights_only=False"):
        dyntorch.load(p)
    m2 = dyntorch.load(p, weights_only=False)
    np.testing.assert_array_equal(m2[0].weight.detach().numpy(), m[0].weight.detach().numpy())
    assert type(m2[0].weight).__name__ == "Parameter" and m2[0].weight.requires_grad


def test_torch_parameter_and_optimizer_state(tmp_path):
    p = torch.nn.Parameter(torch.randn(3))
    opt = torch.optim.Adam([p], lr=0.01)
    p.grad = torch.ones(3)
    opt.step()
    path = tmp_path / "x.pt"
    torch.save({"p": p, "opt": opt.state_dict()}, path)
    out = dyntorch.load(path)
    assert out["p"].requires_grad
    np.testing.assert_array_equal(out["p"].detach().numpy(), p.detach().numpy())
    st = out["opt"]["state"][0]
    assert st["step"].item() == 1.0
    np.testing.assert_array_equal(st["exp_avg"].numpy(), opt.state[p]["exp_avg"].numpy())
    assert out["opt"]["param_groups"][0]["betas"] == (0.9, 0.999)
    q = dyntorch.tensor(p.detach().numpy(), requires_grad=True)
    mine = dyntorch.optim.Adam([q], lr=0.5)
    mine.load_state_dict(out["opt"])
    assert mine.param_groups[0]["lr"] == 0.01


def test_torch_file_with_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"f": os.getcwd, "t": torch.ones(1)}, path)
    with pytest.raises(LoadError, match="posix.getcwd|os.getcwd|not plain data"):
        dyntorch.load(path)


def test_legacy_torch_format_is_explained(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"a": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(LoadError, match="legacy.*Re-save"):
        dyntorch.load(path)


def test_garbage_truncated_and_empty_files(tmp_path):
    g = tmp_path / "garbage.pt"
    g.write_bytes(os.urandom(100))
    with pytest.raises(LoadError, match="garbage.pt.*not a dyntorch or PyTorch checkpoint"):
        dyntorch.load(g)
    e = tmp_path / "empty.pt"
    e.write_bytes(b"")
    with pytest.raises(LoadError, match="empty.pt.*empty"):
        dyntorch.load(e)
    good = tmp_path / "good.pt"
    dyntorch.save({"w": dyntorch.randn(50, 50)}, good)
    data = good.read_bytes()
    t = tmp_path / "trunc.pt"
    t.write_bytes(data[: len(data) // 2])
    with pytest.raises(LoadError, match="trunc.pt.*(truncated|corrupt)"):
        dyntorch.load(t)
    tt = tmp_path / "torch_trunc.pt"
    torch.save({"w": torch.randn(50, 50)}, tt)
    raw = tt.read_bytes()
    tt.write_bytes(raw[:-300])
    with pytest.raises(LoadError, match="torch_trunc.pt"):
        dyntorch.load(tt)
    # a valid zip whose member data is damaged (the zip's CRC catches it)
    bad = bytearray(data)
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("archive/data/0")
    i = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
    bad[i] ^= 0xFF
    c = tmp_path / "corrupt.pt"
    c.write_bytes(bytes(bad))
    with pytest.raises(LoadError, match="corrupt.pt.*archive/data/0"):
        dyntorch.load(c)
    z = tmp_path / "other.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(LoadError, match="not a checkpoint"):
        dyntorch.load(z)


def test_map_location_cuda_without_cuda(tmp_path):
    if dyntorch.cuda.is_available():
        pytest.skip("CUDA present")
    p = tmp_path / "x.pt"
    dyntorch.save({"t": dyntorch.ones(2)}, p)
    with pytest.raises(RuntimeError, match="CUDA"):
        dyntorch.load(p, map_location="cuda")
    assert dyntorch.load(p, map_location={"cpu": "cpu"})["t"].tolist() == [1.0, 1.0]
    seen = []
    out = dyntorch.load(p, map_location=lambda t, loc: seen.append(loc) or t)
    assert seen == ["cpu"] and out["t"].tolist() == [1.0, 1.0]


@pytest.mark.cuda
def test_map_location_cuda(tmp_path):
    p = tmp_path / "x.pt"
    dyntorch.save({"t": dyntorch.ones(2)}, p)
    assert dyntorch.load(p, map_location="cuda")["t"].is_cuda


def test_pickle_of_module_level_objects_still_refused_by_default(tmp_path):
    p = tmp_path / "x.pt"
    dyntorch.save({"f": pickle.dumps}, p)
    with pytest.raises(LoadError):
        dyntorch.load(p)


def _legacy_file(path, tree, arrays):
    """A file in dyntorch's first format (JSON tree + .npy arrays), as earlier versions wrote."""
    import json
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("dyntorch/format", "dyntorch-checkpoint 1")
        z.writestr("dyntorch/data.json", json.dumps(tree))
        for i, a in enumerate(arrays):
            buf = io.BytesIO()
            np.save(buf, a, allow_pickle=False)
            z.writestr(f"dyntorch/data/{i}.npy", buf.getvalue())


def test_files_of_the_first_dyntorch_format_still_load(tmp_path):
    p = tmp_path / "old.pt"
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    _legacy_file(p, {"__odict__": [["w", {"__tensor__": 0, "device": "cpu",
                                          "requires_grad": True, "parameter": True}],
                                   ["n", {"__tuple__": [1, 2.5]}]]}, [w])
    out = dyntorch.load(p)
    assert isinstance(out, OrderedDict) and out["n"] == (1, 2.5)
    assert type(out["w"]).__name__ == "Parameter" and out["w"].requires_grad
    np.testing.assert_array_equal(out["w"].detach().numpy(), w)
    # a lying .npy header is refused before anything is allocated
    raw = io.BytesIO()
    np.save(raw, w)
    lie = raw.getvalue().replace(b"(2, 3)", b"(2000000000, 3000000)")
    q = tmp_path / "lie.pt"
    with zipfile.ZipFile(q, "w") as z:
        z.writestr("dyntorch/format", "dyntorch-checkpoint 1")
        z.writestr("dyntorch/data.json", '{"__tensor__": 0}')
        z.writestr("dyntorch/data/0.npy", lie)
    with pytest.raises(LoadError, match="lie.pt.*data/0.npy.*says it holds"):
        dyntorch.load(q)


def test_save_refuses_what_it_does_not_implement(tmp_path):
    with pytest.raises(ValueError, match="legacy"):
        dyntorch.save({}, tmp_path / "x.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(TypeError, match="pickle_module"):
        dyntorch.save({}, tmp_path / "x.pt", pickle_module=json_module())
    dyntorch.save({"a": 1}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="mmap"):
        dyntorch.load(tmp_path / "x.pt", mmap=True)
    with pytest.raises(TypeError, match="unexpected keyword"):
        dyntorch.load(tmp_path / "x.pt", errors="strict")


def json_module():
    import json
    return json
