"""``torch.nn.modules.upsampling`` import path (the classes live in ``pooling.py``)."""
from .pooling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d  # noqa: F401

__all__: list = []  # exported through pooling.py
