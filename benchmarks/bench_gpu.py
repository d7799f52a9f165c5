"""GPU speed against torch on the same card: matmul, an elementwise chain, a training step.

Prints ratios dyntorch/torch (lower is better): the ratio of the medians over rounds that
alternate the two libraries (each round synchronised), with the quartile spread of the per-round
ratios (README.md, "Method"). Skips with a message where CUDA is absent.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dyntorch as dt  # noqa: E402  (this checkout's, not an installed one)


def _round(fn, sync, reps) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    sync()
    return (time.perf_counter() - t0) / reps * 1e3


def row(name, ours, ref, dsync, tsync, reps=20, rounds=9):
    for fn, sync in ((ours, dsync), (ref, tsync)):
        for _ in range(3):
            fn()
        sync()
    a, b = [], []
    for _ in range(rounds):
        a.append(_round(ours, dsync, reps))
        b.append(_round(ref, tsync, reps))
    ma, mb = statistics.median(a), statistics.median(b)
    q = statistics.quantiles([x / y for x, y in zip(a, b)], n=4)
    print(f"{name:44s} dyntorch {ma:9.3f} ms   torch {mb:9.3f} ms   ratio {ma / mb:5.2f}x "
          f"[{q[0]:.2f}-{q[2]:.2f}]")


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
    row(f"matmul {n}x{n} fwd+bwd (float32)", lambda: (a @ b).sum().backward(),
        lambda: (ta @ tb).sum().backward(), dsync, tsync)

    x = dt.randn(1 << 20, device="cuda", requires_grad=True)
    tx = torch.randn(1 << 20, device="cuda", requires_grad=True)

    def chain(v):
        y = v
        for _ in range(5):
            y = (y * 1.01).tanh()
        y.sum().backward()

    row("10-op elementwise chain fwd+bwd (1M)", lambda: chain(x), lambda: chain(tx), dsync,
        tsync)

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

    row("MLP 784-1024-1024-10 train step (b=512)", mlp(dt, dt.nn), mlp(torch, torch.nn), dsync,
        tsync)


if __name__ == "__main__":
    sys.exit(main())
