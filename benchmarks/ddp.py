"""W-ddp: W-medium's network trained data-parallel on 2 MPI ranks, against one process, in one run.

    python benchmarks/ddp.py                 # W-ddp (12,800 samples a run) and the allreduce figures
    python benchmarks/ddp.py --quick         # a seconds-long smoke run
    python benchmarks/ddp.py --samples 60000 --runs 3

The network is W-medium's MLP 784-512-256-10 (SGD, momentum 0.9) on synthetic samples, global batch
128. Measured, each in fresh processes and in this order:
  - chainrule, 1 process, 1 BLAS thread (batch 128);
  - chainrule, 1 process, 2 BLAS threads;
  - chainrule DistributedDataParallel, 2 ranks under the mpich wheel's mpiexec, 1 BLAS thread each
    (batch 64 a rank; with the default 25 MB buckets W-medium's 2.2 MB of gradients are one bucket,
    --bucket-cap-mb 0.5 splits them so communication overlaps the backward pass);
  - PyTorch DDP (gloo backend), 2 processes, 1 thread each, when PyTorch is installed.
It prints samples/s, the ratios the issue asks for, and the latency and bandwidth of an MPI
allreduce of 8 bytes and of 4 MB of float32 between the 2 ranks. Figures taken while other work
runs on the machine are low and noisy: say so when quoting them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = [784, 512, 256, 10]
GLOBAL_BATCH = 128
MPIEXEC = Path(sys.executable).with_name("mpiexec")


def _data(samples: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], samples)
    return x, y


def _rank_and_size() -> tuple[int, int]:
    return int(os.environ.get("PMI_RANK", 0)), int(os.environ.get("PMI_SIZE", 1))


def worker_chainrule(samples: int, bucket_cap_mb: float) -> dict:
    import chainrule as cr

    group = cr.distributed.init(timeout=600)
    rank, world = group.rank, group.size
    cr.manual_seed(0)
    model = cr.nn.MLP(SIZES)
    net = cr.nn.parallel.DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb) if world > 1 else model
    opt = cr.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = cr.nn.CrossEntropyLoss()
    x, y = _data(samples)
    per = GLOBAL_BATCH // world

    def step(i):
        lo = i * GLOBAL_BATCH + rank * per
        opt.zero_grad()
        loss_fn(net(cr.tensor(x[lo:lo + per])), cr.tensor(y[lo:lo + per])).backward()
        opt.step()

    for i in range(3):
        step(i)
    cr.distributed.barrier()
    start = time.perf_counter()
    steps = samples // GLOBAL_BATCH
    for i in range(steps):
        step(i)
    cr.distributed.barrier()
    wall = time.perf_counter() - start
    out = {"samples_per_s": steps * GLOBAL_BATCH / wall}
    if world > 1:
        out.update(_allreduce_figures(group))
    return out


def _allreduce_figures(group, repeats: int = 20) -> dict:
    MPI = group.MPI
    out = {}
    for name, n in (("small", 2), ("4mb", 2**20)):
        buf = np.ones(n, dtype=np.float32)
        for _ in range(3):
            group.wait([group.comm.Iallreduce(MPI.IN_PLACE, buf, op=MPI.SUM)], "allreduce benchmark")
        times = []
        for _ in range(repeats):
            group.comm.Barrier()
            t = time.perf_counter()
            group.wait([group.comm.Iallreduce(MPI.IN_PLACE, buf, op=MPI.SUM)], "allreduce benchmark")
            times.append(time.perf_counter() - t)
        out[f"allreduce_{name}_s"] = float(np.median(times))
    out["allreduce_4mb_gbit_s"] = 4 * 2**20 * 8 / out["allreduce_4mb_s"] / 1e9
    return out


def worker_torch(samples: int) -> dict:
    import torch
    import torch.distributed as tdist

    rank, world = _rank_and_size()
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{os.environ['BENCH_PORT']}", rank=rank,
                             world_size=world)
    torch.manual_seed(0)
    layers = []
    for i, (a, b) in enumerate(zip(SIZES, SIZES[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    net = torch.nn.parallel.DistributedDataParallel(torch.nn.Sequential(*layers))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = _data(samples)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    per = GLOBAL_BATCH // world

    def step(i):
        lo = i * GLOBAL_BATCH + rank * per
        opt.zero_grad()
        loss_fn(net(x[lo:lo + per]), y[lo:lo + per]).backward()
        opt.step()

    for i in range(3):
        step(i)
    tdist.barrier()
    start = time.perf_counter()
    steps = samples // GLOBAL_BATCH
    for i in range(steps):
        step(i)
    tdist.barrier()
    wall = time.perf_counter() - start
    tdist.destroy_process_group()
    return {"samples_per_s": steps * GLOBAL_BATCH / wall}


def _run(cmd: list[str], threads: int, **env) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "HYDI_"))}
    environ.update({v: str(threads) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    environ.update(env)
    done = subprocess.run(cmd, capture_output=True, text=True, env=environ, timeout=3600)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=12_800)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--bucket-cap-mb", type=float, default=25.0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", choices=["chainrule", "torch"], default=None)
    args = parser.parse_args()
    samples = 1280 if args.quick else args.samples
    if args.worker:
        result = (worker_chainrule(samples, args.bucket_cap_mb) if args.worker == "chainrule"
                  else worker_torch(samples))
        if _rank_and_size()[0] == 0:
            print(json.dumps(result), flush=True)
        return
    me = [sys.executable, str(Path(__file__).resolve()), "--samples", str(samples),
          "--bucket-cap-mb", str(args.bucket_cap_mb)]
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    rows: dict[str, list] = {}
    for r in range(args.runs):
        rows.setdefault("1 process, 1 thread", []).append(_run([*me, "--worker", "chainrule"], 1))
        rows.setdefault("1 process, 2 threads", []).append(_run([*me, "--worker", "chainrule"], 2))
        rows.setdefault("DDP 2 ranks x 1 thread", []).append(
            _run([str(MPIEXEC), "-n", "2", *me, "--worker", "chainrule"], 1))
        if have_torch:
            rows.setdefault("PyTorch DDP gloo 2 x 1", []).append(
                _run([str(MPIEXEC), "-n", "2", *me, "--worker", "torch"], 1, BENCH_PORT=str(29500 + r)))
    median = {k: float(np.median([v["samples_per_s"] for v in vs])) for k, vs in rows.items()}
    print(f"W-ddp: MLP {'-'.join(map(str, SIZES))}, global batch {GLOBAL_BATCH}, {samples} samples, "
          f"{args.runs} run(s), median samples/s")
    for k, v in median.items():
        print(f"  {k:<26} {v:10.0f}")
    ddp = median["DDP 2 ranks x 1 thread"]
    print(f"  DDP / 1 process 1 thread:  {ddp / median['1 process, 1 thread']:.2f}x  (target >= 1.8x)")
    print(f"  DDP / 1 process 2 threads: {ddp / median['1 process, 2 threads']:.2f}x  (target >= 1.0x)")
    if have_torch:
        print(f"  DDP / PyTorch DDP (gloo):  {ddp / median['PyTorch DDP gloo 2 x 1']:.2f}x  (target >= 1.0x)")
    last = rows["DDP 2 ranks x 1 thread"][-1]
    print(f"  MPI allreduce between 2 ranks: 8 B in {last['allreduce_small_s'] * 1e6:.1f} us; "
          f"4 MB float32 in {last['allreduce_4mb_s'] * 1e3:.2f} ms ({last['allreduce_4mb_gbit_s']:.1f} Gbit/s)")


if __name__ == "__main__":
    main()
