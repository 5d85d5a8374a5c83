"""One playground session: its settings, data, network, optimizer and training state.

A session is plain Python over the library (``cr.nn`` layers, ``cr.optim`` optimizers,
``cr.viz.build_graph`` / ``explain`` / ``Diagnostics``, ``cr.gradcheck_model``); the web server only
routes requests to it. Every setting is data, checked against :data:`SETTINGS`: nothing a request
sends is evaluated as code.

>>> s = Session({"dataset": "xor", "layers": [4], "activation": "tanh"})
>>> s.step()                     # one epoch, as TensorFlow Playground's step button
>>> s.epoch, s.snapshot()["loss_train"] > 0
(1, True)
"""

from __future__ import annotations

import base64
import math
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from .. import autograd, backend, nn, optim
from ..io import save
from ..tensor import Tensor
from ..viz.diagnostics import Diagnostics
from ..viz.explain import _labels, explain
from ..viz.gradcheck import gradcheck_model
from ..viz.graph import build_graph, op_kind
from . import data as D

MAX_LAYERS = 6
MAX_NEURONS = 8
ACTIVATIONS = ("tanh", "sigmoid", "relu", "leaky_relu", "prelu", "maxout", "elu", "linear")
LOSSES = ("cross_entropy", "bce", "mse", "l1", "hinge")
OPTIMIZERS = ("sgd", "gd", "momentum", "adam", "lbfgs")
REGULARIZATIONS = ("none", "l1", "l2")
PROBLEMS = ("classification", "regression")
N_SAMPLES = 500
GRID = 48  # the output heat map is GRID x GRID; each neuron's is GRID/2 x GRID/2

DEFAULTS = {
    "dataset": "circle", "problem": "classification", "classes": 2, "noise": 0, "train_ratio": 50,
    "batch_size": 10, "seed": 0, "features": ["x1", "x2"], "layers": [4, 2], "activation": "tanh",
    "loss": "cross_entropy", "optimizer": "sgd", "lr": 0.03, "regularization": "none", "reg_rate": 0.0,
}


def _choice(options):
    def check(key, v):
        if v not in options:
            raise ValueError(f"{key}: unknown value {v!r}; choose one of {', '.join(options)}")
        return v
    return check


def _number(lo, hi, integer=False):
    def check(key, v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{key}: expected a number, got {v!r}")
        if integer and v != int(v):
            raise ValueError(f"{key}: expected a whole number, got {v!r}")
        if not lo <= v <= hi:
            raise ValueError(f"{key}: must be between {lo} and {hi}, got {v}")
        return int(v) if integer else float(v)
    return check


def _features(key, v):
    if not isinstance(v, list) or not v:
        raise ValueError(f"{key}: expected a non-empty list of features from {', '.join(D.FEATURES)}, got {v!r}")
    for f in v:
        if f not in D.FEATURES:
            raise ValueError(f"{key}: unknown feature {f!r}; choose from {', '.join(D.FEATURES)}")
    return [f for f in D.FEATURES if f in v]  # one canonical order


def _layers(key, v):
    if not isinstance(v, list):
        raise ValueError(f"{key}: expected a list of hidden layer sizes, got {v!r}")
    if len(v) > MAX_LAYERS:
        raise ValueError(f"{key}: at most {MAX_LAYERS} hidden layers, got {len(v)}")
    out = []
    for n in v:
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_NEURONS:
            raise ValueError(f"{key}: each hidden layer has 1 to {MAX_NEURONS} neurons, got {n!r}")
        out.append(int(n))
    return out


SETTINGS = {
    "dataset": _choice(D.DATASETS + ("csv",)),
    "problem": _choice(PROBLEMS),
    "classes": _number(2, D.MAX_CLASSES, integer=True),
    "noise": _number(0, 50),
    "train_ratio": _number(10, 90, integer=True),
    "batch_size": _number(1, 100, integer=True),
    "seed": _number(0, 2**31 - 1, integer=True),
    "features": _features,
    "layers": _layers,
    "activation": _choice(ACTIVATIONS),
    "loss": _choice(LOSSES),
    "optimizer": _choice(OPTIMIZERS),
    "lr": _number(1e-6, 10.0),
    "regularization": _choice(REGULARIZATIONS),
    "reg_rate": _number(0.0, 10.0),
}
# What a change of each setting rebuilds.
_DATA_KEYS = {"dataset", "problem", "classes", "noise", "train_ratio", "seed"}
_MODEL_KEYS = {"features", "layers", "activation", "loss"} | _DATA_KEYS
_LIVE_KEYS = {"lr", "batch_size", "regularization", "reg_rate", "optimizer"}


def check_settings(changes, base: dict | None = None) -> dict:
    """``base`` (the defaults) updated by ``changes``, every value checked; raises ValueError naming the
    setting. The combination is checked too (a regression loss for a regression set, ...)."""
    if not isinstance(changes, dict):
        raise ValueError(f"settings must be a JSON object, got {type(changes).__name__}")
    config = dict(base if base is not None else DEFAULTS)
    for key, value in changes.items():
        if key not in SETTINGS:
            raise ValueError(f"unknown setting {key!r}; settings are {', '.join(SETTINGS)}")
        config[key] = SETTINGS[key](key, value)
    ds, problem, loss = config["dataset"], config["problem"], config["loss"]
    if ds in D.CLASSIFICATION and problem != "classification":
        raise ValueError(f"dataset {ds} is a classification set; set problem to classification")
    if ds in D.REGRESSION and problem != "regression":
        raise ValueError(f"dataset {ds} is a regression set; set problem to regression")
    if problem == "regression" and loss not in ("mse", "l1"):
        raise ValueError(f"loss {loss} needs classes; a regression takes loss mse or l1")
    if problem == "classification" and loss == "bce" and config["classes"] != 2:
        raise ValueError(f"loss bce is for two classes; with {config['classes']} use cross_entropy or hinge")
    if ds in D.DATASETS and config["classes"] != 2 and ds not in D.MULTICLASS:
        raise ValueError(f"dataset {ds} has 2 classes; {config['classes']} classes work with "
                         f"{' and '.join(D.MULTICLASS)}")
    return config


def _activation_layer(name: str):
    return {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "elu": nn.ELU,
            "leaky_relu": lambda: nn.LeakyReLU(0.1), "prelu": nn.PReLU}[name]()


# Sessions draw initial weights from the package generator, seeded and then put back, one at a time.
_INIT_LOCK = threading.Lock()


def build_model(config: dict, seed: int) -> nn.Sequential:
    """The network of ``config``: per hidden layer a Linear and its activation (a Maxout layer for
    maxout), then the output Linear (and a Softmax when mse or l1 scores class probabilities).
    Initial weights are those of ``cr.manual_seed(seed)`` followed by building the layers."""
    n_in = len(config["features"])
    n_out = _outputs(config)
    layers = []
    with _INIT_LOCK:
        gen = backend.generator()
        saved = gen.bit_generator.state
        gen.bit_generator.state = np.random.default_rng(seed).bit_generator.state
        try:
            for width in config["layers"]:
                if config["activation"] == "maxout":
                    layers.append(nn.Maxout(n_in, width, k=2))
                else:
                    layers.append(nn.Linear(n_in, width))
                    if config["activation"] != "linear":
                        layers.append(_activation_layer(config["activation"]))
                n_in = width
            layers.append(nn.Linear(n_in, n_out))
        finally:
            gen.bit_generator.state = saved
    if config["problem"] == "classification" and config["loss"] in ("mse", "l1"):
        layers.append(nn.Softmax(dim=-1))
    return nn.Sequential(*layers).double()


def hidden_outputs(model) -> set:
    """Indices of the children of ``model`` whose outputs are the hidden layers' neurons: the
    activation after each hidden Linear (the Linear itself for a linear activation), or the Maxout."""
    children = list(model.children())
    params = [i for i, m in enumerate(children) if type(m).__name__ in ("Linear", "Maxout")]
    out = set()
    for i in params[:-1]:
        nxt = children[i + 1]
        out.add(i + 1 if type(nxt).__name__ not in ("Linear", "Maxout") else i)
    return out


def _outputs(config: dict) -> int:
    if config["problem"] == "regression" or config["loss"] == "bce":
        return 1
    return config["classes"]


def loss_module(config: dict) -> nn.Module:
    return {"cross_entropy": nn.CrossEntropyLoss, "bce": nn.BCEWithLogitsLoss, "mse": nn.MSELoss,
            "l1": nn.L1Loss, "hinge": nn.MultiMarginLoss}[config["loss"]]()


def make_optimizer(config: dict, params) -> optim.Optimizer:
    lr, kind = config["lr"], config["optimizer"]
    if kind in ("sgd", "gd"):
        return optim.SGD(params, lr=lr)
    if kind == "momentum":
        return optim.SGD(params, lr=lr, momentum=0.9)
    if kind == "adam":
        return optim.Adam(params, lr=lr)
    return optim.LBFGS(params, lr=lr, max_iter=1, line_search_fn="strong_wolfe")


def targets(config: dict, y: np.ndarray) -> np.ndarray:
    """The labels as the loss wants them: class indices (cross_entropy, hinge), a 0/1 column (bce),
    one-hot rows (mse, l1 on classes), or the regression column."""
    if config["problem"] == "regression":
        return y.astype(np.float64).reshape(-1, 1)
    if config["loss"] == "bce":
        return y.astype(np.float64).reshape(-1, 1)
    if config["loss"] in ("mse", "l1"):
        return np.eye(config["classes"])[y]
    return y.astype(np.int64)


def _encode(values: np.ndarray) -> str:
    """Values in [-1, 1] as base64 bytes 0..255 (the page decodes them for its heat maps)."""
    q = np.clip(np.round((np.nan_to_num(values) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return base64.b64encode(q.tobytes()).decode("ascii")


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _flat(a) -> list:
    """An array as a flat list of floats, NaN and inf as None (JSON has no such numbers)."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(a, np.float64).reshape(-1).tolist()]


class TrainingStopped(RuntimeError):
    """The loss became NaN or inf: ``info`` says at which step, and which layer or op."""

    def __init__(self, info: dict):
        super().__init__(info["message"])
        self.info = info


class Session:
    """A network, its data and optimizer, trained step by step. All methods take the session's lock,
    so the training thread and the requests of the page can call them at any time."""

    def __init__(self, settings: dict | None = None, sid: str = "local"):
        self.id = sid
        self.lock = threading.RLock()
        self.config = check_settings(settings or {})
        self.csv = None  # (X, y, problem, classes, name) of an uploaded file
        self.init_count = 0
        self.sample = 0  # the training example shown in the graph panel
        self.version = 0  # bumped on every change the page should see
        self.data_version = 0
        self.playing = False
        self.error: dict | None = None
        self.last_seen = time.monotonic()
        self.clients = 0
        self._thread: threading.Thread | None = None
        self._load_data()
        self._build()

    # ---- set-up --------------------------------------------------------------------------------------
    def _load_data(self) -> None:
        c = self.config
        if c["dataset"] == "csv":
            if self.csv is None:
                raise ValueError("dataset csv: upload a CSV file first")
            X, y = self.csv[0], self.csv[1]
        else:
            X, y = D.make_dataset(c["dataset"], N_SAMPLES, c["noise"], c["seed"], c["classes"])
        self.X, self.y = X, y
        self.train_idx, self.test_idx = D.split(len(X), c["train_ratio"], c["seed"])
        if c["dataset"] == "csv":
            lo, hi = X.min(axis=0), X.max(axis=0)
            pad = 0.1 * np.maximum(hi - lo, 1e-6)
            self.bounds = [float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])]
        else:
            self.bounds = [-D.RADIUS, D.RADIUS, -D.RADIUS, D.RADIUS]
        self.sample = min(self.sample, len(self.train_idx) - 1)
        self.data_version += 1

    def _build(self, new_weights: bool = False) -> None:
        """A fresh network (``new_weights``: other initial weights than last time), epoch 0."""
        c = self.config
        if new_weights:
            self.init_count += 1
        self.init_seed = c["seed"] * 1009 + self.init_count
        self.F_train = D.features(self.X[self.train_idx], c["features"])
        self.F_test = D.features(self.X[self.test_idx], c["features"])
        self.T_train = targets(c, self.y[self.train_idx])
        self.T_test = targets(c, self.y[self.test_idx])
        self.model = build_model(c, self.init_seed)
        self.initial_state = {k: v.detach().numpy().copy() for k, v in self.model.state_dict().items()}
        self.loss_fn = loss_module(c)
        self._restart()

    def _restart(self) -> None:
        """Epoch 0 from the current weights: a new optimizer, shuffler, history and diagnostics."""
        c = self.config
        self.optimizer = make_optimizer(c, self.model.parameters())
        self.rng = np.random.default_rng(c["seed"] + 2)
        self.perm, self.position = None, 0
        self.epoch, self.steps = 0, 0
        self.error = None
        self.history = {"epoch": [], "train": [], "test": []}
        if getattr(self, "diag", None) is not None:
            self.diag.on_train_end()
        self.diag = Diagnostics()
        self.diag.on_train_begin(self.model)
        self.layer_names = self._layer_names()
        self._record()

    def _layer_names(self) -> dict:
        """Module path -> what the page calls it ('hidden layer 1', 'output layer')."""
        names, hidden = {}, 0
        children = list(self.model.named_children())
        last_param = max(i for i, (_, m) in enumerate(children) if m._parameters)
        for i, (path, m) in enumerate(children):
            kind = type(m).__name__
            if i == last_param:
                names[path] = f"output layer ({kind})"
            elif kind in ("Linear", "Maxout"):
                hidden += 1
                names[path] = f"hidden layer {hidden} ({kind})"
            else:
                names[path] = f"hidden layer {hidden} ({kind})" if hidden else kind
        return names

    # ---- changes from the page -----------------------------------------------------------------------
    def update(self, changes: dict) -> None:
        """Change settings; the network is rebuilt (epoch 0) unless only live settings changed."""
        with self.lock:
            new = check_settings(changes, self.config)
            changed = {k for k in new if new[k] != self.config[k]}
            if new["dataset"] == "csv" and self.csv is None:
                raise ValueError("dataset csv: upload a CSV file first")
            old = self.config
            self.config = new
            try:
                if changed & _DATA_KEYS:
                    self._load_data()
                if changed & _MODEL_KEYS:
                    self._build()
                elif changed & _LIVE_KEYS:
                    if "optimizer" in changed:
                        self.optimizer = make_optimizer(new, self.model.parameters())
                    for group in self.optimizer.param_groups:
                        group["lr"] = new["lr"]
            except Exception:
                self.config = old
                raise
            self.version += 1

    def load_csv(self, text, name: str = "the file") -> None:
        """Use the points of an uploaded CSV file (see :func:`data.parse_csv`)."""
        X, y, problem, classes = D.parse_csv(text, name)
        with self.lock:
            self.pause()
            self.csv = (X, y, problem, classes, name)
            c = dict(self.config)
            c.update(dataset="csv", problem=problem, classes=max(classes, 2))
            if problem == "regression" and c["loss"] not in ("mse", "l1"):
                c["loss"] = "mse"
            if problem == "classification" and (c["loss"] in ("mse", "l1") or (c["loss"] == "bce" and classes != 2)):
                c["loss"] = "cross_entropy"
            self.config = check_settings({}, c)
            self._load_data()
            self._build()
            self.version += 1

    def set_weight(self, layer: int, to: int, frm: int, value: float) -> None:
        """Set the weight of the link from unit ``frm`` of layer ``layer - 1`` to unit ``to`` of
        ``layer`` (layer 0 is the first hidden layer; the bias is ``frm = -1``)."""
        value = _number(-100, 100)("weight", value)
        with self.lock:
            linears = self._param_layers()
            if not (isinstance(layer, int) and 0 <= layer < len(linears)):
                raise ValueError(f"weight: layer must be 0..{len(linears) - 1}, got {layer!r}")
            m = linears[layer]
            w = m.weight.detach().numpy()
            rows = w.shape[0] // getattr(m, "k", 1)
            if not (isinstance(to, int) and 0 <= to < rows):
                raise ValueError(f"weight: neuron must be 0..{rows - 1}, got {to!r}")
            if not (isinstance(frm, int) and -1 <= frm < w.shape[1]):
                raise ValueError(f"weight: input must be -1 (the bias) or 0..{w.shape[1] - 1}, got {frm!r}")
            row = to * getattr(m, "k", 1)  # a Maxout neuron: its first piece
            with autograd.no_grad():
                if frm == -1:
                    m.bias.detach().numpy()[row] = value
                else:
                    w[row, frm] = value
            self._record(history=False)
            self.version += 1

    def set_sample(self, index: int) -> None:
        with self.lock:
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.train_idx):
                raise ValueError(f"sample: must be a training example 0..{len(self.train_idx) - 1}, got {index!r}")
            self.sample = index
            self.version += 1

    def reset(self) -> None:
        """New initial weights, epoch 0 (TensorFlow Playground's reset)."""
        with self.lock:
            self.pause()
            self._build(new_weights=True)
            self.version += 1

    def rewind(self) -> None:
        """Back to this run's initial weights, epoch 0."""
        with self.lock:
            self.pause()
            self.model.load_state_dict({k: Tensor(v.copy()) for k, v in self.initial_state.items()})
            self._restart()
            self.version += 1

    # ---- training ------------------------------------------------------------------------------------
    def _param_layers(self) -> list:
        return [m for m in self.model.children() if type(m).__name__ in ("Linear", "Maxout")]

    def objective(self, x: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """(data loss, data loss + regularisation): L1 is rate * sum|W|, L2 is rate/2 * sum W^2."""
        loss = self.loss_fn(self.model(x), t)
        kind, rate = self.config["regularization"], self.config["reg_rate"]
        if kind == "none" or rate == 0:
            return loss, loss
        total = loss
        for m in self._param_layers():
            w = m.weight
            total = total + (rate * w.abs().sum() if kind == "l1" else (0.5 * rate) * (w * w).sum())
        return loss, total

    def _batch(self) -> np.ndarray:
        n = len(self.train_idx)
        if self.config["optimizer"] in ("gd", "lbfgs"):
            self.position = n
            return np.arange(n)
        if self.perm is None:
            self.perm, self.position = self.rng.permutation(n), 0
        b = self.config["batch_size"]
        idx = self.perm[self.position:self.position + b]
        self.position += len(idx)
        return idx

    def train_step(self) -> float:
        """One optimizer step on the next mini-batch; an epoch ends when the training set is used up."""
        with self.lock, np.errstate(all="ignore"):  # overflow is caught below, and named
            if self.error is not None:
                raise TrainingStopped(self.error)
            idx = self._batch()
            x, t = Tensor(self.F_train[idx]), Tensor(self.T_train[idx])
            self.steps += 1
            if self.config["optimizer"] == "lbfgs":
                def closure():
                    self.optimizer.zero_grad()
                    _, total = self.objective(x, t)
                    total.backward()
                    return total
                value = float(self.optimizer.step(closure).item())
                self.diag.on_after_backward(self.steps)
                self.diag.on_batch_end(self.steps)
            else:
                _, total = self.objective(x, t)
                self.optimizer.zero_grad()
                total.backward()
                value = float(total.item())
                if math.isfinite(value):
                    self.diag.on_after_backward(self.steps)
                    self.optimizer.step()
                    self.diag.on_batch_end(self.steps)
            if not math.isfinite(value) or not self._weights_finite():
                self._stop_on_nonfinite(x, t, value)
            if self.position >= len(self.train_idx):
                self.perm, self.position = None, 0
                self.epoch += 1
                self.diag.on_epoch_end(self.epoch)
                self._record()
            self.version += 1
            return value

    def step(self) -> None:
        """One epoch (TensorFlow Playground's step button)."""
        with self.lock:
            start = self.epoch
            while self.epoch == start:
                self.train_step()

    def _weights_finite(self) -> bool:
        return all(np.isfinite(p.detach().numpy()).all() for p in self.model.parameters())

    def _stop_on_nonfinite(self, x: Tensor, t: Tensor, value: float) -> None:
        """Find what made the loss non-finite (the first weight, or the first op of the forward pass
        whose result is NaN or inf), stop, and raise TrainingStopped."""
        where = None
        for name, p in self.model.named_parameters():
            a = p.detach().numpy()
            if not np.isfinite(a).all():
                path = name.split(".")[0]
                where = (f"the weights of {self.layer_names.get(path, path)} ({name}) became "
                         f"{'nan' if np.isnan(a).any() else 'inf'} in the update")
                break
        if where is None:
            with autograd.enable_grad():
                _, total = self.objective(x, t)
            graph = build_graph(total, model=self.model, grads=False)
            owners = {id(p): n.split(".")[0] for n, p in self.model.named_parameters()}
            layer_of = [next((owners[id(v.tensor)] for v in op.inputs if id(v.tensor) in owners), None)
                        for op in graph.ops]
            last = None
            for k, op in enumerate(graph.ops):
                last = layer_of[k] or last
                out = op.output.value
                if np.isfinite(out).all():
                    continue
                if layer_of[k] is not None:
                    place = f" in {self.layer_names[layer_of[k]]}"
                elif last is not None and any(layer_of[k + 1:]):
                    place = f" in the activation after {self.layer_names[last]}"
                else:
                    place = f" in the loss ({type(self.loss_fn).__name__}) or the output"
                where = f"op {op_kind(op.fn)}{place} produced {'nan' if np.isnan(out).any() else 'inf'}"
                break
        where = where or "the loss itself"
        self.error = {"kind": "nonfinite", "step": self.steps, "epoch": self.epoch, "where": where,
                      "message": f"Training stopped at step {self.steps} (epoch {self.epoch}): the loss became "
                                 f"{value}; {where}. Lower the learning rate, then reset or rewind."}
        self.playing = False
        self.version += 1
        raise TrainingStopped(self.error)

    def losses(self) -> tuple[float, float]:
        with self.lock, autograd.no_grad():
            train = self.loss_fn(self.model(Tensor(self.F_train)), Tensor(self.T_train)).item()
            test = self.loss_fn(self.model(Tensor(self.F_test)), Tensor(self.T_test)).item()
            return float(train), float(test)

    def _record(self, history: bool = True) -> None:
        self._history_cache = None
        train, test = self.losses()
        self.loss_train, self.loss_test = train, test
        if history:
            h = self.history
            h["epoch"].append(self.epoch)
            h["train"].append(_finite(train))
            h["test"].append(_finite(test))

    # ---- the background trainer ----------------------------------------------------------------------
    def play(self) -> None:
        with self.lock:
            if self.error is not None:
                raise TrainingStopped(self.error)
            if self.playing:
                return
            self.playing = True
            self.version += 1
            self._thread = threading.Thread(target=self._run, name=f"playground-{self.id}", daemon=True)
            self._thread.start()

    def pause(self) -> None:
        with self.lock:
            if self.playing:
                self.playing = False
                self.version += 1

    def _run(self) -> None:
        """Train in slices of about 20 ms, releasing the lock between them so requests get through."""
        while self.playing:
            with self.lock:
                end = time.perf_counter() + 0.02
                try:
                    while self.playing and time.perf_counter() < end:
                        self.train_step()
                except TrainingStopped:
                    return
                except Exception as e:  # noqa: BLE001  (shown on the page rather than lost in a thread)
                    self.error = {"kind": "error", "step": self.steps, "epoch": self.epoch, "where": "",
                                  "message": f"Training stopped at step {self.steps}: {e}"}
                    self.playing = False
                    self.version += 1
                    return
            time.sleep(0.001)

    def close(self) -> None:
        self.pause()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=2)

    # ---- what the page shows -------------------------------------------------------------------------
    def snapshot(self, points: bool = True, graph: bool = True) -> dict:
        """Everything the page draws, as JSON-able data."""
        with self.lock, np.errstate(all="ignore"):
            c = self.config
            out = {
                "id": self.id, "version": self.version, "data_version": self.data_version, "config": dict(c),
                "epoch": self.epoch, "steps": self.steps, "playing": self.playing, "error": self.error,
                "loss_train": _finite(self.loss_train), "loss_test": _finite(self.loss_test),
                "history": self._history(), "diagnostics": self._diagnostics(),
                "network": self._network(), "heatmaps": self._heatmaps(), "sample": self.sample,
                "units": self.unit_health(),
                "csv_name": self.csv[4] if self.csv is not None else None,
                "initial_weights": self.init_seed,
            }
            if points:
                out["points"] = self.points()
            if graph:
                out["graph"] = self.graph(self.sample)
            return out

    def _history(self, limit: int = 400) -> dict:
        if getattr(self, "_history_cache", None) is None:  # cleared by _record
            self._history_cache = self._thin_history(limit)
        return self._history_cache

    def _thin_history(self, limit: int) -> dict:
        h = self.history
        n = len(h["epoch"])
        keep = np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(int)) if n else []
        return {k: [v[i] for i in keep] for k, v in h.items()}

    def _diagnostics(self, limit: int = 200) -> dict:
        layers = []
        for path, rows in self.diag.history.items():
            norms = rows["grad_norm"]
            keep = np.unique(np.linspace(0, len(norms) - 1, min(len(norms), limit)).round().astype(int)) if norms else []
            last = {k: (_finite(rows[k][-1]) if rows[k] else None) for k in ("grad_norm", "update_ratio",
                                                                            "saturated", "dead")}
            layers.append({"name": self.layer_names.get(path, path), "path": path,
                           "grad_norm": [_finite(norms[i]) for i in keep],
                           "epochs": [self.diag.epochs[i] for i in keep], **{f"last_{k}": v for k, v in last.items()}})
        return {"layers": layers}

    def unit_health(self) -> list:
        """Per hidden layer, per neuron, on the training set: 'dead' (a ReLU-like unit that outputs
        0 or less for every example), 'saturated' (sigmoid outside [0.01, 0.99] or |tanh| > 0.99 for
        more than 90% of the examples), or None."""
        act = self.config["activation"]
        out, wanted, h = [], hidden_outputs(self.model), Tensor(self.F_train)
        with autograd.no_grad():
            for i, m in enumerate(self.model.children()):
                h = m(h)
                if i not in wanted:
                    continue
                a = h.numpy()
                if act in ("relu",):
                    flags = np.where((a <= 0).all(axis=0), "dead", None)
                elif act == "sigmoid":
                    flags = np.where(((a < 0.01) | (a > 0.99)).mean(axis=0) > 0.9, "saturated", None)
                elif act == "tanh":
                    flags = np.where((np.abs(a) > 0.99).mean(axis=0) > 0.9, "saturated", None)
                else:
                    flags = [None] * a.shape[1]
                out.append([None if f is None else str(f) for f in flags])
        return out

    def _network(self) -> dict:
        layers = []
        for m in self._param_layers():
            k = getattr(m, "k", 1)
            w = m.weight.detach().numpy()[::k]
            b = m.bias.detach().numpy()[::k]
            layers.append({"kind": type(m).__name__, "weights": [_flat(r) for r in w], "bias": _flat(b)})
        return {"inputs": [D.FEATURES[f][0] for f in self.config["features"]], "features": self.config["features"],
                "layers": layers}

    def predict_grid(self, n: int = GRID):
        """The network over an n x n grid of the drawn square: each unit's output (inputs, hidden
        neurons) and the output's scores. Rows run from the top (largest x2) down."""
        x0, x1, y0, y1 = self.bounds
        gx = np.linspace(x0, x1, n)
        gy = np.linspace(y1, y0, n)
        pts = np.column_stack([np.tile(gx, n), np.repeat(gy, n)])
        h = Tensor(D.features(pts, self.config["features"]))
        units = [h.numpy()]
        wanted = hidden_outputs(self.model)
        with autograd.no_grad():
            for i, m in enumerate(self.model.children()):
                h = m(h)
                if i in wanted:
                    units.append(h.numpy())
        return units, h.numpy()

    def _heatmaps(self) -> dict:
        units, scores = self.predict_grid(GRID)
        c = self.config
        small = lambda a: a.reshape(GRID, GRID)[::2, ::2].reshape(-1)  # noqa: E731
        neurons = []
        for a in units:
            scale = max(1.0, float(np.abs(a).max())) if a.size else 1.0
            neurons.append([_encode(small(a[:, j]) / scale) for j in range(a.shape[1])])
        if c["problem"] == "regression":
            lo, hi = float(self.y.min()), float(self.y.max())
            span = max(hi - lo, 1e-9)
            output = {"kind": "regression", "values": _encode(2 * (scores[:, 0] - lo) / span - 1), "lo": lo, "hi": hi}
        else:
            probs = self.probabilities(scores)
            if probs.shape[1] == 2:
                output = {"kind": "binary", "values": _encode(2 * probs[:, 1] - 1)}
            else:
                output = {"kind": "multiclass", "classes": _encode(probs.argmax(1) / 127.5 - 1),
                          "values": _encode(2 * probs.max(1) - 1)}
        return {"grid": GRID, "small": GRID // 2, "bounds": self.bounds, "output": output, "neurons": neurons}

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        loss = self.config["loss"]
        if loss == "bce":
            p = 1.0 / (1.0 + np.exp(-np.clip(scores[:, 0], -500, 500)))
            return np.column_stack([1 - p, p])
        if loss in ("mse", "l1"):
            return scores  # the network ends in a Softmax
        e = np.exp(scores - scores.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def points(self) -> dict:
        def rows(idx):
            return [[round(float(a), 4), round(float(b), 4), (int(t) if self.config["problem"] == "classification"
                                                              else round(float(t), 4))]
                    for (a, b), t in zip(self.X[idx], self.y[idx].reshape(len(idx), -1)[:, 0])]
        return {"train": rows(self.train_idx), "test": rows(self.test_idx)}

    # ---- the computational graph of one example ------------------------------------------------------
    def sample_tensors(self, index: int) -> tuple[Tensor, Tensor]:
        """The features and target of training example ``index`` (a batch of one), named x and y."""
        x = Tensor(self.F_train[index:index + 1], name="x")
        t = Tensor(self.T_train[index:index + 1], name="y")
        return x, t

    def graph(self, index: int | None = None) -> dict:
        """The graph of the loss of one training example: every value with its gradient, every op,
        and the chain rule at every edge (``cr.viz.build_graph`` and ``cr.viz.explain``)."""
        with self.lock:
            index = self.sample if index is None else index
            x, t = self.sample_tensors(index)
            with autograd.enable_grad():
                loss = self.loss_fn(self.model(x), t)
            g = build_graph(loss, model=self.model)
            labels = _labels(g)
            owners = {id(p): n.split(".")[0] for n, p in self.model.named_parameters()}
            keys = {id(v): v.key for v in g.values}
            nodes = [{"key": v.key, "label": labels[id(v)], "name": v.name, "kind": v.kind, "shape": list(v.shape),
                      "value": _flat(v.value), "grad": None if v.grad is None else _flat(v.grad)} for v in g.values]
            ops = []
            for op in g.ops:
                layer = next((owners[id(v.tensor)] for v in op.inputs if id(v.tensor) in owners), None)
                ops.append({"key": op.key, "label": op.label, "kind": op_kind(op.fn),
                            "inputs": [keys[id(v)] for v in op.inputs], "output": keys[id(op.output)],
                            "layer": self.layer_names.get(layer) if layer is not None else None})
            steps = []
            for s in explain(loss, model=self.model).steps:
                steps.append({"index": s.index, "output": s.output, "op": s.op, "input": s.input,
                              "upstream": _flat(s.upstream), "local": None if s.local is None else _flat(s.local),
                              "formula": s.local_formula, "product": _flat(s.product)})
            raw = self.X[self.train_idx[index]]
            return {"index": index, "point": [float(raw[0]), float(raw[1])],
                    "target": _flat(self.T_train[index]), "loss": _finite(float(loss.item())),
                    "nodes": nodes, "ops": ops, "steps": steps, "output": keys[id(g.outputs[0])]}

    # ---- checks and exports --------------------------------------------------------------------------
    def gradcheck(self, samples: int = 32) -> dict:
        """Backprop against central differences (float64) for the current weights, per layer."""
        with self.lock:
            x = Tensor(self.F_train[:samples])
            t = Tensor(self.T_train[:samples])
            report = gradcheck_model(self.model, self.loss_fn, x, t, max_entries=20)
            layers = {}
            for p in report.params:
                path = p.name.split(".")[0]
                entry = layers.setdefault(path, {"name": self.layer_names.get(path, path), "ok": True,
                                                 "max_rel_error": 0.0, "params": []})
                entry["ok"] = entry["ok"] and p.ok
                entry["max_rel_error"] = max(entry["max_rel_error"], p.max_rel_error)
                entry["params"].append({"name": p.name, "ok": p.ok, "max_rel_error": p.max_rel_error,
                                        "checked": p.checked})
            return {"ok": report.ok, "layers": list(layers.values()), "text": report.to_text()}

    def checkpoint_bytes(self) -> bytes:
        """The model as a chainrule checkpoint (safetensors with its architecture: ``cr.load_model``)."""
        with self.lock, tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "playground.safetensors"
            save(self.model, path)
            return path.read_bytes()

    def script(self) -> str:
        from .export import script

        with self.lock:
            # as many epochs as the page trained (so the script ends with the same weights), else 100
            return script(self.config, self.init_seed, self.csv[4] if self.csv is not None else None,
                          epochs=self.epoch or 100)
