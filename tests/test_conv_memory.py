"""Convolutions sliced into output tiles keep their values, gradients and a bounded peak.

``dyntorch.ops.conv.SCRATCH_BYTES`` bounds the im2col columns of one image; shapes here are
chosen so that a small budget forces row bands and, for the widest ones, runs of columns within
one row (the path 1-D convs take). Values and gradients are checked against torch in float64.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import dyntorch
from dyntorch.ops import _conv_cols
from dyntorch.ops import conv as conv_mod


@pytest.fixture
def small_budget(monkeypatch):
    # 3 KiB: a 3-channel 3x3 conv (216 bytes per output position in float64) gets 14
    # positions per tile, fewer than one row of the images below
    monkeypatch.setattr(conv_mod, "SCRATCH_BYTES", 3 << 10)


def _pair(shape, rng, scale=1.0):
    a = rng.standard_normal(shape) * scale
    return dyntorch.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)


def _same_as_torch(y, ty, rng, *pairs) -> None:
    """``y`` equals torch's ``ty``, and after one backward of the same random gradient so do
    the gradients of every (dyntorch, torch) input pair."""
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    gy = rng.standard_normal(ty.shape)
    y.backward(dyntorch.tensor(gy))
    ty.backward(torch.tensor(gy))
    for d, t in pairs:
        np.testing.assert_allclose(d.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


CASES = [  # x shape, w shape, kwargs
    ((2, 3, 9, 11), (4, 3, 3, 3), dict(padding=1)),
    ((2, 3, 10, 13), (4, 3, 3, 3), dict(stride=2, padding=(1, 2))),
    ((1, 4, 12, 9), (6, 2, 3, 2), dict(stride=(2, 1), dilation=(2, 1), groups=2)),
    ((2, 2, 7, 30), (3, 2, 1, 5), dict(padding=(0, 2))),
]


@pytest.mark.parametrize("xs,ws,kw", CASES)
@pytest.mark.parametrize("budget", [3 << 10, 400])
def test_conv2d_tiled_matches_torch(xs, ws, kw, budget, monkeypatch):
    monkeypatch.setattr(conv_mod, "SCRATCH_BYTES", budget)
    rng = np.random.default_rng(0)
    x, tx = _pair(xs, rng)
    w, tw = _pair(ws, rng)
    b, tb = _pair((ws[0],), rng)
    y = dyntorch.nn.functional.conv2d(x, w, b, **kw)
    ty = torch.nn.functional.conv2d(tx, tw, tb, **kw)
    _same_as_torch(y, ty, rng, (x, tx), (w, tw), (b, tb))


def test_tiles_really_slice(small_budget):
    # the setting is honoured: rows band when a row fits, runs of columns when it does not
    per_pos = 3 * 3 * 3 * 8
    assert conv_mod._too_big(3, 3, 3, 9, 11, 8)
    tiles = _conv_cols._tiles(9, 11, per_pos, conv_mod._tile_budget(np))
    assert len(tiles) > 1 and all(r1 - r0 == 1 for r0, r1, _, _ in tiles)
    assert {(c0, c1) for _, _, c0, c1 in tiles} == {(0, 11)}
    tiles = _conv_cols._tiles(4, 30, per_pos, conv_mod._tile_budget(np))
    assert max(c1 - c0 for _, _, c0, c1 in tiles) == 14
    assert sum((r1 - r0) * (c1 - c0) for r0, r1, c0, c1 in tiles) == 4 * 30


def test_conv2d_double_backward_tiled(small_budget):
    rng = np.random.default_rng(1)
    x, tx = _pair((1, 3, 8, 9), rng)
    w, tw = _pair((2, 3, 3, 3), rng)
    outs = []
    for lib, a, k in ((dyntorch, x, w), (torch, tx, tw)):
        y = lib.nn.functional.conv2d(a, k, stride=2, padding=1)
        gx, = lib.autograd.grad((y * y).sum(), a, create_graph=True)
        gx.pow(2).sum().backward()
        outs.append((gx.detach().numpy(), k.grad.numpy()))
    for d, t in zip(*outs):
        np.testing.assert_allclose(d, t, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1, output_padding=1),
                                dict(stride=1, padding=2, dilation=2)])
def test_conv_transpose2d_tiled(kw, small_budget):
    rng = np.random.default_rng(2)
    x, tx = _pair((2, 3, 7, 8), rng)
    w, tw = _pair((3, 4, 3, 3), rng)
    y = dyntorch.nn.functional.conv_transpose2d(x, w, **kw)
    ty = torch.nn.functional.conv_transpose2d(tx, tw, **kw)
    _same_as_torch(y, ty, rng, (x, tx), (w, tw))


def test_conv1d_tiled(small_budget):
    rng = np.random.default_rng(3)
    x, tx = _pair((2, 3, 200), rng)
    w, tw = _pair((5, 3, 7), rng)
    y = dyntorch.nn.functional.conv1d(x, w, stride=3, padding=2)
    ty = torch.nn.functional.conv1d(tx, tw, stride=3, padding=2)
    _same_as_torch(y, ty, rng, (x, tx), (w, tw))


_PEAK = textwrap.dedent("""
    import tracemalloc
    import numpy as np
    import dyntorch
    x = dyntorch.tensor(np.ones((1, 32, 300, 300), np.float32), requires_grad=True)
    w = dyntorch.tensor(np.full((3, 32, 9, 9), 0.01, np.float32), requires_grad=True)
    tracemalloc.start()
    y = dyntorch.nn.functional.conv2d(x, w, padding=4)
    y.sum().backward()
    print(tracemalloc.get_traced_memory()[1], float(y[0, 0, 150, 150]))
""")


def test_peak_memory_bounded():
    # full columns would be 32*81 * 300*300 * 4 bytes = 0.93 GB (forward and weight gradient)
    out = subprocess.run([sys.executable, "-c", _PEAK], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split()
    peak, mid = int(out[0]), float(out[1])
    assert mid == pytest.approx(32 * 81 * 0.01, rel=1e-4)  # float32 sums of 2592 terms
    assert peak < 300 << 20, f"conv2d fwd+bwd peaked at {peak / 2**20:.0f} MiB"
