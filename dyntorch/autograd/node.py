"""Graph nodes: what the forward pass leaves behind for backward and for every reader.

A :class:`Node` is plain data: the op, the inputs it saved, edges to the nodes of its inputs
(``next_functions``), its creation order ``seq``, the module ``scope`` and the user's source line.
``backward()``, the step debugger, the live view, the tracer and the exporter all read these.
"""
from __future__ import annotations

import itertools
import linecache
import weakref

from .. import _backend as B
from .._hooks import RemovableHandle
from .._tensor import Tensor

_seq = itertools.count()
next_seq = _seq.__next__


class SavedFreed:
    """Stands in for a saved input once backward has freed it: keeps shape and dtype only."""

    __slots__ = ("shape", "dtype", "requires_grad")

    def __init__(self, t):
        self.shape = t._data.shape
        self.dtype = t._data.dtype
        self.requires_grad = t._requires_grad


class Node:
    """Base of every graph node. Subclasses implement :meth:`_apply`."""

    __slots__ = ("next", "seq", "scope", "_src", "__dict__", "__weakref__")
    # Rarely set: class-level defaults, overridden per instance only when used.
    _pre_hooks = None
    _hooks = None
    _meta = None
    _plain = True  # no node hooks: the engine may take its fast path (hooks make it False)

    def name(self) -> str:
        return type(self).__name__

    # --- the torch.autograd.graph.Node API -------------------------------------------
    @property
    def next_functions(self) -> tuple:
        return tuple((None, 0) if e is None else e for e in self.next)

    @property
    def metadata(self) -> dict:
        if self._meta is None:
            self._meta = {}
        return self._meta

    def register_hook(self, fn):
        """``fn(grad_inputs, grad_outputs)`` runs after this node; may return new grad_inputs."""
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(fn)
        self._plain = False
        return RemovableHandle(on_remove=lambda: _discard(self._hooks, fn))

    def register_prehook(self, fn):
        """``fn(grad_outputs)`` runs before this node; may return new grad_outputs."""
        if self._pre_hooks is None:
            self._pre_hooks = []
        self._pre_hooks.append(fn)
        self._plain = False
        return RemovableHandle(on_remove=lambda: _discard(self._pre_hooks, fn))

    @property
    def source(self):
        """(filename, lineno) of the user code that created this node, or None."""
        src = self._src
        if src is None:
            return None
        code, lasti = src
        from .._dispatch import line_of

        return (code.co_filename, line_of(code, lasti))

    @property
    def source_text(self) -> str:
        src = self.source
        if src is None:
            return ""
        return linecache.getline(src[0], src[1]).strip()

    @property
    def num_outputs(self) -> int:
        return 1

    def output_meta(self):  # (shape, np dtype, device) per output, for readers
        return ()

    def input_tensors(self) -> tuple:
        return ()

    def __repr__(self) -> str:
        return f"<{self.name()} seq={self.seq}>"


def _discard(hooks: list, fn) -> None:
    try:
        hooks.remove(fn)
    except ValueError:  # removed twice
        pass


class OpNode(Node):
    """The graph node of one op that went through the door (``_dispatch.apply``).

    The door fills it (``_dispatch._record``) and the door's ``derive``/``run_node`` run its
    derivative; the engine and every reader see it through the Node API.
    """

    # ``arrays``: the input arrays as the forward saw them (backward reads them directly);
    # ``epoch``: MUTATIONS when recorded, -1 once freed (see run_node); ``out``/``out_box``:
    # the output array and its version counter, kept only by ops whose derivative uses them;
    # ``aux``: the auxiliary outputs the derivative reads (set only for ops declaring them)
    __slots__ = ("op", "inputs", "arrays", "attrs", "out_meta", "epoch", "out", "out_box", "aux")
    vers = None
    time_us = None

    def name(self) -> str:
        return self.op.backward_name

    @property
    def freed(self) -> bool:
        """True once backward has dropped what this node saved."""
        return self.epoch == -1

    def input_tensors(self) -> tuple:
        if self.inputs is None:
            return ()
        return tuple(a for a in self.inputs if isinstance(a, Tensor))

    def output_meta(self):
        """((shape, numpy dtype, device),) of the output, also after the graph is freed."""
        shape, dtype, dev = self.out_meta
        return ((shape, dtype, dev if dev is not None else B.CPU),)

    @property
    def num_outputs(self) -> int:
        return 1

    def _free(self) -> None:
        """Drop what backward saved (inputs, output) so memory goes back as the graph is
        walked; the node keeps its metadata for readers."""
        self.inputs = self.arrays = self.out = self.aux = None
        self.epoch = -1


class AccumulateGrad(Node):
    """Sink for a leaf tensor: adds the incoming gradient into ``variable.grad``.

    The leaf holds its AccumulateGrad strongly and the node holds the leaf weakly, so no
    reference cycle keeps either alive (a leaf that is gone needs no gradient).
    """

    __slots__ = ("_var",)

    @property
    def variable(self):
        return self._var()

    def output_meta(self):
        v = self._var()
        if v is None:
            return ()
        d = v._data
        return ((d.shape, d.dtype, v.device),)

    def input_tensors(self) -> tuple:
        v = self._var()
        return () if v is None else (v,)


_new = object.__new__
_ref = weakref.ref


def accumulator(t) -> AccumulateGrad:
    """The (cached) AccumulateGrad node of leaf tensor ``t``."""
    acc = t._acc
    if acc is None:
        acc = _new(AccumulateGrad)
        acc._var = _ref(t)
        acc.next = ()
        acc.seq = next_seq()
        acc.scope = ""
        acc._src = None
        t._acc = acc
    return acc
