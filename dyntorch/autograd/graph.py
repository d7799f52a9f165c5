"""``torch.autograd.graph``: the Node type, saved-tensor hooks and multi-tensor grad hooks."""
from __future__ import annotations

import weakref

from .._hooks import RemovableHandle
from .node import Node

__all__ = ["Node", "saved_tensors_hooks", "save_on_cpu", "disable_saved_tensors_hooks",
           "register_multi_grad_hook"]

# Innermost last: (pack_hook, unpack_hook). Read by Function.save_for_backward.
_hooks_stack: list = []
_disabled: list = []  # error messages of active disable_saved_tensors_hooks blocks


class saved_tensors_hooks:
    """Pack tensors when they are saved for backward and unpack them when backward reads them.

    Parameters
    ----------
    pack_hook : callable
        ``pack_hook(tensor) -> object``, called when a tensor is saved.
    unpack_hook : callable
        ``unpack_hook(object) -> Tensor``, called when backward reads the saved value.

    Notes
    -----
    Applies to tensors saved by ``autograd.Function`` (``ctx.save_for_backward``). Built-in
    ops keep their inputs on the node directly and are not packed yet.
    """

    def __init__(self, pack_hook, unpack_hook):
        self.pack_hook = pack_hook
        self.unpack_hook = unpack_hook

    def __enter__(self):
        if _disabled:
            raise RuntimeError(_disabled[-1])
        _hooks_stack.append((self.pack_hook, self.unpack_hook))
        return self

    def __exit__(self, *exc):
        _hooks_stack.pop()
        return False


class save_on_cpu(saved_tensors_hooks):
    """Saved tensors are moved to the CPU at save time and back to their device at use."""

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda"):
        from .. import _backend as B

        def pack(t):
            return (t.device, t.cpu() if t._data.__class__ is not B.np.ndarray else t)

        def unpack(packed):
            dev, t = packed
            return t.to(dev)

        super().__init__(pack, unpack)


class disable_saved_tensors_hooks:
    """Inside this block, entering :class:`saved_tensors_hooks` raises ``error_message``."""

    def __init__(self, error_message: str):
        self.error_message = error_message

    def __enter__(self):
        _disabled.append(self.error_message)
        return self

    def __exit__(self, *exc):
        _disabled.pop()
        return False


class _MultiState:
    """One ``register_multi_grad_hook`` registration. It knows its tensors only weakly: once
    they are all gone no hook of it can fire, and :class:`_Multi` drops it."""

    __slots__ = ("fn", "mode", "grads", "hit", "tensors")

    def __init__(self, fn, mode: str, tensors: tuple):
        self.fn, self.mode, self.grads, self.hit = fn, mode, [None] * len(tensors), False
        self.tensors = tuple(weakref.ref(t, _tensor_gone) for t in tensors)

    def alive(self) -> bool:
        return any(r() is not None for r in self.tensors)


class _Multi:
    """Pending multi-grad hooks, flushed at the last step of a backward pass.

    Registered as an engine observer only while some registration is alive: an observer
    makes every backward take the engine's watched path, so one whose tensors are gone (its
    handle never removed) must not slow every later backward of the process.
    """

    def __init__(self):
        self.states: list = []

    def add_state(self, st: _MultiState) -> None:
        from . import engine

        self.states.append(st)
        if self.observe not in engine.observers:
            engine.observers.append(self.observe)

    def discard_state(self, st: _MultiState) -> None:
        if st in self.states:
            self.states.remove(st)
        self._leave_if_idle()

    def _leave_if_idle(self) -> None:
        from . import engine

        self.states = [st for st in self.states if st.alive()]
        if not self.states and self.observe in engine.observers:
            engine.observers.remove(self.observe)

    def observe(self, step) -> None:
        if step.index + 1 < step.total:
            return
        for st in tuple(self.states):
            if st.hit:
                grads = st.grads
                st.grads = [None] * len(grads)
                st.hit = False
                if st.mode == "all":
                    st.fn(tuple(grads))


_multi = _Multi()


def _tensor_gone(_ref) -> None:
    _multi._leave_if_idle()  # its last live registration may have gone with it


def register_multi_grad_hook(tensors, fn, *, mode: str = "all"):
    """Call ``fn`` once per backward pass with the gradients of several tensors.

    Parameters
    ----------
    tensors : sequence of Tensor
    fn : callable
        ``mode="all"``: ``fn(grads)`` with a tuple aligned with ``tensors`` (None for those that
        got no gradient in this pass), after the pass has computed them. ``mode="any"``:
        ``fn(grad)`` with the first of them to be computed.
    """
    if mode not in ("all", "any"):
        raise ValueError(f"Expects mode to be one of ('all', 'any') but got {mode}")
    tensors = tuple(tensors)
    st = _MultiState(fn, mode, tensors)
    handles = []
    for i, t in enumerate(tensors):
        def hook(g, i=i):
            if mode == "any":
                if not st.hit:
                    st.hit = True
                    fn(g)
                return None
            st.grads[i] = g
            st.hit = True
            return None

        handles.append(t.register_hook(hook))
    _multi.add_state(st)

    def remove_all():
        for h in handles:
            h.remove()
        _multi.discard_state(st)

    return RemovableHandle(on_remove=remove_all)
