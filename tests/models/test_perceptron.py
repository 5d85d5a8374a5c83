import numpy as np
import pytest

from chainrule.models import ConvergenceWarning, Perceptron, novikoff_bound


def _separable(n=200, margin=0.2, seed=0):
    rng = np.random.default_rng(seed)
    w_star, b_star = np.array([2.0, -1.0]), 0.3
    X = rng.uniform(-2, 2, (4 * n, 2))
    score = (X @ w_star + b_star) / np.linalg.norm(np.append(w_star, b_star))
    keep = np.abs(score) > margin
    X = X[keep][:n]
    y = np.where(X @ w_star + b_star > 0, 1, -1)
    return X, y, w_star, b_star


@pytest.mark.parametrize("labels", ["pm1", "01"])
def test_perceptron_converges_within_the_novikoff_bound(labels):
    X, y, w_star, b_star = _separable()
    if labels == "01":
        y = (y > 0).astype(int)
    p = Perceptron(max_epochs=1000).fit(X, y)
    assert p.converged_
    assert p.mistakes_per_epoch_[-1] == 0
    assert p.total_mistakes_ <= novikoff_bound(X, y, w_star, b_star)
    assert p.score(X, y) == 1.0
    assert set(np.unique(p.predict(X))) <= set(np.unique(y))


def test_perceptron_update_rule_is_w_plus_eta_times_error_times_x():
    # One mistake on the first example from w = 0: w <- 0 + eta (y - y_hat) x with y_hat = low class.
    with pytest.warns(ConvergenceWarning):  # one epoch, one mistake: not converged yet
        p = Perceptron(lr=0.5, max_epochs=1).fit([[2.0, 3.0]], [1])
    # y_hat = -1 (score 0 is not > 0), so the step is 0.5 * (1 - (-1)) = 1
    np.testing.assert_allclose(p.coef_, [2.0, 3.0])
    assert p.intercept_ == 1.0
    assert p.mistakes_per_epoch_ == [1]


def test_perceptron_reports_non_convergence_on_xor():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    y = np.array([0, 1, 1, 0])
    with pytest.warns(ConvergenceWarning, match="not be linearly separable"):
        p = Perceptron(max_epochs=50).fit(X, y)
    assert not p.converged_
    assert len(p.mistakes_per_epoch_) == 50
    assert min(p.mistakes_per_epoch_) > 0
    assert p.score(X, y) < 1.0


def test_perceptron_rejects_other_labels_and_shapes():
    with pytest.raises(ValueError, match=r"labels must be in \{-1, 1\} or \{0, 1\}"):
        Perceptron().fit([[0.0], [1.0]], [0, 2])
    with pytest.raises(ValueError, match=r"expected X of shape \(n, d\)"):
        Perceptron().fit([0.0, 1.0], [0, 1])
    with pytest.raises(RuntimeError, match="call fit"):
        Perceptron().predict([[0.0]])


def test_novikoff_bound_refuses_a_non_separating_vector():
    X, y, _, _ = _separable()
    with pytest.raises(ValueError, match="does not separate"):
        novikoff_bound(X, y, [-2.0, 1.0], -0.3)
