"""``torch.nn.modules.pixelshuffle``: PixelShuffle and PixelUnshuffle."""
from __future__ import annotations

from ..._tensor import Tensor
from ...ops import conv as C
from ..module import Module
from .pooling import PixelShuffle

__all__ = ["PixelShuffle", "PixelUnshuffle"]


class PixelUnshuffle(Module):
    """(N, C, H*r, W*r) -> (N, C*r*r, H, W), the inverse of :class:`PixelShuffle`
    (``torch.nn.PixelUnshuffle``)."""

    def __init__(self, downscale_factor: int) -> None:
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return C.pixel_unshuffle(input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"
