"""Metrics: accuracy, the zero-one loss, and regression errors, on model outputs and targets."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor


def _array(x) -> np.ndarray:
    return x._data if isinstance(x, Tensor) else np.asarray(x)


def predicted_classes(output, threshold: float = 0.5) -> np.ndarray:
    """Class decisions from a model's output: argmax over the last dimension for several classes,
    ``output > threshold`` for a single output (use threshold 0 for logits, 0.5 for probabilities)."""
    out = _array(output)
    if out.ndim >= 2 and out.shape[-1] > 1:
        return out.argmax(axis=-1)
    return (out.reshape(out.shape[0], -1)[:, 0] > threshold).astype(np.int64) if out.ndim else out > threshold


def _targets(target, n_out: int) -> np.ndarray:
    t = _array(target)
    if t.ndim >= 2 and t.shape[-1] > 1:  # one-hot or class probabilities
        return t.argmax(axis=-1)
    return t.reshape(t.shape[0]) if t.ndim > 1 else t


def correct(output, target, threshold: float = 0.5) -> int:
    """How many predictions are right."""
    pred = predicted_classes(output, threshold)
    t = _targets(target, pred.shape[0] if pred.ndim else 1)
    if pred.shape != t.shape:
        raise ValueError(f"accuracy: {pred.shape[0]} predictions but targets of shape {_array(target).shape}")
    return int((pred == t.astype(pred.dtype, copy=False)).sum())


def accuracy(output, target, threshold: float = 0.5) -> float:
    """Fraction of correct predictions (argmax for several classes, a threshold for one output).

    >>> accuracy(cr.tensor([[2.0, 1.0], [0.0, 3.0]]), cr.tensor([0, 0]))
    0.5
    """
    n = _array(output).shape[0] if _array(output).ndim else 1
    return correct(output, target, threshold) / max(n, 1)


def zero_one_loss(output, target, threshold: float = 0.5, normalize: bool = True) -> float:
    """The zero-one loss: the fraction (or, with ``normalize=False``, the count) of mistakes."""
    n = _array(output).shape[0] if _array(output).ndim else 1
    wrong = n - correct(output, target, threshold)
    return wrong / max(n, 1) if normalize else wrong


def mean_squared_error(output, target) -> float:
    out, t = _array(output), _array(target)
    return float(np.mean((out - t.reshape(out.shape)) ** 2))


def mean_absolute_error(output, target) -> float:
    out, t = _array(output), _array(target)
    return float(np.mean(np.abs(out - t.reshape(out.shape))))


METRICS = {
    "accuracy": accuracy,
    "acc": accuracy,
    "zero_one_loss": zero_one_loss,
    "mse": mean_squared_error,
    "mae": mean_absolute_error,
}


def get_metric(name_or_fn):
    """A metric function from its name ('accuracy', 'zero_one_loss', 'mse', 'mae') or a callable."""
    if callable(name_or_fn):
        return name_or_fn
    try:
        return METRICS[name_or_fn]
    except KeyError:
        raise ValueError(f"unknown metric {name_or_fn!r}; choose from {sorted(METRICS)} or pass a function") from None
