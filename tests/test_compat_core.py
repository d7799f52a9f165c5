"""Behaviour gaps found by running pytorch/examples: each test against torch 2.13 (float64)."""
import numpy as np
import pytest
import torch as T

import dyntorch as D


def _block(lib, seed_w, cin=4, cout=4):
    """A ResNet basic block: in-place ReLU on a BatchNorm output and ``out += identity``."""
    nn = lib.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += identity
            return self.relu(out)

    b = Block().double()
    with lib.no_grad():
        for name, p in b.named_parameters():
            p.copy_(lib.tensor(seed_w[name]))
    return b


@pytest.mark.parametrize("train", [True, False])
def test_resnet_block_inplace_after_batchnorm(train):
    rng = np.random.default_rng(0)
    shapes = {"conv1.weight": (4, 4, 3, 3), "bn1.weight": (4,), "bn1.bias": (4,),
              "conv2.weight": (4, 4, 3, 3), "bn2.weight": (4,), "bn2.bias": (4,)}
    w = {k: rng.standard_normal(s) for k, s in shapes.items()}
    x = rng.standard_normal((3, 4, 5, 5))
    grads = []
    for lib in (D, T):
        b = _block(lib, w)
        b.train(train)
        xt = lib.tensor(x, requires_grad=True)
        y = b(xt)
        (y * y).sum().backward()  # raised "modified by an inplace operation" before
        grads.append([y.detach().numpy(), xt.grad.numpy()] +
                     [p.grad.numpy() for _, p in sorted(b.named_parameters())])
    for a, t in zip(*grads):
        np.testing.assert_allclose(a, t, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("norm", ["layer", "group", "batch"])
def test_norm_output_changed_in_place_keeps_gradients(norm):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6, 3))
    outs = []
    for lib in (D, T):
        xt = lib.tensor(x, requires_grad=True)
        wt = lib.tensor(np.linspace(0.5, 1.5, 6 if norm != "layer" else 3), requires_grad=True)
        F = lib.nn.functional
        if norm == "layer":
            y = F.layer_norm(xt, (3,), wt)
        elif norm == "group":
            y = F.group_norm(xt, 2, wt)
        else:
            y = F.batch_norm(xt, None, None, wt, training=True)
        y.mul_(2.0)
        y.relu_()
        (y ** 3).sum().backward()
        outs.append((xt.grad.numpy(), wt.grad.numpy()))
    for a, t in zip(*outs):
        np.testing.assert_allclose(a, t, rtol=1e-9, atol=1e-10)


def test_batchnorm_input_changed_in_place_still_raises():
    # the version check still guards what the derivative really reads: the input
    x = D.randn(4, 3, dtype=D.float64, requires_grad=True)
    h = x * 1.0
    y = D.nn.functional.batch_norm(h, None, None, training=True)
    h.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_batchnorm_double_backward_matches_torch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3, 2))
    res = []
    for lib in (D, T):
        xt = lib.tensor(x, requires_grad=True)
        y = lib.nn.functional.batch_norm(xt, None, None, training=True)
        y.relu_()
        (g,) = lib.autograd.grad((y ** 3).sum(), xt, create_graph=True)
        (g * g).sum().backward()
        res.append(xt.grad.numpy())
    np.testing.assert_allclose(res[0], res[1], rtol=1e-8, atol=1e-10)


# ----------------------------------------------------------------------------- range indices
INDEX_KEYS = [
    lambda n: (range(n), [1, 0, 2, 1]),
    lambda n: range(1, n),
    lambda n: (slice(None), range(3)),
    lambda n: ([0, 2], range(2)),
    lambda n: (range(n), (1, 0, 2, 1)),
    lambda n: [range(2), range(1, 3)],  # a list of sequences means a tuple, as in torch
    lambda n: (range(0),),
]


@pytest.mark.parametrize("k", range(len(INDEX_KEYS)))
def test_range_index_read_and_write_with_gradients(k):
    x = np.random.default_rng(4).standard_normal((4, 3))
    res = []
    for lib in (D, T):
        key = INDEX_KEYS[k](4)
        xt = lib.tensor(x, requires_grad=True)
        v = lib.tensor(np.arange(1.0, 100.0)[:xt.detach()[key].numel()].reshape(
            tuple(xt.detach()[key].shape)), requires_grad=True)
        y = xt[key]
        z = xt * 1.0
        z[key] = v * 2.0  # writing through a range index
        ((y * y).sum() + (z ** 3).sum()).backward()
        res.append([y.detach().numpy(), z.detach().numpy(), xt.grad.numpy(), v.grad.numpy()])
    for a, t in zip(*res):
        assert a.shape == t.shape
        np.testing.assert_allclose(a, t, rtol=1e-12)


def test_range_index_out_of_bounds_names_dim():
    with pytest.raises(IndexError, match="out of bounds"):
        D.zeros(3, 2)[range(4)]


# ----------------------------------------------------------------------------- auxiliary outputs
# These ops' derivatives read only an auxiliary output (GELU's cdf, cross_entropy's
# log-probabilities, attention's weights, max pooling's maxima), which the door keeps without
# a version check, so changing the result in place is allowed, as in torch.
AUX_OPS = {
    "gelu": lambda lib, x: lib.nn.functional.gelu(x),
    "cross_entropy": lambda lib, x: lib.nn.functional.cross_entropy(x, lib.tensor([0, 1])),
    "sdpa": lambda lib, x: lib.nn.functional.scaled_dot_product_attention(
        x[None], x[None], x[None])[0],
    "max_pool2d": lambda lib, x: lib.nn.functional.max_pool2d(x[None, None], 1)[0, 0],
}


@pytest.mark.parametrize("name", AUX_OPS)
def test_inplace_on_result_of_op_with_auxiliary_outputs(name):
    x0 = np.random.default_rng(5).standard_normal((2, 3))
    grads = []
    for lib in (T, D):
        x = lib.tensor(x0, requires_grad=True)
        y = AUX_OPS[name](lib, x)
        y.add_(1.0)
        (y * y).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-10)
