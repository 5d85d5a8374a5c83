"""DataLoader: batches of a dataset, reshuffled every epoch from a seedable generator."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from ..tensor import Tensor
from .dataset import _whole_arrays, resolve_generator


def default_collate(samples: list):
    """Stack a list of samples into a batch: Tensors/arrays/numbers are stacked along a new first axis,
    tuples and lists are collated element by element, dicts key by key."""
    first = samples[0]
    if isinstance(first, Tensor):
        return Tensor._wrap(np.stack([s._data for s in samples]))
    if isinstance(first, (np.ndarray, numbers.Number, np.generic)):
        return Tensor._wrap(np.asarray(np.stack([np.asarray(s) for s in samples])))
    if isinstance(first, Mapping):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise ValueError("default_collate: the samples of a batch have different numbers of elements")
        parts = [default_collate(list(p)) for p in zip(*samples)]
        return parts if isinstance(first, list) else tuple(parts)
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}")


class DataLoader:
    """Iterate over ``dataset`` in batches of Tensors.

    >>> loader = cr.data.DataLoader(train, batch_size=64, shuffle=True, generator=0)
    >>> for x, y in loader:          # one epoch; len(loader) iterations
    ...     ...

    - ``shuffle``: a new permutation is drawn at the start of every epoch (every ``iter(loader)``)
      from ``generator`` — an int seed (one Generator made once, so epochs differ but the run is
      reproducible), a ``numpy.random.Generator``, or None for the package generator, which
      ``cr.manual_seed`` reseeds.
    - ``drop_last``: drop the last incomplete batch; ``len(loader)`` is then ``n // batch_size``,
      otherwise ``ceil(n / batch_size)``.
    - For a TensorDataset (or Subsets of one) a batch is taken by fancy-indexing each whole array
      with the batch's indices: no Python loop over samples. Other datasets are read sample by
      sample and stacked with ``collate_fn`` (default: :func:`default_collate`).
    - ``sampler``: an iterable of indices that sets the order instead of ``shuffle`` (for example a
      :class:`DistributedSampler`, which gives each rank its share).
    - ``transform``: an optional callable applied to the inputs (first element) of every batch, e.g. a
      vectorized augmentation from ``cr.data.transforms``.
    - ``state_dict()`` / ``load_state_dict()`` hold the loader's own generator state (when it has one),
      so a resumed run draws the same shuffles; the package generator is saved with
      ``cr.io.get_rng_state()``.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        generator=None,
        collate_fn: Callable | None = None,
        transform: Callable | None = None,
        num_workers: int = 0,
        sampler=None,
    ) -> None:
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: expected a dataset with __len__ and __getitem__, got {type(dataset).__name__}")
        if num_workers:
            warnings.warn(
                f"DataLoader: num_workers={num_workers} is ignored; chainrule builds batches in the main process "
                "(a TensorDataset batch is a single fancy index, too cheap to farm out)"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn or default_collate
        self.transform = transform
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: pass either sampler= or shuffle=True, not both (the sampler decides the order)")
        self.sampler = sampler
        # An int seed becomes one Generator now, so each epoch draws a new order, reproducibly.
        self.generator = generator if generator is None else resolve_generator(generator, "DataLoader")

    def __len__(self) -> int:
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        if self.sampler is not None:
            return np.fromiter(iter(self.sampler), dtype=np.int64)
        n = len(self.dataset)
        if self.shuffle:
            return resolve_generator(self.generator, "DataLoader").permutation(n)
        return np.arange(n)

    def __iter__(self) -> Iterator:
        order = self._order()
        stop = len(self) * self.batch_size
        whole = _whole_arrays(self.dataset) if self.collate_fn is default_collate else None
        if whole is not None:
            arrays, base = whole
            if base is not None:
                order = base[order]
        for start in range(0, min(stop, len(order)), self.batch_size):
            index = order[start : start + self.batch_size]
            if whole is not None:
                batch = tuple(Tensor._wrap(a[index]) for a in whole[0])
            else:
                batch = self.collate_fn([self.dataset[int(i)] for i in index])
            yield self._transformed(batch)

    def _transformed(self, batch):
        if self.transform is None:
            return batch
        if isinstance(batch, tuple):
            return (self.transform(batch[0]), *batch[1:])
        if isinstance(batch, list):
            return [self.transform(batch[0]), *batch[1:]]
        return self.transform(batch)

    def state_dict(self) -> dict:
        """The state of the loader's own generator (empty when it shuffles from the package generator)."""
        if self.generator is None:
            return {}
        return {"generator": self.generator.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        if not state.get("generator"):
            return
        if self.generator is None:
            raise ValueError("DataLoader.load_state_dict: the state holds a generator, but this loader has none; pass generator=")
        self.generator.bit_generator.state = state["generator"]

    def __repr__(self) -> str:
        return (
            f"DataLoader({len(self.dataset)} samples, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last={self.drop_last}, {len(self)} batches)"
        )
