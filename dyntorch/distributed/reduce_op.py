"""``ReduceOp``: how a collective combines the ranks' values (torch's names)."""
from __future__ import annotations

import enum

__all__ = ["ReduceOp"]


class ReduceOp(enum.Enum):
    """``SUM``, ``AVG``, ``PRODUCT``, ``MIN``, ``MAX``: the reductions dyntorch supports on every
    backend (torch's bitwise ``BAND``/``BOR``/``BXOR`` and ``PREMUL_SUM`` are not)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"

    def __repr__(self) -> str:
        return f"<ReduceOp.{self.name}>"


def as_reduce_op(op, what: str) -> ReduceOp:
    """``op`` as a :class:`ReduceOp`, or a clear error."""
    if isinstance(op, ReduceOp):
        return op
    name = getattr(op, "name", op)
    if isinstance(name, str) and name.upper() in ReduceOp.__members__:
        return ReduceOp[name.upper()]
    raise ValueError(f"{what}: op={op!r} is not supported; use one of "
                     f"{', '.join('ReduceOp.' + m for m in ReduceOp.__members__)}")
