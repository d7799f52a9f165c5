"""Property tests: random broadcastable shapes give torch's values and gradients."""
from __future__ import annotations

import numpy as np
import pytest
from _opcheck import check

hyp = pytest.importorskip("hypothesis")
TORCH = pytest.importorskip("torch")  # module level: hypothesis re-runs the test body
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra.numpy import mutually_broadcastable_shapes  # noqa: E402

import dyntorch  # noqa: E402

SHAPES = mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=3)
SHAPES3 = mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3)
OPS = {
    "add": lambda m, a, b: m.add(a, b),
    "mul": lambda m, a, b: a * b,
    "div": lambda m, a, b: a / b,
    "maximum": lambda m, a, b: m.maximum(a, b),
    "sub_alpha": lambda m, a, b: m.sub(a, b, alpha=0.5),
}
FAST = settings(max_examples=15, deadline=None, derandomize=True)


def _arrays(seed, *shapes, positive_last=False):
    rng = np.random.default_rng(seed)
    out = [np.asarray(rng.standard_normal(s)) for s in shapes]
    if positive_last:
        out[-1] = np.asarray(rng.uniform(0.5, 2.0, shapes[-1]))
    return out


@pytest.mark.parametrize("name", sorted(OPS))
@FAST
@given(shapes=SHAPES, seed=st.integers(0, 2**16))
def test_binary_broadcasting(name, shapes, seed):
    a, b = _arrays(seed, *shapes.input_shapes, positive_last=name == "div")
    check(TORCH, OPS[name], a, b)


@FAST
@given(shapes=SHAPES3, seed=st.integers(0, 2**16))
def test_where_broadcasting(shapes, seed):
    sc, sa, sb = shapes.input_shapes
    rng = np.random.default_rng(seed)
    cond = np.asarray(rng.random(sc) > 0.5)
    a, b = np.asarray(rng.standard_normal(sa)), np.asarray(rng.standard_normal(sb))
    check(TORCH, lambda m, c, x, y: m.where(c, x, y), cond, a, b)


@FAST
@given(shapes=SHAPES, seed=st.integers(0, 2**16))
def test_maximum_with_ties(shapes, seed):
    rng = np.random.default_rng(seed)
    a = np.asarray(rng.integers(0, 2, shapes.input_shapes[0]), dtype=float)
    b = np.asarray(rng.integers(0, 2, shapes.input_shapes[1]), dtype=float)
    check(TORCH, OPS["maximum"], a, b)


@FAST
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=4, max_side=3),
       seed=st.integers(0, 2**16))
def test_non_broadcastable_raises(shapes, seed):
    sa, sb = shapes.input_shapes
    bad = sb[:-1] + (sb[-1] + 4,) if sb else (5,)
    try:
        np.broadcast_shapes(sa, bad)
        return  # happened to broadcast (a size-1 dim in sa); nothing to check
    except ValueError:
        pass
    with pytest.raises(RuntimeError, match=r"add\(\).*size of tensor"):
        dyntorch.ones(*sa) + dyntorch.ones(*bad)
