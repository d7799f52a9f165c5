"""Tensor hooks and ``retain_grad``.

A hook on a non-leaf tensor is a pre-hook on the node that produced it (one pre-hook per node
serves all its tensors' hooks, kept in ``node.metadata['_tensor_hooks']``). A hook on a leaf
runs just before its gradient is accumulated into ``.grad`` (the engine reads
``tensor._extra['hooks']``). As in torch, ``retain_grad`` always runs after the other hooks of
the tensor, so ``.grad`` shows the gradient as the hooks left it.
"""
from __future__ import annotations

import weakref

from .._hooks import RemovableHandle, next_id
from .._tensor import Tensor


def _check(g, r, hook):
    if not isinstance(r, Tensor):
        raise TypeError(f"hook '{getattr(hook, '__name__', hook)}' returned a "
                        f"{type(r).__name__}; a tensor hook must return a Tensor or None")
    if r._data.shape != g._data.shape:
        raise RuntimeError(
            f"hook '{getattr(hook, '__name__', hook)}' has changed the size of value: the "
            f"gradient has shape {list(g.shape)} but the hook returned {list(r.shape)}")
    return r


def _node_table(node) -> dict:
    """The per-node table of tensor hooks, installing its single pre-hook on first use."""
    meta = node.metadata
    table = meta.get("_tensor_hooks")
    if table is None:
        table = meta["_tensor_hooks"] = {}

        def pre(grads, table=table):
            if not table:
                return None
            grads = list(grads)
            entries = list(table.values())
            # retain_grad entries run last, whatever the registration order.
            for last in (False, True):
                for (n, fn, is_retain) in entries:
                    if is_retain is not last:
                        continue
                    g = grads[n]
                    if g is None:
                        continue
                    r = fn(g)
                    if r is not None:
                        grads[n] = _check(g, r, fn)
            return tuple(grads)

        node.register_prehook(pre)
    return table


def register_tensor_hook(t: Tensor, hook):
    """Register ``hook(grad) -> Tensor | None`` on ``t``; returns a handle with ``remove()``."""
    ex = t._ensure_extra()
    key = next_id()
    if t.grad_fn is None:  # leaf: runs before accumulation (see engine._accumulate)
        hooks = ex.get("hooks")
        if hooks is None:
            hooks = ex["hooks"] = {}

        def checked(g, hook=hook):
            r = hook(g)
            return None if r is None else _check(g, r, hook)

        hooks[key] = checked
        return RemovableHandle(hooks, id=key)
    table = _node_table(t.grad_fn)
    table[key] = (t._out_nr, hook, False)
    return RemovableHandle(table, id=key)


def install_retain_grad(t: Tensor) -> None:
    """Make backward keep the gradient of non-leaf ``t`` in ``t.grad`` (accumulating)."""
    ref = weakref.ref(t)
    node = t.grad_fn

    def keep(g):
        x = ref()
        # After an in-place op the tensor belongs to a newer node: its .grad is that one's.
        if x is not None and g is not None and x.grad_fn is node:
            g = g if g._requires_grad else g.detach()
            x._grad = g.clone() if x._grad is None else x._grad + g
        return None

    table = _node_table(node)
    table[next_id()] = (t._out_nr, keep, True)


def rebase_retain_grad(t: Tensor) -> None:
    """Call after an in-place op points ``t`` at a new node: ``retain_grad`` follows it."""
    if t._extra and t._extra.get("retains") and t.grad_fn is not None:
        install_retain_grad(t)


def register_post_accumulate_grad_hook(t: Tensor, hook):
    """Run ``hook(tensor)`` after a leaf's ``.grad`` has been updated by backward."""
    if t.grad_fn is not None:
        raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
    if not t._requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    ex = t._ensure_extra()
    hooks = ex.get("post_hooks")
    if hooks is None:
        hooks = ex["post_hooks"] = {}
    h = RemovableHandle(hooks)
    hooks[h.id] = hook
    return h


Tensor.register_post_accumulate_grad_hook = register_post_accumulate_grad_hook


def captured_grad(node, nr: int, g, create_graph: bool):
    """``g`` after the tensor hooks of output ``nr`` of ``node`` (for ``autograd.grad``).

    torch applies a tensor's hooks to the gradient that ``autograd.grad`` returns for it; the
    engine can call this where it captures a gradient. ``g`` is an array on the plain path and
    a Tensor under ``create_graph``; the result has the same kind.
    """
    from .engine import _as_tensor
    from .node import AccumulateGrad

    if g is None:
        return g
    if node.__class__ is AccumulateGrad:
        t = node.variable
        hooks = list((t._extra or {}).get("hooks", {}).values()) if t is not None else []
        fns = hooks
    else:
        table = (node._meta or {}).get("_tensor_hooks")
        if not table:
            return g
        entries = [e for e in table.values() if e[0] == nr and not e[2]]
        fns = [e[1] for e in entries]
    if not fns:
        return g
    gt = _as_tensor(g)
    for fn in fns:
        r = fn(gt)
        if r is not None:
            gt = r
    return gt if create_graph else gt._data
