"""ONNX spellings of the layer-level ops: linear, conv, pooling, norms, embedding, indexing,
attention, and the reductions that return indices."""
from __future__ import annotations

import numpy as np

from ..jit._ir import Ref
from ._ops import _c, _reduced_dyn, _set_dyn, converter, reduce


def _only_first_output(ctx, node, what: str) -> None:
    used = ctx.used
    for o in node.outs[1:]:
        if o in used:
            raise ctx.unsupported(f"its {what} output is used by the model")


# ----------------------------------------------------------------------------- linear algebra
@converter("linear")
def _linear(ctx, node):
    x, w = node.args[0], node.args[1]
    b = node.args[2] if len(node.args) > 2 else None
    xn = ctx.name(x)
    has_b = isinstance(b, Ref)
    if len(ctx.shape(x)) == 2 and len(ctx.shape(w)) == 2:
        ins = [xn, ctx.name(w)] + ([ctx.name(b)] if has_b else [])
        return [ctx.add1("Gemm", ins, transB=1)]
    wt = ctx.add1("Transpose", [ctx.name(w)])  # onnxruntime folds it for an initializer
    y = ctx.add1("MatMul", [xn, wt])
    return [ctx.add1("Add", [y, ctx.name(b)]) if has_b else y]


@converter("outer")
def _outer(ctx, node):
    a, b = node.args[:2]
    return [ctx.add1("Mul", [ctx.add1("Unsqueeze", [ctx.name(a), ctx.ints([1])]), ctx.name(b)])]


@converter("einsum")
def _einsum(ctx, node):
    eq = node.attrs["eq"]
    return [ctx.add1("Einsum", [ctx.name(a) for a in node.args if isinstance(a, Ref)],
                     equation=eq.replace(" ", ""))]


# ----------------------------------------------------------------------------- conv / pool
@converter("conv2d")
def _conv2d(ctx, node):
    a = node.attrs
    top, bottom, left, right = a.get("pad", (0, 0, 0, 0))
    ins = [ctx.name(r) for r in node.args[:3] if isinstance(r, Ref)]
    w = ctx.shape(node.args[1])
    return [ctx.add1("Conv", ins, kernel_shape=list(w[2:]), strides=list(a.get("stride", (1, 1))),
                     pads=[top, left, bottom, right], dilations=list(a.get("dil", (1, 1))),
                     group=int(a.get("groups", 1)))]


@converter("max_pool2d")
def _max_pool2d(ctx, node):
    _only_first_output(ctx, node, "indices")
    a = node.attrs
    p = a.get("pad", (0, 0))
    return [ctx.add1("MaxPool", [ctx.name(node.args[0])], kernel_shape=list(a["k"]),
                     strides=list(a.get("stride", a["k"])), pads=[p[0], p[1], p[0], p[1]],
                     dilations=list(a.get("dil", (1, 1))), ceil_mode=int(bool(a.get("ceil")))),
            ""]


@converter("adaptive_max_pool2d")
def _adaptive_max_pool2d(ctx, node):
    # bins of equal size tile the plane only when the sizes divide: a plain MaxPool then
    _only_first_output(ctx, node, "indices")
    h, w = ctx.shape(node.args[0])[-2:]
    oh, ow = node.attrs["oh"], node.attrs["ow"]
    x = ctx.name(node.args[0])
    if (oh, ow) == (1, 1):
        return [ctx.add1("GlobalMaxPool", [x]), ""]
    if not (isinstance(h, int) and isinstance(w, int) and h % oh == 0 and w % ow == 0):
        raise ctx.unsupported(f"adaptive_max_pool2d from {h}x{w} to {oh}x{ow} (bins of "
                              "unequal size)")
    k = [h // oh, w // ow]
    return [ctx.add1("MaxPool", [x], kernel_shape=k, strides=k), ""]


@converter("avg_pool2d")
def _avg_pool2d(ctx, node):
    a = node.attrs
    if a.get("override") is not None:
        raise ctx.unsupported("avg_pool2d with divisor_override")
    p = a.get("pad", (0, 0))
    return [ctx.add1("AveragePool", [ctx.name(node.args[0])], kernel_shape=list(a["k"]),
                     strides=list(a.get("stride", a["k"])), pads=[p[0], p[1], p[0], p[1]],
                     ceil_mode=int(bool(a.get("ceil"))),
                     count_include_pad=int(bool(a.get("include_pad", True))))]


@converter("sandwich", "adaptive_avg_pool2d", "upsample_nearest", "upsample_bilinear",
           "pad_select")
def _sandwich(ctx, node):
    x, A, B = (list(node.args) + [None, None])[:3]
    y = ctx.name(x)
    if isinstance(A, Ref) or A is not None:
        y = ctx.add1("MatMul", [_arr(ctx, A), y])
    if isinstance(B, Ref) or B is not None:
        y = ctx.add1("MatMul", [y, _arr(ctx, B)])
    return [y if y != ctx.name(x) else ctx.add1("Identity", [y])]


def _arr(ctx, a):
    if isinstance(a, Ref):
        return ctx.name(a)
    from .. import _backend as B

    return ctx.const(B.to_numpy(a), "matrix")


@converter("constant_pad")
def _pad(ctx, node):
    x = node.args[0]
    nd = len(ctx.shape(x))
    pads = node.attrs.get("pads", ())
    begin, end = [0] * nd, [0] * nd
    for i, (lo, hi) in enumerate(pads):
        begin[nd - 1 - i], end[nd - 1 - i] = int(lo), int(hi)
    if min(begin + end) < 0:
        raise ctx.unsupported("negative padding (cropping)")
    return [ctx.add1("Pad", [ctx.name(x), ctx.ints(begin + end),
                             _c(ctx, node.attrs.get("value", 0.0))], mode="constant")]


# ----------------------------------------------------------------------------- norms
@converter("batch_norm")
def _batch_norm(ctx, node):
    _only_first_output(ctx, node, "statistics")
    x, w, b = (list(node.args) + [None, None])[:3]
    a = node.attrs
    c = ctx.shape(x)[1]
    dt = np.dtype(ctx.dtype(x))
    scale = ctx.name(w) if isinstance(w, Ref) else ctx.const(np.ones(c, dt), "bn_scale")
    bias = ctx.name(b) if isinstance(b, Ref) else ctx.const(np.zeros(c, dt), "bn_bias")
    if a.get("mean") is not None:
        from .. import _backend as B

        mean = ctx.const(B.to_numpy(a["mean"]).astype(dt), "running_mean")
        var = ctx.const(B.to_numpy(a["var"]).astype(dt), "running_var")
        return [ctx.add1("BatchNormalization", [ctx.name(x), scale, bias, mean, var],
                         epsilon=float(a.get("eps", 1e-5)))]
    # no running statistics (track_running_stats=False): normalise with the batch's own
    nd = len(ctx.shape(x))
    axes = [0] + list(range(2, nd))
    xn = ctx.name(x)
    mean, _ = reduce(ctx, "ReduceMean", xn, nd, axes, True)
    xc = ctx.add1("Sub", [xn, mean])
    var, _ = reduce(ctx, "ReduceMean", ctx.add1("Mul", [xc, xc]), nd, axes, True)
    rstd = ctx.add1("Reciprocal", [ctx.add1("Sqrt", [ctx.add1("Add", [var, _c(ctx, a.get(
        "eps", 1e-5))])])])
    shp = ctx.ints([c] + [1] * (nd - 2))
    y = ctx.add1("Mul", [ctx.add1("Mul", [xc, rstd]), ctx.add1("Reshape", [scale, shp])])
    return [ctx.add1("Add", [y, ctx.add1("Reshape", [bias, shp])])]


@converter("layer_norm")
def _layer_norm(ctx, node):
    _only_first_output(ctx, node, "statistics")
    x, w, b = (list(node.args) + [None, None])[:3]
    a = node.attrs
    k = int(a.get("ndim", 1))
    xs = ctx.shape(x)
    dt = np.dtype(ctx.dtype(x))
    norm_shape = xs[len(xs) - k:]
    scale = ctx.name(w) if isinstance(w, Ref) else ctx.const(np.ones(norm_shape, dt), "ln_w")
    ins = [ctx.name(x), scale] + ([ctx.name(b)] if isinstance(b, Ref) else [])
    if ctx.opset < 17:
        raise ctx.unsupported("LayerNormalization needs opset_version >= 17")
    return [ctx.add1("LayerNormalization", ins, axis=-k, epsilon=float(a.get("eps", 1e-5)))]


@converter("group_norm")
def _group_norm(ctx, node):
    _only_first_output(ctx, node, "statistics")
    x, w, b = (list(node.args) + [None, None])[:3]
    a = node.attrs
    xs = ctx.shape(x)
    nd, c, g = len(xs), xs[1], int(a.get("groups", 1))
    xn = ctx.add1("Reshape", [ctx.name(x), ctx.ints([0, g, -1])])
    mean, _ = reduce(ctx, "ReduceMean", xn, 3, [2], True)
    xc = ctx.add1("Sub", [xn, mean])
    var, _ = reduce(ctx, "ReduceMean", ctx.add1("Mul", [xc, xc]), 3, [2], True)
    std = ctx.add1("Sqrt", [ctx.add1("Add", [var, _c(ctx, a.get("eps", 1e-5))])])
    y = ctx.add1("Div", [xc, std])
    shape_in = ctx.add1("Shape", [ctx.name(x)])
    y = ctx.add1("Reshape", [y, shape_in])
    shp = ctx.ints([c] + [1] * (nd - 2))
    if isinstance(w, Ref):
        y = ctx.add1("Mul", [y, ctx.add1("Reshape", [ctx.name(w), shp])])
    if isinstance(b, Ref):
        y = ctx.add1("Add", [y, ctx.add1("Reshape", [ctx.name(b), shp])])
    return [y, "", ""]


# ----------------------------------------------------------------------------- embedding / indexing
@converter("embedding")
def _embedding(ctx, node):
    w, idx = node.args[:2]
    i = ctx.dyn_of(idx)
    _set_dyn(ctx, set(i))
    return [ctx.add1("Gather", [ctx.name(w), ctx.name(idx)], axis=0)]


@converter("index_select")
def _index_select(ctx, node):
    a, idx = node.args[:2]
    return [ctx.add1("Gather", [ctx.name(a), ctx.name(idx)], axis=int(node.attrs["axis"]))]


@converter("gather")
def _gather(ctx, node):
    a, idx = node.args[:2]
    return [ctx.add1("GatherElements", [ctx.name(a), ctx.name(idx)],
                     axis=int(node.attrs["axis"]))]


@converter("masked_fill")
def _masked_fill(ctx, node):
    a, mask, value = node.args[:3]
    v = ctx.name(value) if isinstance(value, Ref) else _c(ctx, value)
    return [ctx.add1("Where", [ctx.name(mask), v, ctx.name(a)])]


@converter("index", "select", "slice")
def _index(ctx, node):
    """Basic keys (ints, slices, None, Ellipsis) and one integer-array key."""
    x = node.args[0]
    key = node.attrs["key"]
    key = key if isinstance(key, tuple) else (key,)
    shape = list(ctx.shape(x))
    nd = len(shape)
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    full = []
    for k in key:
        if k is Ellipsis:
            full.extend([slice(None)] * (nd - used))
        else:
            full.append(k)
    full.extend([slice(None)] * (nd - sum(1 for k in full if k is not None)))
    y = ctx.name(x)
    dyn = set(ctx.dyn_of(x))
    axis = 0  # axis in the current (partly indexed) tensor
    out_dyn = set()
    src = 0  # input dim of the current key entry
    starts, ends, axes, steps = [], [], [], []
    gathers = []  # (axis, index array or int) applied after the slices
    for k in full:
        if k is None:
            gathers.append(("unsqueeze", axis))
            axis += 1
            continue
        if isinstance(k, slice):
            st, sp, step = k.indices(shape[src]) if src not in dyn else (
                k.start or 0, k.stop if k.stop is not None else np.iinfo(np.int64).max,
                k.step or 1)
            if (st, sp, step) != (0, shape[src], 1):
                starts.append(st)
                ends.append(sp)
                axes.append(src)
                steps.append(step)
            if src in dyn:
                out_dyn.add(axis)
            axis += 1
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            gathers.append(("int", axis, int(k)))
        elif hasattr(k, "ndim") and np.asarray(k).dtype.kind in "iu":
            gathers.append(("array", axis, np.asarray(k)))
            axis += np.asarray(k).ndim
        else:
            raise ctx.unsupported(f"indexing with key entry {type(k).__name__}")
        src += 1
    if starts:
        y = ctx.add1("Slice", [y, ctx.ints(starts), ctx.ints(ends), ctx.ints(axes),
                               ctx.ints(steps)])
    if sum(1 for gg in gathers if gg[0] == "array") > 1:
        raise ctx.unsupported("more than one index array in one key")
    # then ints, arrays and None left to right; each axis was counted in the coordinates
    # of the tensor as it is when that entry is applied
    for gg in gathers:
        if gg[0] == "unsqueeze":
            y = ctx.add1("Unsqueeze", [y, ctx.ints([gg[1]])])
        elif gg[0] == "int":
            y = ctx.add1("Gather", [y, ctx.const(np.asarray(gg[2], np.int64))], axis=gg[1])
        else:
            y = ctx.add1("Gather", [y, ctx.const(gg[2].astype(np.int64))], axis=gg[1])
    _set_dyn(ctx, {d for d in out_dyn if d < len(ctx.out_shape())})
    return [y]


# ----------------------------------------------------------------------------- reductions
@converter("amax", "amin", "logsumexp", "prod")
def _reduce_plain(ctx, node):
    t = {"amax": "ReduceMax", "amin": "ReduceMin", "logsumexp": "ReduceLogSumExp",
         "prod": "ReduceProd"}[node.op]
    x = node.args[0]
    kd = node.attrs.get("keepdims", False)
    y, axes = reduce(ctx, t, ctx.name(x), len(ctx.shape(x)), node.attrs.get("axis"), kd)
    _set_dyn(ctx, _reduced_dyn(ctx, node, axes, kd))
    return [y]


@converter("max", "min")
def _max(ctx, node):
    x = node.args[0]
    a = node.attrs
    ax = int(a["axis"])
    kd = bool(a.get("keepdims", False))
    y, axes = reduce(ctx, "ReduceMax" if node.op == "max" else "ReduceMin", ctx.name(x),
                     len(ctx.shape(x)), ax, kd)
    i = ctx.add1("ArgMax" if node.op == "max" else "ArgMin", [ctx.name(x)], axis=ax,
                 keepdims=int(kd))
    d = _reduced_dyn(ctx, node, axes, kd)
    _set_dyn(ctx, d, 0)
    _set_dyn(ctx, d, 1)
    return [y, i]


@converter("var", "std")
def _var(ctx, node):
    x = node.args[0]
    a = node.attrs
    xs = ctx.shape(x)
    nd = len(xs)
    axis = a.get("axis")
    kd = a.get("keepdims", False)
    xn = ctx.name(x)
    mean, axes = reduce(ctx, "ReduceMean", xn, nd, axis, True)
    xc = ctx.add1("Sub", [xn, mean])
    ss, _ = reduce(ctx, "ReduceSum", ctx.add1("Mul", [xc, xc]), nd, axes, kd)
    n = int(np.prod([xs[i] for i in axes])) - int(a.get("correction", 1))
    y = ctx.add1("Div", [ss, _c(ctx, float(max(n, 0)))])
    _set_dyn(ctx, _reduced_dyn(ctx, node, axes, kd))
    return [ctx.add1("Sqrt", [y]) if node.op == "std" else y]


@converter("linalg_vector_norm")
def _vnorm(ctx, node):
    ordv = node.attrs.get("ord", 2.0)
    t = {2.0: "ReduceL2", 1.0: "ReduceL1"}.get(float(ordv))
    if t is None:
        raise ctx.unsupported(f"vector norm of order {ordv}")
    x = node.args[0]
    kd = node.attrs.get("keepdims", False)
    xn = ctx.name(x)
    if t == "ReduceL1":
        xn = ctx.add1("Abs", [xn])
    y, axes = reduce(ctx, t, xn, len(ctx.shape(x)), node.attrs.get("axis"), kd)
    _set_dyn(ctx, _reduced_dyn(ctx, node, axes, kd))
    return [y]


@converter("cumsum")
def _cumsum(ctx, node):
    return [ctx.add1("CumSum", [ctx.name(node.args[0]), ctx.const(np.asarray(
        int(node.attrs["axis"]), np.int64))])]


@converter("topk", "sort")
def _topk(ctx, node):
    x = node.args[0]
    a = node.attrs
    ax = int(a["axis"]) % len(ctx.shape(x))
    if node.op == "topk":
        k, largest = int(a["k"]), int(bool(a.get("largest", True)))
    else:
        k, largest = ctx.shape(x)[ax], int(bool(a.get("descending", False)))
    vals, idx = ctx.add("TopK", [ctx.name(x), ctx.ints([k])], n_out=2, axis=ax,
                        largest=largest, sorted=1)
    return [vals, idx]


# ----------------------------------------------------------------------------- attention
@converter("sdpa")
def _sdpa(ctx, node):
    q, k, v = node.args[:3]
    mask = node.args[3] if len(node.args) > 3 else None
    if node.attrs.get("drop") is not None:
        raise ctx.unsupported("attention dropout (export in eval mode)")
    kt = ctx.add1("Transpose", [ctx.name(k)], perm=_swap_last(len(ctx.shape(k))))
    s = ctx.add1("Mul", [ctx.add1("MatMul", [ctx.name(q), kt]),
                         _c(ctx, float(node.attrs.get("scale", 1.0)))])
    if isinstance(mask, Ref):
        s = ctx.add1("Add", [s, ctx.name(mask)])
    p = ctx.add1("Softmax", [s], axis=-1)
    d = ctx.dyn_of(q)
    _set_dyn(ctx, set(d), 0)
    _set_dyn(ctx, {i for i in d if i < len(ctx.shape(q)) - 2}, 1)
    return [ctx.add1("MatMul", [p, ctx.name(v)]), p]


def _swap_last(n: int) -> list:
    perm = list(range(n))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return perm
