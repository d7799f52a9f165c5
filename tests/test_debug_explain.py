"""debug.explain: the first op that went bad, why, and a repro that runs in a fresh process."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import dyntorch as dt
from dyntorch.debug import NonFiniteError, detect_nonfinite, explain

ROOT = __file__.rsplit("/tests/", 1)[0]


def _run_fresh(src: str, tmp_path) -> str:
    """Run a repro cell in a new interpreter (a fresh namespace); return what it printed."""
    f = tmp_path / "cell.py"
    f.write_text(src)
    r = subprocess.run([sys.executable, str(f)], capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": ROOT, "PATH": "/usr/bin:/bin"}, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


class Attn(dt.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = dt.nn.Linear(4, 3)

    def forward(self, x):
        p = self.proj(x).softmax(-1)
        return -(p.log()).mean()


def test_softmax_underflow_then_log_names_softmax(tmp_path):
    dt.manual_seed(0)
    att = Attn()
    m = dt.nn.Sequential(att)
    with dt.no_grad():
        att.proj.weight.mul_(500.0)  # logits spanning hundreds: exp underflows to exact 0
    x = dt.randn(3, 4)
    with pytest.raises(NonFiniteError) as ei, detect_nonfinite():
        m(x)
    ex = explain(ei.value)
    assert ex.op == "softmax" and ex.scope == "0"
    assert ex.source[0] == __file__
    assert "underflowed to exact 0" in ex.reason and "log(0) = -inf" in ex.reason
    assert [n.name() for n in ex.chain] == ["SoftmaxBackward0", "LogBackward0"]
    # the span the sentence names is the real one
    logits = x.numpy() @ att.proj.weight.detach().numpy().T + att.proj.bias.detach().numpy()
    span = (logits.max(-1) - logits.min(-1)).max()
    assert f"{span:,.4g}" in ex.reason or f"{span:,.0f}" in ex.reason
    # torch agrees that these logits give exact zeros, then -inf
    assert torch.isinf(torch.log(torch.softmax(torch.tensor(logits), -1))).any()
    out = _run_fresh(ex.repro(), tmp_path)
    assert "-inf" in out


def test_log_of_zero_made_by_relu_and_sqrt_of_negative(tmp_path):
    a = dt.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = (a.relu() * 2.0).log()  # relu makes the zero; log is where it turns -inf
    ex = explain(y)
    assert ex.op == "log" and "log of exact 0 (1 entry) = -inf" in ex.reason
    assert "made by relu" in ex.reason
    assert "-inf" in _run_fresh(ex.repro(), tmp_path)
    b = dt.tensor([4.0, -1.0], requires_grad=True)
    ex2 = explain((b - 0.5).sqrt().sum())
    assert ex2.op == "sqrt" and "negative" in ex2.reason and "-1.5" in ex2.reason
    assert "nan" in _run_fresh(ex2.repro(), tmp_path)


def test_division_by_zero_exp_overflow_and_float16(tmp_path):
    n = dt.tensor([1.0, 2.0], requires_grad=True)
    d = dt.tensor([0.0, 1.0], requires_grad=True)
    ex = explain(n / (d * 1.0))
    assert ex.op == "div" and "by exact 0" in ex.reason
    assert "inf" in _run_fresh(ex.repro(), tmp_path)
    z = dt.tensor([10.0, 100.0], requires_grad=True)
    ex = explain((z * 1.0).exp())
    assert ex.op == "exp" and "overflows float32" in ex.reason and "88.72" in ex.reason
    assert "inf" in _run_fresh(ex.repro(), tmp_path)
    h = dt.tensor([300.0, 2.0], dtype=dt.float16, requires_grad=True)
    ex = explain((h * 1.0) * h)
    assert ex.op == "mul" and "float16 overflow" in ex.reason
    assert "inf" in _run_fresh(ex.repro(), tmp_path)


def test_gradient_amplified_names_the_gain(tmp_path):
    x = dt.tensor([1e-8, 1.0], dtype=dt.float64, requires_grad=True)
    loss = ((x * 1.0).sqrt() * 2.0).sum()
    ex = explain(loss)
    assert ex.kind == "gradient" and ex.op == "sqrt"
    # by hand: the incoming gradient is [2, 2]; sqrt sends 2 / (2 sqrt(x)) = [1e4, 1]
    gain = np.linalg.norm([1e4, 1.0]) / np.linalg.norm([2.0, 2.0])
    assert f"{gain:.3g}x" in ex.reason
    assert x.grad is None  # explain leaves no gradients behind
    out = _run_fresh(ex.repro(), tmp_path)
    assert "10000" in out.replace(",", "").replace(".", "") or "1.0000e+04" in out
    loss.backward()  # the graph is still usable
    np.testing.assert_allclose(x.grad.numpy(), [1e4, 1.0], rtol=1e-9)


def test_big_inputs_go_to_npz_and_bad_arguments(tmp_path):
    a = dt.tensor(np.linspace(-1, 1, 200), requires_grad=True)
    ex = explain((a * 1.0).log())
    src = ex.repro(tmp_path / "inp.npz")
    assert "np.load" in src and (tmp_path / "inp.npz").exists()
    assert "nan" in _run_fresh(src, tmp_path)
    with pytest.raises(TypeError, match="expected a NonFiniteError or a Tensor"):
        explain(3.0)
    with pytest.raises(ValueError, match="nothing to explain"):
        explain((dt.ones(2, requires_grad=True) * 2).sum())
