"""Pooling and resampling layers (torch's API)."""
from __future__ import annotations

from ..._tensor import Tensor
from ...ops import conv as C
from ...ops import pool_adaptive as P
from ..module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Upsample",
           "UpsamplingNearest2d", "UpsamplingBilinear2d", "Unfold", "Fold", "PixelShuffle",
           "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d", "ReflectionPad2d",
           "ReplicationPad1d", "ReplicationPad2d", "ZeroPad1d", "CircularPad1d",
           "CircularPad2d"]


class _MaxPoolNd(Module):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool2d(_MaxPoolNd):
    """2-D max pooling (``torch.nn.MaxPool2d``)."""

    def forward(self, input: Tensor):
        return C.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling (``torch.nn.MaxPool1d``)."""

    def forward(self, input: Tensor):
        return C.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class AvgPool2d(Module):
    """2-D average pooling (``torch.nn.AvgPool2d``)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override=None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input: Tensor) -> Tensor:
        return C.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AvgPool1d(Module):
    """1-D average pooling (``torch.nn.AvgPool1d``)."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, input: Tensor) -> Tensor:
        return C.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class AdaptiveAvgPool2d(Module):
    """Adaptive 2-D average pooling (``torch.nn.AdaptiveAvgPool2d``)."""

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input: Tensor) -> Tensor:
        return C.adaptive_avg_pool2d(input, self.output_size)


class AdaptiveAvgPool1d(AdaptiveAvgPool2d):
    """Adaptive 1-D average pooling (``torch.nn.AdaptiveAvgPool1d``)."""

    def forward(self, input: Tensor) -> Tensor:
        return C.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveMaxPool2d(Module):
    """Adaptive 2-D max pooling (``torch.nn.AdaptiveMaxPool2d``)."""

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, input: Tensor):
        return P.adaptive_max_pool2d(input, self.output_size, self.return_indices)


class AdaptiveMaxPool1d(AdaptiveMaxPool2d):
    """Adaptive 1-D max pooling (``torch.nn.AdaptiveMaxPool1d``)."""

    def forward(self, input: Tensor):
        return P.adaptive_max_pool1d(input, self.output_size, self.return_indices)


class Upsample(Module):
    """Resize by ``size`` or ``scale_factor`` (``torch.nn.Upsample``)."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor=None) -> None:
        super().__init__()
        self.size = size
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) \
            else scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def extra_repr(self) -> str:
        s = f"size={self.size}" if self.size is not None else \
            f"scale_factor={self.scale_factor}"
        return s + f", mode='{self.mode}'"

    def forward(self, input: Tensor) -> Tensor:
        return C.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)


class UpsamplingNearest2d(Upsample):
    """``Upsample(mode='nearest')``."""

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, "nearest")


class UpsamplingBilinear2d(Upsample):
    """``Upsample(mode='bilinear', align_corners=True)``."""

    def __init__(self, size=None, scale_factor=None) -> None:
        super().__init__(size, scale_factor, "bilinear", True)


class Unfold(Module):
    """Extract sliding blocks (``torch.nn.Unfold``)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.kernel_size, self.dilation, self.padding, self.stride = \
            kernel_size, dilation, padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return C.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)


class Fold(Module):
    """Combine sliding blocks (``torch.nn.Fold``)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1) -> None:
        super().__init__()
        self.output_size, self.kernel_size, self.dilation, self.padding, self.stride = \
            output_size, kernel_size, dilation, padding, stride

    def forward(self, input: Tensor) -> Tensor:
        return C.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride)


class PixelShuffle(Module):
    """(N, C*r*r, H, W) -> (N, C, H*r, W*r) (``torch.nn.PixelShuffle``)."""

    def __init__(self, upscale_factor: int) -> None:
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input: Tensor) -> Tensor:
        return C.pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class _PadNd(Module):
    _mode = "constant"
    _n = 2
    _zero = False  # ZeroPad*: torch's repr shows no value

    def __init__(self, padding, value: float = 0.0) -> None:
        super().__init__()
        self.padding = tuple(padding) if isinstance(padding, (tuple, list)) else \
            (int(padding),) * (2 * self._n)
        self.value = value

    def extra_repr(self) -> str:
        shown = self._mode == "constant" and not self._zero
        return f"{self.padding}" + (f", value={self.value}" if shown else "")

    def forward(self, input: Tensor) -> Tensor:
        if self._mode == "constant":
            return C.pad(input, self.padding, "constant", self.value)
        return C.pad(input, self.padding, self._mode)


class ConstantPad1d(_PadNd):
    """``torch.nn.ConstantPad1d``."""

    _n = 1

    def __init__(self, padding, value: float) -> None:
        super().__init__(padding, value)


class ConstantPad2d(_PadNd):
    """``torch.nn.ConstantPad2d``."""

    def __init__(self, padding, value: float) -> None:
        super().__init__(padding, value)


class _ZeroPadNd(_PadNd):
    _zero = True

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)


class ZeroPad2d(_ZeroPadNd):
    """``torch.nn.ZeroPad2d``."""


class ReflectionPad1d(_PadNd):
    """``torch.nn.ReflectionPad1d``."""

    _mode, _n = "reflect", 1


class ReflectionPad2d(_PadNd):
    """``torch.nn.ReflectionPad2d``."""

    _mode = "reflect"


class ReplicationPad1d(_PadNd):
    """``torch.nn.ReplicationPad1d``."""

    _mode, _n = "replicate", 1


class ReplicationPad2d(_PadNd):
    """``torch.nn.ReplicationPad2d``."""

    _mode = "replicate"


class ZeroPad1d(_ZeroPadNd):
    """``torch.nn.ZeroPad1d``."""

    _n = 1


class CircularPad1d(_PadNd):
    """``torch.nn.CircularPad1d``."""

    _mode, _n = "circular", 1


class CircularPad2d(_PadNd):
    """``torch.nn.CircularPad2d``."""

    _mode = "circular"
