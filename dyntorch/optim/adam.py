"""Adam and AdamW (decoupled weight decay), with AMSGrad and maximize."""
from __future__ import annotations

import math

import numpy as np

from .optimizer import Optimizer, _advance, _check_adam_args, bump


class Adam(Optimizer):
    """Adam (see ``torch.optim.Adam``), torch's update rule exactly.

    Parameters
    ----------
    params : iterable
        Parameters or parameter groups.
    lr : float
        Learning rate (default ``1e-3``).
    betas : tuple of float
        Decay rates of the first and second moment averages.
    eps : float
        Added to the denominator for stability.
    weight_decay : float
        L2 penalty added to the gradient (Adam) or decoupled decay of the weights (AdamW).
    amsgrad : bool
        Use the running maximum of the second moment (AMSGrad).
    maximize : bool
        Ascend the objective instead of descending it.
    decoupled_weight_decay : bool
        Decay the weights directly, as AdamW does.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, *,
                 foreach=None, maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False, fused=None, decoupled_weight_decay: bool = False):
        _check_adam_args(lr, eps, betas, weight_decay)
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            maximize=maximize, foreach=foreach, capturable=capturable,
            differentiable=differentiable, fused=fused,
            decoupled_weight_decay=decoupled_weight_decay))

    def _update_group(self, group) -> None:
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = group["eps"]
        wd = group["weight_decay"]
        amsgrad = group["amsgrad"]
        maximize = group["maximize"]
        decoupled = group["decoupled_weight_decay"]
        state = self.state
        buffers = ("exp_avg", "exp_avg_sq") + ("max_exp_avg_sq",) * bool(amsgrad)
        for p in group["params"]:
            gt = p._grad
            if gt is None:
                continue
            st = state[p]
            step = _advance(st, p, *buffers)
            bc1 = 1 - beta1 ** step
            bc2_sqrt = math.sqrt(1 - beta2 ** step)
            w, g = p._data, gt._data
            m, v = st["exp_avg"]._data, st["exp_avg_sq"]._data
            vmax = st["max_exp_avg_sq"]._data if amsgrad else None
            if w.__class__ is not np.ndarray:  # CuPy: one fused kernel per parameter
                from ._fused import adam_cuda

                adam_cuda(w, g, m, v, vmax, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
                          weight_decay=wd, decoupled=decoupled, maximize=maximize, bc1=bc1,
                          bc2_sqrt=bc2_sqrt)
            else:
                _adam_numpy(w, g, m, v, vmax, lr, beta1, beta2, eps, wd, decoupled, maximize,
                            bc1, bc2_sqrt)
            bump(p)
            bump(st["exp_avg"])
            bump(st["exp_avg_sq"])


def _adam_numpy(w, g, m, v, vmax, lr, beta1, beta2, eps, wd, decoupled, maximize, bc1,
                bc2_sqrt) -> None:
    xp = np
    if maximize:
        g = xp.negative(g, out=xp.empty_like(g))
    if wd != 0:
        if decoupled:
            w *= 1 - lr * wd
        else:
            g = g + w * wd if not maximize else xp.add(g, w * wd, out=g)
    # exp_avg.lerp_(g, 1 - beta1), in torch's form for weights below one half
    tmp = xp.subtract(g, m, out=xp.empty_like(m))
    tmp *= 1 - beta1
    m += tmp
    # exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g * g
    v *= beta2
    xp.multiply(g, g, out=tmp)
    tmp *= 1 - beta2
    v += tmp
    src = v
    if vmax is not None:
        xp.maximum(vmax, v, out=vmax)
        src = vmax
    # denom = sqrt(v) / sqrt(bc2) + eps ; w -= (lr / bc1) * m / denom
    xp.sqrt(src, out=tmp)
    tmp /= bc2_sqrt
    tmp += eps
    xp.divide(m, tmp, out=tmp)
    tmp *= lr / bc1
    w -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (see ``torch.optim.AdamW``); ``weight_decay=1e-2``."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False, foreach=None, capturable: bool = False,
                 differentiable: bool = False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
