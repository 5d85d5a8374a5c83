"""MLPClassifier and MLPRegressor: ``sklearn.neural_network``'s estimators, trained by chainrule."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..nn import BatchNorm1d, Dropout, Linear, Sequential
from ..nn.mlp import _factory
from ._base import _BaseNet, hide_var_keyword
from ._tasks import _Classifier, _Regressor

_SHARED_DOC = """
    Every parameter of ``sklearn.neural_network`` keeps its name, default and meaning (``hidden_layer_sizes``,
    ``activation``, ``solver`` 'lbfgs'/'sgd'/'adam', ``alpha``, ``batch_size``, ``learning_rate``,
    ``learning_rate_init``, ``power_t``, ``max_iter``, ``shuffle``, ``random_state``, ``tol``, ``verbose``,
    ``warm_start``, ``momentum``, ``nesterovs_momentum``, ``early_stopping``, ``validation_fraction``,
    ``beta_1``, ``beta_2``, ``epsilon``, ``n_iter_no_change``, ``max_fun``), and so do the fitted attributes
    (``coefs_``, ``intercepts_``, ``loss_``, ``loss_curve_``, ``best_loss_``, ``validation_scores_``,
    ``best_validation_score_``, ``t_``, ``n_iter_``, ``n_features_in_``, ``feature_names_in_``,
    ``n_layers_``, ``n_outputs_``, ``out_activation_``): with the same ``random_state`` the initial weights,
    the shuffles, the loss (``alpha / 2 * ||W||^2 / n_samples`` on the weights), the Adam and SGD updates
    (Nesterov, the 'invscaling' and 'adaptive' schedules) and the stopping rule are scikit-learn's, so
    replacing the import gives the same loss curve (to rounding, in float64). As in scikit-learn the
    network computes in the dtype of ``X`` (float32 or float64).

    chainrule's own parameters:

    - ``activation`` also takes any chainrule activation ('leaky_relu', 'elu', 'selu', 'gelu', 'silu',
      'softplus', 'hardtanh', ...), an activation class (``cr.nn.GELU``) or a configured layer
      (``cr.nn.LeakyReLU(0.1)``, copied for each hidden layer).
    - ``dropout``: the probability of a Dropout after each hidden activation (0: none).
    - ``batch_norm``: a BatchNorm1d between each hidden Linear layer and its activation.
    - ``optimizer``: instead of ``solver``, a chainrule optimizer class or factory taking the
      parameters (``cr.optim.AdamW``, ``cr.optim.RMSprop``) or a name understood by ``cr.train.fit``
      ('adamw', 'rmsprop', 'adagrad', 'momentum', ...), built with ``lr=learning_rate_init`` and
      any ``optimizer__<name>`` keyword (``optimizer__weight_decay=1e-2``), as GridSearchCV can set.
    - ``callbacks``: chainrule callbacks (``cr.EarlyStopping``, ``cr.ModelCheckpoint``, ``LambdaCallback``),
      called as ``cr.fit`` calls them; the epoch logs hold ``loss``, ``lr`` and, with ``early_stopping``,
      ``val_loss``, ``val_score`` (and ``val_accuracy``). Copies are kept in ``callbacks_``; every step and
      epoch is recorded in ``history_`` (a ``cr.train.History``).
    - ``val_loss_curve_``: with ``early_stopping``, the loss on the held-out set after each epoch
      (without the L2 term); None otherwise.
    - ``module_``: the trained network, a ``cr.nn.Sequential`` (``cr.save(clf.module_, path)``).

    Estimators are cloned and pickled as scikit-learn requires. A pickle runs code when it is loaded:
    share a model as a safetensors file instead (``clf.save(path)``, ``type(clf).load(path)``), which
    holds only arrays and JSON.
"""


def _hidden_sizes(hidden_layer_sizes, who: str) -> list[int]:
    sizes = hidden_layer_sizes
    if not isinstance(sizes, Iterable) or isinstance(sizes, str):
        sizes = [sizes]
    sizes = list(sizes)
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in sizes):
        raise ValueError(f"{who}: hidden_layer_sizes must be positive integers, got {hidden_layer_sizes!r}")
    return [int(n) for n in sizes]


class _MLPNet(_BaseNet):
    """A fully connected network from ``hidden_layer_sizes``; Glorot-uniform init drawn as sklearn draws it."""

    def _check_params(self) -> None:
        super()._check_params()
        who = type(self).__name__
        _hidden_sizes(self.hidden_layer_sizes, who)
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"{who}: dropout must be in [0, 1), got {self.dropout!r}")
        _factory(self.activation, "activation")

    def _uses_chainrule_rng(self) -> bool:
        return bool(self.dropout)

    def _layers(self, units: list[int], dtype) -> Sequential:
        make_activation, _ = _factory(self.activation, "activation")
        layers = []
        for i, (n_in, n_out) in enumerate(zip(units[:-1], units[1:])):
            layers.append(Linear(n_in, n_out, dtype=dtype))
            if i == len(units) - 2:
                break
            if self.batch_norm:
                layers.append(BatchNorm1d(n_out, dtype=dtype))
            if make_activation is not None:
                layers.append(make_activation())
            if self.dropout:
                layers.append(Dropout(float(self.dropout)))
        return Sequential(*layers).to(dtype)

    def _build_module(self, X, Y, rng) -> Sequential:
        self._units_ = [X.shape[1], *_hidden_sizes(self.hidden_layer_sizes, type(self).__name__), Y.shape[1]]
        module = self._layers(self._units_, X.dtype)
        # Glorot et al.'s uniform init, sklearn's draw: U(-b, b) with b = sqrt(factor / (fan_in + fan_out)),
        # factor 2 for the logistic activation and 6 otherwise, weights then biases layer by layer.
        factor = 2.0 if self.activation in ("logistic", "sigmoid") else 6.0
        for layer in (m for m in module if isinstance(m, Linear)):
            fan_in, fan_out = layer.in_features, layer.out_features
            bound = np.sqrt(factor / (fan_in + fan_out))
            layer.weight._data[...] = rng.uniform(-bound, bound, (fan_in, fan_out)).T
            layer.bias._data[...] = rng.uniform(-bound, bound, fan_out)
        return module

    def _rebuild_module(self) -> Sequential:
        return self._layers(self._units_, self._dtype_)

    def _save_extra(self) -> dict:
        return {"units": list(self._units_)}

    def _load_extra(self, extra: dict) -> None:
        self._units_ = list(extra["units"])

    def _linear_layers(self) -> list:
        if not hasattr(self, "module_"):
            raise AttributeError("this estimator is not fitted yet")
        return [m for m in self.module_ if isinstance(m, Linear)]

    @property
    def coefs_(self) -> list[np.ndarray]:
        """The weight matrices, ``coefs_[i]`` of shape (fan_in, fan_out): views of the network's weights,
        so writing into them (or assigning a new list) changes the network."""
        return [layer.weight._data.T for layer in self._linear_layers()]

    @coefs_.setter
    def coefs_(self, coefs) -> None:
        self._assign("coefs_", [np.asarray(c).T for c in coefs], "weight")

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """The bias vectors, ``intercepts_[i]`` of shape (fan_out,): views of the network's biases."""
        return [layer.bias._data for layer in self._linear_layers()]

    @intercepts_.setter
    def intercepts_(self, intercepts) -> None:
        self._assign("intercepts_", [np.asarray(b) for b in intercepts], "bias")

    def _assign(self, name: str, arrays: list, attr: str) -> None:
        layers = self._linear_layers()
        if len(arrays) != len(layers):
            raise ValueError(f"{type(self).__name__}: {name} needs {len(layers)} arrays, got {len(arrays)}")
        for i, (layer, value) in enumerate(zip(layers, arrays)):
            param = getattr(layer, attr)
            if value.shape != param._data.shape:
                raise ValueError(f"{type(self).__name__}: {name}[{i}] has shape {value.T.shape if attr == 'weight' else value.shape}, "
                                 f"expected {param._data.T.shape if attr == 'weight' else param._data.shape}")
            param._data[...] = value
            param._version[0] += 1

    @property
    def n_layers_(self) -> int:
        """Layers as sklearn counts them: the input, each hidden layer and the output."""
        return len(self._linear_layers()) + 1


def _mlp_init(self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate, learning_rate_init,
              power_t, max_iter, shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum,
              early_stopping, validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun, dropout,
              batch_norm, optimizer, callbacks, kwargs) -> None:
    self.hidden_layer_sizes = hidden_layer_sizes
    self.activation = activation
    self.solver = solver
    self.alpha = alpha
    self.batch_size = batch_size
    self.learning_rate = learning_rate
    self.learning_rate_init = learning_rate_init
    self.power_t = power_t
    self.max_iter = max_iter
    self.shuffle = shuffle
    self.random_state = random_state
    self.tol = tol
    self.verbose = verbose
    self.warm_start = warm_start
    self.momentum = momentum
    self.nesterovs_momentum = nesterovs_momentum
    self.early_stopping = early_stopping
    self.validation_fraction = validation_fraction
    self.beta_1 = beta_1
    self.beta_2 = beta_2
    self.epsilon = epsilon
    self.n_iter_no_change = n_iter_no_change
    self.max_fun = max_fun
    self.dropout = dropout
    self.batch_norm = batch_norm
    self.optimizer = optimizer
    self.callbacks = callbacks
    self._set_prefixed(kwargs)


@hide_var_keyword
class MLPClassifier(_Classifier, _MLPNet):
    __doc__ = """A multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, trained by chainrule.
    """ + _SHARED_DOC + """
    - ``class_weight``: None, 'balanced' or ``{label: weight}``; multiplies ``sample_weight``.

    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=20, random_state=0).fit(X / 16, y)
    >>> clf.score(X / 16, y) > 0.9
    True
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, batch_norm=False, optimizer=None,
                 callbacks=None, class_weight=None, **kwargs):
        _mlp_init(self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
                  learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start, momentum,
                  nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon,
                  n_iter_no_change, max_fun, dropout, batch_norm, optimizer, callbacks, kwargs)
        self.class_weight = class_weight


@hide_var_keyword
class MLPRegressor(_Regressor, _MLPNet):
    __doc__ = """A multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, trained by chainrule.

    ``loss``: 'squared_error' (half the squared error, identity output) or 'poisson' (exp output).
    """ + _SHARED_DOC + """
    >>> import numpy as np
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1); y = X.ravel() ** 2
    >>> reg = MLPRegressor(hidden_layer_sizes=(32,), solver="lbfgs", random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.99
    True
    """

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, batch_norm=False,
                 optimizer=None, callbacks=None, **kwargs):
        self.loss = loss
        _mlp_init(self, hidden_layer_sizes, activation, solver, alpha, batch_size, learning_rate,
                  learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start, momentum,
                  nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon,
                  n_iter_no_change, max_fun, dropout, batch_norm, optimizer, callbacks, kwargs)

    def _check_params(self) -> None:
        super()._check_params()
        if self.loss not in ("squared_error", "poisson"):
            raise ValueError(f"MLPRegressor: loss must be 'squared_error' or 'poisson', got {self.loss!r}")


