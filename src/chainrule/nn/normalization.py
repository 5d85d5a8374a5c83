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
    (4, 16, 5, 5)
    """

    _dims = (4,)
    _layout = "(N, C, H, W)"
