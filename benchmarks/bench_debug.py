"""Cost of the graph-as-data features: source/scope capture in forward, and the step debugger.

1. Forward overhead of recording the user's source line (and the module scope) per op:
   the same chain of small ops, run inside an ``nn.Module`` (so ``scope`` is set), with
   ``dyntorch._dispatch.record_source`` on and off. The runs alternate and the median over
   rounds is kept for each (README.md, "Method"), so the two see the same machine load. Scope
   recording is one slot store per node that cannot be switched off; its cost is inside both
   figures.
2. BackwardStepper speed on a 12-layer transformer-shaped graph (several thousand nodes: per
   layer multi-head attention with per-head matmuls, softmax, layer norms from primitive ops,
   an MLP): nodes/s of ``stepper.step()`` with no breakpoint, of ``run()`` with a NaN
   breakpoint, and of plain ``backward()`` for reference.

3. Cost of ``dyntorch.debug.Recorder`` on the MLP training step of ``bench_train.py``
   (784-256-256-10, batch 128, SGD momentum): rounds of 12 steps alternate plain and
   recorded (with the optimizer watched for update ratios; a new recorder per round, so its
   first step, about 0.3 ms more than the others for keys, source lines and buffers, is in
   every round); the figure is the ratio of the median rounds (target <= 15%), with the
   quartiles of the per-round ratios, the ratio of the fastest rounds and the load average.
   ``--recorder`` runs only this, at every=1, every=4 and with exact statistics (sample=None).

   2026-12-06, shared 2-core box, load average 0.5-0.6, this tree and the one before the
   change (82d2783) run alternately with this file, three runs each (median-round ratios):

   ================  ==================  ==================
   case              before              after
   ================  ==================  ==================
   every=1           +25.8 +29.4 +29.1   +19.5 +22.2 +19.7
   every=4           +12.7 +12.4 +12.1   +8.7 +9.3 +10.3
   sample=None       +32.3 +33.9 +30.5   +27.3 +26.1 +25.9
   ================  ==================  ==================

   Steps alternated one by one with the recorder attached and detached (steady state, no
   first step): +17..+19% after, +24% before. Where the rest goes (timed inside the
   recorder's hooks, share of a plain step): gradient statistics ~7% (a BLAS dot over every
   gradient entry for exact norms, 393k entries a step, and a strided sample per big array),
   forward statistics ~3-4% (an exact NaN/Inf dot and a sample per big output, the batch's
   reductions), update ratios ~3%, keys/records/edges ~3%, the dispatch hook ~1%. What made
   the difference: the engine's light observers (raw arrays, no Step, no dependency count:
   the swift path stays), keys and records made in the forward from the last step's plan,
   no dispatch hook on steps that ``every`` skips, cheaper NumPy calls. A smaller ``sample``
   trades accuracy of the sampled statistics for time (sample=64: about 4 points less).
   Run from the repository root with ``PYTHONPATH=.`` so that this checkout is the one
   imported.

Run: ``.venv/bin/python benchmarks/bench_debug.py`` (``--quick`` for a smaller run). Times are
process CPU time (``--wall`` for wall-clock time); run with ``OMP_NUM_THREADS=1`` so that idle
BLAS threads do not add CPU time.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dyntorch as dt  # noqa: E402  (this checkout's, not an installed one)
from dyntorch import _dispatch as D  # noqa: E402
from dyntorch.debug import BackwardStepper, summary  # noqa: E402
from dyntorch.nn.module import Module  # noqa: E402
from dyntorch.nn.parameter import Parameter  # noqa: E402

QUICK = "--quick" in sys.argv
# CPU time of this process: the machine is shared, and wall time then measures the neighbours.
CLOCK = time.process_time if "--wall" not in sys.argv else time.perf_counter

# ----------------------------------------------------------------------------- matmul
if hasattr(dt, "matmul"):
    matmul = dt.matmul
else:  # the linalg family is not there yet: a local op through the same door
    @D.op(name="bench_matmul", backward_name="MmBackward0")
    def _mm(xp, a, b):
        return a @ b

    @_mm.def_derivative
    def _(ns, g, a, b):
        return g @ b.swapaxes(-1, -2), a.swapaxes(-1, -2) @ g

    matmul = _mm


# ----------------------------------------------------------------------------- 1. forward cost
class Chain(Module):
    def forward(self, a, b):
        y = a
        for _ in range(10):
            y = y * b + a
        return y


def forward_overhead(repeat: int = 7, number: int = 400) -> float:
    a = dt.randn(4, 4, requires_grad=True)
    b = dt.randn(4, 4, requires_grad=True)
    m = Chain()
    fn = lambda: m(a, b)
    fn()
    on, off = [], []
    for _ in range(repeat):
        for flag, acc in ((True, on), (False, off)):
            D.record_source = flag
            best = min(timeit.repeat(fn, number=number, repeat=3, timer=CLOCK))
            acc.append(best / number / 20 * 1e6)
    D.record_source = True
    t_on, t_off = statistics.median(on), statistics.median(off)
    pct = (t_on - t_off) / t_off * 100
    print(f"forward, 4x4 ops in a module: {t_off:6.2f} us/op without source capture, "
          f"{t_on:6.2f} us/op with it: overhead {pct:+.1f}% (target <= 10%)")
    # larger tensors: the fixed cost matters less
    a = dt.randn(64, 64, requires_grad=True)
    b = dt.randn(64, 64, requires_grad=True)
    fn = lambda: m(a, b)
    on, off = [], []
    for _ in range(repeat):
        for flag, acc in ((True, on), (False, off)):
            D.record_source = flag
            acc.append(min(timeit.repeat(fn, number=number // 4, repeat=3, timer=CLOCK)) /
                       (number // 4) / 20 * 1e6)
    D.record_source = True
    t_on2, t_off2 = statistics.median(on), statistics.median(off)
    print(f"forward, 64x64 ops in a module: {t_off2:6.2f} us/op without, {t_on2:6.2f} us/op "
          f"with: overhead {(t_on2 - t_off2) / t_off2 * 100:+.1f}%")
    return pct


# ----------------------------------------------------------------------------- 2. stepper speed
class Attention(Module):
    def __init__(self, d, heads, rng):
        super().__init__()
        self.h = heads
        self.dh = d // heads
        s = 1 / np.sqrt(d)
        for n in ("q", "k", "v", "o"):
            setattr(self, "w" + n, Parameter(dt.tensor(
                (rng.standard_normal((d, d)) * s).astype(np.float32))))

    def forward(self, x):
        q, k, v = matmul(x, self.wq), matmul(x, self.wk), matmul(x, self.wv)
        outs = []
        for i in range(self.h):
            sl = slice(i * self.dh, (i + 1) * self.dh)
            qi, ki, vi = q[:, sl], k[:, sl], v[:, sl]
            att = matmul(qi, ki.transpose(0, 1)) * float(1.0 / np.sqrt(self.dh))
            att = att.softmax(-1)
            outs.append(matmul(att, vi))
        return matmul(dt.cat(outs, -1), self.wo)


class Norm(Module):
    def __init__(self, d):
        super().__init__()
        self.g = Parameter(dt.ones(d))
        self.b = Parameter(dt.zeros(d))

    def forward(self, x):
        mu = x.mean(-1, keepdim=True)
        xc = x - mu
        var = (xc * xc).mean(-1, keepdim=True)
        return xc * (var + 1e-5).rsqrt() * self.g + self.b


class Mlp(Module):
    def __init__(self, d, rng):
        super().__init__()
        self.w1 = Parameter(dt.tensor((rng.standard_normal((d, 4 * d)) / np.sqrt(d))
                                      .astype(np.float32)))
        self.w2 = Parameter(dt.tensor((rng.standard_normal((4 * d, d)) / np.sqrt(4 * d))
                                      .astype(np.float32)))

    def forward(self, x):
        return matmul(matmul(x, self.w1).tanh(), self.w2)


class Layer(Module):
    def __init__(self, d, heads, rng):
        super().__init__()
        self.ln1, self.attn, self.ln2, self.mlp = Norm(d), Attention(d, heads, rng), Norm(d), \
            Mlp(d, rng)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Transformer(Module):
    def __init__(self, layers=12, d=64, heads=8, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.n = layers
        for i in range(layers):
            setattr(self, f"layer{i}", Layer(d, heads, rng))

    def forward(self, x):
        for i in range(self.n):
            x = getattr(self, f"layer{i}")(x)
        return (x * x).mean()


def stepper_speed(layers=12, d=64, heads=8, seq=32) -> float:
    model = Transformer(layers, d, heads)
    x = dt.tensor(np.random.default_rng(1).standard_normal((seq, d)).astype(np.float32))

    def timed_backward():
        loss = model(x)
        t0 = CLOCK()
        loss.backward()
        return CLOCK() - t0

    timed_backward()
    t_bw = statistics.median(timed_backward() for _ in range(3))

    def timed_steps():
        s = BackwardStepper(model(x))
        n = s.total
        t0 = CLOCK()
        while s.step() is not None:
            pass
        dt_ = CLOCK() - t0
        s.close()
        return n, dt_

    runs = sorted((timed_steps() for _ in range(3)), key=lambda r: r[1])
    n, t_st = runs[1]  # the median of three

    s = BackwardStepper(model(x))
    s.break_on(nan=True)
    t0 = CLOCK()
    assert s.run() is None
    t_bp = CLOCK() - t0
    s.reset()
    s.step(n // 2)
    t0 = CLOCK()
    s.back(1)
    t_back = CLOCK() - t0
    t0 = CLOCK()
    for st in s.history[:200]:
        _ = (st.summary_in, st.summary_out)
    t_sum = (CLOCK() - t0) / min(200, len(s.history))
    from dyntorch.viz import GraphTracker

    tr = GraphTracker(s, model=model)
    t0 = CLOCK()
    tr.document()
    t_doc = CLOCK() - t0
    t0 = CLOCK()
    for _ in range(20):
        s.step()
        tr.diff()
    t_diff = (CLOCK() - t0) / 20
    s.close()
    print(f"transformer graph: {layers} layers, d={d}, {heads} heads, seq={seq}: {n} nodes")
    print(f"  backward()                    {n / t_bw:10.0f} nodes/s  ({t_bw * 1e3:7.1f} ms)")
    print(f"  BackwardStepper.step() x{n:<5d}  {n / t_st:10.0f} nodes/s  ({t_st * 1e3:7.1f} ms,"
          f" {t_st / t_bw:.2f}x backward; target > 1000 nodes/s)")
    print(f"  run() with break_on(nan=True) {n / t_bp:10.0f} nodes/s  ({t_bp * 1e3:7.1f} ms)")
    print(f"  back(1) from the middle       {t_back * 1e3:10.1f} ms (replays {n // 2 - 1} nodes)")
    print(f"  lazy summaries of one step    {t_sum * 1e6:10.0f} us")
    print(f"  graph document (all {n} nodes, {n // 2} with grads) {t_doc * 1e3:.0f} ms; "
          f"step + diff {t_diff * 1e3:.1f} ms")
    return n / t_st


def summary_speed():
    a = dt.randn(512, 512)
    t = statistics.median(timeit.repeat(lambda: summary(a), number=20, repeat=3)) / 20
    print(f"summary() of a 512x512 float32 tensor: {t * 1e3:.2f} ms")


# ----------------------------------------------------------------------------- 3. recorder cost
def recorder_overhead(rounds: int = 15, number: int = 12, every: int = 1,
                      sample: int | None = 4096) -> float:
    import os
    import statistics

    from dyntorch.debug import Recorder

    rng = np.random.default_rng(0)
    x = dt.tensor(rng.standard_normal((128, 784)).astype(np.float32))
    y = dt.tensor(rng.integers(0, 10, 128))
    nn = dt.nn
    dt.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    opt = dt.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    def timed(n):
        t0 = CLOCK()
        for _ in range(n):
            step()
        return (CLOCK() - t0) / n

    timed(3)
    load0 = os.getloadavg()[0]
    plain, rec = [], []
    for _ in range(rounds):
        plain.append(timed(number))
        # a new recorder per round: its first step (keys, source lines, buffers) is paid in
        # every round; ``number`` is a multiple of 4 so that every=4 records 1 step in 4
        r = Recorder(model, keep=200, every=every, optimizer=opt, sample=sample)
        rec.append(timed(number))
        r.close()
    p, q = statistics.median(plain), statistics.median(rec)
    pct = (q - p) / p * 100
    # spread: the quartiles of the per-round overheads (each recorded round against the
    # plain round just before it); and the fastest rounds of each, which neighbours on the
    # shared box slow down least (their ratio moves less from run to run than the medians)
    per = sorted((b - a) / a * 100 for a, b in zip(plain, rec))
    lo, hi = per[len(per) // 4], per[(3 * len(per)) // 4]
    best = (min(rec) - min(plain)) / min(plain) * 100
    print(f"MLP training step: {p * 1e3:.2f} ms plain, {q * 1e3:.2f} ms with Recorder(every="
          f"{every}, sample={sample}) (median of {rounds} interleaved rounds of {number} "
          f"steps): overhead {pct:+.1f}% (rounds' quartiles {lo:+.1f}%..{hi:+.1f}%; fastest "
          f"rounds {best:+.1f}%; load average {load0:.1f} -> {os.getloadavg()[0]:.1f}; "
          f"target <= 15%)")
    return pct


def recorder_on_models(rounds: int = 7) -> None:
    """The same measure (rounds of plain and recorded steps alternated, a new recorder per
    round) on two bigger steps of ``bench_train.py``: the char transformer with AdamW (81
    graph nodes) and ResNet-18 with SGD (batch 16, 64x64, 131 nodes): the recorder costs
    about the same per node and per array everywhere, so what it adds to a step depends on how
    much compute the step does per node (little in the transformer, much in ResNet's convs)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _models import _char_gpt, _resnet18

    from dyntorch.debug import Recorder

    rng = np.random.default_rng(0)
    dt.manual_seed(0)
    gpt = _char_gpt(dt, 65, 32, 64, 4, 2)
    res = _resnet18(dt)
    cases = [("char transformer AdamW step", gpt, dt.optim.AdamW(gpt.parameters(), lr=3e-3),
              dt.tensor(rng.integers(0, 65, (32, 32))), dt.tensor(rng.integers(0, 65, 1024)), 6),
             ("ResNet-18 SGD step (16, 64x64)", res,
              dt.optim.SGD(res.parameters(), lr=0.01, momentum=0.9),
              dt.tensor(rng.standard_normal((16, 3, 64, 64)).astype(np.float32)),
              dt.tensor(rng.integers(0, 10, 16)), 2)]
    for name, model, opt, x, y, number in cases:
        def step(model=model, opt=opt, x=x, y=y):
            opt.zero_grad()
            dt.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()

        def timed(n, step=step):
            t0 = CLOCK()
            for _ in range(n):
                step()
            return (CLOCK() - t0) / n

        timed(2)
        plain, rec = [], []
        for _ in range(rounds):
            plain.append(timed(number))
            r = Recorder(model, optimizer=opt)
            rec.append(timed(number))
            r.close()
        p, q = statistics.median(plain), statistics.median(rec)
        print(f"{name}: {p * 1e3:.1f} ms plain, {q * 1e3:.1f} ms with Recorder() (median of "
              f"{rounds} interleaved rounds of {number} steps): overhead {(q - p) / p * 100:+.1f}%")


if __name__ == "__main__":
    if "--recorder" in sys.argv:
        recorder_overhead(rounds=7 if QUICK else 15)
        recorder_overhead(rounds=7 if QUICK else 15, every=4)
        recorder_overhead(rounds=7 if QUICK else 15, sample=None)
        recorder_on_models(rounds=3 if QUICK else 7)
        sys.exit(0)
    recorder_overhead(rounds=7 if QUICK else 15)
    pct = forward_overhead(repeat=3 if QUICK else 7)
    rate = stepper_speed(layers=4 if QUICK else 12)
    summary_speed()
    print(f"\nRESULT: source+scope capture overhead {pct:+.1f}% per op; "
          f"stepper {rate:.0f} nodes/s")
