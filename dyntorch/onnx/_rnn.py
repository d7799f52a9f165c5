"""LSTM and GRU modules exported as single ONNX ``LSTM``/``GRU`` nodes (one per layer).

Exporting the unrolled primitives would bake the sequence length and the zero initial state
(whose batch size is a constant of the trace) into the graph. Instead, module hooks mark the
span of traced nodes each LSTM/GRU call produced; :meth:`RnnCapture.collapse` replaces that
span by one pseudo-node that only the exporter reads (it is never replayed).
"""
from __future__ import annotations

import numpy as np

from .. import _backend as B
from ..jit._ir import Node, Ref
from ._ops import converter

_KINDS = ("LSTM", "GRU")
# torch's gate blocks -> ONNX's: LSTM i,f,g,o -> i,o,f,c ; GRU r,z,n -> z,r,h
_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2)}


class RnnCapture:
    """Marks where each LSTM/GRU module ran inside a trace."""

    def __init__(self, model):
        mods = model.named_modules() if hasattr(model, "named_modules") else ()
        self.mods = [(n, m) for n, m in mods if type(m).__name__ in _KINDS]
        self.spans: list = []
        self.handles: list = []
        self.stack: list = []
        self.tracer = None

    def attach(self, tracer) -> None:
        self.tracer = tracer
        for name, m in self.mods:
            self.handles.append(m.register_forward_pre_hook(
                lambda mod, args: self.stack.append(len(self.tracer.g.nodes))))
            self.handles.append(m.register_forward_hook(
                lambda mod, args, out, _n=name: self._post(_n, mod, args, out)))

    def _post(self, name, mod, args, out):
        start = self.stack.pop()
        self.spans.append((name, mod, start, len(self.tracer.g.nodes), args, out))

    def detach(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def collapse(self, g):
        """The graph with each recorded span replaced by one ``onnx::LSTM``/``onnx::GRU``."""
        if not self.spans:
            return g
        ids = self.tracer.ids
        for name, mod, start, end, args, out in sorted(self.spans, key=lambda s: -s[2]):
            kind = type(mod).__name__
            x = args[0]
            hx = args[1] if len(args) > 1 else None
            if kind == "LSTM":
                y, (hn, cn) = out
                outs = [y, hn, cn]
                states = list(hx) if hx is not None else []
            else:
                y, hn = out
                outs = [y, hn]
                states = [hx] if hx is not None else []
            in_refs = [Ref(ids[id(t)]) for t in [x, *states]]
            out_idx = [ids[id(t)] for t in outs]
            span = g.nodes[start:end]
            inner = {o for n in span for o in n.outs} - set(out_idx)
            later = {i for n in g.nodes[end:] for i in n.refs()} | {r.i for r in
                                                                   g.output_refs()}
            if inner & later:
                raise RuntimeError(f"onnx.export(): values computed inside {kind} '{name}' are "
                                   "used outside it; only its outputs can be exported")
            attrs = {"kind": kind, "scope": name, "config": _config(mod),
                     "weights": _weights(mod, kind), "has_c": kind == "LSTM"}
            g.nodes[start:end] = [Node(f"onnx::{kind}", tuple(in_refs), attrs, out_idx, name)]
        return g


def _config(m) -> dict:
    return {"hidden_size": int(m.hidden_size), "num_layers": int(getattr(m, "num_layers", 1)),
            "bidirectional": bool(getattr(m, "bidirectional", False)),
            "batch_first": bool(getattr(m, "batch_first", False)),
            "bias": bool(getattr(m, "bias", True)),
            "proj_size": int(getattr(m, "proj_size", 0) or 0)}


def _weights(m, kind):
    cfg = _config(m)
    dirs = 2 if cfg["bidirectional"] else 1
    layers = []
    for k in range(cfg["num_layers"]):
        per = []
        for d in range(dirs):
            sfx = f"_l{k}" + ("_reverse" if d else "")

            def arr(n, _sfx=sfx):
                p = getattr(m, n + _sfx, None)
                return None if p is None else B.to_numpy(p._data)

            per.append((arr("weight_ih"), arr("weight_hh"), arr("bias_ih"), arr("bias_hh")))
        layers.append(per)
    return layers


def _reorder(w, kind):
    blocks = np.split(w, len(_ORDER[kind]), axis=0)
    return np.concatenate([blocks[i] for i in _ORDER[kind]], axis=0)


@converter("onnx::LSTM", "onnx::GRU")
def _rnn(ctx, node):
    a = node.attrs
    kind, cfg = a["kind"], a["config"]
    if cfg["proj_size"]:
        raise ctx.unsupported("LSTM with proj_size")
    x = node.args[0]
    if len(ctx.shape(x)) != 3:
        raise ctx.unsupported(f"{kind} on unbatched ({len(ctx.shape(x))}-D) input")
    H = cfg["hidden_size"]
    dirs = 2 if cfg["bidirectional"] else 1
    direction = "bidirectional" if dirs == 2 else "forward"
    X = ctx.name(x)
    if cfg["batch_first"]:
        X = ctx.add1("Transpose", [X], perm=[1, 0, 2])
    h0 = ctx.name(node.args[1]) if len(node.args) > 1 else None
    c0 = ctx.name(node.args[2]) if len(node.args) > 2 else None
    dt = ctx.dtype(x)
    hs, cs = [], []
    for k, per in enumerate(a["weights"]):
        W = np.stack([_reorder(w[0], kind) for w in per]).astype(dt)
        R = np.stack([_reorder(w[1], kind) for w in per]).astype(dt)
        G = W.shape[1]
        Bs = np.stack([np.concatenate([
            _reorder(w[2], kind) if w[2] is not None else np.zeros(G, dt),
            _reorder(w[3], kind) if w[3] is not None else np.zeros(G, dt)]) for w in per])
        ins = [X, ctx.const(W, f"{a['scope']}.W{k}"), ctx.const(R, f"{a['scope']}.R{k}"),
               ctx.const(Bs.astype(dt), f"{a['scope']}.B{k}"), ""]

        def layer_state(s, k=k):
            if s is None:
                return ""
            return ctx.add1("Slice", [s, ctx.ints([k * dirs]), ctx.ints([(k + 1) * dirs]),
                                      ctx.ints([0])])

        ins.append(layer_state(h0))
        extra = {}
        if kind == "LSTM":
            ins.append(layer_state(c0))
        else:
            extra["linear_before_reset"] = 1
        while ins and ins[-1] == "":
            ins.pop()
        outs = ctx.add(kind, ins, n_out=3 if kind == "LSTM" else 2, hidden_size=H,
                       direction=direction, **extra)
        y = ctx.add1("Transpose", [outs[0]], perm=[0, 2, 1, 3])   # [T, B, D, H]
        X = ctx.add1("Reshape", [y, ctx.ints([0, 0, -1])])          # [T, B, D*H]
        hs.append(outs[1])
        if kind == "LSTM":
            cs.append(outs[2])
    Y = ctx.add1("Transpose", [X], perm=[1, 0, 2]) if cfg["batch_first"] else X
    hn = hs[0] if len(hs) == 1 else ctx.add1("Concat", hs, axis=0)
    res = [Y, hn]
    if kind == "LSTM":
        res.append(cs[0] if len(cs) == 1 else ctx.add1("Concat", cs, axis=0))
    xd = ctx.dyn_of(x)
    bdim = 0 if cfg["batch_first"] else 1
    ctx.dyn[node.outs[0]] = set(xd)
    for o in node.outs[1:]:
        ctx.dyn[o] = {1} if bdim in xd else set()
    return res
