"""relu's backward at NaN outputs and infinite gradients, as torch's threshold_backward.

A NaN output passes its gradient on; an infinite gradient at a zeroed entry gives 0, not NaN.
Both sizes of the NumPy path (``where`` below 2048 elements, a bit mask above), float32 and
float64, first and second order, and through ``nn.ReLU`` and ``F.relu``.
"""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch


def _case(n, dtype, rng):
    x = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    x[:4] = [np.nan, -1.0, 0.0, 2.0]
    g[:4] = [3.0, np.inf, -np.inf, np.nan]
    x[4:8] = [-0.5, 1.5, np.nan, -0.0]
    g[4:8] = [np.nan, np.inf, -np.inf, 7.0]
    return x, g


@pytest.mark.parametrize("n", [16, 3000])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("how", ["method", "functional", "module"])
def test_relu_backward_matches_torch_at_nan_and_inf(torch, device, n, dtype, how, rng):
    x, g = _case(n, dtype, rng)
    call = {"method": lambda m, t: t.relu(), "functional": lambda m, t: m.nn.functional.relu(t),
            "module": lambda m, t: m.nn.ReLU()(t)}[how]
    grads = []
    for m in (dyntorch, torch):
        t = (m.tensor(x, device=device) if m is dyntorch else m.tensor(x)).requires_grad_(True)
        out = call(m, t)
        gt = m.tensor(g, device=device) if m is dyntorch else m.tensor(g)
        out.backward(gt)
        got = t.grad.cpu().numpy() if m is dyntorch else t.grad.numpy()
        grads.append(np.array(got))
    ours, theirs = grads
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)  # NaN where torch has NaN, exactly
    assert ours[0] == 3.0 and ours[2] == 0.0 and ours[1] == 0.0  # passed, and no inf * 0


def test_relu_double_backward_keeps_the_rule(torch, rng):
    x, g = _case(16, np.float64, rng)
    res = []
    for m in (dyntorch, torch):
        t = m.tensor(x, requires_grad=True)
        gt = m.tensor(g, requires_grad=True)
        (gx,) = m.autograd.grad(t.relu(), t, gt, create_graph=True)
        (gg,) = m.autograd.grad(gx.nan_to_num(0.0, 0.0, 0.0).sum(), gt)
        res.append((np.array(gx.detach().numpy()), np.array(gg.numpy())))
    np.testing.assert_array_equal(res[0][0], res[1][0])
    np.testing.assert_array_equal(res[0][1], res[1][1])


def test_relu_gradient_of_finite_values_still_matches_finite_differences(rng):
    x = rng.standard_normal((40, 60))  # 2400 elements: the bit-mask path
    x[np.abs(x) < 1e-3] = 0.5  # away from the kink
    t = dyntorch.tensor(x, requires_grad=True)
    g = rng.standard_normal(x.shape)
    t.relu().backward(dyntorch.tensor(g))
    eps = 1e-6
    fd = (np.maximum(x + eps, 0) - np.maximum(x - eps, 0)) / (2 * eps) * g
    np.testing.assert_allclose(t.grad.numpy(), fd, rtol=1e-6, atol=1e-9)
