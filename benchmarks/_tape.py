"""The least Python a reverse-mode autograd can spend on ``bench_core.py``'s 10-op chain.

A reference, not a library: each op appends its output to a tape with a closure that adds
the op's gradient into its inputs, and ``backward()`` calls the closures in reverse. No graph
a reader can walk, no op table, no dtype or broadcast fitting, no version checks, no source
lines, no hooks: what dyntorch's door and engine do on top of this is the price of the graph
as data. Timed beside the chain (``bench_core.py``, "tape" column) it shows how much of
dyntorch's time is that price and how much is NumPy. Only the ops the chain uses, float32.
"""
from __future__ import annotations

import numpy as np

_F32 = np.float32
_TAPE: list = []


def _acc(t, g) -> None:
    t.g = g if t.g is None else t.g + g


class Var:
    """A float32 array with a gradient slot, recorded on the tape by every op."""

    __slots__ = ("d", "g", "bw")

    def __init__(self, d, bw=None):
        self.d, self.g, self.bw = d, None, bw

    def _out(self, d, bw):
        out = Var(d, bw)
        _TAPE.append(out)
        return out

    def __mul__(self, o):
        a = self.d
        if o.__class__ is Var:
            b = o.d

            def bw(g):
                _acc(self, g * b)
                _acc(o, g * a)
        else:
            b = _F32(o)

            def bw(g):
                _acc(self, g * b)
        return self._out(a * b, bw)

    def __add__(self, o):
        if o.__class__ is Var:
            def bw(g):
                _acc(self, g)
                _acc(o, g)
            return self._out(self.d + o.d, bw)
        return self._out(self.d + _F32(o), lambda g: _acc(self, g))

    def __sub__(self, o):
        def bw(g):
            _acc(self, g)
            _acc(o, -g)
        return self._out(self.d - o.d, bw)

    def relu(self):
        r = np.maximum(self.d, _F32(0))
        return self._out(r, lambda g: _acc(self, g * (r > 0)))

    def tanh(self):
        r = np.tanh(self.d)
        return self._out(r, lambda g: _acc(self, g - g * r * r))

    def exp(self):
        r = np.exp(self.d)
        return self._out(r, lambda g: _acc(self, g * r))

    def sum(self):
        shape = self.d.shape
        return self._out(self.d.sum(), lambda g: _acc(self, np.broadcast_to(g, shape)))

    def backward(self) -> None:
        self.g = _F32(1)
        for v in reversed(_TAPE):
            if v.g is not None and v.bw is not None:
                v.bw(v.g)
                v.g = None  # intermediate gradients go as they are used, as in a real engine
        _TAPE.clear()
