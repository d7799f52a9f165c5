"""Where the Trainer runs: one process, or (``strategy="ddp"``) one MPI rank of several.

The Trainer asks its strategy, never ``dyntorch.distributed`` directly, whether it is rank 0
(only rank 0 writes checkpoints, logs and progress bars), to wait for the other ranks, to
average metrics across ranks, to shard a DataLoader and to wrap the model.
"""
from __future__ import annotations

__all__ = ["SingleProcess", "make_strategy"]


class SingleProcess:
    """Everything in this process (``strategy="auto"``)."""

    name = "auto"
    world_size = 1
    global_rank = 0
    num_nodes = 1
    devices = 1

    @property
    def is_global_zero(self) -> bool:
        return self.global_rank == 0

    def setup(self, trainer, model) -> None:
        """Prepare ``model`` before its optimizers are made."""

    def teardown(self) -> None:
        """Undo :meth:`setup` (remove gradient hooks)."""

    def barrier(self) -> None:
        """Wait until every rank gets here."""

    def all_reduce_floats(self, values: list[float], op: str = "sum") -> list[float]:
        """``values`` combined over the ranks (``op``: sum, max or min)."""
        return list(values)

    def shard_loader(self, loader, shuffle: bool):
        """The DataLoader that this rank iterates."""
        return loader


def make_strategy(strategy, devices, num_nodes):
    """The strategy object for ``Trainer(strategy=, devices=, num_nodes=)``."""
    if strategy in ("auto", None, "single_device"):
        if devices not in ("auto", 1, -1, [0]) or num_nodes != 1:
            raise ValueError(
                f"Trainer(devices={devices!r}, num_nodes={num_nodes!r}) runs several processes: "
                f"pass strategy='ddp' and start the script with mpiexec -n <devices*num_nodes> "
                f"python script.py")
        return SingleProcess()
    if strategy == "ddp":
        raise NotImplementedError("Trainer(strategy='ddp') is not implemented yet")
    raise ValueError(f"Trainer(strategy={strategy!r}) is not supported; use 'auto' (one process) "
                     f"or 'ddp' (data-parallel over MPI ranks)")
