"""RMSprop, with momentum and the centered variant."""
from __future__ import annotations

from .. import _backend as B
from .optimizer import Optimizer, _advance, bump


class RMSprop(Optimizer):
    """RMSprop (see ``torch.optim.RMSprop``), torch's update rule exactly.

    Parameters
    ----------
    lr : float
        Learning rate (default ``1e-2``).
    alpha : float
        Smoothing constant of the squared-gradient average.
    eps : float
        Added to the denominator for stability.
    weight_decay, momentum : float
        L2 penalty; momentum factor.
    centered : bool
        Normalise by an estimate of the gradient's variance instead of its second moment.
    maximize : bool
        Ascend the objective instead of descending it.
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 capturable: bool = False, foreach=None, maximize: bool = False,
                 differentiable: bool = False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if alpha < 0.0:
            raise ValueError(f"Invalid alpha value: {alpha}")
        super().__init__(params, dict(
            lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
            weight_decay=weight_decay, capturable=capturable, foreach=foreach,
            maximize=maximize, differentiable=differentiable))

    def _update_group(self, group) -> None:
        lr = float(group["lr"])
        alpha, eps, wd = group["alpha"], group["eps"], group["weight_decay"]
        mom, centered, maximize = group["momentum"], group["centered"], group["maximize"]
        extra = ("momentum_buffer",) * (mom > 0) + ("grad_avg",) * bool(centered)
        for p in group["params"]:
            gt = p._grad
            if gt is None:
                continue
            st = self.state[p]
            _advance(st, p, "square_avg", *extra)
            w, g = p._data, gt._data
            xp = B.xp_of(w)
            if maximize:
                g = xp.negative(g)
            if wd != 0:
                g = g + w * wd
            sq = st["square_avg"]._data
            sq *= alpha
            tmp = xp.multiply(g, g, out=xp.empty_like(w))
            tmp *= 1 - alpha
            sq += tmp
            if centered:
                ga = st["grad_avg"]._data
                xp.subtract(g, ga, out=tmp)
                tmp *= 1 - alpha
                ga += tmp
                xp.multiply(ga, ga, out=tmp)
                xp.subtract(sq, tmp, out=tmp)
                xp.sqrt(tmp, out=tmp)
                bump(st["grad_avg"])
            else:
                xp.sqrt(sq, out=tmp)
            tmp += eps
            if mom > 0:
                buf = st["momentum_buffer"]._data
                buf *= mom
                xp.divide(g, tmp, out=tmp)
                buf += tmp
                xp.multiply(buf, lr, out=tmp)
                bump(st["momentum_buffer"])
            else:
                xp.divide(g, tmp, out=tmp)
                tmp *= lr
            w -= tmp
            bump(st["square_avg"])
            bump(p)
