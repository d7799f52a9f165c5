"""Fused recurrent cells and row gathers used by ``nn.RNN/LSTM/GRU`` and packed sequences.

A cell is one node per time step: the hidden matmul runs outside (``linear``), the cell does
the gate nonlinearities and the state update. The derivatives are written with ``ns`` so
``create_graph=True`` works.
"""
from __future__ import annotations

from .._dispatch import op


def _sig(ns_or_xp, x):
    # 0.5 * (tanh(x / 2) + 1): the logistic function without exp overflow
    return (ns_or_xp.tanh(x * 0.5) + 1.0) * 0.5


# ----------------------------------------------------------------------------- LSTM
@op(name="lstm_cell", backward_name="LstmCellBackward0")
def _lstm_cell(xp, xg, hh, hc):
    """``[h, c]`` of the next step from the input gates ``xg``, hidden gates ``hh`` and the
    previous ``[h, c]`` (gate order i, f, g, o like torch)."""
    H = hc.shape[-1] // 2
    gates = xg + hh
    i = _sig(xp, gates[..., :H])
    f = _sig(xp, gates[..., H:2 * H])
    g = xp.tanh(gates[..., 2 * H:3 * H])
    o = _sig(xp, gates[..., 3 * H:])
    out = xp.empty(hc.shape, dtype=gates.dtype)
    c = out[..., H:]
    xp.multiply(f, hc[..., H:], out=c)
    c += i * g
    xp.multiply(o, xp.tanh(c), out=out[..., :H])
    return out


@_lstm_cell.def_derivative
def _(ns, G, xg, hh, hc, out, needs=()):
    H = hc.shape[-1] // 2
    gates = xg + hh
    i = _sig(ns, ns.getitem(gates, (Ellipsis, slice(0, H))))
    f = _sig(ns, ns.getitem(gates, (Ellipsis, slice(H, 2 * H))))
    g = ns.tanh(ns.getitem(gates, (Ellipsis, slice(2 * H, 3 * H))))
    o = _sig(ns, ns.getitem(gates, (Ellipsis, slice(3 * H, None))))
    c_prev = ns.getitem(hc, (Ellipsis, slice(H, None)))
    c = ns.getitem(out, (Ellipsis, slice(H, None)))
    gh = ns.getitem(G, (Ellipsis, slice(0, H)))
    gc = ns.getitem(G, (Ellipsis, slice(H, None)))
    tc = ns.tanh(c)
    dc = gc + gh * o * (1.0 - tc * tc)
    dgates = ns.concatenate([dc * g * i * (1.0 - i), dc * c_prev * f * (1.0 - f),
                             dc * i * (1.0 - g * g), gh * tc * o * (1.0 - o)], -1)
    dhc = None
    if needs[2]:
        dhc = ns.concatenate([ns.zeros(c_prev.shape, like=c_prev), dc * f], -1)
    return (dgates if needs[0] else None), (dgates if needs[1] else None), dhc


# ----------------------------------------------------------------------------- GRU
@op(name="gru_cell", backward_name="GruCellBackward0")
def _gru_cell(xp, xg, hh, h):
    """Next hidden state: r, z = sig(xg + hh), n = tanh(xg_n + r * hh_n), h' = (1-z) n + z h."""
    H = h.shape[-1]
    r = _sig(xp, xg[..., :H] + hh[..., :H])
    z = _sig(xp, xg[..., H:2 * H] + hh[..., H:2 * H])
    n = xp.tanh(xg[..., 2 * H:] + r * hh[..., 2 * H:])
    return n + z * (h - n)


@_gru_cell.def_derivative
def _(ns, G, xg, hh, h, needs=()):
    H = h.shape[-1]
    s0, s1, s2 = (Ellipsis, slice(0, H)), (Ellipsis, slice(H, 2 * H)), \
        (Ellipsis, slice(2 * H, None))
    r = _sig(ns, ns.getitem(xg, s0) + ns.getitem(hh, s0))
    z = _sig(ns, ns.getitem(xg, s1) + ns.getitem(hh, s1))
    hn = ns.getitem(hh, s2)
    n = ns.tanh(ns.getitem(xg, s2) + r * hn)
    dn = G * (1.0 - z) * (1.0 - n * n)
    dr = dn * hn * r * (1.0 - r)
    dz = G * (h - n) * z * (1.0 - z)
    dxg = ns.concatenate([dr, dz, dn], -1) if needs[0] else None
    dhh = ns.concatenate([dr, dz, dn * r], -1) if needs[1] else None
    return dxg, dhh, (G * z if needs[2] else None)


# ----------------------------------------------------------------------------- row gathers
@op(name="take_rows", backward_name="IndexSelectBackward0")
def _take_rows(xp, x, idx, axis=0):
    """``x`` indexed by the integer array ``idx`` along ``axis`` (no repeated rows needed)."""
    return xp.take(x, idx, axis=axis)


@_take_rows.def_derivative
def _(ns, g, x, idx, axis=0):
    n = x.shape[axis]
    if ns.xp is not None:
        return _put_rows.forward(ns.xp, g, idx, n=n, axis=axis), None
    return _put_rows(g, idx, n=n, axis=axis), None


@op(name="put_rows", backward_name="IndexSelectBackwardBackward0")
def _put_rows(xp, g, idx, n=0, axis=0):
    """zeros with ``n`` rows along ``axis``, ``g`` written at rows ``idx`` (distinct rows)."""
    shape = list(g.shape)
    shape[axis] = n
    out = xp.zeros(shape, dtype=g.dtype)
    sl = (slice(None),) * axis + (idx,)
    out[sl] = g
    return out


@_put_rows.def_derivative
def _(ns, gg, _g, idx, n=0, axis=0):
    if ns.xp is not None:
        return _take_rows.forward(ns.xp, gg, idx, axis=axis), None
    return _take_rows(gg, idx, axis=axis), None
