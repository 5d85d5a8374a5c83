"""Datasets: anything with ``__len__`` and ``__getitem__``; TensorDataset holds whole arrays so that a
batch is one fancy-indexing operation per array, not a Python loop over samples.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from .. import backend
from ..tensor import Tensor


class Dataset:
    """Base class of map-style datasets (PyTorch's protocol): ``len(ds)`` samples, ``ds[i]`` one sample.

    Subclasses implement ``__getitem__`` and ``__len__``. A sample is usually a tuple
    ``(features, target)``; the DataLoader stacks samples into batches.
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


def _as_tensor(value, what: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor._wrap(value)
    try:
        return Tensor(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what}: expected Tensors or arrays, got {type(value).__name__}") from err


class TensorDataset(Dataset):
    """Samples are rows of whole tensors: ``ds[i] == (t[i] for t in tensors)``.

    >>> ds = cr.data.TensorDataset(cr.randn(100, 3), cr.zeros(100, dtype=cr.int64))
    >>> x, y = ds[0]
    >>> x.shape, len(ds)
    ((3,), 100)

    Arrays are kept as they are (an ndarray is wrapped without a copy, its dtype kept). ``ds[idx]`` with
    an integer array returns a whole batch; the DataLoader uses that, so a batch costs one fancy index
    per tensor. For two tensors, ``ds.features`` and ``ds.targets`` are their ndarrays (scikit-learn's X, y).
    """

    def __init__(self, *tensors) -> None:
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        self.tensors = tuple(_as_tensor(t, "TensorDataset") for t in tensors)
        sizes = [t._data.shape[0] if t._data.ndim else None for t in self.tensors]
        if None in sizes:
            raise ValueError("TensorDataset: every tensor needs a first (sample) dimension; got a 0-d tensor")
        if len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: all tensors must have the same number of samples, got sizes {sizes}")

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index._data
        return tuple(Tensor._wrap(t._data[index]) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0]._data.shape[0]

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """The underlying ndarrays (no copies)."""
        return tuple(t._data for t in self.tensors)

    @property
    def features(self) -> np.ndarray:
        """The first array: the inputs X."""
        return self.tensors[0]._data

    @property
    def targets(self) -> np.ndarray:
        """The last array: the targets y (for a dataset of one tensor, the inputs themselves)."""
        return self.tensors[-1]._data

    def __repr__(self) -> str:
        shapes = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in self.tensors)
        return f"{type(self).__name__}({len(self)} samples: {shapes})"


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (in that order)."""

    def __init__(self, dataset, indices) -> None:
        indices = np.asarray(indices._data if isinstance(indices, Tensor) else indices)
        if indices.size == 0:
            indices = indices.astype(np.int64)
        if indices.ndim != 1 or indices.dtype.kind not in "iu":
            raise TypeError(f"Subset: indices must be a 1-D sequence of integers, got {indices.dtype} of shape {indices.shape}")
        n = len(dataset)
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"Subset: indices must lie in [-{n}, {n}) for a dataset of {n} samples")
        self.dataset = dataset
        self.indices = np.where(indices < 0, indices + n, indices).astype(np.int64)

    def __getitem__(self, index):
        if isinstance(index, Tensor):
            index = index._data
        if isinstance(index, (list, np.ndarray)):
            return self.dataset[self.indices[np.asarray(index)]]
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def features(self) -> np.ndarray:
        """The inputs of these samples (a copy), when the underlying dataset keeps whole arrays."""
        return self._arrays("features")[0]

    @property
    def targets(self) -> np.ndarray:
        """The targets of these samples (a copy), when the underlying dataset keeps whole arrays."""
        return self._arrays("targets")[-1]

    def _arrays(self, what: str) -> tuple[np.ndarray, ...]:
        found = _whole_arrays(self)
        if found is None:
            raise AttributeError(f"Subset.{what}: the underlying {type(self.dataset).__name__} does not keep whole arrays")
        arrays, index = found
        return tuple(a[index] for a in arrays)

    def __repr__(self) -> str:
        return f"Subset({len(self)} of {len(self.dataset)} samples)"


class ConcatDataset(Dataset):
    """Several datasets one after the other."""

    def __init__(self, datasets: Sequence) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: expected at least one dataset")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets])

    def __len__(self) -> int:
        return int(self.cumulative_sizes[-1])

    def __getitem__(self, index: int):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"ConcatDataset: index {index} out of range for {n} samples")
        index = index + n if index < 0 else index
        which = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        start = 0 if which == 0 else int(self.cumulative_sizes[which - 1])
        return self.datasets[which][index - start]


def _whole_arrays(dataset) -> tuple[tuple[np.ndarray, ...], np.ndarray | None] | None:
    """``(arrays, index)`` such that sample i of ``dataset`` is ``[a[index[i]] for a in arrays]``, if the
    dataset is a TensorDataset or a chain of Subsets of one (``index`` None means all rows in order);
    None otherwise. This is the DataLoader's fast path."""
    index = None
    while isinstance(dataset, Subset):
        index = dataset.indices if index is None else dataset.indices[index]
        dataset = dataset.dataset
    if isinstance(dataset, TensorDataset):
        return dataset.arrays, index
    return None


def resolve_generator(generator, what: str) -> np.random.Generator:
    """A NumPy Generator from ``None`` (the package generator, see ``cr.manual_seed``), an int seed, or
    a Generator."""
    if generator is None:
        return backend.generator()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"{what}: generator must be None, an int seed or a numpy.random.Generator, got {type(generator).__name__}")


def random_split(dataset, lengths: Sequence, generator=None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random Subsets of the given lengths.

    ``lengths`` are sample counts summing to ``len(dataset)``, or fractions summing to 1 (then the
    remainder after flooring is given round-robin to the first splits, as PyTorch does).
    ``generator``: an int seed, a ``numpy.random.Generator`` or None for the package generator.

    >>> train, test = cr.data.random_split(ds, [0.8, 0.2], generator=0)
    """
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: expected at least one length")
    if any(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1.0, abs_tol=1e-6):
        if any(x < 0 for x in lengths):
            raise ValueError(f"random_split: fractions must be non-negative, got {lengths}")
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(not isinstance(x, numbers.Integral) or x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative integers or fractions summing to 1, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: lengths {lengths} sum to {sum(lengths)}, but the dataset has {n} samples")
    perm = resolve_generator(generator, "random_split").permutation(n)
    bounds = np.cumsum([0] + [int(x) for x in lengths])
    return [Subset(dataset, perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
