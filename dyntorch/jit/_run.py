"""Replay a static graph with the device's array module only: no Tensor, no autograd.

Each node calls the registered ``OpDef.forward(xp, *arrays, **attrs)`` it was recorded from (a
fused node calls its generated kernel). Intermediate arrays are dropped after their last use.
"""
from __future__ import annotations

import numpy as np

from .. import _backend as B
from .. import _dispatch as D
from ._ir import FUSED, Graph, Ref, map_refs

ndarray = np.ndarray


class UnknownOpError(RuntimeError):
    """A saved graph names an op this dyntorch does not register."""


def resolve_op(name: str, where: str = ""):
    """The registered OpDef for ``name`` (importing the op families first)."""
    op = D.REGISTRY.get(name)
    if op is None:
        import dyntorch.ops  # noqa: F401  (registers the op families)
        try:  # nn-level ops (conv, norms...) may live in modules registered on import
            import dyntorch.nn  # noqa: F401
        except Exception:  # pragma: no cover - nn is optional for replay
            pass
        op = D.REGISTRY.get(name)
    if op is None:
        raise UnknownOpError(
            f"op '{name}'{where} is not registered in this dyntorch "
            f"({len(D.REGISTRY)} ops known). The graph was traced with a dyntorch that has this "
            "op; upgrade dyntorch or re-trace the model with this version.")
    return op


class Plan:
    """A graph compiled into a flat list of steps for fast replay."""

    def __init__(self, graph: Graph):
        from ._fusion import build_fused

        self.graph = graph
        self.subst: dict = {}  # traced size -> size of this call, for input dims that differ
        self.n = len(graph.values)
        self.inputs = list(graph.inputs)
        out_ids = {r.i for r in graph.output_refs()}
        last: dict[int, int] = {}
        for k, node in enumerate(graph.nodes):
            for i in node.refs():
                last[i] = k
        steps = []
        for k, node in enumerate(graph.nodes):
            if node.op == FUSED:
                fwd = build_fused(node, graph)
                multi = False
            else:
                op = resolve_op(node.op, f" (scope '{node.scope}')" if node.scope else "")
                fwd = op.forward
                multi = op.multi
                if node.op in _RESHAPES and "shape" in node.attrs and node.args and \
                        isinstance(node.args[0], Ref):
                    fwd = _follow_shapes(fwd, node.op, graph.values[node.args[0].i].shape,
                                         graph.values[node.outs[0]].shape, self.subst)
            spec = []
            for a in node.args:
                if isinstance(a, Ref):
                    spec.append((0, a.i))
                elif isinstance(a, (tuple, list)) and any(True for _ in _iter(a)):
                    spec.append((2, a))
                else:
                    spec.append((1, a))
            free = tuple(i for i, kk in last.items()
                         if kk == k and i not in out_ids and graph.values[i].kind == "node")
            steps.append((fwd, tuple(spec), node.attrs, tuple(node.outs), multi, free))
        self.steps = steps
        self._consts: dict = {}
        self._in_shapes = [tuple(graph.values[i].shape) for i in self.inputs]

    def consts_for(self, dev) -> list:
        key = str(dev)
        c = self._consts.get(key)
        if c is None:
            c = [(i, B.move(a, dev)) for i, a in self.graph.consts.items()]
            self._consts[key] = c
        return c

    def run(self, arrays: list):
        """Outputs (nested like the traced function's) for input arrays of one device."""
        first = arrays[0] if arrays else None
        xp = np if first is None or first.__class__ is ndarray else B.xp_of(first)
        dev = B.CPU if first is None else B.device_of(first)
        env = [None] * self.n
        for i, a in self.consts_for(dev):
            env[i] = a
        subst = self.subst
        subst.clear()
        for i, a, t in zip(self.inputs, arrays, self._in_shapes):
            env[i] = a
            if a.shape != t:
                for n_t, n_a in zip(t, a.shape):
                    if n_t != n_a and n_t > 1:
                        subst.setdefault(n_t, n_a)
        for n, (fwd, spec, attrs, outs, multi, free) in enumerate(self.steps):
            args = [env[x] if k == 0 else (x if k == 1 else _resolve(x, env))
                    for k, x in spec]
            try:
                out = fwd(xp, *args, **attrs)
            except Exception as e:  # name the op, where it ran, and what it got vs traced
                raise self._error(n, args, e) from e
            if multi:
                for o, r in zip(outs, out):
                    env[o] = r if r.__class__ is ndarray else xp.asarray(r)
            else:
                env[outs[0]] = out if out.__class__ is ndarray else xp.asarray(out)
            for i in free:
                env[i] = None
        return _collect(self.graph.outputs, env)


_RESHAPES = frozenset({"reshape", "reshape_copy", "squeeze", "unsqueeze", "expand"})


def _follow_shapes(fwd, name: str, t_in: tuple, t_out: tuple, subst: dict):
    """Wrap a reshape-like forward so that its baked target follows a different input size
    (another batch size, say): the traced input/output dims are paired into merge/split
    blocks; a merged dim becomes the product of the actual input dims, and in a split the
    first dim that can absorb the change takes it."""
    from ._blocks import reshape_blocks

    t_in, t_out = tuple(t_in), tuple(t_out)
    blocks = reshape_blocks(t_in, t_out) if name != "expand" else None

    def run(xp, a, shape=None, **attrs):
        sh = a.shape
        if sh == t_in and (blocks is not None or not subst):
            return fwd(xp, a, shape=shape, **attrs)
        new = list(t_out)
        if blocks is None:  # expand: non-broadcast dims follow the input; broadcast ones
            lead = len(t_out) - len(t_in)  # follow a graph input's size they were traced at
            for j in range(len(t_out)):
                d = j - lead
                if d >= 0 and t_in[d] != 1:
                    new[j] = sh[d]
                elif t_out[j] in subst:
                    new[j] = subst[t_out[j]]
        else:
            for bi, bj in blocks:
                if all(sh[d] == t_in[d] for d in bi):
                    continue
                got = 1
                for d in bi:
                    got *= sh[d]
                was = 1
                for d in bi:
                    was *= t_in[d]
                if len(bj) == 1:
                    new[bj[0]] = got
                    continue
                for j in bj:
                    if was and (t_out[j] * got) % was == 0:
                        new[j] = t_out[j] * got // was
                        break
        return fwd(xp, a, shape=tuple(new), **attrs)

    return run


def _replay_error(plan: Plan, n: int, args, err) -> RuntimeError:
    g = plan.graph
    node = g.nodes[n]
    got = ", ".join(f"{a.dtype.name}{list(a.shape)}" if hasattr(a, "shape") else repr(a)
                    for a in args)
    traced = ", ".join(g.values[r.i].type_str() for r in node.args if isinstance(r, Ref))
    where = f" in module '{node.scope}'" if node.scope else ""
    return RuntimeError(
        f"traced graph, op #{n} '{node.op}'{where} failed: {err}. It got ({got}); at trace time "
        f"its tensor inputs were ({traced}). Inputs of other sizes work where the graph "
        "follows them (elementwise ops, matmul, reshapes); tensors created in the forward "
        "with sizes read from the input are constants of the trace.")


Plan._error = lambda self, n, args, err: _replay_error(self, n, args, err)


def _iter(obj):
    if isinstance(obj, Ref):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            yield from _iter(o)


def _resolve(obj, env):
    return map_refs(obj, lambda r: env[r.i])


def _collect(obj, env):
    if isinstance(obj, Ref):
        return env[obj.i]
    if isinstance(obj, tuple):
        return tuple(_collect(o, env) for o in obj)
    return [_collect(o, env) for o in obj]
