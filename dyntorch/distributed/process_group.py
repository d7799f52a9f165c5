"""A process group: which transport carries each array, the check that the ranks agree on
a collective, and :class:`Work`, the handle of a collective in flight."""
from __future__ import annotations

import warnings

import numpy as np

from .. import _backend as B
from .errors import DistBackendError
from .reduce_op import ReduceOp

__all__ = ["ProcessGroup", "Work"]

# the collectives, numbered for the agreement check (the number crosses the wire)
KINDS = {"all_reduce": 1, "broadcast": 2, "all_gather": 3, "reduce_scatter": 4}
_OPS = list(ReduceOp)
_DTYPE_NAMES = {np.dtype(n).num: n for n in ("bool", "int8", "uint8", "int16", "int32",
                                              "int64", "float16", "float32", "float64")}
_MAX_DIMS = 8


def _wire_dtype(dt: np.dtype) -> np.dtype:
    """What travels over MPI: MPI has no half or bfloat16 sums, nor a bool type."""
    if dt.kind == "b":
        return np.dtype(np.uint8)
    if (dt.kind == "f" and dt.itemsize < 4) or dt.kind == "V":
        return np.dtype(np.float32)
    return dt


class Work:
    """A collective in flight (torch's ``Work``): ``wait()`` finishes it, in place."""

    def __init__(self, transport, reqs, finish, what: str):
        self._transport = transport
        self._reqs = reqs
        self._finish = finish
        self._what = what
        self._done = False

    def is_completed(self) -> bool:
        """Has the transfer finished? (``wait()`` still writes the result into the tensor.)"""
        return self._done or self._transport.test(self._reqs)

    def wait(self, timeout=None) -> bool:
        """Block until the collective has finished and its result is in the tensor(s)."""
        if not self._done:
            secs = timeout.total_seconds() if hasattr(timeout, "total_seconds") else timeout
            self._transport.wait(self._reqs, self._what, secs)
            self._done = True
            if self._finish is not None:
                self._finish()
        return True


class ProcessGroup:
    """The ranks of one MPI communicator, with NCCL for GPU arrays when it is there."""

    def __init__(self, backend: str, mpi, nccl=None):
        self.backend = backend
        self.mpi = mpi
        self.nccl = nccl
        self.rank = mpi.rank
        self.size = mpi.size
        self._warned_host_copy = False

    # ---------------------------------------------------------------- routing
    def _route(self, arr):
        """(transport, a buffer the transport can use, how to copy the result back)."""
        if self.nccl is not None and self.nccl.supports(arr) and arr.flags.c_contiguous:
            return self.nccl, arr, None
        if arr.__class__ is not np.ndarray:
            if self.backend == "nccl" and not self._warned_host_copy:
                self._warned_host_copy = True
                warnings.warn("dyntorch.distributed: NCCL is not available for this GPU tensor "
                              f"({arr.dtype}); it goes through host memory over MPI (slower). "
                              "Install CuPy with NCCL (nvidia-nccl-cu12) for GPU collectives.",
                              RuntimeWarning, stacklevel=4)
            host = np.ascontiguousarray(B.to_numpy(arr), dtype=_wire_dtype(arr.dtype))
            xp = B.xp_of(arr)

            def back(dst=arr, src=host):
                dst[...] = xp.asarray(src).astype(dst.dtype, copy=False)
            return self.mpi, host, back
        wire = _wire_dtype(arr.dtype)
        if wire == arr.dtype and arr.flags.c_contiguous and B.writeable(arr):
            return self.mpi, arr, None
        buf = np.ascontiguousarray(arr, dtype=wire)

        def back(dst=arr, src=buf):
            dst[...] = src.astype(dst.dtype, copy=False)
        return self.mpi, buf, back

    # ---------------------------------------------------------------- agreement
    def _meta(self, kind: str, arr, extra: int) -> np.ndarray:
        m = np.full(4 + _MAX_DIMS, -1, dtype=np.int64)
        shape = tuple(arr.shape)
        if len(shape) > _MAX_DIMS:  # fold the trailing dims: the check stays exact for numel
            shape = shape[:_MAX_DIMS - 1] + (int(np.prod(shape[_MAX_DIMS - 1:])),)
        m[:4] = (KINDS[kind], extra, np.dtype(arr.dtype).num, arr.ndim)
        m[4:4 + len(shape)] = shape
        return m

    def agree(self, kind: str, arr, extra: int = -1) -> None:
        """Check that every rank called the same collective on the same shape and dtype."""
        if self.size == 1:
            return
        mine = self._meta(kind, arr, extra)
        table = np.empty((self.size, mine.size), dtype=np.int64)
        self.mpi.wait(self.mpi.all_gather(mine, table), kind)
        if (table == table[0]).all():
            return
        raise DistBackendError(f"{kind}: the ranks disagree: " + "; ".join(
            _describe(r, row) for r, row in enumerate(table)) +
            ". Every rank must call the same collective, in the same order, on a tensor of the "
            "same shape and dtype.")

    # ---------------------------------------------------------------- collectives
    def all_reduce(self, arr, op: ReduceOp) -> Work:
        self.agree("all_reduce", arr, _OPS.index(op))
        tr, buf, back = self._route(arr)
        reqs = tr.all_reduce(buf, op)
        return Work(tr, reqs, self._finisher(buf, back, op), "all_reduce")

    def broadcast(self, arr, src: int) -> Work:
        self.agree("broadcast", arr, src)
        tr, buf, back = self._route(arr)
        return Work(tr, tr.broadcast(buf, src), back, "broadcast")

    def all_gather(self, outs: list, arr) -> Work:
        self.agree("all_gather", arr)
        tr, send, _ = self._route(arr)
        xp = B.xp_of(send)
        recv = xp.empty((self.size,) + tuple(send.shape), dtype=send.dtype)

        def back():
            for dst, part in zip(outs, recv):
                dst[...] = B.move(part, B.device_of(dst)).astype(dst.dtype, copy=False)
        return Work(tr, tr.all_gather(send, recv), back, "all_gather")

    def reduce_scatter(self, out, parts: list, op: ReduceOp) -> Work:
        self.agree("reduce_scatter", out, _OPS.index(op))
        tr, recv, back = self._route(out)
        xp = B.xp_of(recv)
        send = xp.ascontiguousarray(xp.stack([B.move(p, B.device_of(recv)) for p in parts])
                                    .astype(recv.dtype, copy=False))
        return Work(tr, tr.reduce_scatter(send, recv, op), self._finisher(recv, back, op),
                    "reduce_scatter")

    def barrier(self) -> Work:
        return Work(self.mpi, self.mpi.barrier(), None, "barrier")

    def _finisher(self, buf, back, op: ReduceOp):
        if op is not ReduceOp.AVG:
            return back
        size = self.size

        def finish():
            xp = B.xp_of(buf)
            if buf.dtype.kind in "iub":
                xp.floor_divide(buf, size, out=buf)  # torch's integer AVG rounds down too
            else:
                xp.divide(buf, size, out=buf)
            if back is not None:
                back()
        return finish

    def close(self) -> None:
        if self.nccl is not None:
            self.nccl.close()
        self.mpi.close()


def _describe(rank: int, row: np.ndarray) -> str:
    kind = next((k for k, v in KINDS.items() if v == row[0]), f"collective #{row[0]}")
    ndim = int(row[3])
    shape = [int(d) for d in row[4:4 + min(ndim, _MAX_DIMS)]]
    dtype = _DTYPE_NAMES.get(int(row[2]), f"dtype #{row[2]}")
    extra = ""
    if kind in ("all_reduce", "reduce_scatter") and 0 <= row[1] < len(_OPS):
        extra = f", op={_OPS[int(row[1])].name}"
    elif kind == "broadcast":
        extra = f", src={int(row[1])}"
    return f"rank {rank} called {kind} with shape {shape} ({dtype}{extra})"
