"""A tensor beside a Python number in mul and div (``t * c``, ``c * t``, ``t / c``) is not
saved for backward, as in torch (``OpDef.scalar_uses``/``used``): changing it in place before
backward is allowed, everything else is version-checked as before. Gradients against torch
2.13 in float64, and the graph view's list of saved inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import dyntorch as dt
from dyntorch.viz.graph import graph_json

X = [1.0, -2.0, 3.0, 0.5]
RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------- scalar_uses
def _after_inplace(lib, make, change):
    """x.grad of ``make(y).sum()`` where ``y`` (a non-leaf) is changed in place by ``change``
    after ``make`` used it; or the error's class name."""
    x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
    y = x.clone()
    z = make(lib, y)
    change(y)
    try:
        z.sum().backward()
    except RuntimeError as e:
        return type(e).__name__ + (": inplace" if "inplace" in str(e) else "")
    return x.grad.tolist()


_SCALAR_OPS = {
    "t*2.5": lambda L, y: y * 2.5,
    "2.5*t": lambda L, y: 2.5 * y,
    "t*3": lambda L, y: y * 3,
    "t*True": lambda L, y: y * True,
    "t/4": lambda L, y: y / 4,
    "t/2.5": lambda L, y: y / 2.5,
    "t.mul(2)": lambda L, y: y.mul(2),
    "t.div(2)": lambda L, y: y.div(2),
    "torch.mul(t,2)": lambda L, y: L.mul(y, 2),
    "torch.div(t,2)": lambda L, y: L.div(y, 2),
    "np.float64*t": lambda L, y: np.float64(2.5) * y,
    "t*np.float32": lambda L, y: y * np.float32(1.5),
    "t*np.int64": lambda L, y: y * np.int64(3),
    # torch's reverse operators: 2.5 / t is reciprocal(t) * 2.5 (the reciprocal saves its
    # result, so t may change), 1 - t is rsub (saves nothing), 2 ** t saves t and the result
    "2.5/t": lambda L, y: 2.5 / y,
    "1/t": lambda L, y: 1 / y,
    "np.float32/t": lambda L, y: np.float32(3.0) / y,
    "1-t": lambda L, y: 1 - y,
    "2**t": lambda L, y: 2 ** y,
    # the tensor is read by these derivatives: the in-place change must be refused
    "t*t": lambda L, y: y * y,
    "t.div(2).mul(3)": lambda L, y: y.div(2.0).mul(3),
}
_CHANGES = {"add_": lambda y: y.add_(1.0), "mul_": lambda y: y.mul_(3.0),
            "div_": lambda y: y.div_(4.0)}


@pytest.mark.parametrize("change", sorted(_CHANGES))
@pytest.mark.parametrize("name", list(_SCALAR_OPS))
def test_scalar_operand_inplace_change_before_backward_matches_torch(name, change):
    got = _after_inplace(dt, _SCALAR_OPS[name], _CHANGES[change])
    want = _after_inplace(torch, _SCALAR_OPS[name], _CHANGES[change])
    if isinstance(want, str):
        assert got == want
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_inplace_mul_div_by_number_then_backward_through_earlier_consumer():
    # the in-place op copies nothing now: an earlier consumer that saved y must still refuse,
    # and one that did not (y * 2.0) must see the gradient torch gives
    res = {}
    for lib in (dt, torch):
        x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        y = x.clone()
        a = y * 2.0
        y.mul_(3.0).div_(2.0)
        (a.sum() + (y * y).sum()).backward()
        res[lib.__name__] = x.grad.tolist()
        x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        y = x.clone()
        b = y.exp() * y  # saves y
        y.div_(2.0)
        with pytest.raises(RuntimeError, match="inplace"):
            b.sum().backward()
    np.testing.assert_allclose(res["dyntorch"], res["torch"], rtol=1e-12)


def _view_then_inplace(L, y):
    v = y[1:3]
    a = y * 2.0
    v.mul_(3.0)  # the base's node takes the view's new values
    return a + y * 1.5


def _inplace_on_base_of_used_view(L, y):
    a = y[1:3] * 2.0
    y.mul_(3.0)
    return a.sum() + y.sum()


def _chain_of_inplace_by_numbers(L, y):
    y.div_(2.0).mul_(3).div_(True).mul_(True)
    return y * y


def _addcmul_saves_its_tensors(L, y):
    z = L.addcmul(y, y, y, value=2.0)
    y.mul_(2.0)  # torch refuses: addcmul saved y
    return z


@pytest.mark.parametrize("case", [_view_then_inplace, _inplace_on_base_of_used_view,
                                  _chain_of_inplace_by_numbers, _addcmul_saves_its_tensors])
def test_inplace_by_number_on_views_chains_and_saving_ops_matches_torch(case):
    def run(lib):
        x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        try:
            case(lib, x.clone()).sum().backward()
        except RuntimeError as e:
            return "inplace" in str(e)
        return x.grad.tolist()

    got, want = run(dt), run(torch)
    if isinstance(want, bool):
        assert got is True and want is True
    else:
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_double_backward_through_scalar_mul_div_after_inplace_change():
    res = {}
    for lib in (dt, torch):
        x = lib.tensor(X, dtype=lib.float64, requires_grad=True)
        y = x.clone()
        z = (y * 3.0) / 2.0
        y.add_(1.0)
        w = (z ** 3).sum()
        (g,) = lib.autograd.grad(w, x, create_graph=True)
        (g * g).sum().backward()
        res[lib.__name__] = (g.detach().tolist(), x.grad.tolist())
    np.testing.assert_allclose(res["dyntorch"][0], res["torch"][0], rtol=1e-12)
    np.testing.assert_allclose(res["dyntorch"][1], res["torch"][1], rtol=1e-12)


def test_graph_view_saved_list_of_scalar_and_tensor_products():
    x = dt.tensor(X, dtype=dt.float64, requires_grad=True)
    w = dt.tensor(X, dtype=dt.float64)
    v = dt.tensor(X, dtype=dt.float64, requires_grad=True)
    out = ((x * 2.5) / 4 + x * w + x * v + 1.0 / x).sum()
    saved = {n["op"] + ":" + str(n["seq"]): [s["name"] for s in n["saved"]]
             for n in graph_json(out)["nodes"] if n["kind"] != "leaf"}
    by_op = sorted((k.split(":")[0], v) for k, v in saved.items())
    # t*2.5 and t/4 save nothing; x*w (w needs no gradient) saves w only, as torch; x*v
    # saves both; 1/x is torch's reciprocal(x) * 1: the reciprocal saves its result, not x
    assert by_op.count(("MulBackward0", [])) == 2
    assert ("MulBackward0", ["b"]) in by_op
    assert ("MulBackward0", ["a", "b"]) in by_op
    assert by_op.count(("DivBackward0", [])) == 1
    assert ("ReciprocalBackward0", ["out"]) in by_op
    assert not any(op == "DivBackward0" and names for op, names in by_op)


def test_numpy_scalar_through_torch_mul_keeps_dtype_and_is_a_number():
    # torch.mul / torch.div with a NumPy scalar: torch treats it as a Python number (float32
    # stays float32, the tensor is not saved); the operators already do (_other)
    t = dt.ones(3)
    assert dt.mul(t, np.float64(2)).dtype == dt.float32
    assert dt.div(t, np.float64(2)).dtype == dt.float32
    got = _after_inplace(dt, lambda L, y: L.mul(y, np.float64(2)), _CHANGES["add_"])
    want = _after_inplace(torch, lambda L, y: L.mul(y, np.float64(2)), _CHANGES["add_"])
    assert got == want


@pytest.mark.parametrize("other", [2.0, "tensor"])
def test_div_floor_rounding_has_zero_gradients_as_torch(other):
    # torch.div(..., rounding_mode="floor") is DivBackward2 with zero gradients; a // b has
    # none (torch raises at backward); the values are floor division's (1.0 // 0.1 == 9)
    res = []
    for lib in (torch, dt):
        x = lib.tensor([1.5, -2.5, 3.0, 1.0], dtype=lib.float64, requires_grad=True)
        w = lib.tensor([2.0, 3.0, -4.0, 0.1], dtype=lib.float64, requires_grad=True)
        y = lib.div(x, w if other == "tensor" else other, rounding_mode="floor")
        y.sum().backward()
        res.append((y.detach().numpy(), x.grad.numpy(),
                    None if w.grad is None else w.grad.numpy()))
        assert y.grad_fn.name() == "DivBackward2"
    for a, b in zip(*res):
        if a is None:
            assert b is None
        else:
            np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("expr", ["y * m", "m * y", "y / m"])
def test_input_beside_a_tensor_without_gradient_may_change_in_place(expr):
    # torch saves y only to make m's gradient: with m a constant (a mask, a scale), changing
    # y in place before backward is allowed, and the gradient is the one of the values used
    x, m = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4)) + 3.0
    res = []
    for lib in (torch, dt):
        xs = lib.tensor(x, requires_grad=True)
        y = xs * 1.0
        z = eval(expr, {"y": y, "m": lib.tensor(m)})
        y.add_(10.0)
        (z * z).sum().backward()
        res.append(xs.grad.numpy())
    np.testing.assert_allclose(res[1], res[0], rtol=1e-12)


_REVERSE = {"2.5 / t": lambda L, y: 2.5 / y, "3 / t": lambda L, y: 3 / y,
            "1 - t": lambda L, y: 1 - y, "2 ** t": lambda L, y: 2 ** y,
            "pow(2, t)": lambda L, y: L.pow(2, y)}


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16", "int64"])
@pytest.mark.parametrize("name", list(_REVERSE))
def test_reverse_operators_build_torchs_graph_and_bits(name, dtype):
    # a number on the left: the same node names as torch (a viewer's graph reads like
    # torchviz's), the same dtype and, for the float dtypes, the same bits
    x = np.array([0.75, 1.5, 3.0, 7.0])
    res = []
    for L in (dt, torch):
        t = L.tensor(x).to(getattr(L, dtype))
        if t.dtype.is_floating_point:
            t.requires_grad_(True)
        y = t * 1  # a non-leaf, as in a model
        z = _REVERSE[name](L, y)
        names = []
        fn = z.grad_fn
        while fn is not None:
            names.append(fn.name())
            fn = next((e[0] for e in fn.next_functions if e[0] is not None and
                       "AccumulateGrad" not in e[0].name()), None)
        grad = None
        if t.requires_grad:
            z.float().sum().backward()
            grad = t.grad.float().tolist()
        res.append((str(z.dtype).split(".")[-1], z.float().tolist(), names, grad))
    (dtype_d, val_d, names_d, grad_d), (dtype_t, val_t, names_t, grad_t) = res
    assert (dtype_d, names_d) == (dtype_t, names_t)
    if dtype in ("float32", "float64", "int64"):
        assert (val_d, grad_d) == (val_t, grad_t)  # the same bits
    else:  # half types: torch rounds after each op of a derivative, we once (_dispatch)
        np.testing.assert_allclose(val_d, val_t, rtol=1e-2)
        np.testing.assert_allclose(grad_d, grad_t, rtol=1e-2)


@pytest.mark.parametrize("op", ["mul", "div"])
@pytest.mark.parametrize("which", ["both", "first", "second"])
def test_binary_gradients_when_only_one_tensor_needs_one(op, which):
    # div skips the gradient of an input that needs none (``needs``): the other must not change
    a = RNG.uniform(0.5, 2.0, (3, 4))
    b = RNG.uniform(0.5, 2.0, (4,))
    res = []
    for L in (dt, torch):
        x = L.tensor(a, requires_grad=which in ("both", "first"))
        y = L.tensor(b, requires_grad=which in ("both", "second"))
        (getattr(L, op)(x, y) * L.tensor(a)).sum().backward()
        res.append([None if t.grad is None else t.grad.tolist() for t in (x, y)])
    assert [g is None for g in res[0]] == [g is None for g in res[1]]
    for d, t in zip(*res):
        if t is not None:
            np.testing.assert_allclose(d, t, rtol=1e-12)
