"""The estimators in scikit-learn's workflows, and chainrule's extras on top of sklearn's parameters."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

import chainrule as cr
from chainrule.sklearn import MLPClassifier, MLPRegressor, NeuralNetClassifier, NeuralNetRegressor


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(maximum iterations|failed to converge).*")
        yield


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    return X[order], y[order]


class SmallCNN(cr.nn.Module):
    """Digits rows (64 pixels) as 1x8x8 images: conv, pool, linear; ``channels`` is grid-searchable."""

    def __init__(self, out_features: int, channels: int = 4):
        super().__init__()
        self.channels = channels
        self.body = cr.nn.Sequential(
            cr.nn.Unflatten(1, (1, 8, 8)), cr.nn.Conv2d(1, channels, 3, padding=1), cr.nn.ReLU(),
            cr.nn.MaxPool2d(2), cr.nn.Flatten(), cr.nn.Linear(channels * 16, out_features))

    def forward(self, x):
        return self.body(x)


def test_pipeline_in_grid_search_over_hidden_layer_sizes_and_alpha(digits):
    X, y = digits
    X_train, y_train, X_test, y_test = X[:900], y[:900], X[1400:], y[1400:]
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(max_iter=25, learning_rate_init=0.01, random_state=0))])
    grid = {"mlp__hidden_layer_sizes": [(8,), (48,)], "mlp__alpha": [1e-4, 30.0]}
    search = GridSearchCV(pipe, grid, cv=3).fit(X_train, y_train)
    scores = dict(zip(map(str, search.cv_results_["params"]), search.cv_results_["mean_test_score"]))
    assert len(scores) == 4
    # 48 hidden units beat 8, a huge penalty hurts: the search saw the parameters
    assert search.best_params_ == {"mlp__hidden_layer_sizes": (48,), "mlp__alpha": 1e-4}, scores
    assert search.best_score_ > 0.9
    assert search.score(X_test, y_test) > 0.9
    best = search.best_estimator_.named_steps["mlp"]
    assert [c.shape for c in best.coefs_] == [(64, 48), (48, 10)]


def test_cross_val_score(digits):
    X, y = digits
    scores = cross_val_score(MLPClassifier(hidden_layer_sizes=(32,), max_iter=30, learning_rate_init=1e-2, random_state=0),
                             X[:900] / 16,
                             y[:900], cv=3)
    assert scores.shape == (3,) and scores.min() > 0.88
    r2 = cross_val_score(MLPRegressor(hidden_layer_sizes=(32,), max_iter=60, random_state=0, learning_rate_init=1e-2),
                         X[:900] / 16, y[:900].astype(float), cv=3)
    assert r2.min() > 0.5


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_partial_fit_over_batches_equals_fit(digits, solver):
    X, y = digits[0][:300] / 16, digits[1][:300]
    X, y = X.astype(np.float64), y
    params = dict(hidden_layer_sizes=(16,), solver=solver, batch_size=50, shuffle=False, max_iter=4, tol=0.0,
                  n_iter_no_change=100, learning_rate_init=0.01, alpha=1e-3, random_state=3)
    full = MLPClassifier(**params).fit(X, y)
    part = MLPClassifier(**params)
    for _ in range(params["max_iter"]):
        for start in range(0, len(y), 50):
            part.partial_fit(X[start:start + 50], y[start:start + 50], classes=np.arange(10))
    for a, b in zip(full.coefs_ + full.intercepts_, part.coefs_ + part.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert part.t_ == full.t_ == 4 * 300
    np.testing.assert_array_equal(full.predict(X), part.predict(X))
    # each partial_fit is one epoch over what it is given, as in sklearn
    assert part.n_iter_ == 1 and len(part.loss_curve_) == 4 * 6


def test_partial_fit_continues_after_pickling(digits):
    X, y = digits[0][:200] / 16, digits[1][:200]
    a = MLPClassifier(hidden_layer_sizes=(10,), random_state=0, shuffle=False)
    a.partial_fit(X, y, classes=np.arange(10))
    b = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    a.partial_fit(X, y)
    b.partial_fit(X, y)  # Adam's moments came through the pickle
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=0, atol=1e-7)


@pytest.mark.parametrize("make", [
    lambda: MLPClassifier(hidden_layer_sizes=(12,), dropout=0.2, batch_norm=True, max_iter=15, random_state=0),
    lambda: NeuralNetClassifier(SmallCNN, module__channels=3, max_iter=8, random_state=0),
], ids=["mlp", "cnn"])
def test_safetensors_save_and_load_give_the_same_predictions(digits, tmp_path, make):
    X, y = digits[0][:300] / 16, digits[1][:300]
    est = make().fit(X, y)
    path = tmp_path / "model.safetensors"
    est.save(path)
    assert path.read_bytes()[:8] != b"\x80\x04\x95"[:8]  # not a pickle
    module = SmallCNN if isinstance(est, NeuralNetClassifier) else None
    back = type(est).load(path, **({"module": module} if module else {}))
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    np.testing.assert_allclose(back.predict_proba(X), est.predict_proba(X), rtol=0, atol=1e-7)
    assert back.loss_curve_ == est.loss_curve_ and back.n_iter_ == est.n_iter_
    np.testing.assert_array_equal(back.classes_, est.classes_)
    with pytest.raises(ValueError, match="does not hold a saved MLPRegressor"):
        MLPRegressor.load(path)


def test_cnn_module_parameters_are_grid_searchable(digits):
    X, y = digits[0][:450] / 16, digits[1][:450]
    net = NeuralNetClassifier(SmallCNN, module__channels=2, max_iter=6, random_state=0, learning_rate_init=1e-2)
    assert net.get_params()["module__channels"] == 2
    assert clone(net).get_params()["module__channels"] == 2
    search = GridSearchCV(net, {"module__channels": [1, 6]}, cv=2).fit(X, y)
    assert search.best_params_ == {"module__channels": 6}
    best = search.best_estimator_
    assert best.module_.channels == 6 and best.module_.body[1].weight.shape == (6, 1, 3, 3)
    assert best.score(X, y) > 0.85


def test_nd_inputs_and_regression_with_a_module(digits):
    X, y = digits[0][:300] / 16, digits[1][:300]
    images = X.reshape(-1, 1, 8, 8)

    class Flat(cr.nn.Module):
        def __init__(self, out_features):
            super().__init__()
            self.body = cr.nn.Sequential(cr.nn.Flatten(), cr.nn.Linear(64, out_features))

        def forward(self, x):
            return self.body(x)

    clf = NeuralNetClassifier(Flat, max_iter=30, random_state=0, learning_rate_init=1e-2).fit(images, y)
    assert clf.n_features_in_ == 1 and clf.score(images, y) > 0.9
    reg = NeuralNetRegressor(cr.nn.Linear, solver="lbfgs", random_state=0)
    Y = np.stack([X[:, 10] * 2 + 1, X.sum(1)], axis=1)
    reg.fit(X, Y)
    assert reg.module_.weight.shape == (2, 64) and reg.predict(X).shape == (300, 2) and reg.score(X, Y) > 0.9


def test_early_stopping_records_validation_loss_and_chainrule_callbacks_run(digits):
    X, y = digits[0][:500] / 16, digits[1][:500]
    stopper = cr.EarlyStopping(monitor="val_loss", patience=2)
    seen = []
    logger = cr.train.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(sorted(logs)))
    clf = MLPClassifier(hidden_layer_sizes=(32,), early_stopping=True, n_iter_no_change=1000, max_iter=300,
                        learning_rate_init=0.05, random_state=0, callbacks=[stopper, logger]).fit(X, y)
    assert stopper.stopped_epoch is None  # the estimator's copy stopped, the parameter stays untouched
    assert clf.callbacks_[0].stopped_epoch == clf.n_iter_ < 300
    assert len(clf.val_loss_curve_) == len(clf.validation_scores_) == len(clf.loss_curve_) == clf.n_iter_
    best = int(np.argmin(clf.val_loss_curve_))
    assert clf.n_iter_ == best + 1 + 2  # patience 2 after the best epoch
    assert seen[0] == ["epoch", "loss", "lr", "val_accuracy", "val_loss", "val_score"]
    assert clf.history_["val_loss"] == clf.val_loss_curve_
    assert len(clf.history_.iterations) == clf.n_iter_ * 3  # 450 training samples, batches of 200


def test_dropout_batch_norm_and_activations_build_the_layers_and_stay_reproducible(digits):
    X, y = digits[0][:300] / 16, digits[1][:300]
    state = cr.io.checkpoint.get_rng_state()
    params = dict(hidden_layer_sizes=(24, 12), activation="leaky_relu", dropout=0.25, batch_norm=True,
                  max_iter=20, random_state=5, learning_rate_init=1e-2)
    a, b = MLPClassifier(**params).fit(X, y), MLPClassifier(**params).fit(X, y)
    assert cr.io.checkpoint.get_rng_state() == state  # chainrule's generator is left as it was
    kinds = [type(m).__name__ for m in a.module_]
    assert kinds == ["Linear", "BatchNorm1d", "LeakyReLU", "Dropout"] * 2 + ["Linear"]
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    assert a.score(X, y) > 0.8 and a.n_layers_ == 4
    gelu = MLPClassifier(hidden_layer_sizes=(8,), activation=cr.nn.GELU, max_iter=2).fit(X, y)
    assert type(gelu.module_[1]).__name__ == "GELU"


def test_optimizer_objects_and_their_options(digits):
    X, y = digits[0][:300] / 16, digits[1][:300]
    clf = MLPClassifier(hidden_layer_sizes=(8,), optimizer=cr.optim.AdamW, optimizer__weight_decay=0.3,
                        learning_rate_init=5e-3, max_iter=3).fit(X, y)
    group = clf.optimizer_.param_groups[0]
    assert type(clf.optimizer_).__name__ == "AdamW" and group["weight_decay"] == 0.3 and group["lr"] == 5e-3
    clf.set_params(optimizer="rmsprop", optimizer__weight_decay=0.0, optimizer__alpha=0.9)
    assert clone(clf).get_params()["optimizer__alpha"] == 0.9
    clf.fit(X, y)
    assert type(clf.optimizer_).__name__ == "RMSprop" and clf.optimizer_.param_groups[0]["alpha"] == 0.9


def test_class_weight_is_a_sample_weight_per_class(digits):
    X, y = digits[0][:300] / 16, digits[1][:300]
    params = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    weights = {0: 5.0, 1: 0.5}
    a = MLPClassifier(class_weight=weights, **params).fit(X, y)
    b = MLPClassifier(**params).fit(X, y, sample_weight=compute_sample_weight(weights, y))
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    c = MLPClassifier(**params).fit(X, y)
    assert a.loss_curve_ != c.loss_curve_


def test_lbfgs_regressor_and_float32(digits):
    X = np.linspace(-2, 2, 200).reshape(-1, 1)
    y = np.sin(2 * X.ravel())
    reg = MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", solver="lbfgs", random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.99 and 0 < reg.n_iter_ <= 200 and not hasattr(reg, "loss_curve_")
    assert not hasattr(reg, "partial_fit")
    small = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3).fit(X.astype(np.float32), y)
    assert small.coefs_[0].dtype == np.float32 and small.predict(X).dtype == np.float32


def test_bad_parameters_get_one_line_errors(digits):
    X, y = digits[0][:50] / 16, digits[1][:50]
    with pytest.raises(TypeError, match="not a built Linear"):
        NeuralNetClassifier(cr.nn.Linear(64, 10)).fit(X, y)
    with pytest.raises(TypeError, match="unexpected keyword argument 'hidden'"):
        MLPClassifier(hidden=3)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be positive integers"):
        MLPClassifier(hidden_layer_sizes=(4, 0)).fit(X, y)
    with pytest.raises(ValueError, match="unknown activation 'swishy'"):
        MLPClassifier(activation="swishy").fit(X, y)
    with pytest.raises(ValueError, match="network gives 3 outputs per sample; expected 10"):
        NeuralNetClassifier(cr.nn.Linear, module__out_features=3).fit(X, y)
    with pytest.raises(ValueError, match="learning_rate_init must be a number in \\(0"):
        MLPClassifier(learning_rate_init=0).fit(X, y)
    with pytest.raises(ValueError, match="sample_weight.shape == \\(3,\\), expected \\(50,\\)"):
        MLPClassifier().fit(X, y, sample_weight=[1, 2, 3])
