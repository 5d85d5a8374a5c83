"""Losses that fit class labels, and the checks that refuse data nothing sensible can be learnt from.

A classification run has integer labels ``0 .. C-1``. Each ``--loss`` sees them in the form it needs:

============================  ===================  ============================================
loss                          targets              model head
============================  ===================  ============================================
cross_entropy, hinge          class indices        logits (none)
nll                           class indices        LogSoftmax (log-probabilities)
mse, l1, huber                one-hot rows         logits (none)
bce_with_logits               one-hot rows         logits (none)
bce                           one-hot rows         Sigmoid (probabilities)
============================  ===================  ============================================

>>> one_hot_targets("mse", np.array([0, 2]), 3)
array([[1., 0., 0.],
       [0., 0., 1.]], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError, LossTargetError, ResourceError

#: loss name -> (target form, head the model needs or None)
CLASSIFICATION_LOSSES = {
    "cross_entropy": ("index", None), "ce": ("index", None),
    "hinge": ("index", None), "multi_margin": ("index", None),
    "nll": ("index", "log_softmax"),
    "mse": ("one_hot", None), "l2": ("one_hot", None), "l1": ("one_hot", None), "mae": ("one_hot", None),
    "huber": ("one_hot", None), "bce_with_logits": ("one_hot", None),
    "bce": ("one_hot", "sigmoid"),
}


def loss_form(loss: str) -> tuple:
    """``(target form, head)`` for a classification loss name; a clear error for any other."""
    if loss not in CLASSIFICATION_LOSSES:
        raise LossTargetError(
            f"--loss {loss!r} does not fit class labels; choose from {', '.join(sorted(CLASSIFICATION_LOSSES))}"
        )
    return CLASSIFICATION_LOSSES[loss]


def head(loss: str) -> str | None:
    """The activation appended after the last layer so the model's output is what ``loss`` expects."""
    return loss_form(loss)[1]


def one_hot_targets(loss: str, y: np.ndarray, n_classes: int) -> np.ndarray:
    """The labels ``y`` as ``loss`` needs them: unchanged class indices, or float32 one-hot rows."""
    if loss_form(loss)[0] == "index":
        return y
    out = np.zeros((len(y), n_classes), dtype=np.float32)
    out[np.arange(len(y)), y] = 1.0
    return out


def check_labels(y, source: str) -> np.ndarray:
    """Integer class labels ``0 .. C-1`` from ``y``, or a :class:`DataError` naming ``source`` and the
    first offending row: non-finite or fractional values, negative labels, a single class."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{source}: expected one class label per example, got labels of shape {y.shape}")
    if len(y) == 0:
        raise DataError(f"{source}: no examples")
    if y.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(y))
        if bad.size:
            raise DataError(f"{source}: the label of data row {bad[0] + 1} is {y[bad[0]]}; class labels must be "
                            "whole numbers 0, 1, 2, ...")
        bad = np.flatnonzero(y != np.round(y))
        if bad.size:
            raise DataError(f"{source}: the label of data row {bad[0] + 1} is {y[bad[0]]:g}, not a whole number; "
                            "class labels must be 0, 1, 2, ... (this looks like a regression target)")
    elif y.dtype.kind not in "iub":
        raise DataError(f"{source}: class labels must be whole numbers, got {y.dtype}")
    y = y.astype(np.int64)
    if (y < 0).any():
        first = int(np.flatnonzero(y < 0)[0])
        raise DataError(f"{source}: the label of data row {first + 1} is {y[first]}; class labels must be 0, 1, 2, ... "
                        f"(labels {sorted(set(np.unique(y).tolist()))[:5]} found; map -1/+1 to 0/1)")
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(f"{source}: every example has the label {classes[0]}; a classifier needs at least two "
                        "classes")
    return y


def check_features(x, source: str) -> None:
    """A :class:`DataError` naming the first example and feature that is NaN or infinite."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        return
    finite = np.isfinite(x)
    if finite.all():
        return
    flat = x.reshape(len(x), -1)
    row, col = (int(i[0]) for i in np.nonzero(~np.isfinite(flat)))
    raise DataError(f"{source}: data row {row + 1} has the value {flat[row, col]} in column {col + 1}; features "
                    "must be finite numbers")


def check_splits(parts: dict, n: int, test_split: float, val_split: float) -> None:
    """Refuse a split that leaves the test, validation (when asked for) or training set empty."""
    if len(parts["test"]) == 0:
        raise DataError(f"--test-split {test_split:g} of {n} examples leaves no test example; raise it")
    rest = n - len(parts["test"])
    if val_split > 0 and len(parts["val"]) == 0:
        raise DataError(f"--val-split {val_split:g} of the {rest} examples left after the test split leaves no "
                        "validation example; raise it or use --val-split 0")
    if len(parts["train"]) == 0:
        raise DataError(f"--val-split {val_split:g} and --test-split {test_split:g} leave no training example "
                        f"of {n}; lower them")


def _memory_bytes() -> int | None:
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_model_fits(sizes, option: str = "--hidden", itemsize: int = 4, copies: int = 4) -> None:
    """Refuse an MLP of layer ``sizes`` whose weights (with their gradients and the optimizer's state,
    ``copies`` arrays in all) would not fit in this machine's memory, before anything is allocated."""
    n = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    need = n * itemsize * copies
    have = _memory_bytes()
    if have is not None and need > have:
        raise ResourceError(
            f"{option} {','.join(str(s) for s in sizes[1:-1])}: a model of {n:,} parameters needs about "
            f"{need / 2**30:.1f} GiB for its weights, gradients and optimizer state, more than this machine's "
            f"{have / 2**30:.1f} GiB; use smaller layers"
        )


def check_output_fits_loss(loss_fn, output, who: str = "fit") -> None:
    """Refuse, before the first step, a model output that cannot be what ``loss_fn`` expects: NLLLoss on
    outputs that are not log-probabilities (rows whose exponentials do not sum to 1)."""
    if type(loss_fn).__name__ != "NLLLoss":
        return
    out = np.asarray(output._data if hasattr(output, "_data") else output, dtype=np.float64)
    if out.ndim < 2 or not out.size:
        return
    rows = np.moveaxis(out, 1, -1).reshape(-1, out.shape[1])
    with np.errstate(over="ignore"):
        sums = np.exp(rows).sum(axis=1)
    worst = int(np.argmax(np.abs(np.log(np.where(sums > 0, sums, 1e-300)))))
    if not np.isfinite(sums[worst]) or abs(sums[worst] - 1.0) > 1e-3:
        raise LossTargetError(
            f"{who}: NLLLoss needs log-probabilities, but the model's outputs are not (the exponentials of "
            f"one row sum to {sums[worst]:.4g}, not 1); end the model with LogSoftmax(dim=1) or use "
            "loss='cross_entropy' on logits"
        )
