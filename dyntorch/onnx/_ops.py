"""ONNX spellings of dyntorch ops, one converter per registered op name.

A converter gets the export context and the traced node (``node.args`` as recorded at the
dispatch door, ``node.attrs``) and returns the ONNX names of the node's outputs. It may set
``ctx.dyn`` for its outputs; otherwise the exporter assumes broadcasting of its inputs.
"""
from __future__ import annotations

import math

import numpy as np

from ..jit._blocks import reshape_blocks
from ..jit._ir import Ref
from ._context import ExportContext, onnx_dtype

CONVERTERS: dict = {}


def converter(*names):
    def wrap(fn):
        for n in names:
            CONVERTERS[n] = fn
        return fn

    return wrap


def _set_dyn(ctx: ExportContext, dims, k: int = 0) -> None:
    ctx.dyn[ctx.node.outs[k]] = set(dims)


# ----------------------------------------------------------------------------- elementwise
_BINARY = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow_tensor": "Pow",
           "maximum": "Max", "minimum": "Min"}
_COMPARE = {"eq": "Equal", "lt": "Less", "gt": "Greater", "le": "LessOrEqual",
            "ge": "GreaterOrEqual", "logical_and": "And", "logical_or": "Or",
            "logical_xor": "Xor"}
_UNARY = {"neg": "Neg", "exp": "Exp", "log": "Log", "sqrt": "Sqrt", "abs": "Abs", "sin": "Sin",
          "cos": "Cos", "tan": "Tan", "asin": "Asin", "acos": "Acos", "atan": "Atan",
          "sinh": "Sinh", "cosh": "Cosh", "tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu",
          "erf": "Erf", "floor": "Floor", "ceil": "Ceil", "sign": "Sign",
          "reciprocal": "Reciprocal", "isnan": "IsNaN", "isinf": "IsInf", "logical_not": "Not",
          "softsign": "Softsign", "hardswish": "HardSwish", "clone": "Identity",
          "contiguous": "Identity", "to_device": "Identity", "dropout": "Identity",
          "detach": "Identity", "alias": "Identity"}


def _bin(ctx, a, b, dtype):
    return ctx.name(a) if isinstance(a, Ref) else ctx.scalar(a, dtype), \
        ctx.name(b) if isinstance(b, Ref) else ctx.scalar(b, dtype)


for _n, _t in _BINARY.items():
    def _mk(t):
        def conv(ctx, node):
            a, b = node.args[:2]
            return [ctx.add1(t, list(_bin(ctx, a, b, ctx.out_dtype())))]

        return conv

    converter(_n)(_mk(_t))

for _n, _t in _COMPARE.items():
    def _mkc(t):
        def conv(ctx, node):
            a, b = node.args[:2]
            ref = a if isinstance(a, Ref) else b
            return [ctx.add1(t, list(_bin(ctx, a, b, ctx.dtype(ref))))]

        return conv

    converter(_n)(_mkc(_t))

for _n, _t in _UNARY.items():
    def _mku(t):
        def conv(ctx, node):
            return [ctx.add1(t, [ctx.name(node.args[0])])]

        return conv

    converter(_n)(_mku(_t))


@converter("ne")
def _ne(ctx, node):
    a, b = node.args[:2]
    ref = a if isinstance(a, Ref) else b
    return [ctx.add1("Not", [ctx.add1("Equal", list(_bin(ctx, a, b, ctx.dtype(ref))))])]


def _c(ctx, v):
    return ctx.scalar(v, ctx.out_dtype())


@converter("square")
def _square(ctx, node):
    x = ctx.name(node.args[0])
    return [ctx.add1("Mul", [x, x])]


@converter("rsqrt")
def _rsqrt(ctx, node):
    return [ctx.add1("Reciprocal", [ctx.add1("Sqrt", [ctx.name(node.args[0])])])]


@converter("exp2")
def _exp2(ctx, node):
    return [ctx.add1("Pow", [_c(ctx, 2.0), ctx.name(node.args[0])])]


@converter("log2", "log10")
def _logb(ctx, node):
    base = 2.0 if ctx.node.op == "log2" else 10.0
    return [ctx.add1("Div", [ctx.add1("Log", [ctx.name(node.args[0])]), _c(ctx, math.log(base))])]


@converter("log1p")
def _log1p(ctx, node):
    return [ctx.add1("Log", [ctx.add1("Add", [ctx.name(node.args[0]), _c(ctx, 1.0)])])]


@converter("expm1")
def _expm1(ctx, node):
    return [ctx.add1("Sub", [ctx.add1("Exp", [ctx.name(node.args[0])]), _c(ctx, 1.0)])]


@converter("trunc")
def _trunc(ctx, node):
    x = ctx.name(node.args[0])
    return [ctx.add1("Mul", [ctx.add1("Sign", [x]),
                             ctx.add1("Floor", [ctx.add1("Abs", [x])])])]


@converter("round")
def _round(ctx, node):
    if node.attrs.get("decimals", 0):
        raise ctx.unsupported("round with decimals != 0")
    return [ctx.add1("Round", [ctx.name(node.args[0])])]


@converter("pow")
def _pow(ctx, node):
    x = ctx.name(node.args[0])
    e = node.attrs.get("exponent", node.args[1] if len(node.args) > 1 else None)
    if e == 2:
        return [ctx.add1("Mul", [x, x])]
    return [ctx.add1("Pow", [x, _c(ctx, e)])]


@converter("floor_divide", "div_floor")
def _floordiv(ctx, node):
    a, b = _bin(ctx, node.args[0], node.args[1], ctx.out_dtype())
    if np.dtype(ctx.out_dtype()).kind == "f":
        return [ctx.add1("Floor", [ctx.add1("Div", [a, b])])]
    raise ctx.unsupported("integer floor division")


@converter("clamp")
def _clamp(ctx, node):
    x = ctx.name(node.args[0])
    lo, hi = node.attrs.get("min"), node.attrs.get("max")
    return [ctx.add1("Clip", [x, _c(ctx, lo) if lo is not None else "",
                              _c(ctx, hi) if hi is not None else ""])]


@converter("clamp_tensor")
def _clamp_tensor(ctx, node):
    x, lo, hi = node.args[:3]
    r = ctx.name(x)
    if lo is not None:
        r = ctx.add1("Max", [r, ctx.name(lo)])
    if hi is not None:
        r = ctx.add1("Min", [r, ctx.name(hi)])
    return [r]


@converter("xlogy")
def _xlogy(ctx, node):
    x, y = _bin(ctx, node.args[0], node.args[1], ctx.out_dtype())
    pinned = ctx.add1("And", [ctx.add1("Equal", [x, _c(ctx, 0.0)]),
                              ctx.add1("Not", [ctx.add1("IsNaN", [y])])])
    return [ctx.add1("Where", [pinned, _c(ctx, 0.0), ctx.add1("Mul", [x, ctx.add1("Log", [y])])])]


@converter("hypot")
def _hypot(ctx, node):
    a, b = _bin(ctx, node.args[0], node.args[1], ctx.out_dtype())
    return [ctx.add1("Sqrt", [ctx.add1("Add", [ctx.add1("Mul", [a, a]),
                                               ctx.add1("Mul", [b, b])])])]


@converter("logaddexp")
def _logaddexp(ctx, node):
    a, b = _bin(ctx, node.args[0], node.args[1], ctx.out_dtype())
    m = ctx.add1("Max", [a, b])
    s = ctx.add1("Add", [ctx.add1("Exp", [ctx.add1("Sub", [a, m])]),
                         ctx.add1("Exp", [ctx.add1("Sub", [b, m])])])
    return [ctx.add1("Add", [m, ctx.add1("Log", [s])])]


@converter("where")
def _where(ctx, node):
    c, a, b = node.args[:3]
    return [ctx.add1("Where", [ctx.name(c), *_bin(ctx, a, b, ctx.out_dtype())])]


@converter("lerp")
def _lerp(ctx, node):
    a, b, w = (ctx.name(x) for x in node.args[:3])
    return [ctx.add1("Add", [a, ctx.add1("Mul", [w, ctx.add1("Sub", [b, a])])])]


@converter("to_copy")
def _cast(ctx, node):
    return [ctx.add1("Cast", [ctx.name(node.args[0])], to=onnx_dtype(ctx.out_dtype()))]


# ----------------------------------------------------------------------------- activations
@converter("gelu")
def _gelu(ctx, node):
    x = ctx.name(node.args[0])
    approx = node.attrs.get("approximate", "none")
    if ctx.opset >= 20:
        return [ctx.add1("Gelu", [x], approximate=approx)]
    if approx == "tanh":
        x3 = ctx.add1("Mul", [ctx.add1("Mul", [x, x]), x])
        inner = ctx.add1("Mul", [_c(ctx, math.sqrt(2 / math.pi)),
                                 ctx.add1("Add", [x, ctx.add1("Mul", [_c(ctx, 0.044715), x3])])])
        t = ctx.add1("Add", [_c(ctx, 1.0), ctx.add1("Tanh", [inner])])
    else:
        t = ctx.add1("Add", [_c(ctx, 1.0), ctx.add1("Erf", [
            ctx.add1("Mul", [x, _c(ctx, 1 / math.sqrt(2))])])])
    return [ctx.add1("Mul", [ctx.add1("Mul", [x, _c(ctx, 0.5)]), t])]


@converter("silu")
def _silu(ctx, node):
    x = ctx.name(node.args[0])
    return [ctx.add1("Mul", [x, ctx.add1("Sigmoid", [x])])]


@converter("mish")
def _mish(ctx, node):
    x = ctx.name(node.args[0])
    return [ctx.add1("Mul", [x, ctx.add1("Tanh", [ctx.add1("Softplus", [x])])])]


@converter("leaky_relu")
def _leaky(ctx, node):
    return [ctx.add1("LeakyRelu", [ctx.name(node.args[0])],
                     alpha=float(node.attrs.get("negative_slope", 0.01)))]


@converter("elu")
def _elu(ctx, node):
    a = node.attrs
    alpha, scale, iscale = a.get("alpha", 1.0), a.get("scale", 1.0), a.get("input_scale", 1.0)
    x = ctx.name(node.args[0])
    if iscale != 1.0:
        raise ctx.unsupported("elu with input_scale != 1")
    y = ctx.add1("Elu", [x], alpha=float(alpha))
    return [y if scale == 1.0 else ctx.add1("Mul", [y, _c(ctx, scale)])]


@converter("celu")
def _celu(ctx, node):
    return [ctx.add1("Celu", [ctx.name(node.args[0])], alpha=float(node.attrs.get("alpha", 1.0)))]


@converter("softplus")
def _softplus(ctx, node):
    x = ctx.name(node.args[0])
    beta = node.attrs.get("beta", 1.0)
    if beta == 1.0:
        return [ctx.add1("Softplus", [x])]
    y = ctx.add1("Softplus", [ctx.add1("Mul", [x, _c(ctx, beta)])])
    return [ctx.add1("Div", [y, _c(ctx, beta)])]


@converter("log_sigmoid")
def _logsig(ctx, node):
    return [ctx.add1("Neg", [ctx.add1("Softplus", [ctx.add1("Neg", [ctx.name(node.args[0])])])])]


@converter("hardtanh")
def _hardtanh(ctx, node):
    a = node.attrs
    return [ctx.add1("Clip", [ctx.name(node.args[0]), _c(ctx, a.get("min_val", -1.0)),
                              _c(ctx, a.get("max_val", 1.0))])]


@converter("hardsigmoid")
def _hardsig(ctx, node):
    return [ctx.add1("HardSigmoid", [ctx.name(node.args[0])], alpha=1 / 6, beta=0.5)]


@converter("threshold")
def _threshold(ctx, node):
    x = ctx.name(node.args[0])
    a = node.attrs
    cond = ctx.add1("LessOrEqual", [x, _c(ctx, a.get("threshold", 0.0))])  # NaN stays NaN
    return [ctx.add1("Where", [cond, _c(ctx, a.get("value", 0.0)), x])]


@converter("hardshrink", "softshrink")
def _shrink(ctx, node):
    lambd = float(node.attrs.get("lambd", 0.5))
    bias = lambd if node.op == "softshrink" else 0.0
    return [ctx.add1("Shrink", [ctx.name(node.args[0])], lambd=lambd, bias=bias)]


@converter("prelu")
def _prelu(ctx, node):
    return [ctx.add1("PRelu", [ctx.name(node.args[0]), ctx.name(node.args[1])])]


@converter("softmax", "log_softmax")
def _softmax(ctx, node):
    t = "Softmax" if ctx.node.op == "softmax" else "LogSoftmax"
    return [ctx.add1(t, [ctx.name(node.args[0])], axis=int(node.attrs.get("axis", -1)))]


# ----------------------------------------------------------------------------- reductions
def reduce(ctx, op_type, x, ndim, axis, keepdims):
    if axis is None:
        axes = list(range(ndim))
    else:
        axes = [int(a) % max(ndim, 1) for a in (axis if isinstance(axis, (tuple, list))
                                                else (axis,))]
    kd = int(bool(keepdims))
    if op_type == "ReduceSum" or ctx.opset >= 18:
        return ctx.add1(op_type, [x, ctx.ints(axes)], keepdims=kd), axes
    return ctx.add1(op_type, [x], axes=axes, keepdims=kd), axes


def _reduced_dyn(ctx, node, axes, keepdims):
    d = ctx.dyn_of(node.args[0])
    if keepdims:
        return {i for i in d if i not in axes}
    out = set()
    for i in d:
        if i not in axes:
            out.add(i - sum(1 for a in axes if a < i))
    return out


@converter("sum", "mean")
def _sum(ctx, node):
    x = node.args[0]
    name = ctx.name(x)
    if np.dtype(ctx.dtype(x)) != np.dtype(ctx.out_dtype()):
        name = ctx.add1("Cast", [name], to=onnx_dtype(ctx.out_dtype()))
    t = "ReduceSum" if ctx.node.op == "sum" else "ReduceMean"
    kd = node.attrs.get("keepdims", False)
    y, axes = reduce(ctx, t, name, len(ctx.shape(x)), node.attrs.get("axis"), kd)
    _set_dyn(ctx, _reduced_dyn(ctx, node, axes, kd))
    return [y]


# ----------------------------------------------------------------------------- shapes
@converter("reshape", "reshape_copy", "squeeze", "unsqueeze", "view", "flatten")
def _reshape(ctx, node):
    x = node.args[0]
    ins, outs = ctx.shape(x), ctx.out_shape()
    dyn = ctx.dyn_of(x)
    if not dyn:
        return [ctx.add1("Reshape", [ctx.name(x), ctx.ints(outs)])]
    # sizes that follow the dynamic axes are computed from Shape(x) at run time
    shape = ctx.add1("Shape", [ctx.name(x)])
    bases = tuple(b for b in ctx.bases if b > 1)
    parts, out_dyn = [], set()
    for bi, bj in reshape_blocks(ins, outs):
        live = [d for d in bi if d in dyn]
        if not live:
            parts.extend(ctx.ints([outs[j]]) for j in bj)
            continue
        prod = None
        for d in bi:
            g = ctx.add1("Gather", [shape, ctx.ints([d])])
            prod = g if prod is None else ctx.add1("Mul", [prod, g])
        if len(bj) == 1:
            parts.append(prod)
            out_dyn.add(bj[0])
            continue
        # a split: the dim carrying the dynamic factor (the first multiple of a dynamic
        # axis' traced size) is the block's product over the other, static, dims
        cand = [j for j in bj if outs[j] > 1 and any(outs[j] % b == 0 for b in bases)]
        jd = cand[0] if cand else bj[0]
        rest = int(np.prod([outs[j] for j in bj if j != jd]))
        for j in bj:
            if j == jd:
                parts.append(ctx.add1("Div", [prod, ctx.ints([rest])]))
                out_dyn.add(j)
            else:
                parts.append(ctx.ints([outs[j]]))
    target = ctx.add1("Concat", parts, axis=0) if parts else ctx.ints([])
    _set_dyn(ctx, out_dyn)
    return [ctx.add1("Reshape", [ctx.name(x), target])]


@converter("expand")
def _expand(ctx, node):
    x = node.args[0]
    ish, osh = ctx.shape(x), ctx.out_shape()
    lead = len(osh) - len(ish)
    tgt = list(osh)
    dyn = set()
    for i in ctx.dyn_of(x):
        if ish[i] != 1:  # keep the input's (dynamic) size: Expand broadcasts 1 to it
            tgt[i + lead] = 1
            dyn.add(i + lead)
    # a constant broadcast to the size of a dynamic axis (a class token expanded to the
    # batch): take that size from the graph input at run time
    pieces = []
    for j, n in enumerate(osh):
        src = ctx.axis_sources.get(n) if j not in dyn and (
            j < lead or ish[j - lead] == 1) and n > 1 else None
        if src is not None:
            shp = ctx.add1("Shape", [src[0]])
            pieces.append(ctx.add1("Gather", [shp, ctx.ints([src[1]])]))
            dyn.add(j)
        else:
            pieces.append(ctx.ints([tgt[j]]))
    _set_dyn(ctx, dyn)
    if any(j in dyn and tgt[j] != 1 for j in range(len(osh))):
        return [ctx.add1("Expand", [ctx.name(x), ctx.add1("Concat", pieces, axis=0)])]
    return [ctx.add1("Expand", [ctx.name(x), ctx.ints(tgt)])]


@converter("permute")
def _permute(ctx, node):
    dims = [int(d) for d in node.attrs["dims"]]
    d = ctx.dyn_of(node.args[0])
    _set_dyn(ctx, {j for j, p in enumerate(dims) if p in d})
    return [ctx.add1("Transpose", [ctx.name(node.args[0])], perm=dims)]


@converter("transpose")
def _transpose(ctx, node):
    n = len(ctx.shape(node.args[0]))
    perm = list(range(n))
    a, b = int(node.attrs["dim0"]) % n, int(node.attrs["dim1"]) % n
    perm[a], perm[b] = perm[b], perm[a]
    d = ctx.dyn_of(node.args[0])
    _set_dyn(ctx, {j for j, p in enumerate(perm) if p in d})
    return [ctx.add1("Transpose", [ctx.name(node.args[0])], perm=perm)]


@converter("cat")
def _cat(ctx, node):
    refs = [a for a in node.args if isinstance(a, Ref)]
    _set_dyn(ctx, set().union(*(ctx.dyn_of(r) for r in refs)))
    return [ctx.add1("Concat", [ctx.name(r) for r in refs], axis=int(node.attrs["axis"]))]


@converter("stack")
def _stack(ctx, node):
    refs = [a for a in node.args if isinstance(a, Ref)]
    ax = int(node.attrs["axis"])
    ax = ax % (len(ctx.shape(refs[0])) + 1)
    parts = [ctx.add1("Unsqueeze", [ctx.name(r), ctx.ints([ax])]) for r in refs]
    dyn = set().union(*(ctx.dyn_of(r) for r in refs))
    _set_dyn(ctx, {d + (d >= ax) for d in dyn})
    return [ctx.add1("Concat", parts, axis=ax)]


@converter("flip")
def _flip(ctx, node):
    x = node.args[0]
    dims = [int(d) for d in node.attrs["dims"]]
    big = np.iinfo(np.int64).max
    return [ctx.add1("Slice", [ctx.name(x), ctx.ints([-1] * len(dims)),
                               ctx.ints([-big] * len(dims)), ctx.ints(dims),
                               ctx.ints([-1] * len(dims))])]


@converter("repeat")
def _repeat(ctx, node):
    x = node.args[0]
    reps = [int(r) for r in node.attrs["reps"]]
    name = ctx.name(x)
    ish = ctx.shape(x)
    if len(reps) > len(ish):
        name = ctx.add1("Reshape", [name, ctx.ints((1,) * (len(reps) - len(ish)) + tuple(ish))])
    return [ctx.add1("Tile", [name, ctx.ints(reps)])]


@converter("tril", "triu")
def _trilu(ctx, node):
    k = ctx.const(np.asarray(int(node.attrs["k"]), dtype=np.int64))
    return [ctx.add1("Trilu", [ctx.name(node.args[0]), k], upper=int(ctx.node.op == "triu"))]


# ----------------------------------------------------------------------------- linear algebra
@converter("matmul")
def _matmul(ctx, node):
    a, b = node.args[:2]
    da, db = ctx.dyn_of(a), ctx.dyn_of(b)
    na, nb, no = len(ctx.shape(a)), len(ctx.shape(b)), len(ctx.out_shape())
    dyn = set()
    for d in da:  # batch and row dims of a keep their place (right-aligned)
        if na >= 2 and d == na - 1:
            continue
        dyn.add(d + no - na if na >= 2 else d)
    for d in db:
        if nb >= 2 and d < nb - 2:
            dyn.add(d + no - nb)
    _set_dyn(ctx, {d for d in dyn if 0 <= d < no})
    return [ctx.add1("MatMul", [ctx.name(a), ctx.name(b)])]


def const_array(ctx, a):
    """The array of a constant argument, or None when it is computed."""
    if isinstance(a, Ref) and a.i in ctx.g.consts:
        from .. import _backend as B

        return B.to_numpy(ctx.g.consts[a.i])
    return None
