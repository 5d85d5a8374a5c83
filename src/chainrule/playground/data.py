"""The playground's data: the 2-D sets of TensorFlow Playground (and multiclass ones), the input
features computed from a point, and a reader for an uploaded CSV that never runs what it reads.

Points lie in about [-6, 6]^2, as on TensorFlow Playground. Classification labels are int64 class
indices 0..K-1; regression targets are float64 of shape (N, 1).

>>> X, y = make_dataset("spiral", n_samples=100, noise=0, seed=0)
>>> X.shape, y.shape, sorted(set(y.tolist()))
((100, 2), (100,), [0, 1])
"""

from __future__ import annotations

import numpy as np

from ..data import datasets

CLASSIFICATION = ("circle", "xor", "gauss", "spiral")
REGRESSION = ("plane", "multigauss")
DATASETS = CLASSIFICATION + REGRESSION
# Sets that come with any number of classes (2..5); circle and xor have two.
MULTICLASS = ("gauss", "spiral")
MAX_CLASSES = 5

# name -> (text shown on the page, f(x1, x2))
FEATURES = {
    "x1": ("X1", lambda a, b: a),
    "x2": ("X2", lambda a, b: b),
    "x1sq": ("X1^2", lambda a, b: a * a),
    "x2sq": ("X2^2", lambda a, b: b * b),
    "x1x2": ("X1*X2", lambda a, b: a * b),
    "sinx1": ("sin(X1)", lambda a, b: np.sin(a)),
    "sinx2": ("sin(X2)", lambda a, b: np.sin(b)),
}

MAX_CSV_BYTES = 1_000_000
MAX_CSV_ROWS = 10_000
RADIUS = 6.0  # the drawn square is [-6, 6]^2 for the generated sets


def make_dataset(name: str, n_samples: int = 500, noise: float = 0.0, seed: int = 0, classes: int = 2):
    """``(X, y)`` for one of :data:`DATASETS`; ``noise`` is TensorFlow Playground's 0..50 (percent)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if not 0 <= noise <= 50:
        raise ValueError(f"noise must be between 0 and 50, got {noise}")
    if classes != 2 and name not in MULTICLASS:
        raise ValueError(f"dataset {name} has 2 classes; {classes} classes work with {' and '.join(MULTICLASS)}")
    rng = np.random.default_rng(seed)
    n, f = int(n_samples), noise / 50.0
    if name == "circle":  # a disc of class 1 inside a ring of class 0 (the library's two circles, filled)
        X, y = datasets.circles(n, noise=0.0, factor=0.5, seed=rng, return_X_y=True)
        radius = np.where(y == 1, rng.uniform(0, 2.5, n), rng.uniform(3.5, 5.0, n))
        X = X / np.linalg.norm(X, axis=1, keepdims=True) * radius[:, None] + f * 1.5 * rng.standard_normal((n, 2))
    elif name == "xor":  # label = whether x1 and x2 have the same sign
        X = rng.uniform(-5, 5, (n, 2))
        X += np.where(X > 0, 0.3, -0.3)  # a gap along the axes, as on TensorFlow Playground
        y = (X[:, 0] * X[:, 1] >= 0).astype(np.int64)
        X = X + f * 1.5 * rng.standard_normal((n, 2))
    elif name == "gauss":  # K Gaussian blobs on a circle (two: at (2, 2) and (-2, -2))
        angles = np.pi / 4 + 2 * np.pi * np.arange(classes) / classes
        centres = 2.0 * np.sqrt(2.0) * np.column_stack([np.cos(angles), np.sin(angles)])
        X, y = datasets.blobs(n, centers=centres, cluster_std=0.5 + 1.5 * f, seed=rng, return_X_y=True)
    elif name == "spiral":  # K interleaved arms (the library's spirals, scaled to radius 5)
        X, y = datasets.spirals(n, noise=0.0, n_classes=classes, turns=1.75, seed=rng, return_X_y=True)
        X = 5.0 * X + f * 1.0 * rng.standard_normal((n, 2))
    elif name == "plane":  # y = (x1 + x2) / 10, a tilted plane
        X = rng.uniform(-6, 6, (n, 2))
        y = ((X[:, 0] + X[:, 1]) / 10.0 + f * 0.5 * rng.standard_normal(n))[:, None]
    else:  # multigauss: a sum of signed Gaussian bumps
        X = rng.uniform(-6, 6, (n, 2))
        y = (_bumps(X) + f * 0.5 * rng.standard_normal(n))[:, None]
    return np.asarray(X, np.float64), (np.asarray(y, np.int64) if name in CLASSIFICATION else np.asarray(y, np.float64))


def _bumps(X: np.ndarray) -> np.ndarray:
    centres = np.array([[-4, 2.5], [0, 2.5], [4, 2.5], [-4, -2.5], [0, -2.5], [4, -2.5]])
    signs = np.array([-1, 1, -1, 1, -1, 1])
    d2 = ((X[:, None, :] - centres[None]) ** 2).sum(-1)
    return (signs * np.exp(-d2 / 2.0)).sum(-1)


def features(X: np.ndarray, names) -> np.ndarray:
    """The chosen input features of 2-D points ``X``, one column each, in the order of ``names``."""
    a, b = X[:, 0], X[:, 1]
    return np.column_stack([FEATURES[n][1](a, b) for n in names]).astype(np.float64)


def split(n: int, train_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and the test part (``train_ratio`` in percent, 10..90)."""
    perm = np.random.default_rng(seed + 1).permutation(n)
    n_train = min(max(int(round(n * train_ratio / 100.0)), 1), n - 1)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


def parse_csv(text: str | bytes, name: str = "the file"):
    """Read points from CSV text: rows ``x1,x2,label`` (integer classes 0..4) or ``x1,x2,target``
    (any number: regression). A first row that is not numeric is a header. Only numbers are read:
    nothing in the file is evaluated.

    Returns ``(X, y, problem, classes)``; raises ValueError with the line at fault.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_CSV_BYTES:
            raise ValueError(f"{name} is {len(text):,} bytes; the limit is {MAX_CSV_BYTES:,} bytes (1 MB)")
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError(f"{name} is not a text file (it is not UTF-8)") from None
    if len(text.encode()) > MAX_CSV_BYTES:
        raise ValueError(f"{name} is larger than {MAX_CSV_BYTES:,} bytes (1 MB)")
    lines = [(i + 1, line.strip()) for i, line in enumerate(text.splitlines()) if line.strip()]
    if not lines:
        raise ValueError(f"{name} is empty; expected rows x1,x2,label")
    rows = []
    for k, (number, line) in enumerate(lines):
        cells = [c.strip() for c in line.replace(";", ",").split(",")]
        if len(cells) != 3:
            raise ValueError(f"{name}, line {number}: expected 3 values (x1, x2, label or target), got {len(cells)}")
        try:
            values = [float(c) for c in cells]
        except ValueError:
            if k == 0:
                continue  # a header
            raise ValueError(f"{name}, line {number}: {line[:60]!r} is not three numbers") from None
        if not all(np.isfinite(values)):
            raise ValueError(f"{name}, line {number}: values must be finite numbers, got {line[:60]!r}")
        rows.append(values)
        if len(rows) > MAX_CSV_ROWS:
            raise ValueError(f"{name} has more than {MAX_CSV_ROWS:,} rows; the limit is {MAX_CSV_ROWS:,}")
    if len(rows) < 4:
        raise ValueError(f"{name} has {len(rows)} data rows; at least 4 are needed (some to train, some to test)")
    table = np.array(rows, dtype=np.float64)
    X, t = table[:, :2], table[:, 2]
    if np.all(t == np.round(t)) and t.min() >= 0 and t.max() < MAX_CLASSES:
        y = t.astype(np.int64)
        classes = int(y.max()) + 1
        if classes < 2:
            raise ValueError(f"{name}: every label is {int(y[0])}; a classification needs at least two classes")
        missing = sorted(set(range(classes)) - set(y.tolist()))
        if missing:
            raise ValueError(f"{name}: labels must be 0..{classes - 1} with none missing; no row has label {missing[0]}")
        return X, y, "classification", classes
    return X, t[:, None], "regression", 0
