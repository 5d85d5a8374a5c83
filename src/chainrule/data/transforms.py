"""Augmentation for batches of images (N x C x H x W), vectorized over the batch and seeded.

Each sample of the batch gets its own random shift/crop/flip, drawn in one call; the pixels are then
gathered through a strided window view, with no Python loop over samples. Functions accept an ndarray or
a Tensor and return the same type (augmentation happens on data, outside the graph). A single image
C x H x W is treated as a batch of one.

>>> augment = cr.data.transforms.Compose([cr.data.transforms.RandomShift(2)])
>>> loader = cr.data.DataLoader(train, batch_size=64, shuffle=True, transform=augment)

Flips suit natural images and clothes (Fashion-MNIST), not digits: a mirrored 3 is not a 3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..tensor import Tensor
from .dataset import resolve_generator

__all__ = [
    "Compose",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomShift",
    "horizontal_flip",
    "random_crop",
    "random_horizontal_flip",
    "random_shift",
]


def _batch(x, what: str) -> tuple[np.ndarray, bool]:
    arr = x._data if isinstance(x, Tensor) else np.asarray(x)
    if arr.ndim == 3:
        return arr[None], True
    if arr.ndim != 4:
        raise ValueError(f"{what}: expected images N x C x H x W (or one image C x H x W), got shape {arr.shape}")
    return arr, False


def _finish(out: np.ndarray, single: bool, original):
    out = out[0] if single else out
    return Tensor._wrap(out) if isinstance(original, Tensor) else out


def _pair(value, what: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, (int, np.integer)) or v < 0 for v in pair):
        raise ValueError(f"{what}: expected a non-negative int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def random_crop(x, size, padding=0, fill: float = 0.0, generator=None):
    """Pad each image by ``padding`` pixels of value ``fill`` on every side, then cut a ``size`` window
    at a random position drawn independently for each image (PyTorch's RandomCrop, batched)."""
    arr, single = _batch(x, "random_crop")
    out_h, out_w = _pair(size, "random_crop size")
    pad_h, pad_w = _pair(padding, "random_crop padding")
    n, c, h, w = arr.shape
    if pad_h or pad_w:
        padded = np.full((n, c, h + 2 * pad_h, w + 2 * pad_w), fill, dtype=arr.dtype)
        padded[:, :, pad_h : pad_h + h, pad_w : pad_w + w] = arr
    else:
        padded = arr
    big_h, big_w = padded.shape[2:]
    if out_h > big_h or out_w > big_w:
        raise ValueError(f"random_crop: crop size {(out_h, out_w)} is larger than the padded image {(big_h, big_w)}")
    rng = resolve_generator(generator, "random_crop")
    top = rng.integers(0, big_h - out_h + 1, size=n)
    left = rng.integers(0, big_w - out_w + 1, size=n)
    # windows[n, c, i, j] is the out_h x out_w window whose corner is (i, j): a view, no copy.
    windows = sliding_window_view(padded, (out_h, out_w), axis=(2, 3))
    out = windows[np.arange(n), :, top, left]
    return _finish(np.ascontiguousarray(out), single, x)


def random_shift(x, max_shift=2, fill: float = 0.0, generator=None):
    """Translate each image by a random whole number of pixels in [-max_shift, max_shift] along each
    axis (independently per image), filling the uncovered border with ``fill``; the size is kept."""
    arr, single = _batch(x, "random_shift")
    out = random_crop(arr, arr.shape[2:], padding=max_shift, fill=fill, generator=generator)
    return _finish(out, single, x)


def horizontal_flip(x):
    """Mirror every image left to right."""
    arr, single = _batch(x, "horizontal_flip")
    return _finish(arr[..., ::-1].copy(), single, x)


def random_horizontal_flip(x, p: float = 0.5, generator=None):
    """Mirror each image left to right with probability ``p``, drawn per image."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"random_horizontal_flip: p must be a probability in [0, 1], got {p!r}")
    arr, single = _batch(x, "random_horizontal_flip")
    flip = resolve_generator(generator, "random_horizontal_flip").random(arr.shape[0]) < p
    out = np.where(flip[:, None, None, None], arr[..., ::-1], arr)
    return _finish(out, single, x)


class _Transform:
    def __init__(self, generator=None) -> None:
        # An int seed becomes one Generator, so successive batches differ but runs repeat.
        self.generator = None if generator is None else resolve_generator(generator, type(self).__name__)


class RandomCrop(_Transform):
    """Batched :func:`random_crop` as a callable: ``RandomCrop(28, padding=4)``."""

    def __init__(self, size, padding=0, fill: float = 0.0, generator=None) -> None:
        super().__init__(generator)
        self.size, self.padding, self.fill = size, padding, fill

    def __call__(self, x):
        return random_crop(x, self.size, self.padding, self.fill, self.generator)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomShift(_Transform):
    """Batched :func:`random_shift` as a callable: ``RandomShift(2)`` moves digits by up to 2 pixels."""

    def __init__(self, max_shift=2, fill: float = 0.0, generator=None) -> None:
        super().__init__(generator)
        self.max_shift, self.fill = max_shift, fill

    def __call__(self, x):
        return random_shift(x, self.max_shift, self.fill, self.generator)

    def __repr__(self) -> str:
        return f"RandomShift(max_shift={self.max_shift})"


class RandomHorizontalFlip(_Transform):
    """Batched :func:`random_horizontal_flip` as a callable."""

    def __init__(self, p: float = 0.5, generator=None) -> None:
        super().__init__(generator)
        self.p = p

    def __call__(self, x):
        return random_horizontal_flip(x, self.p, self.generator)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Normalize:
    """(x - mean) / std per channel, for N x C x H x W (or C x H x W) inputs."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = np.asarray(mean, dtype=np.float64).reshape(-1, 1, 1)
        self.std = np.asarray(std, dtype=np.float64).reshape(-1, 1, 1)
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {std}")

    def __call__(self, x):
        arr, single = _batch(x, "Normalize")
        if arr.shape[1] != len(self.mean):
            raise ValueError(f"Normalize: expected {len(self.mean)} channels, got {arr.shape[1]} (input shape {arr.shape})")
        out = ((arr - self.mean.astype(arr.dtype)) / self.std.astype(arr.dtype)).astype(arr.dtype, copy=False)
        return _finish(out, single, x)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.ravel().tolist()}, std={self.std.ravel().tolist()})"


class Compose:
    """Apply transforms one after the other."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"
