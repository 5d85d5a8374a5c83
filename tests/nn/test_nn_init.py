"""cr.nn.init: each distribution checked statistically (seeded, with bounds loose enough to hold and
tight enough to catch a wrong constant), gains and fans as in PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import init


def _weight(*shape):
    return cr.nn.Parameter(cr.zeros(*shape, dtype=cr.float64))


def test_calculate_gain_matches_pytorchs_table():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("conv2d") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.1) == pytest.approx(math.sqrt(2 / 1.01))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


def test_uniform_and_normal_moments():
    w = init.uniform_(_weight(200, 200), -2.0, 3.0).detach().numpy()
    assert w.min() >= -2.0 and w.max() <= 3.0
    assert abs(w.mean() - 0.5) < 0.03 and abs(w.var() - 25 / 12) < 0.05
    w = init.normal_(_weight(200, 200), 1.5, 0.5).detach().numpy()
    assert abs(w.mean() - 1.5) < 0.01 and abs(w.std() - 0.5) < 0.01


def test_constant_zeros_ones_eye():
    assert (init.constant_(_weight(3, 4), 0.7).detach().numpy() == 0.7).all()
    assert (init.zeros_(init.ones_(_weight(3, 4))).detach().numpy() == 0).all()
    assert (init.ones_(_weight(5)).detach().numpy() == 1).all()
    np.testing.assert_array_equal(init.eye_(_weight(3, 4)).detach().numpy(), np.eye(3, 4))


@pytest.mark.parametrize("shape", [(300, 200), (64, 16, 3, 3)])
def test_xavier_uniform_and_normal_variance(shape):
    fan_in = shape[1] * math.prod(shape[2:])
    fan_out = shape[0] * math.prod(shape[2:])
    var = 2.0 / (fan_in + fan_out)
    w = init.xavier_uniform_(_weight(*shape), gain=2.0).detach().numpy()
    bound = 2.0 * math.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.var() / (4 * var) - 1) < 0.03
    w = init.xavier_normal_(_weight(*shape)).detach().numpy()
    assert abs(w.var() / var - 1) < 0.03 and abs(w.mean()) < 0.01 * math.sqrt(var) * 10


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity, a", [("relu", 0), ("leaky_relu", 0.1), ("tanh", 0)])
def test_kaiming_uniform_and_normal_variance(mode, nonlinearity, a):
    shape = (400, 100)
    fan = 100 if mode == "fan_in" else 400
    gain = init.calculate_gain(nonlinearity, a)
    var = gain**2 / fan
    w = init.kaiming_normal_(_weight(*shape), a=a, mode=mode, nonlinearity=nonlinearity).detach().numpy()
    assert abs(w.var() / var - 1) < 0.03
    w = init.kaiming_uniform_(_weight(*shape), a=a, mode=mode, nonlinearity=nonlinearity).detach().numpy()
    assert np.abs(w).max() <= math.sqrt(3 * var) and abs(w.var() / var - 1) < 0.03


def test_orthogonal_gives_orthonormal_rows_or_columns():
    w = init.orthogonal_(_weight(6, 10), gain=2.0).detach().numpy()
    np.testing.assert_allclose(w @ w.T, 4 * np.eye(6), atol=1e-12)
    w = init.orthogonal_(_weight(10, 6)).detach().numpy()
    np.testing.assert_allclose(w.T @ w, np.eye(6), atol=1e-12)
    w = init.orthogonal_(_weight(4, 2, 3)).detach().numpy().reshape(4, 6)
    np.testing.assert_allclose(w @ w.T, np.eye(4), atol=1e-12)


def test_trunc_normal_stays_inside_and_is_symmetric():
    w = init.trunc_normal_(_weight(300, 300), mean=0.0, std=1.0, a=-1.0, b=1.0).detach().numpy()
    assert w.min() >= -1.0 and w.max() <= 1.0
    # variance of N(0,1) truncated to [-1, 1]: 1 - 2 phi(1) / (2 Phi(1) - 1) = 0.29112
    assert abs(w.var() - 0.29112) < 0.005 and abs(w.mean()) < 0.005
    w = init.trunc_normal_(_weight(1000), mean=5.0, std=0.1, a=4.0, b=6.0).detach().numpy()
    assert abs(w.mean() - 5.0) < 0.02


def test_init_is_seeded_by_manual_seed_and_keeps_the_dtype():
    cr.manual_seed(4)
    a = init.kaiming_normal_(cr.nn.Parameter(cr.zeros(5, 5))).detach().numpy().copy()
    cr.manual_seed(4)
    b = init.kaiming_normal_(cr.nn.Parameter(cr.zeros(5, 5)))
    assert b.dtype == np.float32
    np.testing.assert_array_equal(a, b.detach().numpy())


def test_fans_need_two_dimensions():
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(5,\)"):
        init.xavier_uniform_(_weight(5))
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_uniform_(_weight(3, 3), mode="fan_avg")
