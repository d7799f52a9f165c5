# %% [markdown]
# # 10. The same model on the GPU (CuPy)
#
# dyntorch runs on NVIDIA GPUs through CuPy: install `dyntorch[cuda]` on a machine with a CUDA
# device, then move tensors and modules with `.to("cuda")` exactly as in PyTorch. On a
# machine without one, this notebook says so and runs the CPU part only.

# %%
import time

import dyntorch as torch
import dyntorch.nn as nn

print("CUDA available:", torch.cuda.is_available(), "| devices:", torch.cuda.device_count())
device = "cuda" if torch.cuda.is_available() else "cpu"
if device == "cpu":
    print("No CUDA device (or CuPy is not installed): skipping the GPU part, running on the CPU.")


def train_steps(device, steps=50, warmup=5):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 10)).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    # the data is drawn on the CPU and moved, so both devices see the same numbers
    x = torch.randn(512, 256).to(device)
    y = torch.randint(0, 10, (512,)).to(device)

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):  # the first GPU steps compile CuPy's kernels: not timed
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    torch.cuda.synchronize()
    return loss.item(), (time.perf_counter() - start) / steps


cpu_loss, cpu_time = train_steps("cpu")
print(f"CPU : loss {cpu_loss:.4f}, {cpu_time * 1e3:.1f} ms/step")
if device == "cuda":
    gpu_loss, gpu_time = train_steps("cuda")
    print(f"CUDA: loss {gpu_loss:.4f}, {gpu_time * 1e3:.1f} ms/step "
          f"({cpu_time / gpu_time:.1f}x faster)")
    print("same result on both devices:", abs(cpu_loss - gpu_loss) < 1e-3)

# %% [markdown]
# Mixing devices in one op is an error that names both devices, as in PyTorch:

# %%
if device == "cuda":
    try:
        torch.ones(2) + torch.ones(2, device="cuda")
    except RuntimeError as err:
        print(err)
else:
    try:
        torch.ones(2, device="cuda")
    except RuntimeError as err:
        print("Asking for CUDA here says why it cannot:", err)
