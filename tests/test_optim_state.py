"""Optimizer state_dict round trips: a fresh optimizer continues identically."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch
from dyntorch import optim

torch = pytest.importorskip("torch")

KINDS = [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
]


def _grads(rng, n):
    return [[rng.standard_normal((3, 2)), rng.standard_normal(4)] for _ in range(n)]


def _apply(opt, params, grads):
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = dyntorch.tensor(g)
        opt.step()


@pytest.mark.parametrize("name,kw", KINDS, ids=[k for k, _ in KINDS])
def test_round_trip_continues_identically(name, kw):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    g1, g2 = _grads(rng, 3), _grads(rng, 4)
    a = [dyntorch.tensor(x.copy(), requires_grad=True) for x in init]
    oa = getattr(optim, name)(a, **kw)
    _apply(oa, a, g1)
    sd = oa.state_dict()
    # a second model at the same point, with a fresh optimizer loaded from the state
    b = [dyntorch.tensor(p.detach().numpy().copy(), requires_grad=True) for p in a]
    ob = getattr(optim, name)(b, lr=123.0)
    ob.load_state_dict(sd)
    assert ob.param_groups[0]["lr"] == kw["lr"]
    _apply(oa, a, g2)
    _apply(ob, b, g2)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    # loading copies: stepping b did not touch a's state
    assert ob.state[b[0]] is not oa.state[a[0]]


@pytest.mark.parametrize("name,kw", KINDS, ids=[k for k, _ in KINDS])
def test_torch_state_dict_loads_and_continues_like_torch(name, kw):
    rng = np.random.default_rng(5)
    init = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    g1, g2 = _grads(rng, 3), _grads(rng, 3)
    tp = [torch.tensor(x.copy(), requires_grad=True) for x in init]
    to = getattr(torch.optim, name)(tp, **kw)
    for gs in g1:
        for p, g in zip(tp, gs):
            p.grad = torch.tensor(g)
        to.step()
    tsd = to.state_dict()
    conv = {"state": {k: {n: dyntorch.tensor(v.numpy()) if isinstance(v, torch.Tensor) else v
                          for n, v in s.items()} for k, s in tsd["state"].items()},
            "param_groups": tsd["param_groups"]}
    dp = [dyntorch.tensor(p.detach().numpy().copy(), requires_grad=True) for p in tp]
    do = getattr(optim, name)(dp, lr=1.0)
    do.load_state_dict(conv)
    for gs in g2:
        for p, q, g in zip(tp, dp, gs):
            p.grad = torch.tensor(g)
            q.grad = dyntorch.tensor(g)
        to.step()
        do.step()
    for p, q in zip(tp, dp):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-10)


def test_load_state_dict_mismatch_errors():
    x = dyntorch.tensor([1.0], requires_grad=True)
    y = dyntorch.tensor([1.0], requires_grad=True)
    o = optim.SGD([x, y], lr=0.1)
    sd = o.state_dict()
    with pytest.raises(ValueError, match="doesn't match"):
        optim.SGD([x], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="parameter groups"):
        optim.SGD([{"params": [x]}, {"params": [y]}], lr=0.1).load_state_dict(sd)


def test_state_follows_param_dtype():
    x = dyntorch.tensor(np.ones(3, np.float32), requires_grad=True)
    o = optim.Adam([x], lr=0.1)
    x.grad = dyntorch.tensor(np.ones(3, np.float32))
    o.step()
    sd = o.state_dict()
    sd["state"][0]["exp_avg"] = dyntorch.tensor(np.ones(3, np.float64))
    o.load_state_dict(sd)
    assert o.state[x]["exp_avg"].dtype == dyntorch.float32
    assert o.state[x]["step"].dtype == dyntorch.float32
