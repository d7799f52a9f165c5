"""The one backward engine, written as a generator of :class:`Step`.

``Tensor.backward()`` and ``autograd.grad()`` drain it; the step debugger drives it one node at a
time. Order: nodes run from a ready heap keyed on reverse creation order, so a chain runs in
exact reverse of the forward pass and the full order is known up front (:func:`plan`). A
run that yields Steps counts dependencies first; a plain ``backward()`` needs no count,
because ``seq`` is topological (every node is newer than the nodes its gradients go to), and
light observers (``on_node``, see ``observers``) keep it that way.
"""
from __future__ import annotations

import heapq
from heapq import heappop, heappush

from .. import _dispatch as D
from .._backend import writeable, xp_of
from .._tensor import Tensor, _make, bump_version
from .hooks import captured_grad
from .node import AccumulateGrad, OpNode

_SINGLE = (OpNode, AccumulateGrad)  # the node kinds with exactly one output

# Step observers: ``fn(step)`` runs for every Step the engine yields (anomaly detection,
# non-finite checks). Empty, it costs one truthiness test per node. An observer whose
# ``holds_graph`` attribute is true when a run starts may stop that run half way to hand its
# graph to a debugger (debug.Recorder's breaks): saved values then stay until the run ends
# (freed there, unless retain_graph) instead of going as each node finishes.
# An observer with an ``on_node`` attribute (not None when a run starts) is a light one: the
# engine calls ``on_node(node, grads)`` instead, ``grads`` being the raw gradient arrays that
# came in (aligned with the node's outputs, None where nothing flowed), and builds no Step and
# counts no dependencies for it, so a plain backward keeps its swift path (debug.Recorder
# without breaks: bench_debug.py --recorder, see that file for the figure).
observers: list = []


class Step:
    """What happened at one node: gradients that came in and gradients it sent on.

    ``grad_outputs`` is aligned with the node's outputs, ``grad_inputs`` with
    ``node.next_functions``. Both hold Tensors (None where nothing flowed).
    """

    __slots__ = ("node", "_gin", "_gout", "index", "total", "captured")

    def __init__(self, node, gout, gin, index, total):
        self.node, self._gout, self._gin, self.index, self.total = node, gout, gin, index, total
        self.captured = None

    @property
    def grad_outputs(self) -> tuple:
        return tuple(_as_tensor(g) for g in self._gout)

    @property
    def grad_inputs(self) -> tuple:
        return tuple(_as_tensor(g) for g in self._gin)

    def __repr__(self) -> str:
        return f"Step({self.index + 1}/{self.total}: {self.node.name()})"


def _as_tensor(g):
    if g is None or isinstance(g, Tensor):
        return g
    return _make(g)


def collect(roots) -> tuple[dict, list]:
    """Count, for every node reachable from ``roots``, how many edges point at it."""
    deps: dict = {}
    order = []
    stack = [n for n in dict.fromkeys(roots) if n is not None]
    roots = set(stack)
    push, pop, visit = stack.append, stack.pop, order.append
    while stack:
        n = pop()
        visit(n)
        for e in n.next:
            if e is not None:
                c = e[0]
                if c in deps:
                    deps[c] += 1
                else:
                    deps[c] = 1
                    if c not in roots:
                        push(c)
    return deps, order


def _needed(order, targets) -> set:
    """Nodes from which some target is reachable (only those run when inputs= is given)."""
    reach: set = set()
    for n in sorted(order, key=lambda n: n.seq):  # children are older than parents
        for e in n.next:
            if e is not None and (e[0] in reach or e[0] in targets):
                reach.add(n)
                break
    return reach


def _start(root_nodes, deps) -> list:
    # Ready heap of (-seq, node): seq is unique, so nodes themselves are never compared.
    if len(root_nodes) == 1:  # one root: nothing can be waiting to send into it
        return [(-root_nodes[0].seq, root_nodes[0])]
    ready = [(-n.seq, n) for n in set(root_nodes) if deps is None or deps.get(n, 0) == 0]
    heapq.heapify(ready)
    return ready


def plan(root_nodes, targets=None) -> tuple[list, list]:
    """The exact order the engine will run nodes in, and when each becomes ready.

    Mirrors :func:`steps` without running anything: dependency counts, then a ready heap
    keyed on reverse creation order. (The heap also yields the moment each node becomes
    ready, which the step view shows; the order equals reverse ``seq`` among reachable nodes.)
    Returns ``(order, ready_at)`` where ``ready_at[i]`` is how many nodes had run when
    ``order[i]`` entered the ready heap.
    """
    deps, order = collect(root_nodes)
    keep = _needed(order, targets) if targets is not None else None
    ready = _start(root_nodes, deps)
    when = {n: 0 for _, n in ready}
    out = []
    while ready:
        node = heapq.heappop(ready)[1]
        out.append(node)
        for e in node.next:
            if e is None:
                continue
            c = e[0]
            left = deps[c] - 1
            deps[c] = left
            if left == 0 and (keep is None or c in keep or c in targets):
                heapq.heappush(ready, (-c.seq, c))
                when[c] = len(out)
    return out, [when[n] for n in out]


class _Run:
    """What one backward run shares between its nodes.

    ``buf`` holds the pending gradients per node, flat: [grad of output 0, owned?, grad of
    output 1, ...]. "Owned" means this run made the array and nobody else holds it, so later
    partial gradients may be added into it in place. ``deps`` (None when not counted) maps a
    node to how many edges into it have not run yet.
    """

    __slots__ = ("buf", "ready", "deps", "keep", "targets", "capture", "captured",
                 "create_graph", "retain_graph", "accumulate", "held")


def steps(roots, grads, *, retain_graph=False, create_graph=False, capture=None,
          accumulate=True, record=True):
    """Run backward from ``roots`` (edges ``(node, nr)``) seeded with ``grads``.

    ``capture`` maps edges to result slots (``autograd.grad``); with it, only nodes that lead
    to a captured edge run, and leaves get ``.grad`` only when ``accumulate``. Yields a
    :class:`Step` after each node; returns the captured gradients. With ``record=False``
    and no observer registered it runs to the end without yielding (plain ``backward()``:
    nobody reads those Steps, so none is built).
    """
    root_nodes = [roots[0][0]] if len(roots) == 1 else [e[0] for e in roots]
    hold = False
    lit: tuple = ()  # light observers (on_node), called through ``watch``
    watch = None
    watched = bool(observers)  # some observer wants Steps
    if observers:
        for ob in observers:
            on_node = getattr(ob, "on_node", None)
            if on_node is not None:
                lit += (ob,)
                watch = on_node if watch is None else _both(watch, on_node)
            elif not retain_graph and getattr(ob, "holds_graph", False):
                hold = True
        watched = len(lit) < len(observers)
    plain = not create_graph
    # A plain backward that nobody watches runs nodes in reverse creation order as gradients
    # reach them: seq is topological (a node draws it after the nodes of its inputs exist),
    # so the newest pending node never waits for another and no dependency count is needed.
    # Otherwise dependencies are counted first, which also gives Steps their total.
    deps = total = keep = targets = captured = None
    if not plain or capture is not None or record or watched:
        deps, order = collect(root_nodes)
        total = len(order)
    buf: dict = {}
    if len(roots) == 1 and roots[0][0].__class__ in _SINGLE:  # a loss
        buf[root_nodes[0]] = [grads[0], False]
    else:
        for (node, nr), g in zip(roots, grads):
            _add(buf, node, nr, g, False, create_graph)
    if capture is not None:
        targets = {e[0] for e in capture}
        keep = _needed(order, targets)
        captured = [None] * (max(capture.values()) + 1 if capture else 0)
        total = len(keep) + len([t for t in targets if t not in keep])
    # The next node to run when it is newer than everything in the heap (in a chain, always):
    # it would be popped next anyway, so it skips the heap. One root starts there.
    if len(root_nodes) == 1:
        ready, pending = [], root_nodes[0]
    else:
        ready, pending = _start(root_nodes, deps), None
    # what the general path (_node_step) reads, made when a node first takes it: a plain
    # backward whose nodes all take the swift path never needs it (bench_core.py chain: about
    # 0.4 us of its backward's fixed cost)
    run = None
    derive, fit_grad = D.derive, D.fit_grad
    # plain and unwatched: nodes without hooks take the swift path, and no Step is made
    swift = plain and targets is None and deps is None
    index = 0
    try:
        while pending is not None or ready:
            if pending is not None:
                node, pending = pending, None
            else:
                node = heappop(ready)[1]
            entry = buf.pop(node, None)
            kind = node.__class__
            fit_to = None
            if swift and node._plain and entry[0] is not None and kind is OpNode:
                if watch is not None:
                    watch(node, entry[0::2])
                # The common node of a plain backward: no hooks, no capture, nobody reads a
                # Step: derive, free, and fit the results below while handing them on.
                g0 = entry[0]
                gs = None
                outs = derive(node, g0)
                fit_to = node.arrays
                if not retain_graph:
                    node._free()
                report = False
            elif swift and node._plain and entry[0] is not None and kind is AccumulateGrad:
                if watch is not None:
                    watch(node, entry[0::2])
                _accumulate(node, entry[0], entry[1], False)
                continue
            else:
                if run is None:
                    run = _Run()
                    run.buf, run.ready, run.deps, run.keep = buf, ready, deps, keep
                    run.targets, run.capture, run.captured = targets, capture, captured
                    run.create_graph, run.retain_graph = create_graph, retain_graph
                    run.accumulate = accumulate
                    run.held = [] if hold else None  # nodes whose saved values wait for the end
                gs, outs = _node_step(run, node, kind, entry)
                if watch is not None:
                    watch(node, gs)
                g0 = gs[0] if gs else None
                report = record or watched
            # Hand on: put what the node sent into the buffers of the nodes it feeds and queue
            # those that are ready. One copy for every node; inline rather than a function
            # because a call per node cost bench_core's chain ~25% of its backward (57 -> 72
            # us, measured in one process against the previous engine).
            n = len(outs)
            # a result sent to two inputs (x + x) or passed through is nobody's to add into
            shared = n > 1 and (outs[0] is outs[1] if n == 2 else _repeats(outs))
            several_in = gs is not None and len(gs) > 1
            i = -1
            for e in node.next:
                i += 1
                if e is None:
                    continue
                c = e[0]
                r = outs[i]
                got = buf.get(c)
                if r is not None:
                    if fit_to is not None:
                        ad = fit_to[i]
                        if r.__class__ is not ad.__class__ or r.shape != ad.shape or \
                                r.dtype is not ad.dtype:
                            r = fit_grad(r, ad)
                    # ours to add into later? only if this run made it and nobody else has it
                    own = plain and r is not g0 and r.base is None and not shared and (
                        not several_in or _fresh(r, gs))
                    if got is None and c.__class__ in _SINGLE:
                        buf[c] = [r, own]
                    elif got is not None and report and n > 1 and plain and \
                            _from_this_step(got[2 * e[1]], outs):
                        # x * x: both partials go to x; adding the second into the first in
                        # place would change what this step reports as sent
                        s = got[2 * e[1]] + r
                        got[2 * e[1]] = s if s.__class__ is r.__class__ else xp_of(r).asarray(s)
                        got[2 * e[1] + 1] = True
                    else:
                        _add(buf, c, e[1], r, own, create_graph)
                elif got is None and deps is None:  # reached, with no gradient
                    buf[c] = [None, False] * (1 if c.__class__ in _SINGLE else c.num_outputs)
                if deps is None:
                    if got is not None:  # reached before: already queued
                        continue
                    if c.seq > node.seq:
                        raise _order_error(c, node)
                else:
                    left = deps[c] - 1
                    deps[c] = left
                    if left or not (keep is None or c in keep or c in targets):
                        continue
                # c is ready: hold the newest ready node as pending, heap the others
                if pending is None:
                    if not ready or c.seq > -ready[0][0]:
                        pending = c
                    else:
                        heappush(ready, (-c.seq, c))
                elif c.seq > pending.seq:
                    heappush(ready, (-pending.seq, pending))
                    pending = c
                else:
                    heappush(ready, (-c.seq, c))
            if report:
                step = Step(node, gs, outs, index, total)
                if watched:
                    for fn in tuple(observers):
                        if fn not in lit:
                            fn(step)
                yield step
            index += 1
        if hold and run is not None:  # finished normally: free what each node would have freed
            for node in run.held:
                free = getattr(node, "_free", None)  # OpNodes and autograd.Function nodes
                if free is not None:
                    free()
    finally:
        buf.clear()
    return captured


def _both(a, b):
    """Two light observers' ``on_node`` called as one."""
    def on_node(node, grads):
        a(node, grads)
        b(node, grads)
    return on_node


def _node_step(run, node, kind, entry):
    """Run one node the general way (hooks, capture, create_graph, Functions): returns the
    gradients that came in and those it sends on (one per edge), and frees what it saved."""
    nxt = node.next
    outs = None
    targets = run.targets
    create_graph = run.create_graph
    try:
        if entry is None:
            gs, fl = [None] * node.num_outputs, None
        else:
            gs, fl = entry[0::2], entry[1::2]
        runs = True
        if targets is not None:
            if node in targets:
                _capture(node, gs, run.capture, run.captured, create_graph)
            runs = node in run.keep or (run.accumulate and kind is AccumulateGrad and
                                        node in targets)
        if runs:
            if kind is OpNode and node._plain:
                if gs[0] is not None:
                    outs = D.run_node(node, gs[0], create_graph)
            else:
                gs, outs = _run(node, gs, fl, create_graph, run.accumulate or run.keep is None)
                if len(outs) < len(nxt):  # an AccumulateGrad sends nothing on
                    outs = list(outs) + [None] * (len(nxt) - len(outs))
    except Exception as e:
        for ob in tuple(observers):
            on_error = getattr(ob, "on_error", None)
            if on_error is not None:
                on_error(node, e)
        raise
    if outs is None:
        return gs, [None] * len(nxt)
    if not run.retain_graph:
        if run.held is not None:
            run.held.append(node)
        else:
            free = node._free if kind is OpNode else getattr(node, "_free", None)
            if free is not None:  # AccumulateGrad saves nothing; autograd.Function nodes do
                free()
    return gs, outs


def _order_error(c, node) -> RuntimeError:
    return RuntimeError(f"internal error: {c.name()} (seq {c.seq}) was created after its "
                        f"consumer {node.name()} (seq {node.seq}); please report this")


def _capture(node, gs, capture, captured, create_graph) -> None:
    for nr in range(len(gs)):
        slot = capture.get((node, nr))
        if slot is not None and gs[nr] is not None:
            g = gs[nr]
            if node._meta is not None or node.__class__ is AccumulateGrad:
                g = captured_grad(node, nr, g, create_graph)  # tensor hooks
            captured[slot] = g


def _fresh(r, gs) -> bool:
    """True when ``r`` is not one of the gradients that came in (it was not passed through)."""
    for g in gs:
        if g is r:
            return False
    return True


def _from_this_step(cur, outs) -> bool:
    for o in outs:
        if o is cur:
            return True
    return False


def _repeats(res) -> bool:
    """True when one array appears twice among ``res`` (Nones aside)."""
    ids = [id(x) for x in res if x is not None]
    return len(set(ids)) < len(ids)


def _add(buf, node, nr, g, is_fresh, create_graph):
    entry = buf.get(node)
    if entry is None:
        entry = buf[node] = [None, False] * node.num_outputs
    k = 2 * nr
    cur = entry[k]
    if cur is None:
        entry[k] = g
        entry[k + 1] = is_fresh
    elif create_graph:
        entry[k] = cur + g
    elif entry[k + 1] and cur.shape == g.shape and cur.dtype == g.dtype and _add_into(cur, g):
        pass
    else:
        s = cur + g
        entry[k] = s if s.__class__ is cur.__class__ else xp_of(cur).asarray(s)  # 0-d sums
        entry[k + 1] = True


def _add_into(cur, g) -> bool:
    """``cur += g`` unless ``cur`` is read-only (a broadcast view); True when done. Asking
    NumPy for forgiveness: reading ``flags.writeable`` made a flags object per call."""
    try:
        cur += g
    except ValueError:
        if writeable(cur):
            raise
        return False
    return True


def _run(node, gs, fl, create_graph, accumulate):
    """Hooks around one node's own work. Returns (grads it got, grads it sends)."""
    if node._pre_hooks:
        gs = list(gs)
        for h in tuple(node._pre_hooks):
            r = h(tuple(_as_tensor(g) for g in gs))
            if r is not None:
                gs = [None if x is None else (x if create_graph else x._data) for x in r]
    if node.__class__ is AccumulateGrad:
        if accumulate:
            _accumulate(node, gs[0], fl[0] if fl else False, create_graph)
        if node._hooks:  # torch calls them with no grad_inputs and the incoming grad
            for h in tuple(node._hooks):
                h((), tuple(_as_tensor(g) for g in gs))
        return gs, []
    if all(g is None for g in gs):
        return gs, [None] * len(node.next)
    if node.num_outputs == 1:
        outs = node._apply(gs[0], create_graph)
    else:
        outs = node._apply(gs, create_graph)
    if node._hooks:
        for h in tuple(node._hooks):
            r = h(tuple(_as_tensor(o) for o in outs), tuple(_as_tensor(g) for g in gs))
            if r is not None:
                outs = [None if x is None else (x if create_graph else x._data) for x in r]
    return gs, outs


def _accumulate(node, g, is_fresh, create_graph):
    t = node._var()
    if g is None or t is None:
        return
    extra = t._extra
    hooks = extra.get("hooks") if extra else None
    if hooks:
        for h in tuple(hooks.values()):
            r = h(_as_tensor(g))
            if r is not None:
                g = r if create_graph else r._data
        is_fresh = False
    if create_graph:
        gt = g if isinstance(g, Tensor) else _make(g)
        t._grad = gt if t._grad is None else t._grad + gt
    else:
        if isinstance(g, Tensor):
            g = g._data
        old = t._grad
        if old is None:
            t._grad = _make(g if is_fresh and writeable(g) else g.copy())
        elif old._requires_grad or old.grad_fn is not None:
            t._grad = _make(xp_of(g).asarray(old._data + g))
        else:
            d = old._data
            if d.shape == g.shape and _add_into(d, g):
                if old._version_box is not None:  # bump_version(old, create=False), inlined
                    bump_version(old, create=False)
            else:
                old._data = xp_of(g).asarray(d + g)
    post = t._extra.get("post_hooks") if t._extra else None
    if post:
        for h in tuple(post.values()):
            h(t)

