"""Tensor hooks and ``retain_grad``: pre-hooks on the node that produced the tensor."""
from __future__ import annotations

import itertools
import weakref

from .._tensor import Tensor

_ids = itertools.count()


class _Handle:
    def __init__(self, table: dict, key):
        self._table, self._key = table, key

    def remove(self) -> None:
        self._table.pop(self._key, None)


def register_tensor_hook(t: Tensor, hook):
    ex = t._ensure_extra()
    key = next(_ids)
    if t.grad_fn is None:  # leaf: runs before accumulation, see engine._accumulate
        hooks = ex.setdefault("hooks", {})
        hooks[key] = hook
        return _Handle(hooks, key)
    node, nr = t.grad_fn, t._out_nr
    table = node.metadata.setdefault("_tensor_hooks", {})
    if not table:
        def pre(grads, table=table):
            grads = list(grads)
            for (n, fn) in list(table.values()):
                g = grads[n]
                if g is None:
                    continue
                r = fn(g)
                if r is not None:
                    grads[n] = r
            return tuple(grads)

        node.register_prehook(pre)
    table[key] = (nr, hook)
    return _Handle(table, key)


def install_retain_grad(t: Tensor) -> None:
    ref = weakref.ref(t)
    nr = t._out_nr

    def keep(g):
        x = ref()
        if x is not None and g is not None:
            g = g.detach() if not g._rg else g
            x._grad = g.clone() if x._grad is None else x._grad + g
        return None

    table = t.grad_fn.metadata.setdefault("_tensor_hooks", {})
    if not table:
        register_tensor_hook(t, keep)
    else:
        table[next(_ids)] = (nr, keep)
