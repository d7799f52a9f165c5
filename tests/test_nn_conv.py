"""Convolution, pooling, unfold/fold, pad and interpolate against torch 2.13 in float64."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch as dt
import dyntorch.nn as nn
import dyntorch.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _pair(arrays, device="cpu"):
    """The same float64 arrays as (dyntorch leaves, torch leaves), all requiring grad."""
    ours = [None if a is None else dt.tensor(a, requires_grad=a.dtype.kind == "f",
                                             device=device) for a in arrays]
    ref = [None if a is None else torch.tensor(a, requires_grad=a.dtype.kind == "f")
           for a in arrays]
    return ours, ref


def _np(t):
    return dt.tensor(t).numpy() if not hasattr(t, "cpu") else t.detach().cpu().numpy()


def _check(f_ours, f_ref, arrays, rng, device="cpu", tol=1e-9):
    """Forward values and gradients of every float input agree with torch."""
    ours, ref = _pair(arrays, device)
    y, ty = f_ours(*ours), f_ref(*ref)
    assert tuple(y.shape) == tuple(ty.shape)
    np.testing.assert_allclose(_np(y.cpu()), _np(ty), rtol=tol, atol=tol)
    g = rng.standard_normal(tuple(ty.shape))
    y.backward(dt.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    for a, ta in zip(ours, ref):
        if a is not None and a.requires_grad:
            np.testing.assert_allclose(_np(a.grad.cpu()), _np(ta.grad), rtol=tol, atol=tol)


CONV_GRID = [
    # stride, padding, dilation, groups, bias, (H, W), kernel
    (1, 0, 1, 1, True, (7, 8), (3, 3)),
    (2, 1, 1, 1, False, (8, 8), (3, 3)),
    (1, "same", 2, 2, True, (9, 7), (3, 2)),
    (1, "same", 1, 1, True, (6, 6), (4, 4)),
    (3, 2, 2, 2, True, (10, 11), (3, 3)),
    (1, "valid", 1, 4, True, (6, 6), (1, 1)),
    ((2, 1), (1, 2), (1, 2), 1, True, (9, 9), (3, 2)),
]


@pytest.mark.parametrize("stride,padding,dilation,groups,bias,hw,k", CONV_GRID)
def test_conv2d_matches_torch(stride, padding, dilation, groups, bias, hw, k, rng, device):
    x = rng.standard_normal((2, 4) + hw)
    w = rng.standard_normal((8, 4 // groups) + k)
    b = rng.standard_normal(8) if bias else None
    _check(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups),
           lambda x, w, b: TF.conv2d(x, w, b, stride, padding, dilation, groups),
           [x, w, b], rng, device)


def test_conv2d_large_batch_chunks_and_float32(rng):
    # many images: several im2col chunks with a partial last one; float32 stays float32
    x = rng.standard_normal((43, 3, 20, 20)).astype(np.float32)
    w = rng.standard_normal((5, 3, 5, 5)).astype(np.float32)
    g = rng.standard_normal((43, 5, 20, 20)).astype(np.float32)
    xs, ws = dt.tensor(x, requires_grad=True), dt.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    y = F.conv2d(xs, ws, padding=2)
    ty = TF.conv2d(tx, tw, padding=2)
    assert y.dtype == dt.float32
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    y.backward(dt.tensor(g))
    ty.backward(torch.tensor(g))
    assert xs.grad.dtype == dt.float32 and ws.grad.dtype == dt.float32
    np.testing.assert_allclose(xs.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(ws.grad.numpy(), tw.grad.numpy(), rtol=1e-4, atol=1e-2)


def test_conv2d_unbatched_and_errors(rng):
    x = rng.standard_normal((3, 6, 6))
    w = rng.standard_normal((2, 3, 3, 3))
    y = F.conv2d(dt.tensor(x), dt.tensor(w))
    np.testing.assert_allclose(y.numpy(), TF.conv2d(torch.tensor(x), torch.tensor(w)).numpy())
    with pytest.raises(RuntimeError, match="channels"):
        F.conv2d(dt.tensor(x), dt.tensor(rng.standard_normal((2, 4, 3, 3))))
    with pytest.raises(RuntimeError, match="Kernel size"):
        F.conv2d(dt.tensor(x), dt.tensor(rng.standard_normal((2, 3, 7, 7))))


@pytest.mark.parametrize("stride,padding,dilation,groups,bias", [
    (1, 0, 1, 1, True), (2, 1, 1, 1, False), (1, "same", 3, 2, True), (2, 0, 2, 1, True)])
def test_conv1d_matches_torch(stride, padding, dilation, groups, bias, rng):
    x = rng.standard_normal((3, 4, 13))
    w = rng.standard_normal((6, 4 // groups, 3))
    b = rng.standard_normal(6) if bias else None
    _check(lambda x, w, b: F.conv1d(x, w, b, stride, padding, dilation, groups),
           lambda x, w, b: TF.conv1d(x, w, b, stride, padding, dilation, groups),
           [x, w, b], rng)


@pytest.mark.parametrize("stride,padding,output_padding,groups,dilation,bias", [
    (1, 0, 0, 1, 1, True), (2, 1, 1, 1, 1, True), (3, 0, 2, 2, 1, False), (2, 1, 0, 1, 2, True),
    ((2, 1), (0, 1), (1, 0), 2, 1, True)])
def test_conv_transpose2d_matches_torch(stride, padding, output_padding, groups, dilation, bias,
                                        rng, device):
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((4, 6 // groups, 3, 3))
    b = rng.standard_normal(6 // groups * groups) if bias else None
    _check(lambda x, w, b: F.conv_transpose2d(x, w, b, stride, padding, output_padding, groups,
                                              dilation),
           lambda x, w, b: TF.conv_transpose2d(x, w, b, stride, padding, output_padding, groups,
                                               dilation),
           [x, w, b], rng, device)


def test_conv2d_gradcheck_finite_differences(rng):
    x = rng.standard_normal((1, 2, 5, 5))
    w = rng.standard_normal((2, 2, 3, 3))
    b = rng.standard_normal(2)
    g = rng.standard_normal((1, 2, 3, 3))

    def f(xa, wa, ba):
        y = F.conv2d(dt.tensor(xa), dt.tensor(wa), dt.tensor(ba), stride=2, padding=1)
        return float((y.numpy() * g).sum())

    xs, ws, bs = (dt.tensor(a, requires_grad=True) for a in (x, w, b))
    F.conv2d(xs, ws, bs, stride=2, padding=1).backward(dt.tensor(g))
    eps = 1e-6
    for arr, grad in ((x, xs.grad), (w, ws.grad), (b, bs.grad)):
        num = np.zeros_like(arr)
        for i in np.ndindex(arr.shape):
            p, m = arr.copy(), arr.copy()
            p[i] += eps
            m[i] -= eps
            args = [p if a is arr else a for a in (x, w, b)]
            args2 = [m if a is arr else a for a in (x, w, b)]
            num[i] = (f(*args) - f(*args2)) / (2 * eps)
        np.testing.assert_allclose(grad.numpy(), num, rtol=1e-6, atol=1e-7)


def test_conv2d_second_order_matches_torch(rng):
    # create_graph=True: grad of (sum of dx^2 + sum of dw^2) w.r.t. x and w
    x = rng.standard_normal((2, 2, 6, 6))
    w = rng.standard_normal((3, 2, 3, 3))
    (a, b), (ta, tb) = _pair([x, w])
    outs = []
    for X, W, fn, grad in ((a, b, F.conv2d, dt.autograd.grad),
                           (ta, tb, TF.conv2d, torch.autograd.grad)):
        y = fn(X, W, None, 2, 1)
        gx, gw = grad((y * y).sum(), (X, W), create_graph=True)
        s = (gx * gx).sum() + (gw * gw).sum()
        outs.append(grad(s, (X, W)))
    for o, r in zip(outs[0], outs[1]):
        np.testing.assert_allclose(o.numpy(), r.numpy(), rtol=1e-8, atol=1e-8)


MAXPOOL_GRID = [
    # kernel, stride, padding, dilation, ceil_mode
    (2, None, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 1, True), ((2, 3), (1, 2), (1, 1), 1,
                                                                       False),
    (3, 1, 1, 2, False), (2, 3, 0, 1, True),
]


@pytest.mark.parametrize("k,s,p,d,ceil", MAXPOOL_GRID)
def test_max_pool2d_matches_torch(k, s, p, d, ceil, rng, device):
    x = rng.standard_normal((2, 3, 9, 10))
    _check(lambda x: F.max_pool2d(x, k, s, p, d, ceil), lambda x: TF.max_pool2d(x, k, s, p, d,
                                                                                ceil),
           [x], rng, device)
    y, idx = F.max_pool2d(dt.tensor(x), k, s, p, d, ceil, return_indices=True)
    _, tidx = TF.max_pool2d(torch.tensor(x), k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(idx.cpu().numpy(), tidx.numpy())


@pytest.mark.parametrize("k,s,p,d,ceil", [(2, None, 0, 1, False), (3, 2, 1, 1, True),
                                          (3, 1, 1, 2, False)])
def test_max_pool1d_matches_torch(k, s, p, d, ceil, rng):
    x = rng.standard_normal((2, 3, 11))
    _check(lambda x: F.max_pool1d(x, k, s, p, d, ceil),
           lambda x: TF.max_pool1d(x, k, s, p, d, ceil), [x], rng)


@pytest.mark.parametrize("k,s,p,ceil,include,override", [
    (2, None, 0, False, True, None), (3, 2, 1, False, True, None), (3, 2, 1, False, False, None),
    (3, 2, 1, True, True, None), (3, 2, 1, True, False, None), ((2, 3), (2, 1), (1, 1), False,
                                                                 False, None),
    (2, 2, 0, False, True, 3)])
def test_avg_pool2d_matches_torch(k, s, p, ceil, include, override, rng, device):
    x = rng.standard_normal((2, 3, 9, 8))
    _check(lambda x: F.avg_pool2d(x, k, s, p, ceil, include, override),
           lambda x: TF.avg_pool2d(x, k, s, p, ceil, include, override), [x], rng, device)


@pytest.mark.parametrize("out", [(1, 1), (3, 4), (5, 7), (9, 8), (None, 3)])
def test_adaptive_avg_pool2d_matches_torch(out, rng):
    x = rng.standard_normal((2, 3, 9, 8))
    _check(lambda x: F.adaptive_avg_pool2d(x, out), lambda x: TF.adaptive_avg_pool2d(x, out),
           [x], rng)


@pytest.mark.parametrize("out", [1, 4, 7])
def test_adaptive_avg_pool1d_matches_torch(out, rng):
    x = rng.standard_normal((2, 3, 10))
    _check(lambda x: F.adaptive_avg_pool1d(x, out), lambda x: TF.adaptive_avg_pool1d(x, out),
           [x], rng)


@pytest.mark.parametrize("k,d,p,s", [(2, 1, 0, 1), ((3, 2), 1, 1, 2), (2, 2, 1, (1, 2))])
def test_unfold_fold_match_torch(k, d, p, s, rng):
    x = rng.standard_normal((2, 3, 7, 8))
    _check(lambda x: F.unfold(x, k, d, p, s), lambda x: TF.unfold(x, k, d, p, s), [x], rng)
    cols = TF.unfold(torch.tensor(x), k, d, p, s).numpy()
    _check(lambda c: F.fold(c, (7, 8), k, d, p, s), lambda c: TF.fold(c, (7, 8), k, d, p, s),
           [cols], rng)


@pytest.mark.parametrize("pads,mode", [((1, 2), "constant"), ((1, 2, 0, 3), "constant"),
                                       ((-1, 2, 1, -2), "constant"), ((2, 1, 1, 2), "reflect"),
                                       ((2, 1, 1, 2), "replicate"), ((2, 1), "reflect"),
                                       ((1, 3, 2, 0), "circular")])
def test_pad_matches_torch(pads, mode, rng):
    shape = (2, 3, 6) if mode != "constant" and len(pads) == 2 else (2, 3, 5, 6)
    x = rng.standard_normal(shape)
    kw = {"value": 1.5} if mode == "constant" else {}
    _check(lambda x: F.pad(x, pads, mode, **kw), lambda x: TF.pad(x, pads, mode, **kw), [x], rng)


@pytest.mark.parametrize("kw", [
    dict(scale_factor=2, mode="nearest"), dict(size=(7, 5), mode="nearest"),
    dict(size=(7, 5), mode="nearest-exact"), dict(scale_factor=2, mode="bilinear"),
    dict(size=(9, 4), mode="bilinear", align_corners=True),
    dict(size=(9, 4), mode="bilinear", align_corners=False),
    dict(scale_factor=1.5, mode="bilinear", align_corners=False),
    dict(scale_factor=0.5, mode="bilinear"),
])
def test_interpolate_2d_matches_torch(kw, rng):
    x = rng.standard_normal((2, 3, 5, 6))
    _check(lambda x: F.interpolate(x, **kw), lambda x: TF.interpolate(x, **kw), [x], rng)


@pytest.mark.parametrize("kw", [dict(scale_factor=3, mode="nearest"),
                                dict(size=11, mode="linear", align_corners=True),
                                dict(size=4, mode="linear")])
def test_interpolate_1d_matches_torch(kw, rng):
    x = rng.standard_normal((2, 3, 6))
    _check(lambda x: F.interpolate(x, **kw), lambda x: TF.interpolate(x, **kw), [x], rng)


def _copy_params(ours, ref):
    sd = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    ours.load_state_dict({k: dt.tensor(v) for k, v in sd.items()})


@pytest.mark.parametrize("make", [
    lambda m: m.Conv2d(4, 6, 3, stride=2, padding=1, bias=True),
    lambda m: m.Conv2d(4, 6, (3, 2), padding="same", dilation=2, groups=2, bias=False),
    lambda m: m.Conv1d(4, 6, 3, padding=1),
    lambda m: m.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
    lambda m: m.MaxPool2d(3, 2, 1, ceil_mode=True),
    lambda m: m.AvgPool2d(2),
    lambda m: m.AdaptiveAvgPool2d((2, 3)),
    lambda m: m.Upsample(scale_factor=2, mode="bilinear"),
    lambda m: m.Conv2d(4, 6, 3, padding=1, padding_mode="reflect"),
    lambda m: m.Conv2d(4, 4, 3, padding=(2, 1), padding_mode="circular", groups=4),
    lambda m: m.Conv2d(4, 6, 4, padding="same", padding_mode="replicate"),
])
def test_modules_match_torch(make, rng):
    tm = make(torch.nn).double()
    m = make(nn)
    if list(tm.state_dict()):
        assert list(m.state_dict()) == list(tm.state_dict())
        for (k, v), (tk, tv) in zip(m.state_dict().items(), tm.state_dict().items()):
            assert tuple(v.shape) == tuple(tv.shape), k
        _copy_params(m, tm)
    m.double()
    x = rng.standard_normal((2, 4, 8, 8) if not isinstance(tm, torch.nn.Conv1d) else (2, 4, 9))
    xs, tx = dt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = m(xs), tm(tx)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-9)
    g = rng.standard_normal(tuple(ty.shape))
    y.backward(dt.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(xs.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-9)
    for (k, p), (tk, tp) in zip(m.named_parameters(), tm.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_conv2d_default_init_bounds():
    m = nn.Conv2d(4, 8, 3)
    bound = 1 / np.sqrt(4 * 9)
    assert np.abs(m.weight.detach().numpy()).max() <= bound
    assert np.abs(m.bias.detach().numpy()).max() <= bound
    assert m.weight.dtype == dt.float32
    assert "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1))" == repr(m)


def test_lenet_forward_backward_runs():
    if not all(hasattr(nn, n) for n in ("Sequential", "ReLU", "Flatten", "Linear")):
        pytest.skip("nn core layers not available yet")
    net = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(256, 10))
    x = dt.randn(4, 1, 28, 28)
    loss = net(x).sum()
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("name,kw", [
    ("max_pool2d", dict(kernel_size=3, stride=2, padding=1)),
    ("max_pool2d", dict(kernel_size=2)),
    ("avg_pool2d", dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("interpolate", dict(scale_factor=2, mode="bilinear")),
    ("conv_transpose2d", dict(stride=2, padding=1, output_padding=1)),
])
def test_second_order_matches_torch(name, kw, rng):
    x = rng.standard_normal((2, 3, 6, 7))
    extra = [rng.standard_normal((3, 2, 3, 3))] if name == "conv_transpose2d" else []
    (a, *wa), (ta, *twa) = _pair([x] + extra)
    res = []
    for X, W, mod, grad in ((a, wa, F, dt.autograd.grad), (ta, twa, TF, torch.autograd.grad)):
        y = getattr(mod, name)(X, *W, **kw)
        leaves = (X, *W)
        gs = grad((y * y * y).sum(), leaves, create_graph=True)
        s = sum((g * g).sum() for g in gs)
        res.append(grad(s, leaves))
    for o, r in zip(*res):
        np.testing.assert_allclose(_np(o), _np(r), rtol=1e-8, atol=1e-8)


def test_conv_transpose1d_and_avg_pool1d_match_torch(rng):
    x = rng.standard_normal((2, 4, 7))
    w = rng.standard_normal((4, 3, 3))
    b = rng.standard_normal(3)
    _check(lambda x, w, b: F.conv_transpose1d(x, w, b, 2, 1, 1),
           lambda x, w, b: TF.conv_transpose1d(x, w, b, 2, 1, 1), [x, w, b], rng)
    _check(lambda x: F.avg_pool1d(x, 3, 2, 1), lambda x: TF.avg_pool1d(x, 3, 2, 1), [x], rng)


def test_pixel_shuffle_and_conv_transpose_output_size(rng):
    x = rng.standard_normal((2, 8, 3, 4))
    _check(lambda x: F.pixel_shuffle(x, 2), lambda x: TF.pixel_shuffle(x, 2), [x], rng)
    tm = torch.nn.ConvTranspose2d(8, 2, 3, stride=2, padding=1).double()
    m = nn.ConvTranspose2d(8, 2, 3, stride=2, padding=1).double()
    _copy_params(m, tm)
    y = m(dt.tensor(x), output_size=(6, 8))
    ty = tm(torch.tensor(x), output_size=(6, 8))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-9, atol=1e-9)
