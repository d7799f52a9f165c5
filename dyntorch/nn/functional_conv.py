"""Functional conv, pooling, resampling and attention (merged into ``nn.functional``).

The array work lives in ``dyntorch.ops.conv`` (fused ops with analytic derivatives); this
module re-exports it under torch's ``F.`` names and adds attention.
"""
from __future__ import annotations

from ..ops.conv import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    channel_shuffle,
    conv1d,
    conv2d,
    conv_transpose1d,
    conv_transpose2d,
    fold,
    interpolate,
    max_pool1d,
    max_pool2d,
    pad,
    pixel_shuffle,
    pixel_unshuffle,
    unfold,
)
from ..ops.pool_adaptive import adaptive_max_pool1d, adaptive_max_pool2d
from .functional_attention import multi_head_attention_forward, scaled_dot_product_attention


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated alias of :func:`interpolate` (``F.upsample``)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=False):
    """:func:`max_pool2d` that always returns ``(output, indices)`` (as torch's does, whatever
    ``return_indices`` says)."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


__all__ = [
    "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d", "max_pool1d", "max_pool2d",
    "max_pool2d_with_indices", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d", "unfold", "fold",
    "pad", "interpolate", "upsample", "pixel_shuffle", "pixel_unshuffle", "channel_shuffle",
    "scaled_dot_product_attention", "multi_head_attention_forward",
]
