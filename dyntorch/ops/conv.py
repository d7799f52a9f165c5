"""Convolution, pooling and resampling ops (the imaging hot path).

Every op here is fused: one node in the graph with an analytic derivative. The convolution
family is three mutually adjoint ops, so ``create_graph=True`` works by calling each other:

* ``conv2d(x, w)``            forward convolution (cross-correlation, torch's convention);
* ``conv2d_input(g, w)``      its adjoint in ``x`` (= ``conv_transpose2d``);
* ``conv2d_weight(x, g)``     its adjoint in ``w``.

Speed: im2col through a strided window view, copied chunk by chunk (a few images at a time,
about one L2 cache) into a small buffer, then one GEMM per image written straight into the
output. Per-image GEMMs stay small on purpose: on a busy 2-core machine OpenBLAS's threaded
path for big GEMMs was measured 10x slower. The weight gradient uses the same chunks; the
input gradient is, for stride 1, a convolution of ``g`` with the flipped kernel, otherwise a
scatter of ``w^T g`` with one strided add per kernel offset (col2im). Padded copies are
scratch arrays reused across calls. Pooling uses the same offset loops (max pooling keeps no
index array unless asked); separable linear maps (adaptive average pooling, nearest/bilinear
interpolation, reflect/replicate/circular padding) are a pair of small matrices (A @ x @ B).
All array work goes through ``xp`` (NumPy or CuPy). The im2col machinery (window views, padded
and scratch buffers, column layouts, the tiled paths bounded by :data:`SCRATCH_BYTES`) lives in
``_conv_cols.py``.
"""
from __future__ import annotations

import math

from .._dispatch import op
from .._tensor import Tensor
from ._conv_cols import (
    _CHUNK_BYTES,
    _chunk,
    _cols_t,
    _conv2d_input_tiled,
    _conv2d_tiled,
    _conv2d_weight_tiled,
    _g_t,
    _out_size,
    _padded,
    _scratch,
    _windows,
)
from ._ns import _add_at
from .norm import _chan_sum


def _call(ns, opdef, *args, **attrs):
    """Run ``opdef`` on arrays (plain backward) or through the door (create_graph)."""
    xp = ns.xp
    if xp is not None:
        return opdef.forward(xp, *args, **attrs)
    return opdef(*args, **attrs)


# ----------------------------------------------------------------------------- memory bound
# Scratch budget (bytes) for the im2col columns of ONE image. When an image's columns
# (C*kh*kw * oh*ow values) exceed it, every conv path (forward, input gradient, weight gradient,
# conv_transpose2d, the 1-D convs that run as 1xL conv2d) works one output tile at a time: a
# band of output rows, or a run of columns within one row when a single row is already too big.
# Peak memory then stays near input + output + weights + this budget: a 9x9 conv from 32
# channels over a 1088x1088 image needed 12 GB of columns before. Public and read at call time,
# so a test (or a user short of memory) can set ``dyntorch.ops.conv.SCRATCH_BYTES`` lower.
SCRATCH_BYTES = 64 << 20


def _tile_budget(xp) -> int:
    """Bytes of columns per tile once an image is sliced: cache-sized on the CPU (the GEMMs stay
    small enough that OpenBLAS runs them unthreaded; fast_neural_style's 9x9 32->3 conv over
    1088x1088 took 1.4 s of CPU with 1 MiB tiles against 9-19 s with 2-64 MiB ones, measured
    in one process on the shared 2-core machine), the whole budget on the GPU."""
    if xp.__name__ == "numpy":
        return min(SCRATCH_BYTES, _CHUNK_BYTES)
    return SCRATCH_BYTES


def _too_big(c, kh, kw, oh, ow, itemsize) -> bool:
    """Whether one image's im2col columns exceed the scratch budget (then slice by tiles)."""
    return c * kh * kw * oh * ow * itemsize > SCRATCH_BYTES


# chunk budget of the batched (groups=1) layout: bigger chunks mean longer GEMMs
_BATCH_CHUNK_BYTES = 4 << 20
# Output planes (oh*ow) up to which the batched layout pays, measured one op at a time against
# one GEMM per image (1 BLAS thread): ResNet-18's 4x4 and 2x2 planes 3-15x faster, 8x8 1.0-1.3x;
# LeNet's 28x28 forward 2.2x and weight gradient 2.9x slower, its 10x10 forward 1.4x slower and
# weight gradient 1.07x faster. The strided input gradient gains at every size measured.
_BATCH_MAX_L_FORWARD = 64
_BATCH_MAX_L_WEIGHT = 127


# ----------------------------------------------------------------------------- conv2d family
@op(name="conv2d", backward_name="ConvolutionBackward0")
def _conv2d(xp, x, w, b=None, stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1), groups=1):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    g = groups
    og = o // g
    oh = _out_size(h, kh, stride[0], dil[0], pad[0], pad[1])
    ow = _out_size(wd, kw, stride[1], dil[1], pad[2], pad[3])
    xpad = _padded(xp, x, pad)
    win = _windows(xp, xpad, kh, kw, oh, ow, stride, dil)
    L = oh * ow
    ck = cg * kh * kw
    y = xp.empty((n, o, L), dtype=x.dtype)
    if n == 0 or L == 0:
        return y.reshape(n, o, oh, ow)
    wm = xp.ascontiguousarray(w).reshape(g, og, ck)
    if _too_big(c, kh, kw, oh, ow, x.itemsize):
        _conv2d_tiled(xp, win, wm, y.reshape(n, g, og, oh, ow), _tile_budget(xp))
        if b is not None:
            y += b.reshape(1, o, 1)
        return y.reshape(n, o, oh, ow)
    if g == 1 and L <= _BATCH_MAX_L_FORWARD:  # one GEMM per chunk of images (see _cols_t)
        bsz = _chunk(xp, ck * L * x.itemsize, n, _BATCH_CHUNK_BYTES)
        for i in range(0, n, bsz):
            m = min(bsz, n - i)
            ym = _scratch(xp, "y", o * m * L, x.dtype).reshape(o, m * L)
            xp.matmul(wm[0], _cols_t(xp, win, i, m), out=ym)
            y[i:i + m] = ym.reshape(o, m, L).transpose(1, 0, 2)
        if b is not None:
            y += b.reshape(1, o, 1)
        return y.reshape(n, o, oh, ow)
    bsz = _chunk(xp, c * kh * kw * L * x.itemsize, n)
    cols = xp.empty((bsz, c, kh, kw, oh, ow), dtype=x.dtype)
    yv = y.reshape(n, g, og, L)
    for i in range(0, n, bsz):
        m = min(bsz, n - i)
        cb = cols[:m]
        cb[...] = win[i:i + m]
        if g == 1:
            xp.matmul(wm[0], cb.reshape(m, ck, L), out=y[i:i + m])
        else:
            xp.matmul(wm, cb.reshape(m, g, ck, L), out=yv[i:i + m])
    if b is not None:
        y += b.reshape(1, o, 1)
    return y.reshape(n, o, oh, ow)


@_conv2d.def_derivative
def _(ns, g, x, w, b=None, stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1), groups=1, needs=()):
    kw_ = dict(stride=stride, pad=pad, dil=dil, groups=groups)
    dx = _call(ns, _conv2d_input, g, w, hw=tuple(x.shape[2:]), **kw_) if needs[0] else None
    dw = _call(ns, _conv2d_weight, x, g, khw=tuple(w.shape[2:]), **kw_) if needs[1] else None
    db = None
    if len(needs) > 2 and needs[2]:
        # plain path: per-channel sums by BLAS, 24 us against 70 us for sum(axis=(0, 2, 3))
        # on LeNet's (64, 6, 24, 24) gradient (ab.py lenet case)
        db = _chan_sum(ns.xp, g.reshape(g.shape[0], g.shape[1], -1)) if ns.xp is not None \
            else ns.sum(g, (0, 2, 3))
    return dx, dw, db


@op(name="conv2d_input", backward_name="ConvolutionBackward0")
def _conv2d_input(xp, g, w, b=None, hw=None, stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1),
                  groups=1):
    """Adjoint of conv2d in its input: col2im of ``w^T g`` (also conv_transpose2d)."""
    n, o, oh, ow = g.shape
    _, cg, kh, kw = w.shape
    G = groups
    og = o // G
    c = cg * G
    h, wd = hw
    if stride == (1, 1) and og <= 2 * cg:
        # stride 1: a plain convolution of g with the flipped, transposed kernel (im2col + GEMM
        # in cache-sized chunks) beats scattering columns back offset by offset, unless g has
        # many more channels than x (measured: 3x3 with O <= 2C wins, LeNet 6->16 5x5 loses)
        pt, pl = dil[0] * (kh - 1) - pad[0], dil[1] * (kw - 1) - pad[2]
        pb, pr = h - oh + dil[0] * (kh - 1) - pt, wd - ow + dil[1] * (kw - 1) - pl
        if min(pt, pb, pl, pr) >= 0:
            wf = w.reshape(G, og, cg, kh, kw)[:, :, :, ::-1, ::-1].swapaxes(1, 2)
            wf = xp.ascontiguousarray(wf).reshape(c, og, kh, kw)
            return _conv2d.forward(xp, g, wf, b, stride=(1, 1), pad=(pt, pb, pl, pr),
                                   dil=dil, groups=G)
    hp, wp = h + pad[0] + pad[1], wd + pad[2] + pad[3]
    L = oh * ow
    ck = cg * kh * kw
    dxp = xp.zeros((n, c, hp, wp), dtype=g.dtype)
    if n and L and _too_big(c, kh, kw, oh, ow, g.itemsize):
        wt = xp.ascontiguousarray(xp.ascontiguousarray(w).reshape(G, og, ck).swapaxes(1, 2))
        _conv2d_input_tiled(xp, wt, xp.ascontiguousarray(g).reshape(n, G, og, oh, ow), dxp,
                            kh, kw, stride, dil, _tile_budget(xp))
    elif G == 1 and n and L:  # w^T g for a chunk of images in one GEMM (see _cols_t)
        wt = xp.ascontiguousarray(xp.ascontiguousarray(w).reshape(o, ck).T)
        bsz = _chunk(xp, ck * L * g.itemsize, n, _BATCH_CHUNK_BYTES)
        sh, sw = stride
        eh, ew = sh * (oh - 1) + 1, sw * (ow - 1) + 1
        for i in range(0, n, bsz):
            m = min(bsz, n - i)
            dc = _scratch(xp, "dcols", ck * m * L, g.dtype).reshape(ck, m * L)
            xp.matmul(wt, _g_t(xp, g, i, m), out=dc)
            dc6 = dc.reshape(c, kh, kw, m, oh, ow)
            dst = dxp[i:i + m].transpose(1, 0, 2, 3)  # (c, m, hp, wp), a view
            for a in range(kh):
                ra = a * dil[0]
                for bb in range(kw):
                    cb = bb * dil[1]
                    dst[:, :, ra:ra + eh:sh, cb:cb + ew:sw] += dc6[:, a, bb]
    elif n and L:
        wt = xp.ascontiguousarray(xp.ascontiguousarray(w).reshape(G, og, ck).swapaxes(1, 2))
        gv = xp.ascontiguousarray(g).reshape(n, G, og, L)
        bsz = _chunk(xp, c * kh * kw * L * g.itemsize, n)
        dcols = xp.empty((bsz, G, ck, L), dtype=g.dtype)
        sh, sw = stride
        dh, dw = dil
        eh, ew = sh * (oh - 1) + 1, sw * (ow - 1) + 1
        for i in range(0, n, bsz):
            m = min(bsz, n - i)
            dc = dcols[:m]
            xp.matmul(wt, gv[i:i + m], out=dc)
            dc6 = dc.reshape(m, c, kh, kw, oh, ow)
            dst = dxp[i:i + m]
            for a in range(kh):
                ra = a * dh
                for bb in range(kw):
                    cb = bb * dw
                    dst[:, :, ra:ra + eh:sh, cb:cb + ew:sw] += dc6[:, :, a, bb]
    dx = dxp[:, :, pad[0]:pad[0] + h, pad[2]:pad[2] + wd]
    if dx.shape != dxp.shape:
        dx = xp.ascontiguousarray(dx)
    if b is not None:
        dx += b.reshape(1, -1, 1, 1)
    return dx


@_conv2d_input.def_derivative
def _(ns, gg, g, w, b=None, hw=None, stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1), groups=1,
      needs=()):
    kw_ = dict(stride=stride, pad=pad, dil=dil, groups=groups)
    dg = _call(ns, _conv2d, gg, w, **kw_) if needs[0] else None
    dw = _call(ns, _conv2d_weight, gg, g, khw=tuple(w.shape[2:]), **kw_) if needs[1] else None
    db = ns.sum(gg, (0, 2, 3)) if len(needs) > 2 and needs[2] else None
    return dg, dw, db


@op(name="conv2d_weight", backward_name="ConvolutionBackward0")
def _conv2d_weight(xp, x, g, khw=None, stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1), groups=1):
    """Adjoint of conv2d in its weight: sum over images of ``g @ cols^T``."""
    n, c, h, wd = x.shape
    _, o, oh, ow = g.shape
    kh, kw = khw
    G = groups
    cg, og = c // G, o // G
    L = oh * ow
    ck = cg * kh * kw
    if n and L and _too_big(c, kh, kw, oh, ow, x.itemsize):
        dw = xp.zeros((G, og, ck), dtype=x.dtype)
        win = _windows(xp, _padded(xp, x, pad), kh, kw, oh, ow, stride, dil)
        _conv2d_weight_tiled(xp, win, xp.ascontiguousarray(g).reshape(n, G, og, oh, ow), dw,
                             _tile_budget(xp))
        return dw.reshape(o, cg, kh, kw)
    if G == 1 and n and 0 < L <= _BATCH_MAX_L_WEIGHT:  # one GEMM per chunk of images
        win = _windows(xp, _padded(xp, x, pad), kh, kw, oh, ow, stride, dil)
        bsz = _chunk(xp, ck * L * x.itemsize, n, _BATCH_CHUNK_BYTES)
        dw = None
        for i in range(0, n, bsz):
            m = min(bsz, n - i)
            part = xp.matmul(_g_t(xp, g, i, m), _cols_t(xp, win, i, m).T)
            if dw is None:
                dw = part
            else:
                dw += part
        return dw.reshape(o, cg, kh, kw)
    dw = xp.zeros((G, og, ck), dtype=x.dtype)
    if n and L:
        xpad = _padded(xp, x, pad)
        win = _windows(xp, xpad, kh, kw, oh, ow, stride, dil)
        gv = xp.ascontiguousarray(g).reshape(n, G, og, L)
        bsz = _chunk(xp, c * kh * kw * L * x.itemsize, n)
        cols = xp.empty((bsz, c, kh, kw, oh, ow), dtype=x.dtype)
        tmp = xp.empty((bsz, G, og, ck), dtype=x.dtype)
        for i in range(0, n, bsz):
            m = min(bsz, n - i)
            cb = cols[:m]
            cb[...] = win[i:i + m]
            t = tmp[:m]
            xp.matmul(gv[i:i + m], cb.reshape(m, G, ck, L).swapaxes(2, 3), out=t)
            dw += t[0] if m == 1 else t.sum(0)
    return dw.reshape(o, cg, kh, kw)


@_conv2d_weight.def_derivative
def _(ns, gw, x, g, khw=None, stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1), groups=1,
      needs=()):
    kw_ = dict(stride=stride, pad=pad, dil=dil, groups=groups)
    dx = _call(ns, _conv2d_input, g, gw, hw=tuple(x.shape[2:]), **kw_) if needs[0] else None
    dg = _call(ns, _conv2d, x, gw, **kw_) if needs[1] else None
    return dx, dg


# ----------------------------------------------------------------------------- argument parsing
def _pair(v, name: str, n: int = 2) -> tuple:
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            v = tuple(v) * n
        if len(v) != n:
            raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v!r}")
        return tuple(int(a) for a in v)
    return (int(v),) * n


def _check_conv(op_name, x, w, groups, nd):
    if x.ndim != nd + 2:
        raise RuntimeError(
            f"{op_name}(): Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to "
            f"{op_name}, but got input of size: {list(x.shape)}")
    if w.ndim != nd + 2:
        raise RuntimeError(f"{op_name}(): weight must be {nd + 2}-D, got {list(w.shape)}")
    if x.shape[1] != w.shape[1] * groups:
        raise RuntimeError(
            f"{op_name}(): Given groups={groups}, weight of size {list(w.shape)}, expected "
            f"input{list(x.shape)} to have {w.shape[1] * groups} channels, but got "
            f"{x.shape[1]} channels instead")
    if w.shape[0] % groups:
        raise RuntimeError(f"{op_name}(): out_channels ({w.shape[0]}) must be divisible by "
                           f"groups ({groups})")
    if x._data.dtype != w._data.dtype:
        raise RuntimeError(
            f"{op_name}(): Input type ({x.dtype}) and weight type ({w.dtype}) should be the "
            "same; convert one with .to(dtype)")


def _conv_padding(padding, k, dil, stride, op_name):
    """(top, bottom, left, right) from torch's padding argument (int, tuple, 'same', 'valid')."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op_name}(): padding='same' is not supported for strided "
                                 "convolutions")
            out = []
            for kk, d in zip(k, dil):
                tot = d * (kk - 1)
                out += [tot // 2, tot - tot // 2]
            return tuple(out)
        raise ValueError(f"{op_name}(): Invalid padding string {padding!r}, should be one of "
                         "'valid' or 'same'")
    p = _pair(padding, "padding")
    return (p[0], p[0], p[1], p[1])


def _unbatched(x: Tensor, nd: int):
    if x.ndim == nd + 1:
        return _unsq(x, 0), True
    return x, False


def _unsq(x: Tensor, dim: int) -> Tensor:
    s = tuple(x.shape)
    return x.reshape(s[:dim] + (1,) + s[dim:])


def _sq(x: Tensor, dim: int) -> Tensor:
    s = tuple(x.shape)
    return x.reshape(s[:dim] + s[dim + 1:])


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) over (N, C, H, W) (``torch.nn.functional.conv2d``).

    Parameters
    ----------
    input : Tensor
        (N, C_in, H, W) or unbatched (C_in, H, W).
    weight : Tensor
        (C_out, C_in / groups, kH, kW).
    bias : Tensor, optional
        (C_out,).
    stride, padding, dilation : int or tuple
        ``padding`` may also be ``'same'`` or ``'valid'``.
    groups : int
        Split channels into this many independent convolutions.
    """
    x, unb = _unbatched(input, 2)
    _check_conv("conv2d", x, weight, groups, 2)
    stride = _pair(stride, "stride")
    dil = _pair(dilation, "dilation")
    pad = _conv_padding(padding, weight.shape[2:], dil, stride, "conv2d")
    oh = _out_size(x.shape[2], weight.shape[2], stride[0], dil[0], pad[0], pad[1])
    ow = _out_size(x.shape[3], weight.shape[3], stride[1], dil[1], pad[2], pad[3])
    if oh <= 0 or ow <= 0:
        raise RuntimeError(
            f"conv2d(): Calculated padded input size per channel: "
            f"({x.shape[2] + pad[0] + pad[1]} x {x.shape[3] + pad[2] + pad[3]}). Kernel size: "
            f"({weight.shape[2]} x {weight.shape[3]}). Kernel size can't be greater than actual "
            "input size")
    args = (x, weight) if bias is None else (x, weight, bias)
    y = _conv2d(*args, stride=stride, pad=pad, dil=dil, groups=int(groups))
    return _sq(y, 0) if unb else y


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-D convolution over (N, C, L) (``torch.nn.functional.conv1d``); runs as a 1xL conv2d."""
    x, unb = _unbatched(input, 1)
    _check_conv("conv1d", x, weight, groups, 1)
    if isinstance(padding, str):
        pad2 = padding
    else:
        pad2 = (0, _pair(padding, "padding", 1)[0])
    y = conv2d(_unsq(x, 2), _unsq(weight, 2), bias, stride=(1, _pair(stride, "s", 1)[0]),
               padding=pad2, dilation=(1, _pair(dilation, "d", 1)[0]), groups=groups)
    y = _sq(y, 2)
    return _sq(y, 0) if unb else y


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 2-D convolution (``torch.nn.functional.conv_transpose2d``).

    ``weight`` is (C_in, C_out / groups, kH, kW); the output size per dim is
    ``(H - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.
    """
    x, unb = _unbatched(input, 2)
    if x.ndim != 4 or weight.ndim != 4:
        raise RuntimeError(f"conv_transpose2d(): expected 4-D input and weight, got "
                           f"{list(input.shape)} and {list(weight.shape)}")
    if x.shape[1] != weight.shape[0]:
        raise RuntimeError(
            f"conv_transpose2d(): Given transposed=1, weight of size {list(weight.shape)}, "
            f"expected input{list(x.shape)} to have {weight.shape[0]} channels, but got "
            f"{x.shape[1]} channels instead")
    stride = _pair(stride, "stride")
    dil = _pair(dilation, "dilation")
    p = _pair(padding, "padding")
    op_ = _pair(output_padding, "output_padding")
    for a, s, d in zip(op_, stride, dil):
        if a >= s and a >= d:
            raise RuntimeError("conv_transpose2d(): output padding must be smaller than either "
                               f"stride or dilation, got output_padding={op_}, stride={stride}, "
                               f"dilation={dil}")
    hw = tuple((x.shape[2 + i] - 1) * stride[i] - 2 * p[i] + dil[i] * (weight.shape[2 + i] - 1)
               + op_[i] + 1 for i in range(2))
    pad = (p[0], p[0], p[1], p[1])  # output_padding rows are covered by no window
    args = (x, weight) if bias is None else (x, weight, bias)
    y = _conv2d_input(*args, hw=hw, stride=stride, pad=pad, dil=dil, groups=int(groups))
    return _sq(y, 0) if unb else y


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1,
                     padding=0, output_padding=0, groups: int = 1, dilation=1) -> Tensor:
    """Transposed 1-D convolution (``torch.nn.functional.conv_transpose1d``)."""
    x, unb = _unbatched(input, 1)
    one = lambda v: (1, _pair(v, "arg", 1)[0]) if not isinstance(v, (tuple, list)) or len(v) == 1 \
        else (1, v[0])  # noqa: E731
    y = _sq(conv_transpose2d(_unsq(x, 2), _unsq(weight, 2), bias, stride=one(stride),
                             padding=(0, _pair(padding, "p", 1)[0]),
                             output_padding=(0, _pair(output_padding, "op", 1)[0]),
                             groups=groups, dilation=one(dilation)), 2)
    return _sq(y, 0) if unb else y


# ----------------------------------------------------------------------------- unfold / fold
@op(name="im2col", backward_name="Im2ColBackward0")
def _im2col(xp, x, k=(1, 1), stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1)):
    n, c, h, w = x.shape
    oh = _out_size(h, k[0], stride[0], dil[0], pad[0], pad[1])
    ow = _out_size(w, k[1], stride[1], dil[1], pad[2], pad[3])
    win = _windows(xp, _padded(xp, x, pad), k[0], k[1], oh, ow, stride, dil)
    return xp.ascontiguousarray(win).reshape(n, c * k[0] * k[1], oh * ow)


@_im2col.def_derivative
def _(ns, g, x, k=(1, 1), stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1)):
    return _call(ns, _col2im, g, hw=tuple(x.shape[2:]), k=k, stride=stride, pad=pad, dil=dil)


@op(name="col2im", backward_name="Col2ImBackward0")
def _col2im(xp, cols, hw=None, k=(1, 1), stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1)):
    n, ckk, L = cols.shape
    kh, kw = k
    c = ckk // (kh * kw)
    h, w = hw
    oh = _out_size(h, kh, stride[0], dil[0], pad[0], pad[1])
    ow = _out_size(w, kw, stride[1], dil[1], pad[2], pad[3])
    dxp = xp.zeros((n, c, h + pad[0] + pad[1], w + pad[2] + pad[3]), dtype=cols.dtype)
    c6 = cols.reshape(n, c, kh, kw, oh, ow)
    eh, ew = stride[0] * (oh - 1) + 1, stride[1] * (ow - 1) + 1
    for a in range(kh):
        for b in range(kw):
            ra, cb = a * dil[0], b * dil[1]
            dxp[:, :, ra:ra + eh:stride[0], cb:cb + ew:stride[1]] += c6[:, :, a, b]
    return xp.ascontiguousarray(dxp[:, :, pad[0]:pad[0] + h, pad[2]:pad[2] + w])


@_col2im.def_derivative
def _(ns, g, _cols, hw=None, k=(1, 1), stride=(1, 1), pad=(0, 0, 0, 0), dil=(1, 1)):
    return _call(ns, _im2col, g, k=k, stride=stride, pad=pad, dil=dil)


def unfold(input: Tensor, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Extract sliding blocks: (N, C, H, W) -> (N, C*kH*kW, L) (``F.unfold``)."""
    x, unb = _unbatched(input, 2)
    p = _pair(padding, "padding")
    y = _im2col(x, k=_pair(kernel_size, "kernel_size"), stride=_pair(stride, "stride"),
                pad=(p[0], p[0], p[1], p[1]), dil=_pair(dilation, "dilation"))
    return _sq(y, 0) if unb else y


def fold(input: Tensor, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sum sliding blocks back into an image: (N, C*kH*kW, L) -> (N, C, H, W) (``F.fold``)."""
    x, unb = (_unsq(input, 0), True) if input.ndim == 2 else (input, False)
    p = _pair(padding, "padding")
    k = _pair(kernel_size, "kernel_size")
    if x.shape[1] % (k[0] * k[1]):
        raise RuntimeError(f"fold(): expected size of input's dimension 1 to be divisible by the "
                           f"product of kernel_size, but got input.size(1)={x.shape[1]} and "
                           f"kernel_size={k}")
    y = _col2im(x, hw=_pair(output_size, "output_size"), k=k, stride=_pair(stride, "stride"),
                pad=(p[0], p[0], p[1], p[1]), dil=_pair(dilation, "dilation"))
    return _sq(y, 0) if unb else y


# ----------------------------------------------------------------------------- max pooling
def _pool_geometry(h, k, s, p, d, ceil):
    """Output size and the extra bottom padding ceil_mode needs (torch's rule)."""
    span = h + 2 * p - d * (k - 1) - 1
    if ceil:
        out = -(-span // s) + 1
        if (out - 1) * s >= h + p:
            out -= 1
    else:
        out = span // s + 1
    extra = max(0, (out - 1) * s + d * (k - 1) + 1 - (h + 2 * p))
    return out, extra


def _check_pool_size(name, shape, k, s, p, d, ceil):
    """Refuse a kernel that does not fit the padded input (``shape``: one sample's
    (C, *spatial)); without this the result would be an empty tensor, silently."""
    outs = [_pool_geometry(h, kk, ss, pp, dd, ceil)[0]
            for h, kk, ss, pp, dd in zip(shape[1:], k, s, p, d)]
    if all(o > 0 for o in outs):
        return
    size = "x".join
    span = tuple(dd * (kk - 1) + 1 for kk, dd in zip(k, d))
    room = tuple(h + 2 * pp for h, pp in zip(shape[1:], p))
    dil = "" if all(dd == 1 for dd in d) else f", dilation={d}"
    raise RuntimeError(
        f"{name}(): Given input size: ({size(map(str, shape))}). Calculated output size: "
        f"({size(map(str, (shape[0], *outs)))}). Output size is too small: the window spans "
        f"{span} (kernel_size={k}{dil}) but the padded input is only {room} (padding={p}); "
        "use a smaller kernel_size, or pool a larger input")


def _max_windows(xp, x, k, stride, pad, dil, ceil):
    """Strided window view of the -inf padded input, and the output size."""
    n, c, h, w = x.shape
    oh, eh = _pool_geometry(h, k[0], stride[0], pad[0], dil[0], ceil)
    ow, ew = _pool_geometry(w, k[1], stride[1], pad[1], dil[1], ceil)
    neg = -xp.inf if x.dtype.kind == "f" else xp.iinfo(x.dtype).min
    xpad = _padded(xp, x, (pad[0], pad[0] + eh, pad[1], pad[1] + ew), neg)
    return xpad, _windows(xp, xpad, k[0], k[1], oh, ow, stride, dil), oh, ow


@op(name="max_pool2d", backward_name="MaxPool2DWithIndicesBackward0", aux=("maxima",))
def _max_pool2d(xp, x, k=(1, 1), stride=(1, 1), pad=(0, 0), dil=(1, 1), ceil=False):
    """(pooled, maxima): the derivative finds each window's maximum again from a private
    copy of the result, so the user may change the result in place."""
    _, win, _, _ = _max_windows(xp, x, k, stride, pad, dil, ceil)
    best = win[:, :, 0, 0].copy()
    for a in range(k[0]):
        for b in range(k[1]):
            if a or b:
                xp.maximum(best, win[:, :, a, b], out=best)  # NaN propagates, like torch
    return best, best.copy()


def _first_max_masks(xp, win, best, k):
    """Per kernel offset, where that offset holds the window's first maximum (torch's pick)."""
    taken = None
    for a in range(k[0]):
        for b in range(k[1]):
            cand = win[:, :, a, b]
            m = (cand == best) | (cand != cand)
            if taken is None:
                taken = m
            else:
                m &= ~taken
                taken |= m
            yield a, b, m


def _max_pool_indices(xp, x, best, k, stride, pad, dil, ceil):
    """Flat index within each (H, W) input plane of every window's maximum."""
    _, win, oh, ow = _max_windows(xp, x, k, stride, pad, dil, ceil)
    w = x.shape[3]
    idx = xp.zeros(best.shape, dtype=xp.int64)
    rows = xp.arange(oh).reshape(oh, 1) * stride[0] - pad[0]
    cols = xp.arange(ow) * stride[1] - pad[1]
    base = rows * w + cols
    for a, b, m in _first_max_masks(xp, win, best, k):
        xp.copyto(idx, base + (a * dil[0] * w + b * dil[1]), where=m)
    return idx


@_max_pool2d.def_derivative
def _(ns, g, x, maxima, k=(1, 1), stride=(1, 1), pad=(0, 0), dil=(1, 1), ceil=False):
    xp = ns.xp
    out = maxima
    if xp is None:  # create_graph: route through the differentiable scatter
        xd, od = x._data, maxima._data
        from .. import _backend as B

        idx = _max_pool_indices(B.xp_of(xd), xd, od, k, stride, pad, dil, ceil)
        overlap = stride[0] < dil[0] * (k[0] - 1) + 1 or stride[1] < dil[1] * (k[1] - 1) + 1
        return _plane_scatter(g, idx, hw=tuple(xd.shape[2:]), overlap=overlap)
    n, c, h, w = x.shape
    if stride == k and pad == (0, 0) and dil == (1, 1) and not h % k[0] and not w % k[1]:
        # windows tile the input exactly (LeNet's 2x2 pools): each kernel offset's gradient is
        # written once into its strided slice, no zero fill and no adds (ab.py lenet case)
        oh, ow = h // k[0], w // k[1]
        win = x.reshape(n, c, oh, k[0], ow, k[1]).transpose(0, 1, 3, 5, 2, 4)
        dx = xp.empty((n, c, oh, k[0], ow, k[1]), dtype=g.dtype)
        dxw = dx.transpose(0, 1, 3, 5, 2, 4)
        for a, b, m in _first_max_masks(xp, win, out, k):
            xp.multiply(g, m, out=dxw[:, :, a, b])
        return dx.reshape(x.shape)
    xpad, win, oh, ow = _max_windows(xp, x, k, stride, pad, dil, ceil)
    dxp = xp.zeros(xpad.shape, dtype=g.dtype)
    sh, sw = stride
    eh, ew = sh * (oh - 1) + 1, sw * (ow - 1) + 1
    for a, b, m in _first_max_masks(xp, win, out, k):
        ra, cb = a * dil[0], b * dil[1]
        dxp[:, :, ra:ra + eh:sh, cb:cb + ew:sw] += g * m
    if dxp.shape[2:] == (h, w):
        return dxp
    return xp.ascontiguousarray(dxp[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + w])


@op(name="plane_scatter", backward_name="MaxPool2DWithIndicesBackwardBackward0")
def _plane_scatter(xp, g, idx, hw=None, overlap=True):
    """zeros(N, C, H, W) with ``g`` added at flat plane positions ``idx`` (max-pool backward)."""
    n, c = g.shape[:2]
    hwn = hw[0] * hw[1]
    base = (xp.arange(n * c, dtype=xp.int64) * hwn).reshape(n, c, *([1] * (g.ndim - 2)))
    flat = (idx + base).ravel()
    if overlap:
        if xp.__name__ == "numpy":
            out = xp.bincount(flat, weights=g.ravel(), minlength=n * c * hwn).astype(g.dtype)
        else:
            out = xp.zeros(n * c * hwn, dtype=g.dtype)
            _add_at(xp, out, flat, g.ravel())
    else:  # windows never overlap: every position is written at most once
        out = xp.zeros(n * c * hwn, dtype=g.dtype)
        out[flat] = g.ravel()
    return out.reshape(n, c, *hw)


@_plane_scatter.def_derivative
def _(ns, gg, _g, idx, hw=None, overlap=True):
    n, c = gg.shape[:2]
    flat = ns.reshape(gg, (n, c, -1))
    return ns.reshape(ns.take_along_axis(flat, ns.reshape(idx, (n, c, -1)), 2), idx.shape), None


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """2-D max pooling (``torch.nn.functional.max_pool2d``); indices are flat per (H, W) plane."""
    x, unb = _unbatched(input, 2)
    if x.ndim != 4:
        raise RuntimeError(f"max_pool2d(): Expected 3D or 4D input, got {list(input.shape)}")
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) \
        else _pair(stride, "stride")
    p = _pair(padding, "padding")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise RuntimeError(f"max_pool2d(): pad should be at most half of effective kernel size, "
                           f"but got pad={p} and kernel_size={k}")
    d = _pair(dilation, "dilation")
    _check_pool_size("max_pool2d", x.shape[1:], k, s, p, d, ceil_mode)
    y = _max_pool2d(x, k=k, stride=s, pad=p, dil=d, ceil=bool(ceil_mode))[0]
    if not return_indices:
        return _sq(y, 0) if unb else y
    from .._tensor import _make

    xd = x._data
    idx = _make(_max_pool_indices(_xp_of(x), xd, y._data, k, s, p, d, bool(ceil_mode)))
    if unb:
        y, idx = _sq(y, 0), _sq(idx, 0)
    return y, idx


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode: bool = False, return_indices: bool = False):
    """1-D max pooling over (N, C, L) (``torch.nn.functional.max_pool1d``)."""
    x, unb = _unbatched(input, 1)
    one = lambda v: _pair(v, "arg", 1)[0]  # noqa: E731
    s = None if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) \
        else (1, one(stride))
    k = one(kernel_size)
    if x.ndim == 3:
        _check_pool_size("max_pool1d", x.shape[1:], (k,), (k,) if s is None else s[1:],
                         (one(padding),), (one(dilation),), ceil_mode)
    r = max_pool2d(_unsq(x, 2), (1, k), s if s is not None else (1, k), (0, one(padding)),
                   (1, one(dilation)), ceil_mode, True)
    y, idx = _sq(r[0], 2), _sq(r[1], 2)
    if unb:
        y, idx = _sq(y, 0), _sq(idx, 0)
    return (y, idx) if return_indices else y


# ----------------------------------------------------------------------------- average pooling
def _avg_divisor(xp, dtype, h, w, k, s, p, oh, ow, include_pad, override):
    if override:
        return None, float(override)
    def one(n, kk, ss, pp, o):
        start = xp.arange(o) * ss - pp
        end = xp.minimum(start + kk, n + pp)
        size = end - start
        cs, ce = xp.maximum(start, 0), xp.minimum(end, n)
        return size, ce - cs
    sh, vh = one(h, k[0], s[0], p[0], oh)
    sw, vw = one(w, k[1], s[1], p[1], ow)
    div = (sh.reshape(-1, 1) * sw) if include_pad else (vh.reshape(-1, 1) * vw)
    if bool((div == k[0] * k[1]).all()):
        return None, float(k[0] * k[1])
    return div.astype(dtype), None


@op(name="avg_pool2d", backward_name="AvgPool2DBackward0")
def _avg_pool2d(xp, x, k=(1, 1), stride=(1, 1), pad=(0, 0), ceil=False, include_pad=True,
                override=None):
    n, c, h, w = x.shape
    oh, eh = _pool_geometry(h, k[0], stride[0], pad[0], 1, ceil)
    ow, ew = _pool_geometry(w, k[1], stride[1], pad[1], 1, ceil)
    xpad = _padded(xp, x, (pad[0], pad[0] + eh, pad[1], pad[1] + ew))
    win = _windows(xp, xpad, k[0], k[1], oh, ow, stride, (1, 1))
    acc = win[:, :, 0, 0].copy()
    for a in range(k[0]):
        for b in range(k[1]):
            if a or b:
                acc += win[:, :, a, b]
    div, const = _avg_divisor(xp, x.dtype, h, w, k, stride, pad, oh, ow, include_pad, override)
    if div is None:
        acc *= 1.0 / const
    else:
        acc /= div
    return acc


@_avg_pool2d.def_derivative
def _(ns, g, x, k=(1, 1), stride=(1, 1), pad=(0, 0), ceil=False, include_pad=True,
      override=None):
    return _call(ns, _avg_pool2d_adj, g, hw=tuple(x.shape[2:]), k=k, stride=stride, pad=pad,
                 ceil=ceil, include_pad=include_pad, override=override)


@op(name="avg_pool2d_adj", backward_name="AvgPool2DBackwardBackward0")
def _avg_pool2d_adj(xp, g, hw=None, k=(1, 1), stride=(1, 1), pad=(0, 0), ceil=False,
                    include_pad=True, override=None):
    n, c, oh, ow = g.shape
    h, w = hw
    _, eh = _pool_geometry(h, k[0], stride[0], pad[0], 1, ceil)
    _, ew = _pool_geometry(w, k[1], stride[1], pad[1], 1, ceil)
    div, const = _avg_divisor(xp, g.dtype, h, w, k, stride, pad, oh, ow, include_pad, override)
    gd = g * (1.0 / const) if div is None else g / div
    dxp = xp.zeros((n, c, h + 2 * pad[0] + eh, w + 2 * pad[1] + ew), dtype=g.dtype)
    sh, sw = stride
    for a in range(k[0]):
        for b in range(k[1]):
            dxp[:, :, a:a + sh * (oh - 1) + 1:sh, b:b + sw * (ow - 1) + 1:sw] += gd
    return xp.ascontiguousarray(dxp[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + w])


@_avg_pool2d_adj.def_derivative
def _(ns, gg, _g, hw=None, k=(1, 1), stride=(1, 1), pad=(0, 0), ceil=False, include_pad=True,
      override=None):
    return _call(ns, _avg_pool2d, gg, k=k, stride=stride, pad=pad, ceil=ceil,
                 include_pad=include_pad, override=override)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override=None) -> Tensor:
    """2-D average pooling (``torch.nn.functional.avg_pool2d``)."""
    x, unb = _unbatched(input, 2)
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) \
        else _pair(stride, "stride")
    p = _pair(padding, "padding")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise RuntimeError(f"avg_pool2d(): pad should be at most half of kernel size, but got "
                           f"pad={p} and kernel_size={k}")
    if x.ndim == 4:
        _check_pool_size("avg_pool2d", x.shape[1:], k, s, p, (1, 1), ceil_mode)
    y = _avg_pool2d(x, k=k, stride=s, pad=p, ceil=bool(ceil_mode),
                    include_pad=bool(count_include_pad), override=divisor_override)
    return _sq(y, 0) if unb else y


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """1-D average pooling (``torch.nn.functional.avg_pool1d``)."""
    x, unb = _unbatched(input, 1)
    one = lambda v: _pair(v, "arg", 1)[0]  # noqa: E731
    k = one(kernel_size)
    s = k if stride is None else one(stride)
    if x.ndim == 3:
        _check_pool_size("avg_pool1d", x.shape[1:], (k,), (s,), (one(padding),), (1,), ceil_mode)
    y = _sq(avg_pool2d(_unsq(x, 2), (1, k), (1, s), (0, one(padding)), ceil_mode,
                       count_include_pad), 2)
    return _sq(y, 0) if unb else y


# ------------------------------------------------------------------ separable linear maps
def _sandwich_op(name: str, backward_name: str):
    """An op ``A @ x @ B`` over the last two dims with constant matrices ``A`` (H'xH) and
    ``B`` (WxW'); one per use so the graph names what ran (pooling, upsampling, padding)."""

    @op(name=name, backward_name=backward_name)
    def fwd(xp, x, A, B):
        y = xp.matmul(A, x) if A is not None else x
        return xp.matmul(y, B) if B is not None else y

    @fwd.def_derivative
    def _(ns, g, _x, A, B):
        At = None if A is None else A.T
        Bt = None if B is None else B.T
        if ns.xp is None:  # create_graph: the matrices stay constants
            return fwd(g, At, Bt), None, None
        return fwd.forward(ns.xp, g, At, Bt), None, None

    return fwd


_adaptive_op = _sandwich_op("adaptive_avg_pool2d", "AdaptiveAvgPool2DBackward0")
_upsample_nearest = _sandwich_op("upsample_nearest", "UpsampleNearest2DBackward0")
_upsample_linear = _sandwich_op("upsample_bilinear", "UpsampleBilinear2DBackward0")
_pad_select = _sandwich_op("pad_select", "ReflectionPad2DBackward0")


def _xp_of(t: Tensor):
    from .. import _backend as B

    return B.xp_of(t._data)


def _adaptive_matrix(xp, n, o, dtype):
    """(o, n) averaging matrix of adaptive pooling: row i covers [floor(i n/o), ceil((i+1) n/o))."""
    import numpy as np

    m = np.zeros((o, n), dtype=dtype)
    for i in range(o):
        s = (i * n) // o
        e = -(-((i + 1) * n) // o)
        m[i, s:e] = 1.0 / (e - s)
    return xp.asarray(m)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Adaptive 2-D average pooling to ``output_size`` (``F.adaptive_avg_pool2d``)."""
    if input.ndim not in (3, 4):
        raise RuntimeError(f"adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got "
                           f"{list(input.shape)}")
    h, w = input.shape[-2:]
    os_ = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    oh = h if os_[0] is None else int(os_[0])
    ow = w if os_[1] is None else int(os_[1])
    xp = _xp_of(input)
    dt = input._data.dtype
    A = None if oh == h else _adaptive_matrix(xp, h, oh, dt)
    B = None if ow == w else _adaptive_matrix(xp, w, ow, dt).T.copy()
    if A is None and B is None:
        return _adaptive_op(input, None, None)
    if oh == 1 and ow == 1:
        return input.mean((-2, -1), keepdim=True)
    return _adaptive_op(input, A, B)


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Adaptive 1-D average pooling over the last dim (``F.adaptive_avg_pool1d``)."""
    o = output_size[0] if isinstance(output_size, (tuple, list)) else output_size
    n = input.shape[-1]
    B = _adaptive_matrix(_xp_of(input), n, int(o), input._data.dtype).T.copy()
    return _adaptive_op(input, None, B)


def _linear_matrix(xp, n, o, dtype, align, scale):
    import numpy as np

    m = np.zeros((o, n), dtype=np.float64)
    i = np.arange(o, dtype=np.float64)
    if align:
        src = i * ((n - 1) / (o - 1)) if o > 1 else np.zeros(o)
    else:
        r = scale if scale is not None else n / o
        src = np.maximum((i + 0.5) * r - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    l1 = src - i0
    m[np.arange(o), i0] += 1.0 - l1
    m[np.arange(o), i1] += l1
    return xp.asarray(m.astype(dtype))


def _nearest_matrix(xp, n, o, dtype, scale, exact):
    import numpy as np

    r = scale if scale is not None else n / o
    i = np.arange(o, dtype=np.float64)
    src = np.floor((i + 0.5) * r) if exact else np.floor(i * r)
    src = np.minimum(src.astype(np.int64), n - 1)
    m = np.zeros((o, n), dtype=dtype)
    m[np.arange(o), src] = 1.0
    return xp.asarray(m)


def interpolate(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
                align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                antialias: bool = False) -> Tensor:
    """Resize (N, C, L) or (N, C, H, W) (``F.interpolate``): nearest, nearest-exact, linear,
    bilinear (``align_corners`` as torch)."""
    nd = input.ndim - 2
    if nd not in (1, 2):
        raise NotImplementedError(f"interpolate(): only 3-D and 4-D inputs are supported, got "
                                  f"{list(input.shape)}")
    if mode not in ("nearest", "nearest-exact", "linear", "bilinear"):
        raise NotImplementedError(f"interpolate(): mode {mode!r} is not supported; use "
                                  "nearest, nearest-exact, linear or bilinear")
    if mode in ("nearest", "nearest-exact") and align_corners is not None:
        raise ValueError("align_corners option can only be set with the interpolating modes: "
                         "linear | bilinear | bicubic | trilinear")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate(): exactly one of size or scale_factor must be given")
    ins = tuple(input.shape[2:])
    for m, want in (("linear", 3), ("bilinear", 4)):
        if mode == m and input.ndim != want:
            raise NotImplementedError(f"Got {input.ndim}D input, but {m} mode needs {want}D "
                                      "input")
    for given in (size, scale_factor):
        if isinstance(given, (tuple, list)) and len(given) != nd:
            raise ValueError(
                "Input and output must have the same number of spatial dimensions, but got "
                f"input with spatial dimensions of {list(ins)} and output size of "
                f"{tuple(given)}. Please provide input tensor in (N, C, d1, d2, ...,dK) "
                "format and output size in (o1, o2, ...,oK) format.")
    if size is not None:
        outs = tuple(size) if isinstance(size, (tuple, list)) else (size,) * nd
        scales = (None,) * nd
    else:
        sf = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else \
            (scale_factor,) * nd
        outs = tuple(int(math.floor(n * f)) for n, f in zip(ins, sf))
        scales = (None,) * nd if recompute_scale_factor else tuple(1.0 / f for f in sf)
    xp = _xp_of(input)
    dt = input._data.dtype
    mats = []
    for n, o, sc in zip(ins, outs, scales):
        if mode in ("nearest", "nearest-exact"):
            mats.append(_nearest_matrix(xp, n, int(o), dt, sc, mode == "nearest-exact"))
        else:
            mats.append(_linear_matrix(xp, n, int(o), dt, bool(align_corners), sc))
    fn = _upsample_nearest if mode.startswith("nearest") else _upsample_linear
    if nd == 1:
        return fn(input, None, mats[0].T.copy())
    return fn(input, mats[0], mats[1].T.copy())


# ----------------------------------------------------------------------------- padding
@op(name="constant_pad", backward_name="ConstantPadNdBackward0")
def _constant_pad(xp, x, pads=(), value=0.0):
    shape = list(x.shape)
    src = [slice(None)] * x.ndim
    dst = [slice(None)] * x.ndim
    for i, (lo, hi) in enumerate(pads):
        ax = x.ndim - 1 - i
        n = shape[ax]
        shape[ax] = n + lo + hi
        src[ax] = slice(max(0, -lo), n - max(0, -hi))
        dst[ax] = slice(max(0, lo), max(0, lo) + (n - max(0, -lo) - max(0, -hi)))
    out = xp.full(shape, value, dtype=x.dtype)
    out[tuple(dst)] = x[tuple(src)]
    return out


@_constant_pad.def_derivative
def _(ns, g, x, pads=(), value=0.0):
    neg = tuple((-lo, -hi) for lo, hi in pads)
    return _call(ns, _constant_pad, g, pads=neg, value=0.0)


def _select_matrix(xp, n, lo, hi, mode, dtype):
    import numpy as np

    i = np.arange(-lo, n + hi)
    if mode == "reflect":
        if lo >= n or hi >= n:
            raise ValueError(f"pad(): Padding size should be less than the corresponding input "
                             f"dimension, but got: padding ({lo}, {hi}) at dimension of size "
                             f"{n}")
        i = np.abs(i)
        i = np.where(i > n - 1, 2 * (n - 1) - i, i)
    elif mode == "replicate":
        i = np.clip(i, 0, n - 1)
    else:  # circular
        i = np.mod(i, n)
    m = np.zeros((i.size, n), dtype=dtype)
    m[np.arange(i.size), i] = 1.0
    return xp.asarray(m)


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last dims (``torch.nn.functional.pad``): constant, reflect, replicate, circular.

    ``pad`` lists (left, right) of the last dim first, then of the one before, ...
    """
    if len(pad) % 2:
        raise ValueError("pad(): Padding length must be divisible by 2")
    pairs = tuple((int(pad[2 * i]), int(pad[2 * i + 1])) for i in range(len(pad) // 2))
    if len(pairs) > input.ndim:
        raise ValueError(f"pad(): Padding length too large: {len(pad)} for a "
                         f"{input.ndim}-D input")
    if mode == "constant":
        return _constant_pad(input, pads=pairs, value=0.0 if value is None else value)
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(f"pad(): mode {mode!r}; expected constant, reflect, "
                                  "replicate or circular")
    if input.ndim not in (len(pairs) + 1, len(pairs) + 2):  # torch's rank rule
        raise NotImplementedError(
            f"Padding size {len(pad)} is not supported for {input.ndim}D input tensor.\n"
            "Supported combinations for non-constant padding:\n"
            "  - 2D or 3D input: padding size = 2 (pads last dimension)\n"
            "  - 3D or 4D input: padding size = 4 (pads last 2 dimensions)\n"
            "  - 4D or 5D input: padding size = 6 (pads last 3 dimensions)")
    if len(pairs) > 2:
        raise NotImplementedError("pad(): non-constant padding of more than 2 dims")
    xp = _xp_of(input)
    dt = input._data.dtype
    B = _select_matrix(xp, input.shape[-1], *pairs[0], mode, dt).T.copy()
    A = _select_matrix(xp, input.shape[-2], *pairs[1], mode, dt) if len(pairs) == 2 else None
    return _pad_select(input, A, B)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(N, C*r*r, H, W) -> (N, C, H*r, W*r) (``F.pixel_shuffle``)."""
    r = int(upscale_factor)
    if input.ndim < 3 or r <= 0 or input.shape[-3] % (r * r):
        raise RuntimeError(f"pixel_shuffle(): expects a tensor of at least 3 dims whose "
                           f"channels divide by upscale_factor**2={r * r}, got shape "
                           f"{list(input.shape)}")
    n, c, h, w = input.shape[-4:] if input.ndim >= 4 else (1,) + tuple(input.shape)
    x = input.reshape(-1, c // (r * r), r, r, h, w)
    x = x.permute(0, 1, 4, 2, 5, 3)
    return x.reshape(*input.shape[:-3], c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(N, C, H*r, W*r) -> (N, C*r*r, H, W), the inverse of :func:`pixel_shuffle`
    (``F.pixel_unshuffle``)."""
    r = int(downscale_factor)
    if input.ndim < 3 or r <= 0 or input.shape[-1] % r or input.shape[-2] % r:
        raise RuntimeError(f"pixel_unshuffle(): expects a tensor of at least 3 dims whose last "
                           f"two sizes divide by downscale_factor={downscale_factor}, got shape "
                           f"{list(input.shape)}")
    c, h, w = input.shape[-3:]
    x = input.reshape(-1, c, h // r, r, w // r, r)
    x = x.permute(0, 1, 3, 5, 2, 4)
    return x.reshape(*input.shape[:-3], c * r * r, h // r, w // r)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """(N, g*k, *) -> channels reordered as k groups of g (``F.channel_shuffle``: ShuffleNet's
    mixing of grouped convolutions' outputs)."""
    g = int(groups)
    if input.ndim < 3:
        raise RuntimeError(f"channel_shuffle(): expected an input of at least 3 dims "
                           f"(N, C, *), got {list(input.shape)}")
    c = input.shape[1]
    if g <= 0 or c % g:
        raise RuntimeError(f"channel_shuffle(): the number of channels ({c}) must be divisible "
                           f"by groups ({g}), and groups positive")
    n, rest = input.shape[0], tuple(input.shape[2:])
    x = input.reshape(n, g, c // g, *rest).transpose(1, 2)
    return x.reshape(n, c, *rest)


PUBLIC = {"conv1d": conv1d, "conv2d": conv2d, "conv_transpose1d": conv_transpose1d,
          "conv_transpose2d": conv_transpose2d, "max_pool1d": max_pool1d,
          "max_pool2d": max_pool2d, "avg_pool1d": avg_pool1d, "avg_pool2d": avg_pool2d,
          "adaptive_avg_pool1d": adaptive_avg_pool1d,
          "adaptive_avg_pool2d": adaptive_avg_pool2d, "pixel_shuffle": pixel_shuffle,
          "pixel_unshuffle": pixel_unshuffle, "channel_shuffle": channel_shuffle}
