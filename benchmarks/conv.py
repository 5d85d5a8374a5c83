"""Convolutional networks: forward+backward samples/s, side by side with PyTorch when it is installed.

Two workloads, batch 64, float32, same thread count for both libraries:
  (a) LeNet-style net on 1x28x28: conv 1->6 5x5, relu, maxpool 2, conv 6->16 5x5, relu, maxpool 2,
      linear 256->120->84->10, cross-entropy loss;
  (b) CIFAR-shaped block on 3x32x32: conv 3->32 3x3 'same', relu, conv 32->64 3x3 'same', relu, mean.

Prints samples per second (higher is better) and the ratio chainrule / PyTorch (1.0: as fast), once
per thread count: 1 thread, then NumPy's BLAS default (PyTorch is given the same count each time).
The machine's load average is printed too: OpenBLAS's worker threads spin while waiting, so on a
machine whose cores are busy with other work the multi-threaded figures can collapse.

    python benchmarks/conv.py [--repeat N] [--number N] [--threads N ...]
"""

from __future__ import annotations

import argparse
import os
import time
import timeit

import numpy as np
from _harness import blas_threads  # noqa: E402  (benchmarks/ is the script's folder)

import chainrule as cr
import chainrule.nn.functional as F

BATCH = 64


def _data():
    rng = np.random.default_rng(0)
    mnist = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, BATCH)
    cifar = rng.standard_normal((BATCH, 3, 32, 32)).astype(np.float32)
    return mnist, labels, cifar


def _samples_per_s(fn, repeat: int, number: int) -> tuple[float, float]:
    """Samples per second by wall-clock time and by this process's CPU time (best of ``repeat``).

    The CPU-time figure is steadier on a busy machine: time spent waiting for a core is not counted
    (time spent by several threads is, summed)."""
    fn()  # warm up
    wall = min(timeit.repeat(fn, number=number, repeat=repeat)) / number
    cpu = min(timeit.repeat(fn, number=number, repeat=repeat, timer=time.process_time)) / number
    return BATCH / wall, BATCH / max(cpu, 1e-9)


def bench_chainrule(repeat: int, number: int) -> dict:
    cr.manual_seed(0)
    mnist, labels, cifar = _data()
    net = cr.nn.LeNet()
    x, y = cr.tensor(mnist), cr.tensor(labels)
    conv_a, conv_b = cr.nn.Conv2d(3, 32, 3, padding="same"), cr.nn.Conv2d(32, 64, 3, padding="same")
    xc = cr.tensor(cifar)

    def lenet():
        net.zero_grad()
        F.cross_entropy(net(x), y).backward()

    def block():
        conv_a.zero_grad()
        conv_b.zero_grad()
        conv_b(conv_a(xc).relu()).relu().mean().backward()

    return {"lenet": _samples_per_s(lenet, repeat, number), "block": _samples_per_s(block, repeat, number)}


def bench_torch(repeat: int, number: int, threads: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    mnist, labels, cifar = _data()
    nn = torch.nn

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
            self.pool = nn.MaxPool2d(2)
            self.fc1, self.fc2, self.fc3 = nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(torch.relu(self.conv1(x)))
            x = self.pool(torch.relu(self.conv2(x)))
            x = torch.relu(self.fc1(x.flatten(1)))
            return self.fc3(torch.relu(self.fc2(x)))

    net = LeNet()
    x, y = torch.from_numpy(mnist), torch.from_numpy(labels)
    conv_a, conv_b = nn.Conv2d(3, 32, 3, padding="same"), nn.Conv2d(32, 64, 3, padding="same")
    xc = torch.from_numpy(cifar)

    def lenet():
        net.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()

    def block():
        conv_a.zero_grad()
        conv_b.zero_grad()
        torch.relu(conv_b(torch.relu(conv_a(xc)))).mean().backward()

    return {"lenet": _samples_per_s(lenet, repeat, number), "block": _samples_per_s(block, repeat, number)}


def _limit_blas(threads: int):
    """A context in which NumPy's BLAS uses ``threads`` threads (needs threadpoolctl)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads, user_api="blas")


def run(threads: int, repeat: int, number: int) -> None:
    try:
        limit = _limit_blas(threads)
    except ImportError:
        if threads != blas_threads():
            print(f"(threadpoolctl is not installed: cannot run with {threads} BLAS threads)")
            return
        limit = None
    try:
        ours = bench_chainrule(repeat, number)
    finally:
        if limit is not None:
            limit.restore_original_limits()
    theirs = bench_torch(repeat, number, threads)
    labels = {
        "lenet": "(a) LeNet, 1x28x28, batch 64",
        "block": "(b) conv 3->32->64 3x3, 3x32x32, batch 64",
    }
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    print(f"\nBLAS threads: {threads} (PyTorch given the same); load average {load} on "
          f"{os.cpu_count()} cores")
    header = f"{'forward+backward, samples/s (wall clock)':44s} {'chainrule':>10s}"
    if theirs:
        header += f" {'pytorch':>10s} {'ratio':>7s} {'ratio by CPU time':>18s}"
    print(header)
    for key, label in labels.items():
        (wall, cpu) = ours[key]
        line = f"{label:44s} {wall:10.0f}"
        if theirs:
            (twall, tcpu) = theirs[key]
            line += f" {twall:10.0f} {wall / twall:7.2f} {cpu / tcpu:18.2f}"
        print(line)
    if not theirs:
        print("(PyTorch is not installed: no ratios)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats (the best is kept)")
    parser.add_argument("--number", type=int, default=5, help="steps per timing repeat")
    parser.add_argument("--threads", type=int, nargs="+", default=None,
                        help="BLAS thread counts to run with (default: 1 and NumPy's default)")
    parser.add_argument("--wait", type=float, default=30.0,
                        help="seconds to wait at most for a quiet machine before each run (0: don't)")
    args = parser.parse_args(argv)
    counts = args.threads or sorted({1, blas_threads()})
    for threads in counts:
        if args.wait > 0:
            from _harness import wait_for_quiet  # benchmarks/_harness.py, beside this script

            wait_for_quiet(max_load=0.5, timeout=args.wait)
        run(threads, args.repeat, args.number)


if __name__ == "__main__":
    main()
