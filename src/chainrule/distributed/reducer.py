"""The bucketed gradient allreduce behind ``nn.parallel.DistributedDataParallel``.

The parameters are laid out, last first (the order in which backward finishes them), in flat
buckets of at most ``bucket_cap_mb`` MB, one dtype per bucket (float32 for a float32 model; a float64
model gets float64 buckets, so its gradients are not rounded). Each parameter carries a
post-accumulate-grad hook: when backward has finished its gradient, the hook copies it into its slot
of the bucket. When a bucket is full, its non-blocking ``Iallreduce`` (a sum) starts at once, while
backward goes on with the layers below, so communication overlaps computation. Buckets start in
index order on every rank (MPI requires collectives in the same order everywhere). When the last
bucket has started, the reducer waits for all of them (through the group's watchdog), divides by the
world size and writes the averages back into every ``.grad``.
"""

from __future__ import annotations

import json

import numpy as np

from ..autograd import register_post_accumulate_grad_hook
from ..tensor import Tensor
from .process_group import DistributedError, ProcessGroup

_MAX_DIMS = 8


class _Bucket:
    __slots__ = ("index", "flat", "params", "slots", "remaining", "request")

    def __init__(self, index: int, params: list, dtype: np.dtype):
        self.index = index
        self.params = params
        self.slots = []
        offset = 0
        for p in params:
            self.slots.append((offset, p._data.size))
            offset += p._data.size
        self.flat = np.zeros(offset, dtype=dtype)
        self.remaining = len(params)
        self.request = None


def plan_buckets(params: list, cap_bytes: int) -> list[list]:
    """Group ``params`` (in the order given) into runs of one dtype of at most ``cap_bytes`` each;
    a parameter larger than the cap gets a bucket of its own."""
    buckets: list[list] = []
    open_by_dtype: dict = {}
    for p in params:
        dt = p._data.dtype
        nbytes = p._data.nbytes
        current = open_by_dtype.get(dt)
        if current is None or (current[1] + nbytes > cap_bytes and current[0]):
            current = [[], 0]
            open_by_dtype[dt] = current
            buckets.append(current[0])
        current[0].append(p)
        current[1] += nbytes
    return buckets


class Reducer:
    """Average the gradients of ``params`` over ``group`` during backward (see the module docstring)."""

    def __init__(self, named_params: list[tuple[str, Tensor]], group: ProcessGroup, bucket_cap_mb: float = 25):
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb!r}")
        self.group = group
        self.names = {id(p): name for name, p in named_params}
        params = [p for _, p in named_params]
        self.buckets = [
            _Bucket(i, ps, ps[0]._data.dtype)
            for i, ps in enumerate(plan_buckets(params[::-1], int(bucket_cap_mb * 2**20)))
        ]
        self.where = {}
        for b in self.buckets:
            for p, (offset, size) in zip(b.params, b.slots):
                self.where[id(p)] = (b, offset, size)
        self.enabled = True
        self.next_bucket = 0
        self.fired: set = set()  # ids of the parameters whose gradient this backward has delivered
        self.handles = []
        if group.size > 1:
            self.handles = [register_post_accumulate_grad_hook(p, self._grad_ready) for p in params]

    def remove_hooks(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    # ---- during backward ------------------------------------------------------------------------
    def _grad_ready(self, p: Tensor) -> None:
        if not self.enabled:
            return
        bucket, offset, size = self.where[id(p)]
        bucket.flat[offset : offset + size] = p.grad._data.reshape(-1)
        if id(p) in self.fired:  # a second backward before the reduction finished: keep the newer grad
            return
        self.fired.add(id(p))
        bucket.remaining -= 1
        if bucket.remaining:
            return
        buckets = self.buckets
        MPI = self.group.MPI
        while self.next_bucket < len(buckets) and buckets[self.next_bucket].remaining == 0:
            b = buckets[self.next_bucket]
            b.request = self.group.comm.Iallreduce(MPI.IN_PLACE, b.flat, op=MPI.SUM)
            self.next_bucket += 1
        if self.next_bucket == len(buckets):
            self._finish()
        else:  # MPICH advances non-blocking collectives inside MPI calls: give it a turn
            self.group.test([b.request for b in buckets[: self.next_bucket]])

    def _finish(self) -> None:
        requests = [b.request for b in self.buckets]
        self.group.wait(requests, f"DistributedDataParallel gradient allreduce ({len(self.buckets)} buckets)")
        scale = 1.0 / self.group.size
        for b in self.buckets:
            b.flat *= scale
            for p, (offset, size) in zip(b.params, b.slots):
                g = p.grad._data
                avg = b.flat[offset : offset + size].reshape(g.shape)
                if g.flags.writeable and g.dtype == avg.dtype:
                    g[...] = avg
                else:
                    p.grad = Tensor._wrap(avg.astype(g.dtype, copy=True))
            b.remaining = len(b.params)
            b.request = None
        self.next_bucket = 0
        self.fired.clear()

    # ---- between steps ----------------------------------------------------------------------------
    def check_idle(self) -> None:
        """Refuse to start a forward while the previous backward left some gradients unreduced (a
        parameter that took no part in the loss: every rank would wait for it forever)."""
        if self.group.size == 1:
            return
        if not self.fired:
            return
        missing = [name for key, name in self.names.items() if key not in self.fired]
        raise DistributedError(
            f"DistributedDataParallel: {self.group.where()}: the last backward did not produce gradients for "
            f"parameters {missing[:8]}{' ...' if len(missing) > 8 else ''}, so their allreduce never finished; "
            "every parameter must take part in the loss (or set requires_grad=False on the unused ones "
            "before wrapping)"
        )


def _layout(named: list[tuple[str, Tensor]]) -> list:
    return [[name, list(t._data.shape), t._data.dtype.str] for name, t in named]


def check_same_model(group: ProcessGroup, named: list[tuple[str, Tensor]], what: str) -> None:
    """Raise on every rank, naming the first parameter or buffer whose name, shape or dtype differs
    from rank 0's."""
    if group.size == 1:
        return
    mine = _layout(named)
    text = json.dumps(mine).encode()
    length = np.array([len(text)], dtype=np.int64)
    group.wait([group.comm.Ibcast(length, root=0)], f"{what} (model check)")
    buf = np.frombuffer(bytearray(text), dtype=np.uint8) if group.rank == 0 else np.empty(int(length[0]), np.uint8)
    group.wait([group.comm.Ibcast(buf, root=0)], f"{what} (model check)")
    reference = json.loads(buf.tobytes().decode()) if group.rank else mine
    report = np.full(3 + _MAX_DIMS, -1, dtype=np.int64)  # [index, kind, ndim, dims...]
    for i in range(max(len(mine), len(reference))):
        if i >= len(mine) or i >= len(reference):
            report[:2] = i, 1
            report[2] = len(mine)
            break
        if mine[i] != reference[i]:
            report[:3] = i, 2, len(mine[i][1])
            dims = mine[i][1][:_MAX_DIMS]
            report[3 : 3 + len(dims)] = dims
            break
    every = np.empty((group.size, report.size), dtype=np.int64)
    group.wait([group.comm.Iallgather(report, every)], f"{what} (model check)")
    bad = [r for r in range(group.size) if every[r, 0] >= 0]
    if not bad:
        return
    r = bad[0]
    i, kind = int(every[r, 0]), int(every[r, 1])
    if kind == 1:
        detail = f"rank {r} has {int(every[r, 2])} parameters and buffers, rank 0 has {len(reference)}"
    else:
        name, shape, dtype = reference[i]
        theirs = tuple(int(d) for d in every[r, 3 : 3 + min(int(every[r, 2]), _MAX_DIMS)])
        if r == group.rank:
            detail = f"{mine[i][0]!r} has shape {tuple(mine[i][1])} {np.dtype(mine[i][2]).name} on rank {r}"
        else:
            detail = f"rank {r}'s entry {i} has shape {theirs}"
        detail += f", but rank 0's {name!r} has shape {tuple(shape)} {np.dtype(dtype).name}"
    raise DistributedError(f"{what}: {group.where()}: the model differs across ranks: {detail}")
