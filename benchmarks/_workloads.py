"""The workloads of benchmarks/run.py, written once per framework.

Every framework gets the same data (made here with NumPy from fixed seeds), the same initial weights
(drawn here, then copied in), float32 throughout, and the same optimizer settings. Each function runs in
its own fresh process (``run.py --worker``) and imports only the framework it measures.

Frameworks ("libs"): ``chainrule``; ``torch`` (PyTorch eager, CPU, as many threads as NumPy's BLAS);
``sklearn`` (MLPClassifier, MLP workloads only); ``micrograd`` (W-scalar only); ``numpy`` (a hand-written
NumPy MLP: the floor any NumPy framework pays for the same arithmetic, for reference).
"""

from __future__ import annotations

import gc
import importlib.util
import time
import warnings
from pathlib import Path

import numpy as np
from _harness import Meter, blas_threads, combine_meters, peak_rss_mb, rss_mb

SEED = 0

# Each workload: the libs it runs with, and its full and --quick settings.
WORKLOADS: dict[str, dict] = {
    "W-small": {
        "libs": ["chainrule", "torch", "sklearn", "numpy"],
        "full": {"epochs": 10},
        "quick": {"epochs": 1},
    },
    "W-medium": {
        "libs": ["chainrule", "torch", "sklearn", "numpy"],
        "full": {"samples": 60_000},
        "quick": {"samples": 2_560},
    },
    "W-large": {
        "libs": ["chainrule", "torch", "numpy"],
        "full": {"batch": 512, "steps": 20, "peak_n": 4096},
        "quick": {"batch": 64, "steps": 2, "peak_n": 1024},
    },
    "W-conv": {
        "libs": ["chainrule", "torch"],
        "full": {"batch": 64, "steps": 50},
        "quick": {"batch": 64, "steps": 3},
    },
    "W-scalar": {
        "libs": ["chainrule", "torch", "numpy", "micrograd"],
        "full": {"steps": 500, "micrograd_steps": 3},
        "quick": {"steps": 3, "micrograd_steps": 1},
    },
    "W-small-rss": {
        "libs": ["chainrule", "torch"],
        "quick_libs": ["chainrule"],
        "full": {"warmup": 100, "steps": 1000},
        "quick": {"warmup": 10, "steps": 50},
    },
}

SMALL_SIZES = [64, 128, 64, 10]
MEDIUM_SIZES = [784, 512, 256, 10]
LARGE_SIZES = [784, 2048, 2048, 10]
SCALAR_SIZES = [2, 16, 16, 1]
# LeNet-style (issue 4): conv 1->6 5x5, relu, maxpool 2, conv 6->16 5x5, relu, maxpool 2, 256->120->84->10.
LENET = [("conv", 1, 6, 5), ("relu",), ("maxpool", 2), ("conv", 6, 16, 5), ("relu",), ("maxpool", 2),
         ("flatten",), ("linear", 256, 120), ("relu",), ("linear", 120, 84), ("relu",), ("linear", 84, 10)]


def mlp_spec(sizes: list[int]) -> list[tuple]:
    spec: list[tuple] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        spec.append(("linear", fan_in, fan_out))
        if i < len(sizes) - 2:
            spec.append(("relu",))
    return spec


def count_params(spec: list[tuple]) -> int:
    total = 0
    for layer in spec:
        if layer[0] == "linear":
            total += layer[1] * layer[2] + layer[2]
        elif layer[0] == "conv":
            total += layer[2] * layer[1] * layer[3] ** 2 + layer[2]
    return total


# ---- data and initial weights (NumPy, seeded: identical in every process) -------------------------------
def _digits_table() -> np.ndarray:
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
        if path.exists():
            return np.loadtxt(path, delimiter=",")
    from sklearn.datasets import load_digits  # the same table, the slow way

    bunch = load_digits()
    return np.column_stack([bunch.data, bunch.target])


def digits_split(seed: int = SEED):
    """scikit-learn's 1,797 8x8 digits, pixels scaled to [0, 1], split 80/20 at random."""
    table = _digits_table()
    X = (table[:, :64] / 16.0).astype(np.float32)
    y = table[:, 64].astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    n_train = int(0.8 * len(y))
    train, test = order[:n_train], order[n_train:]
    return X[train], y[train], X[test], y[test]


def synthetic_classification(n: int, features: int, classes: int, seed: int = SEED):
    """Gaussian inputs labelled by a random linear teacher (learnable, so losses fall as they should)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features), dtype=np.float32)
    teacher = rng.standard_normal((features, classes), dtype=np.float32)
    return X, np.argmax(X @ teacher, axis=1).astype(np.int64)


def moons(n: int = 100, noise: float = 0.1, seed: int = SEED):
    """Two interleaving half circles (scikit-learn's make_moons recipe); labels -1 / +1 as micrograd uses."""
    rng = np.random.default_rng(seed)
    n_upper = n // 2
    t_upper, t_lower = np.linspace(0, np.pi, n_upper), np.linspace(0, np.pi, n - n_upper)
    X = np.concatenate([np.column_stack([np.cos(t_upper), np.sin(t_upper)]),
                        np.column_stack([1 - np.cos(t_lower), 0.5 - np.sin(t_lower)])])
    X += noise * rng.standard_normal(X.shape)
    y = np.concatenate([-np.ones(n_upper), np.ones(n - n_upper)])
    order = rng.permutation(n)
    return X[order].astype(np.float32), y[order].astype(np.float32)


def init_params(spec: list[tuple], seed: int = SEED, scheme: str = "torch") -> list[np.ndarray]:
    """[weight0, bias0, weight1, ...] in PyTorch's layouts (Linear (out, in), Conv (out, in, k, k)).

    ``torch``: PyTorch's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases;
    ``micrograd``: U(-1, 1) weights and zero biases, as micrograd's Neuron draws them.
    """
    rng = np.random.default_rng(seed + 1)
    params = []
    for layer in spec:
        if layer[0] == "linear":
            shape = (layer[2], layer[1])
        elif layer[0] == "conv":
            shape = (layer[2], layer[1], layer[3], layer[3])
        else:
            continue
        fan_in = int(np.prod(shape[1:]))
        bound = 1.0 if scheme == "micrograd" else 1.0 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, shape).astype(np.float32))
        bias = np.zeros(shape[0]) if scheme == "micrograd" else rng.uniform(-bound, bound, shape[0])
        params.append(bias.astype(np.float32))
    return params


def matmul_peak(n: int, repeats: int = 3) -> float:
    """GFLOP/s of NumPy's float32 n x n matmul, best of ``repeats`` (2 n^3 flops each)."""
    rng = np.random.default_rng(SEED)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = a @ b  # warm up threads and caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


# ---- chainrule ------------------------------------------------------------------------------------------
class Chainrule:
    """chainrule written the way its README teaches: nn layers, a loss module, an optimizer."""

    name = "chainrule"

    def __init__(self):
        import chainrule as cr

        cr.backend.tune_malloc()  # as the chainrule command does
        self.cr = cr
        self.notes: list[str] = []

    def tensor(self, array: np.ndarray):
        return self.cr.from_numpy(array)

    def build(self, spec: list[tuple], params: list[np.ndarray]):
        """cr.nn.LeNet / cr.nn.MLP where the spec is one of them, else a Sequential of cr.nn layers."""
        nn = self.cr.nn
        if spec == LENET:
            model = nn.LeNet()
        elif {layer[0] for layer in spec} <= {"linear", "relu"}:
            sizes = [layer[1] for layer in spec if layer[0] == "linear"] + [spec[-1][2]]
            model = nn.MLP(sizes)
        else:
            model = nn.Sequential(*_layers(nn, spec))
        self.notes.append(f"cr.nn.{type(model).__name__}")
        model_params = list(model.parameters())
        if len(model_params) != len(params):
            raise RuntimeError(f"chainrule model has {len(model_params)} parameters, expected {len(params)}")
        for p, value in zip(model_params, params):
            if p._data.shape != value.shape:
                raise RuntimeError(f"chainrule parameter of shape {p._data.shape}, expected {value.shape}")
            p._data[...] = value
        return model

    def cross_entropy(self):
        return self.cr.nn.CrossEntropyLoss()

    def sgd(self, model, lr: float, momentum: float = 0.0):
        return self.cr.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

    def adam(self, model, lr: float):
        return self.cr.optim.Adam(model.parameters(), lr=lr)

    def predict(self, model, X: np.ndarray) -> np.ndarray:
        with self.cr.no_grad():
            return model(self.tensor(X)).numpy().argmax(axis=1)

    def scalar_loss(self, model, X, y, alpha: float):
        """micrograd's demo loss: mean hinge plus L2, written with whole-tensor ops."""
        scores = model(X).reshape(-1)
        data_loss = (1 - y * scores).relu().mean()
        reg_loss = alpha * sum((p * p).sum() for p in model.parameters())
        return data_loss + reg_loss


def _layers(nn, spec: list[tuple]) -> list:
    """The spec as layer objects of ``nn`` (chainrule's and PyTorch's share the names and arguments)."""
    make = {"linear": lambda a: nn.Linear(a[0], a[1]), "conv": lambda a: nn.Conv2d(a[0], a[1], a[2]),
            "maxpool": lambda a: nn.MaxPool2d(a[0]), "relu": lambda a: nn.ReLU(), "flatten": lambda a: nn.Flatten()}
    return [make[layer[0]](layer[1:]) for layer in spec]


# ---- PyTorch --------------------------------------------------------------------------------------------
class Torch:
    name = "torch"

    def __init__(self):
        threads = blas_threads()  # read NumPy's BLAS before torch loads its own libraries
        import torch

        torch.set_num_threads(threads)
        self.torch = torch
        self.notes = [f"torch.set_num_threads({threads})"]

    def tensor(self, array: np.ndarray):
        return self.torch.from_numpy(array)

    def build(self, spec: list[tuple], params: list[np.ndarray]):
        model = self.torch.nn.Sequential(*_layers(self.torch.nn, spec))
        with self.torch.no_grad():
            for p, value in zip(model.parameters(), params):
                p.copy_(self.torch.from_numpy(value))
        return model

    def cross_entropy(self):
        return self.torch.nn.CrossEntropyLoss()

    def sgd(self, model, lr: float, momentum: float = 0.0):
        return self.torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)

    def adam(self, model, lr: float):
        return self.torch.optim.Adam(model.parameters(), lr=lr)

    def predict(self, model, X: np.ndarray) -> np.ndarray:
        with self.torch.no_grad():
            return model(self.tensor(X)).numpy().argmax(axis=1)

    def scalar_loss(self, model, X, y, alpha: float):
        scores = model(X).reshape(-1)
        data_loss = (1 - y * scores).relu().mean()
        reg_loss = alpha * sum((p * p).sum() for p in model.parameters())
        return data_loss + reg_loss


# ---- a hand-written NumPy MLP: the arithmetic floor ------------------------------------------------------
class NumpyMLP:
    """Forward and backward of a ReLU MLP by hand, with PyTorch's SGD(momentum) / Adam updates."""

    def __init__(self, params: list[np.ndarray]):
        self.params = [p.copy() for p in params]
        self.grads = [np.zeros_like(p) for p in self.params]
        self.state: list[np.ndarray] = []
        self.steps = 0

    def forward(self, x: np.ndarray) -> list[np.ndarray]:
        acts = [x]
        layers = len(self.params) // 2
        for i in range(layers):
            z = acts[-1] @ self.params[2 * i].T
            z += self.params[2 * i + 1]
            if i < layers - 1:
                np.maximum(z, 0, out=z)
            acts.append(z)
        return acts

    def backward(self, acts: list[np.ndarray], delta: np.ndarray) -> None:
        for i in reversed(range(len(self.params) // 2)):
            np.matmul(delta.T, acts[i], out=self.grads[2 * i])
            np.sum(delta, axis=0, out=self.grads[2 * i + 1])
            if i > 0:
                delta = delta @ self.params[2 * i]
                delta *= acts[i] > 0

    @staticmethod
    def cross_entropy_grad(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """d mean(CE) / d logits = (softmax - onehot) / n."""
        probs = logits - logits.max(axis=1, keepdims=True)
        np.exp(probs, out=probs)
        probs /= probs.sum(axis=1, keepdims=True)
        probs[np.arange(len(targets)), targets] -= 1
        probs /= len(targets)
        return probs

    def sgd_step(self, lr: float, momentum: float = 0.0) -> None:
        if momentum and not self.state:
            self.state = [g.copy() for g in self.grads]  # PyTorch: the first buffer is the gradient
        elif momentum:
            for buf, g in zip(self.state, self.grads):
                buf *= momentum
                buf += g
        for p, d in zip(self.params, self.state if momentum else self.grads):
            p -= lr * d

    def adam_step(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        if not self.state:
            self.state = [np.zeros_like(p) for p in self.params for _ in range(2)]
        self.steps += 1
        c1, c2 = 1 - beta1**self.steps, 1 - beta2**self.steps
        for i, (p, g) in enumerate(zip(self.params, self.grads)):
            m, v = self.state[2 * i], self.state[2 * i + 1]
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
            denom = np.sqrt(v / c2)
            denom += eps
            p -= (lr / c1) * m / denom

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X)[-1].argmax(axis=1)


# ---- the workloads ---------------------------------------------------------------------------------------
def _framework(lib: str):
    return {"chainrule": Chainrule, "torch": Torch}[lib]()


def _step(model, loss_fn, opt, xb, yb) -> None:
    opt.zero_grad()
    loss = loss_fn(model(xb), yb)
    loss.backward()
    opt.step()


def _epoch_batches(X, y, batch: int, epoch: int):
    """The epoch's shuffled copy of the data (the same permutation for every framework)."""
    order = np.random.default_rng(SEED + 100 + epoch).permutation(len(y))
    return X[order], y[order], range(0, len(y), batch)


def _sklearn_mlp(sizes: list[int], params: list[np.ndarray], **kwargs):
    from sklearn.neural_network import MLPClassifier

    class PresetMLP(MLPClassifier):
        """MLPClassifier that starts from the given weights instead of its own Glorot draw."""

        def _init_coef(self, fan_in, fan_out, dtype):
            weight, bias = self._preset.pop(0), self._preset.pop(0)
            return weight.T.astype(dtype), bias.astype(dtype)

    clf = PresetMLP(hidden_layer_sizes=tuple(sizes[1:-1]), activation="relu", alpha=0.0, shuffle=False,
                    tol=0.0, n_iter_no_change=10**9, max_iter=1, random_state=SEED, **kwargs)
    clf._preset = list(params)
    return clf


def w_small(lib: str, cfg: dict) -> dict:
    """MLP 64-128-64-10, Adam 1e-3, batch 32, digits 80/20: seconds per epoch, test accuracy."""
    Xtr, ytr, Xte, yte = digits_split()
    params = init_params(mlp_spec(SMALL_SIZES))
    batch, epochs = 32, cfg["epochs"]
    meters, notes = [], []
    if lib == "sklearn":
        clf = _sklearn_mlp(SMALL_SIZES, params, solver="adam", learning_rate_init=1e-3, batch_size=batch)
        classes = np.arange(10)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in range(epochs):
                Xe, ye, _ = _epoch_batches(Xtr, ytr, batch, epoch)
                with Meter() as m:
                    clf.partial_fit(Xe, ye, classes=classes)
                meters.append(m)
        accuracy = float((clf.predict(Xte) == yte).mean())
    elif lib == "numpy":
        net = NumpyMLP(params)
        for epoch in range(epochs):
            Xe, ye, starts = _epoch_batches(Xtr, ytr, batch, epoch)
            with Meter() as m:
                for i in starts:
                    acts = net.forward(Xe[i:i + batch])
                    net.backward(acts, net.cross_entropy_grad(acts[-1], ye[i:i + batch]))
                    net.adam_step(1e-3)
            meters.append(m)
        accuracy = float((net.predict(Xte) == yte).mean())
    else:
        fw = _framework(lib)
        model = fw.build(mlp_spec(SMALL_SIZES), params)
        loss_fn, opt = fw.cross_entropy(), fw.adam(model, 1e-3)
        for epoch in range(epochs):
            Xe, ye, starts = _epoch_batches(Xtr, ytr, batch, epoch)
            with Meter() as m:
                for i in starts:
                    _step(model, loss_fn, opt, fw.tensor(Xe[i:i + batch]), fw.tensor(ye[i:i + batch]))
            meters.append(m)
        accuracy = float((fw.predict(model, Xte) == yte).mean())
        notes = fw.notes
    epoch_times = [m.wall_s for m in meters]
    steps = -(-len(ytr) // batch)
    return {"metrics": {"epoch_s": float(np.median(epoch_times)), "step_us": float(np.median(epoch_times)) / steps * 1e6,
                        "test_acc": accuracy, "epoch_times": epoch_times},
            "meter": combine_meters(meters), "notes": notes}


def w_medium(lib: str, cfg: dict) -> dict:
    """MLP 784-512-256-10, SGD momentum 0.9, batch 128, synthetic samples: samples/s over one epoch."""
    X, y = synthetic_classification(cfg["samples"], 784, 10)
    params = init_params(mlp_spec(MEDIUM_SIZES))
    batch, lr, warmup, notes = 128, 0.01, 5, []
    if lib == "sklearn":
        clf = _sklearn_mlp(MEDIUM_SIZES, params, solver="sgd", momentum=0.9, nesterovs_momentum=False,
                           learning_rate="constant", learning_rate_init=lr, batch_size=batch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(X[:warmup * batch], y[:warmup * batch], classes=np.arange(10))
            rss_setup = rss_mb()
            with Meter() as m:
                clf.partial_fit(X, y)
    elif lib == "numpy":
        net = NumpyMLP(params)

        def step(i):
            acts = net.forward(X[i:i + batch])
            net.backward(acts, net.cross_entropy_grad(acts[-1], y[i:i + batch]))
            net.sgd_step(lr, momentum=0.9)

        for i in range(warmup):
            step(i * batch)
        rss_setup = rss_mb()
        with Meter() as m:
            for i in range(0, len(y), batch):
                step(i)
    else:
        fw = _framework(lib)
        model = fw.build(mlp_spec(MEDIUM_SIZES), params)
        loss_fn, opt = fw.cross_entropy(), fw.sgd(model, lr, momentum=0.9)
        for i in range(warmup):
            _step(model, loss_fn, opt, fw.tensor(X[i * batch:(i + 1) * batch]), fw.tensor(y[i * batch:(i + 1) * batch]))
        rss_setup = rss_mb()
        with Meter() as m:
            for i in range(0, len(y), batch):
                _step(model, loss_fn, opt, fw.tensor(X[i:i + batch]), fw.tensor(y[i:i + batch]))
        notes = fw.notes
    return {"metrics": {"samples_per_s": len(y) / m.wall_s, "rss_setup_mb": rss_setup,
                        "peak_rss_mb": peak_rss_mb()},
            "meter": m.as_dict(), "notes": notes}


def w_large(lib: str, cfg: dict) -> dict:
    """MLP 784-2048-2048-10, batch 512, 20 SGD steps: samples/s and GFLOP/s against the matmul peak."""
    spec = mlp_spec(LARGE_SIZES)
    n_params = count_params(spec)
    batch, steps, lr, notes = cfg["batch"], cfg["steps"], 0.01, []
    X, y = synthetic_classification(batch, 784, 10)
    params = init_params(spec)
    extra = {}
    if lib == "numpy":
        peak = matmul_peak(cfg["peak_n"])
        net = NumpyMLP(params)

        def step():
            acts = net.forward(X)
            net.backward(acts, net.cross_entropy_grad(acts[-1], y))
            net.sgd_step(lr)

        step()
        step()
        with Meter() as m:
            for _ in range(steps):
                step()
    else:
        fw = _framework(lib)
        peak = matmul_peak(cfg["peak_n"])
        if lib == "torch":
            extra["torch_mm_peak_gflops"] = _torch_mm_peak(fw.torch, cfg["peak_n"])
        model = fw.build(spec, params)
        loss_fn, opt = fw.cross_entropy(), fw.sgd(model, lr)
        xb, yb = fw.tensor(X), fw.tensor(y)
        _step(model, loss_fn, opt, xb, yb)
        _step(model, loss_fn, opt, xb, yb)
        with Meter() as m:
            for _ in range(steps):
                _step(model, loss_fn, opt, xb, yb)
        notes = fw.notes
    gflops = 6 * n_params * batch * steps / m.wall_s / 1e9
    return {"metrics": {"samples_per_s": batch * steps / m.wall_s, "gflops": gflops, "peak_gflops": peak,
                        "peak_fraction": gflops / peak, **extra},
            "meter": m.as_dict(), "notes": notes}


def _torch_mm_peak(torch, n: int, repeats: int = 3) -> float:
    gen = torch.Generator().manual_seed(SEED)
    a = torch.randn(n, n, generator=gen)
    b = torch.randn(n, n, generator=gen)
    out = a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def w_conv(lib: str, cfg: dict) -> dict:
    """LeNet-style network on 1x28x28, batch 64, 50 SGD steps: samples/s."""
    batch, steps, lr = cfg["batch"], cfg["steps"], 0.01
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    fw = _framework(lib)
    model = fw.build(LENET, init_params(LENET))
    loss_fn, opt = fw.cross_entropy(), fw.sgd(model, lr)
    xb, yb = fw.tensor(X), fw.tensor(y)
    for _ in range(3):
        _step(model, loss_fn, opt, xb, yb)
    with Meter() as m:
        for _ in range(steps):
            _step(model, loss_fn, opt, xb, yb)
    return {"metrics": {"samples_per_s": batch * steps / m.wall_s}, "meter": m.as_dict(), "notes": fw.notes}


def w_scalar(lib: str, cfg: dict) -> dict:
    """micrograd's demo: 2-16-16-1 MLP, 100 moons points, hinge + 1e-4 L2, full-batch SGD: ms per step."""
    X, y = moons(100)
    spec = mlp_spec(SCALAR_SIZES)
    params = init_params(spec, scheme="micrograd")
    alpha, notes = 1e-4, []
    steps = cfg["micrograd_steps"] if lib == "micrograd" else cfg["steps"]
    warmup = 0 if lib == "micrograd" else 2

    if lib == "micrograd":
        step = _micrograd_step(params, X, y, alpha)
    elif lib == "numpy":
        step = _numpy_scalar_step(params, X, y, alpha)
    else:
        fw = _framework(lib)
        model = fw.build(spec, params)
        opt = fw.sgd(model, lr_at(0))
        xb, yb = fw.tensor(X), fw.tensor(y)
        notes = fw.notes

        def step(k: int) -> float:
            loss = fw.scalar_loss(model, xb, yb, alpha)
            opt.zero_grad()
            loss.backward()
            opt.param_groups[0]["lr"] = lr_at(k)
            opt.step()
            return float(loss.item())

    losses = [step(k) for k in range(warmup)]
    times = []
    with Meter() as m:
        for k in range(warmup, warmup + steps):
            start = time.perf_counter()
            losses.append(step(k))
            times.append(time.perf_counter() - start)
    # The median step: a step is short enough that a moment's preemption would dominate a mean.
    return {"metrics": {"ms_per_step": float(np.median(times)) * 1e3, "mean_ms_per_step": m.wall_s / steps * 1e3,
                        "final_loss": losses[-1]},
            "meter": m.as_dict(), "notes": notes}


def lr_at(k: int) -> float:
    """micrograd's demo schedule (1.0 down to 0.1 over 100 steps), restarted every 100 steps."""
    return 1.0 - 0.9 * (k % 100) / 100


def _micrograd_step(params, X, y, alpha):
    from micrograd.engine import Value
    from micrograd.nn import MLP

    model = MLP(2, [16, 16, 1])
    for layer, weight, bias in zip(model.layers, params[0::2], params[1::2]):
        for neuron, w_row, b in zip(layer.neurons, weight, bias):
            for w, value in zip(neuron.w, w_row):
                w.data = float(value)
            neuron.b.data = float(b)

    def step(k: int) -> float:
        inputs = [list(map(Value, row)) for row in X.tolist()]
        scores = list(map(model, inputs))
        losses = [(1 + -float(yi) * score).relu() for yi, score in zip(y, scores)]
        total = sum(losses) * (1.0 / len(losses)) + alpha * sum(p * p for p in model.parameters())
        model.zero_grad()
        total.backward()
        lr = lr_at(k)
        for p in model.parameters():
            p.data -= lr * p.grad
        return total.data

    return step


def _numpy_scalar_step(params, X, y, alpha):
    net = NumpyMLP(params)
    n = len(y)

    def step(k: int) -> float:
        acts = net.forward(X)
        scores = acts[-1][:, 0]
        margins = 1 - y * scores
        active = margins > 0
        loss = margins[active].sum() / n + alpha * sum(float((p * p).sum()) for p in net.params)
        delta = (np.where(active, -y, 0) / n).astype(np.float32)[:, None]  # d hinge / d score
        net.backward(acts, delta)
        for p, g in zip(net.params, net.grads):
            g += 2 * alpha * p
        net.sgd_step(lr_at(k))
        return float(loss)

    return step


def w_small_rss(lib: str, cfg: dict) -> dict:
    """RSS growth over W-small training steps (a leak or graphs kept alive by cycles shows here)."""
    Xtr, ytr, _, _ = digits_split()
    fw = _framework(lib)
    model = fw.build(mlp_spec(SMALL_SIZES), init_params(mlp_spec(SMALL_SIZES)))
    loss_fn, opt = fw.cross_entropy(), fw.adam(model, 1e-3)
    batch = 32
    starts = list(range(0, len(ytr) - batch + 1, batch))

    def run(steps: int, offset: int) -> None:
        for k in range(steps):
            i = starts[(offset + k) % len(starts)]
            _step(model, loss_fn, opt, fw.tensor(Xtr[i:i + batch]), fw.tensor(ytr[i:i + batch]))

    run(cfg["warmup"], 0)
    before = rss_mb()
    with Meter() as m:
        run(cfg["steps"], cfg["warmup"])
    after = rss_mb()
    cyclic = gc.collect()  # objects only the cycle collector could free: graphs kept alive by cycles
    return {"metrics": {"rss_growth_mb": after - before, "rss_before_mb": before, "steps": cfg["steps"],
                        "cyclic_garbage_objects": cyclic},
            "meter": m.as_dict(), "notes": fw.notes}


RUNNERS = {"W-small": w_small, "W-medium": w_medium, "W-large": w_large, "W-conv": w_conv,
           "W-scalar": w_scalar, "W-small-rss": w_small_rss}


def available(lib: str) -> bool:
    """Whether ``lib`` can be imported here (without importing it)."""
    module = {"sklearn": "sklearn", "torch": "torch", "micrograd": "micrograd", "chainrule": "chainrule",
              "numpy": "numpy"}[lib]
    return importlib.util.find_spec(module) is not None
