# %% [markdown]
# # 11. When training goes wrong
#
# A loss that turns into `nan` after a hundred good steps is the classic bad afternoon. This
# notebook trains a small classifier that really does fail, and finds out **when** and **why**
# with four tools:
#
# 1. `dyntorch.debug.Recorder`: statistics of every node and parameter across training steps
#    (time travel), with a conditional break that stops `backward()` where things go bad;
# 2. `dyntorch.debug.explain`: the root cause (the first op that went bad, and why) and a
#    small cell that reproduces it;
# 3. `dyntorch.viz.diff`: two runs of the same program compared node by node;
# 4. `dyntorch.viz.export`: any of these views saved as a standalone HTML page, SVG or PNG.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import dyntorch as torch
import dyntorch.nn as nn
from dyntorch.debug import BreakpointHit, NonFiniteError, Recorder, detect_nonfinite, explain
from dyntorch.viz import diff, export

torch.manual_seed(0)
rng = np.random.default_rng(0)
centers = np.array([[0, 4], [4, -2], [-4, -2]], dtype=np.float32)
labels = rng.integers(0, 3, 600)
X = torch.tensor(0.5 * centers[labels] + rng.standard_normal((600, 2)).astype(np.float32))
T = torch.tensor(np.eye(3, dtype=np.float32)[labels])  # one-hot targets

# %% [markdown]
# The model hides two mistakes that are common in real code: the loss is written by hand as
# `-(target * log(softmax(logits)))`, and the learning-rate warm-up never stops growing.

# %%
class Head(nn.Module):
    def forward(self, logits, target):
        probs = logits.softmax(-1)
        return -(target * probs.log()).sum(-1).mean()


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))
        self.head = Head()

    def forward(self, x, target):
        return self.head(self.body(x), target)


model = Classifier()
opt = torch.optim.SGD(model.parameters(), lr=0.05)

# %% [markdown]
# ## 1. Record every step, and break at the first NaN
# `Recorder(model, break_when="nonfinite")` keeps the last `keep` steps of statistics (forward
# output mean/std/min/max, dead and saturated fractions, gradient norms, update-to-weight
# ratios with the optimizer watched). When a NaN or Inf shows up, `backward()` raises
# `BreakpointHit` instead of quietly poisoning the weights.

# %%
rec = Recorder(model, keep=200, break_when="nonfinite", optimizer=opt)
losses = []
try:
    for step in range(400):
        for g in opt.param_groups:
            g["lr"] = 0.05 * (step + 1)  # warm-up... that forgot to stop
        i = (step * 50) % 600
        xb, tb = X[i:i + 50], T[i:i + 50]
        opt.zero_grad()
        loss = model(xb, tb)
        losses.append(loss.item())
        loss.backward()
        opt.step()
except BreakpointHit as e:
    hit = e
print(hit)
print(hit.node)

# %% [markdown]
# It stopped at training step `hit.step`, before `opt.step()` could write NaN into the weights.
# The recorder lets us travel back: the loss looked fine, but the update-to-weight ratio (a
# healthy run keeps it near 1e-3) kept climbing with the learning rate.

# %%
fig, ax = plt.subplots(1, 2, figsize=(9, 3))
ax[0].plot(rec.steps, rec.history("loss"))
ax[0].set_title("loss")
ax[1].semilogy(rec.steps, rec.history("body.2.weight", "update_ratio"), label="body.2.weight")
ax[1].semilogy(rec.steps, rec.history("body.0.weight", "update_ratio"), label="body.0.weight")
ax[1].set_title("update / weight")
ax[1].legend()
plt.tight_layout()
plt.show()
print("kept steps:", rec.steps[0], "...", rec.steps[-1])
print("largest logit at the last steps:", rec.history("body.2/LinearBackward0#0", "out_max")[-4:])

# %% [markdown]
# `hit.stepper` is a `BackwardStepper` over the failing step's graph, positioned at the node
# where the break fired; in a notebook it shows as the step debugger. `rec.at(step)` gives any
# kept step as a graph document with its statistics.

# %%
stepper = hit.stepper
print(stepper.current.describe())
doc = rec.at(rec.steps[-1])
print(doc["status"]["text"])
stepper

# %% [markdown]
# ## 2. Why? `explain` walks back to the root cause
# The weights are still those of the failing step, so we run its forward pass again under
# `detect_nonfinite` and hand the error to `explain`.

# %%
try:
    with detect_nonfinite():
        model(xb, tb)
except NonFiniteError as err:
    why = explain(err)
print(why.reason)
print("where:", why.op, "in", repr(why.scope), "line", why.source[1])
print("chain:", " -> ".join(n.name() for n in why.chain))

# %% [markdown]
# `repro()` writes a cell that rebuilds just that op with the offending inputs; it runs on its
# own, in a fresh namespace:

# %%
out = Path(tempfile.mkdtemp())  # scratch space for this notebook's files
cell = why.repro(out / "repro_inputs.npz")  # inputs too big to print go to a small .npz
print(cell)
exec(cell, {})

# %% [markdown]
# ## 3. Same step, float32 against float64: `diff`
# `diff` matches the nodes of two runs of the same program by module scope, op and order and
# compares values and gradients. In float64 the softmax does not underflow here, and the first
# node where the two runs really disagree is the `log`: the values before it differ only by
# float32 rounding.

# %%
model64 = Classifier().double()
model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
loss32 = model(xb, tb)
loss64 = model64(xb.double(), tb.double())
d = diff(loss32, loss64, model=(model, model64))
print("float32:", loss32.item(), " float64:", loss64.item())
print(d.first_divergent(rtol=1e-3))
print(d.table())
d

# %% [markdown]
# The fix is the stable form, `log_softmax` (and a warm-up that stops). One step on the same
# batch with the fixed head is finite:

# %%
fixed = -(tb * model.body(xb).log_softmax(-1)).sum(-1).mean()
print("fixed loss:", fixed.item())

# %% [markdown]
# ## 4. Save what you found
# `export` writes a standalone HTML page (the interactive view, offline), an SVG or a PNG of
# any view: the stepper, a diff, a recorded step.

# %%
for view, name in ((stepper, "failing_step.html"), (d, "float32_vs_float64.svg"),
                   ((rec, rec.steps[-1]), "last_step.png")):
    p = export(view, out / name, model=model)
    print(f"{p.name:26s} {p.stat().st_size:>9,d} bytes")
stepper.close()
rec.close()
