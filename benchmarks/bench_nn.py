"""Benchmarks of the imaging and sequence hot paths against torch 2.13 in the same process (CPU).

Run: ``.venv/bin/python benchmarks/bench_nn.py [--quick] [--threads N]``. Prints one line per case:
``name: dyntorch X ms, torch Y ms, ratio R`` (median of repeated timings, after warm-up).
Targets: conv2d forward+backward <= 2.0x torch; LeNet train step <= 1.5x torch.
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import torch

import dyntorch


def _time(fn, reps: int, inner: int) -> float:
    for _ in range(2):
        fn()
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        out.append((time.perf_counter() - t) / inner)
    return statistics.median(out) * 1e3


def report(name: str, ours, ref, reps: int, inner: int) -> float:
    # interleave so load from other processes hits both sides alike
    a, b = [], []
    for _ in range(reps):
        a.append(_time(ours, 1, inner))
        b.append(_time(ref, 1, inner))
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"{name}: dyntorch {ma:.2f} ms, torch {mb:.2f} ms, ratio {ma / mb:.2f}", flush=True)
    return ma / mb


def bench_conv2d(reps, inner):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 16, 28, 28)).astype(np.float32)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    g = rng.standard_normal((32, 32, 28, 28)).astype(np.float32)
    F, TF = dyntorch.nn.functional, torch.nn.functional
    dx, dw = dyntorch.tensor(x, requires_grad=True), dyntorch.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    dg, tg = dyntorch.tensor(g), torch.tensor(g)

    def ours():
        dx.grad = dw.grad = None
        F.conv2d(dx, dw, padding=1).backward(dg)

    def ref():
        tx.grad = tw.grad = None
        TF.conv2d(tx, tw, padding=1).backward(tg)

    report("conv2d fwd+bwd (32,16,28,28)x(32,16,3,3) pad=1", ours, ref, reps, inner)

    def ours_f():
        with dyntorch.no_grad():
            F.conv2d(dx, dw, padding=1)

    def ref_f():
        with torch.no_grad():
            TF.conv2d(tx, tw, padding=1)

    report("conv2d forward only", ours_f, ref_f, reps, inner)


def _lenet(lib):
    nn = lib.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def bench_lenet(reps, inner):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    ours_net, ref_net = _lenet(dyntorch), _lenet(torch)
    ours_net.load_state_dict({k: dyntorch.tensor(v.numpy())
                              for k, v in ref_net.state_dict().items()})
    o_opt = dyntorch.optim.SGD(ours_net.parameters(), lr=0.01, momentum=0.9)
    t_opt = torch.optim.SGD(ref_net.parameters(), lr=0.01, momentum=0.9)
    ox, oy = dyntorch.tensor(x), dyntorch.tensor(y)
    tx, ty = torch.tensor(x), torch.tensor(y)

    def ours():
        o_opt.zero_grad()
        dyntorch.nn.functional.cross_entropy(ours_net(ox), oy).backward()
        o_opt.step()

    def ref():
        t_opt.zero_grad()
        torch.nn.functional.cross_entropy(ref_net(tx), ty).backward()
        t_opt.step()

    report("LeNet train step (batch 64, SGD)", ours, ref, reps, inner)


def bench_lstm(reps, inner, kind="LSTM"):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((35, 16, 64)).astype(np.float32)
    o, t = getattr(dyntorch.nn, kind)(64, 128), getattr(torch.nn, kind)(64, 128)
    o.load_state_dict({k: dyntorch.tensor(v.numpy()) for k, v in t.state_dict().items()})
    ox, tx = dyntorch.tensor(x), torch.tensor(x)

    def ours():
        o.zero_grad()
        o(ox)[0].sum().backward()

    def ref():
        t.zero_grad()
        t(tx)[0].sum().backward()

    report(f"{kind}(64,128) seq 35 batch 16 fwd+bwd", ours, ref, reps, max(1, inner // 2))


def bench_encoder(reps, inner):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 32, 64)).astype(np.float32)
    mk = lambda lib: lib.nn.TransformerEncoder(  # noqa: E731
        lib.nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True), 2)
    o, t = mk(dyntorch), mk(torch)
    o.load_state_dict({k: dyntorch.tensor(v.numpy()) for k, v in t.state_dict().items()})
    ox, tx = dyntorch.tensor(x), torch.tensor(x)

    def ours():
        o.zero_grad()
        o(ox).sum().backward()

    def ref():
        t.zero_grad()
        t(tx).sum().backward()

    report("TransformerEncoder(64, 4 heads, 2 layers) batch 16 seq 32 fwd+bwd", ours, ref, reps,
           inner)


def main(argv) -> None:
    quick = "--quick" in argv
    reps, inner = (3, 3) if quick else (7, 5)
    if "--threads" in argv:  # same thread count for torch and NumPy's BLAS (fair under load)
        n = int(argv[argv.index("--threads") + 1])
        torch.set_num_threads(n)
        try:
            import threadpoolctl

            threadpoolctl.threadpool_limits(n, "blas")
        except ImportError:
            print("threadpoolctl missing: NumPy's BLAS threads are not limited")
    print(f"threads: torch {torch.get_num_threads()}", flush=True)
    bench_conv2d(reps, inner)
    bench_lenet(reps, inner)
    bench_lstm(reps, inner)
    bench_lstm(reps, inner, "GRU")
    bench_encoder(reps, inner)


if __name__ == "__main__":
    main(sys.argv[1:])
