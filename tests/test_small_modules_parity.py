"""Small layers ported from torch's list (ZeroPad1d, CircularPad1d/2d, ChannelShuffle):
values, gradients and reprs against torch 2.13."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch

CASES = {
    "ZeroPad1d": (lambda m: m.nn.ZeroPad1d((1, 2)), (2, 3, 5)),
    "ZeroPad1d_int": (lambda m: m.nn.ZeroPad1d(2), (3, 4)),
    "ZeroPad2d": (lambda m: m.nn.ZeroPad2d((1, 0, 2, 1)), (1, 2, 3, 3)),
    "CircularPad1d": (lambda m: m.nn.CircularPad1d((2, 1)), (2, 3, 5)),
    "CircularPad2d": (lambda m: m.nn.CircularPad2d((1, 2, 2, 1)), (1, 2, 4, 5)),
    "CircularPad2d_int": (lambda m: m.nn.CircularPad2d(1), (2, 3, 3)),
    "ChannelShuffle": (lambda m: m.nn.ChannelShuffle(3), (2, 6, 2, 3)),
    "channel_shuffle_fn": (lambda m: (lambda t: m.nn.functional.channel_shuffle(t, 2)),
                           (2, 4, 5)),
    "torch.channel_shuffle": (lambda m: (lambda t: m.channel_shuffle(t, 2)), (1, 4, 2, 2)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_layer_matches_torch(torch, name, rng):
    make, shape = CASES[name]
    x = rng.standard_normal(shape)
    res = []
    for m in (dyntorch, torch):
        layer = make(m)
        t = m.tensor(x, requires_grad=True)
        y = layer(t)
        y.backward(m.tensor(np.arange(y.numel(), dtype=np.float64).reshape(tuple(y.shape))))
        res.append((y.detach().numpy(), t.grad.numpy(),
                    repr(layer).split("(", 1)[1] if isinstance(layer, m.nn.Module) else ""))
    np.testing.assert_array_equal(res[0][0], res[1][0])
    np.testing.assert_array_equal(res[0][1], res[1][1])
    assert res[0][2] == res[1][2]


def test_channel_shuffle_refuses_channels_that_do_not_divide():
    with pytest.raises(RuntimeError, match=r"channel_shuffle\(\).*\(5\).*groups \(2\)"):
        dyntorch.nn.ChannelShuffle(2)(dyntorch.ones(1, 5, 2))
