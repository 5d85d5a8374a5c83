"""Per-op overhead of the autograd core, side by side with PyTorch when it is installed.

Prints microseconds per forward+backward for
  (a) a chain of 100 elementwise ops on 1-element tensors (pure bookkeeping: NumPy's work is tiny), and
  (b) a chain of 10 matmul+relu on 256x256 float32 (BLAS-bound: overhead should vanish),
and the ratio chainrule / PyTorch (lower is better; the targets are (a) <= 1.0 and (b) <= 1.05).
The bare matmul line shows the BLAS floor for (b): NumPy's BLAS against PyTorch's, no autograd.

    python benchmarks/overhead.py [--repeat N] [--threads N]

On a shared machine, ``--threads 1`` gives steadier numbers: BLAS threads that wait for a busy core
spin and distort the matmul timings of both libraries.
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit


def _threads_from_argv(argv) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return None


# BLAS reads its thread count when NumPy loads, so --threads must act before the imports below.
if __name__ == "__main__" and _threads_from_argv(sys.argv[1:]):
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _threads_from_argv(sys.argv[1:])

import numpy as np  # noqa: E402
from _harness import blas_threads  # noqa: E402  (benchmarks/ is the script's folder)

import chainrule as cr  # noqa: E402


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


def _cases(lib, bare_matmul) -> dict:
    """The benchmarks as zero-argument callables for ``lib`` (chainrule or torch: same names)."""
    x = lib.tensor([0.3], requires_grad=True)
    rng = np.random.default_rng(0)
    a = lib.tensor(rng.standard_normal((256, 256)).astype(np.float32))
    ws = [lib.tensor(rng.standard_normal((256, 256)).astype(np.float32) / 16, requires_grad=True)
          for _ in range(10)]

    def chain():
        x.grad = None
        _chain(lib, x)

    def mlp():
        for w in ws:
            w.grad = None
        _mlp(lib, a, ws)

    return {"chain": chain, "mlp": mlp, "matmul": lambda: bare_matmul(a, ws[0])}


def _chainrule_cases() -> dict:
    return _cases(cr, lambda a, b: a._data @ b._data)  # the bare NumPy matmul


def _torch_cases():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(blas_threads())
    return _cases(torch, lambda a, b: a.detach() @ b.detach())


NUMBER = {"chain": 100, "mlp": 5, "matmul": 50}


def measure(repeat: int) -> tuple[dict, dict | None]:
    """Best-of-``repeat`` microseconds per call; the two libraries take turns, so that a busy
    machine slows both alike."""
    ours, theirs = _chainrule_cases(), _torch_cases()
    best_ours, best_theirs = {}, {}
    for key, number in NUMBER.items():
        ours[key]()  # warm up
        if theirs:
            theirs[key]()
        for _ in range(repeat):
            t = timeit.timeit(ours[key], number=number) / number * 1e6
            best_ours[key] = min(best_ours.get(key, t), t)
            if theirs:
                t = timeit.timeit(theirs[key], number=number) / number * 1e6
                best_theirs[key] = min(best_theirs.get(key, t), t)
    return best_ours, (best_theirs if theirs else None)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timing repeats (best is kept)")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads for NumPy and PyTorch alike (default: NumPy's own choice)")
    args = parser.parse_args(argv)
    ours, theirs = measure(args.repeat)
    labels = {
        "chain": "(a) 100 elementwise ops, 1 element",
        "mlp": "(b) 10x matmul+relu, 256x256 float32",
        "matmul": "    for scale: one bare 256x256 matmul",
    }
    print(f"BLAS threads: {blas_threads()}")
    header = f"{'us per forward+backward':40s} {'chainrule':>11s}"
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
