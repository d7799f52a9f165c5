"""MLP training step, dyntorch vs torch: time per step and peak memory.

    .venv/bin/python benchmarks/bench_train.py [--runs 3] [--rounds 15] [--no-memory]

Model 784-256-256-10 (ReLU), batch 128, cross-entropy, SGD(lr=0.01, momentum=0.9), float32,
CPU. A step is ``zero_grad(); loss = ce(model(x), y); loss.backward(); opt.step()``.

Time (README.md, "Method"): both libraries and the NumPy floor (the same step by hand) in this
process, in interleaved rounds at default threads; the ratio of the medians with the quartile
spread of the per-round ratios, ``--runs 3`` for three runs. Target: step <= 1.0x torch.

Memory: each library runs in a fresh subprocess. The baseline is the resident set (RSS) after
importing the library, running one step of a tiny model (so one-time library set-up is not
counted) and making the input batch; the kernel's peak-RSS mark is then reset
(``/proc/self/clear_refs`` = 5) and the peak (``VmHWM``) after building the model and running
20 steps, minus the baseline, is the figure (model + gradients + optimizer state + activations
+ temporaries + allocator slack). For dyntorch the peak of ``tracemalloc`` (which sees every
NumPy allocation) over the same run is printed too.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

BATCH, SIZES = 128, (784, 256, 256, 10)


def make_step(lib_name: str):
    import numpy as np

    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y_np = rng.integers(0, SIZES[-1], BATCH)
    if lib_name == "torch":
        import torch as lib
    else:
        import dyntorch as lib
    nn = lib.nn
    lib.manual_seed(0)
    model = nn.Sequential(nn.Linear(SIZES[0], SIZES[1]), nn.ReLU(), nn.Linear(SIZES[1], SIZES[2]),
                          nn.ReLU(), nn.Linear(SIZES[2], SIZES[3]))
    opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = lib.tensor(x_np), lib.tensor(y_np)
    from _models import _train_step

    return _train_step(lib, model, opt, x, y)


def make_opt_step(lib_name: str, kind: str):
    """Only the optimizer update, on the MLP's parameter shapes with fixed gradients."""
    import numpy as np

    lib = __import__(lib_name)
    rng = np.random.default_rng(1)
    shapes = [(SIZES[i + 1], SIZES[i]) for i in range(3)] + [(SIZES[i + 1],) for i in range(3)]
    params = []
    for s in shapes:
        p = lib.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
        p.grad = lib.tensor(rng.standard_normal(s).astype(np.float32))
        params.append(p)
    if kind == "sgd":
        opt = lib.optim.SGD(params, lr=1e-3, momentum=0.9)
    else:
        opt = lib.optim.Adam(params, lr=1e-3)
    return opt.step


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def _warm_up_library(lib_name: str) -> None:
    """One step of a tiny model, so one-time library set-up (thread pools, kernels, caches)
    is in the baseline and not counted as the MLP's memory."""
    lib = __import__(lib_name)
    m = lib.nn.Linear(8, 4)
    o = lib.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    loss = lib.nn.functional.cross_entropy(m(lib.ones(2, 8)), lib.tensor([0, 1]))
    loss.backward()
    o.step()


def memory_child(lib_name: str) -> None:
    """Run in a subprocess: print a JSON line with the peak memory figures."""
    import tracemalloc

    import numpy as np

    if lib_name == "torch":
        import torch  # noqa: F401
    else:
        import dyntorch  # noqa: F401
        import dyntorch.nn  # noqa: F401
    np.random.default_rng(0).standard_normal((BATCH, SIZES[0]))
    _warm_up_library(lib_name)
    base = _rss_kb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak-RSS mark to the current RSS
        resettable = True
    except OSError:
        resettable = False
    tracemalloc.start()
    step = make_step(lib_name)
    for _ in range(20):
        step()
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak = _rss_kb("VmHWM")
    print(json.dumps({"rss_peak_delta_mb": (peak - base) / 1024 if resettable else None,
                      "tracemalloc_peak_mb": traced / 2**20}))


def measure_memory(lib_name: str) -> dict:
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--memory-child", lib_name],
                         capture_output=True, text=True, cwd=ROOT, env=os.environ.copy())
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-child", default=None)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    if args.quick:
        args.rounds = 5
    import torch

    import dyntorch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _models
    from _harness import case

    print(f"MLP 784-256-256-10, batch {BATCH}, SGD momentum, float32, CPU "
          f"(torch threads: {torch.get_num_threads()}, default settings)")
    ours, ref, floor = _models.checked("MLP", _models.make_mlp(dyntorch, torch, BATCH, SIZES))
    case("MLP train step", ours, ref, floor, rounds=args.rounds, inner=10, runs=args.runs,
         target=1.0)
    for kind in ("sgd", "adam"):
        fns = [make_opt_step(n, kind) for n in ("dyntorch", "torch")]
        case(f"{kind} step only", *fns, None, rounds=args.rounds, inner=20, runs=args.runs)
    if args.no_memory:
        return
    md, mt = measure_memory("dyntorch"), measure_memory("torch")
    if md["rss_peak_delta_mb"] is not None:
        print(f"  peak memory  dyntorch {md['rss_peak_delta_mb']:7.2f} MB   torch "
              f"{mt['rss_peak_delta_mb']:7.2f} MB   ratio "
              f"{md['rss_peak_delta_mb'] / max(mt['rss_peak_delta_mb'], 1e-9):5.2f}x "
              "(RSS high-water mark above the post-import baseline, fresh process each)")
    print(f"  dyntorch tracemalloc peak (all NumPy allocations): "
          f"{md['tracemalloc_peak_mb']:.2f} MB")


if __name__ == "__main__":
    main()
