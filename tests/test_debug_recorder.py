"""debug.Recorder: statistics across training steps, ring buffer, conditional breaks."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import dyntorch as dt
from dyntorch.autograd import engine as E
from dyntorch.autograd import functional_api as F
from dyntorch.debug import BackwardStepper, BreakpointHit, Recorder


def _mlp(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((5, 3))
    b1 = rng.standard_normal(5)
    w2 = rng.standard_normal((1, 5))
    b2 = rng.standard_normal(1)
    m = dt.nn.Sequential(dt.nn.Linear(3, 5), dt.nn.Tanh(), dt.nn.Linear(5, 1))
    m = m.double() if dtype == np.float64 else m
    with dt.no_grad():
        for p, v in zip(m.parameters(), (w1, b1, w2, b2)):
            p.copy_(dt.tensor(v.astype(dtype)))
    return m, (w1, b1, w2, b2)


def _data(seed=1, n=8):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3)), rng.standard_normal((n, 1))


def test_history_equals_gradients_by_hand_and_torch():
    m, (w1, b1, w2, b2) = _mlp()
    x, y = _data()
    opt = dt.optim.SGD(m.parameters(), lr=0.05)
    with Recorder(m, keep=10, optimizer=opt) as rec:
        xs, ws = [], []
        for _ in range(4):
            ws.append([p.detach().numpy().copy() for p in m.parameters()])
            opt.zero_grad()
            loss = ((m(dt.tensor(x)) - dt.tensor(y)) ** 2).mean()
            loss.backward()
            opt.step()
            xs.append(float(loss))
    assert rec.steps == [0, 1, 2, 3]
    np.testing.assert_allclose(rec.history("loss"), xs)
    for k, (W1, B1, W2, B2) in enumerate(ws):
        # by hand, float64
        h = np.tanh(x @ W1.T + B1)
        out = h @ W2.T + B2
        g_out = 2 * (out - y) / out.size
        g_w2 = g_out.T @ h
        g_h = g_out @ W2
        g_pre = g_h * (1 - h ** 2)
        g_w1 = g_pre.T @ x
        np.testing.assert_allclose(rec.history("2.weight")[k], np.linalg.norm(g_w2), rtol=1e-10)
        np.testing.assert_allclose(rec.history("0.weight")[k], np.linalg.norm(g_w1), rtol=1e-10)
        np.testing.assert_allclose(rec.history("0.weight", "grad_max")[k], abs(g_w1).max(),
                                   rtol=1e-10)
        np.testing.assert_allclose(rec.history("2/LinearBackward0#0")[k], np.linalg.norm(g_out),
                                   rtol=1e-10)
        np.testing.assert_allclose(rec.history("1/TanhBackward0#0", "out_mean")[k], h.mean(),
                                   rtol=1e-10)
        np.testing.assert_allclose(rec.history("1/TanhBackward0#0", "out_std")[k], h.std(),
                                   rtol=1e-10)
        np.testing.assert_allclose(rec.history("1/TanhBackward0#0", "out_saturated")[k],
                                   (abs(h) > 0.99).mean())
        # SGD: the update is lr * g, so the ratio is lr * |g| / |w|
        np.testing.assert_allclose(rec.history("0.weight", "update_ratio")[k],
                                   0.05 * np.linalg.norm(g_w1) / np.linalg.norm(W1), rtol=1e-8)
    # and against torch on the first step
    W1, B1, W2, B2 = (torch.tensor(a, requires_grad=True) for a in ws[0])
    tl = ((torch.tanh(torch.tensor(x) @ W1.T + B1) @ W2.T + B2 - torch.tensor(y)) ** 2).mean()
    tl.backward()
    np.testing.assert_allclose(rec.history("0.bias")[0], B1.grad.norm().item(), rtol=1e-10)
    assert rec.closed and rec._obs not in E.observers and rec not in F.backward_observers


def test_ring_buffer_every_and_at_document():
    m, _ = _mlp()
    x, y = _data()
    rec = Recorder(m, keep=3, every=2)
    try:
        for _ in range(9):
            m.zero_grad()
            ((m(dt.tensor(x)) - dt.tensor(y)) ** 2).mean().backward()
        # autograd.grad outside the model is not a training step
        a = dt.ones(2, requires_grad=True)
        dt.autograd.grad((a * 3).sum(), a)
    finally:
        rec.close()
    assert rec.steps == [4, 6, 8]
    assert rec.history("0.weight").shape == (3,)
    doc = rec.at(6)
    json.dumps(doc, allow_nan=False)
    assert doc["schema"] == "dyntorch.graph" and doc["status"]["step"] == 6
    ids = {n["id"] for n in doc["nodes"]}
    assert all(e["src"] in ids and e["dst"] in ids for e in doc["edges"])
    params = {n["param"] for n in doc["nodes"] if n["kind"] == "leaf"}
    assert params == {"0.weight", "0.bias", "2.weight", "2.bias"}
    lin = [n for n in doc["nodes"] if n["key"] == "0/LinearBackward0#0"][0]
    assert lin["grad"]["in"][0]["norm"] == pytest.approx(rec.history(lin["key"])[1])
    assert lin["source"]["text"].startswith("((m(dt.tensor(x))")
    with pytest.raises(KeyError, match="not kept"):
        rec.at(2)
    with pytest.raises(KeyError, match="no parameter or node"):
        rec.history("nope")
    with pytest.raises(KeyError, match="unknown statistic"):
        rec.history("0.weight", "colour")
    with pytest.raises(ValueError, match="break_when"):
        Recorder(m, break_when="sometimes")


def _train_scaled(rec_kw, blow_at, steps=12):
    m, _ = _mlp(dtype=np.float64)
    x, y = _data()
    opt = dt.optim.SGD(m.parameters(), lr=1e-3)
    rec = Recorder(m, **rec_kw)
    seen = []
    try:
        for i in range(steps):
            opt.zero_grad()
            scale = 1e6 if i >= blow_at else 1.0  # the loss scale blows up at step `blow_at`
            loss = ((m(dt.tensor(x)) - dt.tensor(y)) ** 2).mean() * scale
            seen.append(i)
            loss.backward()
            opt.step()
    except BreakpointHit as hit:
        return rec, hit, seen, m, x, y
    finally:
        rec.close()
    return rec, None, seen, m, x, y


def test_exploding_break_fires_where_loss_scale_blows_up_and_not_before():
    rec, hit, seen, m, x, y = _train_scaled({"break_when": "exploding"}, blow_at=8)
    assert hit is not None and hit.step == 8 and seen[-1] == 8
    assert rec.steps == list(range(9))
    assert hit.node.grad_norm > 1e3 * np.median(rec.history(hit.node.key)[:8])
    assert "running median" in str(hit)
    # the stepper is positioned at that node, over that step's whole graph
    s = hit.stepper
    assert isinstance(s, BackwardStepper)
    assert s.current.node.name() == hit.node.op and s.current.node.scope == hit.node.scope
    assert s.run() is None  # finish that backward: the gradients of the scaled loss
    got = [p.grad.numpy().copy() for p in m.parameters()]
    s.close()
    m.zero_grad()
    ((m(dt.tensor(x)) - dt.tensor(y)) ** 2).mean().backward()
    for g, p in zip(got, m.parameters()):
        np.testing.assert_allclose(g, 1e6 * p.grad.numpy(), rtol=1e-9)
    # no break without the blow-up
    _, hit2, seen2, *_ = _train_scaled({"break_when": "exploding"}, blow_at=100)
    assert hit2 is None and len(seen2) == 12


def test_nonfinite_and_callable_breaks():
    m = dt.nn.Sequential(dt.nn.Linear(2, 2))
    with dt.no_grad():
        m[0].weight.copy_(dt.tensor([[1.0, 0.0], [0.0, 1.0]]))
        m[0].bias.zero_()
    rec = Recorder(m, break_when="nonfinite")
    try:
        ok = dt.tensor([[1.0, 2.0]])
        m(ok).log().sum().backward()
        with pytest.raises(BreakpointHit) as ei:
            m(dt.tensor([[0.0, 2.0]])).log().sum().backward()  # log(0) = -inf
    finally:
        rec.close()
    hit = ei.value
    assert hit.step == 1 and hit.node.nonfinite > 0
    # the failing step is kept, with forward statistics of the nodes backward never reached
    assert rec.steps == [0, 1]
    assert rec.history("0/LinearBackward0#0", "out_max")[1] == 2.0
    assert rec.history("0/LinearBackward0#0", "out_zeros")[1] == 0.5
    assert np.isnan(rec.history("0/LinearBackward0#0", "grad_norm")[1])
    assert hit.node.source is not None and hit.node.source[0] == __file__
    hit.stepper.close()
    rec2 = Recorder(m, break_when=lambda s: s.op == "LinearBackward0" and s.grad_norm > 1.0)
    try:
        m(dt.tensor([[1.0, 1.0]])).sum().backward()  # |grad| = sqrt(2) > 1
    except BreakpointHit as e:
        assert e.node.scope == "0" and e.node.grad_norm == pytest.approx(2 ** 0.5)
        e.stepper.close()
    else:
        pytest.fail("callable break did not fire")
    finally:
        rec2.close()


def test_trainer_callback_records_and_breaks():
    from dyntorch.train import Trainer, TrainModule
    from dyntorch.train.callbacks import GraphRecorder
    from dyntorch.utils.data import DataLoader, TensorDataset

    class Reg(TrainModule):
        def __init__(self, blow_at=None):
            super().__init__()
            self.net = dt.nn.Sequential(dt.nn.Linear(3, 4), dt.nn.Tanh(), dt.nn.Linear(4, 1))
            self.blow_at = blow_at

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = ((self.net(x) - y) ** 2).mean()
            if self.blow_at is not None and self.trainer.global_step >= self.blow_at:
                loss = loss * 1e7  # a loss scale gone wrong
            return loss

        def configure_optimizers(self):
            return dt.optim.SGD(self.parameters(), lr=1e-3)

    x, y = _data(n=64)
    loader = DataLoader(TensorDataset(dt.tensor(x).float(), dt.tensor(y).float()),
                        batch_size=8)
    cb = GraphRecorder(keep=50)
    Trainer(max_epochs=2, callbacks=[cb], enable_progress_bar=False, logger=False,
            enable_checkpointing=False).fit(Reg(), loader)
    rec = cb.recorder
    assert rec.steps == list(range(16)) and rec.closed
    assert np.isfinite(rec.history("net.0.weight", "update_ratio")).all()
    cb2 = GraphRecorder(break_when="exploding")
    with pytest.raises(BreakpointHit) as ei:
        Trainer(max_epochs=2, callbacks=[cb2], enable_progress_bar=False, logger=False,
                enable_checkpointing=False).fit(Reg(blow_at=11), loader)
    assert ei.value.step == 11 and cb2.recorder.closed
    ei.value.stepper.close()


def test_held_graph_is_freed_like_a_plain_backward():
    m, _ = _mlp()
    x, y = _data()
    with Recorder(m, break_when=lambda s: False):
        z = m[0](dt.tensor(x))
        # backward(inputs=[z]) runs only the sum node: z's own node keeps what it saved
        z.retain_grad()
        z.sum().backward(inputs=[z])
        g = z.grad
        loss = ((m[2](m[1](z)) - dt.tensor(y)) ** 2).mean()
        loss.backward()  # needs z's node, which the held run must not have freed
        with pytest.raises(RuntimeError, match="second time"):
            loss.backward()  # held until the run ended, then freed as backward() frees
    np.testing.assert_array_equal(g.numpy(), np.ones((8, 5)))
    assert m[0].weight.grad is not None
