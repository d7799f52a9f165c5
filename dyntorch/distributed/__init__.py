"""``torch.distributed`` on MPI (mpi4py) and, for CUDA tensors, NCCL (CuPy).

Start a script with ``mpiexec -n 2 python train.py``; in it::

    import dyntorch.distributed as dist
    dist.init_process_group("mpi")
    dist.all_reduce(t, op=dist.ReduceOp.SUM)   # in place on every rank

A rank that raises an uncaught exception tells the others, which stop with an error naming it,
and MPI aborts the job; a collective that waits longer than the group's ``timeout`` (30
minutes by default) raises :class:`DistTimeoutError`.
"""
from .collectives import (
    all_gather,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object_list,
    reduce_scatter,
)
from .errors import DistBackendError, DistError, DistPeerError, DistTimeoutError
from .process_group import Work
from .reduce_op import ReduceOp
from .world import (
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_available,
    is_nccl_available,
)

__all__ = ["init_process_group", "destroy_process_group", "is_available", "is_initialized",
           "is_mpi_available", "is_nccl_available", "get_rank", "get_world_size", "get_backend",
           "all_reduce", "broadcast", "all_gather", "reduce_scatter", "barrier",
           "all_gather_object", "broadcast_object_list", "ReduceOp",
           "Work", "DistError", "DistBackendError", "DistTimeoutError", "DistPeerError"]
