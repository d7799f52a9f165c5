"""The Tensor itself: repr in torch's layout, conversions, iteration, higher-order gradients."""
from __future__ import annotations

import numpy as np
import pytest
from _opcheck import check_double

import dyntorch

R = np.random.default_rng(5)

REPR_CASES = [
    np.array([1.0, 2.0]),
    np.array([[7.8659, 0.1644], [-10.25, 3.0]]),
    R.standard_normal((3, 2)) * 5,
    np.array([1e-5, 1.0]),
    np.array([1e9, 1.0]),
    np.array([0.0, 0.0]),
    np.array([np.nan, 1.0, np.inf, -np.inf]),
    np.array([100.0, 2000.0]),
    np.array([-0.0001234, 5.0]),
    np.array(3.5),
    np.array(2.0),
    np.array([1, 2, -300]),
    np.array(7),
    np.array([True, False]),
    np.array([True, True]),
    R.standard_normal(30),
    R.standard_normal(2000),
    R.standard_normal((50, 40)),
    R.standard_normal((3, 4, 5)),
    R.standard_normal((2, 3, 1000)),
    np.arange(1200).reshape(30, 40),
    np.zeros((0, 3)),
    np.zeros(0),
    np.zeros(0, dtype=np.int64),
    np.array([1, 2], dtype=np.int32),
    np.array([1.5, 2.0], dtype=np.float64),
    np.array([1.5, 2.0], dtype=np.float16),
    np.array([1, 2], dtype=np.uint8),
]


def _norm(s: str, lib: str) -> str:
    return s.replace(lib + ".", "")


@pytest.mark.parametrize("i", range(len(REPR_CASES)))
def test_repr_matches_torch(torch, i):
    a = REPR_CASES[i]
    if a.dtype == np.float64 and i != 25:
        a = a.astype(np.float32)
    assert _norm(repr(dyntorch.from_numpy(a.copy())), "dyntorch") == \
        _norm(repr(torch.from_numpy(a.copy())), "torch")


def test_repr_autograd_suffixes(torch):
    for build in (lambda m: m.ones(2, requires_grad=True),
                  lambda m: m.ones(2, requires_grad=True) * 2,
                  lambda m: m.ones(3, 2, requires_grad=True).sum(0),
                  lambda m: m.ones(2, dtype=m.float64, requires_grad=True).exp(),
                  lambda m: m.randn(7, requires_grad=True).tanh() * 0 + 1.5,
                  lambda m: (m.ones(2, 2, requires_grad=True) @ m.ones(2, 2)),
                  lambda m: m.zeros(12, requires_grad=True) + 1234.5678):
        assert _norm(repr(build(dyntorch)), "dyntorch") == _norm(repr(build(torch)), "torch")


def test_print_options(torch):
    x = np.array([1.23456789, 2.5])
    try:
        dyntorch.set_printoptions(precision=2)
        torch.set_printoptions(precision=2)
        assert repr(dyntorch.tensor(x, dtype=dyntorch.float32)) == repr(
            torch.tensor(x, dtype=torch.float32))
        dyntorch.set_printoptions(sci_mode=True)
        torch.set_printoptions(sci_mode=True)
        assert repr(dyntorch.tensor(x, dtype=dyntorch.float32)) == repr(
            torch.tensor(x, dtype=torch.float32))
    finally:
        dyntorch.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")
    assert repr(dyntorch.tensor(x, dtype=dyntorch.float32)) == repr(
            torch.tensor(x, dtype=torch.float32))


def test_conversions():
    t = dyntorch.tensor([[1.5, 2.0], [3.0, 4.0]])
    assert t.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert t[0, 1].item() == 2.0 and float(t[1, 0]) == 3.0 and int(t[1, 1]) == 4
    assert len(t) == 2 and t.shape == (2, 2) and t.size(1) == 2 and t.dim() == 2
    assert bool(dyntorch.tensor([1])) and not bool(dyntorch.tensor(0.0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t)
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        t.item()
    assert [r.tolist() for r in t] == [[1.5, 2.0], [3.0, 4.0]]
    assert list(range(10))[dyntorch.tensor(3)] == 3


def test_iteration_gradient(torch):
    def fn(m, x):
        return m.stack([r * r * (i + 1) for i, r in enumerate(x)]).sum(0)

    check_double(torch, fn, R.standard_normal((3, 2)))


HIGHER_ORDER = {
    "exp": lambda m, x, y: x.exp() * y,
    "mul": lambda m, x, y: x * y * x,
    "matmul": lambda m, x, y: (x @ y.t()) ** 2,
    "sum": lambda m, x, y: (x.sum(1, keepdim=True) * y) ** 2,
    "getitem": lambda m, x, y: x[m.tensor([0, 0, 1]), 1:] ** 2 * y[0, 1:],
    "tanh": lambda m, x, y: m.tanh(x * y),
    "pow": lambda m, x, y: x.abs() ** 2.5 + x ** y.abs(),
}


@pytest.mark.parametrize("name", sorted(HIGHER_ORDER))
def test_higher_order_gradients(torch, name):
    x = R.uniform(0.5, 1.5, (2, 3))
    y = R.standard_normal((2, 3))
    check_double(torch, HIGHER_ORDER[name], x, y)


def test_third_order_tanh(torch):
    out = []
    for m in (dyntorch, torch):
        x = m.tensor([0.3, -0.7], dtype=m.float64, requires_grad=True)
        y = m.tanh(x).sum()
        (g1,) = m.autograd.grad(y, x, create_graph=True)
        (g2,) = m.autograd.grad(g1.sum(), x, create_graph=True)
        (g3,) = m.autograd.grad(g2.sum(), x)
        out.append([np.array(g.detach().tolist()) for g in (g1, g2, g3)])
    for a, b in zip(*out):
        np.testing.assert_allclose(a, b, rtol=1e-10)


SECOND_ORDER = {
    "roll": lambda m, x: x.roll(1, 1)**2,
    "roll none": lambda m, x: x.roll(2)**2,
    "flip": lambda m, x: x.flip(0)**2,
    "tril": lambda m, x: x.tril()**2,
    "triu": lambda m, x: m.triu(x,1)**2,
    "repeat": lambda m, x: x.repeat(2,1)**2,
    "diag": lambda m, x: m.diag(x)**2,
    "diag1d": lambda m, x: m.diag(x[0])**2,
    "expand": lambda m, x: x[:1].expand(3,4)**2 * x,
    "amax": lambda m, x: x.amax(1)**2,
    "max": lambda m, x: x.max()**2 * x,
    "min dim": lambda m, x: x.min(0).values**2,
    "topk": lambda m, x: x.topk(2).values**2,
    "prod": lambda m, x: x.prod(1)**2,
    "std": lambda m, x: x.std(0)**2,
    "var": lambda m, x: x.var()*x,
    "norm1": lambda m, x: x.norm(1, 1)**2,
    "norm inf": lambda m, x: x.norm(float('inf'), 1)**2,
    "norm3": lambda m, x: x.norm(3)*x,
    "cumprod": lambda m, x: x.cumprod(1)**2,
    "logsumexp": lambda m, x: x.logsumexp(0)**2,
    "scatter": lambda m, x: m.scatter(x, 1, m.tensor([[0,1],[2,3],[1,2]]), x[:, :2]*2)**2,
    "scatter_add": lambda m, x: x.scatter_add(1, m.tensor([[0,1],[2,3],[1,1]]), x[:, :2]*2)**2,
    "index_add": lambda m, x: x.index_add(0, m.tensor([0,0]), x[:2]*3)**2,
    "index_put": lambda m, x: x.index_put((m.tensor([0,1]),), x[1:3]*2)**2,
    "masked_select": lambda m, x: m.masked_select(x, x>0)**2,
    "take_along": lambda m, x: m.take_along_dim(x, m.tensor([[0],[1],[3]]), 1)**2,
    "cat": lambda m, x: m.cat([x, x*2], 0)**2,
    "stack": lambda m, x: m.stack([x, x*2], 1)**2,
    "unbind": lambda m, x: m.stack([r*r for r in x.unbind(1)]),
    "split": lambda m, x: m.cat([p**2 for p in x.split(2, 1)], 0),
    "einsum diag": lambda m, x: m.einsum('ii->i', x[:, :3])**2,
    "einsum sum": lambda m, x: m.einsum('ij->', x)**2 * x,
    "tensordot": lambda m, x: m.tensordot(x, x, dims=([1],[1]))**2,
    "outer": lambda m, x: m.outer(x[0], x[1])**2,
    "dot": lambda m, x: m.dot(x[0], x[1])**2 * x,
    "median": lambda m, x: x.median(1).values**2,
    "quantile": lambda m, x: m.quantile(x, 0.3, 1)**2,
    "cross": lambda m, x: m.linalg.cross(x[:, :3], x[:, 1:])**2,
    "slogdet": lambda m, x: m.linalg.slogdet(x[:, :3] + 3*m.eye(3, dtype=x.dtype)).logabsdet * x,
    "solve": lambda m, x: m.linalg.solve(x[:, :3] + 3*m.eye(3, dtype=x.dtype), x[:, 3:]) ** 2,
    "unfold": lambda m, x: x.unfold(1, 2, 1)**2,
    "gather": lambda m, x: x.gather(0, m.tensor([[2,1,0,0]]))**2,
    "sort desc": lambda m, x: x.sort(1, descending=True).values**2,
    "cummax": lambda m, x: m.cummax(x, 1).values**2,
    "diagonal": lambda m, x: x.diagonal(1)**2,
    "movedim": lambda m, x: x.unsqueeze(0).movedim(0, 2)**2,
    "rot90": lambda m, x: m.rot90(x)**2,
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_second_order_sweep(torch, name):
    """create_graph=True through the core op families: second derivatives equal torch's."""
    check_double(torch, SECOND_ORDER[name], R.standard_normal((3, 4)))


def _set_rows(m, x):
    y = x * 1
    y[0] = 2.5
    y[1, :2] = x[2, :2] * 3
    return y


FLOAT32 = {
    "sum/mean": lambda m, x: (x.sum(), x.sum(1), x.mean(), x.mean(0)),
    "var/std": lambda m, x: (x.var(), x.std(1)),
    "prod": lambda m, x: x.abs().prod(1),
    "max": lambda m, x: (x.max(), x.max(1), x.amax(0)),
    "logsumexp": lambda m, x: x.logsumexp(1),
    "norm": lambda m, x: (x.norm(), x.norm(1, 1), x.norm(float("inf")), x.norm(3, 0)),
    "cumulative": lambda m, x: (x.cumsum(1), x.cumprod(0)),
    "quantile": lambda m, x: (x.median(), m.quantile(x, 0.3, 1)),
    "products": lambda m, x: (x @ x.t(), m.einsum("ij,kj->ik", x, x),
                              m.det(x[:, :3] + 3 * m.eye(3)), m.cdist(x, x * 2)),
    "indexing": lambda m, x: (x[[0, 2], 1:], x.masked_fill(x > 0, 1.5), _set_rows(m, x),
                              x.sort(1, descending=True), x.topk(2)),
    "joins": lambda m, x: (m.cat([x, x * 2]), m.stack([x, x]), m.trapezoid(x, dx=0.5)),
}


@pytest.mark.parametrize("name", sorted(FLOAT32))
def test_float32_results_keep_dtype(torch, name):
    """float32 in, float32 out (no silent float64), values and grads within float32 rounding."""
    from _opcheck import check

    check(torch, FLOAT32[name], R.standard_normal((3, 4)).astype(np.float32), rtol=2e-5,
          atol=1e-5)
