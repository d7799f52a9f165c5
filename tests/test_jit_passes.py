"""Graph passes on traced graphs: DCE, constant folding, elementwise fusion (CPU and GPU)."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch
from dyntorch import jit
from dyntorch.jit import _fusion, _passes
from dyntorch.jit._ir import FUSED


def _chain(a, w, b):
    wt = w.permute(1, 0) * 0.5 + 1.0          # depends on constants only: folded
    h = (a * wt + b).relu()                    # a chain of 3 elementwise ops on the input
    g = dyntorch.tanh(h * 0.1 - 0.2).exp()     # a second chain
    return g.sum(1), h


@pytest.fixture
def model(rng):
    w = dyntorch.tensor(rng.standard_normal((8, 64)).astype(np.float32))
    b = dyntorch.tensor(rng.standard_normal(8).astype(np.float32))
    x = dyntorch.tensor(rng.standard_normal((16, 64, 8)).astype(np.float32))
    return (lambda a: _chain(a, w, b)), x


def test_dce_removes_unused_nodes_and_constants():
    c = dyntorch.randn(3)

    def f(a):
        (a * c).exp()  # result dropped
        return a + 1.0

    tracer_graph = jit.trace(f, dyntorch.randn(3)).graph
    assert tracer_graph.op_counts() == {"add": 1}
    assert tracer_graph.consts == {}


def test_constant_folding_evaluates_parameter_only_ops(model):
    f, x = model
    traced = jit.trace(f, x)
    before = traced.graph.op_counts()
    assert before["permute"] == 1
    frozen = jit.freeze(traced)
    after = frozen.graph.op_counts()
    assert "permute" not in after and after["mul"] == before["mul"] - 1
    assert after["add"] == before["add"] - 1
    np.testing.assert_allclose(frozen(x)[0].numpy(), f(x)[0].numpy(), rtol=1e-5, atol=1e-5)


def test_fusion_merges_elementwise_chains_and_matches(model):
    f, x = model
    opt = jit.optimize_for_inference(jit.trace(f, x))
    counts = opt.graph.op_counts()
    # (a*wt+b).relu() is one chain; tanh(h*0.1-0.2).exp() another (h is also an output,
    # so the two chains stay apart)
    assert counts == {FUSED: 2, "sum": 1}, counts
    assert "prim::fused[mul -> add -> relu]" in str(opt.graph)
    for got, want in zip(opt(x), f(x)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_fused_cpu_kernel_reuses_buffers(model):
    f, x = model
    opt = jit.optimize_for_inference(jit.trace(f, x))
    node = next(n for n in opt.graph.nodes if n.op == FUSED)
    src, _ = _fusion.cpu_source(node.steps, len(node.args), (), "float32")
    assert "out=t0" in src and "out=t1" in src  # one allocation for the whole chain


def test_fused_graph_saves_and_loads(tmp_path, model):
    f, x = model
    opt = jit.optimize_for_inference(jit.trace(f, x))
    opt.save(tmp_path / "o.dtj")
    back = jit.load(tmp_path / "o.dtj")
    assert str(back.graph) == str(opt.graph)
    for got, want in zip(back(x), f(x)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_chain_does_not_swallow_values_used_elsewhere():
    def f(a):
        u = a * 2.0
        v = u + 1.0
        return v.exp() * u  # u is read by two ops: chain must keep it available

    x = dyntorch.randn(4, 5)
    opt = jit.optimize_for_inference(jit.trace(f, x))
    np.testing.assert_allclose(opt(x).numpy(), f(x).numpy(), rtol=1e-6)


def test_stepwise_fallback_matches():
    x = dyntorch.randn(4, 5)
    opt = jit.optimize_for_inference(jit.trace(lambda a: (a * 2.0).sigmoid() + 1.0, x))
    node = next(n for n in opt.graph.nodes if n.op == FUSED)
    run = _fusion._stepwise(node.steps)
    np.testing.assert_allclose(run(np, x.numpy()), ((x * 2.0).sigmoid() + 1.0).numpy())


def test_cuda_kernel_source_spells_the_chain():
    x = dyntorch.randn(4, 5)
    b = dyntorch.randn(5)
    opt = jit.optimize_for_inference(jit.trace(lambda a: ((a * 2.0 + b).relu()).exp(), x))
    node = next(n for n in opt.graph.nodes if n.op == FUSED)
    in_dtypes = [opt.graph.values[r.i].dtype for r in node.args]
    ins, outs, body = _fusion.cuda_source(node.steps, in_dtypes, "float32")
    assert ins == "float in0, float in1" and outs == "float out0"
    assert body == ("float t0 = (in0 * ((float)2.0)); float t1 = (t0 + in1); "
                    "float t2 = max(t1, (float)0); float t3 = exp(t2); out0 = t3;")
    assert _fusion.cuda_source(node.steps, in_dtypes, "int64") is None


@pytest.mark.cuda
def test_fused_gpu_matches_cpu():
    x = dyntorch.randn(64, 32)
    b = dyntorch.randn(32)
    f = lambda a: ((a * 2.0 + b).relu() - 0.5).tanh()  # noqa: E731
    opt = jit.optimize_for_inference(jit.trace(f, x)).cuda()
    got = opt(x.cuda()).cpu().numpy()
    np.testing.assert_allclose(got, f(x).numpy(), rtol=1e-5, atol=1e-6)


def test_passes_keep_graph_valid_under_compact(model):
    f, x = model
    g = jit.trace(f, x).graph
    g2 = _passes.optimize(g)
    idx = [v.idx for v in g2.values]
    assert idx == list(range(len(g2.values)))


@pytest.mark.parametrize("kind", ["conv", "conv_nobias", "linear"])
def test_batchnorm_folds_into_conv_and_linear(kind):
    nn = dyntorch.nn
    dyntorch.manual_seed(0)
    if kind == "linear":
        m = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU())
        make = lambda n: dyntorch.randn(n, 6)  # noqa: E731
    else:
        m = nn.Sequential(nn.Conv2d(2, 4, 3, bias=kind == "conv"), nn.BatchNorm2d(4), nn.ReLU())
        make = lambda n: dyntorch.randn(n, 2, 6, 6)  # noqa: E731
    m.train()
    for _ in range(3):  # non-trivial running statistics and affine parameters
        m(make(8) * 3 + 1)
    with dyntorch.no_grad():
        m[1].weight.mul_(1.5)
        m[1].bias.add_(0.3)
    m.eval()
    x = make(4)
    opt = jit.optimize_for_inference(jit.trace(m, x))
    assert "batch_norm" not in opt.graph.op_counts()
    np.testing.assert_allclose(opt(x).numpy(), m(x).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_batchnorm_not_folded_when_conv_output_is_used_elsewhere():
    nn = dyntorch.nn
    conv, bn = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2).eval()
    x = dyntorch.randn(2, 1, 5, 5)
    f = lambda a: (lambda y: bn(y) + y)(conv(a))  # noqa: E731
    opt = jit.optimize_for_inference(jit.trace(f, x))
    assert "batch_norm" in opt.graph.op_counts()
    np.testing.assert_allclose(opt(x).numpy(), f(x).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_dag_of_chains_fuses_into_one_node():
    def gelu(a):  # two chains meet in the last multiply
        return 0.5 * a * (1.0 + dyntorch.tanh(0.79788456 * (a + 0.044715 * a * a * a)))

    x = dyntorch.randn(6, 7)
    opt = jit.optimize_for_inference(jit.trace(gelu, x))
    assert opt.graph.op_counts() == {FUSED: 1}
    np.testing.assert_allclose(opt(x).numpy(), gelu(x).numpy(), rtol=1e-6, atol=1e-6)
    node = opt.graph.nodes[0]
    src, _ = _fusion.cpu_source(node.steps, len(node.args), (), "float32")
    assert src.count("out=") == len(node.steps) - 2  # two buffers for nine ops
