"""The default process group: starting it from the MPI world, asking about it, ending it, and
the exception hook that turns one rank's crash into a prompt stop of all ranks."""
from __future__ import annotations

import datetime
import importlib.util
import sys
import time
import warnings

from .. import _backend as B
from .errors import DistPeerError
from .mpi_transport import MPITransport, describe_exception
from .nccl_transport import NCCLTransport, nccl_available
from .process_group import ProcessGroup

__all__ = ["init_process_group", "destroy_process_group", "is_available", "is_initialized",
           "is_mpi_available", "is_nccl_available", "get_rank", "get_world_size",
           "get_backend", "default_group"]

DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)
# After telling the others, the longest a failing rank lives on so that they can print who
# failed. A peer waiting in a collective sees the notice within ms and aborts the whole job
# itself, which ends this rank sooner; 1 s was too short for a peer slowed by a loaded machine
# (test_a_failing_rank_ends_both_within_seconds lost rank 0's message at load 12 on 2 cores).
ABORT_GRACE_S = 5.0
# how long a rank that learnt of a peer's failure waits, after printing it, before aborting
PEER_DRAIN_S = 0.5


class _World:
    """The one default process group of this process, and the exception hook it replaced."""

    def __init__(self):
        self.group: ProcessGroup | None = None
        self.previous_hook = None


_world = _World()


def is_available() -> bool:
    """Can this process use ``dyntorch.distributed`` (is mpi4py installed)?"""
    return importlib.util.find_spec("mpi4py") is not None


def is_mpi_available() -> bool:
    return is_available()


def is_nccl_available() -> bool:
    return nccl_available()


def is_initialized() -> bool:
    """Has :func:`init_process_group` been called (and not undone)?"""
    return _world.group is not None


def default_group(what: str, group=None) -> ProcessGroup:
    """The default group, or a clear error (sub-groups are not supported)."""
    if group is not None and group is not _world.group:
        raise ValueError(f"{what}(group=...): only the default group (the whole MPI world) is "
                         "supported; pass group=None")
    if _world.group is None:
        raise RuntimeError("Default process group has not been initialized, please make sure to "
                           "call init_process_group.")
    return _world.group


def get_rank(group=None) -> int:
    """This process's rank, 0 ... world size - 1."""
    return default_group("get_rank", group).rank


def get_world_size(group=None) -> int:
    """How many processes take part."""
    return default_group("get_world_size", group).size


def get_backend(group=None) -> str:
    return default_group("get_backend", group).backend


def _seconds(timeout) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT.total_seconds()
    secs = timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else float(timeout)
    if not secs > 0:
        raise ValueError(f"init_process_group(timeout={timeout!r}): the timeout must be positive")
    return secs


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: datetime.timedelta | float | None = None,
                       world_size: int | None = None, rank: int | None = None, store=None,
                       group_name: str = "", pg_options=None, device_id=None) -> None:
    """Join the processes started by ``mpiexec -n N`` into the default process group.

    Parameters
    ----------
    backend : {"mpi", "nccl"}, optional
        ``"mpi"`` (default) carries every tensor over MPI; ``"nccl"`` carries CUDA tensors
        over NCCL (CuPy) and the rest over MPI; without NCCL, CUDA tensors fall back to host
        copies over MPI with a warning.
    init_method, store
        Only ``None`` or ``"env://"``: the ranks always come from MPI.
    timeout : datetime.timedelta or float, optional
        How long a collective waits for the other ranks before raising (default 30 minutes).
    world_size, rank : int, optional
        Checked against the MPI world when given (``-1`` or ``None``: take MPI's).
    device_id : int, optional
        The CUDA device for NCCL (default: rank modulo the number of devices).
    """
    if _world.group is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    name = (backend or "mpi").lower()
    if name not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group(backend={backend!r}): dyntorch supports 'mpi' "
                         "(CPU, and GPU through host copies) and 'nccl' (GPU); "
                         "use 'mpi' where torch would use 'gloo'")
    if init_method not in (None, "env://") or store is not None:
        raise ValueError("init_process_group(): dyntorch takes ranks from MPI; drop init_method "
                         "and store, and start the script with mpiexec -n <world size>")
    secs = _seconds(timeout)
    if not is_available():
        raise RuntimeError("dyntorch.distributed needs mpi4py and an MPI: "
                           "pip install 'dyntorch[distributed]'")
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    if world_size not in (None, -1) and int(world_size) != comm.Get_size():
        raise ValueError(f"init_process_group(world_size={world_size}): MPI started "
                         f"{comm.Get_size()} process(es); start the script with "
                         f"mpiexec -n {world_size} python ...")
    if rank not in (None, -1) and int(rank) != comm.Get_rank():
        raise ValueError(f"init_process_group(rank={rank}): MPI gave this process rank "
                         f"{comm.Get_rank()}; leave rank out, MPI assigns it")
    mpi = MPITransport(MPI, comm, secs)
    nccl = None
    if name == "nccl":
        if nccl_available() and B.cuda_available():
            import cupy

            idx = device_id if device_id is not None else \
                mpi.rank % cupy.cuda.runtime.getDeviceCount()
            nccl = NCCLTransport(mpi, int(getattr(idx, "index", idx) or 0))
        else:
            warnings.warn("init_process_group(backend='nccl'): NCCL (CuPy with nvidia-nccl-cu12) "
                          "or a CUDA device is missing; every tensor goes over MPI, CUDA tensors "
                          "through host copies.", RuntimeWarning, stacklevel=2)
    _world.group = ProcessGroup(name, mpi, nccl)
    if mpi.size > 1 and _world.previous_hook is None:
        _world.previous_hook = sys.excepthook
        sys.excepthook = _excepthook


def destroy_process_group(group=None) -> None:
    """Leave the default process group (MPI itself ends when the process does)."""
    pg = default_group("destroy_process_group", group)
    _world.group = None
    if _world.previous_hook is not None:
        sys.excepthook = _world.previous_hook
        _world.previous_hook = None
    pg.close()


def _excepthook(exc_type, exc, tb) -> None:
    """An uncaught exception on one rank: print it, tell the other ranks who failed, abort."""
    (_world.previous_hook or sys.__excepthook__)(exc_type, exc, tb)
    pg = _world.group
    if pg is None or pg.size == 1:
        return
    if not isinstance(exc, DistPeerError):  # a peer's failure was announced by that peer
        print(f"[dyntorch.distributed] rank {pg.rank} raised {exc_type.__name__}; telling the "
              f"other {pg.size - 1} rank(s) and aborting", file=sys.stderr, flush=True)
        pg.mpi.notify_failure(describe_exception(pg.rank, exc))
        time.sleep(ABORT_GRACE_S)
    else:
        # mpiexec stops forwarding output once a rank aborts: give the traceback just printed
        # time to reach the user (a fresh-clone run lost rank 0's DistPeerError line here)
        sys.stderr.flush()
        time.sleep(PEER_DRAIN_S)
    pg.mpi.abort(1)
