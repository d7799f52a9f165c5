"""Training steps and the imaging/sequence hot paths against torch 2.13 in the same process (CPU).

Run: ``.venv/bin/python benchmarks/bench_nn.py [--runs 3] [--quick] [--only NAME]``.
Method (README.md): ratio of medians over interleaved rounds at default threads, quartile
spread of the per-round ratios, the NumPy floor (same step by hand) beside the training steps.
Targets: LeNet step <= 1.3x, char transformer step <= 1.15x, ResNet-18 step <= 2.0x torch.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]  # this checkout's dyntorch, not an installed one
import _models  # noqa: E402
from _harness import case, parse_args  # noqa: E402

import dyntorch  # noqa: E402


def report(name: str, ours, ref, args, inner: int, floor=None, target=None):
    return case(name, ours, ref, floor, rounds=args.rounds, inner=inner, runs=args.runs,
                target=target)


def bench_conv2d(args, inner=3):
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

    report("conv2d fwd+bwd (32,16,28,28)x(32,16,3,3) pad=1", ours, ref, args, inner)

    def ours_f():
        with dyntorch.no_grad():
            F.conv2d(dx, dw, padding=1)

    def ref_f():
        with torch.no_grad():
            TF.conv2d(tx, tw, padding=1)

    report("conv2d forward only", ours_f, ref_f, args, inner)


def bench_steps(args):
    for name, make, inner, target in (
            ("LeNet train step (batch 64, SGD)", _models.make_lenet, 3, 1.3),
            ("ResNet-18 train step (batch 16, 64x64, SGD)", _models.make_resnet18, 1, 2.0),
            ("char transformer train step (AdamW)", _models.make_char_gpt, 2, 1.15)):
        if args.only is None or args.only.lower() in name.lower():
            ours, ref, floor = _models.checked(name, make(dyntorch, torch))
            report(name, ours, ref, args, inner, floor, target)


def bench_lstm(args, kind="LSTM", inner=2):
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

    report(f"{kind}(64,128) seq 35 batch 16 fwd+bwd", ours, ref, args, inner)


def bench_encoder(args, inner=3):
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

    report("TransformerEncoder(64, 4 heads, 2 layers) batch 16 seq 32 fwd+bwd", ours, ref, args,
           inner)


def main(argv) -> None:
    args = parse_args(argv, __doc__, rounds=9)
    print(f"threads: torch {torch.get_num_threads()} (default settings); "
          f"dyntorch from {os.path.dirname(dyntorch.__file__)}", flush=True)
    bench_steps(args)
    if args.only is None:
        bench_conv2d(args)
        bench_lstm(args)
        bench_lstm(args, "GRU")
        bench_encoder(args)


if __name__ == "__main__":
    main(sys.argv[1:])
