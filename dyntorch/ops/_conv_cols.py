"""im2col machinery of the convolution ops in :mod:`dyntorch.ops.conv`.

Strided window views, padded copies and flat scratch buffers reused across calls; the
batched column layout (one GEMM per chunk of images); and the tiled paths that slice one
image's columns into bands of output rows (or runs of columns within a row) once they exceed
``dyntorch.ops.conv.SCRATCH_BYTES``, so that peak memory stays bounded. The ops decide which
path runs and with what budget; everything here works on arrays of ``xp`` (NumPy or CuPy).
"""
from __future__ import annotations

_CHUNK_BYTES = 1 << 20  # im2col columns per chunk: about one L2 cache
_GPU_CHUNK_BYTES = 1 << 28


def _windows(xp, a, kh, kw, oh, ow, stride, dil):
    """Strided view (N, C, kh, kw, oh, ow) of the padded array ``a`` (no copy)."""
    s0, s1, s2, s3 = a.strides
    return xp.lib.stride_tricks.as_strided(
        a, (a.shape[0], a.shape[1], kh, kw, oh, ow),
        (s0, s1, s2 * dil[0], s3 * dil[1], s2 * stride[0], s3 * stride[1]))


_pad_cache: dict = {}  # padded scratch arrays, reused across calls (borders stay filled)
_PAD_CACHE_MAX_BYTES = 64 << 20


def _padded(xp, x, pad, value=0.0):
    """``x`` with (top, bottom, left, right) padding; ``x`` itself when none.

    The result is scratch space, read only within the calling op: it is reused on the next
    call with the same geometry, which saves allocating (and page-faulting) a fresh
    activation-sized array per layer per step.
    """
    pt, pb, pl, pr = pad
    if not (pt or pb or pl or pr):
        return x
    n, c, h, w = x.shape
    key = (xp.__name__, x.shape, x.dtype.str, pad, float(value))
    out = _pad_cache.get(key)
    if out is None or (xp.__name__ != "numpy" and out.device != x.device):
        out = xp.empty((n, c, h + pt + pb, w + pl + pr), dtype=x.dtype)
        if pt:
            out[:, :, :pt] = value
        if pb:
            out[:, :, h + pt:] = value
        if pl:
            out[:, :, :, :pl] = value
        if pr:
            out[:, :, :, w + pl:] = value
        if out.nbytes <= _PAD_CACHE_MAX_BYTES:  # big ones are not worth pinning in memory
            if len(_pad_cache) >= 16:
                _pad_cache.pop(next(iter(_pad_cache)))
            _pad_cache[key] = out
    out[:, :, pt:pt + h, pl:pl + w] = x
    return out


def _out_size(h, k, s, d, p0, p1):
    return (h + p0 + p1 - d * (k - 1) - 1) // s + 1


def _chunk(xp, per_item_bytes: int, n: int, budget: int = _CHUNK_BYTES) -> int:
    """Images per im2col chunk: cache-sized on the CPU, large on the GPU (fewer launches)."""
    if xp.__name__ != "numpy":
        budget = _GPU_CHUNK_BYTES
    return max(1, min(n, budget // max(per_item_bytes, 1)))


_scratch_cache: dict = {}


def _scratch(xp, tag: str, size: int, dtype):
    """A flat scratch array of at least ``size`` elements, reused across calls (CPU): a
    training step asks for the same sizes every time, and a fresh buffer per layer per step
    costs its page faults again. Only valid until the next call with the same ``tag``."""
    if xp.__name__ != "numpy":
        return xp.empty(size, dtype=dtype)  # CuPy's memory pool already reuses
    if size * dtype.itemsize > _PAD_CACHE_MAX_BYTES:  # too big to pin in memory
        return xp.empty(size, dtype=dtype)
    key = (tag, dtype.str)
    buf = _scratch_cache.get(key)
    if buf is None or buf.size < size:
        buf = _scratch_cache[key] = xp.empty(size, dtype=dtype)
    return buf[:size]


def _cols_t(xp, win, i, m, tag="cols"):
    """im2col of images ``i:i+m`` laid out (C*kh*kw, m*oh*ow): one GEMM then covers the
    whole chunk (a per-image GEMM with a tiny oh*ow is all overhead; ResNet-18's weight
    gradient spent 2.5 of 3.3 s a step that way)."""
    _, c, kh, kw, oh, ow = win.shape
    ck, L = c * kh * kw, oh * ow
    cols = _scratch(xp, tag, ck * m * L, win.dtype).reshape(c, kh, kw, m, oh, ow)
    cols[...] = win[i:i + m].transpose(1, 2, 3, 0, 4, 5)
    return cols.reshape(ck, m * L)


def _g_t(xp, g, i, m, tag="gT"):
    """Output-gradient images ``i:i+m`` laid out (O, m*oh*ow), to pair with :func:`_cols_t`."""
    _, o, oh, ow = g.shape
    L = oh * ow
    gt = _scratch(xp, tag, o * m * L, g.dtype).reshape(o, m, L)
    gt[...] = g[i:i + m].reshape(m, o, L).transpose(1, 0, 2)
    return gt.reshape(o, m * L)


def _tiles(oh: int, ow: int, per_pos_bytes: int, budget: int):
    """Output tiles ``(r0, r1, c0, c1)`` whose im2col columns fit ``budget`` bytes: bands of
    whole rows, or runs of columns within one row when a single row does not fit."""
    cap = max(1, budget // max(per_pos_bytes, 1))
    if cap >= ow:
        rows = cap // ow
        return [(r0, min(oh, r0 + rows), 0, ow) for r0 in range(0, oh, rows)]
    return [(r, r + 1, c0, min(ow, c0 + cap)) for r in range(oh) for c0 in range(0, ow, cap)]


def _tile_cols(xp, win, i, r0, r1, c0, c1, G):
    """im2col of output tile ``[r0:r1, c0:c1]`` of image ``i``, laid out (G, C/G*kh*kw, T)."""
    t = win[i, :, :, :, r0:r1, c0:c1]
    cols = _scratch(xp, "tile", t.size, win.dtype).reshape(t.shape)
    cols[...] = t
    return cols.reshape(G, -1, (r1 - r0) * (c1 - c0))


def _conv2d_tiled(xp, win, wm, y4, budget):
    """Forward by output tiles: ``y4`` (N, G, O/G, oh, ow) gets ``wm`` (G, O/G, ck) @ cols."""
    n, G, og, oh, ow = y4.shape
    for i in range(n):
        for r0, r1, c0, c1 in _tiles(oh, ow, win.shape[1] * win.shape[2] * win.shape[3]
                                     * win.itemsize, budget):
            cols = _tile_cols(xp, win, i, r0, r1, c0, c1, G)
            yt = _scratch(xp, "ytile", G * og * cols.shape[2], y4.dtype).reshape(G, og, -1)
            xp.matmul(wm, cols, out=yt)
            y4[i, :, :, r0:r1, c0:c1] = yt.reshape(G, og, r1 - r0, c1 - c0)


def _conv2d_weight_tiled(xp, win, g4, dw, budget):
    """Weight gradient by output tiles: ``dw`` (G, O/G, ck) += g_tile @ cols_tile^T."""
    n, G, og, oh, ow = g4.shape
    for i in range(n):
        for r0, r1, c0, c1 in _tiles(oh, ow, win.shape[1] * win.shape[2] * win.shape[3]
                                     * win.itemsize, budget):
            cols = _tile_cols(xp, win, i, r0, r1, c0, c1, G)
            gt = g4[i, :, :, r0:r1, c0:c1].reshape(G, og, -1)
            dw += xp.matmul(gt, cols.swapaxes(1, 2))


def _conv2d_input_tiled(xp, wt, g4, dxp, kh, kw, stride, dil, budget):
    """col2im by output tiles: ``dxp`` (N, C, hp, wp) += scatter of ``wt`` (G, ck, O/G) @ g."""
    n, G, og, oh, ow = g4.shape
    c = dxp.shape[1]
    sh, sw = stride
    for i in range(n):
        dst = dxp[i]
        for r0, r1, c0, c1 in _tiles(oh, ow, c * kh * kw * dxp.itemsize, budget):
            rr, cc = r1 - r0, c1 - c0
            gt = g4[i, :, :, r0:r1, c0:c1].reshape(G, og, rr * cc)
            dc = _scratch(xp, "dtile", G * wt.shape[1] * rr * cc, dxp.dtype)
            dc = dc.reshape(G, wt.shape[1], rr * cc)
            xp.matmul(wt, gt, out=dc)
            dc5 = dc.reshape(c, kh, kw, rr, cc)
            for a in range(kh):
                ra = a * dil[0] + r0 * sh
                for bb in range(kw):
                    cb = bb * dil[1] + c0 * sw
                    dst[:, ra:ra + sh * (rr - 1) + 1:sh, cb:cb + sw * (cc - 1) + 1:sw] \
                        += dc5[:, a, bb]
