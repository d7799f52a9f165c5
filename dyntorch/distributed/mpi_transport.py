"""Collectives over MPI (mpi4py): non-blocking calls waited on with a timeout, while
watching for another rank's failure notice, so that no rank waits forever.

Arrays here are contiguous NumPy arrays; staging device arrays through host memory is the
process group's business.
"""
from __future__ import annotations

import sys
import time
import traceback

import numpy as np

from .errors import DistPeerError, DistTimeoutError
from .reduce_op import ReduceOp

__all__ = ["MPITransport"]

_FAULT_TAG = 7177  # any tag: the notices travel on a communicator of their own
_SPIN_S = 0.005  # poll without sleeping for this long
_LOOK_EVERY_S = 0.002  # how often a waiting rank looks for failure notices and the clock


class MPITransport:
    """One MPI communicator for data and a duplicate that carries failure notices."""

    name = "mpi"

    def __init__(self, MPI, comm, timeout_s: float):
        self.MPI = MPI
        self.comm = comm.Dup()
        self.faults = comm.Dup()
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.timeout_s = float(timeout_s)
        self._pending_notices: list = []  # failure notices in flight, kept alive until abort
        self._ops = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD,
                     ReduceOp.MIN: MPI.MIN, ReduceOp.MAX: MPI.MAX}

    # ---------------------------------------------------------------- starting collectives
    def all_reduce(self, buf: np.ndarray, op: ReduceOp):
        return [self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self._ops[op])]

    def broadcast(self, buf: np.ndarray, src: int):
        return [self.comm.Ibcast(buf, root=src)]

    def all_gather(self, send: np.ndarray, recv: np.ndarray):
        return [self.comm.Iallgather(send, recv)]

    def reduce_scatter(self, send: np.ndarray, recv: np.ndarray, op: ReduceOp):
        return [self.comm.Ireduce_scatter_block(send, recv, op=self._ops[op])]

    def barrier(self):
        return [self.comm.Ibarrier()]

    # ---------------------------------------------------------------- waiting
    def test(self, reqs) -> bool:
        return all(r.Test() for r in reqs)

    def wait(self, reqs, what: str, timeout_s: float | None = None) -> None:
        """Wait for ``reqs``; raise if another rank failed or ``timeout_s`` passes."""
        limit = self.timeout_s if timeout_s is None else float(timeout_s)
        start = time.monotonic()
        next_look = start + _LOOK_EVERY_S
        for r in reqs:
            while not r.Test():
                now = time.monotonic()
                # poll hard while a collective is likely to finish soon, as MPI's own blocking
                # calls do (bench_ddp, 1 MiB all-reduce on the shared 2-core machine: 1.2 ms
                # when sleeping after 64 polls, 0.39 ms like this), then sleep a little
                # between polls so that a slow peer gets the CPU
                if now - start > _SPIN_S:
                    time.sleep(min(1e-3, (now - start) * 0.05))
                if now >= next_look:
                    next_look = now + _LOOK_EVERY_S
                    self.check_faults()
                    if now - start > limit:
                        raise DistTimeoutError(
                            f"{what} on rank {self.rank} timed out after {limit:g} s waiting "
                            f"for the other ranks of {self.size}; one of them is stuck or "
                            f"never called {what} (set a longer timeout with "
                            "init_process_group(timeout=...))")

    def check_faults(self) -> None:
        """Raise :class:`DistPeerError` if another rank has sent a failure notice."""
        st = self.MPI.Status()
        if self.faults.Iprobe(source=self.MPI.ANY_SOURCE, tag=_FAULT_TAG, status=st):
            src = st.Get_source()
            msg = self.faults.recv(source=src, tag=_FAULT_TAG)
            raise DistPeerError(src, msg, self.rank)

    # ---------------------------------------------------------------- failures
    def notify_failure(self, message: str) -> None:
        """Tell every other rank that this one failed (best effort, never blocks)."""
        reqs = []
        for dst in range(self.size):
            if dst != self.rank:
                try:
                    reqs.append(self.faults.isend(message, dest=dst, tag=_FAULT_TAG))
                except Exception:  # the process is going down anyway
                    pass
        self._pending_notices = reqs

    def abort(self, code: int = 1) -> None:
        sys.stderr.flush()
        sys.stdout.flush()
        self.MPI.COMM_WORLD.Abort(code)

    def close(self) -> None:
        for c in (self.comm, self.faults):
            try:
                c.Free()
            except Exception:  # MPI may be finalized already at exit
                pass


def describe_exception(rank: int, exc: BaseException) -> str:
    """A one-line summary plus the last frame: what the other ranks are told."""
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" (at {tb[-1].filename}:{tb[-1].lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"
