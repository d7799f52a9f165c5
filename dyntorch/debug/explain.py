"""Root cause of a NaN/Inf or an exploding gradient: the first op that went bad, and why.

:func:`explain` walks the graph back from the symptom (a :class:`NonFiniteError`, or a tensor
whose value or gradient is non-finite or exploding) to the first node whose inputs were fine
and whose output (or gradient) was not, recomputes what it needs from the saved inputs
through each node's public fields (``op``, ``inputs``, ``attrs``, ``next``), and names the
reason in one sentence. :meth:`Explanation.repro` writes a small cell that rebuilds just that
op with the offending inputs.
"""
from __future__ import annotations

import math
import os

import numpy as np

from .. import _backend as B
from .._source import where as source_where
from .._tensor import Tensor
from ..autograd.node import AccumulateGrad
from .nonfinite import NonFiniteError

__all__ = ["explain", "Explanation", "node_value"]

EXPLODE_GAIN = 1e3  # a node that multiplies the gradient's norm by more than this is the cause
_EMBED = 64  # inputs up to this many entries are written into the repro cell; bigger go to .npz
_LOGS = ("log", "log2", "log10")
_UNDERFLOW = ("softmax", "exp", "sigmoid", "exp2")


def _arr(t):
    return t._data if isinstance(t, Tensor) else t


def _host(a) -> np.ndarray:
    return B.to_numpy(a) if not isinstance(a, np.ndarray) else a


def _bad(a) -> bool:
    return a is not None and hasattr(a, "dtype") and a.dtype.kind == "f" and \
        not bool(B.xp_of(a).isfinite(a).all())


def _opname(node) -> str:
    op = getattr(node, "op", None)
    return op.name if op is not None else node.name()


class _Graph:
    """Values of graph nodes, recomputed from saved inputs (memoised)."""

    def __init__(self):
        self.vals: dict = {}

    def inputs(self, node) -> list | None:
        """The positional arguments the door gave ``node``'s op (arrays for tensors)."""
        ins = getattr(node, "inputs", None)
        if ins is not None:
            return [_arr(a) for a in ins]
        # saved values freed (backward ran through it): rebuild tensor inputs from the edges,
        # whose nodes had not run yet when a backward check stopped here
        out = []
        for e in node.next:
            if e is None:
                return None  # a non-differentiable argument we cannot recover
            v = self.value(e[0], e[1])
            if v is None:
                return None
            out.append(v)
        return out

    def value(self, node, nr: int = 0):
        key = (node, nr)
        if key in self.vals:
            return self.vals[key]
        v = None
        if node.__class__ is AccumulateGrad:
            t = node.variable
            v = None if t is None else _arr(t)
        elif getattr(node, "op", None) is not None:
            ins = self.inputs(node)
            if ins is not None:
                xp = B.xp_of(next((a for a in ins if hasattr(a, "dtype")), np.zeros(0)))
                with np.errstate(all="ignore"):
                    r = node.op.forward(xp, *ins, **node.attrs)
                if node.op.multi:
                    r = r[nr]
                v = xp.asarray(r)
        self.vals[key] = v
        return v


def node_value(node, nr: int = 0):
    """The output ``nr`` of graph ``node`` (an array of the device's module), recomputed from
    what the node saved (a leaf's: its data); None once backward freed what it needs."""
    return _Graph().value(node, nr)


class Explanation:
    """What :func:`explain` found.

    Attributes
    ----------
    node : Node
        The cause (``name()``, ``scope``, ``source``).
    op, scope, source : str, str, tuple or None
        Its op name, module scope and ``(file, line)``.
    reason : str
        One sentence saying what went wrong there.
    chain : list of Node
        From the cause to the symptom, following the data.
    kind : str
        ``"value"`` (a forward value went non-finite) or ``"gradient"``.
    """

    def __init__(self, node, reason, chain, kind, replay, grad_in=None):
        self.node, self.reason, self.chain, self.kind = node, reason, chain, kind
        self.op = _opname(node)
        self.scope = node.scope
        self.source = node.source
        self._replay = replay  # [(node, args)] to rebuild, cause first
        self._grad_in = grad_in

    def repro(self, path: str | os.PathLike | None = None) -> str:
        """Source of a small runnable cell that rebuilds the cause and shows the bad value.

        Inputs up to 64 entries are written into the cell; bigger ones are saved with
        ``numpy.savez`` to ``path`` (default ``explain_<op>.npz`` in the working directory)
        and loaded from there. The cell ends by asserting the non-finite (or exploding) result.
        """
        if not self._replay:
            raise RuntimeError(
                f"explain: cannot rebuild {self.op}: its saved inputs were freed by backward "
                "and cannot be recomputed. Call explain(loss) on a fresh forward pass before "
                "backward(), or backward(retain_graph=True).")
        big: dict = {}
        lines = ["import numpy as np", "import dyntorch", "from dyntorch._dispatch import "
                 "REGISTRY  # each op exactly as the dispatch door ran it", ""]
        names: dict = {}
        last = None
        for k, item in enumerate(self._replay):
            node, args = item[0], item[1]
            link = item[2] if len(item) > 2 else None  # this argument is the previous output
            call = []
            for i, a in enumerate(args):
                if i == link:
                    call.append(last)
                elif hasattr(a, "dtype") and hasattr(a, "shape"):
                    nm = f"x{k}_{i}"
                    arr = _host(a)
                    grad = self.kind == "gradient" and arr.dtype.kind == "f"
                    if arr.size <= _EMBED:
                        lit = _literal(arr)
                    else:
                        big[nm] = arr
                        lit = f"_data[{nm!r}]"
                    lines.append(f"{nm} = dyntorch.tensor({lit}"
                                 f"{', requires_grad=True' if grad else ''})"
                                 f"  # input {i} of {_opname(node)}: {_describe(arr)}")
                    call.append(nm)
                    names[(k, i)] = nm
                else:
                    call.append(repr(a))
            attrs = "".join(f", {k2}={v!r}" for k2, v in node.attrs.items())
            out = f"y{k}"
            lines.append(f"{out} = REGISTRY[{node.op.name!r}]({', '.join(call)}{attrs})")
            last = out
        if big:
            p = os.fspath(path) if path is not None else f"explain_{self.op}.npz"
            np.savez(p, **big)
            lines.insert(3, f"_data = np.load({p!r})  # the inputs too big to write here")
        if self.kind == "gradient":
            g = self._grad_in
            gl = _literal(_host(g)) if g is not None and g.size <= _EMBED else None
            if g is not None and gl is None:
                big2 = {"grad": _host(g)}
                p = os.fspath(path) if path is not None else f"explain_{self.op}_grad.npz"
                np.savez(p, **big2)
                gl = f"np.load({p!r})['grad']"
            seed = f"dyntorch.tensor({gl})" if gl is not None else f"dyntorch.ones_like({last})"
            ins = [v for (k, _), v in names.items() if k == 0]
            lines += [f"{last}.backward({seed})",
                      f"grads = [t.grad for t in ({', '.join(ins)},) if t.grad is not None]",
                      "print(grads)",
                      "assert any(not bool(dyntorch.isfinite(g).all()) or "
                      f"float(g.abs().max()) > {EXPLODE_GAIN:g} * float({seed}.abs().max()) "
                      "for g in grads)"]
        else:
            lines += [f"print({last})", f"assert not bool(dyntorch.isfinite({last}).all())"]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        src = f" at {source_where(self.source)}" if self.source else ""
        where = f" in '{self.scope}'" if self.scope else ""
        return f"Explanation({self.op}{where}{src}: {self.reason})"

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        # the graph with the cause and chain marked, drawn by whichever reader registered
        # itself (dyntorch.viz, through dyntorch._display; debug never imports viz)
        from .. import _display

        b = _display.mimebundle(self, include=include, exclude=exclude)
        data = b[0] if isinstance(b, tuple) else b
        if not isinstance(data, dict):
            return {"text/plain": repr(self), "text/markdown": self._repr_markdown_()}
        data = dict(data, **{"text/plain": repr(self), "text/markdown": self._repr_markdown_()})
        return (data, b[1]) if isinstance(b, tuple) else data

    def _repr_markdown_(self) -> str:
        src = f" at `{source_where(self.source)}`" if self.source else ""
        chain = " → ".join(_opname(n) for n in self.chain)
        return (f"**{self.op}**{' in `' + self.scope + '`' if self.scope else ''}{src}: "
                f"{self.reason}\n\nchain: {chain}")


def _literal(arr: np.ndarray) -> str:
    def one(v):
        if isinstance(v, float):
            if math.isnan(v):
                return "np.nan"
            if math.isinf(v):
                return "np.inf" if v > 0 else "-np.inf"
        return repr(v)

    def rec(x):
        if isinstance(x, list):
            return "[" + ", ".join(rec(v) for v in x) + "]"
        return one(x)

    return f"np.array({rec(arr.tolist())}, dtype=np.{arr.dtype.name})"


def _describe(a: np.ndarray) -> str:
    if a.dtype.kind != "f" or a.size == 0:
        return f"{a.dtype.name} {list(a.shape)}"
    fin = a[np.isfinite(a)]
    rng = f"range [{fin.min():.4g}, {fin.max():.4g}]" if fin.size else "no finite entries"
    return (f"{a.dtype.name} {list(a.shape)}, {rng}, {int((a == 0).sum())} zeros, "
            f"{int(np.isnan(a).sum())} NaN, {int(np.isinf(a).sum())} Inf")


def _entries(k: int) -> str:
    return "1 entry" if k == 1 else f"{k:,} entries"


def _n(x) -> str:
    return f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}" if abs(x) < 1e9 else f"{x:.3g}"


# ----------------------------------------------------------------------------- value reasons
def _value_reason(g: _Graph, node, ins: list, out) -> tuple[str, object | None]:
    """Why ``node`` made a non-finite output from finite inputs; and the node that made the
    exact zeros it was given, when that is the real cause."""
    name = _opname(node)
    a = [_host(x) if hasattr(x, "dtype") else x for x in ins]
    o = _host(out)
    nnan, ninf = int(np.isnan(o).sum()), int(np.isinf(o).sum())
    what = (f"{ninf} Inf" if ninf else "") + (" and " if ninf and nnan else "") + \
        (f"{nnan} NaN" if nnan else "")
    x0 = a[0] if a and hasattr(a[0], "dtype") else None

    def zero_maker(i):
        e = node.next[i] if i < len(node.next) else None
        if e is None or e[0].__class__ is AccumulateGrad:
            return None
        child = e[0]
        cin = g.inputs(child)
        if _opname(child) in _UNDERFLOW and cin is not None:
            return child
        return None

    if name in _LOGS + ("log1p",) and x0 is not None:
        lim = -1 if name == "log1p" else 0
        zeros = int((x0 == lim).sum())
        neg = int((x0 < lim).sum())
        if zeros:
            maker = zero_maker(0)
            if maker is not None:
                cin = _host(g.inputs(maker)[0])
                if _opname(maker) == "softmax":
                    axis = maker.attrs.get("axis", -1)
                    span = float(np.max(cin.max(axis=axis) - cin.min(axis=axis)))
                    return (f"softmax of logits spanning {_n(span)} underflowed to exact 0 "
                            f"({_entries(zeros)}), then {name}(0) = -inf"), maker
                return (f"{_opname(maker)} of inputs down to {_n(float(cin.min()))} underflowed "
                        f"to exact 0 ({_entries(zeros)}), then {name}(0) = -inf"), maker
            origin = _zero_origin(g, node, 0, x0 == lim)
            made = ""
            if origin is not None:
                src = origin.source
                at = f" at line {src[1]}" if src else ""
                made = f"; the zeros were made by {_opname(origin)}{at}"
            return f"{name} of exact 0 ({_entries(zeros)}) = -inf{made}", None
        if neg:
            return (f"{name} of a negative number ({neg} entries, down to {_n(float(x0.min()))})"
                    " = NaN"), None
    if name in ("div", "true_divide", "reciprocal", "rsqrt") or name.startswith("div"):
        den = a[1] if name.startswith("div") or name == "true_divide" else x0
        if hasattr(den, "dtype"):
            z = int((np.asarray(den) == 0).sum())
            if z:
                maker = zero_maker(1 if name.startswith("div") else 0)
                tail = f" (made by {_opname(maker)} underflowing)" if maker is not None else ""
                return (f"{name} by exact 0 ({z} entries of the denominator are 0{tail}) gives "
                        f"{what}"), maker
        if name == "rsqrt" and x0 is not None and (x0 < 0).any():
            return f"rsqrt of a negative number ({int((x0 < 0).sum())} entries) = NaN", None
    if name == "sqrt" and x0 is not None and (x0 < 0).any():
        return (f"sqrt of a negative number ({int((x0 < 0).sum())} entries, down to "
                f"{_n(float(x0.min()))}) = NaN"), None
    if name.startswith("pow") and x0 is not None:
        ex = a[1] if len(a) > 1 else node.attrs.get("exponent")
        exv = np.asarray(ex, dtype=np.float64)
        if ((x0 == 0) & (exv < 0)).any():
            return f"pow of 0 to a negative exponent ({_n(float(exv.min()))}) = inf", None
        if ((x0 < 0) & (exv != np.round(exv))).any():
            return "pow of a negative base to a fractional exponent = NaN", None
    if name in ("exp", "exp2", "expm1") and x0 is not None:
        lim = math.log(float(np.finfo(o.dtype).max))
        return (f"{name} of {_n(float(np.nanmax(x0)))} overflows {o.dtype.name} (exp(x) is "
                f"inf above x = {_n(lim)})"), None
    if o.dtype == np.float16 and ninf and not nnan:
        return (f"float16 overflow: {name} of finite inputs exceeded 65,504, the largest "
                f"float16, and became Inf ({ninf} entries); compute it in float32"), None
    if any(hasattr(x, "dtype") and x.dtype.kind == "f" and np.isfinite(x).all()
           for x in a):
        big = max((float(np.abs(x).max()) for x in a if hasattr(x, "dtype") and x.size and
                   x.dtype.kind == "f"), default=0.0)
        return (f"{name} turned finite inputs (largest |x| = {_n(big)}) into {what}"), None
    return f"{name} produced {what}", None


def _zero_origin(g: _Graph, node, i: int, mask):
    """The op that made the exact zeros at ``mask`` of ``node``'s input ``i`` (None: a leaf)."""
    for _ in range(100):
        e = node.next[i] if i < len(node.next) else None
        if e is None or e[0].__class__ is AccumulateGrad:
            return None
        child = e[0]
        cin = g.inputs(child)
        if cin is None:
            return child
        nxt = None
        for j, a in enumerate(cin):
            if hasattr(a, "shape") and a.shape == mask.shape and \
                    bool((_host(a)[mask] == 0).all()) and j < len(child.next):
                nxt = j
                break
        if nxt is None:
            return child
        node, i = child, nxt
    return None


# ----------------------------------------------------------------------------- walking
def _first_bad_value(g: _Graph, node):
    """(cause node, path from cause to ``node``) for a node whose output is non-finite."""
    path = [node]
    seen = set()
    while True:
        ins = g.inputs(node)
        nxt = None
        if ins is not None:
            for i, e in enumerate(node.next):
                if e is None or e[0] in seen:
                    continue
                if i < len(ins) and _bad(ins[i]) and e[0].__class__ is not AccumulateGrad:
                    nxt = e[0]
                    break
        if nxt is None:
            return node, path
        seen.add(nxt)
        node = nxt
        path.append(node)


def _explain_value(node, g=None) -> Explanation:
    g = g or _Graph()
    cause, path = _first_bad_value(g, node)
    ins = g.inputs(cause)
    if ins is None:
        return Explanation(cause, f"{_opname(cause)} produced a non-finite value (its inputs "
                           "were freed; run explain before backward to see why)",
                           path[::-1], "value", None)
    out = g.value(cause)
    bad_leaf = [i for i, x in enumerate(ins) if _bad(x)]
    if bad_leaf:
        reason = (f"input {bad_leaf[0]} of {_opname(cause)} already held NaN/Inf "
                  f"({_describe(_host(ins[bad_leaf[0]]))}); it came from outside the graph")
        return Explanation(cause, reason, path[::-1], "value", [(cause, ins)])
    reason, maker = _value_reason(g, cause, ins, out)
    chain = path[::-1]
    replay = [(cause, ins)]
    if maker is not None:
        chain = [maker] + chain
        replay = [(maker, g.inputs(maker)), (cause, ins, 0)]
        cause = maker
    return Explanation(cause, reason, chain, "value", replay)


def _norm(a) -> float:
    if a is None:
        return 0.0
    h = _host(a).astype(np.float64)
    return float(np.sqrt(np.sum(h[np.isfinite(h)] ** 2)))


def _explain_grad(t: Tensor) -> Explanation:
    from .. import ones_like
    from .stepper import BackwardStepper

    s = BackwardStepper(t, gradient=None if t.numel() == 1 else ones_like(t),
                        retain_graph=True)
    g = _Graph()
    try:
        for st in s:
            gin = [_arr(x) for x in st.grad_outputs]
            gout = [_arr(x) for x in st.grad_inputs]
            if any(_bad(x) for x in gin):
                continue  # came in bad: an earlier node was the cause
            n_in = max((_norm(x) for x in gin), default=0.0)
            bad = [i for i, x in enumerate(gout) if _bad(x)]
            n_out = max((_norm(x) for x in gout), default=0.0)
            gain = n_out / n_in if n_in > 0 else (math.inf if n_out > 0 else 0.0)
            if not bad and gain <= EXPLODE_GAIN:
                continue
            node = st.node
            ins = g.inputs(node)
            name = _opname(node)
            why = ""
            if ins is not None and ins and hasattr(ins[0], "dtype"):
                x0 = _host(ins[0])
                if x0.dtype.kind == "f" and x0.size:
                    near = float(np.abs(x0).min())
                    hints = {"sqrt": f"the derivative of sqrt, 1/(2 sqrt(x)), is huge or "
                                     f"infinite at x = {_n(near)}",
                             "log": f"the derivative of log, 1/x, is huge or infinite at "
                                    f"x = {_n(near)}",
                             "rsqrt": f"the derivative of rsqrt is huge at x = {_n(near)}",
                             "div": "the derivative of a/b, -a/b^2, is huge where b is near 0",
                             "pow": f"the derivative of pow is huge or infinite at x = "
                                    f"{_n(near)}"}
                    why = hints.get(name.split("_")[0], "")
            if bad:
                reason = (f"{node.name()} turned a finite gradient (norm {_n(n_in)}) into NaN/Inf"
                          + (f": {why}" if why else ""))
            else:
                reason = (f"{node.name()} amplifies the gradient by {gain:.3g}x (norm "
                          f"{_n(n_in)} in, {_n(n_out)} out)" + (f": {why}" if why else ""))
            chain = [node]
            replay = [(node, ins)] if ins is not None else None
            gi = gin[0] if gin else None
            return Explanation(node, reason, chain, "gradient", replay,
                               grad_in=None if gi is None else gi.copy())
    finally:
        s.reset()
        s.close()
    raise ValueError("explain: backward from this tensor gives finite gradients with no node "
                     f"amplifying them by more than {EXPLODE_GAIN:g}x; nothing to explain")


def explain(err_or_tensor) -> Explanation:
    """Find the first op where things went bad, and why.

    Parameters
    ----------
    err_or_tensor : NonFiniteError or Tensor
        A :class:`NonFiniteError` from :func:`detect_nonfinite`; or a tensor (with its graph
        alive, i.e. before ``backward()`` freed it) whose value is non-finite, or whose
        gradient would be non-finite or exploding (a node multiplying it by more than 1e3).

    Returns
    -------
    Explanation
        ``.node``, ``.reason``, ``.chain`` (cause to symptom) and ``.repro()``.

    Examples
    --------
    >>> with dyntorch.debug.detect_nonfinite():
    ...     try:
    ...         loss = model(x)
    ...     except dyntorch.debug.NonFiniteError as e:
    ...         ex = dyntorch.debug.explain(e)
    >>> ex.reason
    'softmax of logits spanning 1,200 underflowed to exact 0 (3 entries), then log(0) = -inf'
    """
    if isinstance(err_or_tensor, NonFiniteError):
        e = err_or_tensor
        if e.node is None:
            raise ValueError(
                f"explain: this NonFiniteError (op '{e.op}') has no graph node: the op ran "
                "without gradients. Run the forward with requires_grad inputs (or parameters) "
                "so that the graph is recorded.")
        if e.direction == "forward":
            return _explain_value(e.node)
        g = _Graph()
        node = e.node
        ins = g.inputs(node)
        at = "" if ins is None else " at inputs " + ", ".join(
            _describe(_host(x)) for x in ins if hasattr(x, "dtype"))
        reason = f"{node.name()} gives NaN/Inf gradients{at}"
        return Explanation(node, reason, [node], "gradient",
                           [(node, ins)] if ins is not None else None)
    if isinstance(err_or_tensor, Tensor):
        t = err_or_tensor
        if t.grad_fn is None:
            raise ValueError("explain: this tensor has no graph (a leaf, or made without "
                             "gradients); pass the output of the computation instead")
        if _bad(_arr(t)):
            return _explain_value(t.grad_fn)
        return _explain_grad(t)
    raise TypeError(f"explain: expected a NonFiniteError or a Tensor, got "
                    f"{type(err_or_tensor).__name__}")
