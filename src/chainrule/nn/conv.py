"""Convolution layers (Conv1d, Conv2d) and channel-wise dropout (Dropout2d).

Names, argument names, weight shapes and default init are PyTorch's, so state dicts map one to one:
``weight`` is (out_channels, in_channels / groups, *kernel_size) and ``bias`` (out_channels,), both
drawn from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in_channels / groups * prod(kernel_size)
(``kaiming_uniform_(weight, a=sqrt(5))``).
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..ops.conv import _check_conv_input, _conv, _conv_padding, _positive, _tuple
from ..tensor import Tensor
from . import init
from .config import make_config, register_config
from .module import Module
from .parameter import Parameter


def _as_input(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


class _ConvNd(Module):
    """What Conv1d and Conv2d share: argument checks, parameters, init, repr and config."""

    _spatial = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None,
                 dtype=None) -> None:
        super().__init__()
        layer, n = type(self).__name__, self._spatial
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{layer}: in_channels ({in_channels}) and out_channels ({out_channels}) must "
                             f"both be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"{layer}: padding_mode must be 'zeros' (the only mode supported), "
                             f"got {padding_mode!r}")
        if device not in (None, "cpu"):
            raise RuntimeError(f"{layer}: device {device!r} is not available; chainrule runs on the CPU")
        self.in_channels, self.out_channels, self.groups = int(in_channels), int(out_channels), int(groups)
        self.kernel_size = _positive(_tuple(kernel_size, n, "kernel_size", layer), "kernel_size", layer)
        self.stride = _positive(_tuple(stride, n, "stride", layer), "stride", layer)
        self.dilation = _positive(_tuple(dilation, n, "dilation", layer), "dilation", layer)
        _conv_padding(padding, self.kernel_size, self.dilation, self.stride, layer)  # validate
        self.padding = padding if isinstance(padding, str) else _tuple(padding, n, "padding", layer)
        self.padding_mode = padding_mode
        dtype = backend.as_dtype(dtype) or backend.get_default_dtype()
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(backend.empty(shape, dtype))
        if bias:
            self.bias = Parameter(backend.empty(self.out_channels, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """weight ~ kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)); bias the same."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        x = _as_input(input)
        name = self._name()  # errors name the layer, e.g. "Conv2d layer 'conv1' (1, 6, ...)"
        _check_conv_input(x, self.weight, self.groups, name, self._spatial)
        return _conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                     self._spatial, name)

    def _name(self) -> str:
        base = getattr(self, "layer_name", type(self).__name__)
        return f"{base} ({self.extra_repr()})"

    def extra_repr(self) -> str:
        n = self._spatial
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding!r}" if isinstance(self.padding, str) else f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s

    def get_config(self) -> dict:
        return make_config(
            self, in_channels=self.in_channels, out_channels=self.out_channels,
            kernel_size=list(self.kernel_size), stride=list(self.stride), padding=_jsonable(self.padding),
            dilation=list(self.dilation), groups=self.groups, bias=self.bias is not None,
            padding_mode=self.padding_mode,
        )


@register_config
class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) inputs, giving (N, C_out, H_out, W_out).

    H_out = floor((H + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1 (same for W);
    ``padding`` may be an int, a pair, ``'valid'`` or ``'same'`` (stride 1 only). ``groups`` splits
    the channels into independent convolutions (``groups == in_channels``: depthwise).

    >>> conv = cr.nn.Conv2d(1, 6, kernel_size=5)
    >>> conv.weight.shape, conv(cr.zeros(2, 1, 28, 28)).shape
    (chainrule.Size([6, 1, 5, 5]), chainrule.Size([2, 6, 24, 24]))
    """

    _spatial = 2


@register_config
class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) inputs, giving (N, C_out, L_out); arguments as Conv2d.

    >>> cr.nn.Conv1d(3, 4, kernel_size=3, padding="same")(cr.zeros(2, 3, 10)).shape
    chainrule.Size([2, 4, 10])
    """

    _spatial = 1


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero whole channels with probability p (one draw per sample and channel) and scale the rest
    by 1/(1-p). For (N, C, H, W) inputs, or unbatched (C, H, W). Identity when not training."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: probability p must be between 0 and 1, got {p!r}")
    x = _as_input(input)
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got a "
                         f"{x.ndim}-D input of shape {tuple(x.shape)}")
    if not training or p == 0.0:
        return x
    dtype = x._data.dtype
    if p == 1.0:
        return x * Tensor._wrap(np.zeros((), dtype=dtype))
    keep = backend.generator().random(x.shape[:-2] + (1, 1)) >= p
    mask = keep.astype(dtype)
    mask *= dtype.type(1.0 / (1.0 - p))
    return x * Tensor._wrap(mask)


@register_config
class Dropout2d(Module):
    """Channel-wise dropout for feature maps: during training each channel of each sample is zeroed
    with probability p (the rest scaled by 1/(1-p)); identity in ``eval()`` mode."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout2d: probability p must be between 0 and 1, got {p!r}")
        self.p = float(p)
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return dropout2d(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    def get_config(self) -> dict:
        return make_config(self, p=self.p)
