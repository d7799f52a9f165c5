"""Elementwise ops against torch 2.13 (float64): values, gradients, type promotion, errors."""
from __future__ import annotations

import numpy as np
import pytest
from _opcheck import check, check_double, finite_diff

import dyntorch

R = np.random.default_rng(0)


def _pos(*s):
    return R.uniform(0.5, 2.0, s)


def _unit(*s):
    return R.uniform(-0.9, 0.9, s)


def _any(*s):
    return R.standard_normal(s)


UNARY = [
    ("exp", _any), ("exp2", _any), ("log", _pos), ("log2", _pos), ("log10", _pos),
    ("log1p", _pos), ("expm1", _any), ("sqrt", _pos), ("rsqrt", _pos), ("square", _any),
    ("reciprocal", _pos), ("abs", _any), ("sign", _any), ("sin", _any), ("cos", _any),
    ("tan", _unit), ("asin", _unit), ("acos", _unit), ("atan", _any), ("sinh", _any),
    ("cosh", _any), ("tanh", _any), ("sigmoid", _any), ("relu", _any), ("erf", _any),
    ("floor", _any), ("ceil", _any), ("trunc", _any), ("round", _any), ("neg", _any),
    ("arcsin", _unit), ("arccos", _unit), ("arctan", _any), ("absolute", _any),
    ("negative", _any),
]


@pytest.mark.parametrize("name,gen", UNARY, ids=[u[0] for u in UNARY])
def test_unary_function_and_method(torch, device, name, gen):
    x = gen(3, 4)
    check(torch, lambda m, a: getattr(m, name)(a), x, device=device)
    check(torch, lambda m, a: getattr(a, name)(), x, device=device)


BINARY = [
    ("add", _any, _any), ("sub", _any, _any), ("mul", _any, _any), ("div", _any, _pos),
    ("maximum", _any, _any), ("minimum", _any, _any), ("atan2", _any, _any),
    ("pow", _pos, _any), ("remainder", _any, _pos), ("fmod", _any, _pos),
    ("subtract", _any, _any), ("multiply", _any, _any), ("true_divide", _any, _pos),
]


@pytest.mark.parametrize("name,ga,gb", BINARY, ids=[b[0] for b in BINARY])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)),
                                    ((), (2, 3))])
def test_binary_broadcast(torch, device, name, ga, gb, shapes):
    a, b = ga(*shapes[0]), gb(*shapes[1])
    check(torch, lambda m, x, y: getattr(m, name)(x, y), a, b, device=device)


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "%", "//"])
def test_operators_with_scalars(torch, device, op):
    a = _pos(3, 4)

    def fn(m, x):
        return eval(f"x {op} 1.5"), eval(f"2.5 {op} x")

    check(torch, fn, a, device=device, grad=op not in ("//", "%"))


def test_unary_operators(torch, device):
    check(torch, lambda m, x: (-x, abs(x), +x), _any(5), device=device)


def test_comparisons_and_logic(torch, device):
    a, b = R.integers(0, 3, (4, 5)).astype(np.float64), R.integers(0, 3, (5,)).astype(float)
    for name in ["eq", "ne", "lt", "le", "gt", "ge"]:
        check(torch, lambda m, x, y: getattr(m, name)(x, y), a, b, grad=False, device=device)
    check(torch, lambda m, x, y: (x == y, x != y, x < y, x <= y, x > y, x >= y), a, b,
          grad=False, device=device)
    p, q = R.random((3, 4)) > 0.5, R.random((4,)) > 0.5
    for name in ["logical_and", "logical_or", "logical_xor"]:
        check(torch, lambda m, x, y: getattr(m, name)(x, y), p, q, device=device)
    check(torch, lambda m, x, y: (x & y, x | y, x ^ y, ~x, m.logical_not(x)), p, q,
          device=device)
    i, j = R.integers(0, 16, (5,)), R.integers(0, 16, (5,))
    check(torch, lambda m, x, y: (x & y, x | y, x ^ y, ~x), i, j, device=device)


def test_special_value_predicates(torch, device):
    a = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, -2.0])
    for name in ["isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit"]:
        check(torch, lambda m, x: getattr(m, name)(x), a, grad=False, device=device)
    check(torch, lambda m, x: m.nan_to_num(x, nan=0.5, posinf=9.0, neginf=-9.0), a,
          grad=False, device=device)


def test_clamp_variants(torch, device):
    a = _any(4, 5) * 2
    check(torch, lambda m, x: m.clamp(x, -0.5, 0.7), a, device=device)
    check(torch, lambda m, x: m.clamp(x, min=-0.5), a, device=device)
    check(torch, lambda m, x: x.clamp(max=0.3), a, device=device)
    check(torch, lambda m, x: x.clip(-1, 1), a, device=device)
    lo, hi = _any(5) - 1, _any(5) + 1
    check(torch, lambda m, x, lo_, hi_: m.clamp(x, lo_, hi_), a, lo, hi, device=device)


def test_where_and_lerp(torch, device):
    c = R.random((3, 4)) > 0.4
    a, b = _any(3, 4), _any(4)
    check(torch, lambda m, cond, x, y: m.where(cond, x, y), c, a, b, device=device)
    check(torch, lambda m, cond, x: m.where(cond, x, 0.0), c, a, device=device)
    check(torch, lambda m, cond, x: x.where(cond, -1.0), c, a, device=device)
    w = R.random((3, 4))
    check(torch, lambda m, x, y, z: m.lerp(x, y, z), a, _any(3, 4), w, device=device)
    check(torch, lambda m, x, y: m.lerp(x, y, 0.3), a, _any(3, 4), device=device)


def test_pow_edge_cases(torch, device):
    a = np.array([0.0, 1.5, 2.0, 0.5])
    check(torch, lambda m, x: x ** 2, a, device=device)
    check(torch, lambda m, x: x ** 0, a, device=device)
    check(torch, lambda m, x: x ** 3.5, a, device=device)
    check(torch, lambda m, x, y: x ** y, a, np.array([2.0, 0.5, -1.0, 3.0]), device=device)
    check(torch, lambda m, x: 2.0 ** x, a, device=device)
    with pytest.raises(RuntimeError, match="negative integer powers"):
        dyntorch.tensor([1, 2]) ** -1


def test_div_rounding_modes(torch, device):
    a, b = _any(6) * 5, _pos(6)
    check(torch, lambda m, x, y: m.div(x, y, rounding_mode="floor"), a, b, grad=False,
          device=device)
    check(torch, lambda m, x, y: m.div(x, y, rounding_mode="trunc"), a, b, grad=False,
          device=device)
    i, j = R.integers(-9, 9, (6,)), R.integers(1, 5, (6,))
    check(torch, lambda m, x, y: (x / y, x // y, x % y, m.div(x, y, rounding_mode="trunc")),
          i, j, device=device)


def test_in_place_arithmetic(torch, device):
    def fn(m, x, y):
        z = x * 1
        z.add_(y, alpha=2)
        z.mul_(y)
        z.sub_(0.5)
        z.div_(2.0)
        z.clamp_(-1, 1)
        z.exp_()
        return z

    check(torch, fn, _any(3, 4), _any(4), device=device)


# ----------------------------------------------------------------------------- promotion
PROMOTION = [
    ("int+float scalar", lambda m: m.tensor([1, 2]) + 1.5),
    ("int*int scalar", lambda m: m.tensor([1, 2]) * 3),
    ("int+bool", lambda m: m.tensor([1, 2]) + m.tensor([True, False])),
    ("bool+bool", lambda m: m.tensor([True]) + m.tensor([True])),
    ("bool*float scalar", lambda m: m.tensor([True, False]) * 2.5),
    ("int32+float32", lambda m: m.tensor([1, 2], dtype=m.int32) + m.tensor([0.5, 1.0])),
    ("int32+int64", lambda m: m.tensor([1], dtype=m.int32) + m.tensor([2])),
    ("int32+int scalar", lambda m: m.tensor([1], dtype=m.int32) + 5),
    ("uint8+int8", lambda m: m.tensor([1], dtype=m.uint8) + m.tensor([1], dtype=m.int8)),
    ("float32+float64", lambda m: m.tensor([1.0]) + m.tensor([2.0], dtype=m.float64)),
    ("0-dim f64 + f32", lambda m: m.tensor(1.5, dtype=m.float64) + m.tensor([1.0, 2.0])),
    ("0-dim float + int", lambda m: m.tensor(1.5) + m.tensor([1, 2])),
    ("0-dim int64 + int32", lambda m: m.tensor(3) + m.tensor([1], dtype=m.int32)),
    ("int/int", lambda m: m.tensor([3, 4]) / m.tensor([2, 2])),
    ("int//int", lambda m: m.tensor([7, -7]) // 2),
    ("float16+float32", lambda m: m.tensor([1.0], dtype=m.float16) + m.tensor([1.0])),
    ("int32 ** float", lambda m: m.tensor([2, 3], dtype=m.int32) ** 0.5),
    ("where int float", lambda m: m.where(m.tensor([True, False]), m.tensor([1, 2]), 0.5)),
    ("maximum int float", lambda m: m.maximum(m.tensor([1, 5]), m.tensor([2.5, 3.0]))),
    ("exp of int", lambda m: m.exp(m.tensor([0, 1]))),
    ("sqrt of bool", lambda m: m.sqrt(m.tensor([True, False]))),
    ("int == float", lambda m: m.tensor([1, 2]) == m.tensor([1.0, 2.5])),
]


@pytest.mark.parametrize("case", PROMOTION, ids=[p[0] for p in PROMOTION])
def test_type_promotion(torch, case):
    _, fn = case
    check(torch, lambda m: fn(m), grad=False)


def test_scalar_tensor_promotion_keeps_gradient(torch, device):
    check(torch, lambda m, x, s: x * s + s.exp(), _any(3).astype(np.float32),
          np.array(1.25), device=device, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- errors
def test_broadcast_error_names_op_and_shapes():
    a, b = dyntorch.ones(2, 3), dyntorch.ones(4)
    with pytest.raises(RuntimeError) as e:
        a + b
    msg = str(e.value)
    assert "add" in msg and "(3)" in msg and "(4)" in msg and "[2, 3]" in msg and "[4]" in msg
    with pytest.raises(RuntimeError, match="mul.*size of tensor a"):
        dyntorch.ones(2, 3) * dyntorch.ones(2)


def test_in_place_cast_error():
    x = dyntorch.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        x.add_(dyntorch.tensor([1.5, 2.0]))
    with pytest.raises(RuntimeError, match="can't be cast"):
        x.mul_(0.5)
    b = dyntorch.tensor([True, False])
    with pytest.raises(RuntimeError, match="can't be cast"):
        b.add_(dyntorch.tensor([1, 1]))


def test_device_mismatch_message():
    if not dyntorch.cuda.is_available():
        pytest.skip("needs CUDA")
    with pytest.raises(RuntimeError, match="same device"):
        dyntorch.ones(2) + dyntorch.ones(2, device="cuda")


# ----------------------------------------------------------------------------- higher order
@pytest.mark.parametrize("name", ["exp", "tanh", "sigmoid", "sin", "log", "sqrt", "erf"])
def test_second_order_unary(torch, name):
    check_double(torch, lambda m, x: getattr(m, name)(x), _pos(3, 2))


def test_second_order_binary(torch):
    check_double(torch, lambda m, x, y: x * y, _any(3, 4), _any(4))
    check_double(torch, lambda m, x, y: x / y, _any(3), _pos(3))
    check_double(torch, lambda m, x: x ** 3, _any(4))
    check_double(torch, lambda m, x, y: x ** y, _pos(4), _any(4))
    check_double(torch, lambda m, x, y: m.maximum(x, y) * x, _any(4), _any(4))


def test_finite_differences_composite():
    finite_diff(lambda m, x, y: (m.tanh(x) * y + x.exp() / (1 + y * y)).sigmoid(),
                _any(3, 2), _any(2))


def test_remaining_public_elementwise(torch, device):
    a, b = _any(3, 4), _any(4)
    check(torch, lambda m, x, y: (m.clamp_min(x, 0.1), m.clamp_max(x, -0.1), m.arctan2(x, y),
                                  m.positive(x), m.round(x * 10, decimals=1),
                                  m.add(x, y, alpha=0.5), m.sub(x, y, alpha=2),
                                  m.addcmul(x, x, y, value=0.5), m.addcdiv(x, x, y + 3, value=2)),
          a, b, device=device)
    check(torch, lambda m, x, y: (m.greater(x, y), m.less(x, y), m.greater_equal(x, y),
                                  m.less_equal(x, y), m.not_equal(x, y), m.floor_divide(x, y),
                                  m.isclose(x, x + 1e-9), m.isclose(x, y)),
          a, b, grad=False, device=device)
    i, j = R.integers(0, 16, (5,)), R.integers(1, 16, (5,))
    check(torch, lambda m, x, y: (m.bitwise_and(x, y), m.bitwise_or(x, y), m.bitwise_xor(x, y),
                                  m.bitwise_not(x), m.floor_divide(x, y), m.remainder(x, y)),
          i, j, device=device)
    x = dyntorch.tensor([1.0, 2.0])
    assert dyntorch.equal(x, x.clone()) and not dyntorch.equal(x, x + 1)
    assert dyntorch.allclose(x, x + 1e-9) and not dyntorch.allclose(x, x + 1e-3)
    assert x.equal(x) and x.allclose(x)


def test_in_place_method_family(torch, device):
    def fn(m, x):
        outs = []
        for name in ["neg_", "abs_", "sigmoid_", "tanh_", "floor_", "sqrt_", "square_",
                     "relu_", "exp_"]:
            y = x.detach().clone().abs() + 0.5
            getattr(y, name)()
            outs.append(y)
        y = x.detach().clone()
        y.clamp_(min=-0.2, max=0.3)
        y.pow_(2)
        y.lerp_(x.detach(), 0.25)
        y.addcmul_(x.detach(), x.detach(), value=0.1)
        y.zero_()
        y.fill_(2.5)
        outs.append(y)
        return tuple(outs)

    check(torch, fn, _any(3, 4), device=device, grad=False)


@pytest.mark.parametrize("da", ["bool", "uint8", "int8", "int32", "int64"])
@pytest.mark.parametrize("db", ["int8", "int64", "bfloat16", "float16"])
def test_integer_operands_of_float_ops_give_torchs_dtype(torch, da, db):
    # atan2 of integers is in the default float dtype (NumPy: float16 for int8, float64 for
    # int32); an integer divided by bfloat16 stays bfloat16 (bfloat16's NumPy kind is "V")
    res = []
    for m in (dyntorch, torch):
        a = m.tensor([1, 0, 3, 2]).to(getattr(m, da))
        b = m.tensor([2, 1, 1, 4]).to(getattr(m, db))
        res.append([(str(r.dtype).split(".")[-1], r.float().numpy())
                    for r in (m.atan2(a, b), a / b, m.div(a, b))])
    assert [d for d, _ in res[0]] == [d for d, _ in res[1]]
    for (_, u), (_, v) in zip(*res):
        np.testing.assert_allclose(u, v, rtol=1e-2 if db in ("bfloat16", "float16") else 1e-6)
