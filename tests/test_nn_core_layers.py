"""nn layers vs torch 2.13 (float64): forward values, input gradients, parameter gradients."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch as dt
import dyntorch.nn as dnn

torch = pytest.importorskip("torch")
tnn = torch.nn


def _copy_weights(tm, dm):
    tm.double()
    dm.double()
    sd = {k: v.detach().numpy().copy() for k, v in tm.state_dict().items()}
    dm.load_state_dict(sd)


def check_module(tm, dm, arrays, rng, atol=1e-9, grad_inputs=True, train=True):
    """Run both modules on the same inputs; compare outputs and every gradient."""
    _copy_weights(tm, dm)
    tm.train(train)
    dm.train(train)
    tx = [torch.tensor(a, requires_grad=grad_inputs and a.dtype.kind == "f") for a in arrays]
    dx = [dt.tensor(a, requires_grad=grad_inputs and a.dtype.kind == "f") for a in arrays]
    ty = tm(*tx)
    dy = dm(*dx)
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), atol=atol, rtol=1e-7)
    gy = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(gy))
    dy.backward(dt.tensor(gy))
    for a, b in zip(tx, dx):
        if a.requires_grad:
            np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), atol=atol, rtol=1e-7)
    tp = dict(tm.named_parameters())
    dp = dict(dm.named_parameters())
    assert tp.keys() == dp.keys()
    for k in tp:
        if tp[k].grad is None:
            assert dp[k].grad is None, k
            continue
        np.testing.assert_allclose(dp[k].grad.numpy(), tp[k].grad.numpy(), atol=atol,
                                   rtol=1e-7, err_msg=k)
    return ty, dy


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (4,)])
def test_linear(rng, bias, shape):
    check_module(tnn.Linear(4, 3, bias=bias), dnn.Linear(4, 3, bias=bias),
                 [rng.standard_normal(shape)], rng)


def test_bilinear(rng):
    check_module(tnn.Bilinear(3, 4, 2), dnn.Bilinear(3, 4, 2),
                 [rng.standard_normal((5, 3)), rng.standard_normal((5, 4))], rng)


ACTS = [
    ("ReLU", {}), ("GELU", {}), ("GELU", {"approximate": "tanh"}), ("SiLU", {}), ("Tanh", {}),
    ("Sigmoid", {}), ("Softmax", {"dim": 1}), ("LogSoftmax", {"dim": -1}),
    ("Softmax", {"dim": 0}), ("LeakyReLU", {"negative_slope": 0.2}), ("ELU", {"alpha": 0.7}),
    ("Softplus", {"beta": 2.0, "threshold": 3.0}), ("Hardtanh", {"min_val": -0.5,
                                                                 "max_val": 0.8}),
    ("ReLU6", {}), ("Mish", {}), ("LogSigmoid", {}), ("SELU", {}), ("CELU", {"alpha": 1.5}),
    ("Hardsigmoid", {}), ("Hardswish", {}), ("Softsign", {}), ("Tanhshrink", {}),
    ("Softmin", {"dim": 1}), ("Threshold", {"threshold": 0.1, "value": -2.0}),
    ("PReLU", {}), ("PReLU", {"num_parameters": 6}), ("GLU", {}), ("Hardshrink", {}),
    ("Softshrink", {}),
]


@pytest.mark.parametrize("name,kw", ACTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(ACTS)])
def test_activation(rng, name, kw):
    x = rng.standard_normal((4, 6)) * 3
    check_module(getattr(tnn, name)(**kw), getattr(dnn, name)(**kw), [x], rng)


def test_activation_repr():
    assert repr(dnn.GELU(approximate="tanh")) == repr(tnn.GELU(approximate="tanh"))
    assert repr(dnn.LeakyReLU(0.2)) == repr(tnn.LeakyReLU(0.2))
    assert repr(dnn.ReLU(inplace=True)) == repr(tnn.ReLU(inplace=True))
    assert repr(dnn.Softmax(dim=1)) == repr(tnn.Softmax(dim=1))


def test_inplace_relu_grad(rng):
    x = rng.standard_normal((3, 4))
    tm = tnn.Sequential(tnn.Linear(4, 4), tnn.ReLU(inplace=True), tnn.Linear(4, 2))
    dm = dnn.Sequential(dnn.Linear(4, 4), dnn.ReLU(inplace=True), dnn.Linear(4, 2))
    check_module(tm, dm, [x], rng)


@pytest.mark.parametrize("shape,ns", [((4, 5), (5,)), ((2, 3, 4), (3, 4)), ((2, 3, 4), 4)])
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm(rng, shape, ns, affine):
    tm, dm = tnn.LayerNorm(ns, elementwise_affine=affine), dnn.LayerNorm(ns,
                                                                         elementwise_affine=affine)
    if affine:
        with torch.no_grad():
            tm.weight.normal_()
            tm.bias.normal_()
    check_module(tm, dm, [rng.standard_normal(shape)], rng)
    assert repr(dm) == repr(tm)


def test_layer_norm_no_bias(rng):
    check_module(tnn.LayerNorm(5, bias=False), dnn.LayerNorm(5, bias=False),
                 [rng.standard_normal((3, 5))], rng)


@pytest.mark.parametrize("shape", [(3, 6, 5), (2, 6, 3, 4), (4, 6)])
def test_group_norm(rng, shape):
    tm, dm = tnn.GroupNorm(3, 6), dnn.GroupNorm(3, 6)
    with torch.no_grad():
        tm.weight.normal_()
        tm.bias.normal_()
    check_module(tm, dm, [rng.standard_normal(shape)], rng)
    assert repr(dm) == repr(tm)


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5)),
                                       ("BatchNorm2d", (4, 3, 2, 5))])
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm(rng, cls, shape, train):
    tm, dm = getattr(tnn, cls)(3), getattr(dnn, cls)(3)
    with torch.no_grad():
        tm.weight.normal_()
        tm.bias.normal_()
        tm.running_mean.normal_()
        tm.running_var.uniform_(0.5, 2.0)
    check_module(tm, dm, [rng.standard_normal(shape)], rng, train=train)
    for k in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_allclose(getattr(dm, k).numpy(), getattr(tm, k).numpy(), atol=1e-12)
    assert repr(dm) == repr(tm)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("affine,track", [(True, True), (False, True), (True, False)])
def test_batch_norm_running_stats_after_steps(rng, momentum, affine, track):
    tm = tnn.BatchNorm2d(3, momentum=momentum, affine=affine, track_running_stats=track)
    dm = dnn.BatchNorm2d(3, momentum=momentum, affine=affine, track_running_stats=track)
    _copy_weights(tm, dm)
    for _ in range(4):
        x = rng.standard_normal((5, 3, 2, 2)) * 2 + 1
        ty = tm(torch.tensor(x))
        dy = dm(dt.tensor(x))
        np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), atol=1e-10)
    assert set(dm.state_dict()) == set(tm.state_dict())
    for k, v in tm.state_dict().items():
        np.testing.assert_allclose(dm.state_dict()[k].numpy(), v.numpy(), atol=1e-12, err_msg=k)
    tm.eval()
    dm.eval()
    x = rng.standard_normal((2, 3, 2, 2))
    np.testing.assert_allclose(dm(dt.tensor(x)).detach().numpy(),
                               tm(torch.tensor(x)).detach().numpy(), atol=1e-10)


@pytest.mark.parametrize("cls,shape", [("InstanceNorm1d", (2, 3, 5)),
                                       ("InstanceNorm2d", (2, 3, 4, 4))])
def test_instance_norm(rng, cls, shape):
    check_module(getattr(tnn, cls)(3, affine=True), getattr(dnn, cls)(3, affine=True),
                 [rng.standard_normal(shape)], rng)


def test_rms_norm(rng):
    check_module(tnn.RMSNorm(5, eps=1e-6), dnn.RMSNorm(5, eps=1e-6),
                 [rng.standard_normal((3, 5))], rng)


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding(rng, padding_idx):
    tm, dm = tnn.Embedding(7, 4, padding_idx=padding_idx), dnn.Embedding(7, 4,
                                                                         padding_idx=padding_idx)
    idx = np.array([[0, 2, 6], [2, 2, 1]], dtype=np.int64)
    check_module(tm, dm, [idx], rng)
    if padding_idx is not None:
        assert not dm.weight.grad.numpy()[padding_idx].any()
        fresh = dnn.Embedding(7, 4, padding_idx=padding_idx)
        assert not fresh.weight.detach().numpy()[padding_idx].any()
    assert repr(dm) == repr(tm)


def test_embedding_scale_grad_by_freq(rng):
    idx = np.array([0, 2, 2, 5, 2], dtype=np.int64)
    check_module(tnn.Embedding(6, 3, scale_grad_by_freq=True),
                 dnn.Embedding(6, 3, scale_grad_by_freq=True), [idx], rng)


def test_embedding_from_pretrained():
    w = dt.tensor(np.arange(12.0).reshape(4, 3))
    e = dnn.Embedding.from_pretrained(w)
    assert not e.weight.requires_grad
    out = e(dt.tensor([3, 1]))
    np.testing.assert_array_equal(out.numpy(), np.arange(12.0).reshape(4, 3)[[3, 1]])
    e2 = dnn.Embedding.from_pretrained(w, freeze=False)
    assert e2.weight.requires_grad
    with pytest.raises(IndexError):
        e(dt.tensor([4]))


def test_dropout(rng):
    dt.manual_seed(0)
    x = dt.tensor(np.ones((200, 50)), requires_grad=True)
    d = dnn.Dropout(0.3)
    y = d(x)
    vals = np.unique(np.round(y.detach().numpy(), 12))
    np.testing.assert_allclose(vals, [0.0, 1 / 0.7])
    frac = (y.detach().numpy() == 0).mean()
    assert 0.27 < frac < 0.33
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.detach().numpy())  # grad = mask / (1-p)
    d.eval()
    assert d(x) is x
    assert repr(d) == repr(tnn.Dropout(0.3))


def test_dropout2d_channels():
    dt.manual_seed(1)
    x = dt.ones(4, 8, 3, 3)
    y = dnn.Dropout2d(0.5)(x).numpy()
    per_channel = y.reshape(4, 8, 9)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # whole channels dropped or kept


def test_flatten_unflatten(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    check_module(tnn.Flatten(), dnn.Flatten(), [x], rng)
    check_module(tnn.Flatten(0, 2), dnn.Flatten(0, 2), [x], rng)
    check_module(tnn.Unflatten(1, (3, 1)), dnn.Unflatten(1, (3, 1)), [x], rng)
    assert repr(dnn.Flatten()) == repr(tnn.Flatten())


def test_identity(rng):
    x = dt.randn(3)
    assert dnn.Identity(5, foo=1)(x) is x


def test_sequential_mlp(rng):
    tm = tnn.Sequential(tnn.Linear(6, 8), tnn.GELU(), tnn.LayerNorm(8), tnn.Dropout(0.0),
                        tnn.Linear(8, 3), tnn.LogSoftmax(dim=1))
    dm = dnn.Sequential(dnn.Linear(6, 8), dnn.GELU(), dnn.LayerNorm(8), dnn.Dropout(0.0),
                        dnn.Linear(8, 3), dnn.LogSoftmax(dim=1))
    check_module(tm, dm, [rng.standard_normal((5, 6))], rng)
    assert repr(dm) == repr(tm)


def test_second_order_through_norms(rng):
    """create_graph=True through fused ops gives torch's second derivatives."""
    x = rng.standard_normal((3, 4))
    w = rng.standard_normal(4)
    res = []
    for lib in (torch, dt):
        xt = lib.tensor(x, requires_grad=True)
        wt = lib.tensor(w, requires_grad=True)
        F = lib.nn.functional
        y = F.layer_norm(xt, (4,), wt, None) * F.gelu(xt) + F.softmax(xt, dim=1) * \
            F.log_softmax(xt, dim=0) + F.silu(xt) * F.softplus(xt, 2.0)
        g, = lib.autograd.grad((y * y).sum(), xt, create_graph=True)
        gg = lib.autograd.grad((g * g).sum(), (xt, wt))
        res.append([a.detach().numpy() for a in (g,) + tuple(gg)])
    for a, b in zip(*res):
        np.testing.assert_allclose(b, a, atol=1e-8, rtol=1e-6)


def test_batchnorm_second_order(rng):
    x = rng.standard_normal((5, 3))
    res = []
    for lib in (torch, dt):
        xt = lib.tensor(x, requires_grad=True)
        wt = lib.tensor(np.array([1.0, 2.0, 0.5]), requires_grad=True)
        y = lib.nn.functional.batch_norm(xt, None, None, wt, None, training=True)
        g, = lib.autograd.grad((y ** 3).sum(), xt, create_graph=True)
        gg = lib.autograd.grad((g * g).sum(), (xt, wt))
        res.append([a.detach().numpy() for a in (g,) + tuple(gg)])
    for a, b in zip(*res):
        np.testing.assert_allclose(b, a, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_model_on_device_matches_cpu(device, rng, ls):
    """The same model on `device` gives the CPU's outputs and gradients (CuPy paths)."""
    dt.manual_seed(0)

    class M(dnn.Module):
        def __init__(self):
            super().__init__()
            self.emb = dnn.Embedding(10, 6, padding_idx=0)
            self.fc = dnn.Linear(6, 8)
            self.bn = dnn.BatchNorm1d(8)
            self.ln = dnn.LayerNorm(8)
            self.gn = dnn.GroupNorm(2, 8)
            self.out = dnn.Linear(8, 5)

        def forward(self, idx):
            h = self.emb(idx).mean(1)
            h = dnn.functional.gelu(self.bn(self.fc(h)))
            h = self.gn(self.ln(h).unsqueeze(-1)).squeeze(-1)
            return dnn.functional.log_softmax(self.out(h), dim=1)

    cpu = M().double()
    dev = M().double()
    dev.load_state_dict(cpu.state_dict())
    dev.to(device)
    idx = rng.integers(0, 10, (6, 3))
    y = rng.integers(0, 5, 6)
    res = []
    for m, d in ((cpu, "cpu"), (dev, device)):
        out = m(dt.tensor(idx, device=d))
        loss = dnn.functional.cross_entropy(out, dt.tensor(y, device=d), label_smoothing=ls)
        loss.backward()
        nn_utils = dnn.utils
        norm = nn_utils.clip_grad_norm_(m.parameters(), 0.5)
        res.append((out.detach().cpu().numpy(), norm.cpu().item(),
                    {k: p.grad.cpu().numpy() for k, p in m.named_parameters()},
                    m.bn.running_mean.cpu().numpy()))
    (o1, n1, g1, r1), (o2, n2, g2, r2) = res
    np.testing.assert_allclose(o2, o1, atol=1e-10)
    assert n2 == pytest.approx(n1)
    for k in g1:
        np.testing.assert_allclose(g2[k], g1[k], atol=1e-10, err_msg=k)
    np.testing.assert_allclose(r2, r1, atol=1e-12)


def test_float32_stays_float32(rng):
    """Every layer and loss keeps float32 outputs and float32 gradients."""
    x = dt.tensor(rng.standard_normal((4, 6)).astype(np.float32), requires_grad=True)
    x4 = dt.tensor(rng.standard_normal((2, 6, 3, 3)).astype(np.float32), requires_grad=True)
    outs = [dnn.Linear(6, 5)(x), dnn.Bilinear(6, 6, 2)(x, x), dnn.LayerNorm(6)(x),
            dnn.GroupNorm(3, 6)(x4), dnn.BatchNorm2d(6)(x4), dnn.BatchNorm2d(6).eval()(x4),
            dnn.InstanceNorm2d(6)(x4), dnn.RMSNorm(6)(x), dnn.Dropout(0.5)(x),
            dnn.Embedding(5, 3)(dt.tensor([1, 2])), dnn.PReLU()(x)]
    outs += [getattr(dnn, n)()(x) for n in ("ReLU", "GELU", "SiLU", "Tanh", "Sigmoid", "ELU",
                                            "Softplus", "Hardtanh", "ReLU6", "Mish",
                                            "LogSigmoid", "SELU", "Hardswish", "LeakyReLU")]
    outs += [dnn.Softmax(1)(x), dnn.LogSoftmax(1)(x)]
    t = dt.tensor([0, 1, 2, 3])
    p = dt.tensor(rng.uniform(size=(4, 6)).astype(np.float32))
    outs += [dnn.CrossEntropyLoss()(x, t), dnn.CrossEntropyLoss(label_smoothing=0.1)(x, p),
             dnn.NLLLoss()(x, t), dnn.MSELoss()(x, p), dnn.L1Loss()(x, p),
             dnn.SmoothL1Loss()(x, p), dnn.HuberLoss()(x, p), dnn.BCELoss()(p, p),
             dnn.BCEWithLogitsLoss(pos_weight=dt.ones(6))(x, p), dnn.KLDivLoss()(x, p)]
    for i, o in enumerate(outs):
        assert o.dtype == dt.float32, (i, o.dtype)
        if o.requires_grad:
            o.sum().backward()
    assert x.grad.dtype == dt.float32 and x4.grad.dtype == dt.float32


@pytest.mark.parametrize("size", [1, 2, 5])
def test_local_response_norm(rng, size):
    check_module(tnn.LocalResponseNorm(size, alpha=0.1, beta=0.6, k=1.5),
                 dnn.LocalResponseNorm(size, alpha=0.1, beta=0.6, k=1.5),
                 [rng.standard_normal((2, 6, 3, 2))], rng)
    assert repr(dnn.LocalResponseNorm(size)) == repr(tnn.LocalResponseNorm(size))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag(rng, mode):
    tm, dm = tnn.EmbeddingBag(7, 3, mode=mode), dnn.EmbeddingBag(7, 3, mode=mode)
    check_module(tm, dm, [np.array([[0, 2, 6], [2, 2, 1]])], rng)
    _copy_weights(tm, dm)
    idx, offs = np.array([1, 2, 4, 5, 4, 3, 2, 6]), np.array([0, 3, 5])
    ty = tm(torch.tensor(idx), torch.tensor(offs))
    dy = dm(dt.tensor(idx), dt.tensor(offs))
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), atol=1e-12)
