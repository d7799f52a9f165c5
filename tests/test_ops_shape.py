"""Shape ops against torch 2.13 (float64): values, gradients, views sharing memory, errors."""
from __future__ import annotations

import numpy as np
import pytest
from _opcheck import check, check_double, np_of

import dyntorch

R = np.random.default_rng(2)
X = R.standard_normal((2, 3, 4))


CASES = [
    ("view", lambda m, x: x.view(6, 4)),
    ("view -1", lambda m, x: x.view(-1, 2)),
    ("reshape", lambda m, x: m.reshape(x, (4, -1))),
    ("reshape of transposed", lambda m, x: x.transpose(0, 2).reshape(-1)),
    ("flatten", lambda m, x: (m.flatten(x), x.flatten(1), x.flatten(0, 1))),
    ("unflatten", lambda m, x: x.unflatten(2, (2, 2))),
    ("ravel", lambda m, x: x.ravel()),
    ("squeeze", lambda m, x: (x.view(2, 1, 3, 4, 1).squeeze(), x.view(2, 1, 12).squeeze(1),
                              x.view(1, 24).squeeze(-1), m.squeeze(x.view(1, 2, 1, 12), (0, 2)))),
    ("unsqueeze", lambda m, x: (x.unsqueeze(0), m.unsqueeze(x, -1), x.unsqueeze(2))),
    ("transpose", lambda m, x: (x.transpose(0, 1), m.transpose(x, -1, 0), x.swapaxes(1, 2),
                                m.swapdims(x, 0, 2))),
    ("t", lambda m, x: (x[0].t(), m.t(x[0, 0]))),
    ("permute", lambda m, x: (x.permute(2, 0, 1), m.permute(x, (1, 2, 0)))),
    ("movedim", lambda m, x: (x.movedim(0, -1), m.movedim(x, (0, 1), (2, 0)),
                              m.moveaxis(x, 2, 0))),
    ("T/mT", lambda m, x: (x[0].T, x.mT)),
    ("repeat", lambda m, x: (x.repeat(2, 1, 3), x[0].repeat(2, 2, 1))),
    ("tile", lambda m, x: (m.tile(x, (2,)), x[0].tile((3, 1, 2)))),
    ("flip", lambda m, x: (x.flip(0), m.flip(x, (1, 2)), m.fliplr(x[0]), m.flipud(x[0]))),
    ("roll", lambda m, x: (x.roll(1, 2), m.roll(x, (1, -2), (0, 2)), m.roll(x, 5))),
    ("narrow", lambda m, x: (x.narrow(2, 1, 2), m.narrow(x, 0, 1, 1))),
    ("select", lambda m, x: (x.select(1, 2), m.select(x, -1, 0))),
    ("split", lambda m, x: (x.split(2, 2), m.split(x, [1, 2], 1))),
    ("chunk", lambda m, x: (x.chunk(3, 2), m.chunk(x, 2, 1))),
    ("tensor_split", lambda m, x: (m.tensor_split(x, 3, 2), x.tensor_split([1, 3], 2))),
    ("unbind", lambda m, x: (x.unbind(1), m.unbind(x, -1))),
    ("cat", lambda m, x: (m.cat([x, x * 2], 1), m.cat((x[:, :1], x), dim=-2),
                          m.concat([x, x], 0))),
    ("stack", lambda m, x: (m.stack([x, x * 2]), m.stack([x[0], x[1]], dim=-1))),
    ("hstack/vstack", lambda m, x: (m.hstack([x[0], x[1]]), m.vstack([x[0, 0], x[1, 0]]),
                                    m.hstack([x[0, 0], x[1, 0]]), m.dstack([x[0], x[1]]),
                                    m.column_stack([x[0, 0], x[1, 0]]))),
    ("tril/triu", lambda m, x: (x.tril(), m.triu(x, 1), m.tril(x[0], -1), x.triu(-1))),
    ("diag", lambda m, x: (m.diag(x[0, 0]), m.diag(x[0, 0], 1), m.diag(x[0]),
                           x[0].diag(-1), m.diag(x[0], 2))),
    ("diagonal", lambda m, x: (x.diagonal(), m.diagonal(x, 1, 1, 2), x.diagonal(0, 0, 2),
                               m.diagonal(x, -1, 2, 1))),
    ("diag_embed", lambda m, x: (m.diag_embed(x), m.diag_embed(x[0], 1))),
    ("expand", lambda m, x: (x[:, :1].expand(2, 5, 4), x[0, 0].expand(3, -1),
                             x[0].expand_as(x), m.broadcast_to(x[0, :, :1], (2, 3, 4)))),
    ("broadcast_tensors", lambda m, x: m.broadcast_tensors(x[:, :1], x[0, :, :1])),
    ("meshgrid", lambda m, x: (m.meshgrid(x[0, 0], x[1, 1, :3], indexing="ij"),
                               m.meshgrid(x[0, 0], x[1, 1, :3], indexing="xy"))),
    ("atleast", lambda m, x: (m.atleast_1d(x[0, 0, 0]), m.atleast_2d(x[0, 0]),
                              m.atleast_3d(x[0]))),
    ("contiguous", lambda m, x: x.transpose(0, 1).contiguous()),
]


@pytest.mark.parametrize("fn", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_shape_op(torch, device, fn):
    check(torch, fn, X, device=device)


def test_iteration_unbinds(torch, device):
    check(torch, lambda m, x: tuple(r * (i + 1) for i, r in enumerate(x)), X, device=device)
    assert len(list(dyntorch.ones(4, 2))) == 4
    with pytest.raises(TypeError, match="0-d"):
        iter(dyntorch.tensor(1.0))


def test_views_share_memory():
    x = dyntorch.zeros(3, 4)
    for v, idx in [(x.view(12), 5), (x.t(), (1, 0)), (x.transpose(0, 1), (3, 2)),
                   (x.unsqueeze(0), (0, 2, 2)), (x.narrow(1, 1, 2), (0, 1)),
                   (x.diagonal(), 1), (x.select(0, 2), 3), (x.permute(1, 0), (2, 1))]:
        v[idx] = 7.0
    expect = np.zeros((3, 4))
    expect.flat[5] = 7
    expect[0, 1] = expect[2, 3] = expect[0, 2] = expect[0, 2] = 7
    expect[1, 1] = expect[2, 3] = expect[1, 2] = expect[2, 2] = 7
    np.testing.assert_array_equal(np_of(x), expect)
    d = x.diagonal()
    d.fill_(1.0)
    assert np_of(x)[2, 2] == 1.0
    y = dyntorch.arange(6.0)
    y.view(2, 3)[1, 2] = -1
    assert y[5].item() == -1


def test_flip_and_repeat_copy():
    x = dyntorch.arange(4.0)
    f = x.flip(0)
    f[0] = 100.0
    assert x[3].item() == 3.0


def test_bad_view_error():
    x = dyntorch.arange(12.0).reshape(3, 4).t()
    with pytest.raises(RuntimeError, match="view size is not compatible.*reshape"):
        x.view(12)
    with pytest.raises(RuntimeError, match="invalid for input of size 12"):
        x.reshape(5, -1)
    with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
        x.reshape(-1, -1)


def test_shape_errors():
    a, b = dyntorch.ones(2, 3), dyntorch.ones(2, 4)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match except in dimension 0"):
        dyntorch.cat([a, b], 0)
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        dyntorch.stack([a, b])
    with pytest.raises(RuntimeError, match="expanded size"):
        a.expand(3, 3)
    with pytest.raises(IndexError, match="Dimension out of range"):
        a.transpose(0, 2)
    with pytest.raises(RuntimeError, match="number of dimensions"):
        a.permute(0)
    with pytest.raises(IndexError, match="narrow"):
        a.narrow(1, 2, 2)
    with pytest.raises(RuntimeError, match="split_with_sizes"):
        a.split([1, 1], 1)
    with pytest.raises(TypeError, match="sequence of Tensors"):
        dyntorch.cat(a)


def test_cat_promotes_and_skips_legacy_empty(torch, device):
    check(torch, lambda m, x: m.cat([x, m.zeros(0, dtype=x.dtype)]), R.standard_normal(3),
          device=device)
    check(torch, lambda m, x: m.cat([x.float(), x]), R.standard_normal(3), device=device,
          rtol=1e-6)


def test_in_place_after_view_keeps_base_gradient_correct(torch, device):
    def fn(m, x):
        y = x.reshape(3, 8)
        z = y.t() * 2
        x2 = x * 1
        return z.sum(0), x2

    check(torch, fn, X, device=device)


def test_second_order_shape_ops(torch):
    check_double(torch, lambda m, x: (m.cat([x, x.flip(1)], 1) ** 2).permute(1, 0, 2), X)
    check_double(torch, lambda m, x: m.stack([x.sum(0), x[0].t().t()]) ** 3, X)
    check_double(torch, lambda m, x: x.repeat(1, 2, 1).diagonal(0, 1, 2) ** 2, X)


MORE = [
    ("rot90", lambda m, x: (m.rot90(x, 1, (1, 2)), x.rot90(2, (0, 1)), m.rot90(x, -1, (0, 2)),
                            m.rot90(x, 4, (1, 2)))),
    ("block_diag", lambda m, x: m.block_diag(x[0], x[1, :2, :1], x[0, 0, 0], x[1, 0])),
    ("cartesian_prod", lambda m, x: m.cartesian_prod(x[0, 0], x[1, 1, :2], x[0, 2, :3])),
    ("unfold", lambda m, x: (x.unfold(2, 2, 1), x.unfold(-1, 3, 2), x.unfold(1, 3, 3))),
]


@pytest.mark.parametrize("fn", [c[1] for c in MORE], ids=[c[0] for c in MORE])
def test_more_layout_ops(torch, device, fn):
    check(torch, fn, X, device=device)


def test_in_place_shape_methods(torch, device):
    def fn(m, x):
        y = x.detach().clone()
        y.unsqueeze_(1)
        a = y.shape
        y.squeeze_()
        z = x.detach()[0].clone()
        z.t_()
        w = x.detach().clone()
        w.transpose_(0, 2)
        return y * 1, z * 1, w * 1, m.tensor(list(a))

    check(torch, fn, X, device=device, grad=False)
