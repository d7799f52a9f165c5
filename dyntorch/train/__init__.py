"""Lightning-style training: ``TrainModule``, ``Trainer`` and callbacks.

>>> class Model(TrainModule):
...     def training_step(self, batch, batch_idx): ...
...     def configure_optimizers(self): ...
>>> Trainer(max_epochs=3).fit(Model(), train_loader, val_loader)
"""
from .callbacks import (
           Callback,
           EarlyStopping,
           GradientMonitor,
           LearningRateMonitor,
           ModelCheckpoint,
)
from .loggers import CSVLogger, LivePlot
from .module import LightningModule, TrainModule
from .optimizers import LRSchedulerConfig
from .trainer import Trainer, seed_everything

__all__ = ["TrainModule", "LightningModule", "Trainer", "Callback", "ModelCheckpoint",
           "EarlyStopping", "LearningRateMonitor", "GradientMonitor", "CSVLogger", "LivePlot",
           "LRSchedulerConfig", "seed_everything"]
