"""The graph as a versioned JSON document, and diffs between two documents.

``graph_json`` reads the autograd graph (through the public Node API) of an output tensor or a
:class:`~dyntorch.debug.BackwardStepper` and returns the document described in
``docs/graph-schema.md``. ``graph_diff`` / ``apply_diff`` turn a sequence of documents into the
small updates the front end applies; :class:`GraphTracker` does the bookkeeping (``rev``).
"""
from __future__ import annotations

import copy
import inspect
import itertools
import weakref

import numpy as np

from .._source import source_entry
from .._tensor import Tensor
from ..autograd import engine as E
from ..autograd.node import AccumulateGrad, accumulator
from ..debug import BackwardStepper

__all__ = ["SCHEMA", "DIFF_SCHEMA", "SCHEMA_VERSION", "graph_json", "graph_diff", "apply_diff",
           "GraphTracker", "graph_nodes"]

SCHEMA = "dyntorch.graph"
DIFF_SCHEMA = "dyntorch.graph.diff"
SCHEMA_VERSION = 1

_ids = itertools.count()
_graph_ids: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _graph_id(nodes) -> str:
    """One id for one forward graph, also while it grows.

    Op nodes remember the id of the first document they appeared in; a later document of a
    graph that contains them (the same forward pass, grown further) keeps that id, so the
    front end gets diffs with ``add_nodes``. Leaves are shared by every iteration's graph,
    so they do not carry the identity.
    """
    gid = None
    fresh = []
    for n in nodes:
        if n.__class__ is AccumulateGrad:
            continue
        g = _graph_ids.get(n)
        if g is None:
            fresh.append(n)
        elif gid is None:
            gid = g  # nodes come in seq order: the oldest known node decides
    if gid is None:
        gid = f"g{next(_ids)}"
    for n in fresh:
        _graph_ids[n] = gid
    return gid


def nid(node) -> str:
    """The document id of a node: ``"n" + seq``."""
    return f"n{node.seq}"


# ----------------------------------------------------------------------------- reading nodes
def _is_stepper(x) -> bool:
    return isinstance(x, BackwardStepper)


# Per-stepper caches of the parts of a document that do not change while stepping, kept here
# (not on the stepper) and dropped with the stepper.
_stepper_caches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _cache_of(stepper) -> dict:
    c = _stepper_caches.get(stepper)
    if c is None:
        c = _stepper_caches[stepper] = {}
    return c


def _roots_of(source) -> list:
    if isinstance(source, Tensor):
        source = (source,)
    elif hasattr(source, "next") and hasattr(source, "seq"):  # a Node
        return [source]
    roots = []
    for t in source:
        if not isinstance(t, Tensor):
            raise TypeError("graph_json: expected a Tensor, a sequence of Tensors, a Node or a "
                            f"BackwardStepper, got {type(t).__name__}")
        if t.grad_fn is not None:
            roots.append(t.grad_fn)
        elif t.requires_grad:
            roots.append(accumulator(t))
        else:
            raise RuntimeError("graph_json: this tensor has no autograd graph (it does not "
                               "require grad); compute it from tensors with requires_grad=True "
                               "outside no_grad()")
    return roots


def graph_nodes(source) -> tuple[list, list]:
    """``(roots, nodes)``: root nodes and every node reachable, in creation (seq) order."""
    if _is_stepper(source):
        return source.roots, source.nodes
    roots = _roots_of(source)
    _, order = E.collect(roots)
    return roots, sorted(order, key=lambda n: n.seq)


def _meta(shape, dtype, device=None, requires_grad=None) -> dict:
    m = {"shape": [int(s) for s in shape], "dtype": np.dtype(dtype).name}
    if device is not None:
        m["device"] = str(device)
    if requires_grad is not None:
        m["requires_grad"] = bool(requires_grad)
    return m


_pnames: dict = {}


def _derivative_params(op) -> list:
    """Names of a derivative's input parameters (what backward saves, by name)."""
    names = _pnames.get(op)
    if names is None:
        try:
            ps = [p.name for p in inspect.signature(op.derivative).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][2:]
        except (TypeError, ValueError):
            ps = []
        names = _pnames[op] = [p for p in ps if p not in ("out", "needs")]
    return names


def _used(uses, i) -> bool:
    # ``OpDef.uses`` is a tuple, or an indexable stand-in for variadic ops (e.g. cat)
    try:
        return bool(uses[i])
    except (IndexError, TypeError):
        return False


def _source(node):
    return source_entry(node.source)


def _static(node, roots: set, params: dict, scope_of=None) -> dict:
    """The parts of a node's entry that do not change while stepping (``scope_of``: a node
    scope in the model's names, when a model names the parameters)."""
    is_leaf = node.__class__ is AccumulateGrad
    outs = [_meta(*m) for m in node.output_meta()]
    param = None
    scope = node.scope if scope_of is None else scope_of(node.scope)
    if is_leaf:
        v = node.variable
        param = params.get(id(v)) if v is not None else None
        if param is not None and "." in param:
            scope = param.rsplit(".", 1)[0]  # a parameter sits in its module's scope
        label = param or "leaf"
        kind = "leaf"
        ins = []
        saved = []
    else:
        opdef = getattr(node, "op", None)
        label = opdef.name if opdef is not None else node.name()
        kind = "output" if node in roots else "op"
        inputs = getattr(node, "inputs", None)
        ins, saved = [], []
        if inputs is not None:
            names = _derivative_params(opdef) if opdef is not None else []
            uses = opdef.used(node.next) if opdef is not None else ()
            for i, a in enumerate(inputs):
                if isinstance(a, Tensor):
                    d = a._data
                    ins.append(_meta(d.shape, d.dtype, a.device, a._requires_grad))
                    if _used(uses, i):
                        saved.append({"name": names[i] if i < len(names) else f"input{i}",
                                      **_meta(d.shape, d.dtype)})
            if opdef is not None and opdef.uses_out and outs:
                saved.append({"name": "out", "shape": outs[0]["shape"],
                              "dtype": outs[0]["dtype"]})
        else:  # saved values freed: describe inputs from the edges' output metadata
            for e in node.next:
                if e is None:
                    continue
                om = e[0].output_meta()
                if e[1] < len(om):
                    ins.append(_meta(*om[e[1]], requires_grad=True))
    edges = []
    for slot, e in enumerate(node.next):
        if e is not None:
            edges.append((e[0], slot, e[1]))
    return {
        "id": nid(node), "seq": int(node.seq), "op": node.name(), "kind": kind,
        "label": label, "scope": scope, "source": _source(node), "inputs": ins,
        "outputs": outs, "saved": saved, "param": param, "_edges": edges,
    }


def _params_of(model, nodes=()) -> dict:
    """``id(parameter) -> qualified name``: from ``model``, else from the modules that ran.

    Without a model a parameter is named from the module scope of the op that used it (the
    module that ran there last, ``nn.module.SCOPE_MODULES``): ``0.weight`` for the first layer
    of an ``nn.Sequential``.
    """
    if model is not None:
        named = model.named_parameters() if hasattr(model, "named_parameters") else model
        return {id(p): name for name, p in named}
    try:
        from ..nn.module import SCOPE_MODULES
    except Exception:  # nn is optional for readers of the graph
        return {}
    want = {}
    for node in nodes:
        if node.__class__ is AccumulateGrad:
            continue
        for e in node.next:
            if e is not None and e[0].__class__ is AccumulateGrad and e[0].variable is not None:
                want.setdefault(id(e[0].variable), node.scope)
    out = {}
    named_in: dict = {}
    for pid, scope in want.items():
        s = scope
        while True:
            names = named_in.get(s)
            if names is None:
                ref = SCOPE_MODULES.get(s)
                m = ref() if ref is not None else None
                names = named_in[s] = ({} if m is None else
                                       {id(p): n for n, p in m.named_parameters()})
            n = names.get(pid)
            if n is not None:
                out[pid] = f"{s}.{n}" if s else n
                break
            if not s:
                break
            s = s.rsplit(".", 1)[0] if "." in s else ""
    return out


def _scope_namer(model):
    """Node scopes in ``model``'s names (as its parameters are named), or None without a
    module to name them."""
    if model is None or not hasattr(model, "named_modules"):
        return None
    from ..nn.module import scope_in

    names: dict = {}
    return lambda scope: scope_in(model, scope, names)


def _types_of(model) -> dict:
    types = {}
    try:
        from ..nn.module import SCOPE_TYPES

        types.update(SCOPE_TYPES)
    except Exception:  # nn is optional for readers of the graph
        pass
    if model is not None and hasattr(model, "named_modules"):
        for name, m in model.named_modules():
            if name:
                types[name] = type(m).__name__
    return types


def _scopes(entries: list, types: dict) -> list:
    """Scope records for folding: every scope and its ancestors, repeats detected.

    ``repeat_of`` marks runs of *consecutive* repeated blocks only: siblings with the same
    type and the same contents, called one right after the other (no op of their parent in
    between). Two ``Linear`` layers far apart are not a repeat; folding them together would
    draw edges back and forth between the fold and what lies between them.
    """
    count: dict = {}
    sig: dict = {}
    first: dict = {}
    last: dict = {}
    first_op: dict = {}
    direct: dict = {}  # scope -> seqs of its own ops (not inside a child scope)
    for n in entries:
        s = n["scope"]
        if not s:
            continue
        op = n["kind"] != "leaf"
        if op:
            direct.setdefault(s, []).append(n["seq"])
        parts = s.split(".")
        for k in range(1, len(parts) + 1):
            name = ".".join(parts[:k])
            count[name] = count.get(name, 0) + 1
            if name not in first:
                first[name] = n["seq"]
            if op:
                last[name] = max(last.get(name, n["seq"]), n["seq"])
                first_op.setdefault(name, n["seq"])
            rel = ".".join(parts[k:])
            shape = tuple(n["outputs"][0]["shape"]) if n["outputs"] else ()
            sig.setdefault(name, []).append((rel, n["label"] if op else
                                             "leaf:" + (n["param"] or "").rsplit(".", 1)[-1],
                                             shape))
    top = sorted(n["seq"] for n in entries if not n["scope"] and n["kind"] != "leaf")
    names = sorted(count, key=lambda s: (first[s], s))
    prev_sib: dict = {}  # parent -> (previous sibling, its key, its run's first scope)
    out = []
    for name in names:
        parent = name.rsplit(".", 1)[0] if "." in name else None
        typ = types.get(name)
        key = (typ, tuple(sig[name]))
        rep = None
        p = prev_sib.get(parent)
        if p is not None and p[1] == key:
            lo, hi = last.get(p[0], first[p[0]]), first_op.get(name, first[name])
            between = direct.get(parent, ()) if parent is not None else top
            if lo < hi and not any(lo < q < hi for q in between):
                rep = p[2]
        prev_sib[parent] = (name, key, rep or name)
        out.append({"name": name, "parent": parent, "type": typ, "nodes": count[name],
                    "repeat_of": rep})
    return out


# ----------------------------------------------------------------------------- the document
def graph_json(source, *, model=None, grads: bool = True) -> dict:
    """The graph document of an output (or of a stepper's run) for the front end.

    Parameters
    ----------
    source : Tensor, sequence of Tensors, Node or BackwardStepper
        A stepper adds node states (``pending``/``ready``/``current``/``done``), per-node
        gradient summaries and the stepping status.
    model : nn.Module, optional
        Names parameters (``param`` of leaves) and module types (``scopes[].type``).
    grads : bool
        Include gradient summaries of nodes a stepper has run (computed once per step).

    Returns
    -------
    dict
        JSON-ready; schema ``dyntorch.graph`` version 1 (``docs/graph-schema.md``).
    """
    stepper = source if _is_stepper(source) else None
    if stepper is not None and stepper.closed:
        _stepper_caches.pop(stepper, None)
        raise RuntimeError("graph_json: this BackwardStepper is closed")
    roots, nodes = graph_nodes(source)
    rootset = set(roots)
    params = None  # named on the first node not in the cache
    cache = _cache_of(stepper) if stepper is not None else {}
    key = id(model)
    statics = []
    for node in nodes:
        st = cache.get((node, key))
        if st is None:
            if params is None:
                params = _params_of(model, nodes)
                scope_of = _scope_namer(model)
            entry = _static(node, rootset, params, scope_of)
            st = (entry, entry.pop("_edges"))
            if stepper is not None:
                cache[(node, key)] = st
        statics.append(st)
    ids = {st[0]["id"] for st in statics}
    docs_nodes = []
    edges = []
    if stepper is not None:
        k = stepper.position
        hist = stepper.history
        index_of, state_of = stepper.index_of, stepper.state_of
    for node, (entry, links) in zip(nodes, statics):
        d = dict(entry)
        state, grad = "idle", None
        if stepper is not None:
            i = index_of(node)
            state = state_of(i)
            if i < k and grads:
                step = hist[i]
                grad = {"in": list(step.summary_in), "out": list(step.summary_out)}
        d["state"] = state
        d["grad"] = grad
        d["time_us"] = getattr(node, "time_us", None)
        docs_nodes.append(d)
        me = entry["id"]
        for child, slot, nr in links:
            cid = nid(child)
            if cid in ids:
                edges.append({"src": cid, "dst": me, "slot": slot, "src_out": nr})
    scopes = cache.get(("_scopes", key))
    if scopes is None:
        scopes = _scopes(docs_nodes, _types_of(model))
        if stepper is not None:
            cache[("_scopes", key)] = scopes
    scopes = [dict(sc) for sc in scopes]
    gid = cache.get(("_gid",))
    if gid is None:
        gid = _graph_id(nodes)
        if stepper is not None:
            cache[("_gid",)] = gid
    if stepper is not None:
        cur = stepper.current
        status = {"step": k, "total": stepper.total,
                  "current": nid(cur.node) if cur is not None else None,
                  "done": stepper.done, "text": stepper.status_text()}
    else:
        status = {"step": 0, "total": len(docs_nodes), "current": None, "done": False,
                  "text": f"graph of {len(docs_nodes)} nodes"}
    return {"schema": SCHEMA, "version": SCHEMA_VERSION,
            "graph_id": gid, "rev": 0,
            "nodes": docs_nodes, "edges": edges, "scopes": scopes, "status": status}


# ----------------------------------------------------------------------------- diffs
def _ekey(e) -> tuple:
    return (e["src"], e["dst"], e["slot"])


def graph_diff(old: dict, new: dict) -> dict:
    """The diff that turns document ``old`` into ``new`` (its ``rev`` is ``old['rev'] + 1``).

    Holds ``add_nodes``, ``update`` (changed fields only, with ``id``), ``add_edges``, the new
    ``status``, and when needed ``remove_nodes``, ``remove_edges`` and ``scopes`` (the whole
    new list).
    """
    if old.get("graph_id") != new.get("graph_id"):
        raise ValueError(f"graph_diff: documents of different graphs ({old.get('graph_id')} "
                         f"and {new.get('graph_id')}); send the full document instead")
    before = {n["id"]: n for n in old["nodes"]}
    after_ids = set()
    add, upd = [], []
    for n in new["nodes"]:
        after_ids.add(n["id"])
        o = before.get(n["id"])
        if o is None:
            add.append(n)
            continue
        ch = {k: v for k, v in n.items() if o.get(k) != v}
        if ch:
            ch["id"] = n["id"]
            upd.append(ch)
    diff = {"schema": DIFF_SCHEMA, "version": SCHEMA_VERSION, "graph_id": new["graph_id"],
            "rev": old["rev"] + 1, "add_nodes": add, "add_edges": [], "update": upd,
            "status": new["status"]}
    gone = [i for i in before if i not in after_ids]
    if gone:
        diff["remove_nodes"] = gone
    old_e = {_ekey(e) for e in old["edges"]}
    new_e = {_ekey(e) for e in new["edges"]}
    diff["add_edges"] = [e for e in new["edges"] if _ekey(e) not in old_e]
    rem = [e for e in old["edges"] if _ekey(e) not in new_e]
    if rem:
        diff["remove_edges"] = rem
    if old.get("scopes") != new.get("scopes"):
        diff["scopes"] = new["scopes"]
    return diff


def _seq_of(nid_: str) -> int:
    return int(nid_[1:])


def apply_diff(doc: dict, diff: dict) -> dict:
    """Apply ``diff`` to ``doc`` and return the new document (``doc`` is not changed).

    Raises ``ValueError`` when the diff is for another graph or does not follow ``doc``'s
    ``rev`` (the front end then asks for the full document).
    """
    if diff.get("graph_id") != doc.get("graph_id") or diff.get("rev") != doc.get("rev") + 1:
        raise ValueError(f"apply_diff: diff {diff.get('graph_id')}@{diff.get('rev')} does not "
                         f"follow document {doc.get('graph_id')}@{doc.get('rev')}")
    out = copy.deepcopy(doc)
    gone = set(diff.get("remove_nodes", ()))
    nodes = {n["id"]: n for n in out["nodes"] if n["id"] not in gone}
    for u in diff.get("update", ()):
        nodes[u["id"]].update(copy.deepcopy(u))
    for n in diff.get("add_nodes", ()):
        nodes[n["id"]] = copy.deepcopy(n)
    out["nodes"] = sorted(nodes.values(), key=lambda n: n["seq"])
    rem = {_ekey(e) for e in diff.get("remove_edges", ())}
    edges = [e for e in out["edges"] if _ekey(e) not in rem and e["src"] not in gone
             and e["dst"] not in gone]
    edges += copy.deepcopy(diff.get("add_edges", []))
    out["edges"] = sorted(edges, key=lambda e: (_seq_of(e["dst"]), e["slot"]))
    if "scopes" in diff:
        out["scopes"] = copy.deepcopy(diff["scopes"])
    out["status"] = copy.deepcopy(diff["status"])
    out["rev"] = diff["rev"]
    return out


class GraphTracker:
    """Keeps the last document sent for one source and produces the next diff.

    For a :class:`~dyntorch.debug.BackwardStepper` the diff is computed from the nodes whose
    state or step changed (the node set, edges and scopes of a stepper's run do not change),
    so a step costs little even on graphs of thousands of nodes.

    Examples
    --------
    >>> tr = GraphTracker(stepper, model=model)
    >>> send(tr.document())      # full document, rev 0
    >>> stepper.step()
    >>> send(tr.diff())          # rev 1: state changes and the new gradient summaries
    """

    def __init__(self, source, *, model=None, grads: bool = True):
        self.source = source
        self.model = model
        self.grads = grads
        self.doc: dict | None = None  # the tracker's own copy of the last document
        self._fast = None  # stepper fast path: (nodes, states, steps)

    def _make(self) -> dict:
        return graph_json(self.source, model=self.model, grads=self.grads)

    def _keep(self, doc: dict) -> None:
        # an own copy (node dicts and status), so documents handed out are never changed
        self.doc = {**doc, "nodes": [dict(n) for n in doc["nodes"]],
                    "status": dict(doc["status"])}
        self._fast = None
        if _is_stepper(self.source):
            s = self.source
            nodes = graph_nodes(s)[1]
            k = len(s.history)
            states, steps = [], []
            for node in nodes:
                i = s.index_of(node)
                states.append(s.state_of(i))
                steps.append(s.history[i] if i < k else None)
            self._fast = (nodes, states, steps)

    def document(self) -> dict:
        """A full document (after this, diffs continue from its ``rev``)."""
        doc = self._make()
        doc["rev"] = 0 if self.doc is None else self.doc["rev"] + 1
        self._keep(doc)
        return doc

    def diff(self) -> dict:
        """The diff from the last document to the current state."""
        if self.doc is None:
            self.document()
        if self._fast is not None and not self.source.closed:
            return self._stepper_diff()
        new = self._make()
        d = graph_diff(self.doc, new)
        new["rev"] = d["rev"]
        self._keep(new)
        return d

    def _stepper_diff(self) -> dict:
        s = self.source
        nodes, states, steps = self._fast
        k = len(s.history)
        hist = s.history
        upd = []
        docnodes = self.doc["nodes"]
        for j, node in enumerate(nodes):
            i = s.index_of(node)
            st = s.state_of(i)
            step = hist[i] if i < k else None
            if st == states[j] and step is steps[j]:
                continue
            ch = {}
            dn = docnodes[j]
            if st != states[j]:
                ch["state"] = dn["state"] = states[j] = st
            if step is not steps[j]:
                steps[j] = step
                g = None
                if step is not None and self.grads:
                    g = {"in": list(step.summary_in), "out": list(step.summary_out)}
                if g != dn["grad"]:
                    ch["grad"] = dn["grad"] = g
            if ch:
                ch["id"] = dn["id"]
                upd.append(ch)
        cur = s.current
        status = {"step": k, "total": s.total,
                  "current": nid(cur.node) if cur is not None else None,
                  "done": s.done, "text": s.status_text()}
        self.doc["status"] = dict(status)
        self.doc["rev"] += 1
        return {"schema": DIFF_SCHEMA, "version": SCHEMA_VERSION,
                "graph_id": self.doc["graph_id"], "rev": self.doc["rev"], "add_nodes": [],
                "add_edges": [], "update": upd, "status": status}
