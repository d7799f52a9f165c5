"""Core speed against torch 2.13.0 in the same process (CPU): the door and the engine.

Run: ``.venv/bin/python benchmarks/bench_core.py [--runs 3] [--quick]``.
Method (README.md): ratio of medians over interleaved rounds, quartile spread of the per-round
ratios, a NumPy floor (same math by hand) beside each case.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]  # this checkout's dyntorch, not an installed one
import dyntorch as dt  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover
    sys.exit("benchmarks need torch==2.13.0 (pip install torch==2.13.0)")

import _tape as tape  # noqa: E402
from _harness import case, parse_args  # noqa: E402


def tiny_op(args):
    a = dt.randn(4, 4, requires_grad=True)
    b = dt.randn(4, 4, requires_grad=True)
    ta = torch.randn(4, 4, requires_grad=True)
    tb = torch.randn(4, 4, requires_grad=True)
    na, nb = a.detach().numpy(), b.detach().numpy()
    case("a + b (4x4, requires grad)", lambda: a + b, lambda: ta + tb, lambda: na + nb,
         rounds=args.rounds, inner=2000, runs=args.runs, target=1.0)
    case("a * 0.5 (4x4, requires grad)", lambda: a * 0.5, lambda: ta * 0.5, lambda: na * 0.5,
         rounds=args.rounds, inner=2000, runs=args.runs)


def chain_forward(a, b):
    """Ten ops: tensor-tensor, tensor-scalar, relu, tanh, exp."""
    y = a * b
    y = y + a
    y = y * 0.5
    y = y.relu()
    y = y + 1.0
    y = y.tanh()
    y = y * b
    y = y.exp()
    y = y - a
    y = y * 0.5
    return y.sum()


def chain_floor(a, b, ga, gb):
    """chain_forward and its backward by hand in NumPy, gradients accumulated into ga, gb."""
    y1 = a * b
    y2 = y1 + a
    y3 = y2 * 0.5
    y4 = np.maximum(y3, 0)
    y5 = y4 + 1.0
    y6 = np.tanh(y5)
    y7 = y6 * b
    y8 = np.exp(y7)
    y9 = y8 - a
    y10 = y9 * 0.5
    y10.sum()
    g = np.full_like(a, 0.5)  # d(0.5 * y9)
    ga -= g  # y9 = y8 - a
    g = g * y8  # exp
    gb += g * y6
    g = g * b
    g = g * (1 - y6 * y6)
    g = g * (y3 > 0) * 0.5
    ga += g  # y2 = y1 + a
    ga += g * b
    gb += g * a


def chain(args):
    x = np.random.default_rng(0).standard_normal((2, 4, 4)).astype(np.float32)
    a, b = dt.tensor(x[0], requires_grad=True), dt.tensor(x[1], requires_grad=True)
    ta, tb = torch.tensor(x[0], requires_grad=True), torch.tensor(x[1], requires_grad=True)
    na, nb = x[0].copy(), x[1].copy()
    ga, gb = np.zeros_like(na), np.zeros_like(nb)
    va, vb = tape.Var(x[0].copy()), tape.Var(x[1].copy())
    chain_forward(a, b).backward()
    chain_forward(ta, tb).backward()
    chain_floor(na, nb, ga, gb)
    chain_forward(va, vb).backward()
    assert np.allclose(va.g, ta.grad.numpy(), atol=1e-5), "chain: the tape reference is wrong"
    assert np.allclose(a.grad.numpy(), ta.grad.numpy(), atol=1e-5), "chain: gradients differ"
    assert np.allclose(ga, ta.grad.numpy(), atol=1e-5), "chain: NumPy floor is wrong"

    case("10-op chain + sum + backward (4x4)", lambda: chain_forward(a, b).backward(),
         lambda: chain_forward(ta, tb).backward(), lambda: chain_floor(na, nb, ga, gb),
         rounds=args.rounds, inner=300, runs=args.runs, target=0.6,
         extra={"tape": lambda: chain_forward(va, vb).backward()})
    case("  of which forward", lambda: chain_forward(a, b), lambda: chain_forward(ta, tb), None,
         rounds=args.rounds, inner=300, runs=args.runs)


def matmul(args):
    x = np.random.default_rng(0).standard_normal((1024, 1024), dtype=np.float32)
    y = x.T.copy()
    a, b = dt.tensor(x, requires_grad=True), dt.tensor(y, requires_grad=True)
    ta, tb = torch.tensor(x, requires_grad=True), torch.tensor(y, requires_grad=True)
    ones = np.ones((1024, 1024), np.float32)

    def run(p, q):
        p.grad = q.grad = None
        (p @ q).sum().backward()

    def floor():
        (x @ y).sum()
        x_grad = ones @ y.T  # noqa: F841  (what backward computes, not kept)
        y_grad = x.T @ ones  # noqa: F841

    case("1024x1024 matmul fwd+bwd", lambda: run(a, b), lambda: run(ta, tb), floor,
         rounds=max(3, args.rounds // 2), inner=2, runs=args.runs, target=1.05)


def import_time():
    # as users import it: with bytecode caches (this machine sets PYTHONDONTWRITEBYTECODE,
    # which makes every import compile every module from source)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    code = "import time; t = time.perf_counter(); import dyntorch; print(time.perf_counter() - t)"
    runs = sorted(float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                       text=True, check=True, env=env).stdout)
                  for _ in range(5))[1:]
    s = runs[len(runs) // 2]
    print(f"{'import dyntorch (median of 4 after one warm-up)':46s} {s * 1e3:8.1f} ms   "
          f"(target < 200 ms: {'met' if s < 0.2 else 'MISSED'})")


if __name__ == "__main__":
    args = parse_args(doc=__doc__)
    print(f"threads: torch {torch.get_num_threads()} (default settings); "
          f"dyntorch from {os.path.dirname(dt.__file__)}", flush=True)
    for name, fn in (("tiny", tiny_op), ("chain", chain), ("matmul", matmul)):
        if args.only is None or args.only in name:
            fn(args)
    if args.only is None:
        import_time()
