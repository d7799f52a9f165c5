"""Find the FIRST NaN or Inf, in forward order, and say where the user's code made it.

``detect_nonfinite()`` watches every op's output in the forward pass (a dispatch hook) and every
node's gradients in backward (an engine step observer). The first non-finite value raises
:class:`NonFiniteError` naming the op, the module scope, the user's source line and summaries of
what went in and came out.
"""
from __future__ import annotations

import contextlib
import linecache

from .. import _backend as B
from .. import _dispatch as D
from .._source import where as source_where
from .._tensor import Tensor
from ..autograd import engine as E
from .summary import describe_summary, summary

__all__ = ["NonFiniteError", "detect_nonfinite"]


def _scope_type(scope: str) -> str | None:
    if not scope:
        return None
    try:
        from ..nn.module import SCOPE_TYPES
    except ImportError:
        return None
    return SCOPE_TYPES.get(scope)


class NonFiniteError(RuntimeError):
    """A NaN or Inf appeared.

    Attributes
    ----------
    direction : str
        ``'forward'`` (an op's output) or ``'backward'`` (a node's gradients).
    op : str
        The op's name (forward, e.g. ``'log'``) or the node's name (backward, e.g.
        ``'SqrtBackward0'``).
    scope : str
        Qualified name of the ``nn.Module`` whose forward ran the op ('' outside modules).
    source : tuple or None
        ``(filename, lineno)`` of the user's line that ran the op (forward) or created the
        node (backward).
    source_text : str
        That line's text.
    inputs, outputs : list of Summary or None
        Forward: the op's tensor inputs and its output. Backward: the gradients that came in
        and the gradients the node sent on.
    node : Node or None
        The graph node (backward; forward when the op recorded one).
    """

    def __init__(self, direction, op, scope, source, inputs, outputs, node=None,
                 forward_checked=False):
        self.direction = direction
        self.forward_checked = forward_checked
        self.op = op
        self.scope = scope
        self.source = source
        self.source_text = linecache.getline(source[0], source[1]).strip() if source else ""
        self.inputs = inputs
        self.outputs = outputs
        self.node = node
        super().__init__(self._message())

    def _message(self) -> str:
        bad = [s for s in self.outputs if s is not None and (s["nan"] or s["inf"])]
        nan = sum(s["nan"] for s in bad)
        inf = sum(s["inf"] for s in bad)
        if self.direction == "forward":
            what = f"the output of op '{self.op}' in the forward pass"
            at = "at"
            fix = ("Check the values that reach this op (e.g. clamp before log/sqrt/div, or "
                   "use a numerically stable form such as log_softmax).")
            ins, outs = "inputs", "output"
        else:
            what = f"the gradients computed by {self.op} in the backward pass"
            if self.forward_checked:
                what += " (no NaN/Inf was seen in the forward pass)"
            at = "for the forward op at"
            fix = ("The forward op's derivative is infinite or undefined at these inputs (e.g. "
                   "sqrt or pow at 0, log at 0, division by ~0); add an epsilon or clamp in "
                   "the forward pass.")
            ins, outs = "gradients in", "gradients out"
        typ = _scope_type(self.scope)
        where = (f" inside module '{self.scope}'" + (f" ({typ})" if typ else "")
                 if self.scope else " outside any nn.Module")
        if self.source:
            src = f", {at} {source_where(self.source)}"
            if self.source_text:
                src += f" (`{self.source_text}`)"
        else:
            src = ", source line unknown (set dyntorch._dispatch.record_source = True)"

        def lst(ss):
            if not ss:
                return "none"
            return "; ".join(f"#{i} " + ("None" if s is None else describe_summary(s))
                             for i, s in enumerate(ss))

        return (f"detect_nonfinite: found {nan} NaN and {inf} Inf in {what}{where}{src}. "
                f"{ins.capitalize()}: {lst(self.inputs)}. {outs.capitalize()}: "
                f"{lst(self.outputs)}. {fix}")


def _nonfinite(arr) -> bool:
    if arr.dtype.kind != "f":
        return False
    return not bool(B.xp_of(arr).isfinite(arr).all())


class _Watch:
    __slots__ = ("forward", "backward")

    def __init__(self, forward, backward):
        self.forward, self.backward = forward, backward


_active: list = []  # stack of _Watch; the hooks read the innermost


def _forward_hook(op, args, attrs, result):
    if not _active or not _active[-1].forward:
        return
    res = result[0] if isinstance(result, tuple) else result
    if not isinstance(res, Tensor) or not _nonfinite(res._data):
        return
    # Inputs that already held NaN/Inf mean an earlier op was the first; that op would have
    # raised, unless those came from outside the watched region - report here all the same.
    node = res.grad_fn
    src = node.source if node is not None else None
    if src is None:
        raw = D.capture_source()
        src = (raw[0].co_filename, D.line_of(*raw)) if raw else None
    ins = [summary(a) for a in args if isinstance(a, Tensor)]
    outs = [summary(r) for r in (result if isinstance(result, tuple) else (result,))
            if isinstance(r, Tensor)]
    raise NonFiniteError("forward", op.name, D.scope, src, ins, outs, node)


def _backward_observer(step):
    if not _active or not _active[-1].backward:
        return
    bad = False
    for g in step._gin:
        if g is not None and _nonfinite(g._data if isinstance(g, Tensor) else g):
            bad = True
            break
    if not bad and step.index == 0:  # a non-finite seed gradient
        for g in step._gout:
            if g is not None and _nonfinite(g._data if isinstance(g, Tensor) else g):
                bad = True
                break
    if not bad:
        return
    node = step.node
    ins = [None if g is None else summary(g) for g in step._gout]
    outs = [None if g is None else summary(g) for g in step._gin]
    if not any(s is not None and (s["nan"] or s["inf"]) for s in outs):
        outs = ins  # the seed itself was bad
    raise NonFiniteError("backward", node.name(), node.scope, node.source, ins, outs, node,
                         forward_checked=_active[-1].forward)


@contextlib.contextmanager
def detect_nonfinite(forward: bool = True, backward: bool = True):
    """Raise :class:`NonFiniteError` at the first NaN/Inf in forward or backward.

    Parameters
    ----------
    forward : bool
        Check the output of every op run inside the block.
    backward : bool
        Check the gradients of every node of any backward run inside the block.

    Examples
    --------
    >>> with dyntorch.debug.detect_nonfinite():
    ...     loss = model(x).sum()
    ...     loss.backward()
    """
    w = _Watch(forward, backward)
    first = not _active
    _active.append(w)
    if first:
        D._hooks.append(_forward_hook)
        E.observers.append(_backward_observer)
    try:
        yield w
    finally:
        _active.remove(w)
        if not _active:
            if _forward_hook in D._hooks:
                D._hooks.remove(_forward_hook)
            if _backward_observer in E.observers:
                E.observers.remove(_backward_observer)
