"""Time travel across training steps: per-node and per-parameter statistics of every backward.

A :class:`Recorder` watches the program through the public hooks of the lower floors: the
dispatch door (``_dispatch.add_hook``, only while a recorded step runs its forward: output
statistics), the engine's observers (gradient statistics: a light ``on_node`` observer that
gets raw arrays and keeps the engine on its swift path, or a Step observer when breaks may
fire) and ``autograd.functional_api.backward_observers`` (where a training step starts and
ends); an optimizer's step hooks give update-to-weight ratios. Only small numbers are kept,
in a ring buffer of the last ``keep`` steps.

Where the cost goes (``benchmarks/bench_debug.py --recorder``): per recorded step, one record
per node made in the forward with its key taken from the last step's plan (no name lookup or
string building while the program repeats), a few NumPy calls per array (a BLAS dot for
exact norms and NaN/Inf checks, one copy of a sample into the step's batch) and a handful per
step for the batches; steps that are not recorded cost a call per backward node.

Measured inside the hooks (one BLAS thread, plain step 2.2 ms; the figures move by a third
with the shared box's load, the shares do not): forward hook ~75 us a step, the batch of
outputs in ``before_backward`` ~60, the gradient hook ~130 (~55 of them the exact dots), the
gradient batch and records in ``after_backward`` ~65, update ratios ~55. What is left costs
about 2 us a NumPy call (some 80 a step) and the Python around them; moving the same
calls elsewhere does not change the sum. Tried and measured no faster (bench_debug.py
--recorder, rounds interleaved in one process): one flush of outputs and gradients after
backward (the batch is cold by then), float32 batches for samples, sums of squares taken at
copy time, the batches' squares and zero counts vectorized over the whole batch (the
temporaries cost what the calls save), update ratios from one buffer with ``reduceat`` or
``np.concatenate``. Variants that drop a part, against the same step: without the exact
dots the overhead is about 3 points lower, without the update ratios about 2, without the
batches' reductions about 7; the bookkeeping alone (keys, records, edges, the hooks
themselves) costs about 3-4 points.
"""
from __future__ import annotations

import math
import weakref
from collections import deque
from collections.abc import Callable

import numpy as np

from .. import _backend as B
from .. import _dispatch as D
from .. import _display
from .._hooks import RemovableHandle
from .._source import source_entry
from .._source import where as source_where
from .._tensor import Tensor
from ..autograd import engine as E
from ..autograd import function as FN
from ..autograd import functional_api as F
from ..autograd.node import AccumulateGrad, OpNode
from ..nn.module import scope_in

__all__ = ["Recorder", "BreakpointHit", "NodeSummary"]

NODE_STATS = ("grad_norm", "grad_max", "grad_nan", "grad_inf", "nonfinite", "out_mean",
              "out_std", "out_min", "out_max", "out_zeros", "out_saturated", "out_nan",
              "out_inf")
PARAM_STATS = ("grad_norm", "grad_max", "grad_nan", "grad_inf", "nonfinite", "weight_norm",
               "update_ratio")
_EXPLODE = 1e3  # "exploding": grad norm above this times the node's running median
_WARMUP = 5  # recorded values a running median needs before "exploding" can fire
# Update ratios of bigger parameters are measured on _RATIO_SAMPLE entries, in runs of
# _RATIO_RUN consecutive ones spread evenly over the parameter (see _ratio_view)
_RATIO_SAMPLE = 4096
# Host arrays of up to 2 * sample entries are copied whole into a step's batch; bigger ones
# are summarised exactly on their own when sample=None (this many entries decide "bigger")
_SAMPLE = 4096
_RATIO_RUN = 64


_names: dict = {}


def _dtype_name(d) -> str:
    n = _names.get(d)
    if n is None:
        n = _names[d] = np.dtype(d).name
    return n


def _arr(t):
    return t._data if isinstance(t, Tensor) else t


_ONES: dict = {}  # (size, dtype, array type) -> a ones vector: a sum as one BLAS dot
_ONES_MAX = 1 << 20  # above this many entries a plain sum (a ones vector would cost memory)


def _total(xp, x):
    """``x.sum()`` of a 1-D float array as a BLAS dot with ones: about twice as fast as
    NumPy's pairwise sum on the benchmark's 32k-entry outputs (bench_debug.py, recorder)."""
    n = x.size
    if n > _ONES_MAX:
        return float(x.sum())
    k = (n, x.dtype, x.__class__)
    ones = _ONES.get(k)
    if ones is None:
        if len(_ONES) > 64:
            _ONES.clear()
        ones = _ONES[k] = xp.ones(n, dtype=x.dtype)
    return float(xp.dot(x, ones))


def _sample(x, sample):
    """An evenly strided copy of about ``sample`` entries of the 1-D array ``x`` (None when
    ``x`` has at most ``2 * sample`` entries: then everything is exact). The stride is odd so
    that it does not line up with power-of-two row lengths (every row and column is met)."""
    if not sample or x.size <= 2 * sample:
        return None
    return x[::(x.size // sample) | 1].copy()  # contiguous: strided reductions lose SIMD


def _as_float(a):
    """A float array to summarise for host array ``a`` whose NumPy kind is not "f": a
    float32 copy of bfloat16 (ml_dtypes' kind is "V"), None for anything else."""
    if a.dtype.name == "bfloat16":
        return a.astype(np.float32)
    return None


def _saturated(xp, x, opname: str | None) -> int:
    """How many entries of output ``x`` are saturated: ``|y| > 0.99`` for tanh, ``y < 0.01``
    or ``y > 0.99`` for sigmoid (0 for other ops, and NaN never counts)."""
    if opname == "tanh":
        return int(xp.count_nonzero(xp.abs(x) > 0.99))
    if opname == "sigmoid":
        return int(xp.count_nonzero((x < 0.01) | (x > 0.99)))
    return 0


def _out_raw(arr, opname: str | None, sample: int | None = None):
    """Raw forward output statistics ``(n, k, sum, sum of squares, min, max, zero fraction,
    saturated fraction, nan, inf)``; ``sum`` and ``sum of squares`` are over ``k`` entries.

    The NaN/Inf counts are exact: over every entry (a sum of squares over every entry is
    finite exactly when there is none; only then are they counted). The rest is over the
    finite entries of the output, all of them for outputs of up to ``2 * sample`` entries
    (or ``sample=None``), else of an evenly strided sample of about ``sample`` entries
    (:func:`_sample`): a few passes over a small copy instead of over the whole output (the
    recording budget is 15% of a training step). So an output with NaN/Inf costs two more
    passes, not an exact summary: attention scores masked with -inf (every step of a
    transformer) and a NaN spreading through a graph stay cheap to record. The derived
    values (mean, std) are computed when read (:func:`_out_stats`)."""
    n = arr.size
    if n == 0 or arr.dtype.kind != "f":
        return None
    xp = B.xp_of(arr)
    full = arr.ravel(order="K")  # a view for C- and F-ordered arrays alike (no copy)
    x = _sample(full, sample)
    if x is None:
        x = full
        mn, mx = float(x.min()), float(x.max())  # NaN propagates: finite pair, no NaN/Inf
        bad = not (mn - mn == 0 and mx - mx == 0)
    else:
        s2 = float(xp.vdot(full, full))
        bad = s2 - s2 != 0  # NaN/Inf, or squares beyond the dtype's range
        mn = None
    nan = inf = 0
    if bad:  # rare, or -inf masks: count over every entry, then use the finite ones
        nan = int(xp.count_nonzero(xp.isnan(full)))
        inf = int(xp.count_nonzero(xp.isinf(full)))
    m = x.size  # zeros and saturated entries are fractions of every entry summarised
    zeros = int(xp.count_nonzero(x == 0))
    sat = _saturated(xp, x, opname)
    if nan or inf:
        x = x[xp.isfinite(x)]
        if x.size == 0:
            return (n, 0, 0.0, 0.0, 0.0, 0.0, zeros / m, sat / m, nan, inf)
        mn = None
    if mn is None:
        mn, mx = float(x.min()), float(x.max())
    if x.dtype.itemsize < 8 and max(mn * mn, mx * mx) * x.size > 1e37:
        x = x.astype(xp.float64)  # the sum of squares would overflow in the dtype
    return (n, x.size, _total(xp, x), float(xp.vdot(x, x)), mn, mx, zeros / m, sat / m, nan,
            inf)


def _out_stats(raw) -> dict:
    """The forward statistics of a raw tuple from :func:`_out_raw`."""
    if raw is None:
        return {}
    n, k, s1, s2, mn, mx, zeros, sat, nan, inf = raw
    if k == 0:  # nothing finite to summarise: the fractions are still known
        return {"out_zeros": zeros, "out_saturated": sat, "out_nan": nan, "out_inf": inf}
    m = s1 / k
    # E[x^2] - mean^2 from the two dots (no centred copy): loses digits only when |mean| >>
    # std, which a diagnostic can afford (float32: ~1e-7 * mean^2 / std^2 relative)
    std = math.sqrt(max(s2 / k - m * m, 0.0))
    return {"out_mean": m, "out_std": std, "out_min": mn, "out_max": mx,
            "out_zeros": zeros, "out_saturated": sat, "out_nan": nan, "out_inf": inf}


def _grad_raw(g, sample: int | None = None):
    """``(sum of squares, max |g|, nan, inf)`` of one gradient array: the sum of squares (so
    the norm) and NaN/Inf counts are always exact (one BLAS dot; NaN/Inf are counted only
    when it is not finite); ``max |g|`` is exact up to ``2 * sample`` entries (or
    ``sample=None``), else over an evenly strided sample of about ``sample`` entries."""
    if g.size == 0:
        return (0.0, 0.0, 0, 0)
    xp = B.xp_of(g)
    x = g.ravel(order="K")  # weight gradients are often F-ordered: no copy
    ss = float(xp.vdot(x, x))
    if ss - ss == 0:  # finite (NaN/Inf in x make the dot NaN/Inf): the common case
        y = _sample(x, sample)
        if y is not None:
            x = y
        return (ss, max(float(x.max()), -float(x.min())), 0, 0)
    nan = int(xp.count_nonzero(xp.isnan(x)))
    inf = int(xp.count_nonzero(xp.isinf(x)))
    if nan or inf:
        x = x[xp.isfinite(x)]
        if x.size == 0:
            return (0.0, 0.0, nan, inf)
    x64 = x.astype(xp.float64)  # the squares overflowed, or NaN/Inf were dropped
    return (float(xp.vdot(x64, x64)), max(float(x.max()), -float(x.min())), nan, inf)


def _grad_stats(raw) -> dict:
    if raw is None:
        return {}
    return {"grad_norm": math.sqrt(raw[0]), "grad_max": raw[1], "grad_nan": raw[2],
            "grad_inf": raw[3]}


class _Batch:
    """Copies of many arrays (whole, or an evenly strided sample of a big one) in one float64
    buffer, reduced together by segment (``ufunc.reduceat``): a handful of NumPy calls per
    training step instead of five or so per node, whose fixed cost was most of the recorder's
    statistics on the benchmark's MLP (bench_debug.py --recorder). Host arrays only."""

    __slots__ = ("buf", "used", "offs", "items", "_o", "_oa")

    def __init__(self):
        self.buf = np.empty(1 << 15)
        self.used = 0
        self.offs: list = []
        self.items: list = []
        self._o: list = []  # the last segment starts and their array: a program that
        self._oa = np.zeros(0, dtype=np.intp)  # repeats reuses it (a NumPy call less)

    def add(self, x, item) -> None:
        u = self.used
        e = u + x.size
        if e > self.buf.size:
            nb = np.empty(max(2 * self.buf.size, e))
            nb[:u] = self.buf[:u]
            self.buf = nb
        self.buf[u:e] = x  # float32 becomes float64: sums lose nothing (half a copyto's cost)
        self.offs.append(u)
        self.items.append(item)
        self.used = e

    def take(self):
        """(buffer, segment starts, segment ends, items), emptying the batch; the buffer is
        only valid until the next :meth:`add`."""
        buf, offs, items = self.buf[:self.used], self.offs, self.items
        ends = offs[1:] + [self.used]
        self.used, self.offs, self.items = 0, [], []
        return buf, offs, ends, items

    def starts(self, offs: list):
        """``offs`` as an index array (the last one again when they repeat)."""
        if offs != self._o:
            self._o, self._oa = offs, np.array(offs, dtype=np.intp)
        return self._oa


# Sums of squares and zero counts of a batch: per segment (a BLAS dot, a count) when the
# segments are long, else for all segments at once (a squared copy or a comparison, then one
# ``reduceat``). Measured on this box: 6 segments of 16,000 float64 entries, 7.3 us per
# segment against 12.2 us at once; 6 of 60 entries, 7.8 against 1.2 us.
_PER_SEGMENT = 1024  # mean segment length above which the per-segment way is taken


def _out_batch(batch: _Batch) -> None:
    """Set ``record.f`` (a raw tuple as from :func:`_out_raw`) of every output in ``batch``;
    the items are ``(record, size, op name)``."""
    buf, offs, ends, items = batch.take()
    k = len(items)
    if not k:
        return
    o = batch.starts(offs)
    mins = np.minimum.reduceat(buf, o).tolist()
    maxs = np.maximum.reduceat(buf, o).tolist()
    sums = np.add.reduceat(buf, o).tolist()
    per_seg = buf.size > _PER_SEGMENT * k
    if per_seg:
        sqs = [float(x.dot(x)) for x in [buf[a:b] for a, b in zip(offs, ends)]]
    else:
        sqs = np.add.reduceat(buf * buf, o).tolist()
    # zeros only where a segment's range holds 0 (not in a loss, exp, softmax, ...)
    zeros = [0] * k
    span = [i for i in range(k) if mins[i] <= 0.0 <= maxs[i]]
    if span:
        z = buf == 0
        if per_seg:
            for i in span:
                zeros[i] = int(np.count_nonzero(z[offs[i]:ends[i]]))
        else:
            zeros = np.add.reduceat(z, o).tolist()
    finite = math.isfinite(sum(sums) + sum(sqs))  # else NaN/Inf (or a huge sum) somewhere
    for i in range(k):
        rec, n, op = items[i]
        a, b = offs[i], ends[i]
        m = b - a
        if not finite and (sums[i] - sums[i] != 0 or sqs[i] - sqs[i] != 0):
            rec.f = _out_raw(buf[a:b], op, None)
            continue
        sat = 0.0
        if op == "tanh" or op == "sigmoid":  # (no slice for the other ops, every step)
            sat = _saturated(np, buf[a:b], op) / m
        rec.f = (n, m, sums[i], sqs[i], mins[i], maxs[i], zeros[i] / m, sat, 0, 0)


def _grad_batch(batch: _Batch) -> None:
    """Fill in ``max |g|`` of every record in ``batch``, and the sum of squares of those copied
    whole (the others have theirs, over every entry)."""
    buf, offs, ends, items = batch.take()
    k = len(items)
    if not k:
        return
    # max |g| = max(max g, -min g): two reductions in place, no |g| temporary
    o = batch.starts(offs)
    hi = np.maximum.reduceat(buf, o).tolist()
    lo = np.minimum.reduceat(buf, o).tolist()
    sqs = None
    if buf.size <= _PER_SEGMENT * k:
        sqs = np.add.reduceat(buf * buf, o).tolist()
    for i in range(k):
        rec, whole = items[i]
        mx = max(hi[i], -lo[i])
        if not whole:
            rec.g = (rec.g[0], mx, 0, 0)
            continue
        if sqs is None:
            seg = buf[offs[i]:ends[i]]
            sq = float(seg.dot(seg))  # BLAS, on the few whole copies only
        else:
            sq = sqs[i]
        if sq - sq == 0:
            rec.g = (sq, mx, 0, 0)
        else:  # NaN/Inf (or an overflow) in a whole copy: count them there
            rec.g = _grad_raw(buf[offs[i]:ends[i]], None)


class NodeSummary:
    """What a recorded node looked like at one training step (what ``break_when`` sees).

    Attributes
    ----------
    key : str
        Stable name across steps: a parameter's name (``"2.weight"``), or
        ``"<scope>/<node name>#<k>"`` where ``k`` counts nodes of that scope and op in
        forward order (``"0/AddmmBackward0#0"``; scope '' outside modules).
    op, scope, source, step, param
        Node name, module scope, ``(file, line)`` or None, training step, parameter name
        (None for op nodes).
    grad_norm, grad_max, grad_nan, grad_inf, nonfinite, out_mean, out_std, out_min, out_max,
    out_zeros, out_saturated, out_nan, out_inf : float
        Plain numbers; 0.0 where a node got no gradient or has no forward output recorded.
        ``nonfinite`` counts NaN and Inf in the gradient and the forward output.
    """

    __slots__ = ("key", "op", "scope", "source", "step", "param", "shape", "dtype", *NODE_STATS)

    def __init__(self, key, op, scope, source, step, param, shape, dtype, stats):
        self.key, self.op, self.scope, self.source = key, op, scope, source
        self.step, self.param, self.shape, self.dtype = step, param, shape, dtype
        for k in NODE_STATS:
            setattr(self, k, float(stats.get(k, 0.0)))
        self.nonfinite = float(stats.get("grad_nan", 0) + stats.get("grad_inf", 0) +
                               stats.get("out_nan", 0) + stats.get("out_inf", 0))

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self) -> str:
        src = f" at {source_where(self.source)}" if self.source else ""
        where = f" in '{self.scope}'" if self.scope else ""
        return (f"NodeSummary(step {self.step}: {self.op}{where}{src}, grad_norm="
                f"{self.grad_norm:.4g}, grad_max={self.grad_max:.4g}, "
                f"nonfinite={self.nonfinite:g})")


class _Rec:
    """One node's record at one step: raw numbers, with the statistics derived when read
    (a dict per node per step cost more than the arithmetic on the benchmark's MLP).
    ``meta`` is shared by every step of one key: (op, scope, source, param, label)."""

    __slots__ = ("key", "seq", "meta", "shape", "dt", "f", "g", "u")

    def __init__(self, key, seq, meta, shape, dt, f, g):
        self.key, self.seq, self.meta, self.shape, self.dt = key, seq, meta, shape, dt
        self.f, self.g, self.u = f, g, None

    @property
    def dtype(self) -> str:
        return "" if self.dt is None else _dtype_name(self.dt)

    op = property(lambda self: self.meta[0])
    scope = property(lambda self: self.meta[1])
    source = property(lambda self: self.meta[2])
    param = property(lambda self: self.meta[3])
    label = property(lambda self: self.meta[4])

    @property
    def stats(self) -> dict:
        s = _out_stats(self.f)
        if self.g is not None:
            s.update(_grad_stats(self.g))
        if self.u is not None:
            s["weight_norm"], s["update_ratio"] = self.u
        return s

    def summary(self, step: int) -> NodeSummary:
        return NodeSummary(self.key, self.op, self.scope, self.source, step, self.param,
                           list(self.shape), self.dtype, self.stats)


class BreakpointHit(RuntimeError):
    """A :class:`Recorder`'s ``break_when`` fired during ``backward()``.

    Attributes
    ----------
    step : int
        The training step (count of recorded-model backward calls, from 0).
    node : NodeSummary
        The node where it fired (``op``, ``scope``, ``source`` and its statistics).
    reason : str
        Which condition fired.
    stepper : BackwardStepper
        A stepper over that step's graph, positioned at that node (made on first use; the
        parameters' ``.grad`` were put back to what they were before this backward). It
        displays as the step debugger in a notebook; ``close()`` it to free the graph.
    """

    def __init__(self, step: int, node: NodeSummary, reason: str, outputs, target):
        self.step, self.node, self.reason = step, node, reason
        self._outputs, self._target, self._stepper = outputs, target, None
        src = f" at {source_where(node.source)}" if node.source else ""
        where = f" in module '{node.scope}'" if node.scope else " outside any module"
        super().__init__(
            f"Recorder break at training step {step}: {node.op}{where}{src}: {reason}. "
            "Inspect `err.node`, or step through that backward with `err.stepper`.")

    @property
    def stepper(self):
        if self._stepper is None:
            from .stepper import BackwardStepper

            s = BackwardStepper(self._outputs)
            while True:
                st = s.step()
                if st is None or st.node is self._target:
                    break
            self._stepper = s
        return self._stepper


class _Run:
    """One backward in progress."""

    __slots__ = ("outputs", "recording", "nodes", "touched", "snap", "broke", "taken",
                 "held")

    def __init__(self, outputs, recording):
        self.outputs, self.recording = outputs, recording
        self.nodes: dict = {}  # graph node -> _Rec
        self.touched = False
        self.broke = False
        self.snap = None
        self.taken: set | None = None  # keys in use this step (see keys), made when first asked
        self.held: set | None = None  # keys of a retained graph's nodes (see held_keys)

    def keys(self, pending: dict) -> set:
        """The node keys this step uses so far: its forward's, and those given at backward."""
        if self.taken is None:
            self.taken = {r.key for r in pending.values()}
        return self.taken

    def held_keys(self, retained) -> set:
        """The keys the nodes of a retained graph keep (no new key may take one)."""
        if self.held is None:
            self.held = set() if retained is None else {r.key for r in retained.values()}
        return self.held


class _Observer:
    """The engine observer of one recorder. Without ``break_when`` it is a light one (the
    engine calls ``on_node(node, grads)`` with raw arrays, makes no Step and keeps its swift
    path); with one it takes Steps, and ``holds_graph`` while a break may fire so that the
    break can hand the whole graph to a stepper."""

    __slots__ = ("rec", "on_node")

    def __init__(self, rec, light: bool):
        self.rec = rec
        self.on_node = rec._on_node if light else None

    @property
    def holds_graph(self) -> bool:
        r = self.rec
        return r._break is not None and r._run is not None and r._run.recording

    def __call__(self, step) -> None:
        self.rec._on_node(step.node, [_arr(g) for g in step.grad_outputs])


class Recorder:
    """Record every training step of ``model``: node and parameter statistics, with breaks.

    For every ``backward()`` whose graph reaches a parameter of ``model`` (one training step),
    keeps one small record per graph node (forward output mean, std, min, max, fraction of
    zeros, fraction saturated for tanh/sigmoid, NaN/Inf counts; gradient norm, max ``|g|``,
    NaN/Inf counts) and per parameter (gradient norm and max, weight norm, and with
    ``optimizer`` the update-to-weight ratio ``||w_after - w_before|| / ||w_before||`` of
    ``optimizer.step()``, exact up to 4,096 entries; for bigger parameters over 64 runs of
    64 consecutive entries spread evenly over it; ``weight_norm`` is over the same entries).

    What is exact: gradient norms and every NaN/Inf count (one pass over every entry, and
    two more when it finds a NaN/Inf; a gradient with NaN/Inf gets its norm and max ``|g|``
    over all its finite entries), and every statistic of an array of up to ``2 * sample``
    entries. For bigger arrays the output mean, std, min, max, zero and saturated fractions
    and the gradient's max ``|g|`` are those of an evenly strided sample of about ``sample``
    entries (odd stride, so that every row and column of a 2-D array is met; mean, std,
    min and max over its finite entries): estimates, and min/max/max ``|g|`` lie inside the
    true range. ``sample=None`` makes every statistic exact, at a higher cost on
    big layers (``bench_debug.py --recorder`` times both). Host arrays of a step are
    summarised together, in one float64 batch.

    Cost: ``benchmarks/bench_debug.py --recorder`` times it on the MLP training step of
    ``bench_train.py`` (its docstring has the figures). Steps that ``every`` skips cost one
    call per backward node and nothing in the forward.

    Memory is bounded: only the last ``keep`` recorded steps are kept (a ring buffer), about
    0.6 kB per graph node and step, edges included, and never an array (measured with
    tracemalloc: the 3-layer MLP of ``benchmarks/`` records 12 nodes, 6.3 kB a step, so
    ``keep=200`` holds 1.3 MB; the total stays flat once the ring is full), plus two reused
    float64 batch buffers (256 kB each to start, growing to ``8 * 2 * sample`` bytes per
    recorded array of a step at most) and, with an optimizer, a copy of at most 4,096 entries
    per parameter in its dtype. For ``"exploding"``, a
    running median per node keeps its last 50 gradient norms (400 bytes a node). While a
    ``break_when`` is set, each recorded backward keeps its graph's saved values until it
    ends (as ``retain_graph`` would), so that a break can hand the whole graph to a
    :class:`BackwardStepper`.

    Parameters
    ----------
    model : nn.Module
        Whose parameters mark a training step, and name them (``"2.weight"``).
    keep : int
        How many recorded steps to keep.
    every : int
        Record every ``every``-th step (steps are still counted in between).
    break_when : callable, "nonfinite" or "exploding", optional
        ``break_when(summary: NodeSummary) -> bool`` runs at every node of every recorded
        backward; ``"nonfinite"`` fires at the first node with a NaN/Inf gradient or output;
        ``"exploding"`` where a node's gradient norm exceeds 1e3 times its running median
        (after 5 recorded steps). When it fires, ``backward()`` raises :class:`BreakpointHit`.
    optimizer : Optimizer, optional
        Watched through its step hooks for update-to-weight ratios (:meth:`watch`).
    sample : int or None
        Arrays of more than ``2 * sample`` entries are summarised on an evenly strided sample
        of about ``sample`` entries, except their norms and NaN/Inf counts (see above); None
        for exact statistics everywhere.

    Examples
    --------
    >>> rec = dyntorch.debug.Recorder(model, break_when="nonfinite", optimizer=opt)
    >>> for x, y in data: ...                       # the usual loop
    >>> rec.history("2.weight", "grad_norm")        # one value per kept step
    >>> dyntorch.viz.show(rec.at(rec.steps[-1]))    # that step's graph with its statistics
    """

    def __init__(self, model, keep: int = 200, every: int = 1,
                 break_when: Callable[[NodeSummary], bool] | str | None = None, *,
                 optimizer=None, sample: int | None = 4096):
        if not hasattr(model, "named_parameters"):
            raise TypeError(f"Recorder: expected an nn.Module, got {type(model).__name__}")
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f"Recorder: keep must be a positive int, got {keep!r}")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"Recorder: every must be a positive int, got {every!r}")
        if break_when is not None and not callable(break_when) and \
                break_when not in ("nonfinite", "exploding"):
            raise ValueError(f"Recorder: break_when must be a callable on a NodeSummary, "
                             f"'nonfinite' or 'exploding'; got {break_when!r}")
        if sample is not None and (not isinstance(sample, int) or sample < 1):
            raise ValueError(f"Recorder: sample must be a positive int (entries) or None "
                             f"(every statistic exact), got {sample!r}")
        self.model = model
        self.keep, self.every, self.sample = keep, every, sample
        self._break = break_when
        self._params = {id(p): (name, p) for name, p in model.named_parameters()}
        self._records: deque = deque(maxlen=keep)
        self._medians: dict = {}  # key -> deque of recent grad norms ("exploding")
        self._count = 0  # training steps seen (the next step's number)
        self._run: _Run | None = None
        # graph node -> [key, forward stats, shape, dtype] of the coming backward
        self._pending: dict = {}
        self._counts: dict = {}  # (scope, node name) -> how many so far (keys; see _fresh_key)
        # (op, scope, key, (scope, name)) of each forward op of the last recorded steps, in
        # order: a step that repeats the program reuses the keys (no name or f-string per op)
        self._plan: list = []
        self._diverged = False  # this step left the plan: keys from _counts
        self._accs: dict = {}  # AccumulateGrad node of a parameter -> the parameter's name
        self._module_names: dict = {}  # id(module) -> its name in model (see _scope_of)
        # the nodes of the last recorded backward whose graph was retained (retain_graph=True):
        # a backward through it again finds its keys and forward statistics here
        self._retained: weakref.WeakKeyDictionary | None = None
        self._hooked = False  # the dispatch hook is on only for steps that are recorded
        self._before = None  # parameter arrays before optimizer.step()
        self._fb, self._gb = _Batch(), _Batch()  # this step's host outputs and gradients
        # a callable break_when reads every statistic at its node: no batching of max |g|
        self._eager_grads = callable(break_when)
        self._ratios: _Ratios | None = None  # buffers of the update ratios
        self._meta: dict = {}  # node key -> (op, scope, source, param, label)
        self._last_edges: list = []
        self._handles: list = []
        self._obs = _Observer(self, break_when is None)
        self._remove_hook = None
        self._hook_forward(True)
        E.observers.append(self._obs)
        F.backward_observers.append(self)
        self.error = None  # set by backward_observers if a hook of ours failed
        #: called with the BreakpointHit just before it is raised (e.g. to close the recorder)
        self.on_break: Callable[[BreakpointHit], None] | None = None
        self._step_hooks: dict = {}  # handle id -> hook(recorder, step)
        self.closed = False
        if optimizer is not None:
            self.watch(optimizer)

    # ------------------------------------------------------------------ attaching
    def watch(self, optimizer) -> None:
        """Measure update-to-weight ratios of ``optimizer.step()`` (through its step hooks)."""
        self._handles.append(optimizer.register_step_pre_hook(self._pre_step))
        self._handles.append(optimizer.register_step_post_hook(self._post_step))

    def register_step_hook(self, hook: Callable[[Recorder, int], None]) -> RemovableHandle:
        """Call ``hook(recorder, step)`` each time a recorded step has been kept, at the end of
        its ``backward()`` (before ``optimizer.step()``, so that step's update ratios come
        later). A view follows training this way while a long cell runs. Like every observer
        of ``backward()``, a hook that raises never breaks training: the exception is kept in
        :attr:`error`.

        Returns
        -------
        RemovableHandle
            ``handle.remove()`` unregisters the hook.
        """
        if not callable(hook):
            raise TypeError(f"Recorder.register_step_hook: expected a callable, got "
                            f"{type(hook).__name__}")
        h = RemovableHandle(self._step_hooks)
        self._step_hooks[h.id] = hook
        return h

    def close(self) -> None:
        """Detach from the door, the engine and optimizers; the records stay readable."""
        if self.closed:
            return
        self.closed = True
        self._hook_forward(False)
        if self._obs in E.observers:
            E.observers.remove(self._obs)
        if self in F.backward_observers:
            F.backward_observers.remove(self)
        for h in self._handles:
            h.remove()
        self._handles = []
        self._pending.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _recording_next(self) -> bool:
        return self._count % self.every == 0

    def _hook_forward(self, on: bool) -> None:
        """Hook the dispatch door for the forward of a recorded step, and only then: with no
        hook the door keeps its fast lanes, so steps in between cost next to nothing."""
        if on and self._remove_hook is None:
            self._remove_hook = D.add_hook(self._forward)
            FN.output_observers.append(self._function_output)
        elif not on and self._remove_hook is not None:
            self._remove_hook()
            self._remove_hook = None
            if self._function_output in FN.output_observers:
                FN.output_observers.remove(self._function_output)

    # ------------------------------------------------------------------ forward
    def _forward(self, op, args, attrs, res) -> None:
        if self._count % self.every:
            return
        r = res[0] if res.__class__ is tuple else res
        node = getattr(r, "grad_fn", None)
        if node is None or node in self._pending:
            return
        self._take(node, op, r._data, op.name)

    def _function_output(self, node, res) -> None:
        """A custom ``autograd.Function`` call (the door does not see those)."""
        if self._count % self.every or node in self._pending:
            return
        for r in res if res.__class__ is tuple else (res,):
            if isinstance(r, Tensor) and r.grad_fn is node and r._out_nr == 0:
                self._take(node, node.__class__, r._data, None)
                return

    def _take(self, node, op, arr, opname) -> None:
        """Key ``node`` (the ``op`` of the forward, an OpDef or a Function's node class) and
        summarise its output array ``arr``."""
        pending = self._pending
        i = len(pending)
        plan = self._plan
        if not self._diverged and i < len(plan) and plan[i][0] is op and \
                plan[i][1] == node.scope:
            key, meta = plan[i][2], plan[i][4]
        else:
            key, meta = self._fresh_key(node, op, i)
        rec = pending[node] = _Rec(key, node.seq, meta, arr.shape, arr.dtype, None, None)
        if arr.__class__ is not np.ndarray:  # device arrays: summarised on their device
            rec.f = _out_raw(arr, opname, self.sample)
            return
        if arr.dtype.kind != "f":
            arr = _as_float(arr)
        if arr is not None and arr.size:
            # host arrays join the step's batch (reduced in before_backward); a sampled one
            # gets its NaN/Inf check over every entry here, as one BLAS dot
            x = arr.ravel(order="K")
            n, sample = x.size, self.sample
            if n > 2 * (sample or _SAMPLE):
                s2 = float(x.dot(x)) if sample else math.nan  # (.dot: less dispatch than vdot)
                if s2 - s2 == 0:
                    x = x[::(n // sample) | 1]
                else:  # NaN/Inf (counted), or every entry wanted: on its own
                    rec.f, x = _out_raw(arr, opname, sample), None
            if x is not None:
                self._fb.add(x, (rec, n, opname))
                if self._fb.used > 1 << 22:  # forward passes that never ran backward
                    self._flush_forward()
        if i >= 1_000_000:  # forward passes that never ran backward
            self._pending = {}
            self._counts = {}
            self._plan = []
            self._diverged = False
            self._fb.take()

    def _fresh_key(self, node, op, i: int) -> str:
        """The key of the ``i``-th forward op of this step when it is not the plan's: counts
        are rebuilt from the plan's first ``i`` ops once per step, and the plan follows this
        step from there on."""
        if not self._diverged:
            self._fresh_key_state(i)
        key, ck = self._new_key(node)
        meta = self._meta_of(node, key, None)
        self._plan.append((op, node.scope, key, ck, meta))
        return key, meta

    def _flush_forward(self) -> None:
        _out_batch(self._fb)

    def _new_key(self, node) -> tuple:
        name = node.name()
        scope = self._scope_of(node.scope)
        ck = (scope, name)
        k = self._counts.get(ck, 0)
        self._counts[ck] = k + 1
        return f"{scope}/{name}#{k}", ck

    def _scope_of(self, scope: str) -> str:
        """A node's module scope in the names of the recorder's model, which name its
        parameters (``nn.module.scope_in``: the Trainer's "net.0", not "0")."""
        return scope_in(self.model, scope, self._module_names)

    # ------------------------------------------------------------------ backward
    def before_backward(self, outputs) -> None:
        if self._fb.items:
            self._flush_forward()
        if self._gb.items:  # a backward that failed half way may have left some
            self._gb.take()
        run = _Run(outputs, self._recording_next())
        if run.recording and self._break is not None:
            run.snap = [(p, None if p.grad is None else p.grad.detach().clone())
                        for _, p in self._params.values()]
        self._run = run

    def _on_node(self, node, grads) -> None:
        """One node of a backward: ``grads`` are the raw gradients that came in."""
        run = self._run
        if run is None:  # a stepper or autograd.grad outside a training step: not ours
            return
        if node.__class__ is AccumulateGrad:
            got = self._accs.get(node)
            if got is None:
                got = self._param_of(node)
            if got is not None:
                run.touched = True
            if not run.recording:
                return
            if got is None:  # a leaf outside the model
                key = f"leaf#{node.seq}"
                meta = self._meta_of(node, key, None)
            else:
                key, meta = got
            rec = _Rec(key, node.seq, meta, None, None, None, None)  # shape: below
        else:
            if not run.recording:
                return
            rec = self._pending.get(node)
            old = None
            if rec is None and self._retained is not None:
                # a graph kept by retain_graph, run through again: the node keeps its key
                # (unless this step's forward took it: a state carried across steps) and its
                # forward statistics
                old = self._retained.get(node)
                if old is not None and old.key not in run.keys(self._pending):
                    rec = _Rec(old.key, old.seq, old.meta, old.shape, old.dt, old.f, None)
                    run.taken.add(old.key)
            if rec is None:  # made before this recorder looked: key it now
                if not self._diverged:  # keys of the rest of this step come from counts
                    self._fresh_key_state(len(self._pending))
                key = self._new_key(node)[0]
                held = run.held_keys(self._retained)
                while key in run.keys(self._pending) or key in held:  # a retained node's
                    key = self._new_key(node)[0]
                run.taken.add(key)
                shape, dt = _out_meta(node)
                rec = _Rec(key, node.seq, self._meta_of(node, key, None), shape, dt,
                           None if old is None else old.f, None)
        run.nodes[node] = rec
        g = grads[0] if grads else None
        if g.__class__ is Tensor:  # create_graph=True hands Tensors on
            g = g._data
        if rec.shape is None:  # a leaf's: its gradient's, else its tensor's
            if g is not None:
                rec.shape, rec.dt = g.shape, g.dtype
            else:
                rec.shape, rec.dt = _out_meta(node)
        if g is not None and g.__class__ is np.ndarray and g.dtype.kind != "f":
            g = _as_float(g)
        if g is not None:
            n, sample = g.size, self.sample
            if g.__class__ is np.ndarray and n and g.dtype.kind == "f" and \
                    not self._eager_grads and (sample or n <= 2 * _SAMPLE):
                x = g.ravel(order="K")
                if n <= 2 * (sample or _SAMPLE) and self._break is None:
                    # copied whole: its sum of squares comes with the step's batch too
                    self._gb.add(x, (rec, True))
                else:
                    # the norm and NaN/Inf now, exact (breaks read them); max |g| batched
                    ss = float(x.dot(x))
                    if ss - ss == 0:
                        rec.g = (ss, math.nan, 0, 0)
                        self._gb.add(x[::(n // sample) | 1] if sample and n > 2 * sample
                                     else x, (rec, False))
                    else:
                        rec.g = _grad_raw(g, None)
            else:
                rec.g = _grad_raw(g, sample)
        if self._break is not None:
            self._check(run, node, rec)

    def _param_of(self, node):
        """The model's name for the leaf of AccumulateGrad ``node`` (None if not a parameter);
        parameters' nodes are remembered (a leaf keeps its node while it lives)."""
        v = node.variable
        hit = self._params.get(id(v)) if v is not None else None
        if hit is None or hit[1] is not v:
            return None
        if len(self._accs) > 4 * len(self._params) + 16:  # parameters whose node was remade
            self._accs.clear()
        got = self._accs[node] = (hit[0], self._meta_of(node, hit[0], hit[0]))
        return got

    def _fresh_key_state(self, i: int) -> None:
        self._diverged = True
        del self._plan[i:]
        counts = self._counts = {}
        for e in self._plan:
            counts[e[3]] = counts.get(e[3], 0) + 1

    def _meta_of(self, node, key: str, name) -> tuple:
        """(op, scope, source, parameter name, label) of ``key``, resolved once per key (a key
        is one line of the program)."""
        meta = self._meta.get(key)
        if meta is None:
            if len(self._meta) > 100_000:  # keys of leaves outside the model are per step
                self._meta.clear()
            meta = self._meta[key] = (
                node.name(), self._scope_of(node.scope), node.source, name,
                getattr(getattr(node, "op", None), "name", None) or (name or node.name()))
        return meta

    def _check(self, run, node, rec) -> None:
        st = rec.summary(self._count)
        cond = self._break
        reason = None
        if cond == "nonfinite":
            if st.nonfinite:
                reason = (f"{int(st.nonfinite)} NaN/Inf (gradient nan={st.grad_nan:g} "
                          f"inf={st.grad_inf:g}, output nan={st.out_nan:g} inf={st.out_inf:g})")
        elif cond == "exploding":
            hist = self._medians.get(st.key)
            if hist is not None and len(hist) >= _WARMUP and st.grad_norm > 0:
                med = float(np.median(hist))
                if st.grad_norm > _EXPLODE * med:
                    reason = (f"gradient norm {st.grad_norm:.4g} is {st.grad_norm / med:.3g} "
                              f"times its running median {med:.4g}")
        elif cond(st):
            reason = f"break_when({cond.__name__ if hasattr(cond, '__name__') else cond}) " \
                     "returned True"
        if reason is None:
            return
        if run.snap is not None:  # the stepper replays this backward from its start
            for p, g in run.snap:
                p.grad = g
        run.touched = run.broke = True  # the step counts, with what it got to
        hit = BreakpointHit(self._count, st, reason, run.outputs, node)
        if self.on_break is not None:
            self.on_break(hit)
        raise hit

    def after_backward(self, outputs) -> None:
        run, self._run = self._run, None
        pending, self._pending = self._pending, {}
        self._counts = {}
        self._diverged = False
        if run is None or not run.touched:
            return
        step = self._count
        self._count += 1
        if not self.closed:
            self._hook_forward(self._count % self.every == 0)
        if not run.recording:
            return
        _grad_batch(self._gb)
        nodes = run.nodes
        if run.broke:  # backward stopped early: keep the forward statistics of the rest
            for node, rec in pending.items():
                if node not in nodes:
                    nodes[node] = rec
            recs = sorted(nodes.values(), key=_by_seq)
        else:  # the engine runs nodes in decreasing seq: reversed, they are in forward order
            recs = reversed(nodes.values())
            self._retained = _retained(nodes, pending)
        keyed = {rec.key: rec for rec in recs}
        if self._break == "exploding":
            medians = self._medians
            for rec in keyed.values():
                if rec.g is not None:
                    gn = math.sqrt(rec.g[0])
                    if math.isfinite(gn):
                        medians.setdefault(rec.key, deque(maxlen=50)).append(gn)
        edges = []
        push, get = edges.append, nodes.get
        for node, rec in nodes.items():
            pk = rec.key
            slot = -1
            for e in node.next:  # the edges (next_functions, without the (None, 0) padding)
                slot += 1
                if e is not None:
                    c = get(e[0])
                    if c is not None:
                        push((c.key, pk, slot, e[1]))
        if edges == self._last_edges:  # the same program: share one list across steps
            edges = self._last_edges
        self._last_edges = edges
        loss = None
        outs = run.outputs
        if len(outs) == 1 and isinstance(outs[0], Tensor) and outs[0].numel() == 1:
            d = outs[0]._data
            loss = float((d if d.__class__ is np.ndarray else B.to_numpy(d)).reshape(()))
        self._records.append({"step": step, "nodes": keyed, "edges": edges, "loss": loss})
        if self._step_hooks:
            for hook in tuple(self._step_hooks.values()):
                try:
                    hook(self, step)
                except Exception as e:  # noqa: BLE001 - a view must never break training
                    self.error = e

    # ------------------------------------------------------------------ optimizer
    def _pre_step(self, opt, args, kwargs) -> None:
        if not self._records or self._records[-1]["step"] != self._count - 1:
            self._before = None
            return
        nodes = self._records[-1]["nodes"]
        recs, params = [], []
        for name, p in self._params.values():
            rec = nodes.get(name)
            if rec is not None:  # a gradient this step
                recs.append(rec)
                params.append(p)
        r = self._ratios
        if r is None or not r.fits(params):
            r = self._ratios = _Ratios(params)
        r.save()
        self._before = (r, recs)

    def _post_step(self, opt, args, kwargs) -> None:
        got, self._before = self._before, None
        if got is None:
            return
        r, recs = got
        for rec, u in zip(recs, r.ratios()):
            rec.u = u

    # ------------------------------------------------------------------ reading
    @property
    def steps(self) -> list:
        """The training step numbers kept, oldest first."""
        return [r["step"] for r in self._records]

    def keys(self) -> list:
        """Every node key and parameter name seen in the kept steps (forward order)."""
        seen: dict = {}
        for r in self._records:
            for k in r["nodes"]:
                seen.setdefault(k, None)
        return list(seen)

    def history(self, name: str, stat: str = "grad_norm") -> np.ndarray:
        """One statistic of one parameter or node over the kept steps (NaN where missing).

        ``name`` is a parameter name (``"2.weight"``), a node key (see :meth:`keys`) or
        ``"loss"`` (the value of a scalar output, any ``stat``). ``stat`` is one of
        ``NODE_STATS`` for nodes, ``PARAM_STATS`` for parameters.
        """
        if name == "loss":
            return np.array([np.nan if r["loss"] is None else r["loss"]
                             for r in self._records], dtype=np.float64)
        if not any(name in r["nodes"] for r in self._records):
            keys = self.keys()
            raise KeyError(f"Recorder.history: no parameter or node '{name}' in the kept steps "
                           f"(known: {', '.join(keys[:20])}{' ...' if len(keys) > 20 else ''})")
        allowed = set(NODE_STATS) | set(PARAM_STATS)
        if stat not in allowed:
            raise KeyError(f"Recorder.history: unknown statistic '{stat}'; use one of "
                           f"{', '.join(sorted(allowed))}")
        out = np.full(len(self._records), np.nan)
        for i, r in enumerate(self._records):
            rec = r["nodes"].get(name)
            if rec is None:
                continue
            s = rec.stats
            if stat == "nonfinite":
                out[i] = sum(s.get(k, 0) for k in ("grad_nan", "grad_inf", "out_nan",
                                                   "out_inf"))
            elif stat in s:
                out[i] = s[stat]
        return out

    def summary(self, step: int, key: str) -> NodeSummary:
        """The :class:`NodeSummary` of node/parameter ``key`` at training ``step``."""
        rec = self._record(step)["nodes"].get(key)
        if rec is None:
            raise KeyError(f"Recorder.summary: no node '{key}' at step {step}")
        return rec.summary(step)

    def _record(self, step: int) -> dict:
        for r in self._records:
            if r["step"] == step:
                return r
        raise KeyError(f"Recorder: step {step} is not kept (kept: "
                       f"{self.steps[0] if self._records else '-'}.."
                       f"{self.steps[-1] if self._records else '-'}, every {self.every})")

    def at(self, step: int) -> dict:
        """That step's graph with its statistics, as a graph document (``graph_json`` schema).

        Nodes carry ``state: "done"``, ``grad.in`` as reduced summaries (``norm``, ``absmax``,
        ``nan``, ``inf``; the other Summary fields null/empty) and a ``record`` object with
        every statistic (``docs/graph-schema.md``, "Recorder documents").
        """
        r = self._record(step)
        types = _scope_types(self.model)
        nodes = []
        for key, rec in r["nodes"].items():
            s = rec.stats
            src = rec.source
            shape = list(rec.shape)
            gsum = None
            if "grad_norm" in s:
                gsum = {"shape": shape, "dtype": rec.dtype, "device": "",
                        "count": int(np.prod(shape)) if shape else 1,
                        "mean": None, "std": None, "min": None, "max": None,
                        "norm": s["grad_norm"], "absmax": s["grad_max"], "nan": s["grad_nan"],
                        "inf": s["grad_inf"], "zeros": None,
                        "hist": {"edges": [], "counts": []}, "preview": [], "heat": None}
            scope = rec.scope
            if rec.param and "." in rec.param:
                scope = rec.param.rsplit(".", 1)[0]
            stats = {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
                     for k, v in s.items()}
            nodes.append({
                "id": f"n{rec.seq}", "seq": rec.seq, "op": rec.op,
                "kind": "leaf" if rec.param or key.startswith("leaf#") else "op",
                "label": rec.label, "scope": scope, "key": key,
                "source": source_entry(src),
                "inputs": [], "outputs": [{"shape": shape, "dtype": rec.dtype}],
                "saved": [], "param": rec.param, "state": "done",
                "grad": None if gsum is None else {"in": [gsum], "out": []},
                "time_us": None, "record": stats})
        nodes.sort(key=lambda n: n["seq"])
        if nodes:
            nodes[-1]["kind"] = "output" if nodes[-1]["kind"] == "op" else nodes[-1]["kind"]
        ids = {n["key"]: n["id"] for n in nodes}
        edges = sorted(({"src": ids[c], "dst": ids[p], "slot": slot, "src_out": nr}
                        for c, p, slot, nr in r["edges"]),
                       key=lambda e: (int(e["dst"][1:]), e["slot"]))
        return {"schema": "dyntorch.graph", "version": 1,
                "graph_id": f"rec{id(self) % 100000}-s{step}", "rev": 0,
                "nodes": nodes, "edges": edges, "scopes": _scopes(nodes, types),
                "status": {"step": step, "total": len(nodes), "current": None, "done": True,
                           "text": f"training step {step}: {len(nodes)} nodes"
                                   + (f", loss {r['loss']:.4g}" if r["loss"] is not None
                                      else "")},
                "recorder": {"steps": self.steps, "step": step}}

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        """In a notebook: the recorder's view (a step slider over the kept steps), drawn by
        whatever registered itself in :mod:`dyntorch._display` (``dyntorch.viz``, loaded on
        first use); plain text before any step is kept or without the notebook extras."""
        if not self._records:
            return None
        return _display.mimebundle(self, include=include, exclude=exclude)

    def __len__(self) -> int:
        return len(self._records)

    def __repr__(self) -> str:
        s = self.steps
        span = f"steps {s[0]}..{s[-1]}" if s else "no steps yet"
        return f"<Recorder {len(s)} kept ({span}), keep={self.keep}, every={self.every}>"


class _Ratios:
    """Update-to-weight ratios of a list of parameters: :meth:`save` copies what
    :func:`_ratio_view` picks before ``optimizer.step()`` into buffers of the parameter's
    dtype that are reused every step, :meth:`ratios` compares after. The views are kept while
    the parameters keep their arrays. (One float64 buffer for all of them, reduced by
    segment, was slower: mixed-dtype subtraction and a float64 pass cost more than four
    same-dtype calls per parameter on bench_debug.py --recorder's MLP.)"""

    __slots__ = ("params", "datas", "views", "bufs", "flats")

    def __init__(self, params):
        self.params = params
        self.datas = [_arr(p) for p in params]
        self.views = [_ratio_view(d) for d in self.datas]
        self.bufs = [v.copy() for v in self.views]
        self.flats = [b.reshape(-1) for b in self.bufs]  # copies are contiguous: views

    def fits(self, params) -> bool:
        """True when ``params`` are the same parameters with the same arrays."""
        if len(params) != len(self.params):
            return False
        for p, q, d in zip(params, self.params, self.datas):
            if p is not q or p._data is not d:
                return False
        return True

    def save(self) -> None:
        for b, v in zip(self.bufs, self.views):
            if b.__class__ is np.ndarray:
                b[...] = v
            else:
                B.xp_of(b).copyto(b, v)

    def ratios(self) -> list:
        """``(weight norm, update ratio)`` per parameter since :meth:`save`."""
        out = []
        sqrt = math.sqrt
        for p, d, v, b, f in zip(self.params, self.datas, self.views, self.bufs, self.flats):
            d2 = p._data
            if d2 is not d:  # the step replaced the array
                v = _ratio_view(d2)
            den = sqrt(float(f.dot(f)))
            if b.__class__ is np.ndarray:
                np.subtract(v, b, out=b)  # b becomes the update
            else:
                B.xp_of(b).subtract(v, b, out=b)
            num = sqrt(float(f.dot(f)))
            out.append((den, num / den if den > 0 else math.inf))
        return out


def _ratio_view(w):
    """The entries of parameter array ``w`` that the update ratio compares before and after
    ``optimizer.step()``: all of them up to ``_RATIO_SAMPLE``; otherwise ``_RATIO_SAMPLE //
    _RATIO_RUN`` runs of ``_RATIO_RUN`` consecutive entries at even spacing (a view). Runs,
    not single strided entries: a strided pick reads every cache line of a big weight, which
    made the copy one of the recorder's largest costs (bench_debug.py --recorder, timed inside
    the hooks on a loaded machine: 0.21 ms a step with 16,384 strided entries, 0.09 ms with
    these runs)."""
    flat = w.reshape(-1)
    n = flat.size
    if n <= _RATIO_SAMPLE:
        return flat
    runs = _RATIO_SAMPLE // _RATIO_RUN
    gap = n // runs
    return flat[:runs * gap].reshape(runs, gap)[:, :_RATIO_RUN]


def _out_meta(node) -> tuple:
    """(shape, NumPy dtype) of output 0 of any graph node; ((), None) when it has none."""
    om = node.output_meta()
    return (om[0][0], om[0][1]) if om else ((), None)


def _retained(nodes: dict, pending: dict):
    """The op nodes of a finished backward and their records, held weakly, when its graph
    was kept (``retain_graph=True``: the first op node still holds what it saved); else
    None. Read by the next backward through the same graph. Nodes its forward recorded that
    this backward did not reach (a second loss's head) are kept too."""
    for node in nodes:
        if node.__class__ is OpNode:
            if node.freed:
                return None
            kept = {n: r for n, r in nodes.items() if n.__class__ is not AccumulateGrad}
            for n, r in pending.items():
                kept.setdefault(n, r)
            return weakref.WeakKeyDictionary(kept)
    return None


def _by_seq(rec) -> int:
    return rec.seq


def _scope_types(model) -> dict:
    return {name: type(m).__name__ for name, m in model.named_modules() if name}


def _scopes(nodes: list, types: dict) -> list:
    count: dict = {}
    for n in nodes:
        s = n["scope"]
        parts = s.split(".") if s else []
        for k in range(1, len(parts) + 1):
            name = ".".join(parts[:k])
            count[name] = count.get(name, 0) + 1
    return [{"name": name, "parent": name.rsplit(".", 1)[0] if "." in name else None,
             "type": types.get(name), "nodes": c, "repeat_of": None}
            for name, c in count.items()]
