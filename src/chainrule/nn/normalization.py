"""Batch normalization layers: BatchNorm1d (N, C) / (N, C, L) and BatchNorm2d (N, C, H, W).

As in PyTorch: ``weight`` (gamma, init 1) and ``bias`` (beta, init 0) when ``affine``; buffers
``running_mean`` (init 0), ``running_var`` (init 1) and ``num_batches_tracked`` when
``track_running_stats``. In training mode the batch's statistics normalise and the running ones move
towards them by ``momentum`` (``None``: a cumulative average over all batches seen); in ``eval()``
mode the running statistics normalise.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..ops.normalization import batch_norm
from ..tensor import Tensor
from .config import make_config, register_config
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    _dims: tuple = (2, 3)
    _layout = "(N, C) or (N, C, L)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        layer = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(f"{layer}: num_features must be a positive integer, got {num_features!r}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{layer}: momentum must be between 0 and 1 (or None), got {momentum!r}")
        if eps <= 0:
            raise ValueError(f"{layer}: eps must be positive, got {eps!r}")
        if device not in (None, "cpu"):
            raise RuntimeError(f"{layer}: device {device!r} is not available; chainrule runs on the CPU")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dtype = backend.as_dtype(dtype) or backend.get_default_dtype()
        if self.affine:
            self.weight = Parameter(backend.full(self.num_features, 1, dtype))
            self.bias = Parameter(backend.full(self.num_features, 0, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", Tensor._wrap(backend.full(self.num_features, 0, dtype)))
            self.register_buffer("running_var", Tensor._wrap(backend.full(self.num_features, 1, dtype)))
            self.register_buffer("num_batches_tracked", Tensor._wrap(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            self.weight._data[...] = 1
            self.bias._data[...] = 0

    def forward(self, input: Tensor) -> Tensor:
        x = input if isinstance(input, Tensor) else Tensor(input)
        name = getattr(self, "layer_name", type(self).__name__)
        if x.ndim not in self._dims:
            raise ValueError(f"{name} ({self.num_features} features): expected a "
                             f"{' or '.join(f'{d}-D' for d in self._dims)} input {self._layout}, got a "
                             f"{x.ndim}-D input of shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected input with {self.num_features} channels (features), got "
                             f"{x.shape[1]} (input of shape {tuple(x.shape)})")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data[...] += 1
            if self.momentum is None:  # cumulative moving average: the plain mean of all batches so far
                factor = 1.0 / float(self.num_batches_tracked._data)
        use_batch_stats = self.training or self.running_mean is None
        keep = not self.training or self.track_running_stats
        return batch_norm(x, self.running_mean if keep else None, self.running_var if keep else None,
                          self.weight, self.bias, use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")

    def get_config(self) -> dict:
        return make_config(self, num_features=self.num_features, eps=self.eps, momentum=self.momentum,
                           affine=self.affine, track_running_stats=self.track_running_stats)


@register_config
class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs, one mean and variance per feature C.

    >>> bn = cr.nn.BatchNorm1d(3)
    >>> y = bn(cr.randn(8, 3))
    >>> sorted(name for name, _ in bn.state_dict().items())
    ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight']
    """

    _dims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


@register_config
class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, one mean and variance per channel C.

    >>> cr.nn.BatchNorm2d(16)(cr.randn(4, 16, 5, 5)).shape
    chainrule.Size([4, 16, 5, 5])
    """

    _dims = (4,)
    _layout = "(N, C, H, W)"


# ---- layer and group normalization: statistics per sample, composed from differentiable ops ----------
def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` dimensions of each sample, then scale and shift:
    y = (x - mean) / sqrt(var + eps) * weight + bias, with the biased variance.

    >>> import chainrule.nn.functional as F
    >>> F.layer_norm(cr.tensor([[1.0, 3.0]]), (2,)).round().tolist()
    [[-1.0, 1.0]]
    """
    x = input if isinstance(input, Tensor) else Tensor(input)
    shape = _normalized_shape(normalized_shape, "layer_norm")
    k = len(shape)
    if tuple(x.shape[x.ndim - k:]) != shape or x.ndim < k:
        raise ValueError(f"layer_norm: expected input of shape (*, {', '.join(map(str, shape))}) to match "
                         f"normalized_shape {shape}, got {tuple(x.shape)}")
    dims = tuple(range(x.ndim - k, x.ndim))
    mean = x.mean(dim=dims, keepdim=True)
    centred = x - mean
    var = (centred * centred).mean(dim=dims, keepdim=True)
    out = centred * (var + eps).rsqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Split the C channels of (N, C, *) into ``num_groups`` groups and normalise each group of each sample
    over its channels and positions; then a per-channel scale and shift."""
    x = input if isinstance(input, Tensor) else Tensor(input)
    if x.ndim < 2 or x.shape[1] % num_groups:
        raise ValueError(f"group_norm: expected input of shape (N, C, *) with C divisible by num_groups="
                         f"{num_groups}, got {tuple(x.shape)}")
    n, c = x.shape[0], x.shape[1]
    grouped = x.reshape((n, num_groups, -1))
    mean = grouped.mean(dim=2, keepdim=True)
    centred = grouped - mean
    var = (centred * centred).mean(dim=2, keepdim=True)
    out = (centred * (var + eps).rsqrt()).reshape(tuple(x.shape))
    channel = (1, c) + (1,) * (x.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(channel)
    if bias is not None:
        out = out + bias.reshape(channel)
    return out


def _reset_affine(layer: Module) -> None:
    """The identity affine map after normalizing: weight 1, bias 0 (either may be absent)."""
    if layer.weight is not None:
        layer.weight._data[...] = 1
    if layer.bias is not None:
        layer.bias._data[...] = 0


def _normalized_shape(normalized_shape, op: str) -> tuple:
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
    if not shape or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in shape):
        raise ValueError(f"{op}: normalized_shape must be a positive integer or a non-empty tuple of them, "
                         f"got {normalized_shape!r}")
    return tuple(int(n) for n in shape)


@register_config
class LayerNorm(Module):
    """Layer norm over the last dimensions ``normalized_shape`` of each sample (PyTorch's ``nn.LayerNorm``).

    ``weight`` (init 1) and ``bias`` (init 0) have shape ``normalized_shape`` when
    ``elementwise_affine`` (``bias=False`` drops the shift). No running statistics: train and eval agree.

    >>> ln = cr.nn.LayerNorm(4)
    >>> ln(cr.randn(2, 3, 4)).shape
    chainrule.Size([2, 3, 4])
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape, "LayerNorm")
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps!r}")
        if device not in (None, "cpu") and str(device) != "cpu":
            raise RuntimeError(f"LayerNorm: device {device!r} is not available; chainrule runs on the CPU")
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        dtype = backend.as_dtype(dtype) or backend.get_default_dtype()
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        x = input if isinstance(input, Tensor) else Tensor(input)
        k = len(self.normalized_shape)
        if x.ndim < k or tuple(x.shape[x.ndim - k:]) != self.normalized_shape:
            raise ValueError(f"{self.layer_name} ({self.extra_repr()}): expected input of shape "
                             f"(*, {', '.join(map(str, self.normalized_shape))}), got {tuple(x.shape)}")
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")

    def get_config(self) -> dict:
        return make_config(self, normalized_shape=list(self.normalized_shape), eps=self.eps,
                           elementwise_affine=self.elementwise_affine, bias=self.bias is not None)


@register_config
class GroupNorm(Module):
    """Group norm (PyTorch's ``nn.GroupNorm``): the C channels of (N, C, *) in ``num_groups`` groups, each
    normalised per sample; ``weight`` (init 1) and ``bias`` (init 0) per channel when ``affine``
    (``bias=False`` drops the shift).

    >>> cr.nn.GroupNorm(2, 4)(cr.randn(3, 4, 5)).shape
    chainrule.Size([3, 4, 5])
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        for name, value in (("num_groups", num_groups), ("num_channels", num_channels)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"GroupNorm: {name} must be a positive integer, got {value!r}")
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                             f"({num_groups})")
        if not eps > 0:
            raise ValueError(f"GroupNorm: eps must be positive, got {eps!r}")
        if device not in (None, "cpu") and str(device) != "cpu":
            raise RuntimeError(f"GroupNorm: device {device!r} is not available; chainrule runs on the CPU")
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine = float(eps), bool(affine)
        dtype = backend.as_dtype(dtype) or backend.get_default_dtype()
        if self.affine:
            self.weight = Parameter(np.ones(self.num_channels, dtype=dtype))
        else:
            self.register_parameter("weight", None)
        if self.affine and bias:
            self.bias = Parameter(np.zeros(self.num_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, input: Tensor) -> Tensor:
        x = input if isinstance(input, Tensor) else Tensor(input)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"{self.layer_name} ({self.extra_repr()}): expected input of shape "
                             f"(N, {self.num_channels}, *), got {tuple(x.shape)}")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")

    def get_config(self) -> dict:
        return make_config(self, num_groups=self.num_groups, num_channels=self.num_channels, eps=self.eps,
                           affine=self.affine, bias=self.bias is not None)
