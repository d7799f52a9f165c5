"""``torch.nn.modules.fold`` import path (the classes live in ``pooling.py``)."""
from .pooling import Fold, Unfold  # noqa: F401

__all__: list = []  # exported through pooling.py
