"""Optimizers side by side: the same model, the same initial weights, one run per method.

``gd`` is full-batch gradient descent, ``sgd`` uses one example per step, ``minibatch`` B examples;
``momentum`` and ``adam`` use mini-batches; ``lbfgs``, ``cg`` and ``newton`` are full-batch methods
driven by a closure. Every run records the full training loss against iterations, data passes
(epochs) and wall time, so the lecture's question "why gradient descent?" gets a measured answer.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..autograd import no_grad
from ..errors import InvalidArgumentError
from ..gradcheck import numerical_grad
from ..tensor import Tensor
from .targets import check_model_fits

METHODS = ("gd", "sgd", "minibatch", "momentum", "adam", "lbfgs", "cg", "newton")
DEFAULT_LR = {"gd": 0.5, "sgd": 0.05, "minibatch": 0.2, "momentum": 0.05, "adam": 0.01,
              "lbfgs": 1.0, "cg": 1.0, "newton": 1.0}
FULL_BATCH = ("gd", "lbfgs", "cg", "newton")
DATASETS = ("moons", "circles", "spirals", "xor", "blobs")


@dataclass
class MethodRun:
    """One method's record: curves (iteration, data passes, seconds, loss) and the final scores."""

    method: str
    iterations: list = field(default_factory=list)
    passes: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    final_loss: float = float("nan")
    accuracy: float = float("nan")
    steps: int = 0
    gradient_evaluations: int = 0
    loss_evaluations: int = 0
    total_seconds: float = 0.0
    note: str = ""

    def row(self) -> dict:
        return {"method": self.method, "final_loss": self.final_loss, "accuracy": self.accuracy,
                "iterations": self.steps, "gradient_evaluations": self.gradient_evaluations,
                "loss_evaluations": self.loss_evaluations, "seconds": round(self.total_seconds, 4),
                "note": self.note}


class _Counter:
    """Counts loss evaluations and gradient evaluations of one run."""

    def __init__(self):
        self.losses = 0
        self.grads = 0


def numerical_gradients(params: list, loss_of, eps: float = 1e-6) -> int:
    """Set ``p.grad`` of every parameter by central differences of ``loss_of()``; returns how many
    loss evaluations that took (2 per weight: the cost the lecture warns about)."""
    with no_grad():
        for p in params:
            p.grad = Tensor._wrap(numerical_grad(loss_of, p, eps).astype(p.dtype))
    return 2 * sum(p.numel() for p in params)


def _load_data(dataset: str, n_samples: int, seed: int):
    from ..data import datasets

    if dataset not in DATASETS:
        raise InvalidArgumentError(f"compare: --dataset {dataset!r} is not one of compare's generated sets; use "
                                   f"{', '.join(DATASETS)} (train other data with `chainrule train`)")
    ds = getattr(datasets, dataset)(n_samples=n_samples, seed=seed)
    x = np.asarray(ds.features, dtype=np.float64)
    y = np.asarray(ds.targets).astype(np.int64)
    std = x.std(0)
    x = (x - x.mean(0)) / np.where(std > 0, std, 1.0)
    return x, y


def _make_optimizer(method: str, params, lr: float):
    from .. import optim

    if method in ("gd", "sgd", "minibatch"):
        return optim.SGD(params, lr=lr)
    if method == "momentum":
        return optim.SGD(params, lr=lr, momentum=0.9)
    if method == "adam":
        return optim.Adam(params, lr=lr)
    if method == "lbfgs":
        # one iteration per step; max_eval must leave room for the line search (PyTorch's default,
        # max_iter * 5 // 4 = 1, would stop it after its first evaluation and stall)
        return optim.LBFGS(params, lr=lr, max_iter=1, max_eval=25, line_search_fn="strong_wolfe", history_size=10)
    if method == "cg":
        return optim.ConjugateGradient(params, lr=lr, max_iter=1)
    if method == "newton":
        return optim.Newton(params, lr=lr)
    raise ValueError(f"compare: unknown optimizer {method!r}; choose from {', '.join(METHODS)}")


def _run_method(method, model, init_state, x, y, loss_fn, epochs, batch_size, lr, gradient, seed) -> MethodRun:
    run = MethodRun(method)
    model.load_state_dict(init_state)
    params = list(model.parameters())
    counter = _Counter()
    n = len(x)
    x_all, y_all = Tensor(x), Tensor(y)
    numerical = gradient == "numerical"
    if numerical and method == "newton":
        run.note = "skipped: Newton needs second derivatives, which finite differences of a loss do not give here"
        return run
    opt = _make_optimizer(method, params, lr)

    def full_loss() -> float:
        with no_grad():
            return loss_fn(model(x_all), y_all).item()

    def compute_grads(xb: Tensor, yb: Tensor) -> Tensor:
        counter.grads += 1
        if numerical:
            with no_grad():
                loss = loss_fn(model(xb), yb)

            def loss_of() -> float:
                return loss_fn(model(xb), yb).item()

            counter.losses += 1 + numerical_gradients(params, loss_of)
            return loss
        opt.zero_grad()
        loss = loss_fn(model(xb), yb)
        counter.losses += 1
        loss.backward()
        return loss

    elapsed = 0.0

    def record(step: int) -> None:
        passes = counter.grads if method in FULL_BATCH else step * min(batch_size, n) / n
        if method == "sgd":
            passes = step / n
        run.iterations.append(step)
        run.passes.append(passes)
        run.seconds.append(elapsed)
        run.losses.append(full_loss())

    record(0)
    rng = np.random.default_rng(seed)
    if method in FULL_BATCH:
        for step in range(1, epochs + 1):
            t0 = time.perf_counter()
            if method == "gd":
                compute_grads(x_all, y_all)
                opt.step()
            else:
                opt.step(lambda: compute_grads(x_all, y_all))
            elapsed += time.perf_counter() - t0
            run.steps = step
            record(step)
            if not np.isfinite(run.losses[-1]):
                run.note = "diverged"
                break
    else:
        bs = 1 if method == "sgd" else batch_size
        step = 0
        for _ in range(epochs):
            order = rng.permutation(n)
            t0 = time.perf_counter()
            for start in range(0, n, bs):
                idx = order[start:start + bs]
                compute_grads(Tensor(x[idx]), Tensor(y[idx]))
                opt.step()
                step += 1
            elapsed += time.perf_counter() - t0
            run.steps = step
            record(step)
    run.final_loss = run.losses[-1]
    with no_grad():
        pred = model(x_all)._data.argmax(axis=1)
    run.accuracy = float(np.mean(pred == y))
    run.gradient_evaluations = counter.grads
    run.loss_evaluations = counter.losses
    run.total_seconds = elapsed
    return run


def compare(dataset: str = "moons", optimizers=METHODS, hidden=(8,), epochs: int = 30, batch_size: int = 16,
            lr: dict | None = None, gradient: str = "analytic", n_samples: int = 200, seed: int = 0) -> list:
    """Train one MLP per method from the same initial weights; returns a :class:`MethodRun` per method."""
    from .. import nn

    if gradient not in ("analytic", "numerical"):
        raise ValueError(f"compare: gradient must be 'analytic' or 'numerical', got {gradient!r}")
    optimizers = [optimizers] if isinstance(optimizers, str) else list(optimizers)
    if not optimizers:
        raise InvalidArgumentError(f"compare: no optimizer given; choose from {', '.join(METHODS)}")
    for name, value, minimum in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("n_samples", n_samples, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            option = "--samples" if name == "n_samples" else "--" + name.replace("_", "-")
            raise InvalidArgumentError(f"compare: {option} must be a whole number of at least {minimum}, got {value!r}")
    hidden = tuple(hidden)
    if any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in hidden):
        raise InvalidArgumentError(f"compare: --hidden sizes must be positive whole numbers, got {hidden}")
    for m in optimizers:
        if m not in METHODS:
            raise ValueError(f"compare: unknown optimizer {m!r}; choose from {', '.join(METHODS)}")
    x, y = _load_data(dataset, n_samples, seed)
    check_model_fits([x.shape[1], *hidden, int(y.max()) + 1], "--hidden", itemsize=8)
    backend.manual_seed(seed)
    model = nn.MLP([x.shape[1], *hidden, int(y.max()) + 1], activation="tanh").double()
    init_state = {k: v._data.copy() for k, v in model.state_dict().items()}
    loss_fn = nn.CrossEntropyLoss()
    rates = {**DEFAULT_LR, **(lr or {})}
    return [_run_method(m, model, init_state, x, y, loss_fn, epochs, batch_size, rates[m], gradient, seed)
            for m in optimizers]


def format_table(runs: list) -> str:
    """The comparison as a fixed-width text table."""
    from ..viz._format import percent

    head = f"{'method':<10} {'final loss':>11} {'train acc':>9} {'iterations':>10} {'grad evals':>10} {'loss evals':>10} {'seconds':>8}"
    lines = [head, "-" * len(head)]
    for r in runs:
        if r.note.startswith("skipped"):
            lines.append(f"{r.method:<10} {r.note}")
            continue
        lines.append(f"{r.method:<10} {r.final_loss:>11.5f} {percent(r.accuracy):>9} {r.steps:>10d} "
                     f"{r.gradient_evaluations:>10d} {r.loss_evaluations:>10d} {r.total_seconds:>8.3f}"
                     + (f"  {r.note}" if r.note else ""))
    return "\n".join(lines)


def write_outputs(runs: list, out_dir: str) -> list:
    """compare.csv, compare.json and three plots (loss against iterations, data passes and seconds)."""
    from .history import atomic_write_text

    os.makedirs(out_dir, exist_ok=True)
    rows = [r.row() for r in runs]
    cols = list(rows[0])
    csv_text = ",".join(cols) + "\n" + "\n".join(",".join(str(row[c]) for c in cols) for row in rows) + "\n"
    atomic_write_text(os.path.join(out_dir, "compare.csv"), csv_text)
    curves = {r.method: {"iterations": r.iterations, "passes": r.passes, "seconds": r.seconds, "loss": r.losses}
              for r in runs}
    atomic_write_text(os.path.join(out_dir, "compare.json"), json.dumps({"table": rows, "curves": curves}, indent=1))
    written = []
    for key, fig in loss_figures(runs).items():
        path = os.path.join(out_dir, f"loss_vs_{key}.png")
        fig.savefig(path, dpi=100)
        written.append(path)
    return written


def loss_figures(runs: list) -> dict:
    """``{'iterations' | 'passes' | 'seconds': Figure}``: the full training loss of every method against
    iterations (a symlog axis from 0), data passes and wall time."""
    from matplotlib.figure import Figure

    figures = {}
    for key, label in (("iterations", "iteration"), ("passes", "epochs (data passes)"), ("seconds", "wall time (s)")):
        fig = Figure(figsize=(6.5, 4))
        ax = fig.subplots()
        for r in runs:
            if r.losses:
                ax.plot(getattr(r, key), r.losses, marker=".", ms=3, label=r.method)
        ax.set(xlabel=label, ylabel="training loss (full batch)", title=f"loss against {label}")
        if any(min(r.losses) > 0 for r in runs if r.losses):
            ax.set_yscale("log")
        if key == "iterations":
            ax.set_xscale("symlog", linthresh=1)
        ax.set_xlim(left=0)  # iterations, passes and seconds are never negative
        if ax.lines:
            ax.legend(fontsize=8)
        fig.tight_layout()
        figures[key] = fig
    return figures
