"""``torch.nn.modules.batchnorm`` import path (the classes live in ``normalization.py``)."""
from .normalization import (  # noqa: F401
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    SyncBatchNorm,
    _BatchNorm,
    _NormBase,
)

__all__: list = []  # exported through normalization.py
