"""The Trainer: Lightning's fit / validate / test / predict loop for a :class:`TrainModule`.

One epoch of ``fit``: for each batch ``training_step`` -> backward (loss divided by
``accumulate_grad_batches``) -> at accumulation boundaries ``on_before_optimizer_step``,
gradient clipping, ``optimizer.step()``, ``zero_grad``, step-interval schedulers; optional
mid-epoch validation. At the end of the epoch: validation, epoch-interval schedulers, then
``on_train_epoch_end`` (where :class:`ModelCheckpoint` saves, so a checkpoint holds the
complete end-of-epoch state).

Checkpoints hold the model, optimizers, schedulers, callback states, counters, the logged
epoch accumulators and the random states (dyntorch's default generator, Python's ``random``,
NumPy's global generator and the DataLoader's generators), plus the random state at the start
of the epoch: resuming in the middle of an epoch replays the epoch's shuffle, skips the batches
already done and continues exactly as the uninterrupted run would.
"""
from __future__ import annotations

import copy
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _backend as B
from .._tensor import Tensor
from ..autograd.grad_mode import no_grad
from ..optim.lr_scheduler import ReduceLROnPlateau
from ..optim.optimizer import Optimizer
from .callbacks import Callback, EarlyStopping, ModelCheckpoint
from .loggers import CSVLogger, LivePlot, in_notebook
from .module import TrainModule

__all__ = ["Trainer", "seed_everything"]


def seed_everything(seed: int) -> int:
    """Seed Python's ``random``, NumPy's global generator and dyntorch's default generator."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    B.default_generator.manual_seed(seed)
    return seed


@dataclass
class LRSchedulerConfig:
    """A scheduler and when to step it (Lightning's scheduler dict)."""

    scheduler: Any
    interval: str = "epoch"
    frequency: int = 1
    monitor: str | None = None
    strict: bool = True
    name: str | None = None


@dataclass
class _Resume:
    batches_done: int
    epoch_start_rng: dict
    rng: dict
    acc: dict


def _batch_size(batch) -> int:
    if isinstance(batch, Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, np.ndarray):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, dict):
        for v in batch.values():
            n = _batch_size(v)
            if n:
                return n
        return 1
    if isinstance(batch, (list, tuple)):
        for v in batch:
            n = _batch_size(v)
            if n:
                return n
        return 1
    return 1


def _to_float(name: str, value) -> float:
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError(f"self.log('{name}', ...) needs a scalar, got a tensor of shape "
                             f"{list(value.shape)}; reduce it first (e.g. .mean())")
        return float(value.item())
    if isinstance(value, (int, float, np.number, bool)):
        return float(value)
    raise ValueError(f"self.log('{name}', ...) needs a number or a scalar tensor, got "
                     f"{type(value).__name__}")


class Trainer:
    """Fit, validate, test and predict with a :class:`TrainModule` (Lightning's ``Trainer``).

    Parameters
    ----------
    max_epochs : int, optional
        Stop after this many epochs (default 1000 when ``max_steps`` is not set either).
    max_steps : int
        Stop after this many optimizer steps (``-1``: no limit).
    callbacks : list of Callback
        Extra callbacks; a :class:`ModelCheckpoint` is added when ``enable_checkpointing`` and
        none is given.
    gradient_clip_val : float, optional
        Clip gradients before each optimizer step (total norm, or each value with
        ``gradient_clip_algorithm="value"``).
    accumulate_grad_batches : int
        Sum the gradients of this many batches per optimizer step (each loss is divided by it).
    val_check_interval : int or float
        Validate every ``n`` training batches (int) or at this fraction of the epoch (float).
    check_val_every_n_epoch : int
        Validate at the end of every ``n``-th epoch.
    limit_train_batches, limit_val_batches, limit_test_batches, limit_predict_batches : int or
        float, optional
        Use only this many batches (int) or this fraction of them (float).
    enable_progress_bar : bool
        A tqdm bar (a notebook widget in Jupyter).
    enable_checkpointing : bool
        Add a default :class:`ModelCheckpoint` (last epoch, in
        ``<default_root_dir>/checkpoints``) when none is given.
    default_root_dir : str, optional
        Where logs and checkpoints go (default ``./dyntorch_logs``).
    seed : int, optional
        Seed everything at the start of ``fit``.
    logger : bool
        Write logged metrics to ``<default_root_dir>/metrics.csv``.
    log_every_n_steps : int
        Write step metrics every ``n`` optimizer steps.
    live_plot : bool, optional
        Plot the metrics live in the notebook (``None``: when running in a Jupyter kernel).
    """

    def __init__(self, max_epochs: int | None = None, max_steps: int = -1,
                 callbacks: list[Callback] | Callback | None = None,
                 gradient_clip_val: float | None = None,
                 gradient_clip_algorithm: str = "norm", accumulate_grad_batches: int = 1,
                 val_check_interval: int | float = 1.0, check_val_every_n_epoch: int = 1,
                 limit_train_batches: int | float | None = None,
                 limit_val_batches: int | float | None = None,
                 limit_test_batches: int | float | None = None,
                 limit_predict_batches: int | float | None = None,
                 enable_progress_bar: bool = True, enable_checkpointing: bool = True,
                 default_root_dir: str | os.PathLike | None = None, seed: int | None = None,
                 logger: bool = True, log_every_n_steps: int = 50,
                 live_plot: bool | None = None, min_epochs: int | None = None,
                 num_sanity_val_steps: int = 0, accelerator: str = "auto", devices="auto",
                 deterministic: bool | None = None, enable_model_summary: bool = False,
                 **unused):
        if accumulate_grad_batches < 1:
            raise ValueError(f"accumulate_grad_batches must be >= 1, got "
                             f"{accumulate_grad_batches}")
        if gradient_clip_algorithm not in ("norm", "value"):
            raise ValueError(f"gradient_clip_algorithm must be 'norm' or 'value', got "
                             f"{gradient_clip_algorithm!r}")
        if max_epochs is None and (max_steps is None or max_steps < 0):
            max_epochs = 1000
        self.max_epochs = max_epochs
        self.min_epochs = min_epochs or 0
        self.max_steps = -1 if max_steps is None else max_steps
        cbs = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
        if enable_checkpointing and not any(isinstance(c, ModelCheckpoint) for c in cbs):
            cbs.append(ModelCheckpoint())
        # monitoring callbacks last, as in Lightning (they see what the others logged)
        self.callbacks = [c for c in cbs if not c._monitoring] + [c for c in cbs if c._monitoring]
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm
        self.accumulate_grad_batches = accumulate_grad_batches
        self.val_check_interval = val_check_interval
        self.check_val_every_n_epoch = check_val_every_n_epoch
        self.limit_train_batches = limit_train_batches
        self.limit_val_batches = limit_val_batches
        self.limit_test_batches = limit_test_batches
        self.limit_predict_batches = limit_predict_batches
        self.enable_progress_bar = enable_progress_bar
        self.default_root_dir = os.fspath(default_root_dir) if default_root_dir is not None \
            else os.path.join(os.getcwd(), "dyntorch_logs")
        self.seed = seed
        if accelerator not in ("auto", "cpu", "gpu", "cuda"):
            raise ValueError(f"accelerator must be 'auto', 'cpu', 'gpu' or 'cuda', got "
                             f"{accelerator!r}")
        self.accelerator = accelerator
        self._device = None
        self.log_every_n_steps = max(1, int(log_every_n_steps))
        self.logger = CSVLogger(self.default_root_dir) if logger else None
        self._live_plot_opt = live_plot
        self.live_plot: LivePlot | None = None

        self.current_epoch = 0
        self.global_step = 0
        self.should_stop = False
        self.interrupted = False
        self.state_fn: str | None = None
        self.callback_metrics: dict[str, Tensor] = {}
        self.logged_metrics: dict[str, float] = {}
        self.progress_bar_metrics: dict[str, float] = {}
        self.optimizers: list[Optimizer] = []
        self.lr_scheduler_configs: list[LRSchedulerConfig] = []
        self.model: TrainModule | None = None
        self.num_training_batches: int | float = 0
        self._train_loader = None
        self._stage = None
        self._in_step = False
        self._cur_bs = 1
        self._acc: dict[str, dict[str, list]] = {}
        self._pending: dict[str, float] = {}
        self._mid_epoch_validation = False
        self._has_val = False
        self._epoch_done = False
        self._batches_done = 0
        self._epoch_start_rng: dict | None = None
        self._boundary: tuple | None = None
        self._pbar = None
        self._stepped = False
        self._epoch_rows: dict[str, float] = {}
        self._stage_metrics: dict[str, float] = {}
        self._val_loaders: list = []
        self._dl_suffix = ""

    # ================================================================== properties
    @property
    def checkpoint_callbacks(self) -> list[ModelCheckpoint]:
        return [c for c in self.callbacks if isinstance(c, ModelCheckpoint)]

    @property
    def checkpoint_callback(self) -> ModelCheckpoint | None:
        cbs = self.checkpoint_callbacks
        return cbs[0] if cbs else None

    @property
    def early_stopping_callback(self) -> EarlyStopping | None:
        return next((c for c in self.callbacks if isinstance(c, EarlyStopping)), None)

    @property
    def lightning_module(self) -> TrainModule | None:
        return self.model

    @property
    def log_dir(self) -> str:
        return self.default_root_dir

    @property
    def estimated_stepping_batches(self) -> int | float:
        """How many optimizer steps ``fit`` will take (for OneCycleLR's ``total_steps``)."""
        n = self.num_training_batches
        per_epoch = math.ceil(n / self.accumulate_grad_batches) if math.isfinite(n) else math.inf
        total = per_epoch * self.max_epochs if self.max_epochs is not None else math.inf
        if self.max_steps is not None and self.max_steps >= 0:
            total = min(total, self.max_steps)
        return int(total) if math.isfinite(total) else total

    # ================================================================== hooks
    def _call(self, hook: str, *args) -> None:
        """Callbacks, then the module's own hook, then the monitoring callbacks."""
        model = self.model
        for cb in self.callbacks:
            if not cb._monitoring:
                getattr(cb, hook)(self, model, *args)
        fn = getattr(model, hook, None)
        if callable(fn):
            fn(*args)
        for cb in self.callbacks:
            if cb._monitoring:
                getattr(cb, hook)(self, model, *args)

    # ================================================================== logging
    def _log(self, name: str, value, *, prog_bar: bool, logger: bool, on_step, on_epoch,
             reduce_fx: str, batch_size) -> None:
        v = _to_float(name, value)
        if self._dl_suffix and self._in_step:
            name += self._dl_suffix  # Lightning's naming with several eval dataloaders
        train_step = self._stage == "train" and self._in_step
        on_step = train_step if on_step is None else on_step
        on_epoch = (not train_step) if on_epoch is None else on_epoch
        if not self._in_step:
            on_step, on_epoch = False, True  # logged from an epoch-level hook: a final value
        step_name = f"{name}_step" if on_step and on_epoch else name
        if on_step:
            self.callback_metrics[step_name] = _scalar(v)
            if logger:
                self._pending[step_name] = v
            if prog_bar:
                self.progress_bar_metrics[step_name] = v
        if on_epoch:
            if self._in_step:
                acc = self._acc.setdefault(self._stage, {})
                w = float(batch_size if batch_size is not None else self._cur_bs)
                ent = acc.get(name)
                if ent is None:
                    acc[name] = [v * w, w, reduce_fx, prog_bar, logger, v, v, on_step]
                else:
                    ent[0] += v * w
                    ent[1] += w
                    ent[5] = max(ent[5], v)
                    ent[6] = min(ent[6], v)
            else:
                self._set_epoch_metric(name, v, prog_bar, logger, suffix=False)

    def _set_epoch_metric(self, name, v, prog_bar, logger, suffix: bool) -> None:
        self.callback_metrics[name] = _scalar(v)
        if suffix:
            self.callback_metrics[f"{name}_epoch"] = _scalar(v)
        key = f"{name}_epoch" if suffix else name
        self._stage_metrics[name] = v
        if logger:
            self._epoch_rows[key] = v
        if prog_bar:
            self.progress_bar_metrics[key] = v

    def _finish_epoch_metrics(self, stage: str) -> dict[str, float]:
        out = {}
        for name, (s, w, fx, pbar, logger, mx, mn, both) in self._acc.pop(stage, {}).items():
            v = {"mean": s / w if w else math.nan, "sum": s, "max": mx, "min": mn}.get(fx)
            if v is None:
                raise ValueError(f"self.log(reduce_fx={fx!r}) is not supported; use 'mean', "
                                 "'sum', 'max' or 'min'")
            self._set_epoch_metric(name, v, pbar, logger, suffix=both)
            out[name] = v
        return out

    def _log_direct(self, metrics: dict[str, float], csv: bool = True) -> None:
        """For callbacks (LearningRateMonitor ...): record values now."""
        for k, v in metrics.items():
            self.callback_metrics[k] = _scalar(float(v))
            if csv:
                self._pending[k] = float(v)

    def _flush_step_rows(self) -> None:
        if self._pending:
            if self.logger is not None:
                self.logger.log_metrics(dict(self._pending), self.global_step,
                                        self.current_epoch)
            self.logged_metrics.update(self._pending)
            if self.live_plot is not None:
                self.live_plot.add(self._pending, self.global_step)
                self.live_plot.draw()
            self._pending.clear()

    def _flush_epoch_rows(self) -> None:
        rows = self._epoch_rows
        if rows:
            if self.logger is not None:
                self.logger.log_metrics(dict(rows), self.global_step, self.current_epoch)
                self.logger.save()
            self.logged_metrics.update(rows)
            if self.live_plot is not None:
                self.live_plot.add(rows, self.global_step)
                self.live_plot.draw(force=True)
            rows.clear()

    # ================================================================== set-up
    def _attach(self, model: TrainModule) -> None:
        if not isinstance(model, TrainModule):
            raise TypeError(f"Trainer needs a dyntorch.train.TrainModule, got "
                            f"{type(model).__name__}; subclass TrainModule and define "
                            "training_step and configure_optimizers")
        self.model = model
        object.__setattr__(model, "trainer", self)
        self._epoch_rows = {}

    def _place_model(self, model: TrainModule) -> None:
        """Move the model to the accelerator (before its optimizers are made)."""
        acc = self.accelerator
        if acc in ("gpu", "cuda") or (acc == "auto" and B.cuda_available()):
            B.require_cuda("Trainer(accelerator='gpu')")
            model.to("cuda")
        elif acc == "cpu":
            model.to("cpu")
        p = next(iter(model.parameters()), None)
        self._device = p.device if p is not None else B.CPU

    def _to_device(self, batch):
        """Batches follow the model's device (Lightning's transfer_batch_to_device)."""
        dev = self._device
        if dev is None or dev.type == "cpu":
            return batch
        return _move(batch, dev)

    def _configure_optimizers(self, model: TrainModule) -> None:
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
        self.optimizers = opts
        self.lr_scheduler_configs = scheds

    def _limit(self, n, limit):
        if limit is None:
            return n
        if isinstance(limit, float) and limit <= 1.0:
            return int(n * limit) if math.isfinite(n) else n
        return min(n, int(limit))

    @staticmethod
    def _loader_len(loader) -> int | float:
        try:
            return len(loader)
        except TypeError:
            return math.inf

    # ================================================================== random state
    def _loader_generators(self) -> list:
        gens, seen = [], set()
        loader = self._train_loader
        for obj in (loader, getattr(loader, "sampler", None),
                    getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
            g = getattr(obj, "generator", None)
            if isinstance(g, B.Generator) and id(g) not in seen:
                seen.add(id(g))
                gens.append(g)
        return gens

    def _rng_state(self) -> dict:
        return {"dyntorch": B.default_generator.get_state(), "python": random.getstate(),
                "numpy": np.random.get_state(),
                "loaders": [g.get_state() for g in self._loader_generators()]}

    def _set_rng_state(self, st: dict) -> None:
        B.default_generator.set_state(st["dyntorch"])
        py = st["python"]
        random.setstate((py[0], tuple(py[1]), py[2]))
        np.random.set_state(tuple(st["numpy"]))
        for g, s in zip(self._loader_generators(), st.get("loaders", [])):
            g.set_state(s)

    # ================================================================== fit
    def fit(self, model: TrainModule, train_dataloaders=None, val_dataloaders=None,
            datamodule=None, ckpt_path: str | os.PathLike | None = None) -> None:
        """Train ``model``; resume from ``ckpt_path`` (a file, or ``"last"``) if given.

        A KeyboardInterrupt (Ctrl-C, the notebook's stop button, or raised by a callback)
        stops cleanly: the state at the last completed optimizer step is saved to
        ``<default_root_dir>/interrupted.ckpt`` and ``fit`` returns.
        """
        self._attach(model)
        self.state_fn = "fit"
        self.should_stop = False
        self.interrupted = False
        if datamodule is not None:
            train_dataloaders = train_dataloaders or datamodule.train_dataloader()
            if val_dataloaders is None and hasattr(datamodule, "val_dataloader"):
                val_dataloaders = datamodule.val_dataloader()
        if train_dataloaders is None and hasattr(model, "train_dataloader"):
            train_dataloaders = model.train_dataloader()
        if train_dataloaders is None:
            raise ValueError("fit() needs train_dataloaders (or a train_dataloader() method on "
                             "the module)")
        if val_dataloaders is None and hasattr(model, "val_dataloader"):
            val_dataloaders = model.val_dataloader()
        self._train_loader = train_dataloaders
        val_loaders = _as_list(val_dataloaders)
        self._val_loaders = val_loaders
        self._has_val = bool(val_loaders) and _overrides(model, "validation_step") and \
            self.limit_val_batches != 0
        self.num_training_batches = self._limit(self._loader_len(train_dataloaders),
                                                self.limit_train_batches)
        if self.seed is not None:
            seed_everything(self.seed)
        self._place_model(model)
        self._configure_optimizers(model)
        self._start_live_plot()
        for cb in self.callbacks:
            cb.setup(self, model, "fit")
        if callable(getattr(model, "setup", None)):
            model.setup("fit")
        resume = None
        if ckpt_path is not None:
            resume = self._restore(self._resolve_ckpt(ckpt_path))
        if self.logger is not None:
            self.logger.rows.clear()
            if ckpt_path is not None:
                self.logger.load_existing(self.global_step)
        self._call("on_fit_start")
        self._call("on_train_start")
        try:
            self._fit_loop(model, train_dataloaders, resume)
        except KeyboardInterrupt as e:
            self._on_interrupt(model, e)
        finally:
            self._close_pbar()
            self._stage, self._in_step = None, False
            if self.logger is not None:
                self.logger.save()
            if self.live_plot is not None:
                self.live_plot.draw(force=True)
        if not self.interrupted:
            self._call("on_train_end")
            self._call("on_fit_end")
        for cb in self.callbacks:
            cb.teardown(self, model, "fit")
        self.state_fn = None

    def _resolve_ckpt(self, ckpt_path) -> str:
        if ckpt_path in ("last", "best"):
            cb = self.checkpoint_callback
            path = None
            if cb is not None:
                path = cb.last_model_path if ckpt_path == "last" else cb.best_model_path
                if ckpt_path == "last" and not path and cb.dirpath:
                    cand = os.path.join(cb.dirpath, "last.ckpt")
                    path = cand if os.path.exists(cand) else None
                if ckpt_path == "last" and not path:
                    path = cb.best_model_path or None
            if not path:
                raise ValueError(f"ckpt_path={ckpt_path!r}: no such checkpoint is known yet; "
                                 "pass a file path")
            return path
        return os.fspath(ckpt_path)

    def _fit_loop(self, model: TrainModule, loader, resume: _Resume | None) -> None:
        n_batches = self.num_training_batches
        accum = self.accumulate_grad_batches
        while True:
            if self.max_epochs is not None and self.current_epoch >= self.max_epochs:
                break
            if self._max_steps_reached():
                break
            if self.should_stop and self.current_epoch >= self.min_epochs:
                break
            self.should_stop = False
            model.train()
            self._epoch_done = False
            self._stage = "train"
            if resume is not None:
                self._set_rng_state(resume.epoch_start_rng)
                self._acc = {"train": copy.deepcopy(resume.acc)} if resume.acc else {}
            else:
                self._acc = {}
            self._epoch_start_rng = self._rng_state()
            self._call("on_train_epoch_start")
            it = iter(loader)
            start = 0
            if resume is not None:
                for _ in range(resume.batches_done):
                    next(it)
                start = resume.batches_done
                self._set_rng_state(resume.rng)
                resume = None
            self._batches_done = start
            self._boundary = (start, self._rng_state(), copy.deepcopy(self._acc.get("train", {})))
            self._open_pbar(n_batches, start)
            val_every = self._val_every(n_batches)
            batch_idx = start
            try:
                while batch_idx < n_batches:
                    try:
                        batch = next(it)
                    except StopIteration:
                        break
                    last = batch_idx + 1 == n_batches
                    self._train_batch(model, batch, batch_idx, accum, last)
                    batch_idx += 1
                    self._batches_done = batch_idx
                    if self._has_val and val_every and batch_idx % val_every == 0 and \
                            batch_idx < n_batches and self._val_this_epoch():
                        self._mid_epoch_validation = True
                        try:
                            self._run_eval("val", model, self._val_loaders,
                                           self.limit_val_batches)
                        finally:
                            self._mid_epoch_validation = False
                        self._stage = "train"
                    if self._max_steps_reached():
                        break
                    if self.should_stop and self.current_epoch + 1 >= self.min_epochs:
                        break
            finally:
                shutdown = getattr(it, "_shutdown", None)
                if shutdown is not None and not getattr(it._loader, "persistent_workers", False):
                    shutdown()
            # ---- end of the epoch: validation, schedulers, hooks (checkpoints), logs
            if self._has_val and self._val_this_epoch() and (
                    not val_every or batch_idx % val_every != 0 or batch_idx >= n_batches):
                self._run_eval("val", model, self._val_loaders, self.limit_val_batches)
            self._stage = "train"
            self._finish_epoch_metrics("train")
            self._close_pbar()  # after validation: the bar ends with this epoch's metrics
            self._step_schedulers("epoch")
            self._epoch_done = True
            self._call("on_train_epoch_end")
            self._flush_step_rows()
            self._flush_epoch_rows()
            self._stage = None
            self.current_epoch += 1
            self._epoch_done = False
            self._batches_done = 0

    def _val_this_epoch(self) -> bool:
        return (self.current_epoch + 1) % self.check_val_every_n_epoch == 0

    def _val_every(self, n_batches) -> int:
        v = self.val_check_interval
        if isinstance(v, float):
            if v >= 1.0 or not math.isfinite(n_batches):
                return 0  # once, at the end of the epoch
            return max(1, int(n_batches * v))
        return int(v)

    def _max_steps_reached(self) -> bool:
        return self.max_steps is not None and 0 <= self.max_steps <= self.global_step

    def _is_accumulation_start(self, batch_idx: int) -> bool:
        return batch_idx % self.accumulate_grad_batches == 0

    def _train_batch(self, model, batch, batch_idx: int, accum: int, last: bool) -> None:
        self._stepped = False
        batch = self._to_device(batch)
        self._call("on_train_batch_start", batch, batch_idx)
        self._in_step = True
        self._cur_bs = _batch_size(batch)
        try:
            out = model.training_step(batch, batch_idx)
        finally:
            self._in_step = False
        boundary = (batch_idx + 1) % accum == 0 or last
        if model.automatic_optimization:
            loss = out["loss"] if isinstance(out, dict) else out
            if loss is not None:
                if not isinstance(loss, Tensor):
                    raise TypeError(f"training_step must return the loss tensor (or a dict with "
                                    f"'loss'), got {type(loss).__name__}")
                self._call("on_before_backward", loss)
                (loss / accum if accum > 1 else loss).backward()
                self._call("on_after_backward")
                self._last_loss = loss
            if boundary:
                opt = self.optimizers[0]
                self._call("on_before_optimizer_step", opt)
                self._clip(model)
                opt.step()
                self._call("on_before_zero_grad", opt)
                opt.zero_grad()
                self.global_step += 1
                self._stepped = True
                self._step_schedulers("step")
        else:
            self.global_step += 1
            self._stepped = True
            if isinstance(out, Tensor):
                self._last_loss = out
        if self._stepped:
            # the state an interrupt checkpoint resumes from: this batch fully applied
            self._boundary = (batch_idx + 1, self._rng_state(),
                              copy.deepcopy(self._acc.get("train", {})))
        self._call("on_train_batch_end", out, batch, batch_idx)
        if self._stepped and self.global_step % self.log_every_n_steps == 0:
            self._flush_step_rows()
        elif self._stepped:
            self._pending.clear()
        self._update_pbar()

    def _clip(self, model) -> None:
        v = self.gradient_clip_val
        if v is None or v == 0:
            return
        from ..nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_

        params = [p for p in model.parameters() if p.grad is not None]
        if self.gradient_clip_algorithm == "norm":
            clip_grad_norm_(params, v)
        else:
            clip_grad_value_(params, v)

    def _step_schedulers(self, interval: str) -> None:
        for cfg in self.lr_scheduler_configs:
            if cfg.interval != interval:
                continue
            count = self.global_step if interval == "step" else self.current_epoch + 1
            if count % cfg.frequency:
                continue
            s = cfg.scheduler
            if isinstance(s, ReduceLROnPlateau):
                if cfg.monitor is None:
                    raise ValueError("ReduceLROnPlateau needs a metric: return {'optimizer': "
                                     "..., 'lr_scheduler': {'scheduler': s, 'monitor': "
                                     "'val_loss'}} from configure_optimizers()")
                if cfg.monitor not in self.callback_metrics:
                    if cfg.strict:
                        raise RuntimeError(
                            f"ReduceLROnPlateau conditioned on metric {cfg.monitor} which is "
                            f"not available. Available metrics are: "
                            f"{sorted(self.callback_metrics)}. Condition can be set using "
                            "`monitor` key in lr scheduler dict")
                    continue
                s.step(float(self.callback_metrics[cfg.monitor]))
            else:
                s.step()

    # ================================================================== evaluation loops
    def _run_eval(self, stage: str, model, loaders, limit, collect: bool = False):
        fn_name = {"val": "validation", "test": "test", "predict": "predict"}[stage]
        step_fn = getattr(model, f"{fn_name}_step")
        was_training = model.training
        model.eval()
        prev_stage = self._stage
        self._stage = stage
        self._acc.pop(stage, None)
        self._stage_metrics = {}
        self._call(f"on_{fn_name}_start")
        self._call(f"on_{fn_name}_epoch_start")
        preds: list[list] = []
        multi = len(loaders) > 1
        pass_idx = multi and _takes_dataloader_idx(step_fn)
        with no_grad():
            for dl_idx, loader in enumerate(loaders):
                n = self._limit(self._loader_len(loader), limit)
                outs = []
                it = iter(loader)
                try:
                    for batch_idx in range(n) if math.isfinite(n) else _count():
                        try:
                            batch = next(it)
                        except StopIteration:
                            break
                        batch = self._to_device(batch)
                        extra = (dl_idx,) if pass_idx else ()
                        self._dl_suffix = f"/dataloader_idx_{dl_idx}" if multi else ""
                        self._call(f"on_{fn_name}_batch_start", batch, batch_idx, *extra)
                        self._in_step = True
                        self._cur_bs = _batch_size(batch)
                        try:
                            out = step_fn(batch, batch_idx, *extra)
                        finally:
                            self._in_step = False
                        if collect:
                            outs.append(out)
                        self._call(f"on_{fn_name}_batch_end", out, batch, batch_idx, *extra)
                finally:
                    self._dl_suffix = ""
                    shutdown = getattr(it, "_shutdown", None)
                    if shutdown is not None and not getattr(it._loader, "persistent_workers",
                                                            False):
                        shutdown()
                preds.append(outs)
        self._finish_epoch_metrics(stage)
        self._call(f"on_{fn_name}_epoch_end")
        metrics = dict(self._stage_metrics)
        self._call(f"on_{fn_name}_end")
        self._flush_epoch_rows()
        model.train(was_training)
        self._stage = prev_stage
        if collect:
            return preds
        return metrics

    def _eval_entry(self, stage: str, model, dataloaders, ckpt_path, verbose: bool, limit):
        if model is not None:
            self._attach(model)
        if self.model is None:
            raise ValueError(f"{stage}(): pass a model (or call fit() first)")
        model = self.model
        if ckpt_path is not None:
            ck = self._load_ckpt(self._resolve_ckpt(ckpt_path))
            model.load_state_dict(ck["state_dict"])
        self._place_model(model)
        fn_name = {"val": "validation", "test": "test", "predict": "predict"}[stage]
        if dataloaders is None and hasattr(model, f"{'val' if stage == 'val' else stage}"
                                                  f"_dataloader"):
            dataloaders = getattr(model, f"{'val' if stage == 'val' else stage}_dataloader")()
        loaders = _as_list(dataloaders)
        if not loaders:
            raise ValueError(f"{stage}(): no dataloaders given")
        if stage != "predict" and not _overrides(model, f"{fn_name}_step"):
            raise NotImplementedError(f"{type(model).__name__} has no {fn_name}_step(batch, "
                                      "batch_idx); define it")
        self.state_fn = {"val": "validate", "test": "test", "predict": "predict"}[stage]
        self._epoch_rows = {}
        for cb in self.callbacks:
            cb.setup(self, model, self.state_fn)
        try:
            res = self._run_eval(stage, model, loaders, limit, collect=stage == "predict")
        finally:
            if self.logger is not None:
                self.logger.save()
            self.state_fn = None
        if stage == "predict":
            return res[0] if len(res) == 1 else res
        if verbose:
            _print_metrics(stage, res)
        return [res]

    def validate(self, model: TrainModule | None = None, dataloaders=None, ckpt_path=None,
                 verbose: bool = True, datamodule=None) -> list[dict[str, float]]:
        """Run ``validation_step`` over ``dataloaders``; returns ``[metrics]``."""
        if dataloaders is None and datamodule is not None:
            dataloaders = datamodule.val_dataloader()
        return self._eval_entry("val", model, dataloaders, ckpt_path, verbose,
                                self.limit_val_batches)

    def test(self, model: TrainModule | None = None, dataloaders=None, ckpt_path=None,
             verbose: bool = True, datamodule=None) -> list[dict[str, float]]:
        """Run ``test_step`` over ``dataloaders``; returns ``[metrics]``."""
        if dataloaders is None and datamodule is not None:
            dataloaders = datamodule.test_dataloader()
        return self._eval_entry("test", model, dataloaders, ckpt_path, verbose,
                                self.limit_test_batches)

    def predict(self, model: TrainModule | None = None, dataloaders=None, ckpt_path=None,
                datamodule=None, return_predictions: bool = True) -> list:
        """Run ``predict_step`` over ``dataloaders``; returns the list of its outputs."""
        if dataloaders is None and datamodule is not None:
            dataloaders = datamodule.predict_dataloader()
        return self._eval_entry("predict", model, dataloaders, ckpt_path, False,
                                self.limit_predict_batches)

    # ================================================================== checkpoints
    def _checkpoint_dict(self, boundary: bool = False) -> dict:
        model = self.model
        if boundary and self._boundary is not None and not self._epoch_done:
            batches, rng, acc = self._boundary
        else:
            batches, rng = self._batches_done, self._rng_state()
            acc = copy.deepcopy(self._acc.get("train", {}))
        ck = {
            "dyntorch_checkpoint_version": 1,
            "epoch": self.current_epoch,
            "global_step": self.global_step,
            "loops": {"epoch_done": self._epoch_done, "batches_done": batches,
                      "epoch_start_rng": self._epoch_start_rng or rng},
            "state_dict": model.state_dict(),
            "optimizer_states": [o.state_dict() for o in self.optimizers],
            "lr_schedulers": [c.scheduler.state_dict() for c in self.lr_scheduler_configs],
            "callbacks": {cb.state_key: cb.state_dict() for cb in self.callbacks},
            "rng": rng,
            "train_epoch_acc": acc,
            "callback_metrics": {k: float(v.item()) for k, v in self.callback_metrics.items()},
            "hyper_parameters": {k: v for k, v in (getattr(model, "hparams", {}) or {}).items()
                                 if _plain(v)},
        }
        for cb in self.callbacks:
            cb.on_save_checkpoint(self, model, ck)
        hook = getattr(model, "on_save_checkpoint", None)
        if callable(hook):
            hook(ck)
        return ck

    def save_checkpoint(self, filepath: str | os.PathLike, weights_only: bool = False) -> None:
        """Write the full training state to ``filepath`` (``dyntorch.save`` format)."""
        from ..serialization import save

        ck = self._checkpoint_dict()
        if weights_only:
            ck = {k: ck[k] for k in ("epoch", "global_step", "state_dict")}
        d = os.path.dirname(os.fspath(filepath))
        if d:
            os.makedirs(d, exist_ok=True)
        tmp = os.fspath(filepath) + ".tmp"
        save(ck, tmp)
        os.replace(tmp, filepath)  # never leave a half-written checkpoint under the real name

    def _load_ckpt(self, path: str) -> dict:
        from ..serialization import load

        return load(path)

    def _restore(self, path: str) -> _Resume | None:
        ck = self._load_ckpt(path)
        model = self.model
        if "state_dict" not in ck:
            raise ValueError(f"'{path}' is not a Trainer checkpoint (no 'state_dict'); to load "
                             "weights only, use model.load_state_dict(dyntorch.load(path))")
        model.load_state_dict(ck["state_dict"])
        for o, sd in zip(self.optimizers, ck.get("optimizer_states", [])):
            o.load_state_dict(sd)
        for c, sd in zip(self.lr_scheduler_configs, ck.get("lr_schedulers", [])):
            c.scheduler.load_state_dict(sd)
        states = ck.get("callbacks", {})
        for cb in self.callbacks:
            if cb.state_key in states:
                cb.load_state_dict(states[cb.state_key])
        for cb in self.callbacks:
            cb.on_load_checkpoint(self, model, ck)
        hook = getattr(model, "on_load_checkpoint", None)
        if callable(hook):
            hook(ck)
        self.global_step = int(ck.get("global_step", 0))
        self.callback_metrics = {k: _scalar(v) for k, v in ck.get("callback_metrics", {}).items()}
        loops = ck.get("loops", {"epoch_done": True, "batches_done": 0})
        if loops.get("epoch_done", True):
            self.current_epoch = int(ck.get("epoch", 0)) + 1
            if "rng" in ck:
                self._set_rng_state(ck["rng"])
            return None
        self.current_epoch = int(ck.get("epoch", 0))
        return _Resume(int(loops["batches_done"]), loops["epoch_start_rng"], ck["rng"],
                       ck.get("train_epoch_acc", {}))

    def _on_interrupt(self, model, exc: BaseException) -> None:
        self.interrupted = True
        self._close_pbar()
        for o in self.optimizers:
            o.zero_grad()  # drop half-accumulated gradients: the model stays usable
        path = os.path.join(self.default_root_dir, "interrupted.ckpt")
        try:
            self.save_interrupt_checkpoint(path)
            where = f"saved the state of the last completed step to {path}; resume with " \
                    f"trainer.fit(model, ..., ckpt_path={path!r})"
        except Exception as e:  # never turn Ctrl-C into a second traceback
            where = f"could not save a checkpoint ({type(e).__name__}: {e})"
        for cb in self.callbacks:
            cb.on_exception(self, model, exc)
        model.train(True)
        print(f"\nTraining interrupted at epoch {self.current_epoch}, step {self.global_step}: "
              f"{where}.", file=sys.stderr)

    def save_interrupt_checkpoint(self, path: str) -> None:
        from ..serialization import save

        ck = self._checkpoint_dict(boundary=True)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        save(ck, path + ".tmp")
        os.replace(path + ".tmp", path)

    # ================================================================== progress and plots
    def _start_live_plot(self) -> None:
        opt = self._live_plot_opt
        self.live_plot = None
        if opt is False or not in_notebook():
            return
        try:
            self.live_plot = LivePlot()
        except Exception:  # matplotlib/IPython missing: silently off
            self.live_plot = None

    def _open_pbar(self, total, start: int) -> None:
        self._close_pbar()
        if not self.enable_progress_bar:
            return
        try:
            from tqdm.auto import tqdm
        except Exception:
            return
        self._pbar = tqdm(total=total if math.isfinite(total) else None, initial=start,
                          desc=f"Epoch {self.current_epoch}", leave=True, dynamic_ncols=True)
        self._pbar_t = 0.0

    def _update_pbar(self) -> None:
        bar = self._pbar
        if bar is None:
            return
        bar.update(1)
        now = time.monotonic()
        if now - self._pbar_t > 0.3:
            self._pbar_t = now
            post = {}
            loss = getattr(self, "_last_loss", None)
            if loss is not None:
                post["loss"] = f"{float(loss.item()):.4g}"
            post.update({k: f"{v:.4g}" for k, v in self.progress_bar_metrics.items()})
            bar.set_postfix(post, refresh=False)

    def _close_pbar(self) -> None:
        bar = self._pbar
        if bar is not None:
            self._pbar = None
            if self.progress_bar_metrics:
                bar.set_postfix({k: f"{v:.4g}" for k, v in self.progress_bar_metrics.items()},
                                refresh=False)
            bar.close()


def _scalar(v: float) -> Tensor:
    from .._tensor import _make

    return _make(np.array(v, dtype=np.float32))


def _move(obj, dev):
    if isinstance(obj, Tensor):
        return obj.to(dev)
    if isinstance(obj, dict):
        return type(obj)((k, _move(v, dev)) for k, v in obj.items())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_move(v, dev) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_move(v, dev) for v in obj)
    return obj


def _takes_dataloader_idx(fn) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    pos = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(pos) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in params)


def _plain(v) -> bool:
    """Data that the safe checkpoint format holds (hyper-parameters that aren't are dropped, so
    that checkpoints load with ``weights_only=True``)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, (str, int)) and _plain(x) for k, x in v.items())
    return False


def _as_list(loaders) -> list:
    if loaders is None:
        return []
    if isinstance(loaders, (list, tuple)):
        return list(loaders)
    if isinstance(loaders, dict):
        return list(loaders.values())
    return [loaders]


def _overrides(model, name: str) -> bool:
    return getattr(type(model), name, None) is not getattr(TrainModule, name, None)


def _count():
    i = 0
    while True:
        yield i
        i += 1


def _print_metrics(stage: str, metrics: dict[str, float]) -> None:
    if not metrics:
        return
    width = max(len(k) for k in metrics)
    title = {"val": "Validate", "test": "Test"}.get(stage, stage)
    print(f"{title} metrics")
    for k, v in metrics.items():
        print(f"  {k:<{width}}  {v:.6g}")
