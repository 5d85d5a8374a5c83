import numpy as np
import pytest

from chainrule.models import LinearRegression, LogisticRegression


def _regression(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(80, 3))
    y = X @ np.array([1.5, -2.0, 0.5]) + 0.7 + 0.1 * rng.normal(size=80)
    return X, y


@pytest.mark.parametrize("optimizer", ["lbfgs", "newton", "cg"])
def test_linear_regression_matches_least_squares(optimizer):
    X, y = _regression()
    model = LinearRegression(optimizer=optimizer, max_iter=100).fit(X, y)
    A = np.hstack([X, np.ones((len(X), 1))])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(model.coef_, coef[:3], atol=1e-6)
    assert model.intercept_ == pytest.approx(coef[3], abs=1e-6)
    assert model.score(X, y) > 0.99


def test_linear_regression_by_minibatch_sgd_gets_close():
    X, y = _regression()
    model = LinearRegression(optimizer="sgd", lr=0.05, max_iter=200, batch_size=8).fit(X, y)
    A = np.hstack([X, np.ones((len(X), 1))])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(model.coef_, coef[:3], atol=0.05)
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def test_logistic_regression_agrees_with_scikit_learn():
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal([-1, -1], 1.0, (60, 2)), rng.normal([1.5, 1], 1.0, (60, 2))])
    y = np.repeat([0, 1], 60)
    C = 2.0
    ref = sklearn.LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    ours = LogisticRegression(optimizer="newton", alpha=1.0 / (C * len(X)), max_iter=50, tol=1e-12).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_[0], atol=1e-4)
    assert ours.intercept_ == pytest.approx(ref.intercept_[0], abs=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    assert ours.score(X, y) == pytest.approx(ref.score(X, y))


def test_multiclass_logistic_regression_predicts_original_labels():
    rng = np.random.default_rng(2)
    centres = np.array([[0, 3], [3, 0], [-3, -3]])
    X = np.vstack([rng.normal(c, 0.5, (30, 2)) for c in centres])
    y = np.repeat(np.array(["a", "b", "c"]), 30)
    model = LogisticRegression(alpha=1e-3).fit(X, y)
    assert model.coef_.shape == (3, 2)
    assert set(model.predict(X)) == {"a", "b", "c"}
    assert model.score(X, y) == 1.0
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)


def test_linear_models_follow_estimator_conventions_and_validate():
    model = LogisticRegression(alpha=0.1)
    assert model.get_params()["alpha"] == 0.1
    assert model.set_params(alpha=0.2) is model and model.alpha == 0.2
    with pytest.raises(ValueError, match="unknown parameter 'beta'"):
        model.set_params(beta=1)
    with pytest.raises(RuntimeError, match="call fit"):
        model.predict([[0.0, 0.0]])
    with pytest.raises(ValueError, match="only one class"):
        model.fit([[0.0], [1.0]], [1, 1])
    with pytest.raises(ValueError, match="X must be 2-D"):
        LinearRegression().fit([1.0, 2.0], [1.0, 2.0])
