"""torch.distributed's collectives on dyntorch tensors, in place, like torch's."""
from __future__ import annotations

import pickle

import numpy as np

from .._tensor import Tensor
from .process_group import Work
from .reduce_op import ReduceOp, as_reduce_op
from .world import default_group

__all__ = ["all_reduce", "broadcast", "all_gather", "reduce_scatter", "barrier",
           "all_gather_object", "broadcast_object_list"]


def _array(t, what: str, name: str = "tensor"):
    """The array a collective reads and writes in place: the tensor's own storage."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{what}(): {name} must be a dyntorch.Tensor, got {type(t).__name__}")
    # The storage itself, so that results land in place as in torch. Tensor has no public
    # accessor for its array (numpy() copies CUDA data); this is the one place that reads it.
    return t._data


def _finish(work: Work, async_op: bool):
    if async_op:
        return work
    work.wait()
    return None


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None,
               async_op: bool = False) -> Work | None:
    """Combine ``tensor`` over all ranks with ``op``; every rank gets the result in place.

    Raises an error naming both shapes when the ranks pass tensors of different shapes.
    """
    pg = default_group("all_reduce", group)
    arr = _array(tensor, "all_reduce")
    return _finish(pg.all_reduce(arr, as_reduce_op(op, "all_reduce")), async_op)


def broadcast(tensor: Tensor, src: int = 0, group=None, async_op: bool = False) -> Work | None:
    """Copy rank ``src``'s ``tensor`` into ``tensor`` on every rank."""
    pg = default_group("broadcast", group)
    if not 0 <= int(src) < pg.size:
        raise ValueError(f"broadcast(src={src}): src must be a rank in [0, {pg.size - 1}]")
    return _finish(pg.broadcast(_array(tensor, "broadcast"), int(src)), async_op)


def all_gather(tensor_list: list[Tensor], tensor: Tensor, group=None,
               async_op: bool = False) -> Work | None:
    """Fill ``tensor_list[r]`` with rank ``r``'s ``tensor``, on every rank."""
    pg = default_group("all_gather", group)
    arr = _array(tensor, "all_gather")
    outs = _same_shaped(tensor_list, tensor, pg.size, "all_gather", "tensor_list", "tensor")
    return _finish(pg.all_gather(outs, arr), async_op)


def reduce_scatter(output: Tensor, input_list: list[Tensor], op: ReduceOp = ReduceOp.SUM,
                   group=None, async_op: bool = False) -> Work | None:
    """``output`` on rank ``r`` = ``op`` over the ranks of their ``input_list[r]``."""
    pg = default_group("reduce_scatter", group)
    out = _array(output, "reduce_scatter", "output")
    parts = _same_shaped(input_list, output, pg.size, "reduce_scatter", "input_list", "output")
    return _finish(pg.reduce_scatter(out, parts, as_reduce_op(op, "reduce_scatter")), async_op)


def barrier(group=None, async_op: bool = False, device_ids=None) -> Work | None:
    """Wait until every rank has called ``barrier``."""
    return _finish(default_group("barrier", group).barrier(), async_op)


def all_gather_object(object_list: list, obj, group=None) -> None:
    """Fill ``object_list[r]`` with rank ``r``'s ``obj`` (any picklable object).

    As with torch, the objects travel pickled: only use it among processes you trust.
    """
    pg = default_group("all_gather_object", group)
    if not isinstance(object_list, list) or len(object_list) != pg.size:
        raise ValueError(f"all_gather_object(): object_list must be a list of world_size="
                         f"{pg.size} entries")
    from .. import int64, tensor, zeros

    data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
    sizes = [zeros(1, dtype=int64) for _ in range(pg.size)]
    all_gather(sizes, tensor([data.size], dtype=int64))
    longest = max(int(s.item()) for s in sizes)
    mine = np.zeros(longest, dtype=np.uint8)
    mine[:data.size] = data
    parts = [zeros(longest, dtype=_uint8()) for _ in range(pg.size)]
    all_gather(parts, tensor(mine))
    for r, (part, size) in enumerate(zip(parts, sizes)):
        object_list[r] = pickle.loads(part.numpy()[:int(size.item())].tobytes())


def broadcast_object_list(object_list: list, src: int = 0, group=None) -> None:
    """Replace the entries of ``object_list`` with rank ``src``'s, on every rank (pickled)."""
    pg = default_group("broadcast_object_list", group)
    gathered: list = [None] * pg.size
    all_gather_object(gathered, list(object_list) if pg.rank == src else None, group)
    object_list[:] = gathered[src]


def _uint8():
    from .. import uint8

    return uint8


def _same_shaped(tensors, like: Tensor, size: int, what: str, name: str, like_name: str):
    if not isinstance(tensors, (list, tuple)) or len(tensors) != size:
        n = len(tensors) if isinstance(tensors, (list, tuple)) else type(tensors).__name__
        raise ValueError(f"{what}(): {name} must be a list of world_size={size} tensors, got {n}")
    arrays = []
    for i, t in enumerate(tensors):
        a = _array(t, what, f"{name}[{i}]")
        if tuple(t.shape) != tuple(like.shape):
            raise ValueError(f"{what}(): {name}[{i}] has shape {list(t.shape)} but {like_name} "
                             f"has shape {list(like.shape)}; they must match")
        arrays.append(a)
    return arrays
