"""Peak memory of one big convolution, each run in a fresh child process.

    .venv/bin/python benchmarks/bench_conv_memory.py [--size 1088] [--backward]
        [--checkout PATH ...] [--torch]

The layer is fast_neural_style's last one: a 9x9 convolution from 32 channels to 3 over a
SIZE x SIZE image (batch 1, float32, padding 4). Its full im2col columns take
32*81*SIZE^2*4 bytes (12 GB at 1088); ``dyntorch.ops.conv.SCRATCH_BYTES`` bounds them. Each
checkout (default: this one) and, with ``--torch``, torch itself runs in its own child, whose
peak resident set (``ru_maxrss``) is printed beside the size of the tensors the computation
must hold anyway.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = textwrap.dedent("""
    import resource, sys, time
    import numpy as np
    lib = __import__(sys.argv[1])
    size, backward = int(sys.argv[2]), sys.argv[3] == "1"
    x = lib.tensor(np.ones((1, 32, size, size), np.float32), requires_grad=backward)
    w = lib.tensor(np.full((3, 32, 9, 9), 0.01, np.float32), requires_grad=backward)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    y = lib.nn.functional.conv2d(x, w, padding=4)
    if backward:
        y.sum().backward()
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(base / 1024, peak / 1024, dt)
""")


def run(label: str, cwd: str, lib: str, size: int, backward: bool) -> None:
    out = subprocess.run([sys.executable, "-c", CHILD, lib, str(size), "1" if backward else "0"],
                         cwd=cwd, capture_output=True, text=True)
    if out.returncode:
        print(f"{label:>40}: failed: {out.stderr.strip().splitlines()[-1:]}")
        return
    base, peak, dt = map(float, out.stdout.split())
    print(f"{label:>40}: peak RSS {peak:8.0f} MiB (after imports and inputs {base:6.0f} MiB), "
          f"{dt:6.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=1088)
    ap.add_argument("--backward", action="store_true", help="also run backward")
    ap.add_argument("--checkout", action="append", help="a dyntorch checkout (repeatable)")
    ap.add_argument("--torch", action="store_true", help="also run torch")
    a = ap.parse_args()
    s = a.size
    print(f"9x9 conv 32->3 over 1x32x{s}x{s} float32: input {32 * s * s * 4 / 2**20:.0f} MiB, "
          f"full im2col {32 * 81 * s * s * 4 / 2**20:.0f} MiB"
          + (", forward+backward" if a.backward else ", forward"))
    for c in a.checkout or [os.path.dirname(HERE)]:
        run(c, c, "dyntorch", s, a.backward)
    if a.torch:
        run("torch", HERE, "torch", s, a.backward)


if __name__ == "__main__":
    main()
