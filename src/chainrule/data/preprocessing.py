"""Preprocessing fitted on training data: standardization and one-hot encoding."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .dataset import Subset, TensorDataset


def _array(x, what: str) -> np.ndarray:
    if isinstance(x, Tensor):
        return x._data
    if isinstance(x, (TensorDataset, Subset)):
        return x.features
    arr = np.asarray(x)
    if arr.dtype == object:
        raise TypeError(f"{what}: expected an array, a Tensor or a dataset, got {type(x).__name__}")
    return arr


def _like(result: np.ndarray, original):
    return Tensor._wrap(result) if isinstance(original, Tensor) else result


class Standardizer:
    """Shift and scale features to zero mean and unit variance, with statistics fitted on training data
    only (then applied unchanged to validation and test data):

        z = (x - mean) / std,    mean, std over ``axis`` (population std, as scikit-learn's StandardScaler).

    ``axis=0`` (default) gives per-feature statistics for N x D data; ``axis=(0, 2, 3)`` gives per-channel
    statistics for N x C x H x W images. A constant feature (std 0) gets scale 1, so it maps to 0 rather
    than to NaN. Fit on an array, a Tensor or a dataset (its features); transforms return the input's type.

    >>> scaler = cr.data.Standardizer().fit(train.features)
    >>> X_test = scaler.transform(test.features)
    """

    def __init__(self, axis=0, eps: float = 0.0) -> None:
        self.axis = tuple(axis) if isinstance(axis, (tuple, list)) else axis
        self.eps = float(eps)
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, x) -> Standardizer:
        arr = _array(x, "Standardizer.fit")
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise ValueError(f"Standardizer.fit: expected at least one sample, got an array of shape {arr.shape}")
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"Standardizer.fit: expected numeric data, got {arr.dtype}")
        work = arr.astype(np.float64)
        self.mean = work.mean(axis=self.axis, keepdims=True)
        std = np.sqrt(work.var(axis=self.axis, keepdims=True) + self.eps)
        self.scale = np.where(std > 0, std, 1.0)
        self._dtype = arr.dtype if arr.dtype.kind == "f" else np.dtype(np.float32)
        return self

    def _check(self, arr: np.ndarray, what: str) -> np.ndarray:
        if self.mean is None:
            raise RuntimeError(f"Standardizer.{what}: call fit() on the training data first")
        try:
            np.broadcast_shapes(arr.shape, self.mean.shape)
        except ValueError:
            raise ValueError(
                f"Standardizer.{what}: fitted on samples of shape {self.mean.shape[1:]}, got data of shape {arr.shape}"
            ) from None
        if arr.ndim != self.mean.ndim:
            raise ValueError(
                f"Standardizer.{what}: fitted on {self.mean.ndim}-D data, got data of shape {arr.shape}"
            )
        return arr

    def transform(self, x):
        """(x - mean) / std, in the input's floating dtype (integers become float32)."""
        if isinstance(x, (TensorDataset, Subset)):
            return self._transform_dataset(x)
        arr = self._check(_array(x, "Standardizer.transform"), "transform")
        return _like(self._apply(arr, lambda a: (a - self.mean) / self.scale), x)

    def inverse_transform(self, z):
        """z * std + mean: back to the original units."""
        arr = self._check(_array(z, "Standardizer.inverse_transform"), "inverse_transform")
        return _like(self._apply(arr, lambda a: a * self.scale + self.mean), z)

    def _apply(self, arr: np.ndarray, fn) -> np.ndarray:
        # The arithmetic runs in float64 (a float32 mean of -50.000x would be off by 2e-6), in blocks of
        # rows so a large float32 dataset never needs a full float64 copy.
        dtype = arr.dtype if arr.dtype.kind == "f" else self._dtype
        out = np.empty(arr.shape, dtype)
        if self.mean.shape[0] != 1 or arr.ndim == 0:
            out[...] = fn(arr.astype(np.float64))
            return out
        step = max(1, (1 << 22) // max(1, arr[:1].size))
        for start in range(0, arr.shape[0], step):
            out[start : start + step] = fn(arr[start : start + step].astype(np.float64))
        return out

    def fit_transform(self, x):
        return self.fit(x).transform(x)

    def _transform_dataset(self, ds) -> TensorDataset:
        arrays = ds.arrays if isinstance(ds, TensorDataset) else ds._arrays("transform")
        out = TensorDataset(self.transform(arrays[0]), *arrays[1:])
        for attr in ("classes", "name"):
            if hasattr(ds, attr):
                setattr(out, attr, getattr(ds, attr))
        return out

    # Saved with cr.save like a module's state, so a prediction run applies the same statistics.
    def state_dict(self) -> dict:
        if self.mean is None:
            raise RuntimeError("Standardizer.state_dict: the standardizer has not been fitted")
        return {"mean": self.mean.copy(), "scale": self.scale.copy(), "axis": self.axis, "eps": self.eps}

    def load_state_dict(self, state: dict) -> Standardizer:
        def arr(v):
            return np.asarray(v._data if isinstance(v, Tensor) else v, dtype=np.float64)

        self.mean, self.scale = arr(state["mean"]), arr(state["scale"])
        axis = state.get("axis", self.axis)
        self.axis = tuple(axis) if isinstance(axis, (tuple, list)) else axis
        self.eps = float(state.get("eps", self.eps))
        self._dtype = np.dtype(np.float32)
        return self

    def __repr__(self) -> str:
        fitted = "fitted" if self.mean is not None else "not fitted"
        return f"Standardizer(axis={self.axis}, {fitted})"


def one_hot(labels, num_classes: int | None = None, dtype=None):
    """One-hot encode integer class labels: shape (...,) -> (..., num_classes), 1 at each label.

    ``num_classes`` defaults to ``max(labels) + 1``. Returns a Tensor for a Tensor input, else an
    ndarray; ``dtype`` defaults to float32 (what losses such as MSE or BCE take).
    """
    arr = _array(labels, "one_hot")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        elif arr.size:
            raise TypeError(f"one_hot: labels must be integers, got {arr.dtype}")
        else:
            arr = arr.astype(np.int64)
    if num_classes is None:
        num_classes = int(arr.max()) + 1 if arr.size else 0
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"one_hot: labels must lie in [0, {num_classes}) for num_classes={num_classes}, "
            f"got values from {int(arr.min())} to {int(arr.max())}"
        )
    out = np.zeros(arr.shape + (int(num_classes),), dtype=np.dtype(dtype) if dtype is not None else np.float32)
    np.put_along_axis(out, arr[..., None].astype(np.intp), 1, axis=-1)
    return _like(out, labels)
