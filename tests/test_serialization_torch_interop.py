"""Files both ways: torch.load(weights_only=True) reads what dyntorch.save writes, and
dyntorch.load reads what torch.save writes: values, dtypes, shapes, strides, views that share
a storage, 0-d tensors, parameters, nested containers and numbers."""
from __future__ import annotations

import io
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import dyntorch

torch = pytest.importorskip("torch")

DTYPES = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64"]


def _dt(name):
    return getattr(dyntorch, name if name != "bool" else "bool"), getattr(torch, name)


def _values(name, shape):
    rng = np.random.default_rng(abs(hash((name, shape))) % 2**32)
    a = rng.standard_normal(shape) * 50
    return (a > 0) if name == "bool" else a.astype(name if name != "uint8" else np.int64).astype(
        np.dtype(name) if name != "bool" else bool)


def _to_torch_bytes(obj) -> torch.Tensor:
    buf = io.BytesIO()
    dyntorch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@pytest.mark.parametrize("name", DTYPES)
def test_every_dtype_and_rank_reaches_torch(name):
    d_dt, t_dt = _dt(name)
    obj = {f"r{len(s)}": dyntorch.tensor(_values(name, s), dtype=d_dt)
           for s in [(), (5,), (3, 4), (2, 3, 2), (0, 3)]}
    back = _to_torch_bytes(obj)
    for k, t in obj.items():
        got = back[k]
        assert got.dtype == t_dt and tuple(got.shape) == t.shape, k
        np.testing.assert_array_equal(got.numpy(), t.numpy())


def test_views_share_one_storage_in_torch_as_they_did_here():
    x = dyntorch.arange(24.0, dtype=dyntorch.float64).reshape(4, 6)
    obj = {"x": x, "t": x.t(), "row": x[2], "cols": x[:, 1::2], "scalar": x[1, 3]}
    back = _to_torch_bytes(obj)
    ref = torch.arange(24.0, dtype=torch.float64).reshape(4, 6)
    want = {"x": ref, "t": ref.t(), "row": ref[2], "cols": ref[:, 1::2], "scalar": ref[1, 3]}
    ptr = back["x"].untyped_storage().data_ptr()
    for k, w in want.items():
        got = back[k]
        assert got.stride() == w.stride() and got.storage_offset() == w.storage_offset(), k
        assert got.untyped_storage().data_ptr() == ptr, k  # one storage, as in torch
        torch.testing.assert_close(got, w, rtol=0, atol=0)
    back["x"][0, 0] = 100.0  # a write through one view shows in the others, as in torch
    assert back["t"][0, 0].item() == 100.0


def test_nested_containers_numbers_dtypes_devices_and_parameters_reach_torch():
    nn = dyntorch.nn
    lin = nn.Linear(3, 2)
    obj = {"sd": lin.state_dict(), "p": lin.weight, "step": 10, "lr": 1e-3, "name": "run",
           "none": None, "flag": True, "betas": (0.9, 0.999), "ids": [1, [2, (3, 4.5)]],
           "dt": dyntorch.float16, "dev": dyntorch.device("cpu"), "set": {1, 2}, "b": b"\x00\xff",
           "od": OrderedDict(a=dyntorch.ones(2, requires_grad=True)), "nan": float("nan")}
    back = _to_torch_bytes(obj)
    assert isinstance(back["sd"], OrderedDict) and list(back["sd"]) == ["weight", "bias"]
    assert isinstance(back["p"], torch.nn.Parameter) and back["p"].requires_grad
    np.testing.assert_array_equal(back["p"].detach().numpy(), lin.weight.detach().numpy())
    assert (back["step"], back["lr"], back["name"], back["none"], back["flag"]) == \
        (10, 1e-3, "run", None, True)
    assert back["betas"] == (0.9, 0.999) and back["ids"] == [1, [2, (3, 4.5)]]
    assert back["dt"] is torch.float16 and back["dev"] == torch.device("cpu")
    assert back["set"] == {1, 2} and back["b"] == b"\x00\xff" and back["nan"] != back["nan"]
    assert back["od"]["a"].requires_grad and not back["sd"]["weight"].requires_grad


def test_a_dyntorch_model_runs_in_torch_with_the_same_outputs(tmp_path):
    nn = dyntorch.nn
    dyntorch.manual_seed(3)
    dm = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    p = tmp_path / "m.pt"
    dyntorch.save(dm.state_dict(), p)
    tm = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    tm.load_state_dict(torch.load(p, weights_only=True))
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_allclose(tm(torch.tensor(x)).detach().numpy(),
                               dm(dyntorch.tensor(x)).detach().numpy(), rtol=1e-6, atol=1e-6)


def test_the_archive_has_torchs_records():
    buf = io.BytesIO()
    dyntorch.save({"w": dyntorch.ones(3)}, buf)
    with zipfile.ZipFile(buf) as z:
        names = z.namelist()
        assert z.read("archive/version") == b"3\n" and z.read("archive/byteorder") == b"little"
        info = z.getinfo("archive/data/0")
    assert "archive/data.pkl" in names
    # storages start on 64-byte boundaries, as torch aligns them (for mmap)
    assert (info.header_offset + 30 + len(info.filename) + len(info.extra)) % 64 == 0


def test_objects_torch_does_not_allow_are_refused_by_torch_but_read_here():
    buf = io.BytesIO()
    arr = np.arange(3)
    dyntorch.save({"arr": arr, "sl": slice(1, 2)}, buf)
    buf.seek(0)
    with pytest.raises(Exception, match="weights_only|Unsupported global"):
        torch.load(buf, weights_only=True)
    buf.seek(0)
    out = dyntorch.load(buf)
    np.testing.assert_array_equal(out["arr"], arr)
    assert out["sl"] == slice(1, 2)


# ----------------------------------------------------------------------------- torch -> here
@pytest.mark.parametrize("name", DTYPES)
def test_every_torch_dtype_loads_here(name, tmp_path):
    d_dt, t_dt = _dt(name)
    obj = {f"r{len(s)}": torch.tensor(_values(name, s), dtype=t_dt)
           for s in [(), (5,), (3, 4), (0, 2)]}
    p = tmp_path / "t.pt"
    torch.save(obj, p)
    out = dyntorch.load(p)
    for k, t in obj.items():
        assert out[k].dtype == d_dt and out[k].shape == tuple(t.shape), k
        np.testing.assert_array_equal(out[k].numpy(), t.numpy())


def test_torch_views_stay_views_of_one_array_here(tmp_path):
    x = torch.arange(12, dtype=torch.int32).reshape(3, 4)
    obj = {"x": x, "t": x.t(), "row": x[1], "ex": x[0].expand(5, 4), "s": x[2, 3]}
    p = tmp_path / "v.pt"
    torch.save(obj, p)
    out = dyntorch.load(p)
    for k, v in obj.items():
        np.testing.assert_array_equal(out[k].numpy(), v.numpy())
        assert out[k].shape == tuple(v.shape) and out[k].dtype == dyntorch.int32
    assert np.shares_memory(out["x"].numpy(), out["t"].numpy())
    assert np.shares_memory(out["x"].numpy(), out["row"].numpy())


def test_round_trip_torch_to_dyntorch_to_torch(tmp_path):
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3))
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.randn(2, 2, 5, 5)).sum().backward()
    opt.step()
    ck = {"model": m.state_dict(), "opt": opt.state_dict(), "epoch": 2}
    p1, p2 = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save(ck, p1)
    dyntorch.save(dyntorch.load(p1), p2)
    back = torch.load(p2, weights_only=True)
    assert back["epoch"] == 2 and back["opt"]["param_groups"] == ck["opt"]["param_groups"]
    for k, v in ck["model"].items():
        assert back["model"][k].dtype == v.dtype, k
        torch.testing.assert_close(back["model"][k], v, rtol=0, atol=0)
    for i, st in ck["opt"]["state"].items():
        torch.testing.assert_close(back["opt"]["state"][i]["momentum_buffer"],
                                   st["momentum_buffer"], rtol=0, atol=0)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_other_pickle_protocols_and_torch_mmap(tmp_path, protocol):
    x = dyntorch.arange(12.0).reshape(3, 4)
    p = tmp_path / "ours.pt"
    dyntorch.save({"x": x, "t": x.t(), "n": [1, "a"]}, p, pickle_protocol=protocol)
    # torch's weights-only unpickler reads protocol 2 only (not the FRAME opcode of 4 and 5,
    # in its own files either): above 2, torch needs weights_only=False for ours and its own
    wo = protocol == 2
    back = torch.load(p, mmap=True, weights_only=wo)  # storages are aligned for mmap
    torch.testing.assert_close(back["t"], torch.arange(12.0).reshape(3, 4).t())
    assert back["n"] == [1, "a"]
    q = tmp_path / "theirs.pt"
    torch.save({"x": torch.arange(6).reshape(2, 3), "n": (1.5, None)}, q,
               pickle_protocol=protocol)
    if not wo:
        with pytest.raises(Exception, match="Unsupported operand"):
            torch.load(q, weights_only=True)
    out = dyntorch.load(q)  # dyntorch's data-only unpickler reads every protocol
    assert out["x"].tolist() == [[0, 1, 2], [3, 4, 5]] and out["n"] == (1.5, None)
    assert dyntorch.load(p)["t"].tolist() == x.t().tolist()
