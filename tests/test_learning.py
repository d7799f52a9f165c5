"""Models actually learn: the end-to-end checks of the nn issue (CPU, seconds each)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import dyntorch as torch
import dyntorch.nn as nn
import dyntorch.nn.functional as F
from dyntorch.utils.data import DataLoader, TensorDataset


def test_small_cnn_learns_digits_to_97_percent():
    datasets = pytest.importorskip("sklearn.datasets")
    from sklearn.model_selection import train_test_split

    torch.manual_seed(0)
    d = datasets.load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None]
    X_tr, X_te, y_tr, y_te = train_test_split(X, d.target, test_size=0.25, random_state=0,
                                              stratify=d.target)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 16, 10))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loader = DataLoader(TensorDataset(torch.from_numpy(X_tr), torch.tensor(y_tr)),
                        batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    for _ in range(10):
        model.train()
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(torch.from_numpy(X_te)).argmax(1).numpy() == y_te).mean()
    assert acc >= 0.97, acc


def test_lstm_forecaster_beats_last_value_baseline():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    t = np.arange(1200)
    series = np.sin(2 * np.pi * t / 40) + 0.5 * np.sin(2 * np.pi * t / 13) + \
        rng.normal(0, 0.05, t.size)
    W = 30
    X = np.stack([series[i:i + W] for i in range(t.size - W)])[:, :, None].astype(np.float32)
    Y = series[W:, None].astype(np.float32)
    split = 900

    class Forecaster(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(1, 24, batch_first=True)
            self.head = nn.Linear(24, 1)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.head(out[:, -1])

    model = Forecaster()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loader = DataLoader(TensorDataset(torch.from_numpy(X[:split]), torch.from_numpy(Y[:split])),
                        batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    for _ in range(6):
        for xb, yb in loader:
            loss = F.mse_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = model(torch.from_numpy(X[split:])).numpy()
    mse_model = float(((pred - Y[split:]) ** 2).mean())
    mse_last = float(((X[split:, -1] - Y[split:]) ** 2).mean())
    assert mse_model < 0.5 * mse_last, (mse_model, mse_last)


def test_char_transformer_loss_falls():
    torch.manual_seed(0)
    text = ("the quick brown fox jumps over the lazy dog. " * 40)
    chars = sorted(set(text))
    data = torch.tensor([chars.index(c) for c in text])
    block, V = 16, len(chars)
    emb, pos = nn.Embedding(V, 32), nn.Embedding(block, 32)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0,
                                                           batch_first=True), 2)
    head = nn.Linear(32, V)
    params = [*emb.parameters(), *pos.parameters(), *enc.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=3e-3)
    mask = nn.Transformer.generate_square_subsequent_mask(block)
    losses = []
    for _ in range(60):
        ix = torch.randint(0, len(data) - block - 1, (16,)).tolist()
        x = torch.stack([data[i:i + block] for i in ix])
        y = torch.stack([data[i + 1:i + block + 1] for i in ix])
        h = enc(emb(x) + pos(torch.arange(block)), mask=mask, is_causal=True)
        loss = F.cross_entropy(head(h).reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > math.log(V) - 0.5
    assert np.mean(losses[-5:]) < 0.5 * losses[0], (losses[0], losses[-5:])
