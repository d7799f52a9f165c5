"""The on-device path: digits CNN -> ONNX -> int8 with onnxruntime's quantization tools.
Measures the size and accuracy change (kept quick: a small CNN, two epochs)."""
from __future__ import annotations

import os

import numpy as np
import pytest

import dyntorch as dt
import dyntorch.nn as nn
import dyntorch.nn.functional as F
from dyntorch import onnx as donnx

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime.quantization")
datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    d = datasets.load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(0)
    p = rng.permutation(len(X))
    X, y = X[p], y[p]
    Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]
    dt.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 256), nn.ReLU(),
                      nn.Linear(256, 10))
    opt = dt.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(2):
        m.train()
        order = rng.permutation(len(Xtr))
        for i in range(0, len(Xtr), 50):
            idx = order[i:i + 50]
            loss = F.cross_entropy(m(dt.from_numpy(Xtr[idx])), dt.from_numpy(ytr[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    with dt.no_grad():
        eager = float((m(dt.from_numpy(Xte)).argmax(1).numpy() == yte).mean())
    path = tmp_path_factory.mktemp("q") / "digits.onnx"
    donnx.export(m, dt.from_numpy(Xte[:4]), path, input_names=["x"], output_names=["logits"],
                 dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    return path, Xtr, Xte, yte, eager


def _acc(path, X, y):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return float((s.run(None, {"x": X})[0].argmax(1) == y).mean())


def test_fp32_onnx_keeps_eager_accuracy(digits):
    path, _, Xte, yte, eager = digits
    assert eager > 0.85  # the model learned something
    assert _acc(path, Xte, yte) == pytest.approx(eager, abs=1e-9)


def test_dynamic_int8_is_smaller_and_as_accurate(digits, tmp_path):
    from dyntorch.onnx.quantize import quantize_dynamic

    path, _, Xte, yte, eager = digits
    out = quantize_dynamic(path, tmp_path / "d8.onnx")
    ratio = os.path.getsize(out) / os.path.getsize(path)
    acc = _acc(out, Xte, yte)
    print(f"dynamic int8: size x{ratio:.2f}, accuracy {eager:.4f} -> {acc:.4f}")
    assert ratio < 0.4
    assert acc >= eager - 0.03


def test_static_int8_is_smaller_and_as_accurate(digits, tmp_path):
    from dyntorch.onnx.quantize import quantize_static

    path, Xtr, Xte, yte, eager = digits
    out = quantize_static(path, tmp_path / "s8.onnx", [Xtr[i:i + 50] for i in range(0, 200, 50)])
    ratio = os.path.getsize(out) / os.path.getsize(path)
    acc = _acc(out, Xte, yte)
    print(f"static int8: size x{ratio:.2f}, accuracy {eager:.4f} -> {acc:.4f}")
    assert ratio < 0.4
    assert acc >= eager - 0.03
