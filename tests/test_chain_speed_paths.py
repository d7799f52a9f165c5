"""The short cuts bench_core.py's chain takes give the gradients torch gives.

``t.sum()`` of a float tensor (one keyword to the door), a Python number's product in the
derivative of ``mul`` (a cached 0-d array on NumPy), the user's source line taken without a
``capture_source`` call, and a single root that skips the ready heap.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import dyntorch as dt

RNG = np.random.default_rng(7)


def _pair(shape, dtype=np.float64):
    x = RNG.standard_normal(shape).astype(dtype)
    return dt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


@pytest.mark.parametrize("shape", [(4, 4), (3,), (), (2, 0)])
def test_sum_of_everything_matches_torch(shape):
    a, ta = _pair(shape)
    y, ty = a.sum(), ta.sum()
    assert y.shape == ty.shape == ()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    assert y.grad_fn.name() == ty.grad_fn.name()
    (y * 3.0).backward()
    (ty * 3.0).backward()
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())


def test_sum_other_arguments_still_take_their_path():
    a, ta = _pair((3, 4))
    for kw in ({"dim": 1}, {"dim": 0, "keepdim": True}, {"dtype": dt.float32}, {"axis": 1}):
        tkw = dict(kw)
        if "dtype" in tkw:
            tkw["dtype"] = torch.float32
        if "axis" in tkw:
            tkw["dim"] = tkw.pop("axis")
        y, ty = a.sum(**kw), ta.sum(**tkw)
        assert y.shape == tuple(ty.shape) and y.dtype.name == str(ty.dtype).split(".")[-1]
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-6)
    ints = dt.tensor([[1, 2], [3, 4]])
    assert ints.sum().dtype == dt.int64 and int(ints.sum()) == 10
    bools = dt.tensor([True, False, True])
    assert int(bools.sum()) == 2


def test_sum_does_not_keep_its_input_for_backward():
    # torch's SumBackward0 saves only the shape: changing the input in place afterwards is fine
    a, ta = _pair((3,))
    h, th = a * 2.0, ta * 2.0
    y, ty = h.sum(), th.sum()
    with dt.no_grad():
        h.add_(1.0)
    with torch.no_grad():
        th.add_(1.0)
    y.backward()
    ty.backward()
    np.testing.assert_array_equal(a.grad.numpy(), ta.grad.numpy())


def test_sum_twice_backward_and_create_graph():
    a, ta = _pair((2, 3))
    y, ty = (a * a).sum(), (ta * ta).sum()
    (g,) = dt.autograd.grad(y, a, create_graph=True)
    (tg,) = torch.autograd.grad(ty, ta, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-12)
    g.sum().backward()
    tg.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match="second time"):
        y2 = (a * 1.5).sum()
        y2.backward()
        y2.backward()


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # 2**60 in float16
@pytest.mark.parametrize("number", [0.5, -3, 2.0 ** 60, 0.0, -0.0, 1e-45, float("inf")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_scalar_product_gradient_matches_torch(number, dtype):
    a, ta = _pair((3, 2), dtype)
    out, tout = a * number, ta * number
    right, tright = number * a, number * ta
    seed = RNG.standard_normal((3, 2)).astype(dtype)
    (out + right).backward(dt.tensor(seed))
    (tout + tright).backward(torch.tensor(seed))
    assert a.grad.dtype.name == str(ta.grad.dtype).split(".")[-1]
    # the sign of a zero gradient too (0.0 and -0.0 must not share a cached operand)
    np.testing.assert_array_equal(np.signbit(a.grad.numpy()), np.signbit(ta.grad.numpy()))
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-3 if dtype is
                               np.float16 else 1e-6)


def test_scalar_product_bfloat16_and_higher_order():
    x = RNG.standard_normal(5).astype(np.float32)
    a = dt.tensor(x, dtype=dt.bfloat16, requires_grad=True)
    ta = torch.tensor(x, dtype=torch.bfloat16, requires_grad=True)
    (a * 3.3).sum().backward()
    (ta * 3.3).sum().backward()
    assert a.grad.dtype == dt.bfloat16
    np.testing.assert_array_equal(a.grad.float().numpy(), ta.grad.float().numpy())
    b, tb = _pair((4,))
    (g,) = dt.autograd.grad(((b * b) * 0.25).sum(), b, create_graph=True)
    (tg,) = torch.autograd.grad(((tb * tb) * 0.25).sum(), tb, create_graph=True)
    (g * 2.0).sum().backward()
    (tg * 2.0).sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-12)


def test_chain_against_torch_and_finite_differences():
    a, ta = _pair((4, 4))
    b, tb = _pair((4, 4))

    def chain(x, y):
        z = ((x * y + x) * 0.5).relu() + 1.0
        return ((z.tanh() * y).exp() - x) * 0.5

    chain(a, b).sum().backward()
    chain(ta, tb).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), tb.grad.numpy(), rtol=1e-12)
    x0, y0 = a.detach().numpy().copy(), b.detach().numpy()
    eps, k = 1e-6, (1, 2)
    up, down = x0.copy(), x0.copy()
    up[k] += eps
    down[k] -= eps
    fd = (chain(dt.tensor(up), dt.tensor(y0)).sum().item()
          - chain(dt.tensor(down), dt.tensor(y0)).sum().item()) / (2 * eps)
    assert abs(fd - a.grad.numpy()[k]) < 1e-6


def test_source_line_of_each_op_is_the_callers():
    a, _ = _pair((2,))

    def inner(x):
        return x * 2.0  # the line recorded for the mul

    import inspect

    here = inspect.currentframe().f_lineno
    y = a + 1.0  # here + 1
    z = inner(y)
    w = inner(a)
    line = inspect.getsourcelines(inner)[1] + 1
    assert z.grad_fn.source[1] == line and w.grad_fn.source[1] == line
    assert y.grad_fn.source[1] == here + 1
    assert z.grad_fn.source[0] == __file__


def test_one_root_and_several_roots():
    a, ta = _pair((3,))
    y1, y2 = (a * 2.0).sum(), (a.exp()).sum()
    ty1, ty2 = (ta * 2.0).sum(), (ta.exp()).sum()
    dt.autograd.backward([y1, y2])
    torch.autograd.backward([ty1, ty2])
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)
    r = a * 3.0  # a non-scalar root with a given gradient
    seed = RNG.standard_normal(3)
    r.backward(dt.tensor(seed))
    (ta * 3.0).backward(torch.tensor(seed))
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-12)


def test_a_multi_grad_hook_goes_with_its_tensors():
    # left registered, its engine observer would make every later backward build Steps
    from dyntorch.autograd import engine as E

    before = list(E.observers)
    a = dt.tensor([1.0, 2.0], requires_grad=True)
    b = dt.tensor([3.0], requires_grad=True)
    calls = []
    dt.autograd.graph.register_multi_grad_hook((a, b), calls.append)
    assert len(E.observers) == len(before) + 1
    ((a * b).sum() * 2).backward()
    assert [[g.tolist() for g in gs] for gs in calls] == [[[6.0, 6.0], [6.0]]]
    del a
    assert len(E.observers) == len(before) + 1  # b still alive: the hook stays
    del b
    assert E.observers == before
