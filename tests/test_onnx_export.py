"""onnx.export on functions of core ops: checked models that onnxruntime runs with the same
outputs, dynamic axes, and clear errors for ops without an ONNX spelling."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch
import dyntorch.nn.functional as F
from dyntorch import onnx as donnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def run_ort(path, feeds):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {k: np.ascontiguousarray(v) for k, v in feeds.items()})


def _np(t):
    return t.detach().numpy()


def check(fn, args, tmp_path, tol=1e-5, **kw):
    p = tmp_path / "m.onnx"
    args = args if isinstance(args, tuple) else (args,)
    model = donnx.export(fn, args, p, **kw)
    onnx.checker.check_model(onnx.load(str(p)))
    names = [i.name for i in model.graph.input]
    got = run_ort(p, dict(zip(names, (_np(a) for a in args))))
    want = fn(*args)
    want = want if isinstance(want, (tuple, list)) else (want,)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, _np(w), rtol=tol, atol=tol)
    return model, p


def core(x, w):
    h = (x.reshape(x.shape[0], -1) * 2.0 + 1.0).relu()
    s = dyntorch.softmax(h * w - h.mean(1, keepdim=True), 1)
    z = dyntorch.cat([s, dyntorch.tanh(h)], 1)
    return z.sum(1), dyntorch.stack([s, h], 0).permute(1, 0, 2), h.transpose(0, 1)


def test_core_ops_match_onnxruntime(rng, tmp_path):
    x = dyntorch.tensor(rng.standard_normal((4, 2, 3)).astype(np.float32))
    w = dyntorch.tensor(rng.standard_normal((1, 6)).astype(np.float32))
    model, _ = check(core, (x, w), tmp_path)
    assert model.opset_import[0].version == 17


def test_dynamic_batch(rng, tmp_path):
    x = dyntorch.tensor(rng.standard_normal((4, 2, 3)).astype(np.float32))
    w = dyntorch.tensor(rng.standard_normal((1, 6)).astype(np.float32))
    p = tmp_path / "dyn.onnx"
    donnx.export(core, (x, w), p, input_names=["x", "w"], output_names=["a", "b", "c"],
                 dynamic_axes={"x": {0: "batch"}, "a": {0: "batch"}, "b": {0: "batch"},
                               "c": {1: "batch"}})
    m = onnx.load(str(p))
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    for n in (1, 9):
        x2 = dyntorch.tensor(rng.standard_normal((n, 2, 3)).astype(np.float32))
        got = run_ort(p, {"x": _np(x2), "w": _np(w)})
        for g, e in zip(got, core(x2, w)):
            np.testing.assert_allclose(g, _np(e), rtol=1e-5, atol=1e-5)


ACTS = {
    "gelu": lambda a: F.gelu(a),
    "gelu_tanh": lambda a: F.gelu(a, approximate="tanh"),
    "silu": F.silu, "mish": F.mish, "softsign": F.softsign, "logsigmoid": F.logsigmoid,
    "leaky_relu": lambda a: F.leaky_relu(a, 0.2), "elu": lambda a: F.elu(a, 0.7),
    "selu": F.selu, "celu": lambda a: F.celu(a, 1.3),
    "softplus": F.softplus, "softplus_beta": lambda a: F.softplus(a, beta=2.0),
    "hardtanh": lambda a: F.hardtanh(a, -0.5, 0.5), "relu6": F.relu6,
    "hardsigmoid": F.hardsigmoid, "hardswish": F.hardswish, "sigmoid": F.sigmoid,
    "threshold": lambda a: F.threshold(a, 0.1, -2.0),
    "shrink": lambda a: F.hardshrink(a, 0.4) + F.softshrink(a, 0.6),
    "log_softmax": lambda a: F.log_softmax(a, dim=-1), "softmax0": lambda a: F.softmax(a, 0),
    "math": lambda a: (a.abs() + 1.0).log().sqrt().exp() - a.square().clamp(0.1, 2.0),
    "trig": lambda a: a.sin() * a.cos() + a.atan() - dyntorch.sinh(a * 0.5),
    "pow": lambda a: a.abs() ** 1.5 + a ** 2 + 1.0 / (a.abs() + 1.0),
    "where": lambda a: dyntorch.where(a > 0, a, a * 0.1) + (a >= 0.5).float(),
    "minmax": lambda a: dyntorch.maximum(a, a * 0.5) - dyntorch.minimum(a, -a),
    "clamp_tensor": lambda a: a.clamp(a.flip(1) * 0.5, a.flip(0) + 1.0) + a.clamp(max=a * a),
    "xlogy": lambda a: dyntorch.xlogy(dyntorch.where(a > 0.5, 0.0, a), a.abs() + 0.1),
    "hypot_logaddexp": lambda a: dyntorch.hypot(a, a.flip(1)) + dyntorch.logaddexp(a, a * 2),
    "reduce": lambda a: a.sum() + a.mean(0, keepdim=True),
}


@pytest.mark.parametrize("name", sorted(ACTS))
def test_activation_and_math(name, rng, tmp_path):
    x = dyntorch.tensor(rng.standard_normal((3, 7)).astype(np.float32) * 2)
    check(ACTS[name], x, tmp_path)


def test_dynamic_axes_by_list_and_bad_names(rng, tmp_path):
    x = dyntorch.tensor(rng.standard_normal((2, 5)).astype(np.float32))
    p = tmp_path / "l.onnx"
    donnx.export(lambda a: F.relu(a).reshape(-1), x, p, input_names=["x"],
                 dynamic_axes={"x": [0]})
    got = run_ort(p, {"x": np.ones((3, 5), np.float32)})[0]
    assert got.shape == (15,)
    with pytest.raises(ValueError, match="neither"):
        donnx.export(lambda a: a + 1.0, x, p, input_names=["x"], dynamic_axes={"y": [0]})


def test_unsupported_op_names_op_and_scope(tmp_path):
    class Inner(dyntorch.nn.Module):
        def forward(self, a):
            return dyntorch.atan2(a, a + 1.0)

    class Outer(dyntorch.nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Inner()

        def forward(self, a):
            return self.block(a * 2.0)

    with pytest.raises(donnx.UnsupportedOperatorError, match=r"'atan2' in module 'block'"):
        donnx.export(Outer(), dyntorch.randn(3), tmp_path / "u.onnx")


def test_old_opset_refused(tmp_path):
    with pytest.raises(ValueError, match="opset_version"):
        donnx.export(lambda a: a + 1.0, dyntorch.randn(2), tmp_path / "o.onnx",
                     opset_version=11)


def test_opset_18_reductions(rng, tmp_path):
    x = dyntorch.tensor(rng.standard_normal((3, 4)).astype(np.float32))
    model, _ = check(lambda a: a.mean(1) + a.sum(0).mean(), x, tmp_path, opset_version=18)
    assert model.opset_import[0].version == 18


def _m(mod):
    dyntorch.manual_seed(0)
    return mod.eval()


IMG_FUNCS = {
    "avg_pool": lambda a: F.avg_pool2d(a, 2),
    "avg_pool_pad": lambda a: F.avg_pool2d(a, 3, stride=2, padding=1, count_include_pad=False),
    "max_pool_ceil": lambda a: F.max_pool2d(a, 3, stride=2, ceil_mode=True),
    "adaptive_avg": lambda a: F.adaptive_avg_pool2d(a, (2, 3)),
    "adaptive_max": lambda a: F.adaptive_max_pool2d(a, 1) + F.adaptive_max_pool2d(a, 1).mean(),
    "pad": lambda a: F.pad(a, (1, 2, 0, 1), value=0.5),
    "reflect_pad": lambda a: F.pad(a, (1, 1, 2, 1), mode="reflect"),
    "upsample_nearest": lambda a: F.interpolate(a, scale_factor=2, mode="nearest"),
    "upsample_bilinear": lambda a: F.interpolate(a, size=(9, 5), mode="bilinear",
                                                 align_corners=False),
    "group_norm": _m(dyntorch.nn.GroupNorm(2, 4)),
    "batch_norm_no_running_stats": _m(dyntorch.nn.BatchNorm2d(4, track_running_stats=False)),
    "instance_norm": _m(dyntorch.nn.InstanceNorm2d(4, affine=True)),
    "prelu": _m(dyntorch.nn.PReLU(4)),
    "conv_groups_stride": _m(dyntorch.nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2)),
    "conv_dilated": _m(dyntorch.nn.Conv2d(4, 2, 3, dilation=2)),
}

TENSOR_FUNCS = {
    "max_dim": lambda a: a.max(1)[0] + a.min(0).values.sum(),
    "argmax_from_max": lambda a: a.max(1)[1].float(),
    "amax": lambda a: a.amax(1) - a.amin(0).sum(),
    "var_std": lambda a: a.var(1) + a.std(0, keepdim=True).sum() + a.var(),
    "logsumexp": lambda a: dyntorch.logsumexp(a, 1),
    "cumsum": lambda a: a.cumsum(1),
    "topk": lambda a: a.topk(2, 1)[0],
    "sort": lambda a: a.sort(1, descending=True)[0],
    "index_basic": lambda a: a[1:, ::2] * 2.0 + a[:, None, 0].sum(),
    "index_int": lambda a: a[-1, :3] + a[:, 2],
    "index_array": lambda a: a[:, [0, 2, 2]],
    "gather": lambda a: a.gather(1, dyntorch.tensor([[0, 1], [2, 2], [1, 0]])),
    "index_select": lambda a: a.index_select(1, dyntorch.tensor([3, 0])),
    "masked_fill": lambda a: a.masked_fill(a > 0.5, -1.0),
    "norm": lambda a: dyntorch.linalg.vector_norm(a, dim=1),
    "tril_flip_repeat": lambda a: a.tril().flip(1).repeat(2, 1),
    "expand": lambda a: a[:, :1].expand(3, 4) + a,
    "linear_3d": lambda a: F.linear(a.reshape(3, 2, 2), dyntorch.ones(5, 2)),
    "einsum": lambda a: dyntorch.einsum("ij,kj->ik", a, a),
}


@pytest.mark.parametrize("name", sorted(IMG_FUNCS))
def test_image_layers(name, rng, tmp_path):
    x = dyntorch.tensor(rng.standard_normal((2, 4, 7, 7)).astype(np.float32))
    check(IMG_FUNCS[name], x, tmp_path)


@pytest.mark.parametrize("name", sorted(TENSOR_FUNCS))
def test_tensor_ops(name, rng, tmp_path):
    x = dyntorch.tensor(rng.standard_normal((3, 4)).astype(np.float32))
    check(TENSOR_FUNCS[name], x, tmp_path)
