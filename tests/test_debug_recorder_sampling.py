"""debug.Recorder on big tensors: what is exact, what is on a strided sample (``sample=``),
and that the batched statistics of a training step equal the ones computed by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import dyntorch as dt
from dyntorch.debug import Recorder

N, D_IN, D_OUT = 64, 100, 80  # the hidden output has 5,120 entries, the weight 8,000


def _model(seed=0):
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((D_OUT, D_IN)) / 10
    b1 = rng.standard_normal(D_OUT) / 10
    w2 = rng.standard_normal((1, D_OUT)) / 10
    m = dt.nn.Sequential(dt.nn.Linear(D_IN, D_OUT), dt.nn.ReLU(),
                         dt.nn.Linear(D_OUT, 1, bias=False)).double()
    with dt.no_grad():
        for p, v in zip(m.parameters(), (w1, b1, w2)):
            p.copy_(dt.tensor(v))
    return m, (w1, b1, w2)


def _x(seed=1):
    return np.random.default_rng(seed).standard_normal((N, D_IN))


def _by_hand(x, w1, b1, w2):
    """Forward values and gradients of loss = mean(relu(x w1^T + b1) w2^T), in torch."""
    tw1, tb1, tw2 = (torch.tensor(a, requires_grad=True) for a in (w1, b1, w2))
    pre = torch.tensor(x) @ tw1.T + tb1
    pre.retain_grad()
    h = torch.relu(pre)
    h.retain_grad()
    loss = (h @ tw2.T).mean()
    loss.backward()
    return {"pre": pre.detach().numpy(), "h": h.detach().numpy(),
            "g_pre": pre.grad.numpy(), "g_h": h.grad.numpy(), "g_w1": tw1.grad.numpy()}


def _record(m, x, **kw):
    with Recorder(m, keep=5, **kw) as rec:
        (m(dt.tensor(x))).mean().backward()
    return rec


def _sample(a, sample):
    flat = a.ravel()
    return flat[::(flat.size // sample) | 1]


def test_exact_statistics_with_sample_none():
    m, ws = _model()
    x = _x()
    ref = _by_hand(x, *ws)
    rec = _record(m, x, sample=None)
    h = ref["h"]
    s = rec.summary(0, "1/ReluBackward0#0")
    np.testing.assert_allclose([s.out_mean, s.out_std, s.out_min, s.out_max, s.out_zeros],
                               [h.mean(), h.std(), h.min(), h.max(), (h == 0).mean()],
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s.grad_norm, np.linalg.norm(ref["g_h"]), rtol=1e-10)
    np.testing.assert_allclose(s.grad_max, abs(ref["g_h"]).max(), rtol=1e-12)
    w = rec.summary(0, "0.weight")
    np.testing.assert_allclose(w.grad_norm, np.linalg.norm(ref["g_w1"]), rtol=1e-10)
    np.testing.assert_allclose(w.grad_max, abs(ref["g_w1"]).max(), rtol=1e-12)


def test_sampled_statistics_are_those_of_the_strided_sample_and_norms_stay_exact():
    m, ws = _model()
    x = _x()
    ref = _by_hand(x, *ws)
    sample = 256  # outputs and gradients above 512 entries are sampled
    rec = _record(m, x, sample=sample)
    pre = rec.summary(0, "0/LinearBackward0#0")
    y = _sample(ref["pre"], sample)
    assert sample // 2 < y.size < 2 * sample  # "about sample": the stride is made odd
    np.testing.assert_allclose([pre.out_mean, pre.out_std, pre.out_min, pre.out_max],
                               [y.mean(), y.std(), y.min(), y.max()], rtol=1e-10)
    # the sample is not the whole: its extremes lie inside the exact ones
    assert ref["pre"].min() <= pre.out_min and pre.out_max <= ref["pre"].max()
    assert (pre.out_min, pre.out_max) != (ref["pre"].min(), ref["pre"].max())
    h = rec.summary(0, "1/ReluBackward0#0")
    np.testing.assert_allclose(h.out_zeros, (_sample(ref["h"], sample) == 0).mean())
    # gradient norms are over every entry; max |g| over the sample
    np.testing.assert_allclose(pre.grad_norm, np.linalg.norm(ref["g_pre"]), rtol=1e-10)
    np.testing.assert_allclose(pre.grad_max, abs(_sample(ref["g_pre"], sample)).max(),
                               rtol=1e-12)
    w = rec.summary(0, "0.weight")
    np.testing.assert_allclose(w.grad_norm, np.linalg.norm(ref["g_w1"]), rtol=1e-10)
    np.testing.assert_allclose(w.grad_max, abs(_sample(ref["g_w1"], sample)).max(),
                               rtol=1e-12)
    # small arrays are exact whatever the sample
    b = rec.summary(0, "0.bias")
    np.testing.assert_allclose(b.grad_max, abs(ref["g_pre"].sum(0)).max(), rtol=1e-12)


def test_nan_counts_stay_exact_when_the_nan_is_outside_the_sample():
    m, ws = _model()
    x = _x()
    sample = 256
    x[0, 1] = np.nan  # flat index 1 of x * 2: not in the sample (stride 25 from index 0)
    assert 1 % ((x.size // sample) | 1) != 0
    xt = dt.tensor(x, requires_grad=True)
    with Recorder(m, keep=2, sample=sample, break_when=None) as rec:
        m(xt * 2.0).mean().backward()
    s = rec.summary(0, "/MulBackward0#0")
    assert (s.out_nan, s.out_inf, s.nonfinite) == (1, 0, 1)
    # the rest is over the strided sample, as without the NaN (it is not in the sample)
    y = (x * 2.0).ravel()
    samp = y[::(y.size // sample) | 1]
    assert np.isfinite(samp).all()
    np.testing.assert_allclose([s.out_mean, s.out_std, s.out_min, s.out_max],
                               [samp.mean(), samp.std(), samp.min(), samp.max()],
                               rtol=1e-10)
    # row 0 of the hidden output is NaN (80 entries, some in the sample, some not)
    assert rec.summary(0, "0/LinearBackward0#0").out_nan == D_OUT
    assert rec.summary(0, "0.weight").grad_nan > 0


def test_batched_step_matches_per_array_statistics_in_float32():
    # float32 data go through a float64 batch: sums come out at least as precise
    m, ws = _model()
    m = m.float()
    x = _x().astype(np.float32)
    rec = _record(m, x, sample=None)
    w1, b1 = (p.detach().numpy().astype(np.float64) for p in list(m.parameters())[:2])
    h = np.maximum(x.astype(np.float64) @ w1.T + b1, 0)
    s = rec.summary(0, "1/ReluBackward0#0")
    np.testing.assert_allclose([s.out_mean, s.out_std, s.out_max], [h.mean(), h.std(), h.max()],
                               rtol=1e-5)
    assert s.dtype == "float32"


def test_update_ratio_of_a_big_parameter_is_over_evenly_spread_runs():
    m, ws = _model()
    x = _x()
    opt = dt.optim.SGD(m.parameters(), lr=0.1)
    with Recorder(m, keep=2, optimizer=opt) as rec:
        before = m[0].weight.detach().numpy().copy()
        opt.zero_grad()
        m(dt.tensor(x)).mean().backward()
        opt.step()
        after = m[0].weight.detach().numpy()
    runs, run = 4096 // 64, 64
    gap = before.size // runs
    pick = np.concatenate([np.arange(k * gap, k * gap + run) for k in range(runs)])
    b, a = before.ravel()[pick], after.ravel()[pick]
    np.testing.assert_allclose(rec.history("0.weight", "update_ratio")[0],
                               np.linalg.norm(a - b) / np.linalg.norm(b), rtol=1e-10)
    np.testing.assert_allclose(rec.history("0.weight", "weight_norm")[0], np.linalg.norm(b),
                               rtol=1e-12)
    # a parameter of at most 4096 entries is compared whole
    b2 = ws[1]
    np.testing.assert_allclose(rec.history("0.bias", "update_ratio")[0],
                               np.linalg.norm(m[0].bias.detach().numpy() - b2) /
                               np.linalg.norm(b2), rtol=1e-10)


@pytest.mark.parametrize("bad", [0, -5, 2.5, "all"])
def test_sample_argument_is_checked(bad):
    m, _ = _model()
    with pytest.raises(ValueError, match="sample must be a positive int"):
        Recorder(m, sample=bad)


def test_trainer_callback_passes_sample_on():
    from types import SimpleNamespace

    from dyntorch.train.graph_recorder import GraphRecorder

    m, _ = _model()
    x = _x()
    cb = GraphRecorder(keep=3, sample=None)
    cb.on_fit_start(SimpleNamespace(optimizers=[]), m)
    try:
        m(dt.tensor(x)).mean().backward()
    finally:
        cb.on_fit_end(None, m)
    assert cb.recorder.sample is None and cb.recorder.steps == [0]
    h = np.maximum(x @ _model()[1][0].T + _model()[1][1], 0)
    np.testing.assert_allclose(cb.recorder.summary(0, "1/ReluBackward0#0").out_max, h.max(),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="sample must be"):
        GraphRecorder(sample=0).on_fit_start(SimpleNamespace(optimizers=[]), m)


@pytest.mark.parametrize("sample", [None, 256, 4096])
@pytest.mark.parametrize("brk", [None, "nonfinite", "exploding", lambda s: False])
def test_every_break_mode_gives_the_same_exact_numbers(sample, brk):
    # breaks read gradient statistics at their node (not batched): same values either way
    m, ws = _model()
    x = _x()
    ref = _by_hand(x, *ws)
    rec = _record(m, x, sample=sample, break_when=brk)
    s = rec.summary(0, "1/ReluBackward0#0")
    np.testing.assert_allclose(s.grad_norm, np.linalg.norm(ref["g_h"]), rtol=1e-10)
    b = rec.summary(0, "0.bias")
    np.testing.assert_allclose([b.grad_norm, b.grad_max],
                               [np.linalg.norm(ref["g_pre"].sum(0)),
                                abs(ref["g_pre"].sum(0)).max()], rtol=1e-10)
    g_h = ref["g_h"] if sample is None or ref["g_h"].size <= 2 * sample else \
        _sample(ref["g_h"], sample)
    np.testing.assert_allclose(s.grad_max, abs(g_h).max(), rtol=1e-12)
