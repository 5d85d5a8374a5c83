"""DistributedDataParallel: one model replica per rank, gradients averaged during backward."""

from __future__ import annotations

import contextlib
from collections import OrderedDict

import numpy as np

from .module import Module


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over the ranks of an MPI job, as PyTorch's DDP.

    At construction rank 0's parameters and buffers are copied to every rank (a rank whose model has
    another shape gets an error naming the parameter). During ``backward()`` the gradients are
    averaged over all ranks in flat buckets of ``bucket_cap_mb`` MB whose non-blocking allreduce
    starts as soon as each bucket's gradients are complete, so the optimizer step sees the same
    averaged gradients, and keeps the parameters bit-identical, on every rank. ``no_sync()`` skips the
    averaging (gradient accumulation); ``.module`` is the wrapped model, and ``state_dict()`` is the
    wrapped model's, so it loads into the bare model. With ``broadcast_buffers`` rank 0's buffers
    (batch-norm statistics) are copied to all ranks at every forward in training mode.

    >>> model = cr.nn.parallel.DistributedDataParallel(cr.nn.Linear(4, 2))   # after cr.distributed.init()
    >>> loss = model(cr.randn(8, 4)).sum()
    >>> loss.backward()                       # .grad now holds the average over the ranks
    """

    def __init__(self, module: Module, bucket_cap_mb: float = 25, broadcast_buffers: bool = True,
                 process_group=None) -> None:
        from ..distributed.process_group import default_group
        from ..distributed.reducer import Reducer, check_same_model

        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a Module, got {type(module).__name__}")
        super().__init__()
        self.module = module
        group = process_group or default_group()
        self.__dict__["_group"] = group
        self.broadcast_buffers = bool(broadcast_buffers)
        named = list(module.named_parameters()) + list(module.named_buffers())
        check_same_model(group, named, "DistributedDataParallel")
        self._broadcast([t for _, t in named], "DistributedDataParallel (copying rank 0's model)")
        trainable = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        self.__dict__["reducer"] = Reducer(trainable, group, bucket_cap_mb)

    def _broadcast(self, tensors: list, what: str) -> None:
        group = self._group
        if group.size == 1 or not tensors:
            return
        buffers = []
        for t in tensors:
            a = t._data
            buffers.append(a if a.flags.c_contiguous and a.flags.writeable else np.ascontiguousarray(a).copy())
        group.wait([group.comm.Ibcast(a, root=0) for a in buffers], what)
        for t, a in zip(tensors, buffers):
            if a is t._data:
                pass
            elif t._data.flags.writeable:
                np.copyto(t._data, a)
            else:
                t._data = a
            t._version[0] += 1

    def forward(self, *args, **kwargs):
        self.reducer.check_idle()
        if self.broadcast_buffers and self.training:
            buffers = [b for b in self.module.buffers() if b is not None]
            if buffers:
                self._broadcast(buffers, "DistributedDataParallel (broadcasting buffers)")
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Within this block, backward accumulates local gradients without averaging them; the first
        backward after it averages the accumulated sum.

        >>> with ddp.no_sync():
        ...     ddp(x1).sum().backward()
        >>> ddp(x2).sum().backward()          # averages the grads of both micro-batches
        """
        previous = self.reducer.enabled
        self.reducer.enabled = False
        try:
            yield
        finally:
            self.reducer.enabled = previous

    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """The wrapped model's state dict (no ``module.`` prefix: it loads into the bare model)."""
        return self.module.state_dict(prefix, keep_vars)

    def load_state_dict(self, state_dict, strict: bool = True):
        """Load into the wrapped model; keys saved from PyTorch's DDP (``module.`` prefix) work too."""
        keys = list(state_dict)
        if keys and all(k.startswith("module.") for k in keys):
            state_dict = OrderedDict((k[len("module."):], v) for k, v in state_dict.items())
        return self.module.load_state_dict(state_dict, strict)

    def extra_repr(self) -> str:
        g = self._group
        return f"rank={g.rank}, world_size={g.size}, buckets={len(self.reducer.buckets)}"
