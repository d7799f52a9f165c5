"""detect_nonfinite: the first NaN/Inf, where the user's code made it, in which direction."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import dyntorch as dt
from dyntorch import _dispatch as D
from dyntorch.autograd import engine as E
from dyntorch.debug import NonFiniteError, detect_nonfinite
from dyntorch.nn.module import Module
from dyntorch.nn.parameter import Parameter

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _line_of(obj, marker: str) -> int:
    lines, start = inspect.getsourcelines(obj)
    for i, text in enumerate(lines):
        if marker in text:
            return start + i
    raise AssertionError(marker)


class Inner(Module):
    def __init__(self):
        super().__init__()
        self.shift = Parameter(dt.tensor(np.array([0.5, -3.0, 1.0])))

    def forward(self, x):
        h = x + self.shift
        return h.log()  # PLANTED: log of a negative number


class Outer(Module):
    def __init__(self):
        super().__init__()
        self.enc = Inner()

    def forward(self, x):
        return self.enc(x * 1.0).sum()


def test_forward_log_negative_reports_exact_line_and_scope():
    model = Outer()
    x = dt.tensor(np.array([1.0, 1.0, 1.0]), requires_grad=True)
    with detect_nonfinite(), pytest.raises(NonFiniteError) as info:
        model(x)
    err = info.value
    assert err.direction == "forward"
    assert err.op == "log"
    assert err.scope == "enc"
    assert err.source == (__file__, _line_of(Inner.forward, "# PLANTED"))
    assert "h.log()" in err.source_text
    assert err.inputs[0]["min"] == pytest.approx(-2.0)
    assert err.outputs[0]["nan"] == 1
    msg = str(err)
    for piece in ("forward", "'log'", "'enc'", f"{__file__}:{err.source[1]}", "1 NaN"):
        assert piece in msg
    assert "\n" not in msg  # one paragraph


def test_forward_without_grad_also_points_at_user_line():
    x = dt.tensor(np.array([-1.0, 2.0]))
    with detect_nonfinite(), pytest.raises(NonFiniteError) as info:
        x.sqrt()  # NOGRAD
    assert info.value.source == (__file__, _line_of(
        test_forward_without_grad_also_points_at_user_line, "# NOGRAD"))
    assert info.value.scope == ""


def test_backward_sqrt_at_zero_reports_backward():
    x = dt.tensor(np.array([0.0, 4.0]), requires_grad=True)
    with detect_nonfinite():
        y = x.sqrt()  # SQRT
        loss = (y * 2.0).sum()
        with pytest.raises(NonFiniteError) as info:
            loss.backward()
    err = info.value
    assert err.direction == "backward"
    assert err.op == "SqrtBackward0"
    assert err.source == (__file__, _line_of(test_backward_sqrt_at_zero_reports_backward,
                                             "# SQRT"))
    assert err.outputs[0]["inf"] == 1
    assert "backward" in str(err)
    assert D.grad_enabled  # backward's finally restored grad mode


def test_first_nan_in_forward_order_wins():
    x = dt.tensor(np.array([-1.0, 1.0]), requires_grad=True)
    with detect_nonfinite(), pytest.raises(NonFiniteError) as info:
        a = x.log()  # FIRST
        b = a * 2.0
        (b.exp()).sum()
    assert info.value.op == "log"
    assert info.value.source[1] == _line_of(test_first_nan_in_forward_order_wins, "# FIRST")


def test_finite_run_is_silent_and_hooks_removed():
    n_hooks, n_obs = len(D._hooks), len(E.observers)
    x = dt.tensor(np.array([1.0, 2.0]), requires_grad=True)
    with detect_nonfinite():
        (x.log() * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2.0 / np.array([1.0, 2.0]))
    assert len(D._hooks) == n_hooks and len(E.observers) == n_obs
    # outside the block nothing is checked
    x.log()
    (dt.tensor(np.array([-1.0])).log())


def test_backward_only():
    x = dt.tensor(np.array([-1.0, 1.0]), requires_grad=True)
    with detect_nonfinite(forward=False):
        y = x.log()
        y.sum().backward()  # forward nan, but the gradient 1/x is finite
    with detect_nonfinite(forward=False), pytest.raises(NonFiniteError):
        (x * 0.0).log().sum().backward()


def test_nonfinite_on_each_device(device):
    x = dt.tensor(np.array([0.0, 4.0]), device=device, requires_grad=True)
    with detect_nonfinite():
        y = x.sqrt()
        with pytest.raises(NonFiniteError) as info:
            (y * 2.0).sum().backward()
        assert info.value.direction == "backward" and info.value.outputs[0]["inf"] == 1
        with pytest.raises(NonFiniteError) as info:
            (x - 1.0).log()
        assert info.value.direction == "forward" and info.value.outputs[0]["nan"] == 1
