"""``dyntorch.nn.functional``."""
from __future__ import annotations

from .functional_conv import *  # noqa: F401,F403  conv, pooling, interpolate, pad, unfold, attention
