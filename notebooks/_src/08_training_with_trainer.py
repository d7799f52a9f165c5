# %% [markdown]
# # 8. Training with the `Trainer`
#
# Write the model and the step; let `Trainer` run the loop: epochs, validation, gradient
# clipping, checkpoints, early stopping, a progress bar, metrics to CSV and a live plot.

# %%
import pathlib
import tempfile

import numpy as np
from sklearn.datasets import load_digits

import dyntorch as torch
import dyntorch.nn as nn
import dyntorch.nn.functional as F
from dyntorch.train import (EarlyStopping, GradientMonitor, LearningRateMonitor,
                            ModelCheckpoint, Trainer, TrainModule)
from dyntorch.utils.data import DataLoader, TensorDataset, random_split

torch.manual_seed(0)
digits = load_digits()
data = TensorDataset(torch.tensor(digits.data / 16.0, dtype=torch.float32),
                     torch.tensor(digits.target))
train_set, val_set = random_split(data, [0.8, 0.2], generator=torch.Generator().manual_seed(0))
train_loader = DataLoader(train_set, batch_size=64, shuffle=True)
val_loader = DataLoader(val_set, batch_size=256)

# %% [markdown]
# ## The model and its steps

# %%
class DigitMLP(TrainModule):
    def __init__(self, lr=3e-3):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
        self.lr = lr

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=True)
        self.log("val_acc", (logits.argmax(1) == y).float().mean(), prog_bar=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
        return [opt], [sched]

# %% [markdown]
# ## Fit, with callbacks
# `ModelCheckpoint` keeps the best two epochs by validation loss, `EarlyStopping` stops when it
# stops improving, `LearningRateMonitor` logs the schedule and `GradientMonitor` records the
# gradient norm of every module at every step (the debugger's view of training health).

# %%
root = pathlib.Path(tempfile.mkdtemp())
grads = GradientMonitor()
ckpt = ModelCheckpoint(dirpath=root / "ckpt", monitor="val_loss", mode="min", save_top_k=2)
trainer = Trainer(max_epochs=12, default_root_dir=root, seed=0, gradient_clip_val=1.0,
                  callbacks=[ckpt, EarlyStopping(monitor="val_loss", patience=3),
                             LearningRateMonitor(), grads])
model = DigitMLP()
trainer.fit(model, train_loader, val_loader)
print({k: round(float(v), 4) for k, v in trainer.callback_metrics.items()})
print("best checkpoint:", pathlib.Path(ckpt.best_model_path).name)

# %% [markdown]
# Metrics went to a CSV file, one row per logged step or epoch:

# %%
csv = next(root.rglob("metrics.csv"))
print(csv.read_text().splitlines()[:3])

# %% [markdown]
# ## Gradient health over training
# Per-module gradient norms from `GradientMonitor`: a layer whose curve collapses to zero has
# stopped learning; one that explodes needs clipping or a lower learning rate.

# %%
import matplotlib.pyplot as plt

names = [n for n in grads.history[0] if n]
plt.figure(figsize=(6, 3))
for n in names:
    plt.semilogy(grads.steps, [h[n] for h in grads.history], label=n or "root")
plt.xlabel("step"); plt.ylabel("grad norm"); plt.legend();

# %% [markdown]
# ## The graph while it trains
# `GraphRecorder(show=True)` records every step's node and parameter statistics (a
# `dyntorch.debug.Recorder`, see tutorial 11) and shows its view below the cell as soon as the
# first step is recorded. The view follows training while `fit` runs; afterwards its slider
# scrubs the kept steps (colour by gradient norm, NaN/Inf or dead units in the toolbar), and a
# click on a node charts its history.

# %%
from dyntorch.train.callbacks import GraphRecorder

watch = GraphRecorder(keep=100, show=True)
Trainer(max_epochs=1, default_root_dir=root / "graph", seed=0, enable_progress_bar=False,
        callbacks=[watch]).fit(DigitMLP(), train_loader)
print(len(watch.recorder.steps), "steps kept; grad norm of net.0.weight, last three:",
      watch.recorder.history("net.0.weight", "grad_norm")[-3:].round(4))

# %% [markdown]
# ## Test, predict, resume
# A checkpoint restores model, optimizer, scheduler and counters: `fit(..., ckpt_path=...)`
# resumes exactly where training stopped.

# %%
trainer.validate(model, val_loader)
preds = trainer.predict(model, DataLoader(val_set, batch_size=256))
print(len(preds), "prediction batches")
resumed = Trainer(max_epochs=trainer.current_epoch + 2, default_root_dir=root / "resume",
                  seed=0, enable_progress_bar=False)
resumed.fit(DigitMLP(), train_loader, val_loader, ckpt_path=ckpt.best_model_path)
print("resumed to epoch", resumed.current_epoch)
