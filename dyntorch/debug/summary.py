"""Small, JSON-ready summaries of tensors: what travels to a view instead of the array.

Every statistic is computed on the tensor's own device with the device's array module; the
results (a few scalars, the histogram counts, a small preview and a pooled heat map) are packed
into ONE small float64 array that is transferred to the host once.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _backend as B
from .._tensor import Tensor

__all__ = ["Summary", "summary", "describe_summary"]

# Order of the scalars packed at the head of the transferred array.
_SCALARS = ("finite", "nan", "inf", "mean", "std", "min", "max", "norm", "zeros", "lo", "width")


class Summary(dict):
    """A tensor summary: a plain ``dict`` (JSON-ready) with a readable ``repr``.

    Keys: ``shape``, ``dtype``, ``device``, ``count``, ``mean``, ``std`` (population, ddof=0),
    ``min``, ``max``, ``norm`` (L2), ``nan``, ``inf`` (counts), ``zeros`` (fraction),
    ``hist`` (``edges``, ``counts``), ``preview`` (nested lists, at most 8x8) and ``heat``
    (pooled mean ``|x|`` of a 2-D tensor, else None). Statistics are taken over the finite
    entries; they are None when there are none. Non-finite preview values are None.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Summary({describe_summary(self)})"

    def _repr_html_(self) -> str:  # a compact view in notebooks
        import html

        return f"<code>{html.escape(describe_summary(self))}</code>"


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def describe_summary(s: dict) -> str:
    """One line of text for a summary: shape, dtype, range, mean, norm, non-finite counts."""
    head = f"Tensor{s['shape']} {s['dtype']} on {s['device']}"
    if not s["count"]:
        return head + " (empty)"
    body = (f"min={_fmt(s['min'])} max={_fmt(s['max'])} mean={_fmt(s['mean'])} "
            f"std={_fmt(s['std'])} norm={_fmt(s['norm'])}")
    bad = f" nan={s['nan']} inf={s['inf']}" if (s["nan"] or s["inf"]) else ""
    return f"{head} {body}{bad}"


def _preview_view(arr, n: int):
    nd = arr.ndim
    if nd == 0:
        return arr.reshape(1)
    if nd == 1:
        return arr[:n]
    return arr[(0,) * (nd - 2)][:n, :n]


def _to_list(p: np.ndarray, shape) -> list | float | None:
    vals = [v if math.isfinite(v) else None for v in p.tolist()]
    if len(shape) == 0:
        return vals[0]
    if len(shape) == 1:
        return vals
    r, c = shape
    return [vals[i * c:(i + 1) * c] for i in range(r)]


def summary(tensor, *, bins: int = 20, preview: int = 8, heat: int = 16) -> Summary:
    """Summarise ``tensor`` on its device, transferring only the small result.

    Parameters
    ----------
    tensor : Tensor or array
        What to summarise (a NumPy or CuPy array is accepted too).
    bins : int
        Number of fixed-width histogram bins between the finite min and max.
    preview : int
        Side of the preview block (the leading ``preview x preview`` values of the last two
        dimensions, at index 0 of any leading ones).
    heat : int
        Side of the pooled heat map of a 2-D tensor (mean absolute value per cell).

    Returns
    -------
    Summary
        A dict as documented in ``docs/graph-schema.md``.
    """
    arr = tensor._data if isinstance(tensor, Tensor) else tensor
    xp = B.xp_of(arr)
    shape = list(arr.shape)
    res = Summary(shape=shape, dtype=np.dtype(arr.dtype).name, device=str(B.device_of(arr)),
                  count=int(arr.size))
    if arr.size == 0:
        res.update(mean=None, std=None, min=None, max=None, norm=None, nan=0, inf=0, zeros=0.0,
                   hist={"edges": [], "counts": []}, preview=[], heat=None)
        return res
    f64 = xp.float64
    x = arr.astype(f64, copy=False).ravel()
    n = x.size
    fin = xp.isfinite(x)
    nfin = fin.sum()
    nnan = xp.isnan(x).sum()
    ninf = n - nfin - nnan
    xf = xp.where(fin, x, 0.0)
    denom = xp.maximum(nfin, 1)
    mean = xf.sum() / denom
    dev = xp.where(fin, x - mean, 0.0)
    std = xp.sqrt((dev * dev).sum() / denom)
    mn = xp.where(fin, x, xp.inf).min()
    mx = xp.where(fin, x, -xp.inf).max()
    norm = xp.sqrt((xf * xf).sum())
    zeros = (x == 0).sum() / n
    # Fixed bins over [min, max] of the finite values; a constant tensor gets [v-0.5, v+0.5].
    flat = mx > mn
    lo = xp.where(flat, mn, mn - 0.5)
    lo = xp.where(nfin > 0, lo, 0.0)
    width = xp.where(flat, mx - mn, 1.0)
    idx = xp.floor((xf - lo) / width * bins)
    idx = xp.clip(idx, 0, bins - 1).astype(xp.int64)
    idx = xp.where(fin, idx, bins)  # non-finite values go to a dropped overflow bin
    counts = xp.bincount(idx, minlength=bins + 1)[:bins]
    pv = _preview_view(arr, preview)
    pshape = pv.shape
    parts = [xp.stack([xp.asarray(v, dtype=f64) for v in
                       (nfin, nnan, ninf, mean, std, mn, mx, norm, zeros, lo, width)]),
             counts.astype(f64), pv.astype(f64).ravel()]
    hshape = None
    if arr.ndim == 2 and heat:
        R, C = arr.shape
        rows, cols = min(heat, R), min(heat, C)
        ri = (xp.arange(R) * rows) // R
        ci = (xp.arange(C) * cols) // C
        cell = (ri[:, None] * cols + ci[None, :]).ravel()
        tot = xp.bincount(cell, weights=xp.abs(xf), minlength=rows * cols)
        cnt = xp.bincount(cell, weights=fin.astype(f64), minlength=rows * cols)
        parts.append(tot / xp.maximum(cnt, 1.0))
        hshape = (rows, cols)
    host = B.to_numpy(xp.concatenate(parts))  # the one transfer
    sc = dict(zip(_SCALARS, host[:len(_SCALARS)].tolist()))
    k = len(_SCALARS)
    cnts = host[k:k + bins]
    k += bins
    npv = int(np.prod(pshape))
    pvals = host[k:k + npv]
    k += npv
    has = sc["finite"] > 0
    res.update(
        mean=_num(sc["mean"]) if has else None,
        std=_num(sc["std"]) if has else None,
        min=_num(sc["min"]) if has else None,
        max=_num(sc["max"]) if has else None,
        norm=_num(sc["norm"]),
        nan=int(sc["nan"]), inf=int(sc["inf"]), zeros=float(sc["zeros"]),
    )
    if has:
        edges = (sc["lo"] + sc["width"] * np.arange(bins + 1) / bins).tolist()
        res["hist"] = {"edges": edges, "counts": [int(c) for c in cnts]}
    else:
        res["hist"] = {"edges": [], "counts": []}
    res["preview"] = _to_list(pvals, pshape if arr.ndim else ())
    if hshape is not None:
        vals = host[k:k + hshape[0] * hshape[1]]
        res["heat"] = {"rows": hshape[0], "cols": hshape[1], "values": vals.tolist(),
                       "min": float(vals.min()), "max": float(vals.max())}
    else:
        res["heat"] = None
    return res
