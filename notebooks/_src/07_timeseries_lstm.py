# %% [markdown]
# # 7. Time series: forecasting a price series with an LSTM
#
# A finance-style exercise on synthetic data (so it runs anywhere and the answer is known):
# a price with a seasonal cycle and noise. We forecast the next value from a window of past
# values and compare with the baselines every forecaster must beat: "same as last" and a
# moving average.

# %%
import matplotlib.pyplot as plt
import numpy as np

import dyntorch as torch
import dyntorch.nn as nn
from dyntorch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
rng = np.random.default_rng(0)
n = 1500
t = np.arange(n)
log_price = 0.0004 * t + 0.05 * np.sin(2 * np.pi * t / 50) + np.cumsum(rng.normal(0, 0.004, n))
price = 100 * np.exp(log_price)
plt.figure(figsize=(7, 2.5)); plt.plot(price); plt.title("synthetic price");

# %% [markdown]
# ## Windows of returns
# Models see log-returns (stationary) scaled to unit variance; windows of 40 steps predict the
# next return.

# %%
ret = np.diff(np.log(price))
scale = ret.std()
r = (ret / scale).astype(np.float32)
W = 40
Xw = np.stack([r[i:i + W] for i in range(len(r) - W)])[:, :, None]
Yw = r[W:][:, None]
split = int(0.8 * len(Xw))
train = TensorDataset(torch.from_numpy(Xw[:split]), torch.from_numpy(Yw[:split]))
X_te, Y_te = torch.from_numpy(Xw[split:]), torch.from_numpy(Yw[split:])

# %% [markdown]
# ## The model: an LSTM (swap in `nn.GRU` to compare)

# %%
class Forecaster(nn.Module):
    def __init__(self, cell=nn.LSTM, hidden=32):
        super().__init__()
        self.rnn = cell(1, hidden, num_layers=1, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def fit(model, epochs=8):
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    loader = DataLoader(train, batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    for _ in range(epochs):
        for xb, yb in loader:
            loss = nn.functional.mse_loss(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return model(X_te)


lstm_pred = fit(Forecaster(nn.LSTM))
gru_pred = fit(Forecaster(nn.GRU))

# %% [markdown]
# ## Against the baselines
# Errors are in price units one step ahead. "Last value" predicts a zero return; the moving
# average predicts the mean of the window's returns.

# %%
def price_mse(pred_returns):
    p_prev = price[W + split:-1]
    actual = price[W + split + 1:]
    forecast = p_prev * np.exp(np.asarray(pred_returns).ravel()[: len(p_prev)] * scale)
    return float(((forecast - actual) ** 2).mean())


results = {
    "last value": price_mse(np.zeros(len(Y_te))),
    "moving average (40)": price_mse(X_te[:, :, 0].mean(dim=1).numpy()),
    "LSTM": price_mse(lstm_pred.numpy()),
    "GRU": price_mse(gru_pred.numpy()),
}
for k, v in results.items():
    print(f"{k:22s} MSE {v:.4f}")
assert results["LSTM"] < results["last value"]

# %%
k = 120
plt.figure(figsize=(7, 2.5))
plt.plot(price[W + split + 1:][:k], label="actual")
plt.plot((price[W + split:-1] * np.exp(lstm_pred.numpy().ravel() * scale))[:k], label="LSTM")
plt.legend();
