"""The Trainer's metric bookkeeping: ``self.log`` values, their per-epoch reduction, and the
rows written to the logger and the live plot.

The state it works on (``callback_metrics``, ``_acc``, ``_pending``, ...) is created in
``Trainer.__init__``; this module holds only behaviour.
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor

__all__ = ["MetricLogging"]


def _scalar(v: float) -> Tensor:
    from .._tensor import _make

    return _make(np.array(v, dtype=np.float32))


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


def _print_metrics(stage: str, metrics: dict[str, float]) -> None:
    if not metrics:
        return
    width = max(len(k) for k in metrics)
    title = {"val": "Validate", "test": "Test"}.get(stage, stage)
    print(f"{title} metrics")
    for k, v in metrics.items():
        print(f"  {k:<{width}}  {v:.6g}")


class MetricLogging:
    """``self.log`` and what becomes of the logged values (a part of :class:`Trainer`)."""

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
        acc = self._acc.pop(stage, {})
        if self.world_size > 1:
            acc = self._combine_ranks(acc)
        for name, (s, w, fx, pbar, logger, mx, mn, both) in acc.items():
            v = {"mean": s / w if w else math.nan, "sum": s, "max": mx, "min": mn}.get(fx)
            if v is None:
                raise ValueError(f"self.log(reduce_fx={fx!r}) is not supported; use 'mean', "
                                 "'sum', 'max' or 'min'")
            self._set_epoch_metric(name, v, pbar, logger, suffix=both)
            out[name] = v
        return out

    def _combine_ranks(self, acc: dict[str, list]) -> dict[str, list]:
        """Epoch accumulators summed (weighted sums and weights), maxed and minned over the
        ranks, so that every rank sees the metric of the whole epoch. Every rank must log the
        same names (the collectives check it)."""
        names = sorted(acc)
        st = self.strategy
        sums = st.all_reduce_floats([acc[n][0] for n in names] + [acc[n][1] for n in names])
        mx = st.all_reduce_floats([acc[n][5] for n in names], "max")
        mn = st.all_reduce_floats([acc[n][6] for n in names], "min")
        k = len(names)
        out = {}
        for i, n in enumerate(names):
            ent = list(acc[n])
            ent[0], ent[1], ent[5], ent[6] = sums[i], sums[k + i], mx[i], mn[i]
            out[n] = ent
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
