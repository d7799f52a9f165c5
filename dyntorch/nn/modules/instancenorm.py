"""``torch.nn.modules.instancenorm`` import path (the classes live in ``normalization.py``)."""
from .normalization import (  # noqa: F401
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    _InstanceNorm,
)

__all__: list = []  # exported through normalization.py
