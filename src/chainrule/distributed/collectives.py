"""Collectives on Tensors, as in ``torch.distributed``: all_reduce, broadcast, all_gather, barrier.

Each runs mpi4py's upper-case (buffer) method on the tensor's ndarray, non-blocking, and waits through
the group's watchdog (:meth:`ProcessGroup.wait`), so a lost peer is an error, never a hang. Before
the data moves, the ranks compare shape and dtype (one small allgather): a rank that brings another
shape gets an error naming every rank's shape instead of silently reading past a buffer. The
gradient buckets of DistributedDataParallel skip that check: their layout is checked once, when the
wrapper is built.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .process_group import DistributedError, ProcessGroup, default_group


class ReduceOp:
    """The reductions of :func:`all_reduce` (the strings work too)."""

    SUM = "sum"
    MEAN = "mean"
    AVG = "mean"
    MAX = "max"
    MIN = "min"


_OPS = ("sum", "mean", "max", "min")
_SIGNATURE_DIMS = 8


def _array(tensor, what: str) -> np.ndarray:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{what}: expected a Tensor, got {type(tensor).__name__}")
    return tensor._data


def _signature(a: np.ndarray) -> np.ndarray:
    sig = np.full(2 + _SIGNATURE_DIMS, -1, dtype=np.int64)
    sig[0], sig[1] = a.dtype.num, a.ndim
    dims = a.shape[:_SIGNATURE_DIMS]
    sig[2 : 2 + len(dims)] = dims
    if a.ndim > _SIGNATURE_DIMS:
        sig[-1] = a.size
    return sig


def check_same_layout(group: ProcessGroup, a: np.ndarray, what: str) -> None:
    """Raise on every rank when the ranks' arrays differ in shape or dtype (the error lists them)."""
    if group.size == 1:
        return
    sig = _signature(a)
    every = np.empty((group.size, sig.size), dtype=np.int64)
    group.wait([group.comm.Iallgather(sig, every)], f"{what} (shape check)")
    if (every == sig).all():
        return
    described = []
    for r, s in enumerate(every):
        ndim = int(s[1])
        shape = tuple(int(d) for d in s[2 : 2 + min(ndim, _SIGNATURE_DIMS)])
        described.append(f"rank {r}: {shape} {_dtype_name(int(s[0]))}")
    raise DistributedError(
        f"{what}: {group.where()}: the ranks passed tensors of different shapes or dtypes ({'; '.join(described)})"
    )


def _dtype_name(num: int) -> str:
    for dt in (np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_):
        if np.dtype(dt).num == num:
            return np.dtype(dt).name
    return f"dtype#{num}"


def _in_place(tensor: Tensor, run) -> Tensor:
    """Run ``run(buffer)`` on a contiguous writeable buffer of the tensor and keep the result in it."""
    a = tensor._data
    if a.flags.c_contiguous and a.flags.writeable:
        run(a)
    else:
        buf = np.ascontiguousarray(a).copy()
        run(buf)
        tensor._data = buf if not a.flags.writeable else a
        if a.flags.writeable:
            np.copyto(a, buf)
    tensor._version[0] += 1
    return tensor


def all_reduce(tensor: Tensor, op: str = "sum", group: ProcessGroup | None = None) -> Tensor:
    """Reduce ``tensor`` over all ranks, in place: every rank ends with the sum (or mean, max, min).

    >>> t = cr.tensor([1.0, 2.0])
    >>> cr.distributed.all_reduce(t, op="mean")   # a world of one: unchanged
    tensor([1., 2.])
    """
    a = _array(tensor, "all_reduce")
    if op not in _OPS:
        raise ValueError(f"all_reduce: op must be one of {', '.join(_OPS)}, got {op!r}")
    if op == "mean" and a.dtype.kind != "f":
        raise TypeError(f"all_reduce: op='mean' needs a floating-point tensor, got {a.dtype}")
    g = group or default_group()
    if g.size == 1:
        return tensor
    check_same_layout(g, a, "all_reduce")
    MPI = g.MPI
    mpi_op = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}[op]

    def run(buf):
        g.wait([g.comm.Iallreduce(MPI.IN_PLACE, buf, op=mpi_op)], f"all_reduce(op={op!r})")
        if op == "mean":
            buf /= g.size

    return _in_place(tensor, run)


def broadcast(tensor: Tensor, src: int = 0, group: ProcessGroup | None = None) -> Tensor:
    """Overwrite ``tensor`` on every rank with rank ``src``'s values, in place."""
    a = _array(tensor, "broadcast")
    g = group or default_group()
    if not 0 <= src < g.size:
        raise ValueError(f"broadcast: {g.where()}: src must be a rank in 0..{g.size - 1}, got {src}")
    if g.size == 1:
        return tensor
    check_same_layout(g, a, "broadcast")
    return _in_place(tensor, lambda buf: g.wait([g.comm.Ibcast(buf, root=src)], f"broadcast(src={src})"))


def all_gather(tensor_list: list | None, tensor: Tensor, group: ProcessGroup | None = None) -> list:
    """Every rank's ``tensor``, in rank order: fills ``tensor_list`` in place (PyTorch's signature)
    or, when it is None, returns a new list."""
    a = _array(tensor, "all_gather")
    g = group or default_group()
    if tensor_list is not None and len(tensor_list) != g.size:
        raise ValueError(f"all_gather: {g.where()}: tensor_list has {len(tensor_list)} entries, the world {g.size}")
    if g.size == 1:
        out = np.array(a, copy=True)[None]
    else:
        check_same_layout(g, a, "all_gather")
        out = np.empty((g.size, *a.shape), dtype=a.dtype)
        g.wait([g.comm.Iallgather(np.ascontiguousarray(a), out)], "all_gather")
    if tensor_list is None:
        return [Tensor._wrap(out[r]) for r in range(g.size)]
    for r, t in enumerate(tensor_list):
        if not isinstance(t, Tensor) or t.shape != a.shape:
            raise ValueError(f"all_gather: {g.where()}: tensor_list[{r}] must be a Tensor of shape {a.shape}")
        np.copyto(t._data, out[r], casting="unsafe")
        t._version[0] += 1
    return tensor_list


def barrier(group: ProcessGroup | None = None) -> None:
    """Wait until every rank has reached this point (bounded by the group's timeout)."""
    g = group or default_group()
    if g.size > 1:
        g.wait([g.comm.Ibarrier()], "barrier")
