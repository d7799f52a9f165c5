"""``backward`` and ``grad``: both drain the engine's step generator."""
from __future__ import annotations

from collections.abc import Sequence

from .. import _backend as B
from .. import _dispatch as D
from .._tensor import Tensor, _make
from .engine import steps
from .node import accumulator

#: Objects told about every ``backward()``: ``before_backward(outputs)`` runs before the engine
#: and ``after_backward(outputs)`` after it (the live view follows training loops this way).
#: An observer's exception is its own business: it never breaks the user's backward.
backward_observers: list = []


def _notify(method: str, outputs) -> None:
    for o in tuple(backward_observers):
        try:
            getattr(o, method)(outputs)
        except Exception as e:  # noqa: BLE001 - drawing must never break training
            o.error = e


def _seq(x) -> tuple:
    if x is None:
        return ()
    if isinstance(x, Tensor):
        return (x,)
    return tuple(x)


def _edge(t: Tensor):
    if t.grad_fn is not None:
        return (t.grad_fn, t._out_nr)
    return (accumulator(t), 0)


def make_roots(outputs, grad_outputs, create_graph, op="backward"):
    """Edges and seed gradients for the engine, with torch's checks and messages."""
    if grad_outputs is None and outputs.__class__ is tuple and len(outputs) == 1:
        t = outputs[0]  # the common call, loss.backward(): one scalar, seeded with 1
        if isinstance(t, Tensor) and t._requires_grad and t._data.size == 1:
            d = t._data
            g = B.xp_of(d).ones(d.shape, dtype=d.dtype) if d.ndim else \
                B.xp_of(d).array(1, dtype=d.dtype)
            return [_edge(t)], [_make(g) if create_graph else g]
    outputs = _seq(outputs)
    grads = list(_seq(grad_outputs)) or [None] * len(outputs)
    if len(grads) != len(outputs):
        raise RuntimeError(f"{op}: got {len(grads)} gradients for {len(outputs)} outputs; "
                           "pass one gradient per output")
    roots, seeds = [], []
    for i, (t, g) in enumerate(zip(outputs, grads)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors as outputs, got {type(t).__name__}")
        if not t._requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn. "
                "Did you compute it under no_grad(), detach it, or forget "
                "requires_grad=True on the inputs?")
        if g is None:
            if t._data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; this output has "
                    f"shape {list(t.shape)}. Pass `gradient=` (a tensor of that shape), or "
                    "reduce it first, e.g. `out.sum().backward()`.")
            xp = B.xp_of(t._data)
            g = xp.ones(t._data.shape, dtype=t._data.dtype)
        else:
            if not isinstance(g, Tensor):
                g = _make(B.xp_of(t._data).asarray(g, dtype=t._data.dtype))
            if g._data.shape != t._data.shape:
                raise RuntimeError(
                    f"Mismatch in shape: grad_output[{i}] has a shape of {list(g.shape)} and "
                    f"output[{i}] has a shape of {list(t.shape)}.")
            if g.device != t.device:
                raise RuntimeError(
                    f"{op}: gradient is on {g.device} but the output is on {t.device}")
            g = g if create_graph else g._data.copy()
        if create_graph and not isinstance(g, Tensor):
            g = _make(g)
        roots.append(_edge(t))
        seeds.append(g)
    return roots, seeds


def drain(gen, value: bool = True):
    """Run a step generator to its end and return its value (None with ``value=False``,
    which skips the StopIteration that carrying a value costs)."""
    if not value:
        for _ in gen:
            pass
        return None
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             grad_variables=None, inputs=None):
    """Accumulate gradients of ``tensors`` into the leaves' ``.grad``.

    ``grad_variables`` is torch's deprecated name for ``grad_tensors``."""
    if grad_variables is not None:
        import warnings

        warnings.warn("'grad_variables' is deprecated. Use 'grad_tensors' instead.",
                      FutureWarning, stacklevel=2)
        if grad_tensors is not None:
            raise RuntimeError("'grad_tensors' and 'grad_variables' (deprecated) arguments "
                               "both passed to backward(). Please only use 'grad_tensors'.")
        grad_tensors = grad_variables
    if retain_graph is None:
        retain_graph = create_graph
    if backward_observers:
        outs = _seq(tensors)
        _notify("before_backward", outs)
        try:
            return _backward(tensors, grad_tensors, retain_graph, create_graph, inputs)
        finally:
            _notify("after_backward", outs)
    return _backward(tensors, grad_tensors, retain_graph, create_graph, inputs)


def _backward(tensors, grad_tensors, retain_graph, create_graph, inputs):
    roots, seeds = make_roots(tensors, grad_tensors, create_graph)
    capture = None
    accumulate = True
    ins = _seq(inputs)
    if ins:
        capture = {}
        for i, t in enumerate(ins):
            if not t._requires_grad:
                raise RuntimeError(f"backward: inputs[{i}] does not require grad")
            capture[_edge(t)] = i
    prev = D.grad_enabled
    D.grad_enabled = create_graph
    try:
        got = drain(steps(roots, seeds, retain_graph=retain_graph, create_graph=create_graph,
                          capture=capture, accumulate=accumulate, record=False),
                    value=capture is not None)
    finally:
        D.grad_enabled = prev
    if capture:
        for t, g in zip(ins, got):
            if t.grad_fn is not None and g is not None:
                g = g if isinstance(g, Tensor) else _make(g.copy())
                t._grad = g if t._grad is None else t._grad + g


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         only_inputs=True, allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """Gradients of ``outputs`` w.r.t. ``inputs``, returned rather than accumulated."""
    if retain_graph is None:
        retain_graph = create_graph
    single = isinstance(inputs, Tensor)
    ins = _seq(inputs)
    if isinstance(inputs, Sequence) and not ins:
        raise RuntimeError("grad requires non-empty inputs.")
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t._requires_grad:
            raise RuntimeError(f"One of the differentiated Tensors (inputs[{i}]) does not "
                               "require grad")
    roots, seeds = make_roots(outputs, grad_outputs, create_graph, op="grad")
    capture = {}
    for i, t in enumerate(ins):
        capture.setdefault(_edge(t), i)
    prev = D.grad_enabled
    D.grad_enabled = create_graph
    try:
        got = drain(steps(roots, seeds, retain_graph=retain_graph, create_graph=create_graph,
                          capture=capture, accumulate=False, record=False))
    finally:
        D.grad_enabled = prev
    res = []
    for i, t in enumerate(ins):
        g = got[capture[_edge(t)]]
        if g is None:
            if materialize_grads:
                from .. import zeros_like

                res.append(zeros_like(t))
                continue
            if not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors (inputs[{i}]) appears to not have been "
                    "used in the graph. Set allow_unused=True if this is the desired behavior.")
            res.append(None)
        else:
            res.append(g if isinstance(g, Tensor) else _make(g))
    return tuple(res) if not single else tuple(res)
