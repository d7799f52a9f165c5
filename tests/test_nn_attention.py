"""scaled_dot_product_attention, MultiheadAttention and transformer layers vs torch 2.13."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch as dt
import dyntorch.nn as nn
import dyntorch.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _close(a, b, tol=1e-9):
    a = a.detach().cpu().numpy() if hasattr(a, "detach") else a
    np.testing.assert_allclose(a, b.detach().numpy(), rtol=tol, atol=tol)


def _masks(rng, L, S):
    bool_mask = rng.random((L, S)) > 0.3
    bool_mask[:, 0] = True  # every row attends somewhere
    return {
        "none": (None, None),
        "bool": (dt.tensor(bool_mask), torch.tensor(bool_mask)),
        "float": ((lambda m: (dt.tensor(m), torch.tensor(m)))(rng.standard_normal((L, S)))),
    }


@pytest.mark.parametrize("mask", ["none", "bool", "float"])
@pytest.mark.parametrize("causal,scale", [(False, None), (True, None), (False, 0.3)])
def test_sdpa_matches_torch(mask, causal, scale, rng, device):
    if causal and mask != "none":
        pytest.skip("torch forbids attn_mask together with is_causal")
    L, S, E = 4, 4, 3
    q, k, v = (rng.standard_normal((2, 2, n, E)) for n in (L, S, S))
    m, tm = _masks(rng, L, S)[mask]
    ours = [dt.tensor(a, requires_grad=True, device=device) for a in (q, k, v)]
    ref = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    if m is not None:
        m = m.to(device)
    y = F.scaled_dot_product_attention(*ours, attn_mask=m, is_causal=causal, scale=scale)
    ty = TF.scaled_dot_product_attention(*ref, attn_mask=tm, is_causal=causal, scale=scale)
    _close(y, ty)
    g = rng.standard_normal(tuple(ty.shape))
    y.backward(dt.tensor(g, device=device))
    ty.backward(torch.tensor(g))
    for a, b in zip(ours, ref):
        _close(a.grad, b.grad)


def test_sdpa_float_mask_gradient_and_second_order(rng):
    q, k, v = (rng.standard_normal((2, 3, 2)) for _ in range(3))
    m = rng.standard_normal((3, 3))
    ours = [dt.tensor(a, requires_grad=True) for a in (q, k, v, m)]
    ref = [torch.tensor(a, requires_grad=True) for a in (q, k, v, m)]
    res = []
    for (a, b, c, d), f, lib in ((ours, F.scaled_dot_product_attention, dt),
                                 (ref, TF.scaled_dot_product_attention, torch)):
        y = f(a, b, c, attn_mask=d)
        gs = lib.autograd.grad((y * y).sum(), (a, b, c, d), create_graph=True)
        s = sum((g * g).sum() for g in gs)
        res.append(gs + lib.autograd.grad(s, (a, b, c, d)))
    for a, b in zip(*res):
        _close(a, b, 1e-8)


def test_sdpa_dropout_keeps_expectation(rng):
    q = dt.tensor(rng.standard_normal((1, 8, 4)))
    v = dt.ones(1, 8, 4)
    dt.manual_seed(0)
    y = F.scaled_dot_product_attention(q, q, v, dropout_p=0.5)
    vals = y.numpy()
    assert not np.allclose(vals, 1.0)  # some weights were dropped
    assert abs(vals.mean() - 1.0) < 0.35  # rescaled by 1 / (1 - p)


def _twin(ours, ref):
    ours.double()
    ours.load_state_dict({k: dt.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
    return ours, ref.double()


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kw", [{}, {"bias": False}, {"kdim": 5, "vdim": 6},
                                {"add_bias_kv": True}, {"add_zero_attn": True}])
def test_multihead_attention_matches_torch(batch_first, kw, rng):
    E, H, L, S, N = 8, 2, 4, 5, 3
    ref = torch.nn.MultiheadAttention(E, H, batch_first=batch_first, **kw)
    ours = nn.MultiheadAttention(E, H, batch_first=batch_first, **kw)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours, ref = _twin(ours, ref)
    kd, vd = kw.get("kdim", E), kw.get("vdim", E)
    shape = (lambda n, e: (N, n, e)) if batch_first else (lambda n, e: (n, N, e))
    arrs = [rng.standard_normal(shape(L, E)), rng.standard_normal(shape(S, kd)),
            rng.standard_normal(shape(S, vd))]
    kpm = rng.random((N, S)) > 0.7
    kpm[:, 0] = False
    am = rng.standard_normal((L, S))
    xs = [dt.tensor(a, requires_grad=True) for a in arrs]
    txs = [torch.tensor(a, requires_grad=True) for a in arrs]
    for avg in (True, False):
        y, w = ours(*xs, key_padding_mask=dt.tensor(kpm), attn_mask=dt.tensor(am),
                    average_attn_weights=avg)
        ty, tw = ref(*txs, key_padding_mask=torch.tensor(kpm), attn_mask=torch.tensor(am),
                     average_attn_weights=avg)
        _close(y, ty)
        _close(w, tw)
    g = rng.standard_normal(tuple(ty.shape))
    y.backward(dt.tensor(g))
    ty.backward(torch.tensor(g))
    for a, b in zip(xs, txs):
        _close(a.grad, b.grad)
    for (k, p), (tk, tp) in zip(ours.named_parameters(), ref.named_parameters()):
        _close(p.grad, tp.grad)


def test_multihead_self_attention_bool_and_causal_masks(rng):
    E, H, L, N = 6, 3, 5, 2
    ours, ref = _twin(nn.MultiheadAttention(E, H), torch.nn.MultiheadAttention(E, H))
    x = rng.standard_normal((L, N, E))
    causal = torch.nn.Transformer.generate_square_subsequent_mask(L).double()
    ocausal = nn.Transformer.generate_square_subsequent_mask(L, dtype=dt.float64)
    _close(ocausal, causal)
    bm = np.triu(np.ones((L, L), dtype=bool), 1)
    for om, tm, c in ((ocausal, causal, True), (dt.tensor(bm), torch.tensor(bm), False)):
        xs, tx = dt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        y, w = ours(xs, xs, xs, attn_mask=om, is_causal=c)
        ty, tw = ref(tx, tx, tx, attn_mask=tm, is_causal=c)
        _close(y, ty)
        _close(w, tw)
        y.sum().backward()
        ty.sum().backward()
        _close(xs.grad, tx.grad)
    # unbatched input
    y, w = ours(dt.tensor(x[:, 0]), dt.tensor(x[:, 0]), dt.tensor(x[:, 0]))
    ty, tw = ref(*(torch.tensor(x[:, 0]),) * 3)
    _close(y, ty)
    _close(w, tw)


@pytest.mark.parametrize("kw", [dict(), dict(batch_first=True, norm_first=True),
                                dict(activation="gelu")])
def test_transformer_encoder_matches_torch(kw, rng):
    d, nhead = 8, 2
    ref_layer = torch.nn.TransformerEncoderLayer(d, nhead, dim_feedforward=16, **kw)
    ref = torch.nn.TransformerEncoder(ref_layer, 2, norm=torch.nn.LayerNorm(d),
                                      enable_nested_tensor=False)
    layer = nn.TransformerEncoderLayer(d, nhead, dim_feedforward=16, **kw)
    ours = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(d))
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert ours.layers[0] is not layer and ours.layers[0] is not ours.layers[1]
    ours, ref = _twin(ours, ref)
    ours.eval()
    ref.eval()
    x = rng.standard_normal((3, 4, d))
    kpm = np.zeros((3 if kw.get("batch_first") else 4, 4 if kw.get("batch_first") else 3),
                   dtype=bool)
    kpm[:, -1] = True
    xs, tx = dt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y = ours(xs, src_key_padding_mask=dt.tensor(kpm))
    with torch.backends.mha.flags(enable_fastpath=False) if hasattr(torch.backends, "mha") \
            and hasattr(torch.backends.mha, "flags") else _null():
        ty = ref(tx, src_key_padding_mask=torch.tensor(kpm))
    _close(y, ty, 1e-8)
    g = rng.standard_normal(tuple(ty.shape))
    y.backward(dt.tensor(g))
    ty.backward(torch.tensor(g))
    _close(xs.grad, tx.grad, 1e-8)
    for (k, p), (tk, tp) in zip(ours.named_parameters(), ref.named_parameters()):
        _close(p.grad, tp.grad, 1e-8)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_torch_encoder_layer_state_dict_loads_and_matches(rng):
    ref = torch.nn.TransformerEncoderLayer(8, 4, dim_feedforward=32, batch_first=True).eval()
    ours = nn.TransformerEncoderLayer(8, 4, dim_feedforward=32, batch_first=True).eval()
    ours.load_state_dict({k: dt.tensor(v.numpy()) for k, v in ref.state_dict().items()})
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    with torch.no_grad():
        ty = ref(torch.tensor(x))
    np.testing.assert_allclose(ours(dt.tensor(x)).detach().numpy(), ty.numpy(), rtol=1e-4,
                               atol=1e-5)


def test_transformer_decoder_matches_torch(rng):
    d = 8
    ref = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(d, 2, 16), 2)
    ours = nn.TransformerDecoder(nn.TransformerDecoderLayer(d, 2, 16), 2)
    ours, ref = _twin(ours, ref)
    ours.eval()
    ref.eval()
    tgt, mem = rng.standard_normal((4, 2, d)), rng.standard_normal((5, 2, d))
    mask = torch.nn.Transformer.generate_square_subsequent_mask(4).double()
    y = ours(dt.tensor(tgt), dt.tensor(mem), tgt_mask=dt.tensor(mask.numpy()))
    ty = ref(torch.tensor(tgt), torch.tensor(mem), tgt_mask=mask)
    _close(y, ty, 1e-8)


def test_encoder_layer_trains_with_dropout(rng):
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.3, batch_first=True)
    x = dt.tensor(rng.standard_normal((2, 5, 8)).astype(np.float32), requires_grad=True)
    dt.manual_seed(0)
    y1 = layer(x)
    dt.manual_seed(1)
    y2 = layer(x)
    assert not np.allclose(y1.detach().numpy(), y2.detach().numpy())
    y1.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in layer.parameters())
    mha = nn.MultiheadAttention(8, 2, dropout=0.5)
    q = dt.tensor(rng.standard_normal((5, 2, 8)).astype(np.float32))
    out, w = mha(q, q, q)
    assert tuple(w.shape) == (2, 5, 5) and tuple(out.shape) == (5, 2, 8)


def test_full_transformer_matches_torch(rng):
    kw = dict(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=2,
              dim_feedforward=16, batch_first=True)
    ref = torch.nn.Transformer(**kw)
    ours = nn.Transformer(**kw)
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours, ref = _twin(ours, ref)
    ours.eval()
    ref.eval()
    src, tgt = rng.standard_normal((2, 5, 8)), rng.standard_normal((2, 4, 8))
    mask = torch.nn.Transformer.generate_square_subsequent_mask(4).double()
    ts, tt = dt.tensor(src, requires_grad=True), dt.tensor(tgt, requires_grad=True)
    rs, rt = torch.tensor(src, requires_grad=True), torch.tensor(tgt, requires_grad=True)
    y = ours(ts, tt, tgt_mask=dt.tensor(mask.numpy()))
    ty = ref(rs, rt, tgt_mask=mask)
    _close(y, ty, 1e-8)
    y.sum().backward()
    ty.sum().backward()
    _close(ts.grad, rs.grad, 1e-8)
    _close(tt.grad, rt.grad, 1e-8)
