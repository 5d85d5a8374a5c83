"""NeuralNetClassifier and NeuralNetRegressor: any chainrule Module (a CNN included) as an estimator."""

from __future__ import annotations

import inspect

from ..nn import Module
from ._base import _BaseNet, hide_var_keyword
from ._tasks import _Classifier, _Regressor

_NET_DOC = """
    ``module`` is a ``cr.nn.Module`` class (or a function returning a Module); it is built at ``fit``
    with every ``module__<name>=value`` keyword (``module__hidden=64``), so ``set_params`` and
    ``GridSearchCV`` reach its constructor arguments. When the constructor takes ``in_features`` or
    ``out_features`` and they are not given, they are filled in from the data: the number of features
    and the number of outputs (classes for multiclass, 1 for two classes, labels for multilabel,
    target columns for regression). A class rather than a built Module, because scikit-learn clones
    estimators before fitting them.

    ``X`` may have more than two dimensions (images as (n, channels, height, width)); a Module that
    takes flat rows can unflatten them itself (``cr.nn.Unflatten``). A classifier's module outputs logits,
    one per class (softmax cross-entropy) or one per label (logistic; two classes may also use two
    logits); a regressor's outputs one value per target column (half the squared error).

    The training parameters, the loss with ``alpha / 2 * ||W||^2 / n_samples`` over every weight matrix
    and convolution kernel (not biases or batch-norm scales), the stopping rule and the fitted attributes
    (``loss_``, ``loss_curve_``, ``val_loss_curve_``, ``validation_scores_``, ``best_loss_``, ``n_iter_``,
    ``n_outputs_``, ``classes_``, ``history_``, ``module_``, ...) are those of ``chainrule.sklearn``'s
    MLP estimators, which follow ``sklearn.neural_network``; ``optimizer`` (a class, factory or name,
    with ``optimizer__<name>`` keywords) and ``callbacks`` too. ``random_state`` seeds the module's
    initial weights, dropout masks and the shuffles.

    Pickling is supported as scikit-learn requires (the module class is pickled by reference); share a
    model as a safetensors file instead: ``est.save(path)``, then ``type(est).load(path, module=...)``,
    which holds only arrays and JSON and cannot run code.
"""


class _Net(_BaseNet):
    _prefixes = ("module__", "optimizer__")
    _allow_nd = True

    def _check_params(self) -> None:
        super()._check_params()
        if isinstance(self.module, Module):
            raise TypeError(f"{type(self).__name__}: module must be a Module class or a function returning a "
                            f"Module, not a built {type(self.module).__name__} (scikit-learn clones estimators, "
                            "and a built module cannot be copied); pass its class and module__<name> arguments")
        if not callable(self.module):
            raise TypeError(f"{type(self).__name__}: module must be a Module class, got {self.module!r}")

    def _module_arguments(self, X, Y) -> dict:
        kwargs = self._prefixed("module__")
        try:
            names = inspect.signature(self.module).parameters
        except (TypeError, ValueError):
            names = {}
        if "in_features" in names and "in_features" not in kwargs:
            kwargs["in_features"] = int(X.shape[1])
        if "out_features" in names and "out_features" not in kwargs:
            kwargs["out_features"] = int(Y.shape[1])
        return kwargs

    def _build_module(self, X, Y, rng) -> Module:
        self._module_kwargs_ = self._module_arguments(X, Y)
        return self._rebuild_module().to(X.dtype)

    def _rebuild_module(self) -> Module:
        module = self.module(**self._module_kwargs_)
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: module(...) must return a cr.nn.Module, got {type(module).__name__}")
        return module

    def _save_extra(self) -> dict:
        return {"module_kwargs": self._module_kwargs_}

    def _load_extra(self, extra: dict) -> None:
        self._module_kwargs_ = dict(extra["module_kwargs"])


def _net_init(self, module, solver, alpha, batch_size, learning_rate, learning_rate_init, power_t, max_iter,
              shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
              validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun, optimizer, callbacks,
              kwargs) -> None:
    self.module = module
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
    self.optimizer = optimizer
    self.callbacks = callbacks
    self._set_prefixed(kwargs)


@hide_var_keyword
class NeuralNetClassifier(_Classifier, _Net):
    __doc__ = """A classifier around any chainrule Module.
    """ + _NET_DOC + """
    ``class_weight``: None, 'balanced' or ``{label: weight}``; multiplies ``sample_weight``.

    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = NeuralNetClassifier(cr.nn.Linear, max_iter=30, random_state=0).fit(X / 16, y)
    >>> clf.score(X / 16, y) > 0.9
    True
    """

    def __init__(self, module, *, solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4,
                 verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, optimizer=None, callbacks=None, class_weight=None, **kwargs):
        _net_init(self, module, solver, alpha, batch_size, learning_rate, learning_rate_init, power_t, max_iter,
                  shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
                  validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun, optimizer, callbacks,
                  kwargs)
        self.class_weight = class_weight


@hide_var_keyword
class NeuralNetRegressor(_Regressor, _Net):
    __doc__ = """A regressor around any chainrule Module.
    """ + _NET_DOC + """
    >>> import numpy as np
    >>> X = np.linspace(-1, 1, 100).reshape(-1, 1); y = 3 * X.ravel() - 1
    >>> reg = NeuralNetRegressor(cr.nn.Linear, solver="lbfgs", random_state=0).fit(X, y)
    >>> round(reg.score(X, y), 6)
    1.0
    """

    def __init__(self, module, *, solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True, random_state=None, tol=1e-4,
                 verbose=False, warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10,
                 max_fun=15000, optimizer=None, callbacks=None, **kwargs):
        _net_init(self, module, solver, alpha, batch_size, learning_rate, learning_rate_init, power_t, max_iter,
                  shuffle, random_state, tol, verbose, warm_start, momentum, nesterovs_momentum, early_stopping,
                  validation_fraction, beta_1, beta_2, epsilon, n_iter_no_change, max_fun, optimizer, callbacks,
                  kwargs)
