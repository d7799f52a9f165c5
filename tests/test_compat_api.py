"""Public API surface: torch's keyword forms run and give torch's values; missing modules
and names (accelerator, backends.cudnn, nn.modules paths, pixel shuffle, hooks) exist."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import dyntorch as dt  # noqa: E402


def _same(a, b):
    np.testing.assert_allclose(np.asarray(a.detach().tolist(), dtype=float),
                               np.asarray(b.detach().tolist(), dtype=float), rtol=1e-12)


# ----------------------------------------------------------------------------- keyword forms
X = np.arange(24.0).reshape(2, 3, 4)
CALLS = [
    ("flip dims=", lambda m, x: m.flip(x, dims=[0, 2])),
    ("reshape shape=", lambda m, x: x.reshape(shape=(4, 6))),
    ("torch.reshape input=", lambda m, x: m.reshape(input=x, shape=(6, 4))),
    ("view size=", lambda m, x: x.view(size=(6, 4))),
    ("permute dims=", lambda m, x: x.permute(dims=(2, 0, 1))),
    ("torch.permute", lambda m, x: m.permute(x, (2, 0, 1))),
    ("pow exponent=", lambda m, x: x.pow(exponent=2)),
    ("split split_size=", lambda m, x: x.split(split_size=1, dim=2)[3]),
    ("add input= other= alpha=", lambda m, x: m.add(input=x, other=x, alpha=3)),
    ("mul input= other=", lambda m, x: m.mul(input=x, other=x)),
    ("swapaxes axis0=", lambda m, x: m.swapaxes(x, axis0=0, axis1=2)),
    ("x.swapaxes axis0=", lambda m, x: x.swapaxes(axis0=1, axis1=2)),
    ("repeat repeats=", lambda m, x: x.repeat(repeats=(1, 2, 1))),
    ("tile dims=", lambda m, x: x.tile(dims=(2,))),
    ("expand size=", lambda m, x: x[:1].expand(size=(3, 3, 4))),
    ("broadcast_to size=", lambda m, x: x.broadcast_to(size=(2, 2, 3, 4))),
    ("squeeze two dims", lambda m, x: x[:1, :, :1].squeeze(0, 2)),
    ("count_nonzero dims", lambda m, x: x.count_nonzero(0, 2)),
    ("tensor_split sections=", lambda m, x: x.tensor_split(sections=3, dim=2)[1]),
    ("tensor_split indices=", lambda m, x: x.tensor_split(indices=[1, 3], dim=2)[1]),
    ("roll no dims", lambda m, x: m.roll(x, 5)),
    ("nan_to_num nan=None", lambda m, x: m.nan_to_num(x * float("nan"), nan=None)),
    ("addcmul tensor1=", lambda m, x: m.addcmul(x, tensor1=x, tensor2=x, value=2)),
    ("dot tensor=", lambda m, x: m.dot(x.flatten(), tensor=x.flatten())),
    ("linalg.det A=", lambda m, x: m.linalg.det(A=x[:, :3, :3] + m.eye(3, dtype=x.dtype))),
    ("linalg.vector_norm x=", lambda m, x: m.linalg.vector_norm(x=x, ord=3, dim=1)),
    ("searchsorted input=", lambda m, x: m.searchsorted(x.flatten(), input=x[0, 0] + 0.5)),
    ("searchsorted sorter=", lambda m, x: m.searchsorted(
        x.flatten().flip(0), x[0, 0], sorter=m.arange(23, -1, -1))),
]


@pytest.mark.parametrize("name,call", CALLS, ids=[c[0] for c in CALLS])
def test_keyword_form_matches_torch(name, call):
    _same(call(dt, dt.tensor(X)), call(torch, torch.tensor(X)))


@pytest.mark.parametrize("fn", ["zeros", "ones", "empty", "rand", "randn"])
def test_creation_size_keyword(fn):
    a = getattr(dt, fn)(size=(2, 3))
    assert a.shape == getattr(torch, fn)(size=(2, 3)).shape == (2, 3)
    assert getattr(dt, fn)(2, 3).shape == getattr(dt, fn)((2, 3)).shape == (2, 3)
    with pytest.raises(TypeError, match="multiple values"):
        getattr(dt, fn)(2, size=(2, 3))


def test_new_factories_take_size_keyword():
    x = dt.ones(2, dtype=dt.float64)
    assert x.new_zeros(size=(3,)).dtype is dt.float64
    assert x.new_ones(size=(2, 2)).sum().item() == 4
    assert x.new_empty(size=(1, 2)).shape == (1, 2)


def test_creation_out_is_honoured_not_dropped():
    out = dt.empty(2, 2)
    r = dt.ones(2, 2, out=out)
    assert r is out and out.sum().item() == 4
    with pytest.raises(RuntimeError, match="out= has shape"):
        dt.zeros(3, out=dt.empty(2))
    with pytest.raises(NotImplementedError, match="layout"):
        dt.zeros(2, layout="sparse_coo")


def test_gradients_flow_through_keyword_wrappers():
    a = dt.tensor([1.0, 2.0], requires_grad=True)
    dt.mul(input=a, other=a).sum().backward()
    assert a.grad.tolist() == [2.0, 4.0]


def test_uniform_from_to():
    r = dt.zeros(1000).uniform_(**{"from": -2.0, "to": -1.0})
    assert -2.0 <= r.min().item() and r.max().item() < -1.0
    with pytest.raises(TypeError, match="unexpected keyword argument 'lo'"):
        dt.zeros(2).uniform_(lo=1)


def test_refused_arguments_say_so():
    with pytest.raises(RuntimeError, match="driver"):
        dt.linalg.svd(dt.eye(2), driver="gesvd")
    with pytest.raises(RuntimeError, match="requires_grad"):
        dt.tril_indices(3, 3, requires_grad=True)
    with pytest.raises(TypeError, match="exactly one"):
        dt.ones(4).tensor_split(2, sections=2)
