"""What ``configure_optimizers()`` may return, read into optimizers and scheduler configs
(Lightning's forms: an optimizer, a list, ``(optimizers, schedulers)``, a dict or dicts)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..optim.optimizer import Optimizer
from .module import TrainModule

__all__ = ["LRSchedulerConfig", "configure_optimizers"]


@dataclass
class LRSchedulerConfig:
    """A scheduler and when to step it (Lightning's scheduler dict)."""

    scheduler: Any
    interval: str = "epoch"
    frequency: int = 1
    monitor: str | None = None
    strict: bool = True
    name: str | None = None


def configure_optimizers(model: TrainModule) -> tuple[list[Optimizer], list[LRSchedulerConfig]]:
    """The optimizers and scheduler configs of ``model.configure_optimizers()``."""
    conf = model.configure_optimizers()
    opts, scheds = [], []
    def sched_cfg(s, default_monitor=None):
        if isinstance(s, dict):
            if "scheduler" not in s:
                raise ValueError("an lr_scheduler dict needs a 'scheduler' key")
            known = {k: s[k] for k in ("interval", "frequency", "monitor", "strict", "name")
                     if k in s}
            known.setdefault("monitor", default_monitor)
            cfg = LRSchedulerConfig(s["scheduler"], **known)
        else:
            cfg = LRSchedulerConfig(s, monitor=default_monitor)
        if cfg.interval not in ("epoch", "step"):
            raise ValueError(f"lr_scheduler interval must be 'epoch' or 'step', got "
                             f"{cfg.interval!r}")
        return cfg

    def take_dict(d):
        if "optimizer" not in d:
            raise ValueError("configure_optimizers() returned a dict without 'optimizer'")
        opts.append(d["optimizer"])
        if d.get("lr_scheduler") is not None:
            scheds.append(sched_cfg(d["lr_scheduler"], d.get("monitor")))

    if conf is None:
        raise ValueError("configure_optimizers() returned None; return an optimizer")
    if isinstance(conf, Optimizer):
        opts = [conf]
    elif isinstance(conf, dict):
        take_dict(conf)
    elif isinstance(conf, (list, tuple)):
        if len(conf) == 2 and isinstance(conf[0], (list, tuple)):
            opts = list(conf[0])
            scheds = [sched_cfg(s) for s in (conf[1] if isinstance(conf[1], (list, tuple))
                                             else [conf[1]])]
        elif conf and all(isinstance(c, dict) for c in conf):
            for d in conf:
                take_dict(d)
        else:
            opts = list(conf)
    else:
        raise ValueError(f"configure_optimizers() returned {type(conf).__name__}; return an "
                         "optimizer, (optimizers, schedulers) or a dict")
    for o in opts:
        if not isinstance(o, Optimizer):
            raise ValueError(f"configure_optimizers() gave {type(o).__name__}, not a "
                             "dyntorch.optim.Optimizer")
    if len(opts) > 1 and model.automatic_optimization:
        raise RuntimeError(
            "Training with multiple optimizers needs manual optimization: set "
            "`self.automatic_optimization = False` in your module's __init__ and call "
            "opt.step() yourself in training_step (see self.optimizers()).")
    return opts, scheds
