"""Step through backward one node at a time, on the same engine generator ``backward()`` drains.

The stepper keeps the graph alive (retain-graph semantics) while it is open so that it can step
back by deterministic replay: leaf gradients are reset to what they were before the stepper
started and a fresh generator is driven to the wanted position. ``close()`` (or dropping the
stepper) frees the graph's saved values the way ``backward()`` would have.

Readers of a stepper (the notebook view, recorders, exporters) use only its public read API,
listed in :class:`BackwardStepper`'s docstring. How a stepper displays in a notebook is
registered from above (``dyntorch.viz``) in :mod:`dyntorch._display`; this module never imports
a viewer.
"""
from __future__ import annotations

import fnmatch
import weakref
from collections.abc import Callable, Iterable

import numpy as np

from .. import _backend as B
from .. import _dispatch as D
from .. import _display
from .._source import where as source_where
from .._tensor import Tensor, _make
from ..autograd import engine as E
from ..autograd.engine import Step as EngineStep
from ..autograd.functional_api import _edge, _seq, make_roots
from ..autograd.node import AccumulateGrad
from .summary import summary

__all__ = ["BackwardStepper", "Step", "Breakpoint", "schedule"]


# ----------------------------------------------------------------------------- the order
schedule = E.plan  # the engine's own run order, with when each node became ready


# ----------------------------------------------------------------------------- a step
class Step(EngineStep):
    """One node of backward: the gradients that came in and the gradients it sent on.

    The engine's :class:`~dyntorch.autograd.engine.Step` (``grad_outputs`` flowing in,
    ``grad_inputs`` sent on, aligned with ``node.next_functions``) plus cached summaries.

    Attributes
    ----------
    node : Node
        The graph node that ran (``name()``, ``seq``, ``scope``, ``source``,
        ``next_functions``).
    index, total : int
        Position in the run (0-based) and number of nodes in the run.
    hit : Breakpoint or None
        The breakpoint that stopped :meth:`BackwardStepper.run` here.
    """

    __slots__ = ("_summary_in_cache", "_summary_out_cache", "hit")

    def __init__(self, node, gout, gin, index, total):
        super().__init__(node, gout, gin, index, total)
        self._summary_in_cache = self._summary_out_cache = None
        self.hit = None

    @property
    def summary_in(self) -> list:
        """Summaries of :attr:`grad_outputs` (computed on first use, then cached)."""
        if self._summary_in_cache is None:
            self._summary_in_cache = [None if g is None else summary(g) for g in self._gout]
        return self._summary_in_cache

    @property
    def summary_out(self) -> list:
        """Summaries of :attr:`grad_inputs` (computed on first use, then cached)."""
        if self._summary_out_cache is None:
            self._summary_out_cache = [None if g is None else summary(g) for g in self._gin]
        return self._summary_out_cache

    @property
    def scope(self) -> str:
        return self.node.scope

    @property
    def source(self):
        return self.node.source

    def describe(self) -> str:
        """One line: position, node, scope and the user's source line."""
        n = self.node
        where = f" in {n.scope}" if n.scope else ""
        src = n.source
        at = f" at {source_where(src)}" if src else ""
        return f"node {self.index + 1} of {self.total}: {n.name()}{where}{at}"

    def __repr__(self) -> str:
        return f"Step({self.describe()})"


# ----------------------------------------------------------------------------- breakpoints
def _arrays(step: Step):
    for g in step._gout:
        if g is not None:
            yield g
    for g in step._gin:
        if g is not None:
            yield g


def _has(arrs, test) -> bool:
    for a in arrs:
        if a.dtype.kind == "f" and bool(test(a)):
            return True
    return False


class Breakpoint:
    """A stop condition; every criterion that is set must hold (they are ANDed)."""

    __slots__ = ("op", "scope", "when", "nan", "inf", "norm_above", "_owner")

    def __init__(self, owner, op=None, scope=None, when=None, nan=False, inf=False,
                 norm_above=None):
        if isinstance(op, str):
            op = (op,)
        if isinstance(scope, str):
            scope = (scope,)
        self.op = None if op is None else tuple(op)
        self.scope = None if scope is None else tuple(scope)
        self.when, self.nan, self.inf, self.norm_above = when, nan, inf, norm_above
        self._owner = weakref.ref(owner)  # no cycle: a dropped stepper goes at once

    def _op_ok(self, node) -> bool:
        name = node.name()
        short = getattr(getattr(node, "op", None), "name", None)
        for o in self.op:
            if o == name or o == short or name == o + "Backward0":
                return True
        return False

    def _scope_ok(self, node) -> bool:
        s = node.scope
        for want in self.scope:
            if any(c in want for c in "*?["):
                if fnmatch.fnmatchcase(s, want):
                    return True
            elif s == want or (want and s.startswith(want + ".")):
                return True
        return False

    def matches(self, step: Step) -> bool:
        """Whether ``step`` satisfies every criterion of this breakpoint."""
        node = step.node
        if self.op is not None and not self._op_ok(node):
            return False
        if self.scope is not None and not self._scope_ok(node):
            return False
        if self.nan or self.inf:
            xp_nan = lambda a: _xp(a).isnan(a).any()
            xp_inf = lambda a: _xp(a).isinf(a).any()
            hit = (self.nan and _has(_arrays(step), xp_nan)) or \
                  (self.inf and _has(_arrays(step), xp_inf))
            if not hit:
                return False
        if self.norm_above is not None:
            lim = float(self.norm_above)
            if not _has(_arrays(step),
                        lambda a: float(_xp(a).sqrt((a.astype(np.float64) ** 2).sum())) > lim):
                return False
        if self.when is not None and not self.when(step):
            return False
        return True

    def remove(self) -> None:
        """Delete this breakpoint from its stepper."""
        owner = self._owner()
        bps = owner._bps if owner is not None else ()
        if self in bps:
            bps.remove(self)

    def __repr__(self) -> str:
        parts = [f"{k}={getattr(self, k)!r}" for k in
                 ("op", "scope", "when", "nan", "inf", "norm_above")
                 if getattr(self, k) not in (None, False)]
        return f"Breakpoint({', '.join(parts)})"


_xp = B.xp_of


def _freeze(arrs: list) -> list:
    """Keep what a step saw: later in-place accumulation must not change it.

    NumPy arrays are made read-only, which makes the engine add out of place instead (same
    values, same bits). Other arrays (CuPy has no such flag) are copied.
    """
    out = arrs
    for i, a in enumerate(arrs):
        if a is None:
            continue
        if a.__class__ is np.ndarray:
            a.flags.writeable = False
        else:
            if out is arrs:
                out = list(arrs)
            out[i] = a.copy()
    return out


# ----------------------------------------------------------------------------- the stepper
class BackwardStepper:
    """Prepare backward on ``output`` and run it node by node.

    Nothing runs until :meth:`step` or :meth:`run` is called. Run to the end, the stepper
    leaves exactly the gradients ``output.backward(gradient, inputs=inputs)`` leaves.

    Parameters
    ----------
    output : Tensor or sequence of Tensors
        What to differentiate (a scalar, unless ``gradient`` is given).
    gradient : Tensor, optional
        The seed gradient (``backward``'s ``gradient``).
    inputs : sequence of Tensors, optional
        Accumulate only into these (``backward``'s ``inputs``).
    retain_graph : bool
        Keep the graph's saved values when the stepper closes (default False: closing frees
        them, as ``backward()`` does).

    Notes
    -----
    The read API for views, recorders and exporters (nothing else is needed to draw a run):

    ``roots``
        The root nodes backward starts from.
    ``nodes``
        Every node of the run in creation (``seq``) order; ``order``: the same in run order.
    ``position``
        How many nodes have run (``len(history)``); ``total``: how many will.
    ``current``, ``history``
        The last :class:`Step` and every step so far (``step_of(node)`` for one node).
    ``index_of(node)``, ``state_of(i)``, ``state(node)``
        Run index and state (``"pending"``, ``"ready"``, ``"current"``, ``"done"``).
    ``version``
        A number that changes whenever the stepper moves (step, back, reset, close): a
        reader caches on ``(stepper, version)``.
    ``done``, ``closed``, ``status_text()``
        Whether backward finished, whether the stepper was closed, one line of status.

    Examples
    --------
    >>> s = BackwardStepper(loss)
    >>> s.break_on(nan=True)
    >>> st = s.run()          # stops at the first node whose gradients hold a NaN
    >>> st.node.source, st.summary_out
    >>> s.step_out()          # finish the current module scope
    """

    def __init__(self, output, gradient=None, *, inputs=None, retain_graph: bool = False):
        roots, seeds = make_roots(output, gradient, False, op="BackwardStepper")
        self._roots = roots
        self._seeds = seeds
        for s in seeds:  # the engine never adds into a seed in place, but keep it pristine
            if s.__class__ is np.ndarray:
                s.flags.writeable = False
        self._retain = retain_graph
        self._outputs = _seq(output)
        ins = _seq(inputs)
        self._inputs = ins
        self._capture = None
        if ins:
            cap = {}
            for i, t in enumerate(ins):
                if not isinstance(t, Tensor) or not t._requires_grad:
                    raise RuntimeError(f"BackwardStepper: inputs[{i}] does not require grad")
                cap[_edge(t)] = i
            self._capture = cap
        targets = None if self._capture is None else {e[0] for e in self._capture}
        self._order, self._ready_at = schedule([e[0] for e in roots], targets)
        # Gradients before we start, to go back to (back(), reset()).
        leaves = [n.variable for n in self._order if n.__class__ is AccumulateGrad]
        leaves += [t for t in ins if t.grad_fn is not None]
        self._snap = [(t, t._grad, None if t._grad is None else t._grad._data.copy())
                      for t in leaves]
        self._gen = None
        self._captured = None
        self._finished = False
        self._closed = False
        self.history: list[Step] = []
        self._bps: list[Breakpoint] = []
        self._index = None
        self._version = 0

    # ------------------------------------------------------------------ state (the read API)
    @property
    def roots(self) -> list:
        """The root nodes backward starts from (empty once closed)."""
        return [e[0] for e in self._roots]

    @property
    def nodes(self) -> list:
        """Every node of the run, in creation (``seq``) order."""
        return sorted(self._order, key=lambda n: n.seq)

    @property
    def position(self) -> int:
        """How many nodes have run (0 before the first step)."""
        return len(self.history)

    @property
    def version(self) -> int:
        """Changes whenever the stepper moves (step, back, reset, close)."""
        return self._version

    def state(self, node) -> str | None:
        """The state of ``node`` (see :meth:`state_of`); None if it is not in this run."""
        i = self.index_of(node)
        return None if i is None else self.state_of(i)

    @property
    def pending(self) -> list:
        """Nodes not yet run, in the order they will run."""
        return self._order[len(self.history):]

    @property
    def order(self) -> list:
        """Every node of the run, in run order."""
        return list(self._order)

    @property
    def current(self) -> Step | None:
        """The last step run (None before the first)."""
        return self.history[-1] if self.history else None

    @property
    def done(self) -> bool:
        return self._finished

    @property
    def total(self) -> int:
        return len(self._order)

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._order)

    def step_of(self, node) -> Step | None:
        """The step at which ``node`` ran, or None if it has not run."""
        i = self.index_of(node)
        return self.history[i] if i is not None and i < len(self.history) else None

    def index_of(self, node) -> int | None:
        """Run index of ``node`` (None if it is not part of this run)."""
        if self._index is None:
            self._index = {n: i for i, n in enumerate(self._order)}
        return self._index.get(node)

    def state_of(self, i: int) -> str:
        """'done', 'current', 'ready' or 'pending' for the node at run index ``i``."""
        k = len(self.history)
        if i < k - 1:
            return "done"
        if i == k - 1:
            return "done" if self._finished else "current"
        return "ready" if self._ready_at[i] <= k else "pending"

    def status_text(self) -> str:
        st = self.current
        if self._finished:
            return f"done: {len(self.history)} nodes run"
        if st is None:
            return f"ready to run {len(self._order)} nodes"
        return st.describe()

    # ------------------------------------------------------------------ driving
    def _check_open(self):
        if self._closed:
            raise RuntimeError("this BackwardStepper is closed; make a new one from the output "
                               "(the graph must still be alive, e.g. forward again)")

    def _start(self):
        # A fresh generator with retain-graph semantics: the graph must survive for replay.
        self._gen = E.steps(self._roots, list(self._seeds), retain_graph=True,
                            create_graph=False, capture=self._capture, accumulate=True)

    def _advance(self) -> Step | None:
        if self._finished:
            return None
        if self._gen is None:
            if self.history:  # the generator died (an error at the next node): rebuild it
                self._replay(len(self.history))
            else:
                self._start()
        prev = D.grad_enabled
        D.grad_enabled = False
        try:
            es = next(self._gen)
        except StopIteration as stop:
            self._finish(stop.value)
            return None
        except BaseException:
            # The node raised (or an observer such as detect_nonfinite did): the generator is
            # gone, but the steps before it stand; the next step replays up to here.
            self._gen = None
            raise
        finally:
            D.grad_enabled = prev
        node = es.node
        gout = es._gout
        if node.__class__ is AccumulateGrad and gout and gout[0] is not None:
            v = node.variable
            g = v._grad if v is not None else None
            if g is not None and g._data is gout[0]:  # the leaf took it by reference
                gout = [gout[0].copy()]
        st = Step(node, gout, _freeze(es._gin), es.index, len(self._order))
        self.history.append(st)
        self._version += 1
        return st

    def _replay(self, target: int) -> None:
        """Restart from the snapshot and run ``target`` nodes again (deterministic)."""
        self.reset()
        for _ in range(target):
            if self._advance() is None:
                break

    def _finish(self, captured):
        self._version += 1
        self._finished = True
        self._gen = None
        self._captured = captured
        if self._capture and captured:
            for t, g in zip(self._inputs, captured):
                if t.grad_fn is not None and g is not None:
                    g = _make(g.copy())
                    t._grad = g if t._grad is None else t._grad + g

    def _hit(self, st: Step) -> bool:
        for bp in self._bps:
            if bp.matches(st):
                st.hit = bp
                return True
        return False

    def step(self, n: int = 1) -> Step | None:
        """Run ``n`` nodes; return the last Step, or None when backward has finished."""
        self._check_open()
        st = None
        for _ in range(n):
            st = self._advance()
            if st is None:
                return None
        return st

    def run(self) -> Step | None:
        """Run to the next breakpoint (return its Step) or to the end (return None)."""
        self._check_open()
        bps = self._bps
        while True:
            st = self._advance()
            if st is None:
                return None
            if bps and self._hit(st):
                return st

    def step_out(self) -> Step | None:
        """Finish the current module scope and stop at the first node outside it.

        Like a debugger's step-out of a function: every node of the current node's module
        scope (and the scopes inside it) that is still to run runs, then the first node
        outside it; that node is returned (None when backward finishes first). A breakpoint
        on the way stops there. At the top level (no module scope) the run of top-level nodes
        is finished and the stepper stops at the first node inside a module. Before the first
        step this steps out of the first node's scope.
        """
        self._check_open()
        cur = self.current
        if cur is None:
            if not self._order:
                return None
            cur = self.step()
            if cur is None or (self._bps and self._hit(cur)):
                return cur
        scope = cur.node.scope

        def inside(s: str) -> bool:
            if not scope:
                return not s
            return s == scope or s.startswith(scope + ".")

        k = len(self.history)
        last = k - 1  # the last node of the scope still to run (interleaved runs included)
        if scope:
            for i in range(k, len(self._order)):
                if inside(self._order[i].scope):
                    last = i
        while True:
            st = self._advance()
            if st is None:
                return None
            if self._bps and self._hit(st):
                return st
            if len(self.history) - 1 > last and not inside(st.node.scope):
                return st

    def back(self, n: int = 1) -> Step | None:
        """Step back ``n`` nodes by deterministic replay; return the new current Step."""
        self._check_open()
        self._replay(max(0, len(self.history) - n))
        return self.current

    def reset(self) -> None:
        """Back to before the first node: leaf gradients are restored to their start values."""
        self._check_open()
        if self._gen is not None:
            self._gen.close()
            self._gen = None
        for t, g, data in self._snap:
            if g is not None:
                g._data = data.copy()
            t._grad = g
        self.history = []
        self._finished = False
        self._captured = None
        self._version += 1

    def __iter__(self):
        while True:
            st = self.step()
            if st is None:
                return
            yield st

    # ------------------------------------------------------------------ breakpoints
    def break_on(self, op: str | Iterable[str] | None = None,
                 scope: str | Iterable[str] | None = None,
                 when: Callable[[Step], bool] | None = None, nan: bool = False,
                 inf: bool = False, norm_above: float | None = None) -> Breakpoint:
        """Add a breakpoint for :meth:`run` and :meth:`step_out`.

        Parameters
        ----------
        op : str or iterable of str
            Node name (``"MulBackward0"``) or op name (``"mul"``).
        scope : str or iterable of str
            Module scope; matches that scope and the scopes inside it (``""``: nodes made
            outside any module). Glob patterns (``"blocks.*.attn"``) are allowed.
        when : callable
            ``when(step) -> bool``.
        nan, inf : bool
            Stop where a gradient coming in or going out holds a NaN / an Inf.
        norm_above : float
            Stop where some gradient's L2 norm exceeds this.

        Returns
        -------
        Breakpoint
            Call ``.remove()`` on it to delete it. Several breakpoints may be set: the run
            stops at the first step that matches any of them.
        """
        self._check_open()
        bp = Breakpoint(self, op=op, scope=scope, when=when, nan=nan, inf=inf,
                        norm_above=norm_above)
        self._bps.append(bp)
        return bp

    @property
    def breakpoints(self) -> list:
        return list(self._bps)

    def clear_breakpoints(self) -> None:
        self._bps.clear()

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Stop stepping and free the graph (unless ``retain_graph=True``); idempotent."""
        if self._closed:
            return
        self._closed = True
        gen, self._gen = self._gen, None
        if gen is not None:
            gen.close()
        if not self._retain:
            for node in self._order:
                free = getattr(node, "_free", None)
                if free is not None:
                    free()
        self._order = []
        self._ready_at = []
        self._roots = []
        self._seeds = []
        self._snap = []
        self._outputs = ()
        self._inputs = ()
        self._capture = None
        self._captured = None
        self._index = None
        self.history = []
        self._bps = []
        self._version += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def summaries(self, step: Step) -> dict:
        """``{"in": [...], "out": [...]}`` summaries for ``step`` (as in the graph document)."""
        return {"in": step.summary_in, "out": step.summary_out}

    def widget(self, *, model=None, **kw):
        """The notebook debugger view of this stepper (registered by ``dyntorch.viz``).

        ``model`` (an ``nn.Module``) names parameters and module types in the view.
        """
        self._check_open()
        return _display.view(self, model=model, **kw)

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        # In a notebook the stepper shows as its debugger view; elsewhere as text.
        text = {"text/plain": repr(self)}
        if self._closed:
            return text
        b = _display.mimebundle(self, include=include, exclude=exclude)
        if b is None:  # no viewer here (anywidget missing, no front end)
            return text
        data = b[0] if isinstance(b, tuple) else b
        if isinstance(data, dict):
            data["text/plain"] = repr(self)
        return b

    def __repr__(self) -> str:
        if self._closed:
            return "<BackwardStepper closed>"
        return f"<BackwardStepper {self.status_text()}>"

