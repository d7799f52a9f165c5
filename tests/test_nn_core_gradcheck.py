"""Finite-difference checks (first and second order) of the fused nn ops, float64."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch as dt
from dyntorch.autograd.gradcheck import gradcheck, gradgradcheck
from dyntorch.nn import functional as F


def _t(rng, *shape, grad=True):
    return dt.tensor(rng.standard_normal(shape), requires_grad=grad)


CASES = {
    "layer_norm": lambda r: (lambda x, w, b: F.layer_norm(x, (4,), w, b),
                             (_t(r, 3, 4), _t(r, 4), _t(r, 4))),
    "group_norm": lambda r: (lambda x, w, b: F.group_norm(x, 2, w, b),
                             (_t(r, 2, 4, 3), _t(r, 4), _t(r, 4))),
    "batch_norm_train": lambda r: (lambda x, w, b: F.batch_norm(x, None, None, w, b, True),
                                   (_t(r, 5, 3), _t(r, 3), _t(r, 3))),
    "batch_norm_eval": lambda r: (
        lambda x, w, b: F.batch_norm(x, dt.tensor([0.1, -0.2, 0.3]), dt.tensor([1.0, 2.0, 0.5]),
                                     w, b, False), (_t(r, 5, 3), _t(r, 3), _t(r, 3))),
    "cross_entropy": lambda r: (
        lambda x: F.cross_entropy(x, dt.tensor([0, 2, 1]), weight=dt.tensor([1.0, 2.0, 0.5]),
                                  label_smoothing=0.2), (_t(r, 3, 3),)),
    "cross_entropy_probs": lambda r: (
        lambda x, p: F.cross_entropy(x, p.softmax(1), label_smoothing=0.1),
        (_t(r, 3, 4), _t(r, 3, 4))),
    "nll": lambda r: (lambda x: F.nll_loss(x, dt.tensor([0, 2, 1]), reduction="sum"),
                      (_t(r, 3, 3),)),
    "bce_logits": lambda r: (
        lambda x, y, pw: F.binary_cross_entropy_with_logits(x, y.sigmoid(), pos_weight=pw),
        (_t(r, 3, 2), _t(r, 3, 2), _t(r, 2))),
    "bce": lambda r: (lambda x, y: F.binary_cross_entropy(x.sigmoid(), y.sigmoid()),
                      (_t(r, 3, 2), _t(r, 3, 2))),
    "bilinear": lambda r: (F.bilinear, (_t(r, 2, 3), _t(r, 2, 4), _t(r, 2, 3, 4), _t(r, 2))),
    "linear": lambda r: (F.linear, (_t(r, 2, 3, 4), _t(r, 5, 4), _t(r, 5))),
    "activations": lambda r: (
        lambda x: F.gelu(x) + F.gelu(x, approximate="tanh") + F.silu(x) + F.mish(x) +
        F.softplus(x, 2.0, 1.5) + F.logsigmoid(x) + F.elu(x, 0.7) + F.selu(x) + F.celu(x) +
        F.softmax(x, 1) + F.log_softmax(x, 0) + F.leaky_relu(x, 0.1) + F.softsign(x),
        (_t(r, 3, 4),)),
    # (padding_idx deliberately drops a true gradient, so it is checked against torch instead)
    "embedding": lambda r: (lambda w: F.embedding(dt.tensor([[0, 2], [2, 1]]), w),
                            (_t(r, 3, 2),)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck(name):
    rng = np.random.default_rng(7)
    fn, inputs = CASES[name](rng)
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-5)
    if name not in ("embedding", "nll", "linear"):  # those are linear in their inputs
        assert gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5)
