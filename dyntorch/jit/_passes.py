"""Graph passes on a traced graph: dead code elimination, constant folding, elementwise fusion.

Each pass takes a :class:`Graph` and returns a new one; values keep their indices until
:func:`compact` renumbers them for a tidy print-out.
"""
from __future__ import annotations

from ._ir import FUSED, Graph, Local, Node, Ref, Value, map_refs

# Ops whose output has the broadcast shape of their inputs and is computed element by element;
# chains of these are fused into one kernel. (Names are OpDef registry names.)
ELEMENTWISE = frozenset({
    "add", "sub", "mul", "div", "neg", "pow", "pow_tensor", "exp", "exp2", "log", "log2",
    "log10", "log1p", "expm1", "sqrt", "rsqrt", "square", "reciprocal", "abs", "sign", "sin",
    "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "sigmoid", "relu", "erf",
    "clamp", "maximum", "minimum", "lerp",
    # activation family (registered by ops/activation.py when present)
    "gelu", "silu", "leaky_relu", "elu", "softplus", "hardtanh", "relu6", "hardsigmoid",
    "hardswish", "mish", "selu", "celu", "logsigmoid", "softsign", "tanhshrink",
})

# Ops that must never be evaluated at compile time (their result is not a function of inputs).
_IMPURE = ("rand", "dropout", "bernoulli", "multinomial", "normal", "uniform", "randint")


def dce(graph: Graph) -> Graph:
    """Drop nodes whose outputs never reach a graph output, and constants nothing reads."""
    g = graph.copy()
    live = {r.i for r in g.output_refs()}
    keep = []
    for n in reversed(g.nodes):
        if any(o in live for o in n.outs):
            keep.append(n)
            live.update(n.refs())
    g.nodes = keep[::-1]
    g.consts = {i: a for i, a in g.consts.items() if i in live}
    return g


def fold_constants(graph: Graph, max_growth: int = 4, min_bytes: int = 1 << 20,
                   keep=("expand",)) -> Graph:
    """Evaluate, once, every node whose inputs are all constants (e.g. ``weight.t()``).

    A result much larger than its inputs (an ``expand`` of a scalar, say) is left unfolded
    so that the saved file does not grow. Ops named in ``keep`` are never folded (``expand``
    is a free view, and kept it can follow the batch size at replay).
    """
    from ._run import resolve_op

    g = graph.copy()
    kept = []
    for n in g.nodes:
        refs = n.refs()
        if (n.op == FUSED or n.op in keep or any(s in n.op for s in _IMPURE)
                or any(g.values[i].kind != "const" for i in refs)):
            kept.append(n)
            continue
        op = resolve_op(n.op)
        arrays = map_refs(n.args, lambda r: g.consts[r.i])
        from .. import _backend as B

        first = next((g.consts[i] for i in refs), None)
        xp = B.np if first is None else B.xp_of(first)
        out = op.forward(xp, *arrays, **n.attrs)
        outs = out if op.multi else (out,)
        size_in = sum(g.consts[i].nbytes for i in refs)
        outs = [xp.asarray(o) for o in outs]
        if sum(o.nbytes for o in outs) > max(max_growth * size_in, min_bytes):
            kept.append(n)
            continue
        src = g.values[refs[0]].name if len(set(refs)) == 1 else "folded"
        for o_idx, arr in zip(n.outs, outs):
            if arr.base is not None:  # own the memory: a folded view must not pin its base
                arr = arr.copy()
            v = g.values[o_idx]
            g.values[o_idx] = Value(o_idx, "const", f"{src}.{n.op}{o_idx}", arr.shape,
                                    arr.dtype)
            g.consts[o_idx] = arr
            del v
    g.nodes = kept
    return dce(g)


def _uses(graph: Graph) -> dict:
    uses: dict = {}
    for k, n in enumerate(graph.nodes):
        for i in n.refs():
            uses.setdefault(i, []).append(k)
    for r in graph.output_refs():
        uses.setdefault(r.i, []).append(-1)  # a graph output: used outside
    return uses


def fuse_elementwise(graph: Graph, min_len: int = 2) -> Graph:
    """Merge chains of elementwise ops into one fused node per chain.

    A chain grows while the next elementwise op reads the chain's last result and nothing
    else reads that result; the other inputs of each op become inputs of the fused node.
    """
    g = graph.copy()
    uses = _uses(g)
    groups: list[list[int]] = []
    tail_of: dict[int, int] = {}  # value index -> group index, for the tail value of a group
    for k, n in enumerate(g.nodes):
        if n.op not in ELEMENTWISE or len(n.outs) != 1:
            continue
        # every chain whose last result only this op reads joins it (a DAG such as
        # 0.5 * x * (1 + tanh(...)) becomes one node)
        joined = []
        for i in dict.fromkeys(n.refs()):
            if i in tail_of and uses.get(i) and all(u == k for u in uses[i]):
                joined.append(tail_of.pop(i))
        if not joined:
            groups.append([k])
            gi = len(groups) - 1
        else:
            gi = joined[0]
            for other in joined[1:]:
                groups[gi].extend(groups[other])
                groups[other] = []
            groups[gi] = sorted(groups[gi]) + [k]
        tail_of[n.outs[0]] = gi
    replace: dict[int, Node] = {}
    drop: set = set()
    for grp in groups:
        if len(grp) < min_len:
            continue
        nodes = [g.nodes[k] for k in grp]
        produced = {n.outs[0]: j for j, n in enumerate(nodes)}
        ext: list[int] = []

        def local(r: Ref, _produced=produced, _ext=ext):
            if r.i in _produced:
                return Local("step", _produced[r.i])
            if r.i not in _ext:
                _ext.append(r.i)
            return Local("in", _ext.index(r.i))

        steps = []
        for n in nodes:
            out = g.values[n.outs[0]]
            steps.append((n.op, map_refs(n.args, local), dict(n.attrs), out.shape, out.dtype))
        last = nodes[-1]
        fused = Node(FUSED, tuple(Ref(i) for i in ext), {}, [last.outs[0]], last.scope, steps)
        replace[grp[-1]] = fused
        drop.update(grp[:-1])
    g.nodes = [replace.get(k, n) for k, n in enumerate(g.nodes) if k not in drop]
    return g


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold eval-mode BatchNorm into the conv2d/linear that feeds it.

    ``bn(conv(x, W, b))`` with running statistics is ``conv(x, W * s, (b - mean) * s + beta)``
    where ``s = gamma / sqrt(var + eps)`` per output channel: one op and one pass over the
    activations fewer. Applies when the conv/linear output feeds only the BatchNorm and its
    weights are constants.
    """
    from .. import _backend as B

    g = graph.copy()
    uses = _uses(g)
    producer = {o: k for k, n in enumerate(g.nodes) for o in n.outs}
    drop: set = set()

    def const(a):
        return g.consts.get(a.i) if isinstance(a, Ref) else None

    for k, bn in enumerate(g.nodes):
        if bn.op != "batch_norm" or bn.attrs.get("mean") is None or not bn.args:
            continue
        y = bn.args[0]
        if not isinstance(y, Ref) or y.i not in producer or any(
                o in uses for o in bn.outs[1:]) or uses.get(y.i) != [k]:
            continue
        pk = producer[y.i]
        p = g.nodes[pk]
        if p.op not in ("conv2d", "linear") or len(p.outs) != 1:
            continue
        if p.op == "linear" and len(g.values[y.i].shape) != 2:
            continue  # BatchNorm1d on (N, L, C) normalises L, not the linear's features
        W = const(p.args[1])
        b_arg = p.args[2] if len(p.args) > 2 else None
        b = const(b_arg)
        gamma = const(bn.args[1]) if len(bn.args) > 1 else None
        beta = const(bn.args[2]) if len(bn.args) > 2 else None
        if W is None or (isinstance(b_arg, Ref) and b is None) or (
                len(bn.args) > 1 and isinstance(bn.args[1], Ref) and gamma is None) or (
                len(bn.args) > 2 and isinstance(bn.args[2], Ref) and beta is None):
            continue
        xp = B.xp_of(W)
        mean, var = bn.attrs["mean"].reshape(-1), bn.attrs["var"].reshape(-1)
        scale = 1.0 / xp.sqrt(var + bn.attrs.get("eps", 1e-5))
        if gamma is not None:
            scale = scale * gamma
        shift = -mean * scale + (beta if beta is not None else 0.0)
        W2 = (W * scale.reshape((-1,) + (1,) * (W.ndim - 1))).astype(W.dtype)
        b2 = ((b * scale if b is not None else 0.0) + shift).astype(W.dtype)
        wname = g.values[p.args[1].i].name
        wi = g.add_const(wname + ".bn_folded", W2)
        bi = g.add_const(wname.rsplit(".", 1)[0] + ".bias.bn_folded", b2)
        args = list(p.args) + [None] * (3 - len(p.args))
        args[1], args[2] = Ref(wi), Ref(bi)
        g.nodes[pk] = Node(p.op, tuple(args), p.attrs, [bn.outs[0]], p.scope)
        drop.add(k)
    g.nodes = [n for k, n in enumerate(g.nodes) if k not in drop]
    return dce(g)


def compact(graph: Graph) -> Graph:
    """Renumber values densely (inputs, constants, then node outputs in order)."""
    g = graph
    order = list(g.inputs)
    seen = set(order)
    used_consts = sorted({i for n in g.nodes for i in n.refs() if g.values[i].kind == "const"}
                         | {r.i for r in g.output_refs() if g.values[r.i].kind == "const"})
    for i in used_consts:
        if i not in seen:
            order.append(i)
            seen.add(i)
    for n in g.nodes:
        for o in n.outs:
            if o not in seen:
                order.append(o)
                seen.add(o)
    new = {old: k for k, old in enumerate(order)}
    out = Graph()
    counter = 0
    for old in order:
        v = g.values[old]
        name = v.name
        if v.kind == "node":
            name = str(counter)
            counter += 1
        out.values.append(Value(new[old], v.kind, name, v.shape, v.dtype))
    remap = lambda r: Ref(new[r.i])  # noqa: E731
    out.inputs = [new[i] for i in g.inputs]
    out.outputs = map_refs(g.outputs, remap)
    out.nodes = [Node(n.op, map_refs(n.args, remap), n.attrs, [new[o] for o in n.outs],
                      n.scope, n.steps) for n in g.nodes]
    out.consts = {new[i]: a for i, a in g.consts.items() if i in new}
    return out


def optimize(graph: Graph, fold: bool = True, fuse: bool = True) -> Graph:
    """DCE, then constant folding, then elementwise fusion; compacted."""
    g = dce(graph)
    if fold:
        g = fold_batchnorm(fold_constants(g))
    if fuse:
        g = fuse_elementwise(g)
    return compact(g)
