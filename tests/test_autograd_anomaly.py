"""detect_anomaly and the autograd.graph helpers (saved-tensor hooks, Node)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import dyntorch
from dyntorch.autograd import Function, detect_anomaly, engine, set_detect_anomaly


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield
    from dyntorch.autograd.anomaly import _observe

    assert _observe not in engine.observers  # anomaly mode leaves nothing behind


def test_names_failing_node_and_forward_line(torch, device):
    x = dyntorch.tensor([1.0, -1.0], dtype=dyntorch.float64, device=device, requires_grad=True)
    with detect_anomaly():
        y = x.log() * 0  # log(-1) = nan; its backward sends g/x = 0/-1, 0/1 ... then nan below
        z = (x.sqrt() + y).sum()  # SqrtBackward0: 0.5/sqrt(-1) -> nan
        with pytest.raises(RuntimeError) as ei:
            z.backward()
    msg = str(ei.value)
    assert "Function 'SqrtBackward0' returned nan values in its 0th output." in msg
    assert f"{__file__}:" in msg and "x.sqrt()" in msg
    # torch names the same node
    xt = torch.tensor([1.0, -1.0], dtype=torch.float64, requires_grad=True)
    with torch.autograd.detect_anomaly():
        zt = (xt.sqrt() + xt.log() * 0).sum()
        with pytest.raises(RuntimeError, match="Function 'SqrtBackward0' returned nan values "
                                               "in its 0th output"):
            zt.backward()


def test_log_backward_names_log(torch):
    x = dyntorch.tensor([0.0, 2.0], dtype=dyntorch.float64, requires_grad=True)
    with detect_anomaly():
        loss = (x.log() * 0).sum()  # 0 * inf from LogBackward0 is fine, but g/x = 0/0 = nan
        with pytest.raises(RuntimeError, match="Function 'LogBackward0' returned nan values in "
                                               "its 0th output"):
            loss.backward()


def test_off_by_default_and_restored(torch):
    x = dyntorch.tensor([-1.0], dtype=dyntorch.float64, requires_grad=True)
    x.sqrt().sum().backward()  # no anomaly mode: nan flows silently, like torch
    assert np.isnan(x.grad.numpy()).all()
    assert not dyntorch.autograd.is_anomaly_enabled()
    with detect_anomaly():
        assert dyntorch.autograd.is_anomaly_enabled()
        with detect_anomaly(check_nan=False):
            assert not dyntorch.autograd.is_anomaly_check_nan_enabled()
            x.sqrt().sum().backward()  # not checked
        assert dyntorch.autograd.is_anomaly_check_nan_enabled()
    assert not dyntorch.autograd.is_anomaly_enabled()


def test_set_detect_anomaly_function_and_scope(torch):
    x = dyntorch.tensor([-1.0], dtype=dyntorch.float64, requires_grad=True)
    set_detect_anomaly(True)
    try:
        with pytest.raises(RuntimeError, match="SqrtBackward0"):
            x.sqrt().sum().backward()
    finally:
        set_detect_anomaly(False)
    with set_detect_anomaly(True):
        assert dyntorch.autograd.is_anomaly_enabled()
    assert not dyntorch.autograd.is_anomaly_enabled()


def test_module_scope_in_message(monkeypatch):
    from dyntorch import _dispatch as D

    x = dyntorch.tensor([-1.0], dtype=dyntorch.float64, requires_grad=True)
    monkeypatch.setattr(D, "scope", "encoder.fc1")
    y = x.sqrt()
    monkeypatch.setattr(D, "scope", "")
    with detect_anomaly():
        with pytest.raises(RuntimeError, match="in module 'encoder.fc1'"):
            y.sum().backward()


def test_custom_function_nan_is_caught():
    class BadGrad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g * float("inf")

    x = dyntorch.ones(2, dtype=dyntorch.float64, requires_grad=True)
    with detect_anomaly():
        y = BadGrad.apply(x)
        with pytest.raises(RuntimeError, match="Function 'BadGradBackward' returned inf"):
            y.sum().backward()


def test_decorator_form():
    @detect_anomaly()
    def run(x):
        x.sqrt().sum().backward()

    with pytest.raises(RuntimeError, match="SqrtBackward0"):
        run(dyntorch.tensor([-1.0], dtype=dyntorch.float64, requires_grad=True))


# ----------------------------------------------------------------------------- graph module
def test_graph_node_is_exported():
    x = dyntorch.ones(2, requires_grad=True)
    y = x * 2
    assert isinstance(y.grad_fn, dyntorch.autograd.graph.Node)
    assert isinstance(y.grad_fn.next_functions[0][0], dyntorch.autograd.graph.Node)


def test_saved_tensors_hooks_on_function(torch):
    def make(base):
        class Sq(base.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 2 * x * g

        return Sq

    for base in (dyntorch, torch):
        log = []

        def pack(t):
            log.append("pack")
            return t.detach().clone() * 10  # pack something different, to see unpack used

        def unpack(p):
            log.append("unpack")
            return p / 10

        x = base.tensor([1.0, 3.0], dtype=base.float64, requires_grad=True)
        with base.autograd.graph.saved_tensors_hooks(pack, unpack):
            y = make(base).apply(x)
        assert log[0] == "pack"
        y.sum().backward()
        assert log[-1] == "unpack"
        np.testing.assert_allclose(x.grad.numpy(), [2.0, 6.0])


def test_disable_saved_tensors_hooks():
    g = dyntorch.autograd.graph
    with g.disable_saved_tensors_hooks("no hooks here"):
        with pytest.raises(RuntimeError, match="no hooks here"):
            with g.saved_tensors_hooks(lambda t: t, lambda t: t):
                pass


def test_error_in_function_backward_gets_forward_line_note():
    class Broken(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            raise ValueError("broken backward")

    x = dyntorch.ones(2, dtype=dyntorch.float64, requires_grad=True)
    with detect_anomaly():
        y = Broken.apply(x)  # the line the note must name
        with pytest.raises(ValueError, match="broken backward") as ei:
            y.sum().backward()
    notes = " ".join(getattr(ei.value, "__notes__", []))
    assert "Error detected in BrokenBackward" in notes and "Broken.apply(x)" in notes


def test_error_in_builtin_backward_gets_forward_line_note():
    x = dyntorch.ones(2, dtype=dyntorch.float64, requires_grad=True)
    with detect_anomaly():
        y = x.exp()  # the line the note must name
        y.grad_fn.register_prehook(lambda go: (dyntorch.ones(3, dtype=dyntorch.float64),))
        with pytest.raises(Exception) as ei:
            y.sum().backward()
    notes = " ".join(getattr(ei.value, "__notes__", []))
    assert "Error detected in ExpBackward0" in notes and "x.exp()" in notes
