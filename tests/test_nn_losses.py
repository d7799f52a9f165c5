"""Losses vs torch 2.13 (float64): values and gradients for every reduction and option."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch as dt
import dyntorch.nn as dnn

torch = pytest.importorskip("torch")
tnn = torch.nn


def _pair(a, grad=True):
    rg = grad and a.dtype.kind == "f"
    return torch.tensor(a, requires_grad=rg), dt.tensor(a, requires_grad=rg)


def check_loss(name, kw, arrays, rng, atol=1e-10, grads=None):
    """Build torch's and our loss with ``kw`` (arrays in kw become tensors), compare value
    and the gradients of every floating input."""
    tkw = {k: (torch.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    dkw = {k: (dt.tensor(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    tl, dl = getattr(tnn, name)(**tkw), getattr(dnn, name)(**dkw)
    grads = grads if grads is not None else [True] * len(arrays)
    pairs = [_pair(a, g) for a, g in zip(arrays, grads)]
    ty = tl(*[p[0] for p in pairs])
    dy = dl(*[p[1] for p in pairs])
    np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), atol=atol, rtol=1e-8)
    gy = rng.standard_normal(tuple(ty.shape)) if ty.ndim else np.array(1.3)
    ty.backward(torch.tensor(gy))
    dy.backward(dt.tensor(gy))
    for t, d in pairs:
        if t.requires_grad:
            np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), atol=atol, rtol=1e-7)
    return ty, dy


RED = ["mean", "sum", "none"]


@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("name,kw", [("MSELoss", {}), ("L1Loss", {}),
                                     ("SmoothL1Loss", {"beta": 0.5}),
                                     ("SmoothL1Loss", {"beta": 0.0}),
                                     ("HuberLoss", {"delta": 0.7})])
def test_regression_losses(rng, name, kw, reduction):
    x, y = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    check_loss(name, dict(kw, reduction=reduction), [x, y], rng)


@pytest.mark.parametrize("reduction", RED)
def test_cross_entropy_basic(rng, reduction):
    x = rng.standard_normal((6, 5)) * 3
    t = rng.integers(0, 5, 6)
    check_loss("CrossEntropyLoss", {"reduction": reduction}, [x, t], rng)


@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("ls", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore", [False, True])
def test_cross_entropy_variants(rng, reduction, ls, weighted, ignore):
    x = rng.standard_normal((7, 4)) * 2
    t = rng.integers(0, 4, 7)
    kw = {"reduction": reduction, "label_smoothing": ls}
    if weighted:
        kw["weight"] = rng.uniform(0.2, 2.0, 4)
    if ignore:
        t[[1, 4]] = 2
        kw["ignore_index"] = 2
    check_loss("CrossEntropyLoss", kw, [x, t], rng)


@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("ls", [0.0, 0.1])
def test_cross_entropy_nd(rng, reduction, ls):
    x = rng.standard_normal((3, 4, 2, 5))
    t = rng.integers(0, 4, (3, 2, 5))
    t[0, 0, 0] = -100
    w = rng.uniform(0.5, 1.5, 4)
    check_loss("CrossEntropyLoss", {"reduction": reduction, "label_smoothing": ls,
                                    "weight": w}, [x, t], rng)


@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("ls", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_probabilities(rng, reduction, ls, weighted):
    x = rng.standard_normal((5, 4, 3))
    p = rng.uniform(size=(5, 4, 3))
    p /= p.sum(1, keepdims=True)
    kw = {"reduction": reduction, "label_smoothing": ls}
    if weighted:
        kw["weight"] = rng.uniform(0.2, 2.0, 4)
    check_loss("CrossEntropyLoss", kw, [x, p], rng)  # gradient to the soft target too


def test_cross_entropy_unbatched(rng):
    x = rng.standard_normal(5)
    check_loss("CrossEntropyLoss", {}, [x, np.array(3)], rng)
    check_loss("CrossEntropyLoss", {"reduction": "none"}, [x, np.array(1)], rng)


def test_cross_entropy_errors():
    x = dt.randn(3, 4)
    with pytest.raises(IndexError, match="out of bounds"):
        dnn.functional.cross_entropy(x, dt.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match="target size"):
        dnn.functional.cross_entropy(x, dt.tensor([0, 1]))


def test_cross_entropy_second_order(rng):
    x = rng.standard_normal((4, 3))
    t = np.array([0, 2, 1, 2])
    res = []
    for lib in (torch, dt):
        xt = lib.tensor(x, requires_grad=True)
        loss = lib.nn.functional.cross_entropy(xt, lib.tensor(t), label_smoothing=0.1)
        g, = lib.autograd.grad(loss, xt, create_graph=True)
        gg, = lib.autograd.grad((g ** 2).sum(), xt)
        res.append((g.detach().numpy(), gg.numpy()))
    np.testing.assert_allclose(res[1][0], res[0][0], atol=1e-10)
    np.testing.assert_allclose(res[1][1], res[0][1], atol=1e-10)


@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(rng, reduction, weighted):
    x = rng.standard_normal((6, 5, 2))
    t = rng.integers(0, 5, (6, 2))
    t[2, 1] = -100
    kw = {"reduction": reduction}
    if weighted:
        kw["weight"] = rng.uniform(0.2, 2.0, 5)
    check_loss("NLLLoss", kw, [x, t], rng)


@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce(rng, reduction, weighted):
    x = rng.uniform(0.01, 0.99, (4, 3))
    y = rng.uniform(0, 1, (4, 3))
    kw = {"reduction": reduction}
    if weighted:
        kw["weight"] = rng.uniform(0.5, 2.0, (4, 3))
    check_loss("BCELoss", kw, [x, y], rng, atol=1e-9)


@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("pos_weight", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_with_logits(rng, reduction, pos_weight, weighted):
    x = rng.standard_normal((4, 3)) * 4
    y = rng.uniform(0, 1, (4, 3))
    kw = {"reduction": reduction}
    if pos_weight:
        kw["pos_weight"] = rng.uniform(0.5, 3.0, 3)
    if weighted:
        kw["weight"] = rng.uniform(0.5, 2.0, 3)
    check_loss("BCEWithLogitsLoss", kw, [x, y], rng)


def test_bce_with_logits_extreme(rng):
    x = np.array([[-800.0, 800.0, 0.0]])
    y = np.array([[1.0, 0.0, 0.5]])
    check_loss("BCEWithLogitsLoss", {}, [x, y], rng)


@pytest.mark.parametrize("reduction", RED + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.filterwarnings("ignore:reduction")
def test_kl_div(rng, reduction, log_target):
    x = np.log(rng.dirichlet(np.ones(4), 3))
    p = rng.dirichlet(np.ones(4), 3)
    p[0, 1] = 0.0
    t = np.log(p + 1e-3) if log_target else p
    kw = {"reduction": reduction, "log_target": log_target}
    # torch's target gradient is nan at a zero target: compare it only where it is defined
    check_loss("KLDivLoss", kw, [x, t], rng, grads=[True, log_target])
    check_loss("KLDivLoss", kw, [x, np.abs(t) + 0.1], rng)


def test_other_losses(rng):
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    y = np.array([1.0, -1, 1, -1, 1])
    check_loss("CosineEmbeddingLoss", {"margin": 0.1}, [a, b, y], rng, grads=[True, True,
                                                                              False])
    check_loss("MarginRankingLoss", {"margin": 0.2}, [a[:, 0], b[:, 0], y], rng,
               grads=[True, True, False])
    check_loss("SoftMarginLoss", {}, [a, np.sign(b)], rng, grads=[True, False])
    check_loss("GaussianNLLLoss", {}, [a, b, rng.uniform(0.5, 2, (5, 3))], rng)
    check_loss("PoissonNLLLoss", {}, [a, np.abs(b)], rng)


def test_loss_reprs():
    assert repr(dnn.CrossEntropyLoss()) == repr(tnn.CrossEntropyLoss())
    assert repr(dnn.MSELoss()) == repr(tnn.MSELoss())


def test_functional_misc(rng):
    F, TF = dnn.functional, torch.nn.functional
    idx = np.array([[0, 3], [2, 1]])
    np.testing.assert_array_equal(F.one_hot(dt.tensor(idx), 5).numpy(),
                                  TF.one_hot(torch.tensor(idx), 5).numpy())
    assert F.one_hot(dt.tensor(idx)).shape == (2, 2, 4)
    x, y = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    for fn, kw in (("normalize", {}), ("normalize", {"p": 1, "dim": 0}),
                   ("cosine_similarity", {}), ("pairwise_distance", {})):
        args = (x,) if fn == "normalize" else (x, y)
        ta = [torch.tensor(a, requires_grad=True) for a in args]
        da = [dt.tensor(a, requires_grad=True) for a in args]
        to, do = getattr(TF, fn)(*ta, **kw), getattr(F, fn)(*da, **kw)
        np.testing.assert_allclose(do.detach().numpy(), to.detach().numpy(), atol=1e-10)
        to.sum().backward()
        do.sum().backward()
        for a, b in zip(ta, da):
            np.testing.assert_allclose(b.grad.numpy(), a.grad.numpy(), atol=1e-10)


def test_more_losses(rng):
    a, b, c = (rng.standard_normal((5, 3)) for _ in range(3))
    y = np.array([1.0, -1, 1, -1, 1])
    check_loss("HingeEmbeddingLoss", {"margin": 0.5}, [a, np.sign(b)], rng,
               grads=[True, False])
    check_loss("MultiLabelSoftMarginLoss", {}, [a, (b > 0).astype(float)], rng,
               grads=[True, False])
    check_loss("MultiLabelSoftMarginLoss", {"weight": np.array([0.5, 1.0, 2.0])},
               [a, (b > 0).astype(float)], rng, grads=[True, False])
    t = np.array([0, 2, 1, 1, 0])
    check_loss("MultiMarginLoss", {}, [a, t], rng)
    check_loss("MultiMarginLoss", {"p": 2, "margin": 0.7, "weight": np.array([1.0, 2.0, 0.5])},
               [a, t], rng)
    check_loss("TripletMarginLoss", {"margin": 0.5}, [a, b, c], rng)
    check_loss("TripletMarginLoss", {"swap": True, "p": 1.0}, [a, b, c], rng)
    check_loss("TripletMarginWithDistanceLoss", {"margin": 2.0}, [a, b, c], rng)
    _ = y


@pytest.mark.parametrize("name,kw,shapes", [
    ("Softmax2d", {}, [(2, 3, 2, 2)]), ("CosineSimilarity", {"dim": 1}, [(4, 5), (4, 5)]),
    ("PairwiseDistance", {"p": 3.0}, [(4, 5), (4, 5)])])
def test_distance_modules(rng, name, kw, shapes):
    arrs = [rng.standard_normal(s) for s in shapes]
    check_loss(name, kw, arrs, rng)


@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("concat", [False, True])
def test_ctc_loss(rng, reduction, concat):
    T, N, C = 12, 4, 5
    logits = rng.standard_normal((T, N, C))
    in_len = np.array([12, 10, 7, 12])
    tg_len = np.array([4, 3, 0, 5])
    tg = rng.integers(1, C, (N, 5))
    tg[0, 1] = tg[0, 2]  # a repeated label needs a blank between
    targets = np.concatenate([tg[i, :tg_len[i]] for i in range(N)]) if concat else tg
    res = []
    for lib in (torch, dt):
        x = lib.tensor(logits, requires_grad=True)
        lp = lib.nn.functional.log_softmax(x, 2)
        lp.retain_grad()
        loss = lib.nn.CTCLoss(blank=0, reduction=reduction)(
            lp, lib.tensor(targets), lib.tensor(in_len), lib.tensor(tg_len))
        g = np.linspace(0.5, 1.5, N) if reduction == "none" else np.array(1.0)
        loss.backward(lib.tensor(g))
        res.append((loss.detach().numpy(), x.grad.numpy(), lp.grad.numpy()))
    for a, b in zip(*res):
        np.testing.assert_allclose(b, a, atol=1e-9, rtol=1e-7)


def test_ctc_zero_infinity():
    lp = np.log(np.full((2, 1, 3), 1 / 3))
    res = []
    for lib in (torch, dt):
        x = lib.tensor(lp, requires_grad=True)
        loss = lib.nn.functional.ctc_loss(x, lib.tensor([[1, 1, 2]]), [2], [3],
                                          zero_infinity=True, reduction="sum")
        loss.backward()
        res.append((loss.item(), x.grad.numpy()))
    assert res[1][0] == res[0][0] == 0.0
    np.testing.assert_allclose(res[1][1], res[0][1])


def test_pdist_and_embedding_bag_weights(rng):
    x = rng.standard_normal((5, 3))
    for p in (2.0, 1.0):
        tx, dx = torch.tensor(x, requires_grad=True), dt.tensor(x, requires_grad=True)
        ty, dy = torch.nn.functional.pdist(tx, p), dnn.functional.pdist(dx, p)
        np.testing.assert_allclose(dy.detach().numpy(), ty.detach().numpy(), atol=1e-12)
        ty.sum().backward()
        dy.sum().backward()
        np.testing.assert_allclose(dx.grad.numpy(), tx.grad.numpy(), atol=1e-10)
    w = rng.standard_normal((6, 2))
    idx, offs, psw = np.array([1, 2, 4, 5, 0]), np.array([0, 2]), rng.standard_normal(5)
    ty = torch.nn.functional.embedding_bag(torch.tensor(idx), torch.tensor(w),
                                           torch.tensor(offs), mode="sum",
                                           per_sample_weights=torch.tensor(psw))
    dy = dnn.functional.embedding_bag(dt.tensor(idx), dt.tensor(w), dt.tensor(offs),
                                      mode="sum", per_sample_weights=dt.tensor(psw))
    np.testing.assert_allclose(dy.numpy(), ty.numpy(), atol=1e-12)
