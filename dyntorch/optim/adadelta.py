"""Adadelta: step sizes from running averages of squared gradients and squared updates."""
from __future__ import annotations

from .. import _backend as B
from .optimizer import Optimizer, _advance, bump


class Adadelta(Optimizer):
    """Adadelta (``torch.optim.Adadelta``), torch's update rule.

    Parameters
    ----------
    lr : float
        Scale of the update (default ``1.0``).
    rho : float
        Decay of the running averages.
    eps : float
        Added inside the square roots.
    weight_decay : float
        L2 penalty.
    maximize : bool
        Ascend the objective instead of descending it.
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, foreach=None, *, capturable: bool = False,
                 maximize: bool = False, differentiable: bool = False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize, capturable=capturable, foreach=foreach,
                                      differentiable=differentiable))

    def _update_group(self, group) -> None:
        lr, rho, eps, wd = float(group["lr"]), group["rho"], group["eps"], group["weight_decay"]
        for p in group["params"]:
            if p._grad is None:
                continue
            st = self.state[p]
            _advance(st, p, "square_avg", "acc_delta")
            w, g = p._data, p._grad._data
            xp = B.xp_of(w)
            if group["maximize"]:
                g = xp.negative(g)
            if wd != 0:
                g = g + w * wd
            sq, acc = st["square_avg"]._data, st["acc_delta"]._data
            sq *= rho
            sq += (1 - rho) * g * g
            delta = xp.sqrt(acc + eps) / xp.sqrt(sq + eps) * g
            acc *= rho
            acc += (1 - rho) * delta * delta
            w -= lr * delta
            bump(p)
            bump(st["square_avg"])
            bump(st["acc_delta"])
