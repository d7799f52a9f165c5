"""Optimizer trajectories against torch.optim in float64, option by option."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch
from dyntorch import optim

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,), ()]
STEPS = 7

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, weight_decay=0.1, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.2, weight_decay=0.1, maximize=True)),
    ("SGD", dict(lr=0.05, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, maximize=True, weight_decay=0.05)),
    ("Adam", dict(lr=0.01, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, maximize=True, betas=(0.5, 0.7))),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.8)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.7, weight_decay=0.05, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3)),
    ("Adagrad", dict(lr=0.1, eps=1e-4, maximize=True)),
]


def _pair(rng):
    inits = [rng.standard_normal(s) for s in SHAPES]
    ours = [dyntorch.tensor(a.copy(), requires_grad=True) for a in inits]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in inits]
    return ours, theirs


def _run(name, kw, ours, theirs, grads):
    o = getattr(optim, name)(ours, **kw)
    t = getattr(torch.optim, name)(theirs, **kw)
    for step_grads in grads:
        for p, q, g in zip(ours, theirs, step_grads):
            p.grad = dyntorch.tensor(g.copy())
            q.grad = torch.tensor(g.copy())
        o.step()
        t.step()
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-9,
                                       atol=1e-12)
    return o, t


@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_trajectory_matches_torch(name, kw):
    rng = np.random.default_rng(1)
    ours, theirs = _pair(rng)
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]
    o, t = _run(name, kw, ours, theirs, grads)
    # the state has torch's layout and values
    osd, tsd = o.state_dict(), t.state_dict()
    assert sorted(osd["state"]) == sorted(tsd["state"])
    for k, st in tsd["state"].items():
        assert sorted(osd["state"][k]) == sorted(st)
        for name_, v in st.items():
            ov = osd["state"][k][name_]
            if v is None:
                assert ov is None
                continue
            np.testing.assert_allclose(np.asarray(ov), v.detach().numpy(), rtol=1e-9, atol=1e-12)
    assert [sorted(g) for g in osd["param_groups"]] == [sorted(g) for g in tsd["param_groups"]]


def test_params_without_grad_are_skipped_and_groups_have_own_options():
    rng = np.random.default_rng(2)
    ours, theirs = _pair(rng)
    o = optim.SGD([{"params": ours[:1], "lr": 0.5}, {"params": ours[1:]}], lr=0.1, momentum=0.9)
    t = torch.optim.SGD([{"params": theirs[:1], "lr": 0.5}, {"params": theirs[1:]}], lr=0.1,
                        momentum=0.9)
    for _ in range(3):
        g = rng.standard_normal(SHAPES[0])
        ours[0].grad = dyntorch.tensor(g)
        theirs[0].grad = torch.tensor(g)
        o.step()
        t.step()
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12)
    assert len(o.state) == len(t.state) == 1


def test_closure_with_real_backward_matches_torch():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 3))
    x = dyntorch.tensor(a.copy(), requires_grad=True)
    y = torch.tensor(a.copy(), requires_grad=True)
    o = optim.Adam([x], lr=0.05)
    t = torch.optim.Adam([y], lr=0.05)

    def c1():
        o.zero_grad()
        loss = ((x * x - 1.0) ** 2).sum()
        loss.backward()
        return loss

    def c2():
        t.zero_grad()
        loss = ((y * y - 1.0) ** 2).sum()
        loss.backward()
        return loss

    for _ in range(5):
        l1, l2 = o.step(c1), t.step(c2)
        assert abs(l1.item() - l2.item()) < 1e-10
    np.testing.assert_allclose(x.detach().numpy(), y.detach().numpy(), rtol=1e-10)


def test_step_is_in_place_no_graph_and_bumps_version():
    x = dyntorch.tensor([1.0, 2.0], requires_grad=True)
    data_before = x._data
    v0 = x._version
    o = optim.SGD([x], lr=0.1, momentum=0.9)
    x.grad = dyntorch.tensor([1.0, 1.0])
    o.step()
    assert x._data is data_before
    assert x.grad_fn is None and x.is_leaf
    assert x._version > v0


def test_zero_grad():
    x = dyntorch.tensor([1.0, 2.0], requires_grad=True)
    o = optim.SGD([x], lr=0.1)
    x.grad = dyntorch.tensor([3.0, 4.0])
    g = x.grad
    o.zero_grad(set_to_none=False)
    assert x.grad is g and g.tolist() == [0.0, 0.0]
    o.zero_grad()
    assert x.grad is None


def test_errors():
    x = dyntorch.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.Adam([x], lr=-1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([x * 2], lr=0.1)
    with pytest.raises(ValueError, match="more than one"):
        optim.SGD([{"params": [x]}, {"params": [x]}], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([x], lr=0.1, nesterov=True)


@pytest.mark.cuda
@pytest.mark.parametrize("name,kw", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_cuda_matches_cpu(name, kw):
    """The fused CuPy kernels (SGD, Adam/AdamW) and the xp paths follow the CPU trajectory."""
    rng = np.random.default_rng(4)
    inits = [rng.standard_normal(s) for s in SHAPES]
    cpu = [dyntorch.tensor(a.copy(), requires_grad=True) for a in inits]
    gpu = [dyntorch.tensor(a.copy(), device="cuda", requires_grad=True) for a in inits]
    oc, og = getattr(optim, name)(cpu, **kw), getattr(optim, name)(gpu, **kw)
    for _ in range(STEPS):
        for p, q, s in zip(cpu, gpu, SHAPES):
            g = rng.standard_normal(s)
            p.grad = dyntorch.tensor(g)
            q.grad = dyntorch.tensor(g, device="cuda")
        oc.step()
        og.step()
    for p, q in zip(cpu, gpu):
        np.testing.assert_allclose(q.detach().cpu().numpy(), p.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
