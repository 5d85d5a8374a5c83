"""Collectives inside the graph: an allreduce that backpropagates (what SyncBatchNorm is built on)."""

from __future__ import annotations

import numpy as np

from ..ops.function import Function
from ..tensor import Tensor
from .process_group import ProcessGroup, default_group


class AllReduceSum(Function):
    """y = sum over ranks of x, the same on every rank. Each rank's loss depends on every rank's x
    through y, so the gradient of x on rank r is the sum over ranks of their upstream gradients:
    backward is again an allreduce sum."""

    __slots__ = ("group",)

    def __init__(self, group: ProcessGroup):
        self.group = group

    def forward(self, a):
        out = np.array(a, copy=True, order="C")
        g = self.group
        g.wait([g.comm.Iallreduce(g.MPI.IN_PLACE, out, op=g.MPI.SUM)], "all_reduce (inside the graph)")
        return out

    def backward(self, grad):
        return (AllReduceSum(self.group).apply(grad),)  # d/dx_r sum_k x_k, summed over the ranks' losses

    def backward_array(self, grad):
        return (self.forward(grad),)


def all_reduce_sum(x: Tensor, group: ProcessGroup | None = None) -> Tensor:
    """The sum of ``x`` over all ranks, as a new Tensor that gradients flow through (out of place).

    >>> total = cr.distributed.functional.all_reduce_sum(cr.ones(2, requires_grad=True))
    """
    g = group or default_group()
    if g.size == 1:
        return x
    return AllReduceSum(g).apply(x)
