"""Benchmarks of the nn core hot paths (Linear, LayerNorm, GELU, softmax, cross-entropy,
BatchNorm, an MLP train step, module-call overhead) against torch 2.13 in the same process.

Run: ``.venv/bin/python benchmarks/bench_nn_core.py [--runs 3] [--quick]``. Method (README.md):
ratio of medians over interleaved rounds at default threads, with the quartile spread of the
per-round ratios; never the best round alone.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]  # this checkout's dyntorch, not an installed one
from _harness import case, parse_args  # noqa: E402

import dyntorch  # noqa: E402


def report(name: str, ours, ref, args, inner: int) -> list:
    return case(name, ours, ref, None, rounds=args.rounds, inner=inner, runs=args.runs)


def _pair(arr, grad=True):
    return dyntorch.tensor(arr, requires_grad=grad), torch.tensor(arr, requires_grad=grad)


def bench_ops(args, inner=10):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 512)).astype(np.float32)
    dx, tx = _pair(x)
    dw, tw = _pair(np.ones(512, np.float32))
    db, tb = _pair(np.zeros(512, np.float32))
    y = rng.integers(0, 512, 256)
    dy, ty = dyntorch.tensor(y), torch.tensor(y)
    xb = rng.standard_normal((32, 64, 16, 16)).astype(np.float32)
    dxb, txb = _pair(xb)
    dwb, twb = _pair(np.ones(64, np.float32))
    cases = {
        "layer_norm fwd+bwd (256,512)": lambda lib, x, w, b, *_: lib.nn.functional.layer_norm(
            x, (512,), w, b).sum().backward(),
        "gelu fwd+bwd (256,512)": lambda lib, x, *_: lib.nn.functional.gelu(x).sum().backward(),
        "gelu tanh fwd+bwd (256,512)": lambda lib, x, *_: lib.nn.functional.gelu(
            x, approximate="tanh").sum().backward(),
        "softmax fwd+bwd (256,512)": lambda lib, x, *_: lib.nn.functional.softmax(
            x, 1).sum().backward(),
        "cross_entropy fwd+bwd (256,512)": lambda lib, x, w, b, t, *_: (
            lib.nn.functional.cross_entropy(x, t).backward()),
        "batch_norm train fwd+bwd (32,64,16,16)": lambda lib, x, w, b, t, xb, wb: (
            lib.nn.functional.batch_norm(xb, None, None, wb, None, True).sum().backward()),
        "group_norm fwd+bwd (32,64,16,16), 8 groups": lambda lib, x, w, b, t, xb, wb: (
            lib.nn.functional.group_norm(xb, 8, wb, None).sum().backward()),
    }
    for name, fn in cases.items():
        report(name, lambda fn=fn: fn(dyntorch, dx, dw, db, dy, dxb, dwb),
               lambda fn=fn: fn(torch, tx, tw, tb, ty, txb, twb), args, inner)


def _mlp(lib):
    nn = lib.nn
    lib.manual_seed(0)
    return nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256), nn.GELU(),
                         nn.LayerNorm(256), nn.Linear(256, 10))


def bench_mlp(args, inner=10):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 256)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    runs = []
    for lib in (dyntorch, torch):
        m = _mlp(lib)
        X, Y = lib.tensor(x), lib.tensor(y)
        lf = lib.nn.CrossEntropyLoss()

        def step(m=m, X=X, Y=Y, lf=lf):
            loss = lf(m(X), Y)
            m.zero_grad()
            loss.backward()

        runs.append(step)
    report("MLP train step (64x256 -> 256 -> 256 -> 10)", runs[0], runs[1], args, inner)
    calls = []
    for lib in (dyntorch, torch):
        m = lib.nn.Sequential(*[lib.nn.Linear(8, 8) for _ in range(10)])
        X = lib.randn(4, 8)

        def fwd(m=m, X=X, lib=lib):
            with lib.no_grad():
                m(X)

        calls.append(fwd)
    report("10 tiny Linear layers forward (module-call overhead)", calls[0], calls[1], args,
           inner * 5)


def main(argv) -> None:
    args = parse_args(argv, __doc__, rounds=9)
    print(f"threads: torch {torch.get_num_threads()} (default settings); "
          f"dyntorch from {os.path.dirname(dyntorch.__file__)}", flush=True)
    bench_ops(args)
    bench_mlp(args)


if __name__ == "__main__":
    main(sys.argv[1:])
