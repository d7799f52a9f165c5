"""How debug.Recorder watches the engine: light observers (``on_node`` with raw arrays, no
Step), the dispatch hook only for recorded steps, and node keys reused from step to step."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import dyntorch as dt
from dyntorch import _dispatch as D
from dyntorch.autograd import engine as E
from dyntorch.debug import Recorder


def _graph():
    """A graph with fan-out (x used three times, h twice) and x * x."""
    rng = np.random.default_rng(0)
    xv, wv = rng.standard_normal((3, 4)), rng.standard_normal((4, 4))
    x = dt.tensor(xv, requires_grad=True)
    w = dt.tensor(wv, requires_grad=True)
    h = x @ w
    loss = ((h.tanh() * h).sum() + (x * x).mean() + (h @ w.T).exp().mean())
    return loss, (x, w), (xv, wv)


class _Light:
    def __init__(self):
        self.seen = []
        self.on_node = lambda node, grads: self.seen.append(
            (node, [None if g is None else np.array(g, copy=True) for g in grads]))


def test_light_observer_sees_every_node_with_the_gradients_a_step_observer_sees():
    loss, _, _ = _graph()
    steps = []
    E.observers.append(steps.append)
    try:
        loss.backward()
    finally:
        E.observers.remove(steps.append)
    want = [(s.node.name(), [None if g is None else g.numpy() for g in s.grad_outputs])
            for s in steps]
    loss, (x, w), (xv, wv) = _graph()
    light = _Light()
    E.observers.append(light)
    try:
        loss.backward()
    finally:
        E.observers.remove(light)
    got = [(n.name(), gs) for n, gs in light.seen]
    assert [n for n, _ in got] == [n for n, _ in want]
    for (_, a), (_, b) in zip(got, want):
        assert all(g.__class__ is np.ndarray for g in a if g is not None)
        for ga, gb in zip(a, b):
            np.testing.assert_array_equal(ga, gb)
    # the backward itself is unchanged (against torch, float64)
    tx = torch.tensor(xv, requires_grad=True)
    tw = torch.tensor(wv, requires_grad=True)
    th = tx @ tw
    ((th.tanh() * th).sum() + (tx * tx).mean() + (th @ tw.T).exp().mean()).backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-12)


def test_a_light_observer_alone_builds_no_step(monkeypatch):
    made = []

    class Counted(E.Step):
        __slots__ = ()

        def __init__(self, *a):
            made.append(1)
            super().__init__(*a)

    monkeypatch.setattr(E, "Step", Counted)
    light = _Light()
    E.observers.append(light)
    try:
        _graph()[0].backward()
        assert made == [] and len(light.seen) > 8
        steps = []  # a Step observer beside it: Steps again, and both see every node once
        E.observers.append(steps.append)
        try:
            light.seen.clear()
            _graph()[0].backward()
        finally:
            E.observers.remove(steps.append)
    finally:
        E.observers.remove(light)
    assert len(made) == len(steps) == len(light.seen)
    assert [s.node for s in steps] == [n for n, _ in light.seen]


def _mlp():
    dt.manual_seed(0)
    return dt.nn.Sequential(dt.nn.Linear(3, 4), dt.nn.Tanh(), dt.nn.Linear(4, 1)).double()


def test_dispatch_hook_only_while_a_recorded_step_runs_forward():
    m = _mlp()
    x = dt.tensor(np.random.default_rng(1).standard_normal((5, 3)))
    n0 = len(D._hooks)
    hooked = []
    with Recorder(m, every=3) as rec:
        for _ in range(7):
            hooked.append(len(D._hooks) - n0)  # before this step's forward
            m.zero_grad()
            m(x).sum().backward()
    assert hooked == [1, 0, 0, 1, 0, 0, 1]
    assert rec.steps == [0, 3, 6] and len(D._hooks) == n0
    # the recorded steps' statistics are complete (forward and gradient)
    assert np.isfinite(rec.history("1/TanhBackward0#0", "out_mean")).all()
    assert np.isfinite(rec.history("0.weight")).all()


class _Branchy(dt.nn.Module):
    """Runs an extra op on some steps: the keys after it must follow the changed program."""

    def __init__(self):
        super().__init__()
        self.a = dt.nn.Linear(3, 4)
        self.b = dt.nn.Linear(4, 1)
        self.extra = False

    def forward(self, x):
        h = self.a(x).tanh()
        if self.extra:
            h = h * 2.0
        return self.b(h.tanh())


def _keys_of(model, x, extra):
    model.extra = extra
    with Recorder(model) as rec:
        model(x).sum().backward()
    return rec.keys(), {k: rec.history(k, "out_mean")[0] for k in rec.keys()
                        if "#" in k}


def test_keys_reused_across_steps_equal_fresh_keys_when_the_program_changes():
    m = _Branchy().double()
    x = dt.tensor(np.random.default_rng(2).standard_normal((5, 3)))
    fresh = {e: _keys_of(m, x, e) for e in (False, True)}
    assert fresh[True][0] != fresh[False][0]
    pattern = [False, True, True, False, True]
    with Recorder(m) as rec:
        for e in pattern:
            m.extra = e
            m.zero_grad()
            m(x).sum().backward()
    for step, e in enumerate(pattern):
        keys, means = fresh[e]
        assert {k for k in rec.keys() if not np.isnan(rec.history(k, "grad_norm")[step])} \
            == set(keys)
        for k, v in means.items():
            assert rec.history(k, "out_mean")[step] == pytest.approx(v, rel=1e-12)


def test_recorder_under_create_graph_records_the_accumulated_gradient():
    m = _mlp()
    x = dt.tensor(np.random.default_rng(3).standard_normal((5, 3)), requires_grad=True)
    with Recorder(m) as rec:
        y = m(x).sum()
        (g,) = dt.autograd.grad(y, x, create_graph=True)
        (y + (g * g).sum()).backward(create_graph=True)
    np.testing.assert_allclose(rec.history("0.weight")[0],
                               np.linalg.norm(m[0].weight.grad.detach().numpy()), rtol=1e-12)
