"""Rosenblatt's perceptron: the first learning rule, w <- w + eta (y - y_hat) x, one example at a time."""

from __future__ import annotations

import warnings

import numpy as np

from ..tensor import Tensor


class ConvergenceWarning(UserWarning):
    """A learning rule stopped before it converged (e.g. a perceptron on data that is not separable)."""


def _array(x, dtype=np.float64) -> np.ndarray:
    return np.asarray(x._data if isinstance(x, Tensor) else x, dtype=dtype)


class Perceptron:
    """The classic perceptron with a step activation.

    Labels may be {-1, +1} or {0, 1}; predictions come back in the same set. Each epoch visits the
    examples in order (or shuffled with ``shuffle=True``) and, on every mistake, moves the weights by
    ``lr * (y - y_hat) * x``. Training stops at the first epoch without mistakes (``converged_`` is
    True) or after ``max_epochs`` (a :class:`ConvergenceWarning` says the data may not be linearly
    separable). ``mistakes_per_epoch_`` records the mistakes of each epoch.

    >>> p = Perceptron().fit([[0, 0], [0, 1], [1, 0], [1, 1]], [0, 0, 0, 1])   # AND
    >>> p.predict([[1, 1], [0, 1]]).tolist()
    [1, 0]
    """

    def __init__(self, lr: float = 1.0, max_epochs: int = 100, fit_intercept: bool = True,
                 shuffle: bool = False, seed: int = 0):
        if lr <= 0:
            raise ValueError(f"Perceptron: lr must be positive, got {lr}")
        if max_epochs < 1:
            raise ValueError(f"Perceptron: max_epochs must be at least 1, got {max_epochs}")
        self.lr, self.max_epochs, self.fit_intercept = lr, max_epochs, fit_intercept
        self.shuffle, self.seed = shuffle, seed

    def get_params(self, deep: bool = True) -> dict:
        return {"lr": self.lr, "max_epochs": self.max_epochs, "fit_intercept": self.fit_intercept,
                "shuffle": self.shuffle, "seed": self.seed}

    def set_params(self, **params) -> Perceptron:
        for k, v in params.items():
            if k not in self.get_params():
                raise ValueError(f"Perceptron: unknown parameter {k!r}")
            setattr(self, k, v)
        return self

    def fit(self, X, y) -> Perceptron:
        X, y = _array(X), _array(y)
        if X.ndim != 2 or y.shape != (X.shape[0],):
            raise ValueError(f"Perceptron.fit: expected X of shape (n, d) and y of shape (n,), got {X.shape} and {y.shape}")
        labels = np.unique(y)
        if set(labels.tolist()) <= {-1.0, 1.0}:
            self.classes_ = np.array([-1, 1])
        elif set(labels.tolist()) <= {0.0, 1.0}:
            self.classes_ = np.array([0, 1])
        else:
            raise ValueError(f"Perceptron.fit: labels must be in {{-1, 1}} or {{0, 1}}, got {labels.tolist()}")
        w = np.zeros(X.shape[1])
        b = 0.0
        rng = np.random.default_rng(self.seed)
        self.mistakes_per_epoch_ = []
        self.converged_ = False
        low, high = self.classes_
        for _ in range(self.max_epochs):
            order = rng.permutation(len(X)) if self.shuffle else range(len(X))
            mistakes = 0
            for i in order:  # the rule is sequential: each update changes the next prediction
                y_hat = high if X[i] @ w + b > 0 else low
                if y_hat != y[i]:
                    step = self.lr * (y[i] - y_hat)
                    w += step * X[i]
                    if self.fit_intercept:
                        b += step
                    mistakes += 1
            self.mistakes_per_epoch_.append(mistakes)
            if mistakes == 0:
                self.converged_ = True
                break
        self.coef_, self.intercept_ = w, b
        self.n_epochs_ = len(self.mistakes_per_epoch_)
        self.total_mistakes_ = int(sum(self.mistakes_per_epoch_))
        if not self.converged_:
            warnings.warn(
                f"Perceptron did not converge in {self.max_epochs} epochs ({self.mistakes_per_epoch_[-1]} "
                "mistakes in the last): the data may not be linearly separable",
                ConvergenceWarning,
            )
        return self

    def decision_function(self, X) -> np.ndarray:
        self._check_fitted()
        return _array(X) @ self.coef_ + self.intercept_

    def predict(self, X) -> np.ndarray:
        scores = self.decision_function(X)
        low, high = self.classes_
        return np.where(scores > 0, high, low)

    def score(self, X, y) -> float:
        """Accuracy on (X, y)."""
        return float(np.mean(self.predict(X) == _array(y)))

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError("Perceptron: call fit() before predict()")


def novikoff_bound(X, y, w_star, b_star: float = 0.0) -> float:
    """(R / gamma)^2: the most mistakes a perceptron (with intercept) makes on data that ``w_star, b_star``
    separates with margin gamma, R the largest norm of an example extended by a constant 1."""
    X, y = _array(X), _array(y)
    y = np.where(y > 0, 1.0, -1.0)
    ext = np.hstack([X, np.ones((len(X), 1))])
    w = np.append(np.asarray(w_star, float), b_star)
    w /= np.linalg.norm(w)
    gamma = float(np.min(y * (ext @ w)))
    if gamma <= 0:
        raise ValueError("novikoff_bound: w_star does not separate the data (margin <= 0)")
    radius = float(np.max(np.linalg.norm(ext, axis=1)))
    return (radius / gamma) ** 2
