"""How fast could any backward over dyntorch's own graph be? A probe for the chain's target.

``bench_core.py``'s 10-op chain is ~0.7x torch against a target of 0.6x. This probe times,
in the same interleaved rounds as torch and the real engine, the same forward (the door,
real ``OpNode``s) followed by a *stripped* backward over those nodes: a dict of pending
gradients, the ready heap, ``_dispatch.derive`` and an in-place add into ``.grad``. It
leaves out what the real engine must do and this probe need not on this one graph:
fitting gradients to their inputs (broadcasting, array class, dtype), deciding which
arrays may be added into in place, freeing saved values through ``_free``, hooks,
observers, capture, create_graph, retain_graph and the Step protocol. So its time is a
lower bound for any engine on this graph representation and this door.

Reference only: nothing in the library calls this. Run:
``.venv/bin/python benchmarks/probe_engine_floor.py [--runs 3]``.
"""
from __future__ import annotations

import heapq
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]  # this checkout's dyntorch, not an installed one
import dyntorch as dt  # noqa: E402
from dyntorch import _dispatch as D  # noqa: E402
from dyntorch.autograd.node import AccumulateGrad  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover
    sys.exit("benchmarks need torch==2.13.0 (pip install torch==2.13.0)")

from _harness import case, parse_args  # noqa: E402
from bench_core import chain_forward  # noqa: E402


def stripped_backward(loss) -> None:
    """The least an engine does on the chain's graph: see the module docstring."""
    derive = D.derive
    node = loss.grad_fn
    pending = {node: np.ones((), loss._data.dtype)}
    ready = [(-node.seq, node)]
    while ready:
        node = heapq.heappop(ready)[1]
        g = pending.pop(node)
        if node.__class__ is AccumulateGrad:
            node._var()._grad._data += g  # the chain's leaves already have a .grad
            continue
        outs = derive(node, g)
        node.inputs = node.arrays = None
        node.epoch = -1
        for e, r in zip(node.next, outs):
            if e is None or r is None:
                continue
            c = e[0]
            got = pending.get(c)
            if got is None:
                pending[c] = r
                heapq.heappush(ready, (-c.seq, c))
            else:
                pending[c] = got + r


def main() -> None:
    args = parse_args(doc=__doc__)
    x = np.random.default_rng(0).standard_normal((2, 4, 4)).astype(np.float32)
    a, b = dt.tensor(x[0], requires_grad=True), dt.tensor(x[1], requires_grad=True)
    ta, tb = torch.tensor(x[0], requires_grad=True), torch.tensor(x[1], requires_grad=True)
    chain_forward(a, b).backward()  # .grad exists from here on, as stripped_backward assumes
    ga = a.grad.numpy().copy()
    stripped_backward(chain_forward(a, b))
    assert np.allclose(a.grad.numpy(), 2 * ga, atol=1e-5), "the stripped backward is wrong"
    print(f"threads: torch {torch.get_num_threads()} (default settings)")
    case("10-op chain + sum + backward (4x4)", lambda: chain_forward(a, b).backward(),
         lambda: chain_forward(ta, tb).backward(), None, rounds=args.rounds, inner=300,
         runs=args.runs, target=0.6,
         extra={"stripped": lambda: stripped_backward(chain_forward(a, b))})


if __name__ == "__main__":
    main()
