"""Gradient plots (matplotlib) and a recorder of per-module gradient norms over training steps.

Norms and histograms are computed on the parameters' device; one small array per call travels
to the host. matplotlib is imported only when something is drawn.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .. import _backend as B
from ..debug.summary import summary

__all__ = ["plot_grad_flow", "plot_grad_hist", "GradNormRecorder", "grad_norms"]


def _named(model_or_params) -> list:
    """``[(name, tensor)]`` from a module, a dict, or an iterable of (name, tensor) pairs."""
    if hasattr(model_or_params, "named_parameters"):
        return list(model_or_params.named_parameters())
    if isinstance(model_or_params, dict):
        return list(model_or_params.items())
    items = list(model_or_params)
    if items and not isinstance(items[0], tuple):
        return [(f"param{i}", t) for i, t in enumerate(items)]
    return items


def _with_grads(named) -> list:
    return [(n, p) for n, p in named if getattr(p, "grad", None) is not None]


def _host_stats(arrays: list, fns) -> np.ndarray:
    """Per array, each reduction in ``fns``; stacked per device, one transfer per device."""
    out = np.zeros((len(arrays), len(fns)))
    by_dev: dict = {}
    for i, a in enumerate(arrays):
        by_dev.setdefault(str(B.device_of(a)), []).append(i)
    for idx in by_dev.values():
        xp = B.xp_of(arrays[idx[0]])
        vals = []
        for i in idx:
            a = arrays[i].astype(xp.float64, copy=False)
            vals.extend(f(xp, a) for f in fns)
        host = B.to_numpy(xp.stack([xp.asarray(v, dtype=xp.float64) for v in vals]))
        out[idx] = host.reshape(len(idx), len(fns))
    return out


_L2 = lambda xp, a: xp.sqrt((a * a).sum())
_MEAN_ABS = lambda xp, a: xp.abs(a).mean() if a.size else xp.asarray(0.0)
_MAX_ABS = lambda xp, a: xp.abs(a).max() if a.size else xp.asarray(0.0)


def _module_of(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def grad_norms(model_or_params, by: str = "module") -> dict:
    """L2 norms of the gradients, per module (``by="module"``) or per parameter.

    A module's norm is the L2 norm of all its own parameters' gradients together. Parameters
    without a gradient are skipped. One transfer per device.
    """
    named = _with_grads(_named(model_or_params))
    if not named:
        return {}
    sq = _host_stats([p.grad._data for _, p in named], [_L2])[:, 0] ** 2
    if by == "parameter":
        return {n: float(np.sqrt(v)) for (n, _), v in zip(named, sq)}
    if by != "module":
        raise ValueError(f"grad_norms: by must be 'module' or 'parameter', got {by!r}")
    acc: dict = {}
    for (n, _), v in zip(named, sq):
        m = _module_of(n) or "(root)"
        acc[m] = acc.get(m, 0.0) + v
    return {m: float(np.sqrt(v)) for m, v in acc.items()}


def _axes(ax, figsize):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    return fig, ax


def plot_grad_flow(model, ax=None, *, log: bool = True, skip_bias: bool = False,
                   figsize=(10, 4)):
    """Bar chart of the mean and max absolute gradient of every parameter, in model order.

    Vanishing gradients show as bars that shrink toward the input layers; exploding ones as
    bars that grow. Returns the matplotlib Figure.
    """
    named = _with_grads(_named(model))
    if skip_bias:
        named = [(n, p) for n, p in named if not n.endswith("bias")]
    if not named:
        raise RuntimeError("plot_grad_flow: no parameter has a gradient; call backward() first")
    st = _host_stats([p.grad._data for _, p in named], [_MEAN_ABS, _MAX_ABS])
    fig, ax = _axes(ax, figsize)
    x = np.arange(len(named))
    ax.bar(x, st[:, 1], alpha=0.35, lw=1, color="tab:cyan", label="max |grad|")
    ax.bar(x, st[:, 0], alpha=0.9, lw=1, color="tab:blue", label="mean |grad|")
    ax.set_xticks(x)
    ax.set_xticklabels([n for n, _ in named], rotation=90, fontsize=7)
    if log and (st > 0).any():
        ax.set_yscale("log")
    ax.set_ylabel("gradient magnitude")
    ax.set_title("Gradient flow")
    ax.legend(loc="upper right")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_grad_hist(model_or_tensors, *, bins: int = 40, max_layers: int = 12, ax=None,
                   figsize=(8, 4)):
    """Histograms of gradient values per layer (one line each, fixed bins per layer).

    ``model_or_tensors``: an ``nn.Module`` (its parameters' ``.grad``), a dict or iterable of
    ``(name, tensor)`` pairs (the tensors themselves, e.g. gradients), or a list of tensors.
    Returns the matplotlib Figure.
    """
    named = _named(model_or_tensors)
    if hasattr(model_or_tensors, "named_parameters"):
        named = [(n, p.grad) for n, p in _with_grads(named)]
    named = [(n, t) for n, t in named if t is not None][:max_layers]
    if not named:
        raise RuntimeError("plot_grad_hist: nothing to plot (no gradients yet?)")
    fig, ax = _axes(ax, figsize)
    for name, t in named:
        s = summary(t, bins=bins, preview=0, heat=0)
        if not s["hist"]["counts"]:
            continue
        e = np.array(s["hist"]["edges"])
        c = np.array(s["hist"]["counts"], dtype=float)
        ax.step((e[:-1] + e[1:]) / 2, c / max(c.sum(), 1), where="mid", label=name)
    ax.set_xlabel("gradient value")
    ax.set_ylabel("fraction")
    ax.set_title("Gradient distributions")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


class GradNormRecorder:
    """Record per-module (or per-parameter) gradient norms over training steps.

    Call :meth:`record` after ``backward()`` (the Trainer's gradient monitor does it every
    ``every`` steps). Each record costs one small transfer per device.

    Attributes
    ----------
    steps : list of int
        The training steps recorded.
    norms : dict
        name -> list of norms aligned with ``steps`` (None where that name had no gradient).
    """

    def __init__(self, model, *, by: str = "module", every: int = 1):
        self.model = model
        self.by = by
        self.every = max(1, int(every))
        self.steps: list = []
        self.norms: dict = {}
        self._count = 0

    def record(self, step: int | None = None) -> dict | None:
        """Record the current gradient norms (returns them; None when skipped by ``every``)."""
        step = self._count if step is None else int(step)
        self._count += 1
        if (self._count - 1) % self.every:
            return None
        cur = grad_norms(self.model, by=self.by)
        n = len(self.steps)
        self.steps.append(step)
        for name, v in cur.items():
            hist = self.norms.get(name)
            if hist is None:
                hist = self.norms[name] = [None] * n
            hist.append(v)
        for hist in self.norms.values():
            if len(hist) < n + 1:
                hist.append(None)
        return cur

    @property
    def latest(self) -> dict:
        return {k: v[-1] for k, v in self.norms.items() if v and v[-1] is not None}

    def total(self) -> list:
        """Global gradient norm per recorded step."""
        out = []
        for i in range(len(self.steps)):
            vals = [v[i] for v in self.norms.values() if v[i] is not None]
            out.append(float(np.sqrt(sum(x * x for x in vals))) if vals else None)
        return out

    def to_dict(self) -> dict:
        return {"by": self.by, "steps": list(self.steps),
                "norms": {k: list(v) for k, v in self.norms.items()}}

    def plot(self, ax=None, *, names: Iterable[str] | None = None, log: bool = True,
             figsize=(8, 4)):
        """Line per module of its gradient norm over steps. Returns the Figure."""
        fig, ax = _axes(ax, figsize)
        for name in names if names is not None else self.norms:
            ys = [np.nan if v is None else v for v in self.norms[name]]
            ax.plot(self.steps, ys, label=name, lw=1)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("gradient L2 norm")
        ax.set_title("Gradient norms per " + self.by)
        if len(self.norms) <= 20:
            ax.legend(fontsize=7)
        fig.tight_layout()
        return fig

    def reset(self) -> None:
        self.steps.clear()
        self.norms.clear()
        self._count = 0
