"""Data-parallel training on MPI: the process group and collectives on Tensors.

Launch N copies of a script with ``mpiexec -n N python train.py`` (the ``mpich`` wheel of
``pip install 'chainrule[mpi]'`` ships ``mpiexec``), or ``chainrule train --nproc N``. Outside
``mpiexec`` the world is one process and every collective returns its input unchanged.

>>> import chainrule as cr
>>> cr.distributed.init()
ProcessGroup(rank=0, size=1, timeout=60s)
>>> t = cr.tensor([1.0, 2.0])
>>> cr.distributed.all_reduce(t, op="sum")
tensor([1., 2.])
"""

from .collectives import ReduceOp, all_gather, all_reduce, barrier, broadcast
from .process_group import (
    DistributedError,
    ProcessGroup,
    default_group,
    get_rank,
    get_world_size,
    init,
    is_initialized,
    launched_by_mpi,
)

__all__ = [
    "DistributedError",
    "ProcessGroup",
    "ReduceOp",
    "all_gather",
    "all_reduce",
    "barrier",
    "broadcast",
    "default_group",
    "get_rank",
    "get_world_size",
    "init",
    "is_initialized",
    "launched_by_mpi",
]
