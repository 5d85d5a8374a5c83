"""Per-op overhead of the autograd core, side by side with PyTorch when it is installed.

Prints microseconds per forward+backward for
  (a) a chain of 100 elementwise ops on 1-element tensors (pure bookkeeping: NumPy's work is tiny), and
  (b) a chain of 10 matmul+relu on 256x256 float32 (BLAS-bound: overhead should vanish),
and the ratio chainrule / PyTorch (lower is better; the targets are (a) <= 1.0 and (b) <= 1.05).

    python benchmarks/overhead.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import timeit

import numpy as np

import chainrule as cr


def _blas_threads() -> int:
    """The number of threads NumPy's BLAS uses (so PyTorch can be given the same)."""
    try:
        from threadpoolctl import threadpool_info

        counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
        if counts:
            return int(counts[0])
    except ImportError:
        pass
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var):
            return int(os.environ[var])
    return os.cpu_count() or 1


def _chain(lib, x):
    """100 elementwise ops (adds, multiplies, tanh, ...), then backward."""
    y = x
    for _ in range(20):
        y = y * 1.01
        y = y + x
        y = y.tanh()
        y = y - 0.5
        y = y * y
    y.sum().backward()


def _mlp(lib, x, weights):
    """10 matmul+relu layers on 256x256, then backward."""
    y = x
    for w in weights:
        y = (y @ w).relu()
    y.sum().backward()


def _best(fn, repeat: int, number: int) -> float:
    """Best-of-``repeat`` microseconds per call."""
    fn()  # warm up
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def bench_chainrule(repeat: int) -> dict:
    cr.manual_seed(0)
    x = cr.tensor([0.3], requires_grad=True)
    rng = np.random.default_rng(0)
    a = cr.tensor(rng.standard_normal((256, 256)).astype(np.float32))
    ws = [cr.tensor(rng.standard_normal((256, 256)).astype(np.float32) / 16, requires_grad=True)
          for _ in range(10)]

    def chain():
        x.grad = None
        _chain(cr, x)

    def mlp():
        for w in ws:
            w.grad = None
        _mlp(cr, a, ws)

    return {"chain": _best(chain, repeat, 200), "mlp": _best(mlp, repeat, 5)}


def bench_torch(repeat: int):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(_blas_threads())
    x = torch.tensor([0.3], requires_grad=True)
    rng = np.random.default_rng(0)
    a = torch.tensor(rng.standard_normal((256, 256)).astype(np.float32))
    ws = [torch.tensor(rng.standard_normal((256, 256)).astype(np.float32) / 16, requires_grad=True)
          for _ in range(10)]

    def chain():
        x.grad = None
        _chain(torch, x)

    def mlp():
        for w in ws:
            w.grad = None
        _mlp(torch, a, ws)

    return {"chain": _best(chain, repeat, 200), "mlp": _best(mlp, repeat, 5)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timing repeats (best is kept)")
    args = parser.parse_args(argv)
    ours = bench_chainrule(args.repeat)
    theirs = bench_torch(args.repeat)
    labels = {
        "chain": "(a) 100 elementwise ops, 1 element",
        "mlp": "(b) 10x matmul+relu, 256x256 float32",
    }
    print(f"BLAS threads: {_blas_threads()}")
    header = f"{'benchmark (us per forward+backward)':40s} {'chainrule':>11s}"
    if theirs:
        header += f" {'pytorch':>11s} {'ratio':>7s}"
    print(header)
    for key, label in labels.items():
        line = f"{label:40s} {ours[key]:11.1f}"
        if theirs:
            line += f" {theirs[key]:11.1f} {ours[key] / theirs[key]:7.2f}"
        print(line)
    if not theirs:
        print("(PyTorch is not installed: no ratios)")


if __name__ == "__main__":
    main()
