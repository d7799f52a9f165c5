"""``torch.nn.modules.padding`` import path (the classes live in ``pooling.py``)."""
from .pooling import (  # noqa: F401
    CircularPad1d,
    CircularPad2d,
    ConstantPad1d,
    ConstantPad2d,
    ReflectionPad1d,
    ReflectionPad2d,
    ReplicationPad1d,
    ReplicationPad2d,
    ZeroPad1d,
    ZeroPad2d,
)

__all__: list = []  # exported through pooling.py
