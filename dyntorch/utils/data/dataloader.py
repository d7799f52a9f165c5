"""The DataLoader: batches from a dataset, in this process or in worker processes."""
from __future__ import annotations

import multiprocessing as mp
import queue
import time
from collections.abc import Callable, Iterable

from ... import _backend as B
from ._collate import default_collate, default_convert
from ._worker import ExceptionWrapper, IterableEnd, _fetch_map, worker_loop
from .dataset import Dataset, IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader"]


class _InfiniteConstantSampler(Sampler):
    """For iterable datasets: an endless stream of ``None`` (each means 'the next item')."""

    def __iter__(self):
        while True:
            yield None


class DataLoader:
    """Iterate over a dataset in batches (see ``torch.utils.data.DataLoader``).

    Parameters
    ----------
    dataset : Dataset or IterableDataset
        Where the samples come from.
    batch_size : int or None
        Samples per batch; ``None`` turns batching off (samples come one by one, converted).
    shuffle : bool
        A new random order every epoch (draws from ``generator``).
    sampler, batch_sampler : Sampler, optional
        Custom index order, or custom batches of indices.
    num_workers : int
        Worker processes that load batches in parallel (0: load in this process). Batches
        arrive in the same order as with 0 workers.
    collate_fn : callable, optional
        Turns a list of samples into a batch (default :func:`default_collate`).
    drop_last : bool
        Drop the last, incomplete batch.
    timeout : float
        Seconds to wait for a batch from the workers (0: forever).
    worker_init_fn : callable, optional
        Called with the worker id in each worker, after seeding.
    generator : Generator, optional
        Source of the shuffle order and of the worker base seed.
    prefetch_factor : int, optional
        Batches in flight per worker (default 2).
    persistent_workers : bool
        Keep the workers between epochs.
    pin_memory : bool
        Accepted for compatibility; has no effect.
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Sampler | Iterable | None = None,
                 batch_sampler: Sampler | Iterable | None = None, num_workers: int = 0,
                 collate_fn: Callable | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, multiprocessing_context=None,
                 generator: B.Generator | None = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = "",
                 in_order: bool = True):
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             "disable multiprocessing.")
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("prefetch_factor option could only be specified in multiprocessing."
                             " Let num_workers > 0 to enable multiprocessing, otherwise set "
                             "prefetch_factor to None.")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            if shuffle not in (False, None):
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified shuffle "
                                 f"option, but got shuffle={shuffle}")
            if sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler "
                                 f"option, but got sampler={sampler}")
            if batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified "
                                 f"batch_sampler option, but got batch_sampler={batch_sampler}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if sampler is None:
            if self._iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.collate_fn = collate_fn if collate_fn is not None else (
            default_collate if batch_sampler is not None else default_convert)
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = 2 if prefetch_factor is None and num_workers else prefetch_factor
        self.persistent_workers = persistent_workers
        self._iterator = None

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)  # TypeError when the stream has no length, as in torch
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)

    def _base_seed(self) -> int:
        g = self.generator if self.generator is not None else B.default_generator
        return int(g.rng(B.CPU).integers(0, 2**63 - 1))

    def __iter__(self):
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._iterator is None or self._iterator._closed:
                self._iterator = _MultiProcessIter(self)
            else:
                self._iterator._reset(self)
            return self._iterator
        return _MultiProcessIter(self)

    def __del__(self):
        it = getattr(self, "_iterator", None)
        if it is not None:
            it._shutdown()


class _SingleProcessIter:
    def __init__(self, loader: DataLoader):
        self._loader = loader
        self._base_seed = loader._base_seed()  # drawn as with workers: same shuffles either way
        self._sampler_iter = iter(loader._index_sampler)
        self._dataset_iter = iter(loader.dataset) if loader._iterable else None
        self._auto = loader._auto_collation
        self._collate = loader.collate_fn

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def __next__(self):
        loader = self._loader
        if self._dataset_iter is not None:
            if not self._auto:
                return self._collate(next(self._dataset_iter))
            items = []
            for _ in range(loader.batch_size):
                try:
                    items.append(next(self._dataset_iter))
                except StopIteration:
                    break
            if not items or (loader.drop_last and len(items) < loader.batch_size):
                raise StopIteration
            return self._collate(items)
        return _fetch_map(loader.dataset, next(self._sampler_iter), self._auto, self._collate)


def _context(loader: DataLoader):
    ctx = loader.multiprocessing_context
    if ctx is None:
        return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    return mp.get_context(ctx) if isinstance(ctx, str) else ctx


class _MultiProcessIter:
    """Hands index batches to workers round-robin and yields their results in order."""

    _closed = True

    def __init__(self, loader: DataLoader):
        self._loader = loader
        self._n = loader.num_workers
        self._epoch = 0
        ctx = _context(loader)
        self._result_q = ctx.Queue()
        self._index_qs = []
        self._workers = []
        base = loader._base_seed()
        self._closed = False
        for w in range(self._n):
            q = ctx.Queue()
            q.cancel_join_thread()
            p = ctx.Process(target=worker_loop, daemon=True, args=(
                loader.dataset, loader._iterable, q, self._result_q, loader.collate_fn,
                loader._auto_collation, loader.batch_size, loader.drop_last, base + w,
                loader.worker_init_fn, w, self._n))
            p.start()
            self._index_qs.append(q)
            self._workers.append(p)
        self._start_epoch(loader, reset_workers=False)

    def _reset(self, loader: DataLoader) -> None:
        loader._base_seed()  # keep the generator's stream as without persistent workers
        self._start_epoch(loader, reset_workers=loader._iterable)

    def _start_epoch(self, loader: DataLoader, reset_workers: bool) -> None:
        self._epoch += 1
        if reset_workers:
            for q in self._index_qs:
                q.put("reset")
        self._sampler_iter = iter(loader._index_sampler)
        self._send_idx = 0
        self._rcvd_idx = 0
        self._tasks: dict[int, tuple] = {}
        self._active = [True] * self._n
        self._next_worker = 0
        for _ in range(loader.prefetch_factor * self._n):
            if not self._put_task():
                break

    def _put_task(self) -> bool:
        for _ in range(self._n):
            w = self._next_worker
            self._next_worker = (w + 1) % self._n
            if self._active[w]:
                break
        else:
            return False
        try:
            payload = next(self._sampler_iter)
        except StopIteration:
            return False
        self._index_qs[w].put((self._epoch, self._send_idx, payload))
        self._tasks[self._send_idx] = (w,)
        self._send_idx += 1
        return True

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._loader)

    def __next__(self):
        while True:
            while self._rcvd_idx < self._send_idx:
                info = self._tasks[self._rcvd_idx]
                if len(info) == 2 or self._active[info[0]]:
                    break
                del self._tasks[self._rcvd_idx]  # its worker's stream ended
                self._rcvd_idx += 1
            else:
                if not self._loader.persistent_workers:
                    self._shutdown()
                raise StopIteration
            info = self._tasks[self._rcvd_idx]
            if len(info) == 2:
                del self._tasks[self._rcvd_idx]
                self._rcvd_idx += 1
                self._put_task()
                return self._process(info[1])
            epoch, idx, data = self._get()
            if epoch == -1:  # worker_init_fn failed
                self._shutdown()
                data.reraise()
            if epoch != self._epoch:
                continue  # a late result of an abandoned epoch
            if isinstance(data, IterableEnd):
                self._active[data.worker_id] = False
                self._put_task()
                continue
            if idx != self._rcvd_idx:
                self._tasks[idx] += (data,)
                continue
            del self._tasks[idx]
            self._rcvd_idx += 1
            self._put_task()
            return self._process(data)

    def _process(self, data):
        if isinstance(data, ExceptionWrapper):
            self._shutdown()
            data.reraise()
        return data

    def _get(self):
        timeout = self._loader.timeout
        start = time.monotonic()
        while True:
            try:
                return self._result_q.get(timeout=min(timeout, 2.0) if timeout else 2.0)
            except queue.Empty:
                dead = [p for p in self._workers if not p.is_alive()]
                if dead:
                    pids = ", ".join(f"{p.pid} (exit code {p.exitcode})" for p in dead)
                    self._shutdown()
                    raise RuntimeError(f"DataLoader worker(s) {pids} exited unexpectedly. A "
                                       "worker may have been killed (out of memory?) or "
                                       "crashed in native code; try num_workers=0 to see the "
                                       "error.") from None
                if timeout and time.monotonic() - start >= timeout:
                    self._shutdown()
                    raise RuntimeError(f"DataLoader timed out after {timeout} seconds") from None

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        for q in self._index_qs:
            try:
                q.put(None)
            except Exception:
                pass
        deadline = time.monotonic() + 2.0
        for p in self._workers:
            p.join(timeout=max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.terminate()
                p.join(timeout=1.0)
        self._result_q.cancel_join_thread()
        self._result_q.close()
        for q in self._index_qs:
            q.close()

    def __del__(self):
        self._shutdown()


