"""The Trainer's loops: the fit loop (epochs, batches, gradient accumulation, optimizer and
scheduler steps, mid-epoch validation) and the evaluation loop (validate, test, predict).

The state it works on is created in ``Trainer.__init__``.
"""
from __future__ import annotations

import copy
import itertools
import math

import numpy as np

from .._tensor import Tensor
from ..autograd.grad_mode import no_grad
from ..optim.lr_scheduler import ReduceLROnPlateau
from .checkpointing import _Resume
from .module import TrainModule

__all__ = ["FitLoop"]


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


def _takes_dataloader_idx(fn) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    pos = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(pos) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in params)


class FitLoop:
    """The training and evaluation loops (a part of :class:`Trainer`)."""

    def _sanity_check(self, model: TrainModule) -> None:
        """Lightning's sanity check: a few validation batches before training; what they log
        is thrown away and the callbacks that act on validation metrics stay still."""
        n = self.num_sanity_val_steps
        if not self._has_val or n == 0:
            return
        kept = (dict(self.callback_metrics), dict(self.progress_bar_metrics))
        self.sanity_checking = True
        try:
            self._call("on_sanity_check_start")
            limit = self.limit_val_batches if n == -1 else n
            self._run_eval("val", model, self._val_loaders, limit)
            self._call("on_sanity_check_end")
        finally:
            self.sanity_checking = False
            self.callback_metrics, self.progress_bar_metrics = kept

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
            sampler = getattr(loader, "sampler", None)
            if callable(getattr(sampler, "set_epoch", None)):
                sampler.set_epoch(self.current_epoch)  # a new shuffle each epoch, as Lightning
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
        self.strategy.before_training_step()
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
                with self.strategy.backward_sync(boundary):
                    (loss / accum if accum > 1 else loss).backward()
                self._call("on_after_backward")
                self._last_loss = loss
            if boundary:
                self.strategy.check_reduced()
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
                    for batch_idx in range(n) if math.isfinite(n) else itertools.count():
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
        if self.sanity_checking:
            self._epoch_rows.clear()  # a sanity check logs nothing
        else:
            self._flush_epoch_rows()
        model.train(was_training)
        self._stage = prev_stage
        if collect:
            return preds
        return metrics

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
