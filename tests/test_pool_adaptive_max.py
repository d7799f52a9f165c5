"""Adaptive max pooling (F.adaptive_max_pool1d/2d, nn.AdaptiveMaxPool1d/2d) against torch 2.13:
values, indices and gradients, with overlapping bins, output larger than input, None sizes,
NaN, ties and unbatched input."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch

CASES_2D = [((2, 3, 7, 5), (3, 2)), ((3, 8, 8), 4), ((1, 2, 5, 5), (1, 1)),
            ((2, 2, 6, 7), (None, 3)), ((1, 1, 4, 4), (5, 6))]


def _run(m, x, fn):
    t = m.tensor(x, requires_grad=True)
    v, i = fn(m, t)
    v.backward(m.tensor(np.arange(v.numel(), dtype=np.float64).reshape(tuple(v.shape))))
    return v.detach().numpy(), i.numpy(), t.grad.numpy()


@pytest.mark.parametrize("shape,size", CASES_2D)
def test_adaptive_max_pool2d_matches_torch(torch, shape, size, rng):
    x = np.round(rng.standard_normal(shape), 1)  # rounded: ties inside bins
    x.flat[3] = np.nan
    fn = lambda m, t: m.nn.functional.adaptive_max_pool2d(t, size, return_indices=True)  # noqa: E731
    for ours, theirs in zip(_run(dyntorch, x, fn), _run(torch, x, fn)):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, equal_nan=True)


@pytest.mark.parametrize("shape,size", [((2, 3, 10), 4), ((3, 7), 3), ((1, 2, 5), 8)])
def test_adaptive_max_pool1d_module_and_top_level(torch, shape, size, rng):
    x = rng.standard_normal(shape)
    fn = lambda m, t: m.nn.AdaptiveMaxPool1d(size, return_indices=True)(t)  # noqa: E731
    for ours, theirs in zip(_run(dyntorch, x, fn), _run(torch, x, fn)):
        np.testing.assert_allclose(ours, theirs)
    v, i = dyntorch.adaptive_max_pool1d(dyntorch.tensor(x), size)  # torch's: always a pair
    assert tuple(v.shape) == tuple(i.shape)
    out = dyntorch.nn.AdaptiveMaxPool2d((2, 3))(dyntorch.tensor(rng.standard_normal((1, 4, 4))))
    assert tuple(out.shape) == (1, 2, 3) and out.grad_fn is None


def test_bad_input_names_the_function():
    with pytest.raises(RuntimeError, match=r"adaptive_max_pool2d\(\): Expected 3D or 4D"):
        dyntorch.nn.functional.adaptive_max_pool2d(dyntorch.ones(4, 4), 2)
    with pytest.raises(RuntimeError, match="output_size"):
        dyntorch.nn.functional.adaptive_max_pool2d(dyntorch.ones(1, 4, 4), (0, 2))
