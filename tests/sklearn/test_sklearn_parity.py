"""The same network, data and initial weights give scikit-learn's loss curve (float64, to 1e-6).

Our initial weights are recorded by a chainrule callback at the start of training and handed to
scikit-learn's MLPClassifier/MLPRegressor through ``warm_start`` (with the internal state its own first
fit would have set), so any difference in the loss (the L2 term alpha / 2 ||W||^2 / n per batch), the
Adam and SGD updates (Nesterov, lr schedules) or the stopping rule (tol, n_iter_no_change) shows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import neural_network as sk
from sklearn.datasets import load_digits
from sklearn.preprocessing import LabelBinarizer

import chainrule as cr
from chainrule.sklearn import MLPClassifier, MLPRegressor

TOL = 1e-6


class InitialWeights(cr.train.Callback):
    """Records the network's weights when training begins (the estimator keeps a copy in callbacks_)."""

    def on_train_begin(self, trainer):
        super().on_train_begin(trainer)
        linear = [m for m in trainer.model if isinstance(m, cr.nn.Linear)]
        self.coefs = [m.weight.detach().numpy().T.copy() for m in linear]
        self.intercepts = [m.bias.detach().numpy().copy() for m in linear]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16.0, y[:300]


def fit_both(ours_cls, X, y, sample_weight=None, **params):
    """Fit ours from its own draw (random_state=1), then sklearn's from those weights."""
    ours = ours_cls(random_state=1, callbacks=[InitialWeights()], **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, y, sample_weight=sample_weight)
    init = ours.callbacks_[0]
    theirs_cls = sk.MLPClassifier if ours_cls is MLPClassifier else sk.MLPRegressor
    theirs = theirs_cls(random_state=123, warm_start=True, **params)
    Y = np.asarray(y)
    if theirs_cls is sk.MLPClassifier:
        theirs._label_binarizer = LabelBinarizer().fit(Y)
        theirs.classes_ = theirs._label_binarizer.classes_
        n_outputs = theirs._label_binarizer.transform(Y).shape[1]
        theirs.out_activation_ = "softmax" if theirs._label_binarizer.y_type_ == "multiclass" else "logistic"
    else:
        n_outputs = 1 if Y.ndim == 1 else Y.shape[1]
        theirs.out_activation_ = "exp" if params.get("loss") == "poisson" else "identity"
    # what sklearn's _initialize sets on a first fit
    theirs.n_features_in_, theirs.n_outputs_ = X.shape[1], n_outputs
    theirs.n_layers_ = len(init.coefs) + 1
    theirs.coefs_ = [c.copy() for c in init.coefs]
    theirs.intercepts_ = [b.copy() for b in init.intercepts]
    theirs._best_coefs = [c.copy() for c in init.coefs]
    theirs._best_intercepts = [b.copy() for b in init.intercepts]
    theirs.n_iter_, theirs.t_, theirs.loss_curve_, theirs._no_improvement_count = 0, 0, [], 0
    if params.get("early_stopping"):
        theirs.validation_scores_, theirs.best_validation_score_, theirs.best_loss_ = [], -np.inf, None
    else:
        theirs.best_loss_, theirs.validation_scores_, theirs.best_validation_score_ = np.inf, None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.fit(X, y, sample_weight=sample_weight)
    return ours, theirs


def assert_same_run(ours, theirs):
    assert ours.n_iter_ == theirs.n_iter_
    assert len(ours.loss_curve_) == len(theirs.loss_curve_)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=0, atol=TOL)
    assert abs(ours.loss_ - theirs.loss_) < TOL
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


# batch 64 on 300 samples: the last batch has 44, so the L2 term's 1/n changes within each epoch
SOLVERS = {
    "adam": dict(solver="adam", learning_rate_init=1e-2, alpha=1e-2),
    "adam-tanh-betas": dict(solver="adam", activation="tanh", beta_1=0.8, beta_2=0.99, epsilon=1e-6, alpha=0.5),
    "sgd-nesterov": dict(solver="sgd", learning_rate_init=0.1, momentum=0.9, alpha=1e-3),
    "sgd-momentum": dict(solver="sgd", learning_rate_init=0.1, momentum=0.8, nesterovs_momentum=False),
    "sgd-plain-logistic": dict(solver="sgd", learning_rate_init=0.5, momentum=0.0, activation="logistic"),
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5, power_t=0.3),
    # tol and n_iter_no_change small enough that lr is divided by 5 several times, then training stops
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.3, tol=0.05,
                         n_iter_no_change=1, max_iter=40),
    "adam-stops-on-tol": dict(solver="adam", learning_rate_init=1e-2, tol=0.05, n_iter_no_change=2, max_iter=60),
}


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_classifier_loss_curve_equals_sklearn(digits, name):
    X, y = digits
    params = {"hidden_layer_sizes": (16, 8), "batch_size": 64, "shuffle": False, "max_iter": 12, **SOLVERS[name]}
    ours, theirs = fit_both(MLPClassifier, X, y, **params)
    assert_same_run(ours, theirs)
    if name in ("sgd-adaptive", "adam-stops-on-tol"):
        assert ours.n_iter_ < params["max_iter"]  # the stopping rule, not max_iter, ended both runs
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)


def test_binary_multilabel_and_sample_weights_equal_sklearn(digits):
    X, y = digits
    params = dict(hidden_layer_sizes=(12,), batch_size=50, shuffle=False, max_iter=8, learning_rate_init=1e-2)
    assert_same_run(*fit_both(MLPClassifier, X, y % 2, **params))
    multilabel = np.stack([y % 2, y > 4, y == 3], axis=1).astype(int)
    assert_same_run(*fit_both(MLPClassifier, X, multilabel, **params))
    weights = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    assert_same_run(*fit_both(MLPClassifier, X, y, sample_weight=weights, **params))


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_loss_curve_equals_sklearn(digits, loss):
    X, y = digits
    Y = np.stack([y / 9.0, (y % 3) / 2.0], axis=1)  # two target columns: sklearn averages their loss
    params = dict(loss=loss, hidden_layer_sizes=(16,), batch_size=64, shuffle=False, max_iter=10,
                  learning_rate_init=1e-2, alpha=1e-2)
    assert_same_run(*fit_both(MLPRegressor, X, Y, **params))
    assert_same_run(*fit_both(MLPRegressor, X, Y[:, 0], **{**params, "solver": "sgd", "learning_rate_init": 0.05}))


def test_same_random_state_gives_sklearns_run_with_shuffles_and_early_stopping(digits):
    """No weights handed over: the Glorot draw, the shuffles and the validation split come from
    random_state exactly as in scikit-learn, so replacing the import reproduces a run."""
    X, y = digits
    params = dict(hidden_layer_sizes=(20,), random_state=7, max_iter=15, batch_size=32, early_stopping=True,
                  validation_fraction=0.2, n_iter_no_change=3, learning_rate_init=3e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = MLPClassifier(**params).fit(X, y)
        theirs = sk.MLPClassifier(**params).fit(X, y)
    assert_same_run(ours, theirs)
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, atol=1e-12)
    assert ours.best_validation_score_ == theirs.best_validation_score_
    assert len(ours.val_loss_curve_) == ours.n_iter_ and np.isfinite(ours.val_loss_curve_).all()
