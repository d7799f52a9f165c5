"""What runs inside a DataLoader worker process, and the messages it sends back."""
from __future__ import annotations

import pickle
import random
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._collate import default_collate

__all__ = ["WorkerInfo", "get_worker_info"]


@dataclass(frozen=True)
class WorkerInfo:
    """Who this worker is: ``id`` in ``range(num_workers)``, its ``seed``, its dataset copy."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """Inside a DataLoader worker, its :class:`WorkerInfo`; ``None`` in the main process."""
    return _worker_info


class ExceptionWrapper:
    """An exception raised in a worker, carried to the main process with its traceback text."""

    def __init__(self, exc: BaseException, where: str):
        self.exc_type = type(exc)
        try:  # a class defined in a closure can't travel; fall back to RuntimeError then
            pickle.dumps(self.exc_type)
        except Exception:
            self.exc_type = RuntimeError
        self.type_name = type(exc).__name__
        self.where = where
        self.text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    def reraise(self):
        msg = f"Caught {self.type_name} {self.where}.\nOriginal {self.text}"
        if self.exc_type is KeyError:  # KeyError repr()s its message; keep it readable
            msg = _KeyErrorMessage(msg)
        try:
            exc = self.exc_type(msg)
        except Exception:
            exc = RuntimeError(msg)
        raise exc


class _KeyErrorMessage(str):
    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class IterableEnd:
    """A worker's copy of an IterableDataset is exhausted."""

    worker_id: int


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    from ... import _backend as B

    B.default_generator.manual_seed(seed)


def _fetch_iterable(it, auto_collation: bool, batch_size, drop_last: bool, collate_fn):
    if not auto_collation:
        return collate_fn(next(it))
    items = []
    for _ in range(batch_size):
        try:
            items.append(next(it))
        except StopIteration:
            break
    if not items or (drop_last and len(items) < batch_size):
        raise StopIteration
    return collate_fn(items)


def _tensor_rows(dataset, idx):
    """Batches of a TensorDataset (also through Subsets) by one fancy index per tensor:
    the same values as stacking the rows one by one, without a Python loop over them."""
    from .dataset import Subset, TensorDataset

    while type(dataset) is Subset:
        ind = dataset.indices
        idx = [ind[i] for i in idx]
        dataset = dataset.dataset
    if type(dataset) is not TensorDataset or any(t._requires_grad for t in dataset.tensors):
        return None
    from ..._tensor import _make

    return [_make(t._data[idx]) for t in dataset.tensors]


def _fetch_map(dataset, payload, auto_collation: bool, collate_fn):
    if not auto_collation:
        return collate_fn(dataset[payload])
    if collate_fn is default_collate:
        rows = _tensor_rows(dataset, payload)
        if rows is not None:
            return rows
    getitems = getattr(dataset, "__getitems__", None)
    items = getitems(payload) if getitems is not None else [dataset[i] for i in payload]
    return collate_fn(items)


def worker_loop(dataset, iterable: bool, index_queue, result_queue, collate_fn,
                auto_collation: bool, batch_size, drop_last: bool, seed: int, init_fn,
                worker_id: int, num_workers: int) -> None:
    """Serve ``(epoch, idx, payload)`` tasks until ``None`` arrives.

    ``payload`` is a list of indices (a batch), one index, or ``None`` (next item of the
    iterable dataset). Results are ``(epoch, idx, data)``; errors travel as ExceptionWrapper.
    ``"reset"`` (persistent workers, new epoch) restarts the iterable dataset's stream.
    """
    global _worker_info
    try:
        _seed_everything(seed)
        _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
        where = f"in DataLoader worker process {worker_id}"
        if init_fn is not None:
            try:
                init_fn(worker_id)
            except Exception as e:
                result_queue.put((-1, -1, ExceptionWrapper(e, f"in worker_init_fn of "
                                                              f"DataLoader worker {worker_id}")))
                return
        it = None
        exhausted = False
        while True:
            msg = index_queue.get()
            if msg is None:
                break
            if msg == "reset":
                it, exhausted = None, False
                continue
            epoch, idx, payload = msg
            if iterable:
                if exhausted:
                    result_queue.put((epoch, idx, IterableEnd(worker_id)))
                    continue
                try:
                    if it is None:
                        it = iter(dataset)
                    data = _fetch_iterable(it, auto_collation, batch_size, drop_last,
                                           collate_fn)
                except StopIteration:
                    exhausted = True
                    data = IterableEnd(worker_id)
                except Exception as e:
                    data = ExceptionWrapper(e, where)
            else:
                try:
                    data = _fetch_map(dataset, payload, auto_collation, collate_fn)
                except Exception as e:
                    data = ExceptionWrapper(e, where)
            try:
                result_queue.put((epoch, idx, data))
            except Exception as e:  # the batch could not be pickled
                result_queue.put((epoch, idx, ExceptionWrapper(e, where)))
    except KeyboardInterrupt:
        pass  # the main process handles Ctrl-C and shuts us down
