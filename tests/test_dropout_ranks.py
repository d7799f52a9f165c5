"""Every function's behaviour across the input ranks torch accepts, against torch 2.13.

Dropout family: which dims share one keep/drop decision, which ranks warn and which raise.
Deterministic functions (norms, pooling, conv, losses, pad, interpolate, embedding): the same
values in float64, or an error in both libraries.
"""
import warnings

import numpy as np
import pytest
import torch as T

import dyntorch as D


def _shared_dims(y):
    """Dims along which the output of a ones input does not change (the shared mask dims)."""
    y = np.asarray(y)
    return tuple(d for d in range(y.ndim) if (y == np.take(y, [0], axis=d)).all())


def _run(lib, fn, x, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            y = fn(lib, x, **kw)
        except (RuntimeError, ValueError, IndexError, TypeError) as e:
            return "error", type(e).__name__, None
    warned = any(issubclass(i.category, UserWarning) for i in w)
    return "ok", warned, y


DROPOUTS = ["dropout1d", "dropout2d", "dropout3d", "feature_alpha_dropout", "alpha_dropout",
            "dropout"]


@pytest.mark.parametrize("rank", range(0, 6))
@pytest.mark.parametrize("name", DROPOUTS)
def test_dropout_family_ranks(name, rank):
    # big enough that an element-wise mask is never constant along a dim by chance
    shape = ({1: 64, 2: 16, 3: 8, 4: 5, 5: 4}.get(rank, 1),) * rank
    T.manual_seed(0)
    D.manual_seed(0)

    def fn(lib, x):
        return getattr(lib.nn.functional, name)(x, 0.5, True).numpy()

    t = _run(T, fn, T.ones(shape, dtype=T.float64))
    d = _run(D, fn, D.ones(shape, dtype=D.float64))
    assert d[:2] == t[:2], (name, rank, d[:2], t[:2])
    if t[0] == "ok" and rank:
        assert _shared_dims(d[2]) == _shared_dims(t[2])
        assert set(np.unique(np.round(d[2], 6))) == set(np.unique(np.round(t[2], 6)))


def test_dropout2d_on_features_is_elementwise():
    # (batch, features): torch drops element-wise (with a warning), not one mask for all
    x = D.ones(200, 50)
    with pytest.warns(UserWarning, match="dropout2d"):
        y = D.nn.functional.dropout2d(x, 0.5, True)
    rows_all_zero = int((y.sum(1) == 0).sum())
    assert rows_all_zero == 0
    frac = float((y == 0).float().mean())
    assert 0.4 < frac < 0.6


@pytest.mark.parametrize("name", ["dropout1d", "dropout2d", "dropout3d"])
def test_channel_dropout_inplace_writes_input(name):
    shape = {"dropout1d": (4, 6, 5), "dropout2d": (4, 6, 5, 5), "dropout3d": (2, 6, 3, 3, 3)}
    x = D.ones(*shape[name])
    y = getattr(D.nn.functional, name)(x, 0.5, True, inplace=True)
    assert y is x and float((x == 0).float().mean()) > 0


def test_channel_dropout_gradient_is_the_mask():
    x = D.randn(3, 4, 5, dtype=D.float64, requires_grad=True)
    y = D.nn.functional.dropout1d(x, 0.5, True)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (y.detach() / x.detach()).numpy())


# ----------------------------------------------------------------------------- deterministic
def _F(lib):
    return lib.nn.functional


CASES = {
    "batch_norm": (lambda l, x: _F(l).batch_norm(x, None, None, training=True),
                   [(4,), (4, 3), (4, 3, 5), (2, 3, 4, 4), (2, 3, 2, 2, 2)]),
    "instance_norm": (lambda l, x: _F(l).instance_norm(x),
                      [(4, 3), (4, 3, 5), (2, 3, 4, 4), (2, 3, 2, 2, 3)]),
    "group_norm": (lambda l, x: _F(l).group_norm(x, 1), [(4,), (4, 3), (4, 3, 5), (2, 3, 4, 4)]),
    "layer_norm": (lambda l, x: _F(l).layer_norm(x, x.shape[-1:]),
                   [(4,), (4, 3), (2, 3, 5), (2, 3, 4, 4)]),
    "max_pool1d": (lambda l, x: _F(l).max_pool1d(x, 2), [(3, 8), (2, 3, 8), (8,)]),
    "max_pool2d": (lambda l, x: _F(l).max_pool2d(x, 2), [(3, 6, 6), (2, 3, 6, 6), (6, 6)]),
    "avg_pool1d": (lambda l, x: _F(l).avg_pool1d(x, 2), [(3, 8), (2, 3, 8)]),
    "avg_pool2d": (lambda l, x: _F(l).avg_pool2d(x, 2), [(3, 6, 6), (2, 3, 6, 6)]),
    "adaptive_avg_pool1d": (lambda l, x: _F(l).adaptive_avg_pool1d(x, 3), [(3, 8), (2, 3, 8)]),
    "adaptive_avg_pool2d": (lambda l, x: _F(l).adaptive_avg_pool2d(x, 3),
                            [(3, 6, 6), (2, 3, 6, 6)]),
    "conv1d": (lambda l, x: _F(l).conv1d(x, l.ones(2, 3, 3, dtype=x.dtype)),
               [(3, 8), (2, 3, 8), (8,)]),
    "conv2d": (lambda l, x: _F(l).conv2d(x, l.ones(2, 3, 3, 3, dtype=x.dtype)),
               [(3, 6, 6), (2, 3, 6, 6)]),
    "conv_transpose2d": (lambda l, x: _F(l).conv_transpose2d(
        x, l.ones(3, 2, 3, 3, dtype=x.dtype)), [(3, 4, 4), (2, 3, 4, 4)]),
    "cross_entropy": (lambda l, x: _F(l).cross_entropy(x, l.zeros(
        x.shape[:1] + x.shape[2:], dtype=l.int64) if x.ndim > 1 else l.tensor(1)),
        [(5,), (4, 5), (4, 5, 3)]),
    "nll_loss": (lambda l, x: _F(l).nll_loss(x, l.zeros(
        x.shape[:1] + x.shape[2:], dtype=l.int64) if x.ndim > 1 else l.tensor(1)),
        [(5,), (4, 5), (4, 5, 3)]),
    "mse_loss": (lambda l, x: _F(l).mse_loss(x, x * 0.5), [(), (5,), (4, 5)]),
    "kl_div": (lambda l, x: _F(l).kl_div(x, x.abs(), reduction="batchmean"), [(5,), (4, 5)]),
    "pad_constant": (lambda l, x: _F(l).pad(x, (1, 2)), [(4,), (3, 4), (2, 3, 4)]),
    "pad_reflect": (lambda l, x: _F(l).pad(x, (1, 2), mode="reflect"),
                    [(4,), (3, 4), (2, 3, 4), (2, 3, 4, 5)]),
    "pad_replicate": (lambda l, x: _F(l).pad(x, (1, 1, 2, 0), mode="replicate"),
                      [(3, 4), (3, 4, 4), (2, 3, 4, 4)]),
    "pad_circular": (lambda l, x: _F(l).pad(x, (1, 1), mode="circular"), [(3, 4), (2, 3, 4)]),
    "interpolate_nearest": (lambda l, x: _F(l).interpolate(x, scale_factor=2),
                            [(4,), (3, 4), (2, 3, 4), (2, 3, 4, 4)]),
    "interpolate_linear": (lambda l, x: _F(l).interpolate(x, size=7, mode="linear"),
                           [(3, 4), (2, 3, 4)]),
    "interpolate_bilinear": (lambda l, x: _F(l).interpolate(x, size=(5, 7), mode="bilinear"),
                             [(3, 4, 4), (2, 3, 4, 4)]),
    "pixel_shuffle": (lambda l, x: _F(l).pixel_shuffle(x, 2), [(4, 2, 2), (2, 4, 2, 2)]),
    "softmax_dim_none": (lambda l, x: _F(l).softmax(x, dim=-1), [(), (5,), (3, 5)]),
    "embedding": (lambda l, x: _F(l).embedding((x.abs() * 3).long() % 4,
                                               l.arange(12.0, dtype=x.dtype).reshape(4, 3)),
                  [(), (5,), (2, 5)]),
    "linear": (lambda l, x: _F(l).linear(x, l.ones(2, x.shape[-1] if x.ndim else 1,
                                                    dtype=x.dtype)), [(3,), (4, 3), (2, 4, 3)]),
    "cosine_similarity": (lambda l, x: _F(l).cosine_similarity(x, x + 1, dim=-1),
                          [(5,), (3, 5)]),
}

PARAMS = [(name, shape) for name, (_, shapes) in CASES.items() for shape in shapes]


@pytest.mark.parametrize("name,shape", PARAMS, ids=[f"{n}-{len(s)}d" for n, s in PARAMS])
def test_rank_behaviour_matches_torch(name, shape):
    fn, _ = CASES[name]
    x = np.random.default_rng(0).standard_normal(shape)

    def run(lib, xt):
        return fn(lib, xt).detach().numpy()

    t = _run(T, run, T.tensor(x))
    d = _run(D, run, D.tensor(x))
    assert d[0] == t[0], (name, shape, d[:2], t[:2])
    if t[0] == "ok":
        assert d[2].shape == t[2].shape
        np.testing.assert_allclose(d[2], t[2], rtol=1e-7, atol=1e-9)


def test_instance_norm_updates_running_stats_like_torch():
    x = np.random.default_rng(3).standard_normal((4, 3, 5, 2))
    got = []
    for lib in (D, T):
        rm, rv = lib.zeros(3, dtype=lib.float64), lib.ones(3, dtype=lib.float64)
        y = lib.nn.functional.instance_norm(lib.tensor(x), rm, rv, momentum=0.3)
        got.append((y.numpy(), rm.numpy(), rv.numpy()))
    for a, t in zip(*got):
        np.testing.assert_allclose(a, t, rtol=1e-9, atol=1e-12)
