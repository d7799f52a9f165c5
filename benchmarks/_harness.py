"""How every benchmark here measures (see README.md, "Method").

Both libraries (and the NumPy floor, where a case has one) run in this process, at default
thread settings, in rounds that alternate between them, so that load from other processes hits
every side alike. A round times ``inner`` calls of one side. A figure is the **median** over
rounds; the ratio printed is the ratio of the medians. The spread is the 25th-75th percentile
of the per-round ratios (dyntorch round i over torch round i). The best round alone is never
reported: a round that took 10x its median is the machine, not the library.

``--runs N`` repeats each case's measurement N times and prints the N ratios, so a reader sees
how far one run may stray from the next.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable


def parse_args(argv=None, doc: str | None = None, **defaults) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--runs", type=int, default=1,
                    help="repeat each case this many times and print every run's ratio")
    ap.add_argument("--rounds", type=int, default=defaults.get("rounds", 15),
                    help="interleaved rounds per run (the median is over these)")
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    ap.add_argument("--only", default=None, help="run only the cases whose name contains this")
    for name, (kind, default, hlp) in defaults.get("extra", {}).items():
        ap.add_argument(name, type=kind, default=default, help=hlp)
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds = max(3, args.rounds // 3)
    return args


def _round(fn: Callable, inner: int) -> float:
    t = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t) / inner


def interleaved(sides: dict, rounds: int, inner: int, warmup: int = 2) -> dict:
    """Per-call seconds of each side, one entry per round, the sides alternating."""
    for fn in sides.values():
        for _ in range(warmup):
            fn()
    out: dict = {k: [] for k in sides}
    order = list(sides)
    for r in range(rounds):
        # alternate who goes first, so neither side always follows the other's garbage
        for k in (order if r % 2 == 0 else order[::-1]):
            out[k].append(_round(sides[k], inner))
    return out


def _quartiles(xs: list) -> tuple:
    if len(xs) < 4:
        return min(xs), max(xs)
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def _unit(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:8.1f} us"
    return f"{seconds * 1e3:8.2f} ms"


def case(name: str, ours: Callable, ref: Callable, floor: Callable | None, *, rounds: int,
         inner: int, runs: int = 1, target: float | None = None,
         extra: dict[str, Callable] | None = None) -> list:
    """Measure one case ``runs`` times and print one line per run plus a summary.

    ``extra``: more references timed in the same interleaved rounds, each printed with its
    median and its ratio to torch. Returns the list of median ratios dyntorch / torch, one
    per run.
    """
    ratios = []
    for run in range(runs):
        sides = {"dyntorch": ours, "torch": ref}
        if floor is not None:
            sides["floor"] = floor
        sides.update(extra or {})
        t = interleaved(sides, rounds, inner)
        md, mt = statistics.median(t["dyntorch"]), statistics.median(t["torch"])
        ratio = md / mt
        ratios.append(ratio)
        lo, hi = _quartiles([a / b for a, b in zip(t["dyntorch"], t["torch"])])
        line = (f"{name:46s} dyntorch {_unit(md)}  torch {_unit(mt)}  "
                f"dyntorch/torch {ratio:5.2f}x [{lo:.2f}-{hi:.2f}]")
        if floor is not None:
            mf = statistics.median(t["floor"])
            line += (f"  floor {_unit(mf)}  dyntorch/floor {md / mf:5.2f}x  "
                     f"floor/torch {mf / mt:5.2f}x")
        for k in extra or {}:
            mk = statistics.median(t[k])
            line += f"  {k} {_unit(mk)}  {k}/torch {mk / mt:5.2f}x"
        if runs > 1:
            line = f"  run {run + 1}: " + line
        print(line, flush=True)
    verdict = ""
    if target is not None:
        verdict = f"  target <= {target:.2f}x: {'met' if max(ratios) <= target else 'MISSED'}"
    if runs > 1 or target is not None:
        print(f"{'':46s} ratio over {runs} run(s): " + ", ".join(f"{r:.2f}x" for r in ratios)
              + verdict, flush=True)
    return ratios
