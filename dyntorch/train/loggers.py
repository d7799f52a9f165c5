"""Where logged metrics go: a CSV file, and a live plot when running in a notebook."""
from __future__ import annotations

import csv
import io
import math
import os
import time
from typing import Any

__all__ = ["CSVLogger", "LivePlot", "in_notebook"]


class CSVLogger:
    """Write metrics rows to ``<save_dir>/metrics.csv`` (columns grow as new metrics appear).

    Each row has ``epoch``, ``step`` and the metrics logged at that point. The file is
    rewritten on :meth:`save` (cheap for training logs), so a new column never breaks it.
    """

    def __init__(self, save_dir: str, filename: str = "metrics.csv"):
        self.save_dir = save_dir
        self.path = os.path.join(save_dir, filename)
        self.rows: list[dict[str, Any]] = []
        self._dirty = False

    def load_existing(self, max_step: int) -> None:
        """Keep rows of a previous run up to ``max_step`` (when resuming from a checkpoint)."""
        if not os.path.exists(self.path):
            return
        with open(self.path, newline="") as fh:
            for row in csv.DictReader(fh):
                clean = {k: _num(v) for k, v in row.items() if v not in ("", None)}
                if clean.get("step", 0) <= max_step:
                    self.rows.append(clean)

    def log_metrics(self, metrics: dict[str, float], step: int, epoch: int) -> None:
        if not metrics:
            return
        row = {"epoch": epoch, "step": step}
        row.update(metrics)
        self.rows.append(row)
        self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        os.makedirs(self.save_dir, exist_ok=True)
        keys: list[str] = []
        for r in self.rows:
            for k in r:
                if k not in keys:
                    keys.append(k)
        tmp = self.path + ".tmp"
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self.path)
        self._dirty = False


def _num(v: str):
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where rich output can be updated in place)."""
    try:
        from IPython import get_ipython
    except Exception:
        return False
    ip = get_ipython()
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


class LivePlot:
    """A matplotlib figure of the logged metrics, redrawn in place in the notebook output.

    Step metrics are drawn against the global step, epoch metrics against the step at which
    the epoch ended; metrics whose names share a suffix after ``train_``/``val_`` (``loss``)
    share an axis. Redraws are throttled to ``min_interval`` seconds.
    """

    def __init__(self, min_interval: float = 1.0, max_axes: int = 4):
        from IPython.display import display
        from matplotlib.figure import Figure

        self.min_interval = min_interval
        self.max_axes = max_axes
        self.series: dict[str, tuple[list[int], list[float]]] = {}
        self._fig = Figure(figsize=(9, 3.2))
        self._handle = display(self._placeholder(), display_id=True)
        self._last = 0.0

    @staticmethod
    def _placeholder():
        from IPython.display import HTML

        return HTML("<i>dyntorch: live metrics will appear here</i>")

    def add(self, metrics: dict[str, float], step: int) -> None:
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and math.isfinite(v):
                xs, ys = self.series.setdefault(k, ([], []))
                xs.append(step)
                ys.append(float(v))

    def _groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for name in self.series:
            base = name
            for pre in ("train_", "val_", "test_", "train/", "val/", "test/"):
                if base.startswith(pre):
                    base = base[len(pre):]
            for suf in ("_step", "_epoch"):
                if base.endswith(suf):
                    base = base[: -len(suf)]
            groups.setdefault(base, []).append(name)
        return dict(list(groups.items())[: self.max_axes])

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        groups = self._groups()
        if not groups:
            return
        fig = self._fig
        fig.clf()
        axes = fig.subplots(1, len(groups), squeeze=False)[0]
        for ax, (title, names) in zip(axes, groups.items()):
            for n in names:
                xs, ys = self.series[n]
                ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3, label=n)
            ax.set_title(title)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        # a PNG, not the Figure: a bare Figure only renders where pyplot's inline backend has
        # registered its formatter, and we don't want to touch pyplot's global state
        from IPython.display import Image

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        self._handle.update(Image(data=buf.getvalue(), format="png"))

    @property
    def figure(self):
        """The matplotlib Figure being drawn."""
        return self._fig
