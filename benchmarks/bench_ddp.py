"""Data parallelism over MPI: all-reduce bandwidth and the MLP step on 1 and 2 ranks.

``python benchmarks/bench_ddp.py`` starts itself under ``mpiexec -n 2`` (and ``-n 1``) and
prints:
- ``dyntorch.distributed.all_reduce`` bandwidth for a few sizes, beside mpi4py's own
  ``Allreduce`` on the same buffers (the difference is dyntorch's agreement check and
  bookkeeping);
- the SGD-with-momentum step of the MLP 784-256-256-10 on a global batch of 256: one rank
  with the whole batch, against two ranks with 128 each under DistributedDataParallel.

On a machine with few cores shared with other work, the 2-rank figure mostly shows the cost
of the gradient all-reduce, not a speed-up; OPENBLAS_NUM_THREADS=1 is set for both runs so
that they use one core per rank.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = [1 << 10, 1 << 16, 1 << 20, 1 << 24]  # bytes
GLOBAL_BATCH = 256


def _median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _bandwidth(dist, MPI) -> None:
    import numpy as np

    import dyntorch

    n = dist.get_world_size()
    rows = []
    for nbytes in SIZES:
        t = dyntorch.ones(nbytes // 4)
        reps = 50 if nbytes <= 1 << 20 else 8
        for _ in range(3):
            dist.all_reduce(t)
        dist.barrier()
        ours = _median_time(lambda t=t: dist.all_reduce(t), reps)
        buf = np.ones(nbytes // 4, dtype=np.float32)
        MPI.COMM_WORLD.Barrier()
        raw = _median_time(lambda b=buf: MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, b), reps)
        rows.append((nbytes, ours, raw))
    if dist.get_rank() == 0:
        print(f"all_reduce (SUM, float32) over {n} ranks: time, algorithm bandwidth "
              "(bytes / time)")
        print(f"  {'size':>8}  {'dyntorch':>10} {'GB/s':>7}   {'mpi4py':>10} {'GB/s':>7}")
        for nbytes, ours, raw in rows:
            size = f"{nbytes >> 20} MiB" if nbytes >= 1 << 20 else f"{nbytes >> 10} KiB"
            print(f"  {size:>8}  {ours * 1e6:>8.1f}us {nbytes / ours / 1e9:>7.3f}   "
                  f"{raw * 1e6:>8.1f}us {nbytes / raw / 1e9:>7.3f}")


def _step_time(dist) -> float:
    import numpy as np

    import dyntorch
    from dyntorch import nn, optim
    from dyntorch.nn.parallel import DistributedDataParallel as DDP

    n, r = dist.get_world_size(), dist.get_rank()
    dyntorch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                        nn.Linear(256, 10))
    model = DDP(mlp) if n > 1 else mlp
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(r)
    per = GLOBAL_BATCH // n
    x = dyntorch.tensor(rng.standard_normal((per, 784)).astype(np.float32))
    y = dyntorch.tensor(rng.integers(0, 10, per))

    def step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    dist.barrier()
    t = _median_time(step, 20)
    worst = dyntorch.tensor([t], dtype=dyntorch.float64)
    dist.all_reduce(worst, op=dist.ReduceOp.MAX)  # a step is as slow as the slowest rank
    return float(worst.item())


def worker(bandwidth: bool) -> None:
    from mpi4py import MPI

    import dyntorch.distributed as dist

    dist.init_process_group("mpi")
    if bandwidth and dist.get_world_size() > 1:
        _bandwidth(dist, MPI)
    t = _step_time(dist)
    if dist.get_rank() == 0:
        print(f"STEP {dist.get_world_size()} {t}")
    dist.destroy_process_group()


def main() -> None:
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    mpiexec = here if os.path.exists(here) else shutil.which("mpiexec")
    if mpiexec is None:
        sys.exit("bench_ddp: mpiexec not found; pip install 'dyntorch[distributed]'")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    steps = {}
    for n in (2, 1):
        out = subprocess.run([mpiexec, "-n", str(n), sys.executable, __file__, "--worker"],
                             env=env, capture_output=True, text=True, timeout=300, check=True)
        for line in out.stdout.splitlines():
            if line.startswith("STEP "):
                _, ranks, secs = line.split()
                steps[int(ranks)] = float(secs)
            else:
                print(line)
    print(f"MLP 784-256-256-10 SGD(momentum) step, global batch {GLOBAL_BATCH}:")
    print(f"  1 rank  (batch {GLOBAL_BATCH}):            {steps[1] * 1e3:7.2f} ms")
    print(f"  2 ranks (batch {GLOBAL_BATCH // 2} each, DDP): {steps[2] * 1e3:7.2f} ms  "
          f"({steps[1] / steps[2]:.2f}x)")


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker(bandwidth=True)
    else:
        main()
