"""Forward timing for the "colour: time" overlay."""
from __future__ import annotations

import dyntorch as dt
import dyntorch.nn as nn
from dyntorch import _dispatch as D
from dyntorch.viz import graph_json, profile


def _nodes(loss):
    return [n for n in graph_json(loss)["nodes"] if n["kind"] != "leaf"]


def test_nodes_carry_forward_time_only_when_profiling():
    m = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
    x = dt.randn(256, 64)
    loss = m(x).pow(2).mean()
    assert all(n["time_us"] is None for n in _nodes(loss))
    with profile():
        loss = m(x).pow(2).mean()
    times = [n["time_us"] for n in _nodes(loss)]
    assert all(t is not None and t > 0 for t in times), times
    assert not D.profile  # restored


def test_profile_restores_on_error_and_nests():
    try:
        with profile():
            with profile(False):
                assert not D.profile
            assert D.profile
            raise ValueError
    except ValueError:
        pass
    assert not D.profile


def test_slower_op_gets_larger_time():
    a = dt.randn(400, 400, requires_grad=True)
    with profile():
        big = a @ a        # ~64M multiply-adds
        small = a[:2, :2] + 1
    assert big.grad_fn.time_us > small.grad_fn.time_us
