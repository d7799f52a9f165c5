"""Two namespaces with one vocabulary, so each derivative is written once.

On the plain path a derivative gets :class:`ArrayNS` (raw arrays of the device's module, no
graph); under ``create_graph=True`` it gets :data:`TENSOR_NS` (dyntorch ops, which record graph
and so give higher-order gradients). Names and arguments follow NumPy's (``axis``,
``keepdims``). Operators (``+ - * / ** < >``) work on both kinds of value directly.
"""
from __future__ import annotations

import math

import numpy as np

from .._dispatch import scalar_array

_INT_OF_SIZE = {2: np.int16, 4: np.int32, 8: np.int64}  # threshold_grad's masks
_NP_ZEROS: dict = {}  # NumPy dtype -> read-only 0-d zero of it


def np_zero(dtype):
    """A 0-d NumPy zero of ``dtype`` (cached, read-only). Beside a small array NumPy 2 takes
    ~0.4 us less per ufunc call with it than with a Python 0 (a weak scalar is resolved on
    every call), and the result is the same."""
    z = _NP_ZEROS.get(dtype)
    if z is None:
        z = _NP_ZEROS[dtype] = np.zeros((), dtype)
        z.flags.writeable = False
    return z


def _number(v, like):
    return v


def _number_np(v, like):
    # zeros stay numbers: the cache cannot tell 0.0 from -0.0
    return scalar_array(v, like.dtype) if v else v


def sign_array(xp, a):
    """-1, 0 or 1, and 0 for NaN as in torch (NumPy gives NaN)."""
    s = xp.sign(a)
    if s.dtype.kind == "f" and xp.isnan(s).any():
        s = xp.where(xp.isnan(s), xp.zeros((), s.dtype), s)
    return s


def sum_to_shape(xp_sum, x, shape):
    """Undo broadcasting: sum ``x`` down to ``shape``. ``xp_sum(x, axis, keepdims)``."""
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, s in enumerate(shape) if s == 1 and x.shape[i + lead] != 1)
    if axes:
        x = xp_sum(x, axes, True)
    if lead:
        x = x.reshape(shape) if hasattr(x, "reshape") else x
    elif x.shape != tuple(shape):
        x = x.reshape(shape)
    return x


class ArrayNS:
    """Array-level vocabulary over NumPy or CuPy."""

    def __init__(self, xp):
        self.xp = xp
        for name in ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "sinh", "cosh",
                     "abs", "where", "maximum", "minimum", "matmul", "einsum", "log1p",
                     "expm1", "square", "reciprocal", "floor", "logical_not", "isnan",
                     "concatenate", "stack", "flip", "roll", "tril", "triu", "diagonal",
                     "moveaxis", "swapaxes", "expand_dims", "squeeze", "outer", "cumsum",
                     "zeros_like", "ones_like", "arctan", "arcsin", "tensordot"):
            setattr(self, name, getattr(xp, name))
        # ``number(v, like)``: the Python number ``v`` as the operand beside array ``like``.
        # On NumPy a cached 0-d array of like's dtype (same result; NumPy 2 resolves a weak
        # Python scalar on every call: ``g * 0.5`` at 4x4 0.85 -> 0.45 us with the lookup;
        # bench_core.py chain's two `y * 0.5`). A plain function: no bound method per call.
        self.number = _number_np if xp is np else _number

    # --- shape -------------------------------------------------------------------------
    def sum(self, x, axis=None, keepdims=False):
        return self.xp.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, x, axis=None, keepdims=False):
        return self.xp.mean(x, axis=axis, keepdims=keepdims)

    def reshape(self, x, shape):
        return x.reshape(shape)

    def transpose(self, x, axes=None):
        return self.xp.transpose(x, axes)

    def broadcast_to(self, x, shape):
        out = self.xp.empty(shape, dtype=x.dtype)
        out[...] = x
        return out

    def sum_to(self, x, shape):
        return sum_to_shape(lambda a, ax, kd: a.sum(axis=ax, keepdims=kd), x, tuple(shape))

    def contiguous(self, x):
        return self.xp.ascontiguousarray(x)

    # --- creation ----------------------------------------------------------------------
    def zeros(self, shape, like):
        return self.xp.zeros(shape, dtype=like.dtype)

    def ones(self, shape, like):
        return self.xp.ones(shape, dtype=like.dtype)

    def astype(self, x, like):
        return x.astype(like.dtype, copy=False)

    def cast(self, x, np_dtype):
        return x.astype(np_dtype, copy=False)

    def asarray(self, value, like):
        return self.xp.asarray(value, dtype=like.dtype)

    # --- indexing ----------------------------------------------------------------------
    def getitem(self, x, idx):
        return x[idx]

    def index_add(self, shape, idx, g, basic=False):
        """zeros(shape) with g added at idx (repeated indices add up)."""
        out = self.xp.zeros(shape, dtype=g.dtype)
        if basic:
            out[idx] = g
        else:
            _add_at(self.xp, out, idx, g)
        return out

    def take_along_axis(self, x, idx, axis):
        return self.xp.take_along_axis(x, idx, axis=axis)

    def scatter_add(self, shape, idx, src, axis, like=None):
        """zeros(shape); out[... idx ...] += src along ``axis`` (torch.scatter_add)."""
        dtype = src.dtype if like is None else like.dtype
        out = self.xp.zeros(shape, dtype=dtype)
        _add_at(self.xp, out, _along_index(self.xp, idx, axis), src)
        return out

    def masked_fill(self, x, mask, value):
        return self.xp.where(mask, value, x).astype(x.dtype, copy=False)

    def sign(self, x):
        return sign_array(self.xp, x)

    # --- masked gradients: exact zeros, as torch's backward formulas ---------------------
    # torch writes the backward of relu, clamp, hardtanh, where ... as ``where(mask, grad,
    # 0)``: where the mask drops an entry the gradient is 0 even if it is NaN or inf there,
    # and a NaN input passes or drops its gradient by the comparison's own rule. ``g * mask``
    # would give NaN for ``inf * 0`` and ``nan * 0``: a NaN hunt must see torch's gradients.
    # On NumPy, ``where`` for small arrays; from 2048 entries an integer mask ANDed into the
    # bits of ``g``: ``where`` with a 0-d zero costs ~4.6 ns per entry against ~0.5
    # (bench_core.py chain's relu at 4x4: 1.4 us, 1.1 for the old inexact mask; bench_train's
    # 128x256: 15 us, as the old mask).
    def keep(self, g, mask):
        """``g`` where ``mask`` is true, else exact zeros (``where(mask, g, 0)``)."""
        return self._masked(g, mask, True)

    def zero_where(self, g, drop):
        """``g`` with exact zeros where ``drop`` is true (``where(drop, 0, g)``)."""
        return self._masked(g, drop, False)

    def _masked(self, g, mask, kept):
        xp = self.xp
        if xp is not np:
            z = xp.zeros((), g.dtype)
            return xp.where(mask, g, z) if kept else xp.where(mask, z, g)
        if g.size < 2048 or mask.shape != g.shape:
            z = np_zero(g.dtype)
            return np.where(mask, g, z) if kept else np.where(mask, z, g)
        m = mask.astype(_INT_OF_SIZE[g.dtype.itemsize])  # 1 where the mask holds
        if kept:
            np.negative(m, out=m)  # all ones where kept, 0 elsewhere
        else:
            m -= 1  # 0 where dropped, all ones elsewhere
        m &= g.view(m.dtype)
        return m.view(g.dtype)

    def threshold_grad(self, g, x, threshold=0.0):
        """``g`` with zeros where ``x <= threshold`` (torch's ``threshold_backward``, relu's
        with 0): NaN in ``x`` passes its gradient on."""
        if self.xp is np and not threshold:
            return self._masked(g, x <= np_zero(x.dtype), False)  # a 0-d zero: no weak scalar
        return self._masked(g, x <= threshold, False)

    # --- special functions ---------------------------------------------------------------
    def erf(self, x):
        return erf_array(self.xp, x)

    # --- added by the core op families (reduce) ---------------------------------------------
    def prod(self, x, axis=None, keepdims=False):
        return self.xp.prod(x, axis=axis, keepdims=keepdims)


def _add_at(xp, out, idx, g):
    if xp.__name__ == "numpy":
        xp.add.at(out, idx, g)
    else:  # CuPy
        import cupyx

        cupyx.scatter_add(out, idx, g)


def _along_index(xp, idx, axis):
    """Full index tuple for ``out[idx along axis]`` with the other axes as grids."""
    axis = axis % idx.ndim
    nd = idx.ndim
    # open grids, as np.indices(..., sparse=True) gives (CuPy's indices has no `sparse`)
    grids = [xp.arange(n).reshape((1,) * i + (n,) + (1,) * (nd - i - 1))
             for i, n in enumerate(idx.shape)]
    grids[axis] = idx
    return tuple(grids)


_erf_scalar = None

# erf(x) ~ x * P(x^2) / Q(x^2) on |x| <= 3.92 (beyond, erf rounds to +-1 in float32).
# Coefficients fitted here (weighted least squares on the relative error, reweighted toward
# minimax); in exact arithmetic the relative error is below 5.3e-8, under float32's half ulp.
# Evaluated in float32 the result is within 6 ulp of the correctly rounded value (mean 0.85
# ulp, 4e-7 absolute at most), roughly 3-5x faster than SciPy's float32 loop, which works in
# float64 internally.
_ERF_P = (1.128379109999648, 0.19985103472305518, 0.05056357830046776,
          0.0036985854802394327, 0.0001417870161367562, -1.957831240868152e-06,
          1.9930256972555682e-08)
_ERF_Q = (1.0, 0.5104450343036393, 0.11496802703733948, 0.014346970754531467,
          0.0009553357347651264)
_ERF_CLIP = 3.92
_ERF_BLOCK = 1 << 16  # elements per block: the three scratch arrays stay small (cache-sized)


def _erf_float32(xp, x):
    """erf on a float32 NumPy array in float32 (no float64 round trip); NaN passes through.

    Works in blocks with three reused scratch arrays, writing each block's result straight
    into the output: about 20 ufunc passes per value run from cache, and no full-size
    temporaries are allocated (those cost more than the arithmetic here).
    """
    dt, shape = x.dtype, x.shape
    f = dt.type
    flat = x.reshape(-1)
    size = flat.shape[0]
    out = xp.empty(size, dtype=dt)
    bs = max(1, min(size, _ERF_BLOCK))
    t_buf, n_buf, d_buf = (xp.empty(bs, dtype=dt) for _ in range(3))
    p = [f(c) for c in _ERF_P]
    q = [f(c) for c in _ERF_Q]
    lo, hi = f(-_ERF_CLIP), f(_ERF_CLIP)
    for i in range(0, size, bs):
        z = out[i:i + bs]
        k = z.shape[0]
        t, num, den = t_buf[:k], n_buf[:k], d_buf[:k]
        xp.clip(flat[i:i + bs], lo, hi, out=z)
        xp.multiply(z, z, out=t)
        for poly, acc in ((p, num), (q, den)):  # Horner in t, in place
            xp.multiply(t, poly[-1], out=acc)
            for c in poly[-2:0:-1]:
                acc += c
                acc *= t
            acc += poly[0]
        z *= num
        z /= den
        # rounding can overshoot 1 by an ulp near the clip point; erf never leaves [-1, 1]
        xp.clip(z, f(-1.0), f(1.0), out=z)
    return out.reshape(shape)


def erf_array(xp, x):
    """The error function on arrays: CuPy's on GPU; on NumPy a float32 rational approximation
    for float32 input (see ``_erf_float32``), else SciPy's (or Python's math.erf)."""
    if xp.__name__ != "numpy":
        import cupyx.scipy.special as sp

        return sp.erf(x)
    if x.dtype == xp.float32:
        return _erf_float32(xp, x)
    try:
        from scipy.special import erf as _sp_erf  # optional, precise and fast

        return _sp_erf(x).astype(x.dtype, copy=False)
    except ImportError:  # pragma: no cover - scipy is a dev dependency
        global _erf_scalar
        if _erf_scalar is None:
            _erf_scalar = xp.frompyfunc(math.erf, 1, 1)
        return _erf_scalar(x).astype(x.dtype)


class TensorNS:
    """The same vocabulary on dyntorch Tensors (records graph)."""

    xp = None

    def __getattr__(self, name):
        import dyntorch as dt

        simple = {"exp": dt.exp, "log": dt.log, "sqrt": dt.sqrt, "sin": dt.sin, "cos": dt.cos,
                  "tan": dt.tan, "tanh": dt.tanh, "sign": dt.sign, "abs": dt.abs,
                  "where": dt.where, "maximum": dt.maximum, "minimum": dt.minimum,
                  "matmul": dt.matmul, "log1p": dt.log1p, "expm1": dt.expm1,
                  "square": dt.square, "reciprocal": dt.reciprocal, "floor": dt.floor,
                  "logical_not": dt.logical_not, "isnan": dt.isnan, "erf": dt.erf,
                  "outer": dt.outer, "tril": dt.tril, "triu": dt.triu,
                  "sinh": dt.sinh, "cosh": dt.cosh, "zeros_like": dt.zeros_like,
                  "ones_like": dt.ones_like, "arctan": dt.atan, "arcsin": dt.asin}
        if name in simple:
            fn = simple[name]
            setattr(self, name, fn)
            return fn
        raise AttributeError(f"TensorNS has no '{name}'; add it to ops/_ns.py")

    number = staticmethod(_number)  # a Python number stays one beside a tensor

    def einsum(self, eq, *ops):
        import dyntorch as dt

        return dt.einsum(eq, *ops)

    def sum(self, x, axis=None, keepdims=False):
        return x.sum(dim=axis, keepdim=keepdims) if axis is not None else (
            x.sum() if not keepdims else x.sum(dim=tuple(range(x.ndim)), keepdim=True))

    def mean(self, x, axis=None, keepdims=False):
        return x.mean(dim=axis, keepdim=keepdims) if axis is not None else x.mean()

    def cumsum(self, x, axis):
        return x.cumsum(axis)

    def reshape(self, x, shape):
        return x.reshape(shape)

    def transpose(self, x, axes=None):
        return x.permute(*(axes if axes is not None else reversed(range(x.ndim))))

    def swapaxes(self, x, a, b):
        return x.transpose(a, b)

    def moveaxis(self, x, src, dst):
        return x.movedim(src, dst)

    def expand_dims(self, x, axis):
        if isinstance(axis, int):
            return x.unsqueeze(axis)
        for a in sorted(a % (x.ndim + len(axis)) for a in axis):
            x = x.unsqueeze(a)
        return x

    def squeeze(self, x, axis=None):
        return x.squeeze() if axis is None else x.squeeze(axis)

    def broadcast_to(self, x, shape):
        return x.expand(*shape).contiguous()

    def sum_to(self, x, shape):
        return sum_to_shape(lambda a, ax, kd: a.sum(dim=ax, keepdim=kd), x, tuple(shape))

    def contiguous(self, x):
        return x.contiguous()

    def concatenate(self, xs, axis=0):
        import dyntorch as dt

        return dt.cat(list(xs), dim=axis)

    def stack(self, xs, axis=0):
        import dyntorch as dt

        return dt.stack(list(xs), dim=axis)

    def flip(self, x, axis):
        return x.flip(axis if isinstance(axis, (tuple, list)) else (axis,))

    def roll(self, x, shift, axis):
        return x.roll(shift, axis)

    def diagonal(self, x, offset=0, axis1=0, axis2=1):
        return x.diagonal(offset, axis1, axis2)

    def zeros(self, shape, like):
        import dyntorch as dt

        return dt.zeros(shape, dtype=like.dtype, device=like.device)

    def ones(self, shape, like):
        import dyntorch as dt

        return dt.ones(shape, dtype=like.dtype, device=like.device)

    def astype(self, x, like):
        return x.to(like.dtype)

    def cast(self, x, np_dtype):
        from .. import _backend as B

        return x.to(B.from_np(np_dtype))

    def asarray(self, value, like):
        import dyntorch as dt

        return dt.as_tensor(value, dtype=like.dtype, device=like.device)

    def getitem(self, x, idx):
        from .index import getitem_arrays

        return getitem_arrays(x, idx)

    def index_add(self, shape, idx, g, basic=False):
        from .index import index_add_arrays

        return index_add_arrays(shape, idx, g, basic)

    def take_along_axis(self, x, idx, axis):
        from .index import take_along_arrays

        return take_along_arrays(x, idx, axis)

    def scatter_add(self, shape, idx, src, axis, like=None):
        from .index import scatter_add_arrays

        return scatter_add_arrays(shape, idx, src, axis)

    def masked_fill(self, x, mask, value):
        return x.masked_fill(mask, value)

    def keep(self, g, mask):
        import dyntorch as dt

        return dt.where(mask, g, dt.zeros((), dtype=g.dtype, device=g.device))

    def zero_where(self, g, drop):
        import dyntorch as dt

        return dt.where(drop, dt.zeros((), dtype=g.dtype, device=g.device), g)

    def threshold_grad(self, g, x, threshold=0.0):
        return self.zero_where(g, x <= threshold)

    def tensordot(self, a, b, axes):
        import dyntorch as dt

        return dt.tensordot(a, b, dims=axes)

    # --- added by the core op families (reduce) ---------------------------------------------
    def prod(self, x, axis=None, keepdims=False):
        from .reduce import _prod

        return _prod(x, axis=axis, keepdims=keepdims)


TENSOR_NS = TensorNS()
