"""``fit``, ``evaluate`` and ``predict``: the training loop written once, with Keras' comfort.

One step is the lecture's loop: predict, compute the loss, backpropagate, update —
``optimizer.zero_grad(); loss.backward(); optimizer.step()``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Sequence

import numpy as np

from .. import autograd
from ..errors import ChainruleError
from ..tensor import Tensor
from .callbacks import Callback
from .history import History
from .metrics import get_metric
from .targets import check_output_fits_loss

LOSSES = {
    "cross_entropy": "CrossEntropyLoss", "ce": "CrossEntropyLoss", "mse": "MSELoss", "l2": "MSELoss",
    "l1": "L1Loss", "mae": "L1Loss", "bce": "BCELoss", "bce_with_logits": "BCEWithLogitsLoss",
    "nll": "NLLLoss", "hinge": "MultiMarginLoss", "multi_margin": "MultiMarginLoss", "huber": "HuberLoss",
}

OPTIMIZERS = {
    # name: (class name, default lr, extra defaults)
    "sgd": ("SGD", 0.01, {}),
    "gd": ("SGD", 0.01, {}),
    "momentum": ("SGD", 0.01, {"momentum": 0.9}),
    "nesterov": ("SGD", 0.01, {"momentum": 0.9, "nesterov": True}),
    "adam": ("Adam", 1e-3, {}),
    "adamw": ("AdamW", 1e-3, {}),
    "rmsprop": ("RMSprop", 1e-3, {}),
    "adagrad": ("Adagrad", 1e-2, {}),
}


class TrainingError(ChainruleError, RuntimeError):
    """Training cannot go on (for example the loss became NaN or infinite)."""


def get_loss(loss):
    """A loss module from a name ('cross_entropy', 'mse', 'l1', 'bce', 'bce_with_logits', 'nll',
    'hinge', 'huber') or a callable ``loss(output, target)`` returned as it is."""
    if callable(loss):
        return loss
    from .. import nn

    try:
        return getattr(nn, LOSSES[loss])()
    except KeyError:
        raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)} or pass a loss module") from None


def get_optimizer(optimizer, params, lr: float | None = None, weight_decay: float = 0.0, **kwargs):
    """An optimizer from a name ('sgd', 'momentum', 'nesterov', 'adam', 'adamw', 'rmsprop', 'adagrad')
    or an Optimizer instance returned as it is."""
    if not isinstance(optimizer, str):
        return optimizer
    from .. import optim

    try:
        cls_name, default_lr, extra = OPTIMIZERS[optimizer.lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose from {sorted(OPTIMIZERS)}") from None
    options = {**extra, **kwargs}
    if weight_decay:
        options["weight_decay"] = weight_decay
    return getattr(optim, cls_name)(params, lr=default_lr if lr is None else lr, **options)


def as_loader(data, batch_size: int = 32, shuffle: bool = False):
    """Accept a DataLoader, a Dataset, or an ``(inputs, targets)`` pair of arrays or Tensors."""
    from ..data import DataLoader, Dataset, TensorDataset

    if isinstance(data, DataLoader):
        return data
    if isinstance(data, Dataset):
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = (d if isinstance(d, Tensor) else Tensor(np.asarray(d)) for d in data)
        if len(x) != len(y):
            raise ValueError(f"fit: {len(x)} inputs but {len(y)} targets")
        return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle)
    raise TypeError(
        f"expected a DataLoader, a Dataset or an (inputs, targets) pair, got {type(data).__name__}"
    )


def _threshold(loss_fn) -> float:
    """Where a single output splits the two classes: 0 for logits, 0.5 for probabilities."""
    return 0.0 if type(loss_fn).__name__ in ("BCEWithLogitsLoss", "MultiMarginLoss") else 0.5


class _Progress:
    """A tqdm bar over all steps, or nothing when tqdm is missing or verbose is 0."""

    def __init__(self, total: int, verbose: int):
        self.bar = None
        if not verbose:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            warnings.warn("fit: install tqdm for a progress bar (pip install 'chainrule[all]')")
            return
        self.bar = tqdm(total=total, unit="step", dynamic_ncols=True, leave=True)

    def update(self, desc: str, postfix: dict) -> None:
        if self.bar is not None:
            self.bar.set_description(desc, refresh=False)
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in postfix.items()}, refresh=False)
            self.bar.update(1)

    def postfix(self, values: dict) -> None:
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in values.items()})

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Trainer:
    """The state of one ``fit``: what callbacks see (``model``, ``optimizer``, ``history``,
    ``loss_fn``, ``stop_training``, ``epoch``, ``step``)."""

    def __init__(self, model, loss_fn, optimizer, metrics: dict, callbacks: Sequence[Callback]):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.metrics = metrics
        self.callbacks = list(callbacks)
        self.history = History()
        self.stop_training = False
        self.epoch = 0
        self.step = 0

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(*args)


def fit(
    model,
    train_data,
    loss="cross_entropy",
    optimizer="adam",
    epochs: int = 10,
    batch_size: int = 32,
    lr: float | None = None,
    weight_decay: float = 0.0,
    val_data=None,
    metrics: Iterable = ("accuracy",),
    callbacks: Iterable[Callback] = (),
    verbose: int = 1,
    shuffle: bool = True,
    initial_epoch: int = 0,
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train_data`` and return its :class:`History`.

    ``loss`` and ``optimizer`` are names or objects (see :func:`get_loss`, :func:`get_optimizer`);
    ``train_data``/``val_data`` are DataLoaders, Datasets or ``(inputs, targets)`` pairs. Metrics are
    averaged over each epoch's batches (train) and over the whole validation set. A NaN or infinite
    loss stops training with a :class:`TrainingError` naming the epoch and step. ``initial_epoch``
    (Keras' name) continues a resumed run: epochs ``initial_epoch + 1 .. epochs`` are run and recorded.

    Distributed: when ``model`` is a ``cr.nn.parallel.DistributedDataParallel`` over several ranks,
    ``batch_size`` is per rank and, at every step, each rank reads its block of the global batch that
    one process with ``batch_size x ranks`` would read (the same shuffle, drawn in step on every rank),
    so the run trains to the same weights as that one process. The epoch's loss and metrics are
    averaged over all ranks' samples, and only rank 0 shows the progress bar.

    >>> history = cr.fit(model, (X, y), loss="cross_entropy", optimizer="adam", epochs=5, verbose=0)
    >>> history["loss"][-1] < history["loss"][0]
    True
    """
    if epochs < 0:
        raise ValueError(f"fit: epochs must be non-negative, got {epochs}")
    if not 0 <= initial_epoch <= epochs:
        raise ValueError(f"fit: initial_epoch must be between 0 and epochs ({epochs}), got {initial_epoch}")
    group = _group_of(model)
    loader = as_loader(train_data, batch_size, shuffle) if group is None else _shard(train_data, batch_size, shuffle, group)
    if group is not None and group.rank != 0:
        verbose = 0
    val_loader = as_loader(val_data, max(batch_size, 256)) if val_data is not None else None
    loss_fn = get_loss(loss)
    opt = get_optimizer(optimizer, model.parameters(), lr=lr, weight_decay=weight_decay)
    metric_fns = {(m if isinstance(m, str) else m.__name__): get_metric(m) for m in metrics}
    threshold = _threshold(loss_fn)
    trainer = Trainer(model, loss_fn, opt, metric_fns, callbacks)
    history = trainer.history
    history.params = {"epochs": epochs, "batch_size": getattr(loader, "batch_size", batch_size),
                      "steps_per_epoch": len(loader), "optimizer": type(opt).__name__,
                      "loss": type(loss_fn).__name__}
    progress = _Progress((epochs - initial_epoch) * len(loader), verbose)
    trainer._call("on_train_begin", trainer)
    # a loss that overflows is reported once, as a TrainingError naming the step, not as NumPy warnings
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for epoch in range(initial_epoch + 1, epochs + 1):
                trainer.epoch = epoch
                if group is not None:
                    getattr(loader.sampler, "set_epoch", lambda epoch: None)(epoch)
                logs = _train_epoch(trainer, loader, epoch, epochs, threshold, progress, group)
                if val_loader is not None:
                    val = evaluate(model, val_loader, loss=loss_fn, metrics=metric_fns)
                    logs.update({f"val_{k}": v for k, v in val.items()})
                    progress.postfix({k: v for k, v in logs.items() if k not in ("epoch", "seconds", "lr")})
                history.epochs.append(logs)
                trainer._call("on_epoch_end", epoch, logs)
                if trainer.stop_training:
                    break
    finally:
        progress.close()
    trainer._call("on_train_end", history.epochs[-1] if history.epochs else {})
    return history


def _group_of(model):
    """The process group of a DistributedDataParallel model over several ranks, else None."""
    group = getattr(model, "_group", None) if hasattr(model, "reducer") else None
    return group if group is not None and group.size > 1 else None


def _shard(data, batch_size: int, shuffle: bool, group):
    """This rank's DataLoader over ``data``: its share of every global batch (see :class:`_BatchShard`)."""
    from ..data import DataLoader

    if isinstance(data, DataLoader):
        if data.sampler is not None:
            return data
        data, batch_size, shuffle = data.dataset, data.batch_size, data.shuffle
    dataset = as_loader(data, batch_size).dataset
    return DataLoader(dataset, batch_size=batch_size, sampler=_BatchShard(len(dataset), batch_size, shuffle, group))


class _BatchShard:
    """The order in which rank r of W reads the data: the permutation one process would draw (from the
    package generator, in step on every rank) cut into global batches of W x B, of which rank r takes
    the r-th block of B. So W ranks with batch B see, step by step, the very samples of one process
    with batch W x B, and train to the same weights. A last, short global batch is split as evenly as
    possible (fewer than W samples left over are skipped, as every rank must take the same steps)."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, group):
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.rank, self.size = group.rank, group.size

    def _parts(self) -> tuple[int, int]:
        step = self.batch_size * self.size
        full, tail = divmod(self.n, step)
        return full, (tail if tail >= self.size else 0)

    def __iter__(self):
        from .. import backend

        order = backend.generator().permutation(self.n) if self.shuffle else np.arange(self.n)
        full, tail = self._parts()
        step, b, r = self.batch_size * self.size, self.batch_size, self.rank
        mine = [order[i * step + r * b : i * step + (r + 1) * b] for i in range(full)]
        if tail:
            mine.append(np.array_split(order[full * step : full * step + tail], self.size)[r])
        return iter(np.concatenate(mine).tolist() if mine else [])

    def __len__(self) -> int:
        full, tail = self._parts()
        return full * self.batch_size + (-(-tail // self.size) if tail else 0)


def _averaged_over_ranks(group, total_loss: float, seen: int, metric_sums: dict) -> tuple:
    """The sums of every rank, so the epoch's figures are averages over all ranks' samples."""
    from ..distributed import all_reduce

    sums = Tensor._wrap(np.array([total_loss, seen, *metric_sums.values()], dtype=np.float64))
    all_reduce(sums, op="sum", group=group)
    values = sums._data.tolist()
    return values[0], int(values[1]), dict(zip(metric_sums, values[2:]))


def _train_epoch(trainer: Trainer, loader, epoch: int, epochs: int, threshold: float, progress,
                 group=None) -> dict:
    model, loss_fn, opt, history = trainer.model, trainer.loss_fn, trainer.optimizer, trainer.history
    model.train()
    start = time.perf_counter()
    trainer._call("on_epoch_begin", epoch, {"epoch": epoch})
    total_loss, seen = 0.0, 0
    metric_sums = dict.fromkeys(trainer.metrics, 0.0)
    for i, (xb, yb) in enumerate(loader, 1):
        trainer.step += 1
        trainer._call("on_batch_begin", trainer.step, {"epoch": epoch, "batch": i})
        output = model(xb)
        if trainer.step == 1:
            check_output_fits_loss(loss_fn, output, "fit")
        loss = loss_fn(output, yb)
        value = loss.item()
        if not math.isfinite(value):
            raise TrainingError(
                f"fit: the loss became {value} at epoch {epoch}, step {i} (iteration {trainer.step}); "
                "lower the learning rate or check the inputs for NaN/inf"
            )
        opt.zero_grad()
        loss.backward()
        trainer._call("on_after_backward", trainer.step, {"epoch": epoch, "batch": i, "loss": value})
        opt.step()
        n = len(xb)
        total_loss += value * n
        seen += n
        history.iterations.append(value)
        batch_logs = {"epoch": epoch, "batch": i, "loss": value}
        for name, fn in trainer.metrics.items():
            m = _metric(fn, output, yb, threshold)
            metric_sums[name] += m * n
            batch_logs[name] = m
        progress.update(f"epoch {epoch}/{epochs}", {"loss": total_loss / seen,
                                                    **{k: s / seen for k, s in metric_sums.items()}})
        trainer._call("on_batch_end", trainer.step, batch_logs)
        if trainer.stop_training:
            break
    if group is not None:
        total_loss, seen, metric_sums = _averaged_over_ranks(group, total_loss, seen, metric_sums)
    logs = {"epoch": epoch, "loss": total_loss / max(seen, 1)}
    logs.update({k: s / max(seen, 1) for k, s in metric_sums.items()})
    logs["lr"] = float(opt.param_groups[0]["lr"])
    logs["seconds"] = time.perf_counter() - start
    return logs


def _modes(model) -> list:
    """Each submodule with its ``training`` flag, so a mixed model (say, frozen BatchNorm layers in
    eval mode inside a model in train mode) gets back exactly the modes it had."""
    return [(m, m.training) for m in model.modules()]


def _restore_modes(modes: list) -> None:
    for m, training in modes:
        object.__setattr__(m, "training", training)


def _metric(fn, output: Tensor, target, threshold: float) -> float:
    try:
        return float(fn(output, target, threshold=threshold))
    except TypeError:
        return float(fn(output, target))


def evaluate(model, data, loss="cross_entropy", metrics: Iterable | dict = ("accuracy",),
             batch_size: int = 256) -> dict:
    """Loss and metrics of ``model`` on ``data`` (in eval mode, without recording a graph); every
    submodule is left in the mode it was in, also when the model raises."""
    loader = as_loader(data, batch_size)
    loss_fn = get_loss(loss) if loss is not None else None
    metric_fns = metrics if isinstance(metrics, dict) else {
        (m if isinstance(m, str) else m.__name__): get_metric(m) for m in metrics
    }
    threshold = _threshold(loss_fn)
    modes = _modes(model)
    model.eval()
    total, seen = 0.0, 0
    sums = dict.fromkeys(metric_fns, 0.0)
    try:
        with autograd.no_grad():
            for xb, yb in loader:
                out = model(xb)
                n = len(xb)
                seen += n
                if loss_fn is not None:
                    total += loss_fn(out, yb).item() * n
                for name, fn in metric_fns.items():
                    sums[name] += _metric(fn, out, yb, threshold) * n
    finally:
        _restore_modes(modes)
    result = {"loss": total / max(seen, 1)} if loss_fn is not None else {}
    result.update({k: s / max(seen, 1) for k, s in sums.items()})
    return result


def predict(model, inputs, batch_size: int = 256) -> Tensor:
    """The model's outputs for ``inputs`` (array, Tensor or DataLoader), in eval mode without a graph;
    every submodule is left in the mode it was in, also when the model raises."""
    from ..ops.shape import cat

    modes = _modes(model)
    model.eval()
    outs = []
    try:
        with autograd.no_grad():
            if hasattr(inputs, "__iter__") and not isinstance(inputs, (Tensor, np.ndarray, list, tuple)):
                for batch in inputs:
                    outs.append(model(batch[0] if isinstance(batch, (tuple, list)) else batch))
            else:
                x = inputs if isinstance(inputs, Tensor) else Tensor(np.asarray(inputs))
                for start in range(0, len(x), batch_size):
                    outs.append(model(x[start:start + batch_size]))
    finally:
        _restore_modes(modes)
    if not outs:
        raise ValueError("predict: no inputs")
    return outs[0] if len(outs) == 1 else cat(outs, 0)
