"""What backward keeps: auxiliary outputs (``@op(aux=...)``) are read by derivatives without a
version check, while saved inputs stay checked. Gradients are compared with torch 2.13 in
float64, with the result changed in place after the op as user code does (``out += identity``,
``ReLU(inplace=True)``, ``loss += reg``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch as T

import dyntorch as D
from dyntorch._dispatch import op


def _both(fn, *arrays):
    """fn(lib, *leaf tensors) run in torch and dyntorch: (grads torch, grads dyntorch)."""
    res = []
    for lib in (T, D):
        xs = [lib.tensor(a, requires_grad=True) for a in arrays]
        fn(lib, *xs).backward()
        res.append([None if x.grad is None else x.grad.numpy() for x in xs])
    return res


def _close(res, rtol=1e-9, atol=1e-12):
    for a, b in zip(*res):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)


RNG = np.random.default_rng(0)


@pytest.mark.parametrize("kind", ["batch", "layer", "group"])
def test_norm_result_changed_in_place(kind):
    x, w, b = RNG.standard_normal((4, 6, 3, 3)), RNG.standard_normal(6), RNG.standard_normal(6)

    def f(lib, x, w, b):
        F = lib.nn.functional
        if kind == "batch":
            y = F.batch_norm(x, None, None, w, b, training=True)
        elif kind == "layer":
            y = F.layer_norm(x, (3, 3))
        else:
            y = F.group_norm(x, 3, w, b)
        y += x  # the residual add of a ResNet block, then its in-place ReLU
        F.relu(y, inplace=True)
        return (y * y * w.reshape(6, 1, 1)).sum()

    _close(_both(f, x, w, b))


def test_batch_norm_eval_reads_the_statistics_of_its_forward():
    # running statistics updated between forward and backward (a training step in between)
    # do not change the gradient: backward reads the forward's copy, so the gradient is the
    # derivative of what the forward computed, as torch's is when nothing intervenes. (torch
    # itself reads the updated buffers at backward time, which its kernels change without a
    # version bump, so its gradient here would use the new statistics.)
    x = RNG.standard_normal((5, 3, 2))
    rm0, rv0 = RNG.standard_normal(3), RNG.random(3) + 0.5
    res = []
    for lib in (T, D):
        xt = lib.tensor(x, requires_grad=True)
        rm, rv = lib.tensor(rm0), lib.tensor(rv0)
        y = lib.nn.functional.batch_norm(xt, rm, rv, training=False)
        if lib is D:
            lib.nn.functional.batch_norm(lib.tensor(x * 3 + 1), rm, rv, training=True,
                                         momentum=0.5)
            assert not np.allclose(rv.numpy(), rv0)
        (y * y).sum().backward()
        res.append([xt.grad.numpy()])
    _close(res)


def test_max_pool_overlapping_windows_result_changed_in_place():
    x = RNG.standard_normal((2, 2, 7, 7))

    def f(lib, x):
        y = lib.nn.functional.max_pool2d(x, 3, stride=2, padding=1)
        y.mul_(2.0)
        return (y * y).sum()

    _close(_both(f, x))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_result_changed_in_place_and_double_backward(approximate):
    x = RNG.standard_normal((3, 4))
    res = []
    for lib in (T, D):
        xt = lib.tensor(x, requires_grad=True)
        y = lib.nn.functional.gelu(xt, approximate=approximate)
        (gx,) = lib.autograd.grad(y.sum(), xt, create_graph=True)
        y.sub_(0.5)
        (gx.sum() + (y * y).sum()).backward()
        res.append([xt.grad.numpy()])
    _close(res)


def test_cross_entropy_loss_plus_regulariser_in_place():
    x, t = RNG.standard_normal((5, 4)), np.array([0, 3, 1, 1, 2])
    res = []
    for lib in (T, D):
        xt = lib.tensor(x, requires_grad=True)
        loss = lib.nn.functional.cross_entropy(xt, lib.tensor(t), label_smoothing=0.1)
        loss += (xt * xt).sum() * 0.01
        loss.backward()
        res.append([xt.grad.numpy()])
    _close(res)


def test_changed_input_still_raises():
    # auxiliary outputs free the result, not the inputs: gelu reads its input too
    x = D.randn(3, requires_grad=True)
    h = x * 1.0
    y = D.nn.functional.gelu(h)
    h.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# a test op: y = 2 a with auxiliaries s = 3 a (read by the derivative) and u (never read)
@op(name="_test_aux_scale", aux=("s", "u"))
def _aux_scale(xp, a):
    return 2.0 * a, 3.0 * a, a + 100.0


@_aux_scale.def_derivative
def _(ns, g, _a, s):
    return g * s  # d(2a)/da is 2; the 3a here shows which saved value the derivative got


def test_aux_declared_op_keeps_only_what_the_derivative_names():
    assert _aux_scale.aux_take == (("s", -2),) and _aux_scale.uses == (False,)
    a = D.tensor([1.0, -2.0], requires_grad=True)
    y, s, u = _aux_scale(a)
    node = y.grad_fn
    assert len(node.aux) == 1 and node.aux[0] is s._data
    y.mul_(5.0)  # the result changed in place: nothing reads it
    y.backward(D.ones(2))
    np.testing.assert_array_equal(a.grad.numpy(), [15.0, -30.0])  # 5 g * s, s = 3a
    assert node.aux is None  # freed with the rest of the node's saved values
    with pytest.raises(RuntimeError, match="second time"):
        y.backward(D.ones(2))


@pytest.mark.parametrize("k", [2, 3, (2, 3)])
def test_max_pool_tiling_windows_with_ties(k):
    # windows that tile the input exactly take the derivative's fast branch; ReLU zeros make
    # ties, where torch sends the gradient to the first maximum of each window only
    x = np.maximum(RNG.standard_normal((2, 3, 6, 6)), 0.0)
    x[0, 0, :2, :3] = 0.0

    def f(lib, x):
        y = lib.nn.functional.max_pool2d(x, k)
        y.add_(1.0)
        return (y * y).sum()

    _close(_both(f, x))


@pytest.mark.parametrize("expr", ["y * 1.5", "1.5 * y", "y / 2.0", "y * 2", "y - 1.0",
                                  "y * 1.5 + 1.0"])
def test_input_beside_a_number_may_change_in_place(expr):
    # torch's derivative of `y * 1.5` or `y / 2` reads only the number: changing y in place
    # afterwards is allowed, and the gradient is the one of the values used
    x = RNG.standard_normal((3, 4))

    def f(lib, x):
        y = x * 1.0  # a non-leaf, so that it may change in place
        z = eval(expr, {"y": y})
        y.add_(10.0)
        y.mul_(3.0)
        return (z * z).sum()

    _close(_both(f, x))


@pytest.mark.parametrize("expr", ["y * w", "w * y", "y / w", "y ** 2"])
def test_input_beside_a_tensor_changed_in_place_still_raises(expr):
    # the same change where the derivative reads y: torch and dyntorch both refuse
    x, w = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4)) + 3.0
    for lib in (T, D):
        xs, ws = lib.tensor(x, requires_grad=True), lib.tensor(w, requires_grad=True)
        y = xs * 1.0
        z = eval(expr, {"y": y, "w": ws})
        y.add_(1.0)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()


def test_mul_by_a_number_in_place_saves_no_copy_and_keeps_the_gradient():
    x = RNG.standard_normal((3, 4))

    def f(lib, x):
        y = x * 1.0
        z = y * 4.0
        y.mul_(2.0)  # the node of this in-place op saves nothing: its input is y beside 2.0
        return (z * y).sum()

    _close(_both(f, x))
