"""Custom differentiable functions: ``autograd.Function`` with torch's API.

A subclass defines ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)`` as static
methods and is called through ``Fn.apply(...)``. As in torch, the ``ctx`` handed to both is the
graph node itself (an instance of the generated class ``FnBackward``), so readers of the graph
(the debugger, the live view, the exporter) see a custom Function like any other node: it has
``seq``, ``scope``, ``source``, ``next_functions``, hooks and per-output metadata.
"""
from __future__ import annotations

import functools

from .. import _backend as B
from .. import _dispatch as D
from .._tensor import Tensor, _make
from . import anomaly as _anomaly
from . import graph as _graph
from .node import Node, SavedFreed, accumulator, next_seq

__all__ = ["Function", "FunctionCtx", "BackwardCFunction", "once_differentiable",
           "InplaceFunction", "NestedIOFunction"]

_NON_TENSOR_META = ((), B.np.dtype(object), None)

#: ``fn(node, result)`` runs after a Function call recorded its node (``result`` as
#: ``apply`` returns it): the door's forward observers (``_dispatch.add_hook``) never see
#: these calls, so readers that summarise forward outputs (debug.Recorder) register here.
output_observers: list = []

_FREED_MSG = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed), at {name}. Saved intermediate values of the graph "
    "are freed when you call .backward() or autograd.grad(). Specify retain_graph=True if you "
    "need to backward through the graph a second time or if you need to access saved tensors "
    "after calling backward.")


class FunctionCtx:
    """What ``forward`` and ``backward`` may call on ``ctx``.

    Any other attribute may be set freely on ``ctx`` (``ctx.alpha = 2``) to pass non-tensor
    state from forward to backward.
    """

    __slots__ = ()

    def save_for_backward(self, *tensors) -> None:
        """Keep ``tensors`` (or None) for ``backward``; read them back with ``saved_tensors``.

        Saved tensors are version-checked: changing one in place before backward raises.
        Active :func:`dyntorch.autograd.graph.saved_tensors_hooks` pack them here.
        """
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_backward can only save variables, but argument {i} is of type "
                    f"{type(t).__name__}. Store non-tensor values as attributes of ctx instead "
                    "(e.g. `ctx.k = k`).")
        self._to_save = tensors

    @property
    def saved_tensors(self) -> tuple:
        """The tensors given to ``save_for_backward``, checked against in-place changes."""
        if self._freed:
            raise RuntimeError(_FREED_MSG.format(name=self.name()))
        saved = self._saved
        if saved is None:
            return ()
        out = []
        for i, (t, ver, unpack) in enumerate(saved):
            if unpack is not None:
                if unpack is _OUTPUT:  # an output of this node: rebuilt on demand
                    data, vc, nr = t
                    t = _make(data, self)
                    t._out_nr = nr
                    t._version_box = vc
                else:
                    out.append(unpack(t))
                    continue
            if t is not None:
                cur = t._version_box[0] if t._version_box is not None else 0
                if cur != ver:
                    d = t._data
                    raise RuntimeError(
                        "one of the variables needed for gradient computation has been "
                        f"modified by an inplace operation: [{B.from_np(d.dtype)} "
                        f"{list(d.shape)}], which is saved tensor {i} of {self.name()}, is at "
                        f"version {cur}; expected version {ver} instead. Hint: the in-place "
                        "change happened after the forward that saved it; use an out-of-place "
                        "op or `.clone()` before changing it.")
            out.append(t)
        return tuple(out)

    saved_variables = saved_tensors

    def mark_dirty(self, *tensors) -> None:
        """Declare inputs that ``forward`` modified in place (they must be returned)."""
        self._dirty = tensors

    def mark_non_differentiable(self, *tensors) -> None:
        """Declare outputs that get no gradient (``requires_grad=False``, zero grad in)."""
        self._non_diff = tensors

    def set_materialize_grads(self, value: bool) -> None:
        """With ``False``, ``backward`` gets None (not zeros) for outputs that got no grad."""
        self._materialize = bool(value)


class BackwardCFunction(FunctionCtx, Node):
    """The graph node of one ``Function.apply`` call (and the ``ctx`` of its forward).

    One subclass per Function, named ``<Function>Backward``, is made by :class:`FunctionMeta`;
    those subclasses carry a ``__dict__`` for the user's ctx attributes.
    """

    __slots__ = ("needs_input_grad", "_to_save", "_saved", "_freed", "_dirty", "_non_diff",
                 "_materialize", "_is_tensor", "_in_meta", "_out_meta", "_nout")

    _forward_cls = None

    def _init(self) -> None:
        self.next = ()
        self.seq = next_seq()
        self.scope = D.scope
        self._src = D.capture_source() if D.record_source else None
        self._pre_hooks = self._hooks = self._meta = None
        self._to_save = None
        self._saved = None
        self._freed = False
        self._dirty = ()
        self._non_diff = ()
        self._materialize = True
        self._nout = 1
        self._out_meta = ()

    # --- Node API used by the engine and the readers ---------------------------------
    @property
    def num_outputs(self) -> int:
        return self._nout

    def output_meta(self):
        # One entry per output, aligned with output numbers; a non-tensor output of forward
        # shows as a 0-d object so that readers indexing by output number stay right.
        return tuple(_NON_TENSOR_META if m is None else m for m in self._out_meta)

    def input_tensors(self) -> tuple:
        saved = self._saved
        if not saved:
            return ()
        return tuple(t for t, _v, unpack in saved if unpack is None and t is not None)

    def _free(self) -> None:
        saved = self._saved
        if saved:
            self._saved = tuple(
                (SavedFreed(t) if isinstance(t, Tensor) else None, v, None)
                for t, v, _u in saved)
            self._freed = True

    def _apply(self, grads, create_graph: bool):
        """Call the user's backward; return one gradient per edge in ``self.next``."""
        if self._nout == 1:
            grads = (grads,)
        materialize = self._materialize
        gts = []
        for g, meta in zip(grads, self._out_meta):
            if g is None:
                if materialize and meta is not None:
                    shape, dtype, dev = meta
                    g = _make(B.xp_for(dev).zeros(shape, dtype=dtype))
            elif not isinstance(g, Tensor):
                g = _make(g)
            gts.append(g)
        cls = self._forward_cls
        fn = cls.backward
        if fn is Function.backward:  # torch lets a Function define ``vjp`` instead
            fn = cls.vjp
        try:
            res = fn(self, *gts)
        except Exception as e:
            if _anomaly._state["enabled"] and hasattr(e, "add_note"):
                loc = _anomaly.where(self)
                e.add_note(f"Error detected in {self.name()}"
                           + (f"; its forward call was at {loc}" if loc else ""))
            raise
        if not isinstance(res, tuple):
            res = (res,)
        return self._validate(res, create_graph)

    def _validate(self, res, create_graph):
        name = self.name()
        is_tensor = self._is_tensor
        n_in = len(is_tensor)
        if len(res) != n_in:
            if len(res) < n_in or any(r is not None for r in res[n_in:]):
                raise RuntimeError(
                    f"function {name} returned an incorrect number of gradients (expected "
                    f"{n_in}, got {len(res)}): return one gradient (or None) per argument "
                    "of forward, in order.")
        out = []
        k = 0
        for pos in range(n_in):
            r = res[pos]
            if not is_tensor[pos]:
                if r is not None:
                    raise RuntimeError(
                        f"function {name} returned a gradient different than None at position "
                        f"{pos + 1}, but the corresponding forward input was not a Variable")
                continue
            edge = self.next[k]
            shape, dtype, dev = self._in_meta[k]
            k += 1
            if edge is None or r is None:
                out.append(None)
                continue
            if not isinstance(r, Tensor):
                raise TypeError(
                    f"function {name} returned a {type(r).__name__} as gradient {pos}; "
                    "expected a Tensor or None")
            rd = r._data
            if rd.shape != shape:
                try:
                    ok = B.np.broadcast_shapes(rd.shape, shape) == rd.shape
                except ValueError:
                    ok = False
                if not ok:
                    raise RuntimeError(
                        f"Function {name} returned an invalid gradient at index {pos} - got "
                        f"{list(rd.shape)} but expected shape compatible with {list(shape)}")
            if B.device_of(rd) != dev:
                raise RuntimeError(
                    f"Function {name} returned an invalid gradient at index {pos} - expected "
                    f"device {dev} but got {B.device_of(rd)}")
            if create_graph:
                if rd.shape != shape:
                    r = D.tensor_ns().sum_to(r, shape)
                if r._data.dtype != dtype:
                    r = r.to(B.from_np(dtype))
                out.append(r)
            else:
                if rd.shape != shape:
                    rd = D.array_ns(B.xp_of(rd)).sum_to(rd, shape)
                if rd.dtype != dtype:
                    rd = rd.astype(dtype)
                elif rd.base is None:
                    # The user may still hold this array (a saved tensor, a ctx attribute):
                    # hand the engine a view so it never adds into it in place.
                    rd = rd.view()
                out.append(rd)
        return out


class FunctionMeta(type):
    """Gives each Function subclass its node class ``<Name>Backward``."""

    def __init__(cls, name, bases, attrs):
        bw = type(name + "Backward", (BackwardCFunction,), {"_forward_cls": cls,
                                                           "__module__": cls.__module__})
        cls._backward_cls = bw
        super().__init__(name, bases, attrs)


class Function(FunctionCtx, metaclass=FunctionMeta):
    """Base class for custom differentiable operations (``torch.autograd.Function``).

    Examples
    --------
    >>> class Exp(Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         y = x.exp()
    ...         ctx.save_for_backward(y)
    ...         return y
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (y,) = ctx.saved_tensors
    ...         return g * y
    >>> y = Exp.apply(x)
    """

    __slots__ = ()

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError(
            "Legacy autograd function with non-static forward method is deprecated. Please "
            "use new-style autograd function with static forward method: define forward and "
            "backward as @staticmethod and call `MyFunction.apply(...)`.")

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError(
            "You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom "
            "autograd.Function to use it with backward mode AD.")

    @staticmethod
    def vjp(ctx, *grad_outputs):
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom "
            "autograd.Function to use it with backward mode AD.")

    @staticmethod
    def jvp(ctx, *grad_inputs):
        raise NotImplementedError(
            "You must implement the jvp function for custom autograd.Function to use it with "
            "forward mode AD (dyntorch has no forward mode).")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run ``forward`` without recording graph and record one node for the call."""
        bw = cls._backward_cls
        ctx = bw.__new__(bw)
        ctx._init()
        is_tensor = tuple(isinstance(a, Tensor) for a in args)
        needs = tuple(it and a._requires_grad for it, a in zip(is_tensor, args))
        ctx.needs_input_grad = needs
        ctx._is_tensor = is_tensor
        record = D.grad_enabled and any(needs)
        prev = D.grad_enabled
        D.grad_enabled = False
        try:
            if _uses_setup_context(cls):
                output = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args if not kwargs else args + tuple(kwargs.values()),
                                  output)
            else:
                output = cls.forward(ctx, *args, **kwargs)
        finally:
            D.grad_enabled = prev
        if not record:
            _save(ctx)
            ctx._freed = False
            return output
        edges = []
        in_meta = []
        for a in args:
            if isinstance(a, Tensor):
                d = a._data
                in_meta.append((d.shape, d.dtype, B.device_of(d)))
                if a._requires_grad:
                    fn = a.grad_fn
                    edges.append((fn, a._out_nr) if fn is not None else (accumulator(a), 0))
                else:
                    edges.append(None)
        ctx.next = edges
        ctx.seq = next_seq()  # after any AccumulateGrad just made: seq stays topological
        ctx._in_meta = in_meta
        res = _wrap_outputs(ctx, args, output)
        if output_observers:
            for fn in tuple(output_observers):
                fn(ctx, res)
        return res


def _uses_setup_context(cls) -> bool:
    return cls.setup_context is not Function.setup_context


def _save(ctx) -> None:
    """Store what forward asked to save, with versions (or packed by saved-tensor hooks)."""
    ts = ctx._to_save
    ctx._to_save = None
    if ts is None:
        return
    hooks = _graph._hooks_stack
    if hooks:
        pack, unpack = hooks[-1]
        ctx._saved = tuple((None, 0, None) if t is None else (pack(t), 0, unpack) for t in ts)
        return
    saved = []
    for t in ts:
        if t is None:
            saved.append((None, 0, None))
            continue
        if t._version_box is None:
            t._version_box = [0]
        if t.grad_fn is ctx:
            # Keeping an output tensor would make a cycle (tensor -> node -> tensor) that only
            # the garbage collector frees; keep its array and version counter instead.
            saved.append(((t._data, t._version_box, t._out_nr), t._version_box[0], _OUTPUT))
        else:
            saved.append((t, t._version_box[0], None))
    ctx._saved = tuple(saved)


def _OUTPUT(_packed):  # marker for saved outputs (see _save)
    raise AssertionError("not called")


def _wrap_outputs(ctx, args, output):
    single = not isinstance(output, tuple)
    outs = (output,) if single else output
    dirty = ctx._dirty
    non_diff = ctx._non_diff
    dirty_ids = {id(t) for t in dirty}
    input_ids = {id(a) for a in args if isinstance(a, Tensor)}
    returned = set()
    res = []
    metas = []
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            res.append(o)
            metas.append(None)
            continue
        d = o._data
        metas.append((d.shape, d.dtype, B.device_of(d)))
        returned.add(id(o))
        diff = (d.dtype.kind == "f" or B.is_float_np(d.dtype)) and not any(o is t for t in non_diff)
        if id(o) in dirty_ids:
            if o._requires_grad and o.grad_fn is None:
                raise RuntimeError(
                    f"{ctx.name()}: a leaf Variable that requires grad is being used in an "
                    "in-place operation (it was marked dirty in forward). Clone it before "
                    "calling the function, or run it under no_grad().")
            t = o  # modified in place: the input itself now comes from this node
        elif id(o) in input_ids or o._requires_grad:
            # An input returned as is (or a tensor with history): return an alias so the
            # caller's tensor keeps its own place in the graph.
            t = _make(d)
            if o._version_box is None:
                o._version_box = [0]
            t._version_box = o._version_box
        else:
            t = o
        if diff:
            t.grad_fn = ctx
            t._out_nr = i
            t._requires_grad = True
        else:
            t.grad_fn = None
            t._requires_grad = False
        res.append(t)
    for t in dirty:
        if id(t) not in returned:
            raise RuntimeError(
                f"{ctx.name()}: some elements marked as dirty during the forward method were "
                "not returned as output. The inputs that are modified inplace must all be "
                "outputs of the Function.")
    ctx._nout = len(outs)
    ctx._out_meta = tuple(metas)
    _save(ctx)
    return res[0] if single else tuple(res)


# ----------------------------------------------------------------------------- once_differentiable
class _DelayedError(Node):
    """Stands where a once-differentiable backward's result would continue the graph."""

    __slots__ = ("msg",)

    def __init__(self, msg: str, edges):
        self.msg = msg
        self.next = edges
        self.seq = next_seq()
        self.scope = D.scope
        self._src = None
        self._pre_hooks = self._hooks = self._meta = None

    def name(self) -> str:
        return "DelayedError"

    def _apply(self, grads, create_graph):
        raise RuntimeError(self.msg)


def once_differentiable(fn):
    """Decorate ``backward`` when it is not itself differentiable (it runs without graph).

    Double backward through such a Function raises a clear error instead of silently
    returning wrong higher-order gradients.
    """

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        prev = D.grad_enabled
        D.grad_enabled = False
        try:
            outs = fn(ctx, *args)
        finally:
            D.grad_enabled = prev
        if not prev:
            return outs
        edges = []
        for a in args:
            if isinstance(a, Tensor) and a._requires_grad:
                fn_ = a.grad_fn
                edges.append((fn_, a._out_nr) if fn_ is not None else (accumulator(a), 0))
        if not edges:
            return outs
        single = not isinstance(outs, tuple)
        msg = ("trying to differentiate twice a function that was marked with "
               f"@once_differentiable ({ctx.name()}); its backward is not differentiable. "
               "Write its backward with differentiable tensor ops (and drop the decorator) to "
               "get higher-order gradients.")
        res = []
        for o in ((outs,) if single else outs):
            if isinstance(o, Tensor):
                err = _DelayedError(msg, list(edges))
                o = _make(o._data, err)
            res.append(o)
        return res[0] if single else tuple(res)

    return wrapper


class InplaceFunction(Function):
    """A Function with an ``inplace`` flag (torch's legacy helper)."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace


class NestedIOFunction(Function):
    """Not supported in dyntorch (torch's legacy nested-IO Function)."""

    @classmethod
    def apply(cls, *args, **kwargs):
        raise NotImplementedError("NestedIOFunction is not supported in dyntorch; use "
                                  "Function with flat tensor arguments")
