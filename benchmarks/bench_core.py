"""Core speed against torch 2.13.0 in the same process (CPU). Prints ratios dyntorch/torch.

Run: `make bench` or `.venv/bin/python benchmarks/bench_core.py`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import timeit

import numpy as np

import dyntorch as dt

try:
    import torch
except ImportError:  # pragma: no cover
    sys.exit("benchmarks need torch==2.13.0 (pip install torch==2.13.0)")



def best(fn, number, repeat=30) -> float:
    """Best mean time per call in microseconds over `repeat` runs of `number` calls.

    Many short runs rather than a few long ones: on a shared machine the best short run is
    the one least disturbed by neighbours, and that is the figure that compares.
    """
    for _ in range(min(number, 1000)):  # warm up (the interpreter specialises hot code)
        fn()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def pair(ours, ref, number, rounds=10) -> tuple[float, float]:
    """`best` of each side, the two measured in alternating rounds so that both see the
    same machine; the best round of each is kept."""
    a = b = float("inf")
    for _ in range(rounds):
        a = min(a, best(ours, number, repeat=5))
        b = min(b, best(ref, number, repeat=5))
    return a, b


def row(name, ours, ref, target=None):
    ratio = ours / ref
    tgt = f"  (target <= {target:.2f}x: {'ok' if ratio <= target else 'MISSED'})" if target else ""
    print(f"{name:42s} dyntorch {ours:10.1f} us   torch {ref:10.1f} us   ratio {ratio:5.2f}x{tgt}")


def tiny_op():
    a = dt.randn(4, 4, requires_grad=True)
    b = dt.randn(4, 4, requires_grad=True)
    ta = torch.randn(4, 4, requires_grad=True)
    tb = torch.randn(4, 4, requires_grad=True)
    row("a + b (4x4, requires grad)", *pair(lambda: a + b, lambda: ta + tb, 4000), 1.0)


def chain():
    def forward(a, b):
        y = a
        for _ in range(5):
            y = (y * b).tanh()
        return y.sum()

    def run(a, b):
        forward(a, b).backward()

    a = dt.randn(4, 4, requires_grad=True)
    b = dt.randn(4, 4, requires_grad=True)
    ta = torch.randn(4, 4, requires_grad=True)
    tb = torch.randn(4, 4, requires_grad=True)
    ours, ref = pair(lambda: run(a, b), lambda: run(ta, tb), 300)
    row("10-op chain + sum + backward (4x4)", ours, ref, 0.6)
    fo, fr = pair(lambda: forward(a, b), lambda: forward(ta, tb), 300)
    row("  of which forward", fo, fr)
    row("  of which backward (by difference)", ours - fo, ref - fr)


def matmul():
    x = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    a = dt.tensor(x, requires_grad=True)
    b = dt.tensor(x.T.copy(), requires_grad=True)
    ta = torch.tensor(x, requires_grad=True)
    tb = torch.tensor(x.T.copy(), requires_grad=True)

    def run(p, q):
        (p @ q).sum().backward()

    row("1024x1024 matmul fwd+bwd", best(lambda: run(a, b), 3, 3),
        best(lambda: run(ta, tb), 3, 3), 1.05)


def import_time():
    # as users import it: with bytecode caches (this machine sets PYTHONDONTWRITEBYTECODE,
    # which makes every import compile every module from source)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    code = "import time; t = time.perf_counter(); import dyntorch; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True, env=env).stdout) for _ in range(4)][1:]
    s = min(runs)
    print(f"{'import dyntorch':42s} {s * 1e3:8.1f} ms   (target < 200 ms: "
          f"{'ok' if s < 0.2 else 'MISSED'})")


if __name__ == "__main__":
    tiny_op()
    chain()
    if hasattr(dt.Tensor, "__matmul__"):
        matmul()
    import_time()
