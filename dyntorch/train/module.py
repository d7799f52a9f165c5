"""``TrainModule``: an ``nn.Module`` that also says how to train, validate, test and predict."""
from __future__ import annotations

import inspect
from typing import Any

from .._tensor import Tensor
from ..nn.module import Module

__all__ = ["TrainModule", "LightningModule"]


class TrainModule(Module):
    """A model plus its training recipe, for :class:`dyntorch.train.Trainer` (Lightning style).

    Override :meth:`training_step` (returns the loss, or a dict with ``"loss"``) and
    :meth:`configure_optimizers`; optionally :meth:`validation_step`, :meth:`test_step`,
    :meth:`predict_step` and any hook (``on_train_epoch_end``, ...). Inside them,
    :meth:`log` records metrics (progress bar, CSV file, ``trainer.callback_metrics``).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "trainer", None)
        object.__setattr__(self, "automatic_optimization", True)
        object.__setattr__(self, "hparams", {})

    def __getstate__(self) -> dict:
        # copies and pickles of the model (EMA copies, saving the whole module) leave the
        # Trainer, its loaders and worker processes behind
        s = super().__getstate__()
        s["trainer"] = None
        return s

    # ------------------------------------------------------------------ the recipe
    def training_step(self, batch, batch_idx: int):
        """One training batch; return the loss (a 0-d tensor) or a dict with ``"loss"``."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement training_step(batch, batch_idx) returning the "
            "loss to use Trainer.fit()")

    def validation_step(self, batch, batch_idx: int):
        """One validation batch (runs under ``no_grad`` in eval mode); log metrics here."""
        raise NotImplementedError(
            f"{type(self).__name__} has no validation_step(batch, batch_idx); define it to "
            "validate")

    def test_step(self, batch, batch_idx: int):
        """One test batch (runs under ``no_grad`` in eval mode); log metrics here."""
        raise NotImplementedError(
            f"{type(self).__name__} has no test_step(batch, batch_idx); define it to test")

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int = 0):
        """One prediction batch; defaults to ``self(batch)`` (or ``self(batch[0])``)."""
        if isinstance(batch, (list, tuple)) and batch and not isinstance(batch, Tensor):
            return self(batch[0])
        return self(batch)

    def configure_optimizers(self):
        """Return an optimizer, ``(optimizers, schedulers)``, or a dict with ``"optimizer"`` and
        ``"lr_scheduler"`` (a scheduler or ``{"scheduler", "interval", "frequency",
        "monitor"}``), as in Lightning."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement configure_optimizers() returning an optimizer "
            "(e.g. `return dyntorch.optim.Adam(self.parameters(), lr=1e-3)`)")

    # ------------------------------------------------------------------ logging
    def log(self, name: str, value, prog_bar: bool = False, logger: bool = True,
            on_step: bool | None = None, on_epoch: bool | None = None, reduce_fx: str = "mean",
            batch_size: int | None = None, **kwargs) -> None:
        """Record a metric.

        Parameters
        ----------
        name : str
            The metric's name (``"val_loss"``).
        value : Tensor or number
            A scalar.
        prog_bar : bool
            Show it in the progress bar.
        logger : bool
            Write it to ``metrics.csv``.
        on_step, on_epoch : bool, optional
            Record the per-step value and/or the epoch's (batch-size weighted) mean. Defaults:
            per step in ``training_step``, per epoch in validation/test and in epoch hooks.
        reduce_fx : {"mean", "sum", "max", "min"}
            How the epoch value is made from the step values.
        batch_size : int, optional
            Weight of this value in the epoch mean (default: inferred from the batch).
        """
        tr = self.trainer
        if tr is None:
            raise RuntimeError(
                f"{type(self).__name__}.log('{name}') was called outside a Trainer; attach the "
                "module with trainer.fit(model, ...) first")
        tr._log(name, value, prog_bar=prog_bar, logger=logger, on_step=on_step,
                on_epoch=on_epoch, reduce_fx=reduce_fx, batch_size=batch_size)

    def log_dict(self, dictionary: dict[str, Any], **kwargs) -> None:
        """:meth:`log` each item."""
        for k, v in dictionary.items():
            self.log(k, v, **kwargs)

    # ------------------------------------------------------------------ helpers
    @property
    def current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    @property
    def global_step(self) -> int:
        return self.trainer.global_step if self.trainer is not None else 0

    def optimizers(self):
        """The configured optimizer(s) (for manual optimization)."""
        opts = self.trainer.optimizers if self.trainer is not None else []
        return opts[0] if len(opts) == 1 else opts

    def lr_schedulers(self):
        """The configured scheduler(s), or ``None``."""
        cfgs = self.trainer.lr_scheduler_configs if self.trainer is not None else []
        if not cfgs:
            return None
        return cfgs[0].scheduler if len(cfgs) == 1 else [c.scheduler for c in cfgs]

    def manual_backward(self, loss: Tensor, *args, **kwargs) -> None:
        """``loss.backward()`` (for manual optimization, ``automatic_optimization = False``)."""
        loss.backward(*args, **kwargs)

    def save_hyperparameters(self, *names: str) -> None:
        """Store the arguments of the caller's ``__init__`` in ``self.hparams`` (saved in
        checkpoints)."""
        frame = inspect.currentframe().f_back
        init_args = {k: v for k, v in frame.f_locals.items()
                     if k not in ("self", "__class__") and not k.startswith("_")}
        if names:
            init_args = {k: init_args[k] for k in names}
        self.hparams.update(init_args)


LightningModule = TrainModule
