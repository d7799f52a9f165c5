"""Collectives on GPU arrays through NCCL (CuPy's ``cupy.cuda.nccl``), the communicator's
unique id sent from rank 0 over MPI, as ChainerMN did.

Not exercised by the CPU test suite (no GPU here); marked ``cuda`` in the tests.
"""
from __future__ import annotations

import time

from .errors import DistTimeoutError
from .reduce_op import ReduceOp

__all__ = ["NCCLTransport", "nccl_available"]


def nccl_available() -> bool:
    """Is CuPy installed with its NCCL bindings?"""
    try:
        from cupy.cuda import nccl
    except Exception:  # CuPy missing or built without NCCL
        return False
    return bool(getattr(nccl, "available", True))


class NCCLTransport:
    """NCCL collectives on CuPy arrays, ordered on the current CUDA stream.

    Waiting polls a CUDA event while watching ``mpi`` (the :class:`MPITransport` of the same
    ranks) for failure notices, so a failed rank ends the others here too.
    """

    name = "nccl"

    def __init__(self, mpi, device_index: int):
        import cupy
        from cupy.cuda import nccl

        self.cupy = cupy
        self.nccl = nccl
        self.mpi = mpi
        self.rank, self.size = mpi.rank, mpi.size
        uid = nccl.get_unique_id() if mpi.rank == 0 else None
        uid = mpi.comm.bcast(uid, root=0)
        with cupy.cuda.Device(device_index):
            self.comm = nccl.NcclCommunicator(mpi.size, uid, mpi.rank)
        self._types = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32,
                       "float64": nccl.NCCL_FLOAT64, "int32": nccl.NCCL_INT32,
                       "int64": nccl.NCCL_INT64, "uint8": nccl.NCCL_UINT8,
                       "int8": nccl.NCCL_INT8}
        self._ops = {ReduceOp.SUM: nccl.NCCL_SUM, ReduceOp.AVG: nccl.NCCL_SUM,
                     ReduceOp.PRODUCT: nccl.NCCL_PROD, ReduceOp.MIN: nccl.NCCL_MIN,
                     ReduceOp.MAX: nccl.NCCL_MAX}

    def supports(self, arr) -> bool:
        return isinstance(arr, self.cupy.ndarray) and arr.dtype.name in self._types

    def _stream(self) -> int:
        return self.cupy.cuda.get_current_stream().ptr

    def _event(self):
        ev = self.cupy.cuda.Event(disable_timing=True)
        ev.record()
        return [ev]

    def all_reduce(self, buf, op: ReduceOp):
        self.comm.allReduce(buf.data.ptr, buf.data.ptr, buf.size, self._types[buf.dtype.name],
                            self._ops[op], self._stream())
        return self._event()

    def broadcast(self, buf, src: int):
        self.comm.bcast(buf.data.ptr, buf.size, self._types[buf.dtype.name], src, self._stream())
        return self._event()

    def all_gather(self, send, recv):
        self.comm.allGather(send.data.ptr, recv.data.ptr, send.size,
                            self._types[send.dtype.name], self._stream())
        return self._event()

    def reduce_scatter(self, send, recv, op: ReduceOp):
        self.comm.reduceScatter(send.data.ptr, recv.data.ptr, recv.size,
                                self._types[send.dtype.name], self._ops[op], self._stream())
        return self._event()

    def test(self, events) -> bool:
        return all(e.done for e in events)

    def wait(self, events, what: str, timeout_s: float | None = None) -> None:
        limit = self.mpi.timeout_s if timeout_s is None else float(timeout_s)
        deadline = time.monotonic() + limit
        for e in events:
            while not e.done:
                self.mpi.check_faults()
                if time.monotonic() > deadline:
                    raise DistTimeoutError(
                        f"{what} (NCCL) on rank {self.rank} timed out after {limit:g} s")
                time.sleep(1e-4)

    def close(self) -> None:
        try:
            self.comm.destroy()
        except Exception:  # already gone at interpreter exit
            pass
