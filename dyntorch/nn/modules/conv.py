"""Convolution layers: Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d (torch's API)."""
from __future__ import annotations

import math

from ... import _backend as B
from ..._tensor import Tensor
from ...ops import conv as C
from ...ops.creation import empty
from ..module import Module
from ..parameter import Parameter

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]


def _tuple(v, n: int) -> tuple:
    if isinstance(v, (tuple, list)):
        return tuple(int(a) for a in v) if len(v) == n else tuple(int(v[0]) for _ in range(n))
    return (int(v),) * n


def _uniform(shape, bound: float, dtype, device) -> Parameter:
    t = empty(*shape, dtype=dtype, device=device)
    t.uniform_(-bound, bound)
    return Parameter(t)


class _ConvNd(Module):
    """Shared state of the convolutions; ``weight``/``bias`` named and shaped like torch's."""

    _nd = 2
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 device=None, dtype=None, output_padding=0) -> None:
        super().__init__()
        n = self._nd
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"padding_mode must be one of 'zeros', 'reflect', 'replicate' or "
                             f"'circular', but got padding_mode='{padding_mode}'")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _tuple(kernel_size, n)
        self.stride = _tuple(stride, n)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Invalid padding string {padding!r}, should be one of "
                                 "{'valid', 'same'}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = _tuple(padding, n)
        self.dilation = _tuple(dilation, n)
        self.output_padding = _tuple(output_padding, n)
        self.groups = groups
        self.padding_mode = padding_mode
        dt = B.to_dtype(dtype) if dtype is not None else B.get_default_dtype()
        if self.transposed:
            wshape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            wshape = (out_channels, in_channels // groups) + self.kernel_size
        # torch's default: kaiming_uniform(a=sqrt(5)) => U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        fan_in = wshape[1] * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        self.weight = _uniform(wshape, bound, dt, device)
        if bias:
            self.bias = _uniform((out_channels,), bound, dt, device)
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        from ...autograd import no_grad

        with no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        zero = (0,) * self._nd
        if self.padding != zero:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self._nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != zero:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _mode_pad(self, x: Tensor):
        """Non-zero padding modes pad explicitly, then convolve without padding."""
        if self.padding_mode == "zeros":
            return x, self.padding
        if isinstance(self.padding, str):
            if self.padding == "valid":
                return x, 0
            pads = []
            for k, d in zip(reversed(self.kernel_size), reversed(self.dilation)):
                tot = d * (k - 1)
                pads += [tot // 2, tot - tot // 2]
        else:
            pads = []
            for p in reversed(self.padding):
                pads += [p, p]
        return C.pad(x, pads, mode=self.padding_mode), 0


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) (``torch.nn.Conv2d``)."""

    _nd = 2

    def forward(self, input: Tensor) -> Tensor:
        x, p = self._mode_pad(input)
        return C.conv2d(x, self.weight, self.bias, self.stride, p, self.dilation, self.groups)


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) (``torch.nn.Conv1d``)."""

    _nd = 1

    def forward(self, input: Tensor) -> Tensor:
        x, p = self._mode_pad(input)
        return C.conv1d(x, self.weight, self.bias, self.stride, p, self.dilation, self.groups)


class _ConvTransposeNd(_ConvNd):
    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for '
                             f"{type(self).__name__}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype, output_padding)

    def _out_pad(self, input: Tensor, output_size):
        if output_size is None:
            return self.output_padding
        size = tuple(output_size)[-self._nd:]
        out = []
        for i in range(self._nd):
            base = (input.shape[2 + i - (input.ndim == self._nd + 1)] - 1) * self.stride[i] \
                - 2 * self.padding[i] + self.dilation[i] * (self.kernel_size[i] - 1) + 1
            extra = size[i] - base
            if not 0 <= extra < max(self.stride[i], self.dilation[i]):
                raise ValueError(f"requested an output size of {size}, but valid sizes are "
                                 f"{base} to {base + max(self.stride[i], self.dilation[i]) - 1}"
                                 f" in dim {i}")
            out.append(extra)
        return tuple(out)


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution (``torch.nn.ConvTranspose2d``)."""

    _nd = 2

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        return C.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._out_pad(input, output_size), self.groups,
                                  self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution (``torch.nn.ConvTranspose1d``)."""

    _nd = 1

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        return C.conv_transpose1d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._out_pad(input, output_size), self.groups,
                                  self.dilation)
