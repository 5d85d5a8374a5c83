"""The Novikoff bound against numbers worked out by hand on a four-point data set."""

import numpy as np
import pytest

from chainrule.models import Perceptron, novikoff_bound

# w* = (2, 1), b* = 2: the extended separator (2, 1, 2) has norm sqrt(4 + 1 + 4) = 3.
X = np.array([[1.0, 0.0], [-2.0, -1.0], [0.0, -3.0], [-3.0, 2.0]])
Y = np.array([1, -1, -1, -1])
W_STAR, B_STAR = [2.0, 1.0], 2.0
# y (w*.x + b*) per example: 4, 3, 1, 2; divided by the norm 3, the normalised margins are
# 4/3, 1, 1/3, 2/3, so gamma = 1/3. The examples extended by a constant 1 have squared norms
# 1+0+1 = 2, 4+1+1 = 6, 0+9+1 = 10, 9+4+1 = 14, so R^2 = 14.
# Bound (R / gamma)^2 = 14 / (1/9) = 126. (Unnormalised, gamma = 1 and the "bound" would be 14;
# without the constant 1 in R, 13 * 9 = 117.)
BOUND = 126.0


def test_novikoff_bound_equals_the_hand_computed_value():
    assert novikoff_bound(X, Y, W_STAR, B_STAR) == pytest.approx(BOUND, rel=1e-12)


@pytest.mark.parametrize("scale", [0.1, 1.0, 7.0])
def test_novikoff_bound_does_not_depend_on_the_scale_of_the_separator(scale):
    w = [scale * v for v in W_STAR]
    assert novikoff_bound(X, Y, w, scale * B_STAR) == pytest.approx(BOUND, rel=1e-12)


def test_novikoff_bound_reads_zero_one_labels_as_minus_and_plus_one():
    assert novikoff_bound(X, (Y > 0).astype(int), W_STAR, B_STAR) == pytest.approx(BOUND, rel=1e-12)


def test_novikoff_bound_of_a_separator_through_the_origin():
    # w* = (3, 4), b* = 0 (norm 5); margins y w*.x / 5 = 7/5, 3/5, 4/5, 14/5, so gamma = 3/5;
    # extended squared norms 3, 2, 2, 9, so R^2 = 9; bound 9 / (9/25) = 25.
    x = np.array([[1.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [2.0, 2.0]])
    y = np.array([1, -1, -1, 1])
    assert novikoff_bound(x, y, [3.0, 4.0]) == pytest.approx(25.0, rel=1e-12)


def test_the_perceptron_makes_no_more_mistakes_than_the_bound():
    p = Perceptron(max_epochs=200).fit(X, Y)
    assert p.converged_ and p.score(X, Y) == 1.0
    assert 1 <= p.total_mistakes_ <= BOUND
