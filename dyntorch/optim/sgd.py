"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""
from __future__ import annotations

import numpy as np

from .. import _backend as B
from .._tensor import _make
from .optimizer import Optimizer, bump


class SGD(Optimizer):
    """Stochastic gradient descent (see ``torch.optim.SGD``), torch's update rule exactly.

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate (default ``1e-3``).
    momentum, dampening, weight_decay : float
        Momentum factor, dampening of the momentum, L2 penalty.
    nesterov : bool
        Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
    maximize : bool
        Ascend the objective instead of descending it.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False,
                 foreach=None, differentiable: bool = False, fused=None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(
            lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
            nesterov=nesterov, maximize=maximize, foreach=foreach,
            differentiable=differentiable, fused=fused))

    def _update_group(self, group) -> None:
        lr = float(group["lr"])
        mom = group["momentum"]
        damp = group["dampening"]
        wd = group["weight_decay"]
        nest = group["nesterov"]
        maximize = group["maximize"]
        state = self.state
        for p in group["params"]:
            gt = p._grad
            if gt is None:
                continue
            w, g = p._data, gt._data
            st = state[p] if mom != 0 else None
            buf_t = st.get("momentum_buffer") if st is not None else None
            if w.__class__ is not np.ndarray:  # CuPy: one fused kernel
                from ._fused import sgd_cuda

                first = buf_t is None and st is not None
                if first:
                    buf_t = st["momentum_buffer"] = _make(B.xp_of(w).empty_like(w))
                sgd_cuda(w, g, None if buf_t is None else buf_t._data, lr=lr, momentum=mom,
                         dampening=damp, weight_decay=wd, nesterov=nest, maximize=maximize,
                         first=first)
                bump(p)
                continue
            xp = np
            # d: the effective gradient; `own` says it lives in a scratch array we may overwrite
            if wd != 0:
                d = xp.multiply(w, wd, out=xp.empty_like(w))
                (xp.subtract if maximize else xp.add)(d, g, out=d)
                own = True
            elif maximize:
                d, own = xp.negative(g, out=xp.empty_like(g)), True
            else:
                d, own = g, False
            if mom != 0:
                if buf_t is None:
                    buf = d if own else xp.array(d, copy=True)
                    st["momentum_buffer"] = _make(buf)
                    own = False  # the scratch became the buffer
                else:
                    buf = buf_t._data
                    buf *= mom
                    if damp == 0:
                        buf += d
                    elif own:  # d is not needed afterwards (nesterov forbids dampening)
                        d *= 1 - damp
                        buf += d
                    else:
                        buf += xp.multiply(d, 1 - damp)
                    bump(buf_t)
                if nest:
                    u = xp.multiply(buf, mom, out=xp.empty_like(buf))
                    u += d
                    d, own = u, True
                else:
                    d, own = buf, False
            if own:
                d *= lr
                w -= d
            else:
                _sub_scaled(w, d, lr)
            bump(p)


_CHUNK = 1 << 16  # elements: a 256 KB float32 temporary at most


def _sub_scaled(w, d, lr: float) -> None:
    """``w -= d * lr`` in slices, so the temporary ``d * lr`` never holds a whole weight
    (it was the peak of a training step's memory). Same arithmetic, element by element."""
    if w.size <= _CHUNK or not (w.flags.c_contiguous and d.flags.c_contiguous) or \
            w.shape != d.shape:
        w -= np.multiply(d, lr)
        return
    fw, fd = w.reshape(-1), d.reshape(-1)
    for s in range(0, fw.size, _CHUNK):
        fw[s:s + _CHUNK] -= fd[s:s + _CHUNK] * lr
