"""Where the Trainer runs: one process, or (``strategy="ddp"``) one MPI rank of several.

The Trainer asks its strategy, never ``dyntorch.distributed`` directly, whether it is rank 0
(only rank 0 writes checkpoints, logs and progress bars), to wait for the other ranks, to
average metrics across ranks, to shard a DataLoader and to wrap the model.
"""
from __future__ import annotations

import contextlib

__all__ = ["SingleProcess", "DDPStrategy", "make_strategy"]


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

    def shard_loader(self, loader):
        """The DataLoader that this rank iterates."""
        return loader

    def all_gather_object(self, obj) -> list:
        """Every rank's ``obj``, in rank order."""
        return [obj]

    def check_reduced(self) -> None:
        """Before an optimizer step: are the gradients complete?"""

    def before_training_step(self) -> None:
        """Before each ``training_step``."""

    def backward_sync(self, sync: bool):
        """A context for backward: ``sync=False`` keeps gradients local (accumulation)."""
        return contextlib.nullcontext()


class DDPStrategy(SingleProcess):
    """Data-parallel training over the ranks of ``mpiexec -n devices*num_nodes``.

    Each rank trains on its shard of every DataLoader (a :class:`DistributedSampler` replaces
    the loader's sampler, shuffling as the loader did); gradients are averaged during
    backward by :class:`~dyntorch.nn.parallel.DistributedDataParallel`; epoch metrics are
    combined across ranks; only rank 0 writes checkpoints, logs and progress bars.
    """

    name = "ddp"

    def __init__(self, devices, num_nodes: int, accelerator: str = "auto"):
        from .. import _backend as B
        from .. import distributed as dist

        if not (isinstance(num_nodes, int) and num_nodes >= 1):
            raise ValueError(f"Trainer(num_nodes={num_nodes!r}): needs an int >= 1")
        if devices != "auto" and not (isinstance(devices, int) and devices >= 1):
            raise ValueError(f"Trainer(strategy='ddp', devices={devices!r}): pass the number of "
                             "processes per node (an int >= 1) or 'auto'")
        if not dist.is_available():
            raise RuntimeError("Trainer(strategy='ddp') needs mpi4py and an MPI: "
                               "pip install 'dyntorch[distributed]'")
        if not dist.is_initialized():
            gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and
                                                     B.cuda_available())
            dist.init_process_group("nccl" if gpu else "mpi")
        self._dist = dist
        world = dist.get_world_size()
        per_node = world // num_nodes if devices == "auto" else devices
        if per_node * num_nodes != world:
            raise ValueError(
                f"Trainer(strategy='ddp', devices={devices!r}, num_nodes={num_nodes}) expects "
                f"{per_node * num_nodes if devices != 'auto' else 'a multiple of num_nodes'} "
                f"processes, but MPI started {world}: run mpiexec -n "
                f"{(per_node if devices != 'auto' else 1) * num_nodes} python script.py")
        self.devices = per_node
        self.num_nodes = num_nodes
        self.world_size = world
        self.global_rank = dist.get_rank()
        self.ddp = None

    def setup(self, trainer, model) -> None:
        from ..nn.parallel import DistributedDataParallel

        self.teardown()
        self.ddp = DistributedDataParallel(model)

    def teardown(self) -> None:
        if self.ddp is not None:
            self.ddp.remove_hooks()
            self.ddp = None

    def check_reduced(self) -> None:
        """Before an optimizer step: every gradient was averaged across the ranks."""
        missing = self.ddp.reduction_pending() if self.ddp is not None else []
        if missing:
            raise RuntimeError(
                "strategy='ddp': these parameters got no gradient in this step, so the "
                f"gradients could not be averaged across ranks: {', '.join(missing)}. Use them "
                "in the loss, or freeze them (requires_grad_(False)) before fit().")

    def before_training_step(self) -> None:
        # training_step calls the module itself, not the DDP wrapper's forward, so the
        # wrapper's buffer broadcast happens here
        if self.ddp is not None and self.ddp.broadcast_buffers:
            self.ddp.sync_buffers()

    def backward_sync(self, sync: bool):
        if sync or self.ddp is None:
            return contextlib.nullcontext()
        return self.ddp.no_sync()

    def barrier(self) -> None:
        self._dist.barrier()

    def all_gather_object(self, obj) -> list:
        out: list = [None] * self.world_size
        self._dist.all_gather_object(out, obj)
        return out

    def all_reduce_floats(self, values: list[float], op: str = "sum") -> list[float]:
        from .. import float64, tensor

        if not values:
            return []
        t = tensor([float(v) for v in values], dtype=float64)
        ops = {"sum": self._dist.ReduceOp.SUM, "max": self._dist.ReduceOp.MAX,
               "min": self._dist.ReduceOp.MIN}
        self._dist.all_reduce(t, op=ops[op])
        return t.tolist()

    def shard_loader(self, loader):
        from ..utils.data import DataLoader, RandomSampler
        from ..utils.data.distributed import DistributedSampler

        if not isinstance(loader, DataLoader):
            raise TypeError(f"Trainer(strategy='ddp') shards DataLoaders across ranks; got a "
                            f"{type(loader).__name__}: wrap the data in a DataLoader")
        if isinstance(loader.sampler, DistributedSampler):
            return loader  # sharded by the user already
        if loader.batch_sampler is not None and \
                getattr(loader.batch_sampler, "sampler", None) is not loader.sampler:
            raise ValueError("Trainer(strategy='ddp') cannot shard a DataLoader built with a "
                             "custom batch_sampler; give it a DistributedSampler yourself")
        sampler = DistributedSampler(loader.dataset, self.world_size, self.global_rank,
                                     shuffle=isinstance(loader.sampler, RandomSampler))
        return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                          num_workers=loader.num_workers, collate_fn=loader.collate_fn,
                          pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                          timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                          multiprocessing_context=loader.multiprocessing_context,
                          generator=loader.generator,
                          prefetch_factor=loader.prefetch_factor if loader.num_workers else None,
                          persistent_workers=loader.persistent_workers)


def make_strategy(strategy, devices, num_nodes, accelerator: str = "auto"):
    """The strategy object for ``Trainer(strategy=, devices=, num_nodes=)``."""
    if strategy in ("auto", None, "single_device"):
        if devices not in ("auto", 1, -1, [0]) or num_nodes != 1:
            raise ValueError(
                f"Trainer(devices={devices!r}, num_nodes={num_nodes!r}) runs several processes: "
                f"pass strategy='ddp' and start the script with mpiexec -n <devices*num_nodes> "
                f"python script.py")
        return SingleProcess()
    if strategy == "ddp":
        return DDPStrategy(devices, num_nodes, accelerator)
    raise ValueError(f"Trainer(strategy={strategy!r}) is not supported; use 'auto' (one process) "
                     f"or 'ddp' (data-parallel over MPI ranks)")
