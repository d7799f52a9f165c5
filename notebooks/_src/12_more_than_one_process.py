# %% [markdown]
# # 12. More than one process: data-parallel training over MPI
#
# When one process is not enough, dyntorch trains on several with PyTorch's names:
# `dyntorch.distributed` (collectives on MPI, NCCL for GPU tensors),
# `nn.parallel.DistributedDataParallel` (gradients averaged across processes during
# `backward()`), `DistributedSampler` (each process reads its own share of the data) and
# `Trainer(strategy="ddp")`.
#
# A script runs as `mpiexec -n 2 python train.py`. From a notebook, `ipyparallel` starts the
# same MPI processes ("engines") and runs cells on them: a cell that starts with `%%px` runs on
# every engine at once, and its output comes back labelled with the engine's number.

# %%
import os
import sys
import time

import ipyparallel as ipp

# the mpich wheel puts mpiexec next to this Python
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
start = time.perf_counter()
cluster = ipp.Cluster(engines="mpi", n=2)
rc = cluster.start_and_connect_sync()
rc.wait_for_engines(2, timeout=60)
view = rc[:]
view.block = True
view.activate()  # the %%px magic now runs cells on both engines
print(f"{len(rc.ids)} MPI engines ready in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# ## Join the process group
# Every engine is an MPI rank. `init_process_group` joins them; rank and world size come from
# MPI.

# %%
%%px
import numpy as np

import dyntorch as torch
import dyntorch.distributed as dist
import dyntorch.nn as nn
import dyntorch.nn.functional as F

dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()
t = torch.tensor([float(rank + 1)])
dist.all_reduce(t)  # in place, on every rank: 1 + 2
print(f"rank {rank} of {world}: all_reduce gives {t.item()}")

# %% [markdown]
# ## Each rank reads its own share of the digits
# `DistributedSampler` hands rank `r` every second index of a shuffled order (the same
# shuffle on every rank, new each epoch after `set_epoch`).

# %%
%%px
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from dyntorch.utils.data import DataLoader, TensorDataset
from dyntorch.utils.data.distributed import DistributedSampler

digits = load_digits()
X = (digits.images / 16.0).astype(np.float32)[:, None]
y = digits.target.astype(np.int64)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
train = TensorDataset(torch.from_numpy(X_tr), torch.from_numpy(y_tr))
sampler = DistributedSampler(train, shuffle=True, seed=0)
loader = DataLoader(train, batch_size=32, sampler=sampler)
print(f"rank {rank}: {len(sampler)} of {len(train)} training images, {len(loader)} batches")

# %% [markdown]
# ## The digits CNN, wrapped in DistributedDataParallel
# Each rank builds the model with a different seed on purpose: the wrapper broadcasts rank 0's
# weights, so every rank starts from the same point. During `backward()` the gradients are
# averaged across the ranks in flat buckets, so every rank takes the same optimizer step.

# %%
%%px
from dyntorch.nn.parallel import DistributedDataParallel as DDP


class DigitNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 10))

    def forward(self, x):
        return self.head(self.features(x))


torch.manual_seed(100 + rank)
model = DDP(DigitNet())
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
for epoch in range(4):
    sampler.set_epoch(epoch)
    for xb, yb in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
    print(f"rank {rank} epoch {epoch}: last loss on my shard {loss.item():.3f}")

# %% [markdown]
# ## The same weights on every rank
# Pull a checksum of the weights from each engine into this notebook.

# %%
%%px
checksum = float(sum(p.detach().sum().item() for p in model.parameters()))

# %%
sums = view.pull("checksum")
print("weight checksums per rank:", sums)
assert abs(sums[0] - sums[1]) < 1e-6

# %% [markdown]
# ## Evaluate on rank 0
# `model.module` is the plain network; `--targets 0` runs a cell on rank 0 only.

# %%
%%px --targets 0
model.eval()
with torch.no_grad():
    pred = model.module(torch.from_numpy(X_te)).argmax(dim=1).numpy()
accuracy = float((pred == y_te).mean())
print(f"test accuracy: {accuracy:.3f}")

# %%
accuracy = rc[0].pull("accuracy", block=True)
assert accuracy > 0.9, accuracy

# %% [markdown]
# ## The Trainer does all of this
# `Trainer(strategy="ddp", devices=2)` shards the DataLoaders, wraps the model, averages the
# epoch metrics across ranks and lets only rank 0 write checkpoints, logs and progress bars
# (rank 0's live plot of the metrics is the one that appears below). In a script, the same
# lines run under `mpiexec -n 2 python train.py`.

# %%
%%px
from dyntorch.train import Trainer, TrainModule


class LitDigits(TrainModule):
    def __init__(self):
        super().__init__()
        self.net = DigitNet()

    def training_step(self, batch, batch_idx):
        xb, yb = batch
        loss = F.cross_entropy(self.net(xb), yb)
        self.log("train_loss", loss, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        xb, yb = batch
        self.log("val_acc", (self.net(xb).argmax(1) == yb).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


test_set = TensorDataset(torch.from_numpy(X_te), torch.from_numpy(y_te))
trainer = Trainer(strategy="ddp", devices=2, max_epochs=3, enable_progress_bar=False,
                  enable_checkpointing=False, logger=False)
trainer.fit(LitDigits(), DataLoader(train, batch_size=32, shuffle=True),
            DataLoader(test_set, batch_size=90))
print(f"rank {rank}: val_acc over both ranks' shares {float(trainer.callback_metrics['val_acc']):.3f}")

# %% [markdown]
# ## Stop the engines

# %%
rc.shutdown(hub=False, block=True)  # the engines leave MPI cleanly, then the controller stops
cluster.stop_cluster_sync()
