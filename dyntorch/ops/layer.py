"""Layer ops used by ``nn``: linear, bilinear, embedding, dropout. Each is one fused op, so a
layer is one node in the graph (and one step in the debugger)."""
from __future__ import annotations

from .. import _backend as B
from .._dispatch import op
from .._tensor import Tensor, _make, bump_version
from .linalg import fold_matmul


def _not_tensor(name: str, *named) -> TypeError:
    """torch's TypeError for the first argument that is not a Tensor."""
    for pos, (arg, val) in enumerate(named, 1):
        if not isinstance(val, Tensor):
            kind = type(val).__name__
            if type(val).__module__ == "numpy":
                kind = "numpy." + kind
            return TypeError(f"{name}(): argument '{arg}' (position {pos}) must be Tensor, not "
                             f"{kind}; convert it with dyntorch.from_numpy / dyntorch.tensor")
    return TypeError(f"{name}(): expected Tensor arguments")


def _raw(a):
    return a._data if isinstance(a, Tensor) else a


# ----------------------------------------------------------------------------- linear
@op(name="linear", backward_name="LinearBackward0")
def _linear(xp, x, w, b):
    y = fold_matmul(x, w.T)
    if b is not None:
        y += b
    return y


@_linear.def_derivative
def _(ns, g, x, w, _b, needs):
    gx = fold_matmul(g, w) if needs[0] else None
    gw = gb = None
    if needs[1]:
        g2 = ns.reshape(g, (-1, w.shape[0]))
        gw = ns.matmul(ns.transpose(g2), ns.reshape(x, (-1, w.shape[1])))
    if needs[2]:
        gb = _col_sum(ns, g, w.shape[0]) if g.ndim > 1 else g
    return gx, gw, gb


def _col_sum(ns, g, n: int):
    """Sum of ``g`` over all but its last dim. On the plain path a float32/64 sum is one BLAS
    matrix-vector product: ab.py's linear case, (1024, 256) float32: 17 us against 44 us for
    ``sum(axis=0)``."""
    xp = ns.xp
    if xp is not None and g.dtype.char in "fd":
        g2 = g.reshape(-1, n)
        return xp.ones(g2.shape[0], dtype=g.dtype) @ g2
    return ns.sum(g, tuple(range(g.ndim - 1)))


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = input @ weight.T + bias (``torch.nn.functional.linear``)."""
    try:
        xd, wd = input._data, weight._data
    except AttributeError:
        raise _not_tensor("linear", ("input", input), ("weight", weight)) from None
    if wd.ndim == 2 and xd.ndim and xd.shape[-1] == wd.shape[1] and xd.dtype == wd.dtype:
        return _linear(input, weight, bias)  # the common case, checked cheaply
    if xd.ndim == 0 or wd.ndim not in (1, 2) or xd.shape[-1] != wd.shape[-1]:
        raise RuntimeError(
            f"linear(): mat1 and mat2 shapes cannot be multiplied (input {list(xd.shape)}, "
            f"weight {list(wd.shape)}: the input's last dim must equal weight.shape[1])")
    if xd.dtype != wd.dtype:
        raise RuntimeError(f"linear(): expected both input and weight to have the same dtype, "
                           f"but got {input.dtype} and {weight.dtype}")
    # 1-D weight: y = input @ weight (+ bias)
    y = _linear(input, weight.reshape(1, -1), None).reshape(tuple(xd.shape[:-1]))
    return y + bias if bias is not None else y


# ----------------------------------------------------------------------------- bilinear
@op(name="bilinear", backward_name="BilinearBackward0")
def _bilinear(xp, x1, x2, w, b):
    y = xp.einsum("...i,oij,...j->...o", x1, w, x2)
    if b is not None:
        y += b
    return y


@_bilinear.def_derivative
def _(ns, g, x1, x2, w, _b, needs):
    g1 = ns.einsum("...o,oij,...j->...i", g, w, x2) if needs[0] else None
    g2 = ns.einsum("...o,oij,...i->...j", g, w, x1) if needs[1] else None
    gw = None
    if needs[2]:
        gf = ns.reshape(g, (-1, w.shape[0]))
        a = ns.reshape(x1, (-1, w.shape[1]))
        c = ns.reshape(x2, (-1, w.shape[2]))
        gw = ns.einsum("no,ni,nj->oij", gf, a, c)
    gb = ns.sum(g, tuple(range(g.ndim - 1))) if needs[3] and g.ndim > 1 else (
        g if needs[3] else None)
    return g1, g2, gw, gb


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor,
             bias: Tensor | None = None) -> Tensor:
    """y = x1^T A x2 + b for each output feature (``torch.nn.functional.bilinear``)."""
    if weight.ndim != 3 or input1.shape[-1] != weight.shape[1] or \
            input2.shape[-1] != weight.shape[2]:
        raise RuntimeError(f"bilinear(): shapes do not match: input1 {list(input1.shape)}, "
                           f"input2 {list(input2.shape)}, weight {list(weight.shape)} "
                           "(weight must be (out, in1, in2))")
    return _bilinear(input1, input2, weight, bias)


# ----------------------------------------------------------------------------- embedding
@op(name="embedding", backward_name="EmbeddingBackward0")
def _embedding(xp, w, idx, padding_idx=None, shape=None):
    return w[idx]


@_embedding.def_derivative
def _(ns, g, _w, idx, padding_idx=None, shape=None):
    i = _raw(idx)
    if padding_idx is not None:
        keep = i != padding_idx
        g = g * (_make(keep[..., None]) if ns.xp is None else keep[..., None])
    return ns.index_add(shape, i, g), None


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float = 2.0,
              scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` at the integer indices ``input``; no gradient flows to the
    ``padding_idx`` row."""
    if not isinstance(input, Tensor) or not isinstance(weight, Tensor):
        raise _not_tensor("embedding", ("input", input), ("weight", weight))
    if weight._data.ndim != 2:
        raise RuntimeError(f"embedding(): 'weight' must be 2-D, got shape {list(weight.shape)}")
    idx = input._data
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"embedding(): Expected tensor for argument #1 'indices' to have one "
                           f"of the following scalar types: Long, Int; but got {input.dtype} "
                           "instead (call .long() on the indices)")
    n = weight.shape[0]
    xp = B.xp_of(idx)
    if idx.size and (bool(xp.any(idx >= n)) or bool(xp.any(idx < 0))):
        raise IndexError(f"embedding(): index out of range in self (indices must be in "
                         f"[0, {n}) for a weight of {n} rows)")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += n
    if max_norm is not None:
        _renorm_rows(weight, idx, max_norm, norm_type)
    if scale_grad_by_freq:
        return _embedding_freq(weight, input, padding_idx=padding_idx, shape=weight._data.shape)
    return _embedding(weight, input, padding_idx=padding_idx, shape=weight._data.shape)


@op(name="embedding_freq", backward_name="EmbeddingBackward0")
def _embedding_freq(xp, w, idx, padding_idx=None, shape=None):
    return w[idx]


@_embedding_freq.def_derivative
def _(ns, g, _w, idx, padding_idx=None, shape=None):
    i = _raw(idx)
    xp = B.xp_of(i)
    counts = xp.bincount(i.reshape(-1) % shape[0], minlength=shape[0])
    scale = (1.0 / counts[i])[..., None]
    if padding_idx is not None:
        scale = scale * (i != padding_idx)[..., None]
    scale = scale.astype(_raw(g).dtype)
    g = g * (_make(scale) if ns.xp is None else scale)
    return ns.index_add(shape, i, g), None


def _renorm_rows(weight: Tensor, idx, max_norm: float, norm_type: float) -> None:
    xp = B.xp_of(idx)
    w = weight._data
    rows = xp.unique(idx.reshape(-1))
    sub = w[rows]
    norms = (xp.abs(sub) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
    w[rows] = sub * scale[:, None].astype(w.dtype)
    bump_version(weight)


# ----------------------------------------------------------------------------- dropout
@op(name="dropout", backward_name="NativeDropoutBackward0")
def _dropout(xp, x, mask):
    return x * mask


@_dropout.def_derivative
def _(ns, g, _x, mask):
    return g * mask, None


def dropout_mask(x: Tensor, p: float, shape=None):
    """A float array of 0 and 1/(1-p) (keep probability 1-p) on x's device."""
    d = x._data
    from .creation import _rng

    r = _rng(None, B.device_of(d)).random(d.shape if shape is None else shape)
    keep = r >= p
    # asarray: a 0-d draw comes back as a NumPy scalar, which is no tensor storage
    return B.xp_of(d).asarray((keep * (1.0 / (1.0 - p))).astype(d.dtype, copy=False))


def dropout(input: Tensor, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p) (training)."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return _dropout(input, _make(dropout_mask(input, p)))


def channel_dropout(input: Tensor, p: float, training: bool, spatial: int) -> Tensor:
    """Dropout of whole channels: the mask is shared over the last ``spatial`` dims."""
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    shape = tuple(input.shape[:input.ndim - spatial]) + (1,) * spatial
    if p == 1.0:
        return input * 0.0
    return _dropout(input, _make(dropout_mask(input, p, shape)))

