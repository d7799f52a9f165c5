"""The Trainer's progress bar (tqdm, a widget in Jupyter) and live metric plot.

The state (``_pbar``, ``_pbar_t``, ``live_plot``, ...) is created in ``Trainer.__init__``.
"""
from __future__ import annotations

import math
import time

from .loggers import LivePlot, in_notebook

__all__ = ["ProgressDisplay"]


class ProgressDisplay:
    """Progress bar and live plot (a part of :class:`Trainer`)."""

    def _start_live_plot(self) -> None:
        opt = self._live_plot_opt
        self.live_plot = None
        if opt is False or not self.is_global_zero or not in_notebook():
            return
        try:
            self.live_plot = LivePlot()
        except Exception:  # matplotlib/IPython missing: silently off
            self.live_plot = None

    def _open_pbar(self, total, start: int) -> None:
        self._close_pbar()
        if not self.enable_progress_bar or not self.is_global_zero:
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
