"""Before/after of a change, in one process: this checkout's dyntorch against another one.

    .venv/bin/python benchmarks/ab.py /path/to/other/checkout [--case chain|mlp|lenet|gpt|resnet
        |layer_norm|gelu|softmax|cross_entropy|batch_norm|group_norm|max_pool|linear
        |conv2d|conv2d_s2] [--rounds 11]

The other checkout's ``dyntorch`` is imported a second time under the name ``dyntorch_other``
(its imports are relative, so the two copies do not mix), and the two run in alternating rounds
with torch as a third side. Times are process CPU time with one BLAS thread: on a machine
shared with other work this is the steadiest before/after figure (a wall-clock ratio against
torch at default threads, as the other scripts report, moves by tens of percent there). It
answers "did my change help?"; the ``bench_*.py`` scripts answer "how do we compare?".
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

CASES = {"chain": None, "mlp": "make_mlp", "lenet": "make_lenet", "gpt": "make_char_gpt",
         "resnet": "make_resnet18"}
# single ops, forward + backward, on bench_nn_core.py's shapes
OPS = {
    "layer_norm": lambda lib, x, w, b, *_: lib.nn.functional.layer_norm(
        x, (512,), w, b).sum().backward(),
    "gelu": lambda lib, x, *_: lib.nn.functional.gelu(x).sum().backward(),
    "gelu_tanh": lambda lib, x, *_: lib.nn.functional.gelu(x, approximate="tanh").sum()
    .backward(),
    "softmax": lambda lib, x, *_: lib.nn.functional.softmax(x, 1).sum().backward(),
    "cross_entropy": lambda lib, x, w, b, t, *_: lib.nn.functional.cross_entropy(x, t)
    .backward(),
    "batch_norm": lambda lib, x, w, b, t, xb, wb, *_: lib.nn.functional.batch_norm(
        xb, None, None, wb, None, True).sum().backward(),
    "group_norm": lambda lib, x, w, b, t, xb, wb, *_: lib.nn.functional.group_norm(
        xb, 8, wb, None).sum().backward(),
    "max_pool": lambda lib, x, w, b, t, xb, *_: lib.nn.functional.max_pool2d(
        xb, 2).sum().backward(),
    "linear": lambda lib, x, w, b, t, xb, wb, wl, bl: lib.nn.functional.linear(
        x, wl, bl).sum().backward(),
}
# convolutions fwd+bwd: bench_nn.py's conv2d case, and the same with stride 2 (whose input
# gradient is a col2im scatter rather than a convolution)
CONV_OPS = {"conv2d": 1, "conv2d_s2": 2}


def _conv_case(lib, name):
    import numpy as np

    rng = np.random.default_rng(0)
    x = lib.tensor(rng.standard_normal((32, 16, 28, 28)).astype(np.float32), requires_grad=True)
    w = lib.tensor(rng.standard_normal((32, 16, 3, 3)).astype(np.float32) * 0.1,
                   requires_grad=True)
    s = CONV_OPS[name]
    g = lib.ones(lib.nn.functional.conv2d(x, w, padding=1, stride=s).shape)
    return lambda: lib.nn.functional.conv2d(x, w, padding=1, stride=s).backward(g)


def _op_case(lib, name):
    import numpy as np

    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((256, 512)).astype(np.float32), np.ones(512, np.float32),
              np.zeros(512, np.float32)]
    ts = [lib.tensor(a, requires_grad=True) for a in arrays]
    t = lib.tensor(rng.integers(0, 512, 256))
    xb = lib.tensor(rng.standard_normal((32, 64, 16, 16)).astype(np.float32),
                    requires_grad=True)
    wb = lib.tensor(np.ones(64, np.float32), requires_grad=True)
    wl = lib.tensor(rng.standard_normal((256, 512)).astype(np.float32) * 0.05,
                    requires_grad=True)
    bl = lib.tensor(np.zeros(256, np.float32), requires_grad=True)
    fn = OPS[name]
    return lambda: fn(lib, *ts, t, xb, wb, wl, bl)


def _import_other(path: str):
    link_dir = tempfile.mkdtemp(prefix="dyntorch_ab_")
    os.symlink(os.path.join(os.path.abspath(path), "dyntorch"),
               os.path.join(link_dir, "dyntorch_other"))
    sys.path.insert(0, link_dir)
    import dyntorch_other

    return dyntorch_other


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("other", help="a checkout of dyntorch (the 'before')")
    ap.add_argument("--case", choices=sorted(CASES) + sorted(OPS) + sorted(CONV_OPS),
                    default="chain")
    ap.add_argument("--rounds", type=int, default=11)
    args = ap.parse_args()
    import torch

    import dyntorch

    torch.set_num_threads(1)
    other = _import_other(args.other)
    if args.case == "chain":
        from bench_core import chain_forward

        def make(lib):
            a, b = lib.randn(4, 4, requires_grad=True), lib.randn(4, 4, requires_grad=True)
            return lambda: chain_forward(a, b).backward()

        sides = {"before": make(other), "after": make(dyntorch), "torch": make(torch)}
        inner = 300
    elif args.case in OPS:
        sides = {"before": _op_case(other, args.case), "after": _op_case(dyntorch, args.case),
                 "torch": _op_case(torch, args.case)}
        inner = 10
    elif args.case in CONV_OPS:
        sides = {k: _conv_case(lib, args.case)
                 for k, lib in (("before", other), ("after", dyntorch), ("torch", torch))}
        inner = 3
    else:
        import _models

        mk = getattr(_models, CASES[args.case])
        before, ref, _ = mk(other, torch)
        after, _, _ = mk(dyntorch, torch)
        sides = {"before": before, "after": after, "torch": ref}
        inner = 1 if args.case == "resnet" else 3
    for fn in sides.values():
        fn()
        fn()
    res: dict = {k: [] for k in sides}
    order = list(sides)
    for r in range(args.rounds):
        for k in (order if r % 2 == 0 else order[::-1]):
            t0 = time.process_time()
            for _ in range(inner):
                sides[k]()
            res[k].append((time.process_time() - t0) / inner)
    m = {k: statistics.median(v) for k, v in res.items()}
    print(f"{args.case}: before {m['before'] * 1e3:.3f} ms, after {m['after'] * 1e3:.3f} ms, "
          f"torch (1 thread) {m['torch'] * 1e3:.3f} ms; after/before {m['after'] / m['before']:.3f}"
          f", before/torch {m['before'] / m['torch']:.2f}, after/torch "
          f"{m['after'] / m['torch']:.2f} (medians of {args.rounds} rounds, process time)")


if __name__ == "__main__":
    main()
