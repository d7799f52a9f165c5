"""Attention: ``scaled_dot_product_attention`` and the multi-head attention forward."""
from __future__ import annotations

import math

from .. import _backend as B
from .._tensor import Tensor, _make
from ..ops.attention import _sdpa


def _additive_mask(mask, like: Tensor, L: int, S: int, is_causal: bool):
    """Turn torch's masks (bool: True = take part, float: added) into one additive mask."""
    xp = B.xp_of(like._data)
    dt = like._data.dtype
    out = None
    if is_causal:
        out = xp.where(xp.tril(xp.ones((L, S), dtype=bool)), 0.0, -xp.inf).astype(dt)
    if mask is not None:
        m = mask._data if isinstance(mask, Tensor) else xp.asarray(mask)
        if m.dtype == bool:
            m = xp.where(m, 0.0, -xp.inf).astype(dt)
            mask = _make(m)
        elif m.dtype != dt:
            mask = mask.to(like.dtype) if isinstance(mask, Tensor) else _make(m.astype(dt))
        if out is not None:
            mask = mask + _make(out)
        return mask
    return None if out is None else _make(out)


def _sdpa_with_weights(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False,
                       scale=None):
    if is_causal and attn_mask is not None:
        raise RuntimeError("scaled_dot_product_attention(): _is_causal and attn_mask cannot be "
                           "set at the same time; fold the causal mask into attn_mask")
    L, S = query.shape[-2], key.shape[-2]
    if key.shape[-1] != query.shape[-1]:
        raise RuntimeError(f"scaled_dot_product_attention(): query and key embedding sizes "
                           f"differ: {list(query.shape)} vs {list(key.shape)}")
    sc = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    mask = _additive_mask(attn_mask, query, L, S, is_causal)
    drop = None
    if dropout_p > 0.0:
        from ..ops.creation import rand

        shape = tuple(query.shape[:-1]) + (S,)
        keep = rand(*shape, dtype=query.dtype, device=query.device)._data >= dropout_p
        drop = keep.astype(query._data.dtype) / (1.0 - dropout_p)
    out, p = _sdpa(query, key, value, mask, drop=drop, scale=sc)
    if drop is not None:  # torch reports the weights after dropout
        p = _make(p._data * drop)
    return out, p


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False, scale=None,
                                 enable_gqa: bool = False) -> Tensor:
    """``softmax(q k^T / sqrt(E) + mask) @ v`` (``F.scaled_dot_product_attention``).

    Parameters
    ----------
    query, key, value : Tensor
        (..., L, E), (..., S, E), (..., S, Ev).
    attn_mask : Tensor, optional
        Bool (True = may attend) or float (added to the scores), broadcastable to (..., L, S).
    dropout_p : float
        Dropout on the attention weights (applied whenever > 0, like torch).
    is_causal : bool
        Apply a lower-triangular mask.
    scale : float, optional
        Defaults to ``1 / sqrt(E)``.
    """
    return _sdpa_with_weights(query, key, value, attn_mask, dropout_p, is_causal, scale)[0]


def _linear(x, w, b):
    from . import functional as F

    return F.linear(x, w, b)


def multi_head_attention_forward(query, key, value, embed_dim_to_check: int, num_heads: int,
                                 in_proj_weight, in_proj_bias, bias_k, bias_v,
                                 add_zero_attn: bool, dropout_p: float, out_proj_weight,
                                 out_proj_bias, training: bool = True, key_padding_mask=None,
                                 need_weights: bool = True, attn_mask=None,
                                 use_separate_proj_weight: bool = False, q_proj_weight=None,
                                 k_proj_weight=None, v_proj_weight=None, static_k=None,
                                 static_v=None, average_attn_weights: bool = True,
                                 is_causal: bool = False):
    """Multi-head attention on (L, N, E) inputs (``F.multi_head_attention_forward``).

    Returns ``(output (L, N, E), weights (N, L, S) averaged or (N, H, L, S), or None)``.
    """
    unbatched = query.ndim == 2
    if unbatched:
        query, key, value = (t.unsqueeze(1) for t in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    L, N, E = query.shape
    S = key.shape[0]
    if E != embed_dim_to_check:
        raise RuntimeError(f"multi_head_attention_forward(): was expecting embedding dimension "
                           f"of {embed_dim_to_check}, but got {E}")
    H = num_heads
    hd = E // H
    if use_separate_proj_weight:
        bq = bk = bv = None
        if in_proj_bias is not None:
            bq, bk, bv = in_proj_bias[:E], in_proj_bias[E:2 * E], in_proj_bias[2 * E:]
        q = _linear(query, q_proj_weight, bq)
        k = _linear(key, k_proj_weight, bk)
        v = _linear(value, v_proj_weight, bv)
    elif query is key and key is value:
        qkv = _linear(query, in_proj_weight, in_proj_bias)
        q, k, v = qkv[..., :E], qkv[..., E:2 * E], qkv[..., 2 * E:]
    else:
        w, b = in_proj_weight, in_proj_bias
        q = _linear(query, w[:E], None if b is None else b[:E])
        k = _linear(key, w[E:2 * E], None if b is None else b[E:2 * E])
        v = _linear(value, w[2 * E:], None if b is None else b[2 * E:])
    if bias_k is not None and bias_v is not None:
        import dyntorch as dt

        k = dt.cat([k, bias_k.reshape(1, 1, E).expand(1, N, E)], 0)
        v = dt.cat([v, bias_v.reshape(1, 1, E).expand(1, N, E)], 0)
        if attn_mask is not None:
            attn_mask = _pad_last(attn_mask)
        if key_padding_mask is not None:
            key_padding_mask = _pad_last(key_padding_mask)
        S += 1
    # (L, N, E) -> (N, H, L, hd)
    q = q.reshape(L, N * H, hd).transpose(0, 1).reshape(N, H, L, hd)
    k = k.reshape(S, N * H, hd).transpose(0, 1).reshape(N, H, S, hd)
    v = v.reshape(S, N * H, hd).transpose(0, 1).reshape(N, H, S, hd)
    if add_zero_attn:
        import dyntorch as dt

        k = dt.cat([k, dt.zeros(N, H, 1, hd, dtype=k.dtype, device=k.device)], 2)
        v = dt.cat([v, dt.zeros(N, H, 1, hd, dtype=v.dtype, device=v.device)], 2)
        if attn_mask is not None:
            attn_mask = _pad_last(attn_mask)
        if key_padding_mask is not None:
            key_padding_mask = _pad_last(key_padding_mask)
        S += 1
    mask = _merge_masks(attn_mask, key_padding_mask, q, N, H, L, S,
                        is_causal and attn_mask is None)
    out, p = _sdpa_with_weights(q, k, v, mask, dropout_p if training else 0.0, False, None)
    out = out.permute(2, 0, 1, 3).reshape(L, N, E)
    out = _linear(out, out_proj_weight, out_proj_bias)
    weights = None
    if need_weights:
        # the weights are reported, not differentiated (a non-differentiable output here)
        weights = p.mean(1) if average_attn_weights else p
        if unbatched:
            weights = weights.squeeze(0)
    if unbatched:
        out = out.squeeze(1)
    return out, weights


def _pad_last(m):
    import dyntorch as dt

    z = dt.zeros(*m.shape[:-1], 1, dtype=m.dtype, device=m.device)
    return dt.cat([m, z], -1)


def _merge_masks(attn_mask, key_padding_mask, like, N, H, L, S, causal):
    """One additive (N|1, H|1, L, S) mask from attn_mask (L,S)/(N*H,L,S) and key padding (N,S)."""
    xp = B.xp_of(like._data)
    dt = like._data.dtype
    total = None
    if causal:
        total = xp.where(xp.tril(xp.ones((L, S), dtype=bool)), 0.0, -xp.inf).astype(dt)
        total = _make(total)
    if attn_mask is not None:
        m = attn_mask
        md = m._data
        if md.dtype == bool:
            m = _make(xp.where(md, -xp.inf, 0.0).astype(dt))  # MHA: True = masked out
        elif md.dtype != dt:
            m = m.to(like.dtype)
        if m.ndim == 3:
            m = m.reshape(N, H, L, S)
        total = m if total is None else total + m
    if key_padding_mask is not None:
        kd = key_padding_mask._data
        if kd.dtype == bool:
            km = _make(xp.where(kd, -xp.inf, 0.0).astype(dt))
        else:
            km = key_padding_mask.to(like.dtype)
        km = km.reshape(N, 1, 1, S)
        total = km if total is None else total + km
    return total
