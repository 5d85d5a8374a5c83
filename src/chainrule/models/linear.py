"""Linear and logistic regression as one-layer networks, trained by any chainrule optimizer.

The lecture's "linear vs logistic regression": the same single Linear layer, with a squared-error loss
(linear) or a sigmoid/softmax cross-entropy (logistic), plus ``alpha/2 * ||W||^2``. They follow
scikit-learn's estimator conventions (``fit`` returns self, ``predict``, ``score``, ``coef_``,
``intercept_``, ``get_params``), so they slot into its tools.
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..autograd import no_grad
from ..tensor import Tensor


def _array(x, dtype=None) -> np.ndarray:
    return np.asarray(x._data if isinstance(x, Tensor) else x, dtype=dtype)


class _LinearModel:
    _params = ("optimizer", "lr", "max_iter", "alpha", "fit_intercept", "tol", "batch_size", "dtype", "seed")

    def __init__(self, optimizer: str = "lbfgs", lr: float | None = None, max_iter: int = 200, alpha: float = 0.0,
                 fit_intercept: bool = True, tol: float = 1e-8, batch_size: int | None = None,
                 dtype="float64", seed: int = 0):
        self.optimizer, self.lr, self.max_iter, self.alpha = optimizer, lr, max_iter, alpha
        self.fit_intercept, self.tol, self.batch_size, self.dtype, self.seed = fit_intercept, tol, batch_size, dtype, seed

    def get_params(self, deep: bool = True) -> dict:
        return {k: getattr(self, k) for k in self._params}

    def set_params(self, **params):
        for k, v in params.items():
            if k not in self._params:
                raise ValueError(f"{type(self).__name__}: unknown parameter {k!r}")
            setattr(self, k, v)
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()) + ")"

    # subclasses define _n_outputs, _targets, _loss, _check_y
    def _penalised_loss(self, layer, x: Tensor, t: Tensor) -> Tensor:
        loss = self._loss(layer(x), t)
        if self.alpha:
            loss = loss + 0.5 * self.alpha * (layer.weight * layer.weight).sum()
        return loss

    def fit(self, X, y):
        from .. import nn, optim
        from ..train.fit import get_optimizer

        dt = np.dtype(self.dtype)
        X = _array(X, dt)
        if X.ndim != 2:
            raise ValueError(f"{type(self).__name__}.fit: X must be 2-D (n_samples, n_features), got shape {X.shape}")
        t = self._targets(y, len(X))
        backend.manual_seed(self.seed)
        layer = nn.Linear(X.shape[1], self._n_outputs, bias=self.fit_intercept).to(dt)
        with no_grad():
            layer.weight.zero_()
            if self.fit_intercept:
                layer.bias.zero_()
        x_all, t_all = Tensor(X), Tensor(t)
        self.loss_curve_ = []
        name = self.optimizer.lower() if isinstance(self.optimizer, str) else self.optimizer
        if name in ("lbfgs", "cg", "newton"):
            cls = {"lbfgs": optim.LBFGS, "cg": optim.ConjugateGradient, "newton": optim.Newton}[name]
            kwargs = {"lr": self.lr if self.lr is not None else 1.0}
            if name == "lbfgs":
                kwargs.update(line_search_fn="strong_wolfe", max_iter=20, tolerance_grad=self.tol,
                              tolerance_change=1e-12, history_size=20)
            opt = cls(layer.parameters(), **kwargs)

            def closure():
                opt.zero_grad()
                loss = self._penalised_loss(layer, x_all, t_all)
                loss.backward()
                return loss

            for _ in range(self.max_iter):
                loss = opt.step(closure)
                self.loss_curve_.append(float(loss))
                grad_norm = np.sqrt(sum(float((p.grad._data ** 2).sum()) for p in layer.parameters()))
                if grad_norm < self.tol or (len(self.loss_curve_) > 1 and abs(self.loss_curve_[-2] - self.loss_curve_[-1]) < 1e-15):
                    break
        else:
            opt = get_optimizer(name, layer.parameters(), lr=self.lr)
            rng = np.random.default_rng(self.seed)
            bs = self.batch_size or len(X)
            for _ in range(self.max_iter):
                order = rng.permutation(len(X))
                for start in range(0, len(X), bs):
                    idx = order[start:start + bs]
                    opt.zero_grad()
                    loss = self._penalised_loss(layer, Tensor(X[idx]), Tensor(t[idx]))
                    loss.backward()
                    opt.step()
                with no_grad():
                    self.loss_curve_.append(self._penalised_loss(layer, x_all, t_all).item())
        self.network_ = layer
        self.n_iter_ = len(self.loss_curve_)
        self.coef_ = layer.weight._data.copy() if self._n_outputs > 1 else layer.weight._data[0].copy()
        self.intercept_ = (layer.bias._data.copy() if self._n_outputs > 1 else float(layer.bias._data[0])) \
            if self.fit_intercept else 0.0
        return self

    def _forward(self, X) -> np.ndarray:
        if not hasattr(self, "network_"):
            raise RuntimeError(f"{type(self).__name__}: call fit() before predict()")
        with no_grad():
            return self.network_(Tensor(_array(X, np.dtype(self.dtype))))._data


class LinearRegression(_LinearModel):
    """Least squares (with optional ridge penalty ``alpha``) as one Linear layer: loss = mean((Xw + b - y)^2) / 2."""

    _n_outputs = 1

    def _targets(self, y, n):
        y = _array(y, np.dtype(self.dtype))
        if y.shape not in ((n,), (n, 1)):
            raise ValueError(f"LinearRegression.fit: y must have shape ({n},), got {y.shape}")
        return y.reshape(n, 1)

    def _loss(self, out, t):
        d = out - t
        return 0.5 * (d * d).mean()

    def predict(self, X) -> np.ndarray:
        return self._forward(X)[:, 0]

    def score(self, X, y) -> float:
        """R^2 on (X, y)."""
        y = _array(y, float)
        resid = ((y - self.predict(X)) ** 2).sum()
        return float(1 - resid / ((y - y.mean()) ** 2).sum())


class LogisticRegression(_LinearModel):
    """Logistic regression as one Linear layer with sigmoid (two classes) or softmax (more) cross-entropy.

    The loss is the *mean* cross-entropy plus ``alpha/2 * ||W||^2`` (the intercept is not penalised);
    scikit-learn's ``C`` corresponds to ``alpha = 1 / (C * n_samples)``.
    """

    def _targets(self, y, n):
        y = _array(y)
        if y.shape != (n,):
            raise ValueError(f"LogisticRegression.fit: y must have shape ({n},), got {y.shape}")
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("LogisticRegression.fit: y has only one class")
        self._n_outputs = 1 if len(self.classes_) == 2 else len(self.classes_)
        if self._n_outputs == 1:
            return codes.astype(np.dtype(self.dtype)).reshape(n, 1)
        return codes.astype(np.int64)

    def _loss(self, out, t):
        from ..nn import functional as F

        if self._n_outputs == 1:
            return F.binary_cross_entropy_with_logits(out, t)
        return F.cross_entropy(out, t)

    def predict_proba(self, X) -> np.ndarray:
        z = self._forward(X)
        if self._n_outputs == 1:
            p = 1 / (1 + np.exp(-z[:, 0]))
            return np.stack([1 - p, p], axis=1)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X, y) -> float:
        """Accuracy on (X, y)."""
        return float(np.mean(self.predict(X) == _array(y)))
