"""nn.init, nn.utils (clipping, vector conversion) and a small MLP that learns."""
from __future__ import annotations

import math

import numpy as np
import pytest

import dyntorch as dt
import dyntorch.nn as nn

torch = pytest.importorskip("torch")


def test_mlp_learns_synthetic_classification():
    dt.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 2))
    y = ((x[:, 0] * x[:, 1]) > 0).astype(np.int64)  # XOR-like quadrants: needs a hidden layer
    X, Y = dt.tensor(x, dtype=dt.float32), dt.tensor(y)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.GELU(),
                          nn.Linear(32, 2))
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(150):
        loss = loss_fn(model(X), Y)
        model.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        with dt.no_grad():
            for p in model.parameters():
                p.sub_(p.grad * 0.5)
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
    acc = (model(X).detach().numpy().argmax(1) == y).mean()
    assert acc > 0.9


def test_default_linear_init_bounds():
    dt.manual_seed(3)
    lin = nn.Linear(50, 40)
    w = lin.weight.detach().numpy()
    bound = 1 / math.sqrt(50)  # kaiming_uniform(a=sqrt(5)) gives 1/sqrt(fan_in) too
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound
    b = lin.bias.detach().numpy()
    assert np.abs(b).max() <= bound
    assert lin.weight.requires_grad and lin.weight.grad is None


def test_init_functions_statistics():
    dt.manual_seed(1)
    t = dt.empty(400, 300)
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(t)
    assert (fan_in, fan_out) == torch.nn.init._calculate_fan_in_and_fan_out(
        torch.empty(400, 300))
    conv = dt.empty(8, 4, 3, 3)
    assert nn.init._calculate_fan_in_and_fan_out(conv) == (36, 72)
    nn.init.xavier_uniform_(t, gain=2.0)
    a = 2.0 * math.sqrt(6 / 700)
    assert abs(t.numpy().max() - a) < 0.01 * a and t.numpy().min() >= -a
    nn.init.xavier_normal_(t)
    assert abs(t.numpy().std() - math.sqrt(2 / 700)) < 0.02 * math.sqrt(2 / 700)
    nn.init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert abs(t.numpy().std() - math.sqrt(2 / 400)) < 0.02 * math.sqrt(2 / 400)
    nn.init.kaiming_uniform_(t, nonlinearity="relu")
    b = math.sqrt(6 / 300)
    assert t.numpy().max() <= b and t.numpy().max() > 0.99 * b
    nn.init.trunc_normal_(t, std=0.5, a=-0.4, b=0.6)
    assert t.numpy().min() >= -0.4 and t.numpy().max() <= 0.6
    nn.init.normal_(t, 3.0, 0.1)
    assert abs(t.numpy().mean() - 3.0) < 0.01
    nn.init.constant_(t, 0.25)
    assert np.all(t.numpy() == 0.25)
    nn.init.zeros_(t)
    nn.init.ones_(t)
    assert np.all(t.numpy() == 1)
    e = dt.empty(3, 5)
    nn.init.eye_(e)
    np.testing.assert_array_equal(e.numpy(), np.eye(3, 5))
    q = dt.empty(6, 4)
    nn.init.orthogonal_(q)
    np.testing.assert_allclose(q.numpy().T @ q.numpy(), np.eye(4), atol=1e-5)
    d = dt.empty(4, 4, 3)
    nn.init.dirac_(d)
    td = torch.empty(4, 4, 3)
    torch.nn.init.dirac_(td)
    np.testing.assert_array_equal(d.numpy(), td.numpy())
    for nl, p in (("relu", None), ("tanh", None), ("leaky_relu", 0.2), ("selu", None),
                  ("sigmoid", None), ("conv2d", None)):
        assert nn.init.calculate_gain(nl, p) == pytest.approx(torch.nn.init.calculate_gain(nl, p))
    # initialising a parameter does not record graph
    lin = nn.Linear(3, 3)
    nn.init.uniform_(lin.weight, -1, 1)
    assert lin.weight.is_leaf and lin.weight.grad_fn is None


@pytest.mark.parametrize("norm_type", [2.0, 1.0, math.inf, 3.0])
def test_clip_grad_norm_matches_torch(norm_type):
    rng = np.random.default_rng(2)
    arrs = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    tp = [torch.tensor(a, requires_grad=True) for a in arrs]
    dp = [dt.tensor(a, requires_grad=True) for a in arrs]
    for p, a in zip(tp, arrs):
        p.grad = torch.tensor(a * 3)
    for p, a in zip(dp, arrs):
        p.grad = dt.tensor(a * 3)
    tn = torch.nn.utils.clip_grad_norm_(tp, 1.5, norm_type=norm_type)
    dn = nn.utils.clip_grad_norm_(dp, 1.5, norm_type=norm_type)
    assert dn.item() == pytest.approx(tn.item(), rel=1e-10)
    for a, b in zip(tp, dp):
        np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), rtol=1e-10)


def test_clip_grad_errors_and_value():
    p = dt.tensor([1.0, 2.0], requires_grad=True)
    p.grad = dt.tensor([float("inf"), 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    p.grad = dt.tensor([-3.0, 0.5])
    nn.utils.clip_grad_value_([p], 1.0)
    assert p.grad.tolist() == [-1.0, 0.5]
    q = dt.tensor([1.0], requires_grad=True)
    assert nn.utils.clip_grad_norm_([q], 1.0).item() == 0.0  # no grads: norm 0


def test_parameters_vector_roundtrip():
    m = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    v = nn.utils.parameters_to_vector(m.parameters())
    assert v.shape == (3 * 2 + 2 + 2 + 1,)
    np.testing.assert_array_equal(v.detach().numpy()[:6],
                                  m[0].weight.detach().numpy().reshape(-1))
    new = dt.arange(11, dtype=dt.float32)
    nn.utils.vector_to_parameters(new, m.parameters())
    np.testing.assert_array_equal(m[1].bias.detach().numpy(), [10.0])
    np.testing.assert_array_equal(m[0].weight.detach().numpy(), np.arange(6.0).reshape(2, 3))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_weight_norm_matches_torch():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3))
    tl, dl = torch.nn.Linear(3, 5).double(), nn.Linear(3, 5).double()
    dl.load_state_dict({k: v.numpy() for k, v in tl.state_dict().items()})
    tl = torch.nn.utils.weight_norm(tl)
    dl = nn.utils.weight_norm(dl)
    assert sorted(n for n, _ in dl.named_parameters()) == sorted(
        n for n, _ in tl.named_parameters())
    tx, dx = torch.tensor(x, requires_grad=True), dt.tensor(x, requires_grad=True)
    ty, dy = tl(tx), dl(dx)
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), atol=1e-12)
    (ty ** 2).sum().backward()
    (dy ** 2).sum().backward()
    for n in ("weight_g", "weight_v", "bias"):
        np.testing.assert_allclose(getattr(dl, n).grad.numpy(), getattr(tl, n).grad.numpy(),
                                   atol=1e-10, err_msg=n)
    nn.utils.remove_weight_norm(dl)
    assert isinstance(dl.weight, nn.Parameter)
    np.testing.assert_allclose(dl(dx).detach().numpy(), ty.detach().numpy(), atol=1e-12)


def test_spectral_norm_matches_torch():
    torch.manual_seed(6)  # the init comes from torch's global RNG: make it independent of order
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 3))
    tl, dl = torch.nn.Linear(3, 5).double(), nn.Linear(3, 5).double()
    dl.load_state_dict({k: v.numpy() for k, v in tl.state_dict().items()})
    tl = torch.nn.utils.spectral_norm(tl, n_power_iterations=3)
    dl = nn.utils.spectral_norm(dl, n_power_iterations=3)
    dl.weight_u._data[...] = tl.weight_u.numpy()
    dl.weight_v._data[...] = tl.weight_v.numpy()
    for _ in range(2):
        ty, dy = tl(torch.tensor(x)), dl(dt.tensor(x))
        np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), atol=1e-10)
    ty.sum().backward()
    dy.sum().backward()
    np.testing.assert_allclose(dl.weight_orig.grad.numpy(), tl.weight_orig.grad.numpy(),
                               atol=1e-10)
    s = np.linalg.svd(dl.weight.detach().numpy(), compute_uv=False)[0]
    s_ref = np.linalg.svd(tl.weight.detach().numpy(), compute_uv=False)[0]
    np.testing.assert_allclose(s, s_ref, rtol=1e-9)  # same power-iteration estimate as torch
    assert abs(s - 1.0) < 0.2  # and it does normalise (3 iterations: roughly)


def test_functional_call():
    m = nn.Linear(2, 1)
    x = dt.ones(1, 2)
    w = dt.tensor([[2.0, 3.0]], requires_grad=True)
    y = nn.utils.stateless.functional_call(m, {"weight": w, "bias": dt.zeros(1)}, (x,))
    assert y.item() == 5.0
    y.backward()
    assert w.grad.tolist() == [[1.0, 1.0]]
    assert m.weight is not w and isinstance(m.weight, nn.Parameter)


def test_parametrized_weight_norm_matches_torch():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 3))
    tl, dl = torch.nn.Linear(3, 5).double(), nn.Linear(3, 5).double()
    dl.load_state_dict({k: v.numpy() for k, v in tl.state_dict().items()})
    tl = torch.nn.utils.parametrizations.weight_norm(tl)
    dl = nn.utils.parametrizations.weight_norm(dl)
    assert list(dl.state_dict()) == list(tl.state_dict())
    assert [n for n, _ in dl.named_parameters()] == [n for n, _ in tl.named_parameters()]
    tx, dx = torch.tensor(x, requires_grad=True), dt.tensor(x, requires_grad=True)
    ty, dy = tl(tx), dl(dx)
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), atol=1e-12)
    (ty ** 2).sum().backward()
    (dy ** 2).sum().backward()
    for (n, tp), (_, dp) in zip(tl.named_parameters(), dl.named_parameters()):
        np.testing.assert_allclose(dp.grad.numpy(), tp.grad.numpy(), atol=1e-10, err_msg=n)
    np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), atol=1e-10)
    assert nn.utils.parametrize.is_parametrized(dl, "weight")
    nn.utils.parametrize.remove_parametrizations(dl, "weight")
    assert type(dl) is nn.Linear and isinstance(dl.weight, nn.Parameter)
    np.testing.assert_allclose(dl(dx).detach().numpy(), ty.detach().numpy(), atol=1e-12)


def test_register_parametrization_custom():
    class Symmetric(nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).transpose(0, 1)

    m = nn.Linear(3, 3)
    nn.utils.parametrize.register_parametrization(m, "weight", Symmetric())
    w = m.weight.detach().numpy()
    np.testing.assert_allclose(w, w.T)
    assert type(m).__name__ == "ParametrizedLinear" and isinstance(m, nn.Linear)
    m(dt.randn(2, 3)).sum().backward()
    assert m.parametrizations.weight.original.grad is not None
