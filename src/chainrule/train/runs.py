"""Run folders: what ``chainrule train`` writes and ``evaluate``/``predict`` read back.

A run folder holds ``model.safetensors`` (weights plus the architecture, so the model is rebuilt
without code), ``run.json`` (the configuration, the data split and preprocessing, the test scores),
``history.json``/``history.csv`` and ``curves.png``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import backend
from ..tensor import Tensor
from .history import History, atomic_write_text
from .targets import (
    check_features,
    check_labels,
    check_model_fits,
    check_splits,
    head,
    loss_form,
    one_hot_targets,
)

TABULAR_SETS = ("digits", "moons", "circles", "spirals", "xor", "blobs")


@dataclass
class TrainConfig:
    """Everything that defines a training run (the ``chainrule train`` options)."""

    dataset: str = "digits"
    model: str = "mlp"
    hidden: tuple = (128, 64)
    activation: str = "relu"
    loss: str = "cross_entropy"
    optimizer: str = "adam"
    lr: float | None = None
    batch_size: int = 32
    epochs: int = 30
    weight_decay: float = 0.0
    dropout: float = 0.0
    seed: int = 0
    val_split: float = 0.1
    test_split: float = 0.2

    def validate(self) -> None:
        if self.model not in ("mlp", "cnn"):
            raise ValueError(f"--model must be 'mlp' or 'cnn', got {self.model!r}")
        if self.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        if not 0 < self.test_split < 1:
            raise ValueError(f"--test-split must be between 0 and 1, got {self.test_split}")
        if not 0 <= self.val_split < 1:
            raise ValueError(f"--val-split must be in [0, 1), got {self.val_split}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout must be in [0, 1), got {self.dropout}")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"--hidden sizes must be positive, got {','.join(map(str, self.hidden))}")
        _check_options(self)


@dataclass
class RunResult:
    run_dir: str
    test: dict
    history: History
    model: object = None
    info: dict = field(default_factory=dict)


# ---- data ------------------------------------------------------------------------------------------
def load_dataset(spec: str, images: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Features, integer labels and a description for a dataset name (see ``chainrule train --help``)."""
    from ..data import datasets

    if spec == "digits":
        ds = datasets.digits(images=images)
        x, y = ds.features, ds.targets
        info = {"scale": 16.0}
    elif spec in ("mnist-subset", "mnist_subset"):
        ds = datasets.mnist_subset()
        x, y = ds.features, ds.targets
        info = {"scale": 1.0}
        if not images:
            x = x.reshape(len(x), -1)
    elif spec.startswith("idx:"):
        ds = datasets.mnist(spec[4:], split="train")
        x, y = ds.features, ds.targets
        info = {"scale": 1.0}
        if not images:
            x = x.reshape(len(x), -1)
    elif spec.startswith("csv:"):
        from ..data import read_csv

        x, y = read_csv(spec[4:])
        info = {}
    elif spec in TABULAR_SETS[1:]:
        ds = getattr(datasets, spec)(n_samples=1000, seed=seed)
        x, y = ds.features, ds.targets
        info = {}
    else:
        raise ValueError(
            f"unknown dataset {spec!r}; use digits, moons, circles, spirals, xor, blobs, mnist-subset, "
            "idx:FOLDER or csv:FILE"
        )
    source = spec[4:] if spec.startswith(("csv:", "idx:")) else spec
    check_features(x._data if isinstance(x, Tensor) else x, source)
    y = check_labels(y._data if isinstance(y, Tensor) else y, source)
    x = np.asarray(x._data if isinstance(x, Tensor) else x, dtype=np.float32)
    if images and x.ndim != 4:
        raise ValueError(f"--model cnn needs an image dataset (digits, mnist-subset, idx:...), not {spec!r}")
    info.update({"n_samples": int(len(x)), "n_classes": int(y.max()) + 1, "input_shape": list(x.shape[1:])})
    return x, y, info


def split_indices(n: int, test_split: float, val_split: float, seed: int) -> dict:
    """A seeded shuffle cut into test, validation and training indices."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_split))
    test, rest = order[:n_test], order[n_test:]
    n_val = int(round(len(rest) * val_split))
    return {"test": test, "val": rest[:n_val], "train": rest[n_val:]}


def _preprocess(x: np.ndarray, prep: dict) -> np.ndarray:
    if "mean" in prep:
        return ((x - np.asarray(prep["mean"], np.float32)) / np.asarray(prep["std"], np.float32)).astype(np.float32)
    return (x / np.float32(prep.get("scale", 1.0))).astype(np.float32)


def _fit_preprocessing(x_train: np.ndarray, images: bool, info: dict) -> dict:
    if images:
        return {"scale": float(info.get("scale", 1.0))}
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0
    return {"mean": mean.tolist(), "std": std.tolist()}


# ---- model -----------------------------------------------------------------------------------------
def build_model(config: TrainConfig, info: dict):
    from .. import nn

    n_classes = info["n_classes"]
    if config.model == "cnn":
        c, h, w = info["input_shape"]
        if min(h, w) >= 16:
            return nn.LeNet(in_channels=c, num_classes=n_classes, image_size=(h, w))
        # 8x8 images keep only 2x2 maps after two pools; wider convolutions with batch norm and
        # dropout take LeNet from about 97% to 98-99% test accuracy on the digits
        return nn.LeNet(in_channels=c, num_classes=n_classes, image_size=(h, w), channels=(16, 32),
                        batch_norm=True, dropout=0.3)
    sizes = [int(np.prod(info["input_shape"])), *config.hidden, n_classes]
    check_model_fits(sizes, "--hidden")
    return nn.MLP(sizes, activation=config.activation, dropout=config.dropout, output_activation=head(config.loss))


def _run_dir(out: str, name: str | None, config: TrainConfig) -> str:
    base = name or f"{config.dataset.split(':')[0]}-{config.model}"
    path = os.path.join(out, base)
    if name is None:
        k = 2
        while os.path.exists(path):
            path = os.path.join(out, f"{base}-{k}")
            k += 1
    os.makedirs(path, exist_ok=True)
    return path


def _distributed(model, batch_size: int):
    """(the model to train, the per-rank batch, this rank): DDP over the ranks when launched by mpiexec."""
    from .. import distributed

    if not distributed.launched_by_mpi():
        return model, batch_size, 0
    group = distributed.init()
    if group.size == 1:
        return model, batch_size, 0
    if batch_size < group.size:
        raise ValueError(f"train: the batch size {batch_size} is smaller than the {group.size} ranks sharing it")
    from ..nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model), batch_size // group.size, group.rank


# ---- the three commands ----------------------------------------------------------------------------
def train_run(config: TrainConfig, out: str = "runs", name: str | None = None, verbose: int = 1,
              plots: bool = False) -> RunResult:
    """Train as ``chainrule train`` does and write the run folder.

    Launched by ``mpiexec`` over several ranks (``chainrule train --nproc N``), the model is wrapped in
    DistributedDataParallel, ``config.batch_size`` is the global batch (split evenly over the ranks,
    so a run matches one process), and only rank 0 writes the run folder (the others return a
    result whose ``run_dir`` is None)."""
    from .. import io
    from .fit import evaluate, fit

    config.validate()
    images = config.model == "cnn"
    x, y, info = load_dataset(config.dataset, images, config.seed)
    parts = split_indices(len(x), config.test_split, config.val_split, config.seed)
    check_splits(parts, len(x), config.test_split, config.val_split)
    y = one_hot_targets(config.loss, y, info["n_classes"])
    prep = _fit_preprocessing(x[parts["train"]], images, info)
    x = _preprocess(x, prep)
    backend.manual_seed(config.seed)
    model = build_model(config, info)
    train = (Tensor(x[parts["train"]]), Tensor(y[parts["train"]]))
    val = (Tensor(x[parts["val"]]), Tensor(y[parts["val"]])) if len(parts["val"]) else None
    test = (Tensor(x[parts["test"]]), Tensor(y[parts["test"]]))
    callbacks = []
    if plots:
        from ..viz import Diagnostics
        from ..viz.plots import DecisionBoundaryRecorder

        callbacks.append(Diagnostics())
        if x.ndim == 2 and x.shape[1] == 2:
            callbacks.append(DecisionBoundaryRecorder(*train, every=max(1, config.epochs // 20)))
    net, batch_size, rank = _distributed(model, config.batch_size)
    history = fit(net, train, loss=config.loss, optimizer=config.optimizer, epochs=config.epochs,
                  batch_size=batch_size, lr=config.lr, weight_decay=config.weight_decay,
                  val_data=val, verbose=verbose, callbacks=callbacks)
    scores = evaluate(model, test, loss=config.loss)
    if rank != 0:
        return RunResult(None, scores, history, model, {})
    run_dir = _run_dir(out, name, config)
    io.save(model, os.path.join(run_dir, "model.safetensors"))
    record = {"config": asdict(config), "data": info, "preprocessing": prep, "test": scores,
              "epochs_run": len(history.epochs)}
    atomic_write_text(os.path.join(run_dir, "run.json"), json.dumps(record, indent=1))
    history.to_json(os.path.join(run_dir, "history.json"))
    history.to_csv(os.path.join(run_dir, "history.csv"))
    from ..viz.plots import training_curves

    training_curves(history, path=os.path.join(run_dir, "curves.png"))
    if plots:
        from ..viz import plots as viz_plots

        recorder = callbacks[1] if len(callbacks) > 1 else None
        viz_plots.write_all(run_dir, model=model, data=test, diagnostics=callbacks[0],
                            recorder=recorder)
    return RunResult(run_dir, scores, history, model, record)


def read_run(run_dir: str) -> dict:
    path = os.path.join(run_dir, "run.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir} is not a run folder (no run.json); train one with `chainrule train`")
    with open(path) as f:
        return json.load(f)


def _load_run_model(run_dir: str):
    from .. import io

    path = os.path.join(run_dir, "model.safetensors")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir} has no model.safetensors")
    return io.load_model(path)


def evaluate_run(run_dir: str) -> dict:
    """Rebuild a run's model and score it on the run's held-out test set."""
    from .fit import evaluate

    record = read_run(run_dir)
    config = TrainConfig(**{**record["config"], "hidden": tuple(record["config"]["hidden"])})
    x, y, _ = load_dataset(config.dataset, config.model == "cnn", config.seed)
    parts = split_indices(len(x), config.test_split, config.val_split, config.seed)
    x = _preprocess(x, record["preprocessing"])
    y = one_hot_targets(config.loss, y, record["data"]["n_classes"])
    model = _load_run_model(run_dir)
    return evaluate(model, (Tensor(x[parts["test"]]), Tensor(y[parts["test"]])), loss=config.loss)


def predict_run(run_dir: str, csv_path: str, proba: bool = False) -> list:
    """Rows ``[index, class(, probabilities...)]`` (with a header row) for each example in a CSV file."""
    from ..ops.reduce import softmax
    from .fit import predict

    record = read_run(run_dir)
    shape = record["data"]["input_shape"]
    x = _read_feature_csv(csv_path, int(np.prod(shape)))
    x = _preprocess(x.reshape((len(x), *shape)) if record["config"]["model"] == "cnn" else x, record["preprocessing"])
    model = _load_run_model(run_dir)
    out = predict(model, Tensor(x))
    classes = out._data.argmax(axis=-1)
    header = ["index", "class"]
    rows = []
    probs = None
    if proba:  # a sigmoid head gives one probability per class: normalised to sum to 1
        probs = out._data / out._data.sum(axis=-1, keepdims=True) if head(record["config"]["loss"]) == "sigmoid" \
            else softmax(out, dim=-1)._data
    if proba:
        header += [f"p{k}" for k in range(out.shape[-1])]
    for i, c in enumerate(classes):
        row = [i, int(c)]
        if proba:
            row += [f"{p:.6f}" for p in probs[i]]
        rows.append(row)
    return [header, *rows]


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _read_feature_csv(path: str, n_features: int) -> np.ndarray:
    from ..data.datasets import read_table
    from ..errors import DataError

    table = read_table(path, who="predict")
    if table.shape[1] != n_features:
        raise ValueError(f"{path}: rows have {table.shape[1]} values, the model expects {n_features} features per row")
    bad = np.argwhere(~np.isfinite(table))
    if len(bad):
        row, col = (int(v) for v in bad[0])
        raise DataError(f"predict: {path}: data row {row + 1} has {table[row, col]} in column {col + 1}; every "
                        f"feature must be a finite number ({_rows(len(np.unique(bad[:, 0])))} like this)")
    return table.astype(np.float32)


def _check_options(config: TrainConfig) -> None:
    """The options the command's parser cannot check alone (the API gets the same messages)."""
    from ..errors import InvalidArgumentError

    if config.model == "cnn" and head(config.loss) is not None:
        raise InvalidArgumentError(f"--loss {config.loss} needs a {head(config.loss)} head, which --model cnn "
                                   "does not have; use --loss cross_entropy (or --model mlp)")
    loss_form(config.loss)
    if not (np.isfinite(config.weight_decay) and config.weight_decay >= 0):
        raise InvalidArgumentError(f"--weight-decay must be a finite number >= 0, got {config.weight_decay}")
    if config.lr is not None and not np.isfinite(config.lr):
        raise InvalidArgumentError(f"--lr must be a finite positive number, got {config.lr}")
