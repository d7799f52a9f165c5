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


# ----------------------------------------------------------------------------- LSTM sequence
@op(name="lstm_seq", backward_name="LstmBackward0", multi=True)
def _lstm_seq(xp, xg, w_hh, b_hh, hc0, mask=None, reverse=False):
    """One LSTM layer in one direction over a whole sequence, as one node.

    ``xg`` (T, B, 4H) is the input projection (bias ``b_ih`` included), ``hc0`` (B, 2H) the
    initial ``[h, c]``. Output 0 is ``[h_t, c_t]`` for every step (T, B, 2H) in time order;
    output 1 keeps the activated gates for the backward pass. ``mask`` (T, B, 1) freezes the
    state of finished sequences (packed input). Per step only ``h @ w_hh^T`` is a GEMM.
    """
    T, Bn, G = xg.shape
    H = G // 4
    Y = xp.empty((T, Bn, 2 * H), dtype=xg.dtype)
    acts = xp.empty((T, Bn, G), dtype=xg.dtype)
    wt = xp.ascontiguousarray(w_hh.T)
    hc = hc0
    gates = xp.empty((Bn, G), dtype=xg.dtype)
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        xp.matmul(hc[:, :H], wt, out=gates)
        gates += xg[t]
        if b_hh is not None:
            gates += b_hh
        a = acts[t]
        xp.tanh(gates * 0.5, out=a)  # sigmoid via tanh: no overflow
        a += 1.0
        a *= 0.5
        xp.tanh(gates[:, 2 * H:3 * H], out=a[:, 2 * H:3 * H])
        y = Y[t]
        c = y[:, H:]
        xp.multiply(a[:, H:2 * H], hc[:, H:], out=c)
        c += a[:, :H] * a[:, 2 * H:3 * H]
        xp.multiply(a[:, 3 * H:], xp.tanh(c), out=y[:, :H])
        if mask is not None:
            m = mask[t]
            y[...] = xp.where(m, y, hc)
        hc = y
    return Y, acts


@_lstm_seq.def_derivative
def _(ns, G, xg, w_hh, b_hh, hc0, mask, out, reverse=False, needs=()):
    Y = out[0]
    T = xg.shape[0]
    H = xg.shape[2] // 4
    graph = ns.xp is None
    acts_saved = None if graph else out[1]
    sl = ns.getitem
    E = Ellipsis
    order = list(range(T - 1, -1, -1) if reverse else range(T))
    prev_of = {}
    p = hc0
    for t in order:
        prev_of[t] = p
        p = sl(Y, t)
    dh = dc = None
    dgates = [None] * T
    for t in reversed(order):
        hc_prev = prev_of[t]
        h_prev, c_prev = sl(hc_prev, (E, slice(0, H))), sl(hc_prev, (E, slice(H, None)))
        if acts_saved is not None:
            a = acts_saved[t]
            i, f, g, o = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        else:  # create_graph: rebuild the gates as graph
            pre = sl(xg, t) + ns.matmul(h_prev, ns.transpose(w_hh))
            if b_hh is not None:
                pre = pre + b_hh
            i = _sig(ns, sl(pre, (E, slice(0, H))))
            f = _sig(ns, sl(pre, (E, slice(H, 2 * H))))
            g = ns.tanh(sl(pre, (E, slice(2 * H, 3 * H))))
            o = _sig(ns, sl(pre, (E, slice(3 * H, None))))
        Gt = sl(G, t)
        gh, gc = sl(Gt, (E, slice(0, H))), sl(Gt, (E, slice(H, None)))
        if dh is not None:
            gh = gh + dh
            gc = gc + dc
        c = f * c_prev + i * g
        tc = ns.tanh(c)
        dct = gc + gh * o * (1.0 - tc * tc)
        dg_ = ns.concatenate([dct * g * i * (1.0 - i), dct * c_prev * f * (1.0 - f),
                              dct * i * (1.0 - g * g), gh * tc * o * (1.0 - o)], -1)
        dh_new = ns.matmul(dg_, w_hh)
        dc_new = dct * f
        if mask is not None:
            m = mask[t] if not graph else _const(mask[t])
            dg_ = ns.where(m, dg_, 0.0 * dg_)
            dh_new = ns.where(m, dh_new, gh)
            dc_new = ns.where(m, dc_new, gc)
        dgates[t] = dg_
        dh, dc = dh_new, dc_new
    dG = ns.stack(dgates, 0)
    dxg = dG if needs[0] else None
    dw = db = None
    if needs[1]:
        hp = ns.stack([sl(prev_of[t], (E, slice(0, H))) for t in range(T)], 0)
        dw = ns.matmul(ns.transpose(ns.reshape(dG, (-1, 4 * H))), ns.reshape(hp, (-1, H)))
    if len(needs) > 2 and needs[2]:
        db = ns.sum(dG, (0, 1))
    dhc0 = ns.concatenate([dh, dc], -1) if len(needs) > 3 and needs[3] else None
    return dxg, dw, db, dhc0, None


def _const(arr):
    from .._tensor import _make

    return _make(arr)


# ----------------------------------------------------------------------------- GRU sequence
@op(name="gru_seq", backward_name="GruBackward0", multi=True)
def _gru_seq(xp, xg, w_hh, b_hh, h0, mask=None, reverse=False):
    """One GRU layer in one direction over a whole sequence, as one node.

    ``xg`` (T, B, 3H) is the input projection (``b_ih`` included), ``h0`` (B, H). Output 0 is
    ``h_t`` for every step (T, B, H) in time order; output 1 keeps ``[r, z, n, hh_n]`` for the
    backward pass. ``mask`` (T, B, 1) freezes finished sequences (packed input).
    """
    T, Bn, G3 = xg.shape
    H = G3 // 3
    Y = xp.empty((T, Bn, H), dtype=xg.dtype)
    acts = xp.empty((T, Bn, 4 * H), dtype=xg.dtype)
    wt = xp.ascontiguousarray(w_hh.T)
    h = h0
    hh = xp.empty((Bn, G3), dtype=xg.dtype)
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        xp.matmul(h, wt, out=hh)
        if b_hh is not None:
            hh += b_hh
        a = acts[t]
        x_t = xg[t]
        rz = a[:, :2 * H]
        xp.add(x_t[:, :2 * H], hh[:, :2 * H], out=rz)
        xp.tanh(rz * 0.5, out=rz)
        rz += 1.0
        rz *= 0.5
        a[:, 3 * H:] = hh[:, 2 * H:]
        n = a[:, 2 * H:3 * H]
        xp.multiply(a[:, :H], hh[:, 2 * H:], out=n)
        n += x_t[:, 2 * H:]
        xp.tanh(n, out=n)
        y = Y[t]
        xp.subtract(h, n, out=y)
        y *= a[:, H:2 * H]
        y += n
        if mask is not None:
            y[...] = xp.where(mask[t], y, h)
        h = y
    return Y, acts


@_gru_seq.def_derivative
def _(ns, G, xg, w_hh, b_hh, h0, mask, out, reverse=False, needs=()):
    Y = out[0]
    T = xg.shape[0]
    H = xg.shape[2] // 3
    graph = ns.xp is None
    sl = ns.getitem
    E = Ellipsis
    order = list(range(T - 1, -1, -1) if reverse else range(T))
    prev_of = {}
    p = h0
    for t in order:
        prev_of[t] = p
        p = sl(Y, t)
    dh = None
    dxs, dhs = [None] * T, [None] * T
    for t in reversed(order):
        h_prev = prev_of[t]
        if not graph:
            a = out[1][t]
            r, z, n, hn = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
        else:  # create_graph: rebuild the gates as graph
            hh = ns.matmul(h_prev, ns.transpose(w_hh))
            if b_hh is not None:
                hh = hh + b_hh
            x_t = sl(xg, t)
            r = _sig(ns, sl(x_t, (E, slice(0, H))) + sl(hh, (E, slice(0, H))))
            z = _sig(ns, sl(x_t, (E, slice(H, 2 * H))) + sl(hh, (E, slice(H, 2 * H))))
            hn = sl(hh, (E, slice(2 * H, None)))
            n = ns.tanh(sl(x_t, (E, slice(2 * H, None))) + r * hn)
        gh = sl(G, t) if dh is None else sl(G, t) + dh
        dn = gh * (1.0 - z) * (1.0 - n * n)
        dr = dn * hn * r * (1.0 - r)
        dz = gh * (h_prev - n) * z * (1.0 - z)
        dx_t = ns.concatenate([dr, dz, dn], -1)
        dhh_t = ns.concatenate([dr, dz, dn * r], -1)
        dh_new = gh * z + ns.matmul(dhh_t, w_hh)
        if mask is not None:
            m = mask[t] if not graph else _const(mask[t])
            dx_t = ns.where(m, dx_t, 0.0 * dx_t)
            dhh_t = ns.where(m, dhh_t, 0.0 * dhh_t)
            dh_new = ns.where(m, dh_new, gh)
        dxs[t], dhs[t] = dx_t, dhh_t
        dh = dh_new
    dX = ns.stack(dxs, 0) if needs[0] else None
    dw = db = None
    if needs[1] or (len(needs) > 2 and needs[2]):
        dHH = ns.stack(dhs, 0)
        if needs[1]:
            hp = ns.stack([prev_of[t] for t in range(T)], 0)
            dw = ns.matmul(ns.transpose(ns.reshape(dHH, (-1, 3 * H))), ns.reshape(hp, (-1, H)))
        if len(needs) > 2 and needs[2]:
            db = ns.sum(dHH, (0, 1))
    dh0 = dh if len(needs) > 3 and needs[3] else None
    return dX, dw, db, dh0, None
