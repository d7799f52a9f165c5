# %% [markdown]
# # 5. A small CNN for images (the medical-imaging workflow, on digits)
#
# The shape of a medical-imaging pipeline, at a size that trains in a minute on a laptop CPU:
# images in, a convolutional network with BatchNorm, data augmentation, a held-out test set
# and a confusion matrix. The data are scikit-learn's 8x8 handwritten digits (they ship with
# the package, no download).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import dyntorch as torch
import dyntorch.nn as nn
import dyntorch.nn.functional as F
from dyntorch.utils.data import DataLoader, TensorDataset

torch.manual_seed(0)
digits = load_digits()
X = (digits.images / 16.0).astype(np.float32)[:, None]          # (N, 1, 8, 8) in [0, 1]
y = digits.target.astype(np.int64)
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
train = TensorDataset(torch.from_numpy(X_tr), torch.from_numpy(y_tr))
test = TensorDataset(torch.from_numpy(X_te), torch.from_numpy(y_te))
loader = DataLoader(train, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
print(len(train), "training images,", len(test), "test images")

fig, axes = plt.subplots(1, 8, figsize=(8, 1.3))
for ax, img, label in zip(axes, X_tr, y_tr):
    ax.imshow(img[0], cmap="gray"); ax.set_title(int(label)); ax.axis("off")

# %% [markdown]
# ## Augmentation
# Small random shifts (up to one pixel) make the network robust to where the digit sits, as
# small registration errors would in scans.

# %%
def augment(images):
    dx, dy = np.random.randint(-1, 2, size=2)
    return torch.roll(images, shifts=(int(dy), int(dx)), dims=(2, 3))

# %% [markdown]
# ## The model

# %%
class DigitNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),                                      # 8x8 -> 4x4
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * 4 * 4, 10))

    def forward(self, x):
        return self.head(self.features(x))


model = DigitNet()
print(model)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=12)

# %% [markdown]
# ## Training

# %%
start = time.perf_counter()
losses = []
for epoch in range(12):
    model.train()
    for xb, yb in loader:
        loss = F.cross_entropy(model(augment(xb)), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    sched.step()
print(f"trained in {time.perf_counter() - start:.1f} s, last loss {losses[-1]:.3f}")
plt.figure(figsize=(5, 2.5)); plt.plot(losses); plt.xlabel("step"); plt.ylabel("loss");

# %% [markdown]
# ## Evaluation and confusion matrix

# %%
model.eval()
with torch.no_grad():
    pred = model(torch.from_numpy(X_te)).argmax(dim=1).numpy()
acc = (pred == y_te).mean()
print(f"test accuracy: {acc:.3f}")
conf = np.zeros((10, 10), dtype=int)
np.add.at(conf, (y_te, pred), 1)
plt.figure(figsize=(4, 4)); plt.imshow(conf, cmap="Blues")
plt.xlabel("predicted"); plt.ylabel("true"); plt.title("confusion matrix")
for i in range(10):
    for j in range(10):
        if conf[i, j]:
            plt.text(j, i, conf[i, j], ha="center", va="center", fontsize=7)
assert acc > 0.95

# %% [markdown]
# ## Where does the network look?
# The gradient of the predicted class score with respect to the input pixels (a saliency map)
# is one backward pass away.

# %%
img = torch.from_numpy(X_te[:4]).clone().requires_grad_()
scores = model(img)
scores.gather(1, scores.argmax(1, keepdim=True)).sum().backward()
fig, axes = plt.subplots(2, 4, figsize=(6, 3))
for k in range(4):
    axes[0, k].imshow(X_te[k, 0], cmap="gray"); axes[0, k].axis("off")
    axes[1, k].imshow(img.grad[k, 0].abs().numpy(), cmap="hot"); axes[1, k].axis("off")
