"""RNN, LSTM, GRU (+ cells) and packed sequences against torch 2.13 in float64."""
from __future__ import annotations

import numpy as np
import pytest

import dyntorch as dt
import dyntorch.nn as nn
from dyntorch.nn.utils import rnn as R

torch = pytest.importorskip("torch")
TR = torch.nn.utils.rnn


def _twin(name, rng, **kw):
    ref = getattr(torch.nn, name)(**kw).double()
    ours = getattr(nn, name)(**kw).double()
    assert list(ours.state_dict()) == list(ref.state_dict())
    for (k, v), (tk, tv) in zip(ours.state_dict().items(), ref.state_dict().items()):
        assert tuple(v.shape) == tuple(tv.shape), k
    ours.load_state_dict({k: dt.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
    return ours, ref


def _close(a, b, tol=1e-9):
    a = a.detach().numpy() if hasattr(a, "detach") else a
    np.testing.assert_allclose(a, b.detach().numpy(), rtol=tol, atol=tol)


def _grads_match(ours, ref, tol=1e-9):
    for (k, p), (tk, tp) in zip(ours.named_parameters(), ref.named_parameters()):
        assert k == tk
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=tol, atol=tol,
                                   err_msg=k)


GRID = [
    # name, extra kwargs, num_layers, bidirectional, batch_first, initial state
    ("LSTM", {}, 1, False, False, False),
    ("LSTM", {}, 2, True, True, True),
    ("LSTM", {"bias": False}, 2, False, False, True),
    ("GRU", {}, 2, True, False, True),
    ("GRU", {}, 1, False, True, False),
    ("RNN", {"nonlinearity": "tanh"}, 2, True, False, True),
    ("RNN", {"nonlinearity": "relu"}, 1, False, True, False),
]


@pytest.mark.parametrize("name,extra,layers,bidir,bf,init", GRID)
def test_recurrent_layers_match_torch(name, extra, layers, bidir, bf, init, rng):
    I, H, T, Bn = 3, 4, 5, 2
    ours, ref = _twin(name, rng, input_size=I, hidden_size=H, num_layers=layers,
                      bidirectional=bidir, batch_first=bf, **extra)
    x = rng.standard_normal((Bn, T, I) if bf else (T, Bn, I))
    D = 2 if bidir else 1
    xs, tx = dt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    hx = thx = None
    leaves, tleaves = [xs], [tx]
    if init:
        h0 = rng.standard_normal((layers * D, Bn, H))
        hs, ths = dt.tensor(h0, requires_grad=True), torch.tensor(h0, requires_grad=True)
        leaves.append(hs)
        tleaves.append(ths)
        if name == "LSTM":
            c0 = rng.standard_normal((layers * D, Bn, H))
            cs, tcs = dt.tensor(c0, requires_grad=True), torch.tensor(c0, requires_grad=True)
            leaves.append(cs)
            tleaves.append(tcs)
            hx, thx = (hs, cs), (ths, tcs)
        else:
            hx, thx = hs, ths
    out, st = ours(xs, hx)
    tout, tst = ref(tx, thx)
    _close(out, tout)
    states = st if name == "LSTM" else (st,)
    tstates = tst if name == "LSTM" else (tst,)
    for a, b in zip(states, tstates):
        _close(a, b)
    # a loss that reaches the outputs and every final state
    wo = rng.standard_normal(tuple(tout.shape))
    ws = [rng.standard_normal(tuple(b.shape)) for b in tstates]
    loss = (out * dt.tensor(wo)).sum() + sum((a * dt.tensor(w)).sum()
                                             for a, w in zip(states, ws))
    tloss = (tout * torch.tensor(wo)).sum() + sum((b * torch.tensor(w)).sum()
                                                  for b, w in zip(tstates, ws))
    loss.backward()
    tloss.backward()
    for a, b in zip(leaves, tleaves):
        _close(a.grad, b.grad)
    _grads_match(ours, ref)


def test_unbatched_input_matches_torch(rng):
    ours, ref = _twin("GRU", rng, input_size=3, hidden_size=4)
    x = rng.standard_normal((6, 3))
    out, h = ours(dt.tensor(x))
    tout, th = ref(torch.tensor(x))
    _close(out, tout)
    _close(h, th)


@pytest.mark.parametrize("name,bidir,enforce", [("LSTM", True, False), ("GRU", False, True),
                                                ("RNN", True, True), ("LSTM", False, False)])
def test_packed_sequences_match_torch(name, bidir, enforce, rng):
    I, H = 3, 4
    lengths = [5, 3, 2] if enforce else [2, 5, 3]
    ours, ref = _twin(name, rng, input_size=I, hidden_size=H, num_layers=2,
                      bidirectional=bidir, batch_first=True)
    x = rng.standard_normal((3, 5, I))
    xs, tx = dt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    D = 2 if bidir else 1
    h0 = rng.standard_normal((2 * D, 3, H))
    hs, ths = dt.tensor(h0, requires_grad=True), torch.tensor(h0, requires_grad=True)
    if name == "LSTM":
        hx, thx = (hs, dt.tensor(h0 * 0.5)), (ths, torch.tensor(h0 * 0.5))
    else:
        hx, thx = hs, ths
    p = R.pack_padded_sequence(xs, lengths, batch_first=True, enforce_sorted=enforce)
    tp = TR.pack_padded_sequence(tx, lengths, batch_first=True, enforce_sorted=enforce)
    np.testing.assert_array_equal(p.batch_sizes.numpy(), tp.batch_sizes.numpy())
    _close(p.data, tp.data)
    out, st = ours(p, hx)
    tout, tst = ref(tp, thx)
    _close(out.data, tout.data)
    pad, lens = R.pad_packed_sequence(out, batch_first=True)
    tpad, tlens = TR.pad_packed_sequence(tout, batch_first=True)
    _close(pad, tpad)
    np.testing.assert_array_equal(lens.numpy(), tlens.numpy())
    h, th = (st[0], tst[0]) if name == "LSTM" else (st, tst)
    _close(h, th)
    w = rng.standard_normal(tuple(tpad.shape))
    ((pad * dt.tensor(w)).sum() + (h * h).sum()).backward()
    ((tpad * torch.tensor(w)).sum() + (th * th).sum()).backward()
    _close(xs.grad, tx.grad)
    _close(hs.grad, ths.grad)
    _grads_match(ours, ref)


def test_pad_and_pack_sequence_helpers(rng):
    seqs = [rng.standard_normal((n, 2)) for n in (4, 1, 3)]
    ours = [dt.tensor(s, requires_grad=True) for s in seqs]
    ref = [torch.tensor(s, requires_grad=True) for s in seqs]
    for bf in (False, True):
        _close(R.pad_sequence(ours, batch_first=bf, padding_value=-1.0),
               TR.pad_sequence(ref, batch_first=bf, padding_value=-1.0))
    p = R.pack_sequence(ours, enforce_sorted=False)
    tp = TR.pack_sequence(ref, enforce_sorted=False)
    _close(p.data, tp.data)
    np.testing.assert_array_equal(p.sorted_indices.numpy(), tp.sorted_indices.numpy())
    np.testing.assert_array_equal(p.unsorted_indices.numpy(), tp.unsorted_indices.numpy())
    pad, lens = R.pad_packed_sequence(p, padding_value=2.0, total_length=6)
    tpad, tlens = TR.pad_packed_sequence(tp, padding_value=2.0, total_length=6)
    _close(pad, tpad)
    w = rng.standard_normal(tuple(tpad.shape))
    (pad * dt.tensor(w)).sum().backward()
    (tpad * torch.tensor(w)).sum().backward()
    for a, b in zip(ours, ref):
        _close(a.grad, b.grad)
    with pytest.raises(RuntimeError, match="enforce_sorted"):
        R.pack_padded_sequence(dt.zeros(3, 2, 1), [1, 3])


@pytest.mark.parametrize("name", ["LSTMCell", "GRUCell", "RNNCell"])
def test_cells_match_torch(name, rng):
    ours, ref = _twin(name, rng, input_size=3, hidden_size=4)
    x = rng.standard_normal((2, 3))
    h = rng.standard_normal((2, 4))
    xs, tx = dt.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    if name == "LSTMCell":
        hx, thx = (dt.tensor(h), dt.tensor(-h)), (torch.tensor(h), torch.tensor(-h))
        o, c = ours(xs, hx)
        to, tc = ref(tx, thx)
        (o.sum() + (c * c).sum()).backward()
        (to.sum() + (tc * tc).sum()).backward()
        _close(c, tc)
    else:
        o, to = ours(xs, dt.tensor(h)), ref(tx, torch.tensor(h))
        (o * o).sum().backward()
        (to * to).sum().backward()
    _close(o, to)
    _close(xs.grad, tx.grad)
    _grads_match(ours, ref)


@pytest.mark.parametrize("name,packed", [("LSTM", False), ("GRU", False), ("LSTM", True),
                                         ("GRU", True), ("RNN", False)])
def test_second_order_matches_torch(name, packed, rng):
    ours, ref = _twin(name, rng, input_size=2, hidden_size=3, bidirectional=packed)
    x = rng.standard_normal((3, 2, 2))
    res = []
    for m, lib, t, pack in ((ours, dt, dt.tensor(x, requires_grad=True), R.pack_padded_sequence),
                            (ref, torch, torch.tensor(x, requires_grad=True),
                             TR.pack_padded_sequence)):
        inp = pack(t, [3, 2]) if packed else t
        out = m(inp)[0]
        out = out.data if packed else out
        (g,) = lib.autograd.grad((out * out * out).sum(), (t,), create_graph=True)
        (g2,) = lib.autograd.grad((g * g).sum(), (t,))
        res.append(g2)
    _close(res[0], res[1], 1e-8)


def test_torch_lstm_state_dict_loads_and_matches(rng):
    ref = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True).double()
    ours = nn.LSTM(3, 5, num_layers=2, bidirectional=True, dtype=dt.float64)
    ours.load_state_dict({k: dt.tensor(v.numpy()) for k, v in ref.state_dict().items()})
    x = rng.standard_normal((4, 2, 3))
    _close(ours(dt.tensor(x))[0], ref(torch.tensor(x))[0])


def test_default_init_and_errors():
    m = nn.LSTM(3, 16)
    bound = 1 / np.sqrt(16)
    for p in m.parameters():
        assert np.abs(p.detach().numpy()).max() <= bound
        assert p.dtype == dt.float32
    with pytest.raises(RuntimeError, match="input_size"):
        m(dt.zeros(2, 1, 4))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(2, 2, nonlinearity="sigmoid")


def test_dropout_between_layers_train_vs_eval(rng):
    m = nn.LSTM(3, 4, num_layers=2, dropout=0.5, dtype=dt.float64)
    x = dt.tensor(rng.standard_normal((5, 2, 3)), requires_grad=True)
    dt.manual_seed(0)
    a = m(x)[0]
    dt.manual_seed(1)
    b = m(x)[0]
    assert not np.allclose(a.detach().numpy(), b.detach().numpy())  # dropout active
    a.sum().backward()
    assert x.grad is not None
    m.eval()
    np.testing.assert_array_equal(m(x)[0].detach().numpy(), m(x)[0].detach().numpy())
