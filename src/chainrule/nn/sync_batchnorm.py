"""SyncBatchNorm: batch norm whose batch statistics are taken over the batches of all ranks."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .module import Module
from .normalization import _BatchNorm


class SyncBatchNorm(_BatchNorm):
    """Batch norm over dim 1 of any (N, C, ...) input, with the mean and variance of the whole global
    batch: every rank's sums of x and x² are added up by an allreduce that backpropagates, so W ranks
    with batch B normalise (and train) exactly as one process with batch W x B. Outside training, or
    in a world of one, it is plain batch norm. ``SyncBatchNorm.convert_sync_batchnorm(model)`` swaps
    every BatchNorm of a model for one (sharing its parameters and buffers), as in PyTorch.

    >>> model = cr.nn.SyncBatchNorm.convert_sync_batchnorm(cr.nn.Sequential(cr.nn.Linear(4, 8), cr.nn.BatchNorm1d(8)))
    >>> type(model[1]).__name__
    'SyncBatchNorm'
    """

    _dims = (2, 3, 4, 5)
    _layout = "(N, C, ...)"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, process_group=None, device=None, dtype=None) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.__dict__["process_group"] = process_group

    def _group(self):
        from ..distributed.process_group import default_group

        return self.process_group or default_group()

    def forward(self, input: Tensor) -> Tensor:
        x = input if isinstance(input, Tensor) else Tensor(input)
        if not self.training or x.ndim not in self._dims or x.shape[1] != self.num_features:
            return super().forward(x)  # eval mode, or a bad shape: super() says what is wrong
        group = self._group()
        if group.size == 1:
            return super().forward(x)
        from ..distributed.collectives import all_reduce
        from ..distributed.functional import all_reduce_sum
        from ..ops.shape import cat

        c = self.num_features
        axes = (0, *range(2, x.ndim))
        count = Tensor._wrap(np.array([x._data.size // c], dtype=np.int64))
        all_reduce(count, group=group)
        n = int(count._data[0])
        if n <= 1:
            raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel over all ranks, got {n}")
        sums = all_reduce_sum(cat([x.sum(dim=axes), (x * x).sum(dim=axes)], 0), group)
        mean = sums[:c] / n
        var = sums[c:] / n - mean * mean  # the biased variance of the global batch
        shape = (1, c) + (1,) * (x.ndim - 2)
        y = (x - mean.reshape(shape)) / (var + self.eps).sqrt().reshape(shape)
        if self.affine:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        if self.track_running_stats:
            self.num_batches_tracked._data[...] += 1
            factor = (1.0 / float(self.num_batches_tracked._data) if self.momentum is None else self.momentum)
            for running, batch in ((self.running_mean, mean._data), (self.running_var, var._data * (n / (n - 1)))):
                running._data *= 1 - factor
                running._data += factor * batch.astype(running._data.dtype)
                running._version[0] += 1
        return y

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group=None) -> Module:
        """``module`` with every BatchNorm1d/2d replaced by a SyncBatchNorm holding the same parameters
        and buffers (a BatchNorm passed alone comes back converted)."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                       process_group)
            for name in ("weight", "bias"):
                if module._parameters.get(name) is not None:
                    sync._parameters[name] = module._parameters[name]
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                sync._buffers[name] = module._buffers.get(name)
            sync.train(module.training)
            return sync
        for name, child in list(module._modules.items()):
            if child is not None:
                converted = cls.convert_sync_batchnorm(child, process_group)
                if converted is not child:
                    module._modules[name] = converted
        return module
