"""Callbacks: code that hooks into the Trainer's loop (Lightning's hook names and signatures)."""
from __future__ import annotations

import math
import os
import re
from typing import Any

from .. import _backend as B

__all__ = ["Callback", "ModelCheckpoint", "EarlyStopping", "LearningRateMonitor",
           "GradientMonitor"]


class Callback:
    """Base class: override any hook; each gets ``(trainer, pl_module, ...)``.

    Hooks: ``setup, teardown, on_fit_start, on_fit_end, on_train_start, on_train_end,
    on_train_epoch_start, on_train_epoch_end, on_train_batch_start, on_train_batch_end,
    on_validation_start, on_validation_end, on_validation_epoch_start,
    on_validation_epoch_end, on_validation_batch_start, on_validation_batch_end`` (and the
    ``test``/``predict`` ones), ``on_before_backward, on_after_backward,
    on_before_optimizer_step, on_before_zero_grad, on_save_checkpoint, on_load_checkpoint,
    on_exception``. :meth:`state_dict` / :meth:`load_state_dict` travel in checkpoints.
    """

    #: monitoring callbacks (checkpointing, early stopping) run after the module's own hook,
    #: so that metrics logged there are visible to them.
    _monitoring = False

    @property
    def state_key(self) -> str:
        return type(self).__qualname__

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass

    def setup(self, trainer, pl_module, stage: str) -> None: ...
    def teardown(self, trainer, pl_module, stage: str) -> None: ...
    def on_fit_start(self, trainer, pl_module) -> None: ...
    def on_fit_end(self, trainer, pl_module) -> None: ...
    def on_train_start(self, trainer, pl_module) -> None: ...
    def on_train_end(self, trainer, pl_module) -> None: ...
    def on_train_epoch_start(self, trainer, pl_module) -> None: ...
    def on_train_epoch_end(self, trainer, pl_module) -> None: ...
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None: ...
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None: ...
    def on_sanity_check_start(self, trainer, pl_module) -> None: ...
    def on_sanity_check_end(self, trainer, pl_module) -> None: ...
    def on_validation_start(self, trainer, pl_module) -> None: ...
    def on_validation_end(self, trainer, pl_module) -> None: ...
    def on_validation_epoch_start(self, trainer, pl_module) -> None: ...
    def on_validation_epoch_end(self, trainer, pl_module) -> None: ...
    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx,
                                  dataloader_idx=0) -> None: ...
    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                                dataloader_idx=0) -> None: ...
    def on_test_start(self, trainer, pl_module) -> None: ...
    def on_test_end(self, trainer, pl_module) -> None: ...
    def on_test_epoch_start(self, trainer, pl_module) -> None: ...
    def on_test_epoch_end(self, trainer, pl_module) -> None: ...
    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx,
                            dataloader_idx=0) -> None: ...
    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                          dataloader_idx=0) -> None: ...
    def on_predict_start(self, trainer, pl_module) -> None: ...
    def on_predict_end(self, trainer, pl_module) -> None: ...
    def on_predict_epoch_start(self, trainer, pl_module) -> None: ...
    def on_predict_epoch_end(self, trainer, pl_module) -> None: ...
    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx,
                               dataloader_idx=0) -> None: ...
    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                             dataloader_idx=0) -> None: ...
    def on_before_backward(self, trainer, pl_module, loss) -> None: ...
    def on_after_backward(self, trainer, pl_module) -> None: ...
    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None: ...
    def on_before_zero_grad(self, trainer, pl_module, optimizer) -> None: ...
    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None: ...
    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None: ...
    def on_exception(self, trainer, pl_module, exception: BaseException) -> None: ...


def _as_float(v) -> float:
    return float(v.item()) if hasattr(v, "item") else float(v)


# ============================================================================ ModelCheckpoint
class ModelCheckpoint(Callback):
    """Save checkpoints at the end of each training epoch (and after mid-epoch validation).

    Parameters
    ----------
    dirpath : str, optional
        Where to write (default ``<default_root_dir>/checkpoints``).
    filename : str, optional
        A template such as ``"{epoch}-{val_loss:.3f}"`` (default ``"{epoch}-{step}"``); each
        ``{name}`` becomes ``name=value``.
    monitor : str, optional
        Metric that ranks checkpoints; without it the latest ones are kept.
    mode : {"min", "max"}
        Whether a lower or higher ``monitor`` is better.
    save_top_k : int
        Keep the best ``k`` checkpoints (``-1``: all, ``0``: none).
    save_last : bool
        Also keep ``last.ckpt``, always the latest state.
    every_n_epochs : int
        Save every ``n`` epochs.
    """

    _monitoring = True
    CHECKPOINT_EQUALS_CHAR = "="
    FILE_EXTENSION = ".ckpt"

    def __init__(self, dirpath: str | os.PathLike | None = None, filename: str | None = None,
                 monitor: str | None = None, verbose: bool = False, save_last: bool = False,
                 save_top_k: int = 1, mode: str = "min", auto_insert_metric_name: bool = True,
                 every_n_epochs: int = 1, save_on_train_epoch_end: bool | None = None):
        if mode not in ("min", "max"):
            raise ValueError(f"ModelCheckpoint: mode must be 'min' or 'max', got {mode!r}")
        if save_top_k < -1:
            raise ValueError(f"ModelCheckpoint: save_top_k must be >= -1, got {save_top_k}")
        self.dirpath = os.fspath(dirpath) if dirpath is not None else None
        self.filename = filename
        self.monitor = monitor
        self.verbose = verbose
        self.save_last = save_last
        self.save_top_k = save_top_k
        self.mode = mode
        self.auto_insert_metric_name = auto_insert_metric_name
        self.every_n_epochs = every_n_epochs
        self.best_k_models: dict[str, float] = {}
        self.kth_best_model_path = ""
        self.best_model_score: float | None = None
        self.best_model_path = ""
        self.last_model_path = ""
        self._last_saved_step = -1

    @property
    def state_key(self) -> str:
        return f"ModelCheckpoint{{'monitor': {self.monitor!r}, 'mode': {self.mode!r}}}"

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best_model_score": self.best_model_score,
                "best_model_path": self.best_model_path, "dirpath": self.dirpath,
                "best_k_models": dict(self.best_k_models),
                "kth_best_model_path": self.kth_best_model_path,
                "last_model_path": self.last_model_path}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict.get("dirpath") == self.dirpath or self.dirpath is None:
            self.best_model_score = state_dict.get("best_model_score")
            self.best_model_path = state_dict.get("best_model_path", "")
            self.best_k_models = dict(state_dict.get("best_k_models", {}))
            self.kth_best_model_path = state_dict.get("kth_best_model_path", "")
            self.last_model_path = state_dict.get("last_model_path", "")

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = os.path.join(trainer.default_root_dir, "checkpoints")

    # the Trainer runs epoch-end validation before on_train_epoch_end, so saving here sees
    # this epoch's validation metrics and the stepped schedulers.
    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._save(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer._mid_epoch_validation:
            self._save(trainer)

    def format_checkpoint_name(self, metrics: dict[str, Any]) -> str:
        template = self.filename or "{epoch}-{step}"

        def sub(m):
            key, fmt = m.group(1), m.group(2) or ""
            if key not in metrics:
                return m.group(0)
            v = metrics[key]
            if hasattr(v, "item"):
                v = v.item()
            text = format(v, fmt[1:]) if fmt else str(v)
            return f"{key}{self.CHECKPOINT_EQUALS_CHAR}{text}" if \
                self.auto_insert_metric_name else text

        return re.sub(r"\{([^{}:]+)(:[^{}]*)?\}", sub, template) + self.FILE_EXTENSION

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.mode == "min" else a > b

    def _save(self, trainer) -> None:
        if trainer.global_step == self._last_saved_step and not trainer._mid_epoch_validation:
            return
        self._last_saved_step = trainer.global_step
        # all ranks look at the directory at the same moment, so they pick the same names
        trainer.strategy.barrier()
        os.makedirs(self.dirpath, exist_ok=True)
        metrics = {k: _as_float(v) for k, v in trainer.callback_metrics.items()}
        metrics.update(epoch=trainer.current_epoch, step=trainer.global_step)
        if self.save_top_k != 0:
            self._save_top_k(trainer, metrics)
        if self.save_last:
            path = os.path.join(self.dirpath, "last" + self.FILE_EXTENSION)
            trainer.save_checkpoint(path)
            self.last_model_path = path

    def _save_top_k(self, trainer, metrics: dict) -> None:
        if self.monitor is None:
            path = self._unique(os.path.join(self.dirpath, self.format_checkpoint_name(metrics)))
            trainer.save_checkpoint(path)
            if self.save_top_k != -1:
                for old in list(self.best_k_models):
                    if old != path:
                        self._remove(trainer, old)
                self.best_k_models = {}
            self.best_k_models[path] = float(metrics["step"])
            self.best_model_path = path
            return
        if self.monitor not in metrics:
            raise RuntimeError(
                f"ModelCheckpoint(monitor={self.monitor!r}) could not find the monitored key "
                f"in the logged metrics: {sorted(k for k in metrics if k not in ('epoch', 'step'))}"
                ". Log it with self.log() in a step or epoch hook, or change `monitor`.")
        score = metrics[self.monitor]
        if math.isnan(score):
            score = math.inf if self.mode == "min" else -math.inf
        full = self.save_top_k != -1 and len(self.best_k_models) >= self.save_top_k
        if full and not self._better(score, self.best_k_models[self.kth_best_model_path]):
            return
        path = self._unique(os.path.join(self.dirpath, self.format_checkpoint_name(metrics)))
        if full:
            self._remove(trainer, self.kth_best_model_path)
            del self.best_k_models[self.kth_best_model_path]
        self.best_k_models[path] = score
        ranked = sorted(self.best_k_models.items(), key=lambda kv: kv[1],
                        reverse=self.mode == "max")
        self.best_model_path, self.best_model_score = ranked[0]
        self.kth_best_model_path = ranked[-1][0]
        trainer.save_checkpoint(path)
        if self.verbose:
            print(f"Epoch {trainer.current_epoch}, step {trainer.global_step}: "
                  f"{self.monitor}={score:.5g}, saved {path}")

    def _unique(self, path: str) -> str:
        if path not in self.best_k_models and not os.path.exists(path):
            return path
        stem, ext = os.path.splitext(path)
        v = 1
        while os.path.exists(f"{stem}-v{v}{ext}") or f"{stem}-v{v}{ext}" in self.best_k_models:
            v += 1
        return f"{stem}-v{v}{ext}"

    @staticmethod
    def _remove(trainer, path: str) -> None:
        if not trainer.is_global_zero:
            return
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


# ============================================================================ EarlyStopping
class EarlyStopping(Callback):
    """Stop fitting when ``monitor`` has not improved by ``min_delta`` for ``patience`` checks.

    Parameters
    ----------
    monitor : str
        The metric to watch (logged with ``self.log``).
    min_delta : float
        The smallest change that counts as an improvement.
    patience : int
        Checks without improvement before stopping.
    mode : {"min", "max"}
        Whether lower or higher is better.
    strict : bool
        Raise when the metric is missing (otherwise just warn).
    check_on_train_epoch_end : bool, optional
        Check after each training epoch instead of after each validation.
    stopping_threshold, divergence_threshold : float, optional
        Stop at once when the metric reaches the first, or passes the second.
    """

    _monitoring = True

    def __init__(self, monitor: str, min_delta: float = 0.0, patience: int = 3,
                 verbose: bool = False, mode: str = "min", strict: bool = True,
                 check_finite: bool = True, stopping_threshold: float | None = None,
                 divergence_threshold: float | None = None,
                 check_on_train_epoch_end: bool | None = None):
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.verbose, self.mode, self.strict, self.check_finite = verbose, mode, strict, \
            check_finite
        self.stopping_threshold, self.divergence_threshold = stopping_threshold, \
            divergence_threshold
        self.check_on_train_epoch_end = check_on_train_epoch_end
        self.wait_count = 0
        self.stopped_epoch = 0
        self.best_score = math.inf if mode == "min" else -math.inf
        self.stopping_reason: str | None = None

    @property
    def state_key(self) -> str:
        return f"EarlyStopping{{'monitor': {self.monitor!r}, 'mode': {self.mode!r}}}"

    def state_dict(self) -> dict[str, Any]:
        return {"wait_count": self.wait_count, "stopped_epoch": self.stopped_epoch,
                "best_score": self.best_score, "patience": self.patience}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wait_count = state_dict["wait_count"]
        self.stopped_epoch = state_dict["stopped_epoch"]
        self.best_score = state_dict["best_score"]
        self.patience = state_dict.get("patience", self.patience)

    def _on_epoch_check(self, trainer) -> bool:
        if self.check_on_train_epoch_end is not None:
            return self.check_on_train_epoch_end
        return not trainer._has_val

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._on_epoch_check(trainer):
            self._check(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.state_fn == "fit" and not trainer.sanity_checking and \
                not self._on_epoch_check(trainer):
            self._check(trainer)

    def _check(self, trainer) -> None:
        metrics = trainer.callback_metrics
        if self.monitor not in metrics:
            msg = (f"Early stopping conditioned on metric `{self.monitor}` which is not "
                   f"available. Pass in or modify your `EarlyStopping` callback to use any of "
                   f"the following: {', '.join(sorted(metrics)) or '(none logged)'}")
            if self.strict:
                raise RuntimeError(msg)
            import warnings

            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            return
        current = _as_float(metrics[self.monitor])
        better = (current < self.best_score - self.min_delta) if self.mode == "min" else \
            (current > self.best_score + self.min_delta)
        reason = None
        if self.check_finite and not math.isfinite(current):
            reason = f"Monitored metric {self.monitor} = {current} is not finite."
        elif self.stopping_threshold is not None and (
                current < self.stopping_threshold if self.mode == "min"
                else current > self.stopping_threshold):
            reason = f"Stopping threshold reached: {self.monitor} = {current}."
        elif self.divergence_threshold is not None and (
                current > self.divergence_threshold if self.mode == "min"
                else current < self.divergence_threshold):
            reason = f"Divergence threshold reached: {self.monitor} = {current}."
        elif better:
            self.best_score = current
            self.wait_count = 0
        else:
            self.wait_count += 1
            if self.wait_count >= self.patience:
                reason = (f"Monitored metric {self.monitor} did not improve in the last "
                          f"{self.wait_count} records. Best score: {self.best_score:.6g}.")
        if reason is not None:
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason = reason
            trainer.should_stop = True
            if self.verbose:
                print(reason + " Signaling Trainer to stop.")


# ============================================================================ LearningRateMonitor
class LearningRateMonitor(Callback):
    """Log each optimizer's learning rate (``lr-<Optimizer>``, ``-pg<i>`` per extra group).

    Parameters
    ----------
    logging_interval : {"step", "epoch"}, optional
        When to record (default: each step).
    log_momentum : bool
        Also record the momentum (or Adam's beta1).
    """

    def __init__(self, logging_interval: str | None = None, log_momentum: bool = False,
                 log_weight_decay: bool = False):
        if logging_interval not in (None, "step", "epoch"):
            raise ValueError("LearningRateMonitor: logging_interval must be 'step', 'epoch' or "
                             "None")
        self.logging_interval = logging_interval
        self.log_momentum = log_momentum
        self.log_weight_decay = log_weight_decay
        self.lrs: dict[str, list[float]] = {}

    def _names(self, trainer) -> list[tuple[str, Any, int]]:
        out = []
        counts: dict[str, int] = {}
        for opt in trainer.optimizers:
            base = f"lr-{type(opt).__name__}"
            n = counts.get(base, 0)
            counts[base] = n + 1
            name = base if n == 0 else f"{base}-{n}"
            for i, _ in enumerate(opt.param_groups):
                out.append((name if len(opt.param_groups) == 1 else f"{name}/pg{i + 1}", opt, i))
        return out

    def _record(self, trainer) -> None:
        stats = {}
        for name, opt, i in self._names(trainer):
            g = opt.param_groups[i]
            stats[name] = float(g["lr"])
            if self.log_momentum:
                m = g["betas"][0] if "betas" in g else g.get("momentum", 0.0)
                stats[name.replace("lr-", "lr-", 1) + "-momentum"] = float(m)
            if self.log_weight_decay:
                stats[name + "-weight_decay"] = float(g.get("weight_decay", 0.0))
        for k, v in stats.items():
            self.lrs.setdefault(k, []).append(v)
        trainer._log_direct(stats)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.logging_interval != "epoch" and trainer._is_accumulation_start(batch_idx):
            self._record(trainer)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.logging_interval == "epoch":
            self._record(trainer)


# ============================================================================ GradientMonitor
class GradientMonitor(Callback):
    """Per-module gradient norms at every optimizer step, kept as a history to plot.

    Each entry of :attr:`history` maps a module name (as in ``named_modules()``; the root
    module is ``""``) to the ``norm_type``-norm of the gradients of the parameters that module
    owns directly. Measured before gradient clipping. :attr:`steps` holds the global step of
    each entry and :attr:`total` the norm over all parameters.

    Parameters
    ----------
    norm_type : float
        Which norm (2 by default; ``inf`` for the max).
    every_n_steps : int
        Record every ``n`` optimizer steps.
    log : bool
        Also log each norm as ``grad_norm/<module>`` (progress bar off).
    """

    def __init__(self, norm_type: float = 2.0, every_n_steps: int = 1, log: bool = False):
        self.norm_type = float(norm_type)
        self.every_n_steps = every_n_steps
        self.log = log
        self.history: list[dict[str, float]] = []
        self.steps: list[int] = []
        self.total: list[float] = []

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "steps": self.steps, "total": self.total}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self.steps = list(state_dict.get("steps", []))
        self.total = list(state_dict.get("total", []))

    def _norm_pow(self, g) -> float:
        xp = B.xp_of(g)
        a = xp.abs(g)
        if math.isinf(self.norm_type):
            return float(a.max()) if a.size else 0.0
        if self.norm_type == 2.0:
            return float(xp.vdot(a.ravel(), a.ravel())) if a.size else 0.0
        return float((a ** self.norm_type).sum())

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_step % self.every_n_steps:
            return
        entry: dict[str, float] = {}
        total = 0.0
        inf = math.isinf(self.norm_type)
        for name, mod in pl_module.named_modules():
            acc, seen = 0.0, False
            for p in mod.parameters(recurse=False):
                g = p.grad
                if g is None:
                    continue
                seen = True
                v = self._norm_pow(g._data)
                acc = max(acc, v) if inf else acc + v
            if seen:
                entry[name] = acc if inf else acc ** (1.0 / self.norm_type)
                total = max(total, acc) if inf else total + acc
        self.history.append(entry)
        self.steps.append(trainer.global_step)
        self.total.append(total if inf else total ** (1.0 / self.norm_type))
        if self.log:
            trainer._log_direct({f"grad_norm/{k or 'root'}": v for k, v in entry.items()},
                                csv=True)
from .graph_recorder import GraphRecorder  # noqa: E402,F401  (written by the debugger helper)
