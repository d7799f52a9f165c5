"""torch.distributed's collectives on dyntorch tensors, in place, like torch's."""
from __future__ import annotations

from .._tensor import Tensor
from .process_group import Work
from .reduce_op import ReduceOp, as_reduce_op
from .world import default_group

__all__ = ["all_reduce", "broadcast", "all_gather", "reduce_scatter", "barrier"]


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
