"""Scaled dot-product attention as one fused op (one node in the graph).

``softmax(q k^T * scale + mask) [* dropout] @ v`` with its analytic derivative. The
attention weights ride along as a second, non-differentiable output so that the backward
pass and ``need_weights`` reuse them.
"""
from __future__ import annotations

from .._dispatch import op


@op(name="sdpa", backward_name="ScaledDotProductAttentionBackward0", aux=("weights",))
def _sdpa(xp, q, k, v, mask, drop=None, scale=1.0):
    s = xp.matmul(q, xp.swapaxes(k, -1, -2))
    s *= scale
    if mask is not None:
        s = s + mask
    m = s.max(axis=-1, keepdims=True)
    # rows masked everywhere give NaN like torch; avoid -inf - -inf warnings on the way
    with _errstate(xp):
        s -= m
        xp.exp(s, out=s)
        s /= s.sum(axis=-1, keepdims=True)
    p = s
    pd = p if drop is None else p * drop
    return xp.matmul(pd, v), p


class _errstate:
    __slots__ = ("xp", "old")

    def __init__(self, xp):
        self.xp = xp

    def __enter__(self):
        if self.xp.__name__ == "numpy":
            self.old = self.xp.seterr(invalid="ignore", over="ignore")

    def __exit__(self, *a):
        if self.xp.__name__ == "numpy":
            self.xp.seterr(**self.old)


@_sdpa.def_derivative
def _(ns, g, q, k, v, mask, weights, drop=None, scale=1.0, needs=()):
    if ns.xp is None:  # create_graph: rebuild the weights as graph so 2nd order is right
        p = _weights_graph(q, k, mask, scale)
    else:
        p = weights
    pd = p if drop is None else p * drop
    dv = ns.matmul(ns.swapaxes(pd, -1, -2), g) if needs[2] else None
    dp = ns.matmul(g, ns.swapaxes(v, -1, -2))
    if drop is not None:
        dp = dp * drop
    ds = p * (dp - ns.sum(dp * p, -1, True))
    dq = ns.matmul(ds, k) * scale if needs[0] else None
    dk = ns.matmul(ns.swapaxes(ds, -1, -2), q) * scale if needs[1] else None
    dm = ds if len(needs) > 3 and needs[3] else None
    return dq, dk, dv, dm, None


def _weights_graph(q, k, mask, scale):
    import dyntorch as dt

    s = dt.matmul(q, k.transpose(-1, -2)) * scale
    if mask is not None:
        s = s + mask
    shift = dt.as_tensor(s._data.max(axis=-1, keepdims=True))
    e = (s - shift).exp()
    return e / e.sum(-1, keepdim=True)
