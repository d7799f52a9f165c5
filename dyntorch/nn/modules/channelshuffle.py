"""``torch.nn.modules.channelshuffle``: ChannelShuffle."""
from __future__ import annotations

from ..._tensor import Tensor
from ...ops import conv as C
from ..module import Module

__all__ = ["ChannelShuffle"]


class ChannelShuffle(Module):
    """``torch.nn.ChannelShuffle``: see :func:`dyntorch.nn.functional.channel_shuffle`."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def extra_repr(self) -> str:
        return f"groups={self.groups}"

    def forward(self, input: Tensor) -> Tensor:
        return C.channel_shuffle(input, self.groups)
