"""How tensors travel between processes (``torch.multiprocessing.reductions``).

A tensor whose data is in shared memory (``share_memory_``) is sent as a handle to that
memory, so the receiver writes where the sender reads; any other tensor is copied, as plain
pickling does. This applies to whatever ``multiprocessing`` pickles: ``Process`` arguments
under ``spawn``/``forkserver``, ``Queue`` and ``Pipe`` messages.
"""
from __future__ import annotations

from multiprocessing.reduction import ForkingPickler

from .. import _shared_memory
from .._tensor import Tensor, _init, _make, _new

_REGISTERED: set[type] = set()


def register(cls: type) -> None:
    """Send tensors of class ``cls`` by shared handle (the pickler looks classes up exactly)."""
    if cls not in _REGISTERED:
        ForkingPickler.register(cls, _reduce_tensor)
        _REGISTERED.add(cls)


def init_reductions() -> None:
    """Register the tensor classes dyntorch defines (``torch.multiprocessing.init_reductions``)."""
    from ..nn.parameter import Parameter

    register(Tensor)
    register(Parameter)


def _reduce_tensor(t: Tensor):
    if not _shared_memory.is_shared(t._data):
        return type(t).__reduce_ex__(t, 4)
    if t.grad_fn is not None:
        raise RuntimeError(
            "Cowardly refusing to serialize non-leaf tensor which requires_grad, since autograd "
            "does not support crossing process boundaries. If you just want to transfer the "
            "data, call detach() on the tensor before serializing (e.g., putting it on the queue).")
    extra = {k: v for k, v in (getattr(t, "__dict__", None) or {}).items()
             if not k.startswith("_")}
    return (_rebuild_shared, (type(t), _shared_memory.handle(t._data), t._requires_grad, extra))


def _rebuild_shared(cls: type, handle: tuple, requires_grad: bool, extra: dict) -> Tensor:
    arr = _shared_memory.attach(*handle)
    from ..nn.parameter import Parameter

    if issubclass(cls, Parameter):
        t = cls(_make(arr), requires_grad)
    else:
        t = _make(arr) if cls is Tensor else _new(cls)
        _init(t, arr)
        t._requires_grad = requires_grad
    if extra:
        t.__dict__.update(extra)
    register(cls)  # so this process can pass it on by handle too
    return t
