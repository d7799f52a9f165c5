"""The errors a collective raises (torch's names)."""
from __future__ import annotations

__all__ = ["DistError", "DistBackendError", "DistPeerError", "DistTimeoutError"]


class DistError(RuntimeError):
    """Something went wrong in ``dyntorch.distributed``."""


class DistBackendError(DistError):
    """The transport (MPI, NCCL) failed, or the ranks disagree about a collective."""


class DistTimeoutError(DistBackendError, TimeoutError):
    """A collective waited longer than the process group's ``timeout`` for the other ranks."""


class DistPeerError(DistBackendError):
    """Another rank raised an exception and told the others before it ended."""

    def __init__(self, rank: int, message: str, me: int):
        super().__init__(f"rank {rank} failed: {message}\n(rank {me} stops too, rather than "
                         f"wait forever for rank {rank} in a collective)")
        self.rank = rank
