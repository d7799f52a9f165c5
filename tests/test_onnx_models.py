"""ONNX export of whole models: checked by onnx, run by onnxruntime with the eager outputs,
also at another batch size through dynamic_axes."""
from __future__ import annotations

import numpy as np
import pytest
from test_jit_models import as_tuple, build, model_params

from dyntorch import onnx as donnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
TOL = 1e-5


def export(name, tmp_path, batch=3):
    model, make, axis = build(name)
    x = make(batch)
    n_out = len(as_tuple(model(x)))
    outs = [f"out{k}" for k in range(n_out)]
    axes = {"x": {axis: "batch"}}
    p = tmp_path / f"{name}.onnx"
    m = donnx.export(model, x, p, input_names=["x"], output_names=outs, dynamic_axes=axes)
    onnx.checker.check_model(onnx.load(str(p)), full_check=True)
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    return model, make, sess, m


def check(model, sess, x):
    got = sess.run(None, {"x": x.numpy()})
    want = as_tuple(model(x))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.detach().numpy(), rtol=TOL, atol=TOL)


@pytest.mark.parametrize("name", model_params())
def test_onnxruntime_matches_eager(name, tmp_path):
    model, make, sess, _ = export(name, tmp_path)
    check(model, sess, make(3))


@pytest.mark.parametrize("name", model_params())
def test_other_batch_size_through_dynamic_axes(name, tmp_path):
    model, make, sess, _ = export(name, tmp_path, batch=3)
    for n in (1, 8):
        check(model, sess, make(n))


def test_lstm_and_gru_become_single_onnx_nodes(tmp_path):
    _, _, _, m = export("lstm", tmp_path)
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("LSTM") == 2  # one per layer
    _, _, _, m = export("gru_bidir", tmp_path)
    gru = [n for n in m.graph.node if n.op_type == "GRU"]
    assert len(gru) == 1
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in gru[0].attribute}
    assert attrs["direction"] == b"bidirectional" and attrs["linear_before_reset"] == 1


def test_batchnorm_exported_as_batchnormalization(tmp_path):
    _, _, _, m = export("cnn_bn", tmp_path)
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("BatchNormalization") == 2 and ops.count("Conv") == 2
    assert "MaxPool" in ops


def test_layernorm_needs_opset_17(tmp_path):
    model, make, _ = build("attention_block")
    with pytest.raises(donnx.UnsupportedOperatorError, match="layer_norm.*opset_version >= 17"):
        donnx.export(model, make(2), tmp_path / "a.onnx", opset_version=16)


@pytest.mark.parametrize("name", ["transformer_layer", "attention_block"])
def test_batch_and_sequence_both_dynamic(name, tmp_path):
    model, make, _ = build(name)
    p = tmp_path / "t.onnx"
    donnx.export(model, make(3), p, input_names=["x"],
                 dynamic_axes={"x": {0: "batch", 1: "seq"}})
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    import dyntorch

    for shape in [(2, 9, 16), (6, 1, 16)]:
        check(model, sess, dyntorch.randn(*shape))


def test_lstm_with_given_initial_state(tmp_path):
    import dyntorch
    import dyntorch.nn as nn

    class WithState(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(4, 6, num_layers=2, bidirectional=True)

        def forward(self, x, h, c):
            y, (hn, cn) = self.rnn(x, (h, c))
            return y, hn, cn

    dyntorch.manual_seed(0)
    m = WithState().eval()
    args = (dyntorch.randn(5, 3, 4), dyntorch.randn(4, 3, 6), dyntorch.randn(4, 3, 6))
    p = tmp_path / "s.onnx"
    donnx.export(m, args, p, input_names=["x", "h", "c"],
                 dynamic_axes={"x": {0: "t", 1: "b"}, "h": {1: "b"}, "c": {1: "b"}})
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    for t, b in [(5, 3), (8, 2)]:
        x, h, c = dyntorch.randn(t, b, 4), dyntorch.randn(4, b, 6), dyntorch.randn(4, b, 6)
        got = sess.run(None, {"x": x.numpy(), "h": h.numpy(), "c": c.numpy()})
        for g, w in zip(got, m(x, h, c)):
            np.testing.assert_allclose(g, w.detach().numpy(), rtol=TOL, atol=TOL)


def test_class_token_expanded_to_a_dynamic_batch(tmp_path):
    import dyntorch
    import dyntorch.nn as nn

    class TinyViT(nn.Module):
        def __init__(self):
            super().__init__()
            self.cls = nn.Parameter(dyntorch.randn(1, 1, 8))
            self.proj = nn.Linear(4, 8)
            self.enc = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)

        def forward(self, x):
            t = self.proj(x)
            c = self.cls.expand(t.shape[0], -1, -1)
            return self.enc(dyntorch.cat([c, t], 1))[:, 0]

    dyntorch.manual_seed(0)
    m = TinyViT().eval()
    p = tmp_path / "vit.onnx"
    donnx.export(m, dyntorch.randn(3, 5, 4), p, input_names=["x"],
                 dynamic_axes={"x": {0: "batch"}})
    sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    for n in (1, 6):
        check(m, sess, dyntorch.randn(n, 5, 4))
