"""GPU speed against torch on the same card: matmul, an elementwise chain, a training step.

Prints ratios dyntorch/torch (lower is better). Skips with a message where CUDA is absent.
"""
from __future__ import annotations

import sys
import time

import dyntorch as dt


def timed(fn, sync, reps=20, warm=3) -> float:
    for _ in range(warm):
        fn()
    sync()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        sync()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best * 1e3


def row(name, ours, ref):
    print(f"{name:44s} dyntorch {ours:9.3f} ms   torch {ref:9.3f} ms   ratio {ours / ref:5.2f}x")


def main() -> None:
    if not dt.cuda.is_available():
        print("bench_gpu: no CUDA device (or CuPy missing): skipped")
        return
    import torch

    dsync, tsync = dt.cuda.synchronize, torch.cuda.synchronize
    print("device:", torch.cuda.get_device_name(0))

    n = 2048
    a = dt.randn(n, n, device="cuda", requires_grad=True)
    b = dt.randn(n, n, device="cuda", requires_grad=True)
    ta = torch.randn(n, n, device="cuda", requires_grad=True)
    tb = torch.randn(n, n, device="cuda", requires_grad=True)
    row(f"matmul {n}x{n} fwd+bwd (float32)",
        timed(lambda: (a @ b).sum().backward(), dsync),
        timed(lambda: (ta @ tb).sum().backward(), tsync))

    x = dt.randn(1 << 20, device="cuda", requires_grad=True)
    tx = torch.randn(1 << 20, device="cuda", requires_grad=True)

    def chain(v):
        y = v
        for _ in range(5):
            y = (y * 1.01).tanh()
        y.sum().backward()

    row("10-op elementwise chain fwd+bwd (1M)", timed(lambda: chain(x), dsync),
        timed(lambda: chain(tx), tsync))

    def mlp(lib, nn):
        lib.manual_seed(0)
        model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                              nn.Linear(1024, 10)).to("cuda")
        opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xb = lib.randn(512, 784, device="cuda")
        yb = lib.randint(0, 10, (512,), device="cuda")

        def step():
            loss = nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step

    row("MLP 784-1024-1024-10 train step (b=512)", timed(mlp(dt, dt.nn), dsync),
        timed(mlp(torch, torch.nn), tsync))


if __name__ == "__main__":
    sys.exit(main())
