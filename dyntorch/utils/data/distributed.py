"""``DistributedSampler``: each rank reads its own share of the dataset (torch's rules)."""
from __future__ import annotations

import math
from collections.abc import Iterator

from ... import _backend as B
from .sampler import Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler):
    """The indices of ``dataset`` that rank ``rank`` of ``num_replicas`` reads.

    As torch's: the indices (shuffled with ``seed + epoch`` when ``shuffle``) are padded by
    repeating them from the start so that every rank gets the same number, or, with
    ``drop_last``, cut to a multiple of ``num_replicas``; rank ``r`` takes every
    ``num_replicas``-th index starting at ``r``. Call :meth:`set_epoch` at the start of each
    epoch for a new shuffle. (The shuffled order is dyntorch's generator's, not torch's.)

    Parameters
    ----------
    dataset : Dataset
        Only its length is used.
    num_replicas, rank : int, optional
        Default to the world size and rank of ``dyntorch.distributed``.
    shuffle : bool
        Shuffle, the same way on every rank.
    seed : int
        The shuffle's seed; must be the same on every rank.
    drop_last : bool
        Drop the tail instead of padding.
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from ... import distributed as dist

            if not dist.is_initialized():
                raise RuntimeError("DistributedSampler: pass num_replicas and rank, or call "
                                   "dyntorch.distributed.init_process_group() first")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"num_replicas should be a positive integer, got {num_replicas}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % self.num_replicas:
            # the largest equal share that needs no padding
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            g = B.Generator().manual_seed(self.seed + self.epoch)
            indices = g.rng(B.CPU).permutation(n).tolist()
        else:
            indices = list(range(n))
        if self.drop_last:
            indices = indices[:self.total_size]
        else:
            pad = self.total_size - len(indices)
            if pad:
                indices += (indices * math.ceil(pad / len(indices)))[:pad]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use ``seed + epoch`` for the next shuffle (call before each epoch, on every rank)."""
        self.epoch = epoch
