"""Small, JSON-ready summaries of tensors: what travels to a view instead of the array.

Every statistic is computed on the tensor's own device with the device's array module; only
small results travel: first the finite count, min and max (3 numbers, which fix the histogram
range), then one packed float64 array with the other statistics, the histogram counts, a small
preview and a pooled heat map. Large temporaries are avoided (dot products, block pooling), so
a summary costs a few passes over the data.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _backend as B
from .._tensor import Tensor

__all__ = ["Summary", "summary", "describe_summary"]



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


def _pool(xp, a2, rows: int, cols: int, fin2=None):
    """Mean of ``|a2|`` over a rows x cols grid of blocks, by block sums (no index arrays)."""
    R, C = a2.shape
    rb = [(r * R) // rows for r in range(rows + 1)]
    cb = [(c * C) // cols for c in range(cols + 1)]
    mag = xp.abs(a2) if fin2 is None else xp.where(fin2, xp.abs(a2), 0.0)
    rsum = xp.stack([mag[rb[r]:rb[r + 1]].sum(axis=0) for r in range(rows)])
    tot = xp.stack([rsum[:, cb[c]:cb[c + 1]].sum(axis=1) for c in range(cols)], axis=1)
    if fin2 is None:
        cnt = xp.asarray([[(rb[r + 1] - rb[r]) * (cb[c + 1] - cb[c]) for c in range(cols)]
                          for r in range(rows)], dtype=xp.float64)
    else:
        f = fin2.astype(xp.float64)
        fs = xp.stack([f[rb[r]:rb[r + 1]].sum(axis=0) for r in range(rows)])
        cnt = xp.stack([fs[:, cb[c]:cb[c + 1]].sum(axis=1) for c in range(cols)], axis=1)
    return (tot / xp.maximum(cnt, 1.0)).ravel()


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
    # transfer 1: three numbers that decide the rest (and the histogram's range)
    nfin, mn, mx = B.to_numpy(xp.stack([xp.count_nonzero(fin).astype(f64), x.min(),
                                        x.max()])).tolist()
    nfin = int(nfin)
    nnan = ninf = 0
    xv = x
    if nfin < n:  # rare: statistics over the finite entries only
        nnan = int(xp.count_nonzero(xp.isnan(x)))
        ninf = n - nfin - nnan
        xv = x[fin]
        if nfin:
            mn, mx = B.to_numpy(xp.stack([xv.min(), xv.max()])).tolist()
    parts = []
    if nfin:
        mean = xv.sum() / nfin
        dev = xv - mean
        parts.append(xp.stack([mean, xp.sqrt(xp.dot(dev, dev) / nfin),
                               xp.sqrt(xp.dot(xv, xv)),
                               xp.count_nonzero(xv == 0).astype(f64) / n]))
        lo, hi = (mn, mx) if mx > mn else (mn - 0.5, mn + 0.5)
        counts, _ = xp.histogram(xv, bins=bins, range=(lo, hi))
        parts.append(counts.astype(f64))
    pv = _preview_view(arr, preview) if preview else arr.reshape(-1)[:0]
    pshape = pv.shape
    parts.append(pv.astype(f64).ravel())
    hshape = None
    if arr.ndim == 2 and heat:
        R, C = arr.shape
        hshape = (min(heat, R), min(heat, C))
        a2 = arr.astype(f64, copy=False)
        parts.append(_pool(xp, a2, *hshape, None if nfin == n else fin.reshape(R, C)))
    # transfer 2: everything else, packed
    host = B.to_numpy(xp.concatenate(parts)) if parts else np.zeros(0)
    k = 0
    if nfin:
        m_, sd, nr, zf = host[:4].tolist()
        res.update(mean=_num(m_), std=_num(sd), min=_num(mn), max=_num(mx), norm=_num(nr),
                   zeros=float(zf))
        k = 4
        edges = (lo + (hi - lo) * np.arange(bins + 1) / bins).tolist()
        res["hist"] = {"edges": edges, "counts": [int(c) for c in host[k:k + bins]]}
        k += bins
    else:
        res.update(mean=None, std=None, min=None, max=None, norm=0.0,
                   zeros=0.0, hist={"edges": [], "counts": []})
    res["nan"], res["inf"] = nnan, ninf
    npv = int(np.prod(pshape))
    if preview:
        res["preview"] = _to_list(host[k:k + npv], pshape if arr.ndim else ())
    else:
        res["preview"] = []
    k += npv
    if hshape is not None:
        vals = host[k:k + hshape[0] * hshape[1]]
        # heat is for drawing: 4 significant digits keep graph documents small
        res["heat"] = {"rows": hshape[0], "cols": hshape[1],
                       "values": [float(f"{v:.4g}") for v in vals.tolist()],
                       "min": float(vals.min()), "max": float(vals.max())}
    else:
        res["heat"] = None
    return res
