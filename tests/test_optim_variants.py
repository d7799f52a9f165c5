"""Adadelta, Adamax, NAdam, RAdam follow torch 2.13.0's trajectories step by step."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch

reference = pytest.importorskip("torch")

CONFIGS = [
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "weight_decay": 0.1}),
    ("Adadelta", {"maximize": True}),
    ("Adamax", {}),
    ("Adamax", {"lr": 0.05, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("Adamax", {"maximize": True}),
    ("NAdam", {}),
    ("NAdam", {"lr": 0.05, "momentum_decay": 0.01, "weight_decay": 0.1}),
    ("NAdam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("NAdam", {"maximize": True}),
    ("RAdam", {}),
    ("RAdam", {"lr": 0.05, "betas": (0.5, 0.9), "weight_decay": 0.1}),  # both branches
    ("RAdam", {"weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("RAdam", {"maximize": True}),
]


def _trajectory(lib, name, kw, steps=12, dtype="float64"):
    rng = np.random.default_rng(0)
    w0, x0 = rng.standard_normal((3, 4)), rng.standard_normal((5, 4))
    w = lib.tensor(w0, dtype=getattr(lib, dtype), requires_grad=True)
    b = lib.tensor(np.zeros(3), dtype=getattr(lib, dtype), requires_grad=True)
    x = lib.tensor(x0, dtype=getattr(lib, dtype))
    opt = getattr(lib.optim, name)([{"params": [w]}, {"params": [b], "lr": 0.01}], **kw)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((x @ w.T + b).tanh() ** 2).sum()
        loss.backward()
        opt.step()
        out.append(w.detach().numpy().copy())
    return np.stack(out), opt


@pytest.mark.parametrize(("name", "kw"), CONFIGS,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFIGS)])
def test_trajectory_matches_torch(name, kw):
    ours, _ = _trajectory(dyntorch, name, kw)
    ref, _ = _trajectory(reference, name, kw)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["Adadelta", "Adamax", "NAdam", "RAdam"])
def test_state_dict_layout_and_resume(name):
    ours, opt = _trajectory(dyntorch, name, {}, steps=3)
    _, ropt = _trajectory(reference, name, {}, steps=3)
    sd, rsd = opt.state_dict(), ropt.state_dict()
    assert sorted(sd["state"][0]) == sorted(rsd["state"][0])
    assert sorted(sd["param_groups"][0]) == sorted(rsd["param_groups"][0])
    for k, v in rsd["state"][0].items():
        np.testing.assert_allclose(np.asarray(sd["state"][0][k].numpy()), v.numpy(),
                                   rtol=1e-6, err_msg=k)
    # resume: a fresh optimizer loaded from the state continues like the original
    w = dyntorch.tensor(ours[-1], requires_grad=True)
    b = dyntorch.zeros(3, dtype=dyntorch.float64, requires_grad=True)
    opt2 = getattr(dyntorch.optim, name)([{"params": [w]}, {"params": [b], "lr": 0.01}])
    opt2.load_state_dict(sd)
    assert float(opt2.state[w]["step"]) == 3.0


def test_float32_and_invalid_args():
    ours, _ = _trajectory(dyntorch, "NAdam", {}, dtype="float32", steps=5)
    ref, _ = _trajectory(reference, "NAdam", {}, dtype="float32", steps=5)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)
    p = [dyntorch.ones(1, requires_grad=True)]
    for name, kw, msg in [("Adamax", {"lr": -1}, "learning rate"),
                          ("NAdam", {"momentum_decay": -1}, "momentum_decay"),
                          ("RAdam", {"betas": (1.0, 0.9)}, "beta parameter at index 0"),
                          ("Adadelta", {"rho": 1.5}, "rho")]:
        with pytest.raises(ValueError, match=msg):
            getattr(dyntorch.optim, name)(p, **kw)
