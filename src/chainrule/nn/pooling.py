"""Pooling layers: MaxPool1d/2d, AvgPool1d/2d, AdaptiveAvgPool1d/2d (PyTorch's names and arguments).

Pooling layers have no parameters; the work is in ``ops/pool.py``.
"""

from __future__ import annotations

from ..ops.pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
)
from ..tensor import Tensor
from .config import make_config, register_config
from .module import Module


def _as_input(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


def _arg(value):
    """Window arguments as given (int or tuple); lists (from a JSON config) become tuples."""
    return tuple(value) if isinstance(value, list) else value


def _named(module: Module, fn, *args, **kwargs) -> Tensor:
    """Call the functional form; its errors name the layer instead of the function."""
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        name = getattr(module, "layer_name", type(module).__name__)
        msg = str(e)
        raise ValueError(f"{name}: {msg.split(': ', 1)[1] if ': ' in msg else msg}") from None


class _MaxPoolNd(Module):
    _fn = staticmethod(max_pool2d)

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = _arg(kernel_size)
        self.stride = self.kernel_size if stride is None else _arg(stride)
        self.padding, self.dilation = _arg(padding), _arg(dilation)
        self.return_indices, self.ceil_mode = return_indices, bool(ceil_mode)

    def forward(self, input: Tensor) -> Tensor:
        return _named(self, self._fn, _as_input(input), self.kernel_size, self.stride, self.padding,
                      self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")

    def get_config(self) -> dict:
        return make_config(self, kernel_size=_jsonable(self.kernel_size), stride=_jsonable(self.stride),
                           padding=_jsonable(self.padding), dilation=_jsonable(self.dilation),
                           return_indices=self.return_indices, ceil_mode=self.ceil_mode)


@register_config
class MaxPool2d(_MaxPoolNd):
    """Maximum over each window of (N, C, H, W) or (C, H, W) inputs; stride defaults to kernel_size.

    >>> cr.nn.MaxPool2d(2)(cr.zeros(1, 6, 24, 24)).shape
    chainrule.Size([1, 6, 12, 12])
    """

    _fn = staticmethod(max_pool2d)


@register_config
class MaxPool1d(_MaxPoolNd):
    """Maximum over each window of (N, C, L) or (C, L) inputs; stride defaults to kernel_size."""

    _fn = staticmethod(max_pool1d)


@register_config
class AvgPool2d(Module):
    """Mean over each window of (N, C, H, W) or (C, H, W) inputs; stride defaults to kernel_size.
    With ``count_include_pad`` (the default) zero padding counts towards each mean."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__()
        self.kernel_size = _arg(kernel_size)
        self.stride = self.kernel_size if stride is None else _arg(stride)
        self.padding, self.ceil_mode = _arg(padding), bool(ceil_mode)
        self.count_include_pad, self.divisor_override = bool(count_include_pad), divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return _named(self, avg_pool2d, _as_input(input), self.kernel_size, self.stride, self.padding,
                      self.ceil_mode, self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def get_config(self) -> dict:
        return make_config(self, kernel_size=_jsonable(self.kernel_size), stride=_jsonable(self.stride),
                           padding=_jsonable(self.padding), ceil_mode=self.ceil_mode,
                           count_include_pad=self.count_include_pad, divisor_override=self.divisor_override)


@register_config
class AvgPool1d(Module):
    """Mean over each window of (N, C, L) or (C, L) inputs; stride defaults to kernel_size."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__()
        self.kernel_size = _arg(kernel_size)
        self.stride = self.kernel_size if stride is None else _arg(stride)
        self.padding, self.ceil_mode = _arg(padding), bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, input: Tensor) -> Tensor:
        return _named(self, avg_pool1d, _as_input(input), self.kernel_size, self.stride, self.padding,
                      self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def get_config(self) -> dict:
        return make_config(self, kernel_size=_jsonable(self.kernel_size), stride=_jsonable(self.stride),
                           padding=_jsonable(self.padding), ceil_mode=self.ceil_mode,
                           count_include_pad=self.count_include_pad)


@register_config
class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size whatever the input size (``1``: global average pooling).

    >>> cr.nn.AdaptiveAvgPool2d((2, 2))(cr.zeros(1, 8, 7, 9)).shape
    chainrule.Size([1, 8, 2, 2])
    """

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = _arg(output_size)

    def forward(self, input: Tensor) -> Tensor:
        return _named(self, adaptive_avg_pool2d, _as_input(input), self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def get_config(self) -> dict:
        return make_config(self, output_size=_jsonable(self.output_size))


@register_config
class AdaptiveAvgPool1d(Module):
    """Average pooling of (N, C, L) inputs to a fixed length."""

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return _named(self, adaptive_avg_pool1d, _as_input(input), self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def get_config(self) -> dict:
        return make_config(self, output_size=self.output_size)
