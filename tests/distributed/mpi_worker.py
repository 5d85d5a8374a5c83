"""Run by tests/distributed/test_*.py under ``mpiexec -n N python mpi_worker.py SCENARIO OUTDIR``.

Each scenario writes what it saw to OUTDIR/rank<R>.npz (arrays) or prints one line the test reads.
``reference`` runs without mpiexec: one process, twice the batch, the same samples.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import time

import numpy as np

import chainrule as cr
import chainrule.distributed as dist

B = 8  # per-rank batch
STEPS = 20


def build(kind: str):
    cr.manual_seed(0)
    if kind == "mlp":
        model = cr.nn.Sequential(cr.nn.Linear(6, 16), cr.nn.Tanh(), cr.nn.Linear(16, 12), cr.nn.ReLU(),
                                 cr.nn.Linear(12, 3))
    elif kind == "cnn_bn":
        model = cr.nn.Sequential(cr.nn.Conv2d(1, 4, 3, padding=1), cr.nn.BatchNorm2d(4), cr.nn.ReLU(),
                                 cr.nn.MaxPool2d(2), cr.nn.Flatten(), cr.nn.Linear(4 * 4 * 4, 8),
                                 cr.nn.BatchNorm1d(8), cr.nn.Tanh(), cr.nn.Linear(8, 3))
    else:
        model = cr.nn.Sequential(cr.nn.Conv2d(1, 4, 3, padding=1), cr.nn.ReLU(), cr.nn.MaxPool2d(2),
                                 cr.nn.Conv2d(4, 6, 3), cr.nn.Tanh(), cr.nn.Flatten(), cr.nn.Linear(6 * 2 * 2, 3))
    return model.double()


def samples(kind: str, n: int):
    rng = np.random.default_rng(42)
    x = rng.standard_normal((n, 6) if kind == "mlp" else (n, 1, 8, 8)) + 0.5
    y = rng.integers(0, 3, n)
    return x, y


def optimizer(name: str, params):
    if name == "sgd":
        return cr.optim.SGD(params, lr=0.1, momentum=0.9)
    return cr.optim.Adam(params, lr=0.01)


def digest(model) -> str:
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(np.ascontiguousarray(p._data).tobytes())
    return h.hexdigest()


def train(kind: str, opt_name: str, rank: int, world: int, wrap: bool, sync_bn: bool = False):
    """STEPS steps; step s reads samples [s*world*B, (s+1)*world*B), this rank the slice it owns."""
    model = build(kind)
    if sync_bn:
        model = cr.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    net = cr.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=0.001) if wrap else model
    opt = optimizer(opt_name, net.parameters())
    x, y = samples(kind, STEPS * 2 * B)
    loss_fn = cr.nn.CrossEntropyLoss()
    per = 2 * B // world
    digests = []
    for s in range(STEPS):
        lo = s * 2 * B + rank * per
        xb, yb = cr.tensor(x[lo : lo + per]), cr.tensor(y[lo : lo + per])
        opt.zero_grad()
        loss_fn(net(xb), yb).backward()
        opt.step()
        digests.append(digest(model))
    return model, digests


def save(outdir: str, rank: int, **arrays) -> None:
    np.savez(os.path.join(outdir, f"rank{rank}.npz"), **arrays)


def report(outdir: str, rank: int, line: str) -> None:
    """One line of text for the test, in a file per rank (the ranks' stdout would interleave)."""
    with open(os.path.join(outdir, f"rank{rank}.txt"), "a") as f:
        f.write(line + "\n")


def scenario_train(outdir: str, reference: bool) -> None:
    group = dist.init(timeout=30)
    rank, world = group.rank, (1 if reference else group.size)
    out = {}
    for kind in ("mlp", "cnn"):
        for opt_name in ("sgd", "adam"):
            model, digests = train(kind, opt_name, rank, world, wrap=not reference)
            for name, p in model.state_dict().items():
                out[f"{kind}/{opt_name}/{name}"] = p.numpy()
            out[f"{kind}/{opt_name}/digests"] = np.array(digests)
    save(outdir, rank, **out)


def scenario_syncbn(outdir: str, reference: bool = False) -> None:
    group = dist.init(timeout=30)
    rank, world = group.rank, (1 if reference else group.size)
    out = {}
    model, digests = train("cnn_bn", "sgd", rank, world, wrap=not reference, sync_bn=not reference)
    for name, p in model.state_dict().items():
        out[name] = p.numpy()
    out["digests"] = np.array(digests)
    out["kinds"] = np.array([type(m).__name__ for m in model])
    save(outdir, rank, **out)


def scenario_syncbn_reference(outdir: str) -> None:
    scenario_syncbn(outdir, reference=True)


def scenario_no_sync(outdir: str) -> None:
    """Two micro-batches: the first under no_sync (local grads), the second averages the sum."""
    group = dist.init(timeout=30)
    rank = group.rank
    model = build("mlp")
    ddp = cr.nn.parallel.DistributedDataParallel(model)
    x, y = samples("mlp", 4 * B)
    loss_fn = cr.nn.CrossEntropyLoss()
    first = slice(rank * B, (rank + 1) * B)
    second = slice(2 * B + rank * B, 2 * B + (rank + 1) * B)
    with ddp.no_sync():
        loss_fn(ddp(cr.tensor(x[first])), cr.tensor(y[first])).backward()
    local = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    loss_fn(ddp(cr.tensor(x[second])), cr.tensor(y[second])).backward()
    synced = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    # the wrapper's state dict loads into a bare model
    bare = build("mlp")
    for p in bare.parameters():
        p._data[...] = 0.0
    bare.load_state_dict(ddp.state_dict())
    same = all(np.array_equal(a._data, b._data) for a, b in zip(bare.parameters(), model.parameters()))
    save(outdir, rank, **{f"local/{k}": v for k, v in local.items()},
         **{f"synced/{k}": v for k, v in synced.items()}, state_dict_loads=np.array(same),
         keys=np.array(list(ddp.state_dict())))


def fit_run(world: int, callbacks=()):
    """cr.fit with per-rank batch 12 / world on 64 samples (5 global batches of 12 and one of 4)."""
    x, y = samples("mlp", 64)
    model = build("mlp")
    net = cr.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    history = cr.fit(net, (x, y), optimizer="momentum", lr=0.05, epochs=3, batch_size=12 // world, verbose=0,
                     shuffle=True, callbacks=callbacks)
    return model, history


def scenario_fit(outdir: str) -> None:
    """cr.fit on a DDP model: the ranks share every global batch; epoch figures averaged over ranks."""
    group = dist.init(timeout=30)
    saves = []
    real_save = cr.io.save
    cr.io.save = lambda obj, path: (saves.append(path), real_save(obj, path))
    checkpoint = cr.train.callbacks.ModelCheckpoint(os.path.join(outdir, "ckpt-{epoch}.safetensors"))
    model, history = fit_run(group.size, callbacks=[checkpoint])
    cr.io.save = real_save
    logs = np.array([[e["loss"], e["accuracy"]] for e in history.epochs])
    save(outdir, group.rank, logs=logs, weight=model[0].weight._data, steps=np.array(len(history.iterations)),
         saves=np.array(len(saves)))


def scenario_broadcast_at_construction(outdir: str) -> None:
    group = dist.init(timeout=30)
    cr.manual_seed(100 + group.rank)  # a different init on every rank
    model = cr.nn.Linear(5, 3)
    cr.nn.parallel.DistributedDataParallel(model)
    save(outdir, group.rank, weight=model.weight._data, bias=model.bias._data)


def scenario_collectives(outdir: str) -> None:
    group = dist.init(timeout=30)
    rank = group.rank
    out = {}
    for op in ("sum", "mean", "max", "min"):
        t = cr.tensor(np.array([[1.0, -2.0], [3.0, 0.5]]) * (rank + 1))
        dist.all_reduce(t, op=op)
        out[op] = t.numpy()
    t = cr.arange(6).reshape(2, 3) * (rank + 1)
    dist.all_reduce(t.contiguous(), op="sum")
    b = cr.tensor([float(rank), 10.0 + rank])
    dist.broadcast(b, src=group.size - 1)
    out["broadcast"] = b.numpy()
    gathered = [cr.zeros(3) for _ in range(group.size)]
    dist.all_gather(gathered, cr.full((3,), float(rank)))
    out["all_gather"] = np.stack([g.numpy() for g in gathered])
    dist.barrier()
    out["my_rank"] = np.array(dist.get_rank())
    out["world"] = np.array(dist.get_world_size())
    out["initialized"] = np.array(dist.is_initialized())
    sampler = cr.data.DistributedSampler(range(11), shuffle=True, seed=3)
    sampler.set_epoch(2)
    out["sampler"] = np.array(list(sampler))
    save(outdir, rank, **out)


def scenario_mismatch_model(outdir: str) -> None:
    group = dist.init(timeout=30)
    model = cr.nn.Sequential(cr.nn.Linear(4, 8), cr.nn.ReLU(), cr.nn.Linear(8, 3 if group.rank == 0 else 5))
    try:
        cr.nn.parallel.DistributedDataParallel(model)
    except dist.DistributedError as e:
        report(outdir, group.rank, f"ERROR {e}")


def scenario_mismatch_collective(outdir: str) -> None:
    group = dist.init(timeout=30)
    try:
        dist.all_reduce(cr.zeros(4, 2 + group.rank))
    except dist.DistributedError as e:
        report(outdir, group.rank, f"ERROR {e}")
    dist.barrier()  # the group is still usable after a refused collective
    t = cr.ones(2)
    dist.all_reduce(t)
    report(outdir, group.rank, f"AFTER {t.numpy().tolist()}")


def scenario_lost_rank(outdir: str, how: str) -> None:
    """Rank 1 dies (SIGKILL), raises or hangs (SIGSTOP) at step 3 of a DDP training; the others must stop."""
    group = dist.init(timeout=float(os.environ.get("WORKER_TIMEOUT", "3")))
    model = build("mlp")
    ddp = cr.nn.parallel.DistributedDataParallel(model)
    opt = optimizer("sgd", ddp.parameters())
    x, y = samples("mlp", 2 * B)
    loss_fn = cr.nn.CrossEntropyLoss()
    for step in range(10):
        if step == 3 and group.rank == 1:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "hang":
                os.kill(os.getpid(), signal.SIGSTOP)
            raise ValueError("rank 1 failed on purpose")
        opt.zero_grad()
        start = time.monotonic()
        try:
            loss_fn(ddp(cr.tensor(x[:B])), cr.tensor(y[:B])).backward()
        except dist.DistributedError as e:
            report(outdir, group.rank, f"ERROR after {time.monotonic() - start:.1f}s: {e}")
            raise
        opt.step()
    report(outdir, group.rank, "FINISHED (should not happen)")


def main() -> None:
    scenario, outdir = sys.argv[1], sys.argv[2]
    if scenario in ("train", "reference"):
        scenario_train(outdir, reference=scenario == "reference")
    elif scenario in ("kill", "raise", "hang"):
        scenario_lost_rank(outdir, scenario)
    else:
        globals()[f"scenario_{scenario}"](outdir)


if __name__ == "__main__":
    main()
