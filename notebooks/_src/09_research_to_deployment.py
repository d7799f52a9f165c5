# %% [markdown]
# # 9. From research to deployment: trace, save, export to ONNX
#
# A model that lives in a notebook is a Python object with a dynamic graph. To ship it we
# *trace* one forward pass into a static graph, save that as a self-contained file that runs
# with NumPy alone, and export ONNX so that onnxruntime (servers, phones, browsers) runs it.

# %%
import pathlib
import tempfile
import time

import numpy as np
from sklearn.datasets import load_digits

import dyntorch as torch
import dyntorch.nn as nn
import dyntorch.nn.functional as F

torch.manual_seed(0)
digits = load_digits()
X = torch.tensor(digits.images[:, None] / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target)

model = nn.Sequential(
    nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
opt = torch.optim.Adam(model.parameters(), lr=5e-3)
for epoch in range(4):
    for i in range(0, 1400, 100):
        loss = F.cross_entropy(model(X[i:i + 100]), y[i:i + 100])
        opt.zero_grad(); loss.backward(); opt.step()
model.eval()
with torch.no_grad():
    acc = (model(X[1400:]).argmax(1) == y[1400:]).float().mean().item()
print(f"held-out accuracy {acc:.3f}")

# %% [markdown]
# ## Trace to a static graph
# `jit.trace` runs the model once and records every op. `.graph` reads like an IR.

# %%
traced = torch.jit.trace(model, (X[:4],))
print(traced.graph)

# %% [markdown]
# ## Save, and load without the model's class
# The file holds the graph and the weights; loading needs only dyntorch (NumPy, or CuPy on a
# GPU), no class definitions and no autograd.

# %%
out = pathlib.Path(tempfile.mkdtemp())
traced.save(out / "digits.dtj")
loaded = torch.jit.load(out / "digits.dtj")
with torch.no_grad():
    eager = model(X[:64])
print("max difference to eager:", (loaded(X[:64]) - eager).abs().max().item())

fast = torch.jit.optimize_for_inference(loaded)
t0 = time.perf_counter(); [model(X[:256]) for _ in range(20)]; t1 = time.perf_counter()
[fast(X[:256]) for _ in range(20)]; t2 = time.perf_counter()
print(f"eager {1e3 * (t1 - t0) / 20:.2f} ms, traced+optimised {1e3 * (t2 - t1) / 20:.2f} ms")

# %% [markdown]
# ## Export to ONNX and run in onnxruntime
# `dynamic_axes` marks the batch dimension as free, so the exported model accepts any batch.

# %%
import onnx
import onnxruntime as ort

path = out / "digits.onnx"
torch.onnx.export(model, (X[:4],), str(path), input_names=["image"], output_names=["logits"],
                  dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
onnx.checker.check_model(onnx.load(str(path)))
sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
ort_out = sess.run(None, {"image": X[:300].numpy()})[0]
print("onnxruntime vs dyntorch, batch of 300:",
      np.abs(ort_out - model(X[:300]).detach().numpy()).max())

# %% [markdown]
# ## A smaller model for devices: int8
# onnxruntime's quantization tools turn the float model into an int8 one. Size and accuracy:

# %%
from dyntorch.onnx.quantize import quantize_dynamic

qpath = quantize_dynamic(str(path), str(out / "digits.int8.onnx"))
qsess = ort.InferenceSession(qpath, providers=["CPUExecutionProvider"])
q_pred = qsess.run(None, {"image": X[1400:].numpy()})[0].argmax(1)
size, qsize = path.stat().st_size / 1024, pathlib.Path(qpath).stat().st_size / 1024
print(f"size {size:.1f} KiB -> {qsize:.1f} KiB;"
      f" accuracy {acc:.3f} -> {(q_pred == y[1400:].numpy()).mean():.3f}")
