"""Adamax, NAdam and RAdam: Adam's moments with other step rules (torch's formulas)."""
from __future__ import annotations

import math

from .. import _backend as B
from .._tensor import _make
from .optimizer import Optimizer, _advance, _check_adam_args, _step_tensor, _zeros_like, bump


def _grad(w, g, group, xp, decoupled: bool = False):
    """The gradient after maximize and (L2 or decoupled) weight decay."""
    if group.get("maximize"):
        g = xp.negative(g)
    wd = group["weight_decay"]
    if wd != 0:
        if decoupled:
            w *= 1 - float(group["lr"]) * wd
        else:
            g = g + w * wd
    return g


def _moments(st, g, beta1: float, beta2: float, xp) -> None:
    m, v = st["exp_avg"]._data, st["exp_avg_sq"]._data
    m += (g - m) * (1 - beta1)  # exp_avg.lerp_(g, 1 - beta1)
    v *= beta2
    v += (1 - beta2) * g * g
    bump(st["exp_avg"])
    bump(st["exp_avg_sq"])


class Adamax(Optimizer):
    """Adamax (``torch.optim.Adamax``): Adam with an infinity-norm second moment.

    Parameters
    ----------
    lr : float
        Learning rate (default ``2e-3``).
    betas, eps, weight_decay, maximize
        As in :class:`~dyntorch.optim.Adam`.
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, foreach=None, *,
                 maximize: bool = False, differentiable: bool = False, capturable: bool = False):
        _check_adam_args(lr, eps, betas, weight_decay)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable,
                                      capturable=capturable))

    def _update_group(self, group) -> None:
        lr, eps = float(group["lr"]), group["eps"]
        beta1, beta2 = (float(b) for b in group["betas"])
        for p in group["params"]:
            if p._grad is None:
                continue
            st = self.state[p]
            step = _advance(st, p, "exp_avg", "exp_inf")
            w = p._data
            xp = B.xp_of(w)
            g = _grad(w, p._grad._data, group, xp)
            m, u = st["exp_avg"]._data, st["exp_inf"]._data
            m += (g - m) * (1 - beta1)
            xp.maximum(u * beta2, xp.abs(g) + eps, out=u)
            w -= (lr / (1 - beta1 ** step)) * (m / u)
            bump(p)
            bump(st["exp_avg"])
            bump(st["exp_inf"])


class NAdam(Optimizer):
    """NAdam (``torch.optim.NAdam``): Adam with Nesterov momentum and momentum decay.

    Parameters
    ----------
    lr : float
        Learning rate (default ``2e-3``).
    momentum_decay : float
        ``psi`` of the momentum schedule ``mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * psi))``.
    decoupled_weight_decay : bool
        Decay the weights directly (NAdamW).
    betas, eps, weight_decay, maximize
        As in :class:`~dyntorch.optim.Adam`.
    """

    def __init__(self, params, lr: float = 2e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach=None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False):
        _check_adam_args(lr, eps, betas, weight_decay)
        if momentum_decay < 0.0:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
            momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize, foreach=foreach, capturable=capturable,
            differentiable=differentiable))

    def _update_group(self, group) -> None:
        import numpy as np

        lr, eps, psi = float(group["lr"]), group["eps"], group["momentum_decay"]
        beta1, beta2 = (float(b) for b in group["betas"])
        for p in group["params"]:
            if p._grad is None:
                continue
            st = self.state[p]
            if not st:
                st["step"] = _step_tensor()
                st["mu_product"] = _make(np.array(1.0, dtype=np.float32))
                st["exp_avg"] = _zeros_like(p)
                st["exp_avg_sq"] = _zeros_like(p)
            st["step"]._data += 1
            step = float(st["step"]._data)
            w = p._data
            xp = B.xp_of(w)
            g = _grad(w, p._grad._data, group, xp, group["decoupled_weight_decay"])
            bc2 = 1 - beta2 ** step
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
            st["mu_product"]._data *= np.float32(mu)
            mu_product = float(st["mu_product"]._data)
            _moments(st, g, beta1, beta2, xp)
            denom = xp.sqrt(st["exp_avg_sq"]._data / bc2) + eps
            w -= (lr * (1.0 - mu) / (1.0 - mu_product)) * (g / denom)
            w -= (lr * mu_next / (1.0 - mu_product * mu_next)) * (st["exp_avg"]._data / denom)
            bump(p)


class RAdam(Optimizer):
    """RAdam (``torch.optim.RAdam``): Adam with the variance of the adaptive step rectified;
    plain momentum SGD steps while the variance estimate is unreliable.

    Parameters
    ----------
    lr : float
        Learning rate (default ``1e-3``).
    decoupled_weight_decay : bool
        Decay the weights directly (RAdamW).
    betas, eps, weight_decay, maximize
        As in :class:`~dyntorch.optim.Adam`.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False, *, foreach=None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False):
        _check_adam_args(lr, eps, betas, weight_decay)
        super().__init__(params, dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
            capturable=capturable, differentiable=differentiable))

    def _update_group(self, group) -> None:
        lr, eps = float(group["lr"]), group["eps"]
        beta1, beta2 = (float(b) for b in group["betas"])
        rho_inf = 2 / (1 - beta2) - 1
        for p in group["params"]:
            if p._grad is None:
                continue
            st = self.state[p]
            step = _advance(st, p, "exp_avg", "exp_avg_sq")
            w = p._data
            xp = B.xp_of(w)
            g = _grad(w, p._grad._data, group, xp, group["decoupled_weight_decay"])
            _moments(st, g, beta1, beta2, xp)
            bc1, bc2 = 1 - beta1 ** step, 1 - beta2 ** step
            m_hat = st["exp_avg"]._data / bc1
            rho_t = rho_inf - 2 * step * (beta2 ** step) / bc2
            if rho_t > 5.0:
                rect = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                                 / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                adaptive = math.sqrt(bc2) / (xp.sqrt(st["exp_avg_sq"]._data) + eps)
                w -= m_hat * adaptive * (lr * rect)
            else:
                w -= m_hat * lr
            bump(p)
