"""copy.deepcopy of a model that has been through backward(): the copy is independent."""
import copy

import numpy as np
import torch

import dyntorch
import dyntorch.nn as nn


def _grads(model):
    return [p.grad.numpy().copy() for p in model.parameters()]


def test_deepcopy_after_backward_accumulates_into_the_copy_only():
    dyntorch.manual_seed(0)
    m = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    x = np.random.default_rng(0).standard_normal((5, 3))
    m(dyntorch.tensor(x)).sum().backward()
    before = _grads(m)

    c = copy.deepcopy(m)
    c(dyntorch.tensor(x)).sum().backward()

    for g0, g in zip(before, _grads(m)):
        np.testing.assert_array_equal(g0, g)  # the original is untouched
    # as torch: a copied Parameter starts with no grad, so the copy holds one backward
    tm = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    with torch.no_grad():
        for tp, p in zip(tm.parameters(), m.parameters()):
            tp.copy_(torch.from_numpy(p.detach().numpy()))
    tm(torch.from_numpy(x)).sum().backward()
    tc = copy.deepcopy(tm)
    tc(torch.from_numpy(x)).sum().backward()
    for tp, p in zip(tc.parameters(), c.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)


def test_deepcopy_keeps_public_attributes():
    p = nn.Parameter(dyntorch.ones(2))
    p.tag = "keep me"
    q = copy.deepcopy(p)
    assert q.tag == "keep me" and q is not p and q.requires_grad
