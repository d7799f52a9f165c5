"""Adagrad, with learning-rate decay and an initial accumulator value."""
from __future__ import annotations

from .. import _backend as B
from .._tensor import _make
from .optimizer import Optimizer, _step_tensor, bump


class Adagrad(Optimizer):
    """Adagrad (see ``torch.optim.Adagrad``), torch's update rule exactly.

    Parameters
    ----------
    lr : float
        Learning rate (default ``1e-2``).
    lr_decay : float
        The step size is ``lr / (1 + (step - 1) * lr_decay)``.
    weight_decay : float
        L2 penalty.
    initial_accumulator_value : float
        Starting value of the sum of squared gradients.
    eps : float
        Added to the denominator for stability (default ``1e-10``).
    maximize : bool
        Ascend the objective instead of descending it.
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, foreach=None, *, maximize: bool = False,
                 differentiable: bool = False, fused=None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if lr_decay < 0.0:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if initial_accumulator_value < 0.0:
            raise ValueError(f"Invalid initial_accumulator_value value: "
                             f"{initial_accumulator_value}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        super().__init__(params, dict(
            lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value, foreach=foreach,
            maximize=maximize, differentiable=differentiable, fused=fused))

    def _init_group_state(self, group) -> None:
        # torch creates Adagrad's state eagerly, when the group is added
        for p in group["params"]:
            st = self.state[p]
            if not st:
                st["step"] = _step_tensor()
                xp = B.xp_of(p._data)
                st["sum"] = _make(xp.full_like(p._data, group["initial_accumulator_value"]))

    def _update_group(self, group) -> None:
        lr, lr_decay = float(group["lr"]), group["lr_decay"]
        wd, eps, maximize = group["weight_decay"], group["eps"], group["maximize"]
        for p in group["params"]:
            gt = p._grad
            if gt is None:
                continue
            st = self.state[p]
            st["step"]._data += 1
            step = float(st["step"]._data)
            w, g = p._data, gt._data
            xp = B.xp_of(w)
            if maximize:
                g = xp.negative(g)
            if wd != 0:
                g = g + w * wd
            clr = lr / (1 + (step - 1) * lr_decay)
            s = st["sum"]._data
            tmp = xp.multiply(g, g, out=xp.empty_like(w))
            s += tmp
            xp.sqrt(s, out=tmp)
            tmp += eps
            xp.divide(g, tmp, out=tmp)
            tmp *= clr
            w -= tmp
            bump(st["sum"])
            bump(p)
