"""Scopes in a model's names (``nn.module.scope_in``, used by the Recorder and
``graph_json(model=)``), and the Recorder's retained graphs, custom Function outputs and
outputs with NaN/Inf, checked against NumPy by hand and torch 2.13 (float64)."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch as dt
from dyntorch.debug import BreakpointHit, Recorder
from dyntorch.viz.graph import graph_json


# ----------------------------------------------------------------------- scope_in
class _Pair(dt.nn.Module):
    """A distillation-style module whose two children are called directly (as outermost
    modules), so that both run under the raw scope "0"."""

    def __init__(self):
        super().__init__()
        dt.manual_seed(0)
        self.student = dt.nn.Sequential(dt.nn.Linear(3, 2))
        self.teacher = dt.nn.Sequential(dt.nn.Linear(3, 2))

    def loss(self, x):
        return ((self.student(x) - self.teacher(x)) ** 2).sum()


def _x(n=4, seed=0):
    return dt.tensor(np.random.default_rng(seed).standard_normal((n, 3)).astype(np.float32))


def _scope_of_linear_fed_by(doc, param):
    ids = {n["id"]: n for n in doc["nodes"]}
    leaf = next(n for n in doc["nodes"] if n["param"] == param)
    dst = next(e["dst"] for e in doc["edges"] if e["src"] == leaf["id"])
    return ids[dst]["scope"]


def test_graph_json_two_children_called_as_outermost_keep_their_own_scopes():
    m = _Pair()
    doc = graph_json(m.loss(_x()), model=m)
    # the student's Linear is not the teacher's: a scope is either the right name or the raw
    # one, never the other child's
    assert _scope_of_linear_fed_by(doc, "student.0.weight") in ("student.0", "0")
    assert _scope_of_linear_fed_by(doc, "teacher.0.weight") in ("teacher.0", "0")


def test_recorder_made_after_the_first_step_names_each_child_right():
    m = _Pair()
    m.loss(_x()).backward()  # the scopes are resolved (and cached) before the recorder
    with Recorder(m) as rec:
        m.loss(_x()).backward()
    keys = set(rec.keys())
    assert not any(k.startswith("teacher.0/") and k.endswith("#1") for k in keys), keys
    assert any(k.startswith(("student.0/", "0/")) for k in keys), keys


def test_wrapper_scopes_match_parameter_names_and_a_shared_module_has_one_name():
    class Wrap(dt.nn.Module):
        def __init__(self):
            super().__init__()
            dt.manual_seed(1)
            self.net = dt.nn.Sequential(dt.nn.Linear(3, 3), dt.nn.Tanh(), dt.nn.Linear(3, 1))
            self.alias = self.net[0]  # the same Linear under a second name

    m = Wrap()
    x = _x(seed=2)
    with Recorder(m) as rec:
        for _ in range(2):
            (m.net(x) ** 2).sum().backward()  # the Trainer's way: net as outermost
    keys = rec.keys()
    assert "net.0/LinearBackward0#0" in keys and "net.2/LinearBackward0#0" in keys
    assert "net.0.weight" in keys and not any(k.startswith("alias") for k in keys)
    doc = graph_json((m.net(x) ** 2).sum(), model=m)
    assert _scope_of_linear_fed_by(doc, "net.0.weight") == "net.0"
    assert _scope_of_linear_fed_by(doc, "net.2.weight") == "net.2"


def test_module_called_twice_gets_two_keys_with_their_own_statistics():
    class Twice(dt.nn.Module):
        def __init__(self):
            super().__init__()
            dt.manual_seed(3)
            self.l = dt.nn.Linear(3, 3)

        def forward(self, x):
            return self.l(self.l(x).tanh())

    m = Twice()
    x = _x(seed=4)
    with Recorder(m, sample=None) as rec:
        (m(x) ** 2).sum().backward()
    w = m.l.weight.detach().numpy().astype(np.float64)
    b = m.l.bias.detach().numpy().astype(np.float64)
    y0 = x.numpy().astype(np.float64) @ w.T + b
    y1 = np.tanh(y0) @ w.T + b
    np.testing.assert_allclose(rec.history("l/LinearBackward0#0", "out_mean"), [y0.mean()],
                               rtol=1e-5)
    np.testing.assert_allclose(rec.history("l/LinearBackward0#1", "out_mean"), [y1.mean()],
                               rtol=1e-5)


# ----------------------------------------------------------------------- the recorder
class _Heads(dt.nn.Module):
    def __init__(self):
        super().__init__()
        dt.manual_seed(0)
        self.trunk = dt.nn.Linear(3, 4)
        self.a = dt.nn.Linear(4, 2)
        self.b = dt.nn.Linear(4, 3)


def test_retain_graph_two_losses_sharing_a_trunk_keep_keys_and_statistics():
    m = _Heads()
    xn = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    with Recorder(m, sample=None) as rec:
        h = m.trunk(dt.tensor(xn)).tanh()
        la = (m.a(h) ** 2).sum()
        lb = (m.b(h) ** 2).sum()
        la.backward(retain_graph=True)
        lb.backward()
    assert rec.error is None and rec.steps == [0, 1]
    w, b = (p.detach().numpy().astype(np.float64) for p in (m.trunk.weight, m.trunk.bias))
    y = xn.astype(np.float64) @ w.T + b
    wb, bb = (p.detach().numpy().astype(np.float64) for p in (m.b.weight, m.b.bias))
    yb = np.tanh(y) @ wb.T + bb
    r0, r1 = (rec._records[i]["nodes"] for i in (0, 1))
    trunk0 = [k for k, r in r0.items() if r.shape == (5, 4) and "Linear" in k]
    trunk1 = [k for k, r in r1.items() if r.shape == (5, 4) and "Linear" in k]
    assert trunk0 == trunk1, (trunk0, trunk1)  # the trunk keeps its key across the two
    (kb,) = [k for k, r in r1.items() if r.shape == (5, 3) and "Linear" in k]
    assert kb not in r0 or r0[kb].shape == (5, 3)  # no key names two different nodes
    np.testing.assert_allclose(r1[trunk1[0]].stats["out_mean"], y.mean(), rtol=1e-5)
    # b's head ran in the same (recorded) forward: its output statistics were taken
    np.testing.assert_allclose(r1[kb].stats.get("out_mean", np.nan), yb.mean(), rtol=1e-5)


class _Split(dt.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2, x.sum()

    @staticmethod
    def backward(ctx, g0, g1):
        return g0 * 2 + g1


def test_function_returning_a_tuple_records_its_first_output():
    class M(dt.nn.Module):
        def __init__(self):
            super().__init__()
            dt.manual_seed(5)
            self.l = dt.nn.Linear(3, 2)

        def forward(self, x):
            a, s = _Split.apply(self.l(x))
            return (a * a).sum() + s

    m = M()
    x = _x(seed=6)
    with Recorder(m, sample=None) as rec:
        m(x).backward()
    y = x.numpy().astype(np.float64) @ m.l.weight.detach().numpy().T.astype(np.float64) + \
        m.l.bias.detach().numpy()
    np.testing.assert_allclose(rec.history("/_SplitBackward#0", "out_mean"), [2 * y.mean()],
                               rtol=1e-5)
    # gradient into the Function's node: d/d(a) of sum(a*a) = 2a
    np.testing.assert_allclose(rec.history("/_SplitBackward#0", "grad_norm"),
                               [np.linalg.norm(4 * y)], rtol=1e-5)


class _Masked(dt.nn.Module):
    def __init__(self, mask):
        super().__init__()
        dt.manual_seed(7)
        self.l = dt.nn.Linear(3, 4)
        self.mask = dt.tensor(mask)

    def forward(self, x):
        return self.l(x) * self.mask


def _masked_case(sample):
    xn = np.random.default_rng(8).standard_normal((300, 3)).astype(np.float32)
    mask = np.ones((300, 4), np.float32)
    mask[0, 1] = np.nan  # flat 1: outside a stride-19 sample (1200 // 64 | 1)
    mask[5, 2] = np.inf  # flat 22: outside too
    mask[7, 0] = 0.0
    m = _Masked(mask)
    with Recorder(m, sample=sample) as rec:
        m(dt.tensor(xn)).sum().backward()
    w = m.l.weight.detach().numpy().astype(np.float64)
    full = (xn.astype(np.float64) @ w.T + m.l.bias.detach().numpy()) * mask
    return rec, full


def test_nan_inf_outside_the_sample_are_counted_exactly_and_sample_none_stays_exact():
    assert 1 % 19 and 22 % 19  # the positions really are outside the strided sample
    rec, full = _masked_case(64)
    assert rec.history("/MulBackward0#0", "out_nan")[0] == 1
    assert rec.history("/MulBackward0#0", "out_inf")[0] == 1
    rec, full = _masked_case(None)
    fin = full[np.isfinite(full)]
    for stat, want in (("out_mean", fin.mean()), ("out_std", fin.std()),
                       ("out_min", fin.min()), ("out_max", fin.max()),
                       ("out_zeros", np.count_nonzero(full == 0) / full.size)):
        np.testing.assert_allclose(rec.history("/MulBackward0#0", stat)[0], want, rtol=1e-5,
                                   err_msg=stat)


def test_break_nonfinite_fires_on_nan_outside_the_sample():
    xn = np.random.default_rng(9).standard_normal((300, 3)).astype(np.float32)
    mask = np.ones((300, 4), np.float32)
    mask[0, 1] = np.nan
    m = _Masked(mask)
    with Recorder(m, break_when="nonfinite", sample=64) as rec:
        with pytest.raises(BreakpointHit) as hit:
            (m(dt.tensor(xn)) ** 2).sum().backward()
    assert hit.value.step == 0 and hit.value.node.nonfinite >= 1
    assert rec.steps == [0]


def test_all_nan_output_reports_zero_zeros_not_missing():
    mask = np.full((300, 4), np.nan, np.float32)
    m = _Masked(mask)
    xn = np.random.default_rng(10).standard_normal((300, 3)).astype(np.float32)
    with Recorder(m, sample=64) as rec:
        (m(dt.tensor(xn)) * 0.0).sum().backward()
    assert rec.history("/MulBackward0#0", "out_nan")[0] == 1200
    assert rec.history("/MulBackward0#0", "out_inf")[0] == 0
    assert rec.history("/MulBackward0#0", "out_zeros")[0] == 0.0  # no entry is zero
