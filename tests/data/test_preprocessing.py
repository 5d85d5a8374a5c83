import numpy as np
import pytest

import chainrule as cr
from chainrule.data import Standardizer, TensorDataset, one_hot, random_split


def test_standardizer_gives_zero_mean_unit_variance_on_training_data():
    X = np.random.default_rng(0).normal([1.0, -50.0, 1e4], [2.0, 0.1, 300.0], size=(500, 3)).astype(np.float32)
    scaler = Standardizer().fit(X)
    Z = scaler.transform(X)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(Z.std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, rtol=1e-5, atol=1e-3)


def test_standardizer_matches_scikit_learn():
    sklearn = pytest.importorskip("sklearn.preprocessing")
    X = np.random.default_rng(1).normal(size=(40, 5)) * [1, 2, 3, 4, 5]
    X[:, 2] = 7.0
    ours = Standardizer().fit(X[:30]).transform(X[30:])
    ref = sklearn.StandardScaler().fit(X[:30]).transform(X[30:])
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def test_constant_feature_maps_to_zero_not_nan():
    X = np.array([[1.0, 5.0], [3.0, 5.0]])
    Z = Standardizer().fit_transform(X)
    assert np.all(np.isfinite(Z))
    np.testing.assert_array_equal(Z[:, 1], [0.0, 0.0])
    np.testing.assert_array_equal(Z[:, 0], [-1.0, 1.0])


def test_statistics_come_from_the_training_data_only():
    train = np.array([[0.0], [2.0]])
    test = np.array([[4.0]])
    scaler = Standardizer().fit(train)
    np.testing.assert_array_equal(scaler.transform(test), [[3.0]])


def test_per_channel_statistics_for_images():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(20, 3, 4, 4)) * np.array([1.0, 5.0, 10.0])[None, :, None, None]
    Z = Standardizer(axis=(0, 2, 3)).fit_transform(X)
    np.testing.assert_allclose(Z.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(Z.std(axis=(0, 2, 3)), 1, atol=1e-12)


def test_tensors_in_tensors_out():
    t = cr.tensor([[1.0, 2.0], [3.0, 6.0]])
    z = Standardizer().fit(t).transform(t)
    assert isinstance(z, cr.Tensor)
    np.testing.assert_allclose(z.numpy(), [[-1, -1], [1, 1]])


def test_datasets_and_subsets():
    ds = cr.data.datasets.blobs(100, seed=0)
    train, test = random_split(ds, [80, 20], generator=0)
    scaler = Standardizer().fit(train)
    np.testing.assert_allclose(scaler.mean[0], train.features.mean(axis=0), rtol=1e-6)
    scaled = scaler.transform(test)
    assert isinstance(scaled, TensorDataset) and len(scaled) == 20
    np.testing.assert_array_equal(scaled.targets, test.targets)


def test_integer_input_becomes_float32():
    Z = Standardizer().fit_transform(np.array([[1], [3]]))
    assert Z.dtype == np.float32


def test_errors():
    with pytest.raises(RuntimeError, match="call fit"):
        Standardizer().transform(np.zeros((2, 2)))
    scaler = Standardizer().fit(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"fitted on samples of shape \(4,\), got data of shape \(3, 5\)"):
        scaler.transform(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="at least one sample"):
        Standardizer().fit(np.zeros((0, 3)))


def test_one_hot():
    out = one_hot(np.array([2, 0, 1]))
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    assert out.dtype == np.float32
    t = one_hot(cr.tensor([1, 1]), num_classes=4)
    assert isinstance(t, cr.Tensor) and t.shape == (2, 4)
    np.testing.assert_array_equal(one_hot(np.array([[0, 1]]), 2), [[[1, 0], [0, 1]]])


def test_one_hot_errors():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*from 0 to 3"):
        one_hot(np.array([0, 3]), num_classes=3)
    with pytest.raises(ValueError, match="from -1"):
        one_hot(np.array([-1, 1]))
    with pytest.raises(TypeError, match="labels must be integers"):
        one_hot(np.array([0.5]))
