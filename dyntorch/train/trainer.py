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

import inspect
import math
import os
import random

import numpy as np

from .. import _backend as B
from .._tensor import Tensor
from ..optim.optimizer import Optimizer
from .callbacks import Callback, EarlyStopping, ModelCheckpoint
from .checkpointing import CheckpointIO
from .loggers import CSVLogger, LivePlot
from .loop import FitLoop
from .metrics import MetricLogging, _print_metrics
from .module import TrainModule
from .optimizers import LRSchedulerConfig, configure_optimizers
from .progress import ProgressDisplay
from .strategy import make_strategy
from .summary import model_summary

__all__ = ["Trainer", "seed_everything"]


def seed_everything(seed: int) -> int:
    """Seed Python's ``random``, NumPy's global generator and dyntorch's default generator."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    B.default_generator.manual_seed(seed)
    return seed


class Trainer(FitLoop, CheckpointIO, MetricLogging, ProgressDisplay):
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
    min_epochs : int, optional
        Keep training at least this many epochs even when a callback asks to stop.
    num_sanity_val_steps : int
        Before training, run this many validation batches of each validation loader (``-1``:
        all of them) to catch bugs in ``validation_step`` early, as Lightning does; what they
        log is discarded. (Lightning's default is 2; here 0, so that nothing runs unasked.)
    accelerator : str
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"gpu"`` or ``"cuda"``.
    devices : int or "auto"
        Processes per node (with ``strategy="ddp"``); ``"auto"`` or 1 otherwise.
    strategy : str
        ``"auto"`` (one process) or ``"ddp"`` (data-parallel over MPI ranks, see
        :mod:`dyntorch.distributed`).
    num_nodes : int
        Machines taking part (with ``strategy="ddp"``).
    deterministic : bool, optional
        ``True``: seed everything at the start of each run (with ``seed``, or 0 when no seed is
        given) and record ``dyntorch.use_deterministic_algorithms(True)``.
    enable_model_summary : bool
        Print a table of the model's child modules and parameter counts when ``fit`` starts.
        (Lightning's default is ``True``; here ``False``.)
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
                 num_sanity_val_steps: int = 0, accelerator: str = "auto",
                 devices: int | str = "auto", strategy: str = "auto", num_nodes: int = 1,
                 deterministic: bool | None = None, enable_model_summary: bool = False,
                 **unsupported):
        if unsupported:
            raise TypeError(
                f"Trainer() does not support {', '.join(sorted(unsupported))}; dyntorch's "
                "Trainer implements: " + ", ".join(_TRAINER_ARGS))
        if not (num_sanity_val_steps == -1 or (isinstance(num_sanity_val_steps, int)
                                               and num_sanity_val_steps >= 0)):
            raise ValueError(f"num_sanity_val_steps must be an int >= 0 or -1 (all batches), "
                             f"got {num_sanity_val_steps!r}")
        if deterministic not in (None, True, False):
            raise ValueError(f"deterministic must be True, False or None, got "
                             f"{deterministic!r} ('warn' is not supported)")
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
        # first, so that only rank 0 gets a logger
        self.strategy = make_strategy(strategy, devices, num_nodes, accelerator)
        self.logger = CSVLogger(self.default_root_dir) if logger and self.is_global_zero \
            else None
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
        self._last_loss: Tensor | None = None
        self._pbar_t = 0.0
        self.num_sanity_val_steps = num_sanity_val_steps
        self.sanity_checking = False
        self.deterministic = bool(deterministic)
        self.enable_model_summary = bool(enable_model_summary)

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
    def global_rank(self) -> int:
        return self.strategy.global_rank

    @property
    def world_size(self) -> int:
        return self.strategy.world_size

    @property
    def is_global_zero(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs and progress bars."""
        return self.strategy.is_global_zero

    @property
    def train_dataloader(self):
        """The DataLoader ``fit`` iterates (with ``strategy="ddp"``, this rank's shard)."""
        return self._train_loader

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
        self.optimizers, self.lr_scheduler_configs = configure_optimizers(model)

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
        train_dataloaders = self.strategy.shard_loader(train_dataloaders)
        self._train_loader = train_dataloaders
        val_loaders = [self.strategy.shard_loader(v) for v in _as_list(val_dataloaders)]
        self._val_loaders = val_loaders
        self._has_val = bool(val_loaders) and _overrides(model, "validation_step") and \
            self.limit_val_batches != 0
        self.num_training_batches = self._limit(self._loader_len(train_dataloaders),
                                                self.limit_train_batches)
        if self.deterministic:
            from .. import use_deterministic_algorithms

            use_deterministic_algorithms(True)
        if self.seed is not None or self.deterministic:
            seed_everything(self.seed if self.seed is not None else 0)
        self._place_model(model)
        self.strategy.setup(self, model)
        self._configure_optimizers(model)
        if self.enable_model_summary and self.is_global_zero:
            print(model_summary(model))
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
        try:
            self._sanity_check(model)
            self._call("on_train_start")
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
        self.strategy.teardown()
        self.state_fn = None

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
        if stage != "predict":  # each rank predicts everything; val and test are sharded
            loaders = [self.strategy.shard_loader(v) for v in loaders]
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
        if verbose and self.is_global_zero:
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


_TRAINER_ARGS = [n for n in inspect.signature(Trainer.__init__).parameters
                 if n not in ("self", "unsupported")]
