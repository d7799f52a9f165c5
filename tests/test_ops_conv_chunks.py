"""conv2d's two layouts (one GEMM per image; one GEMM per chunk of images) and the batched one
split into chunks: values and all three gradients against torch (float64), with the size
thresholds and the chunk budget forced so that every path runs on every case."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch
import dyntorch.ops.conv as conv

CASES = [  # n, out, in, k, size, stride, pad, dilation
    (5, 4, 3, 3, 9, 1, 1, 1),
    (4, 6, 2, 3, 11, 2, 1, 1),
    (3, 5, 4, 2, 8, 2, 0, 2),
    (6, 8, 3, 5, 12, 1, 2, 1),
    (2, 3, 2, 3, 7, 3, 1, 1),
]


@pytest.mark.parametrize("budget,max_plane", [(1, 1 << 30), (1 << 30, 1 << 30), (1 << 30, 0)],
                         ids=["batched-one-image-chunks", "batched-one-chunk", "per-image"])
@pytest.mark.parametrize("case", CASES)
def test_conv2d_chunks_match_torch(torch, monkeypatch, case, budget, max_plane):
    monkeypatch.setattr(conv, "_BATCH_CHUNK_BYTES", budget)
    monkeypatch.setattr(conv, "_BATCH_MAX_L_FORWARD", max_plane)
    monkeypatch.setattr(conv, "_BATCH_MAX_L_WEIGHT", max_plane)
    n, o, c, k, h, s, p, d = case
    rng = np.random.default_rng(sum(case))
    x, w, b = rng.standard_normal((n, c, h, h)), rng.standard_normal((o, c, k, k)), \
        rng.standard_normal(o)
    ours = [dyntorch.tensor(a, requires_grad=True) for a in (x, w, b)]
    ref = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    y = dyntorch.nn.functional.conv2d(*ours, stride=s, padding=p, dilation=d)
    ty = torch.nn.functional.conv2d(*ref, stride=s, padding=p, dilation=d)
    g = rng.standard_normal(tuple(ty.shape))
    y.backward(dyntorch.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    for a, t in zip(ours, ref):
        np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-10)


def test_conv2d_scratch_is_not_shared_with_the_result(torch):
    """The output and gradients are fresh arrays, not views of the reused scratch buffers."""
    x = dyntorch.randn(2, 3, 6, 6, requires_grad=True)
    w = dyntorch.randn(4, 3, 3, 3, requires_grad=True)
    y1 = dyntorch.nn.functional.conv2d(x, w, padding=1)
    keep = y1.detach().numpy().copy()
    dyntorch.nn.functional.conv2d(dyntorch.randn(2, 3, 6, 6), w, padding=1)  # same shapes
    np.testing.assert_array_equal(y1.detach().numpy(), keep)
