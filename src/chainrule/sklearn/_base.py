"""What the four estimators share: scikit-learn's estimator protocol over chainrule's nn/, optim/ and train/.

The network is a chainrule Module, the update rule a chainrule optimizer, the callbacks chainrule
callbacks driven through a :class:`chainrule.train.Trainer`. What lives here is scikit-learn's contract
(validation, ``classes_``, ``sample_weight``, warm starts, ``partial_fit``, pickling) and the conventions
of ``sklearn.neural_network`` that make replacing the import give the same numbers: its Glorot draw and
shuffles from ``random_state``, its loss with ``alpha / 2 * ||W||^2 / n_samples`` on the weights, its
``tol`` / ``n_iter_no_change`` stopping rule and learning-rate schedules.
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
import warnings
from contextlib import contextmanager

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import autograd, backend
from .. import optim as _optim
from ..io import checkpoint as _checkpoint
from ..nn import functional as F
from ..ops.elementwise import exp
from ..tensor import Tensor
from ..train import Callback, History, Trainer, get_optimizer
from ..train.fit import _Progress

SOLVERS = ("sgd", "adam", "lbfgs")
SCHEDULES = ("constant", "invscaling", "adaptive")


class _Stored:
    """A Tensor of an optimizer's state, kept as its array while the estimator is pickled."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray):
        self.array = array

    def __getstate__(self):
        return self.array

    def __setstate__(self, array):
        self.array = array


def _to_arrays(value):
    if isinstance(value, Tensor):
        return _Stored(value._data.copy())
    if isinstance(value, dict):
        return {k: _to_arrays(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_arrays(v) for v in value)
    return value


def _from_arrays(value):
    if isinstance(value, _Stored):
        return Tensor._wrap(value.array)
    if isinstance(value, dict):
        return {k: _from_arrays(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_from_arrays(v) for v in value)
    return value


@contextmanager
def _chainrule_seed(seed):
    """Draw chainrule's own randomness (layer init, dropout masks) from ``seed`` for the duration, and
    give the package generator back its state afterwards (``None``: leave it alone)."""
    if seed is None:
        yield
        return
    saved = _checkpoint.get_rng_state()
    generator = backend.generator()
    generator.bit_generator.state = np.random.default_rng(seed).bit_generator.state
    try:
        yield
    finally:
        _checkpoint.set_rng_state(saved)
        assert backend.generator() is generator


def _check_number(name: str, value, who: str, low=None, high=None, low_open=False, high_open=False,
                  integer=False, allow_inf=False) -> None:
    kind = numbers.Integral if integer else numbers.Real
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok and allow_inf and value == np.inf:
        return
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else f"{'(' if low_open else '['}{low}"
        hi = "" if high is None else f"{high}{')' if high_open else ']'}"
        span = f" in {lo or '(-inf'}, {hi or 'inf)'}" if (low is not None or high is not None) else ""
        raise ValueError(f"{who}: {name} must be {'an integer' if integer else 'a number'}{span}, got {value!r}")


class _BaseNet(BaseEstimator):
    """The shared machinery. Subclasses define ``_build_module``, ``_validate_input`` and the task's
    loss (``_loss_kind_``), and list their dunder prefixes (``module__``, ``optimizer__``)."""

    _prefixes: tuple = ("optimizer__",)
    _allow_nd = False

    # ---- parameters: scikit-learn's get_params / set_params, plus prefixed keyword arguments -------------
    def _set_prefixed(self, kwargs: dict) -> None:
        for key, value in kwargs.items():
            if not key.startswith(self._prefixes):
                raise TypeError(
                    f"{type(self).__name__}: unexpected keyword argument {key!r} (keywords beyond the listed "
                    f"parameters must start with {' or '.join(repr(p) for p in self._prefixes)})"
                )
            setattr(self, key, value)

    def get_params(self, deep: bool = True) -> dict:
        params = super().get_params(deep=deep)
        params.update({k: v for k, v in vars(self).items() if k.startswith(self._prefixes)})
        return params

    def set_params(self, **params):
        prefixed = {k: v for k, v in params.items() if k.startswith(self._prefixes)}
        self._set_prefixed(prefixed)
        return super().set_params(**{k: v for k, v in params.items() if k not in prefixed})

    def _prefixed(self, prefix: str) -> dict:
        return {k[len(prefix):]: v for k, v in vars(self).items() if k.startswith(prefix)}

    # ---- validation -------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        who = type(self).__name__
        if self.optimizer is None and self.solver not in SOLVERS:
            raise ValueError(f"{who}: solver must be one of {SOLVERS}, got {self.solver!r}")
        _check_number("alpha", self.alpha, who, low=0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            _check_number("batch_size", self.batch_size, who, low=1, integer=True)
        if self.learning_rate not in SCHEDULES:
            raise ValueError(f"{who}: learning_rate must be one of {SCHEDULES}, got {self.learning_rate!r}")
        _check_number("learning_rate_init", self.learning_rate_init, who, low=0, low_open=True)
        _check_number("power_t", self.power_t, who, low=0)
        _check_number("max_iter", self.max_iter, who, low=1, integer=True)
        _check_number("tol", self.tol, who, low=0)
        _check_number("momentum", self.momentum, who, low=0, high=1)
        _check_number("validation_fraction", self.validation_fraction, who, low=0, high=1, high_open=True)
        _check_number("beta_1", self.beta_1, who, low=0, high=1, high_open=True)
        _check_number("beta_2", self.beta_2, who, low=0, high=1, high_open=True)
        _check_number("epsilon", self.epsilon, who, low=0, low_open=True)
        _check_number("n_iter_no_change", self.n_iter_no_change, who, low=1, integer=True, allow_inf=True)
        _check_number("max_fun", self.max_fun, who, low=1, integer=True)
        for flag in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise ValueError(f"{who}: {flag} must be True or False, got {getattr(self, flag)!r}")
        callbacks = self.callbacks or []
        if not isinstance(callbacks, (list, tuple)) or not all(isinstance(c, Callback) for c in callbacks):
            raise TypeError(f"{who}: callbacks must be a list of chainrule Callbacks (cr.train.Callback), "
                            f"got {self.callbacks!r}")

    def _sample_weight(self, sample_weight, X: np.ndarray) -> np.ndarray | None:
        if sample_weight is None:
            return None
        who, n = type(self).__name__, X.shape[0]
        sw = np.asarray(sample_weight, dtype=X.dtype)
        if sw.ndim == 0:
            sw = np.full(n, sw, dtype=X.dtype)
        if sw.shape != (n,):
            raise ValueError(f"{who}: sample_weight.shape == {sw.shape}, expected ({n},) (one weight per sample)")
        if not np.isfinite(sw).all() or (sw < 0).any():
            raise ValueError(f"{who}: sample_weight must be finite and non-negative")
        if sw.sum() <= 0:
            raise ValueError(f"{who}: sample_weight sums to zero; give at least one sample a positive weight")
        return sw.copy()

    # ---- fitting ----------------------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Train on ``X``, ``y`` (``sample_weight``: one non-negative weight per sample); returns self.

        With ``warm_start=True`` a second ``fit`` starts from the weights of the first (a fresh optimizer,
        as in scikit-learn)."""
        return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X, y, sample_weight, incremental: bool):
        self._check_params()
        first_pass = not hasattr(self, "module_") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        sample_weight = self._sample_weight(sample_weight, X)
        sample_weight = self._with_class_weight(Y, sample_weight, X.dtype)
        if Y.ndim == 1:
            Y = Y.reshape(-1, 1)
        if not first_pass and Y.shape[1] != self.n_outputs_:
            raise ValueError(f"{type(self).__name__}: y has {Y.shape[1]} outputs, the fitted network "
                             f"{self.n_outputs_}; fit again without warm_start to change them")
        rng = check_random_state(self.random_state)
        with _chainrule_seed(self._chainrule_seed(rng)):
            if first_pass:
                self._initialize(X, Y, rng)
            X = X.astype(self._dtype_, copy=False)
            self._prepare_optimizer(incremental)
            if isinstance(self.optimizer_, _optim.LBFGS):
                self._fit_lbfgs(X, Y, sample_weight)
            else:
                self._fit_stochastic(X, Y, sample_weight, rng, incremental)
        if not all(np.isfinite(p._data).all() for p in self.module_.parameters()):
            raise ValueError(f"{type(self).__name__}: the solver produced non-finite weights; the inputs may "
                             "hold large values: scale them (e.g. StandardScaler) or lower learning_rate_init")
        return self

    def _with_class_weight(self, Y, sample_weight, dtype):
        return sample_weight

    def _chainrule_seed(self, rng):
        """The seed of chainrule's generator during fit: drawn from ``random_state`` when the network
        draws anything itself (``None``: the package generator as it is)."""
        if self.random_state is None or not self._uses_chainrule_rng():
            return None
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(rng.randint(np.iinfo(np.int32).max))

    def _uses_chainrule_rng(self) -> bool:
        return True

    def _initialize(self, X: np.ndarray, Y: np.ndarray, rng) -> None:
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self._dtype_ = X.dtype
        self.module_ = self._build_module(X, Y, rng)
        self.module_.train()
        self._loss_kind_ = self._loss_kind(X)
        self.out_activation_ = {"softmax": "softmax", "logistic": "logistic", "squared_error": "identity",
                                "poisson": "exp"}[self._loss_kind_]
        self._penalized_ = [p for name, p in self.module_.named_parameters()
                            if name.rsplit(".", 1)[-1] == "weight" and p.ndim >= 2]
        self.callbacks_ = copy.deepcopy(list(self.callbacks or []))
        self.history_ = History()
        self._best_state = None
        if not self._is_lbfgs():
            self.loss_curve_ = []
            self.val_loss_curve_ = [] if self.early_stopping else None
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _loss_kind(self, X: np.ndarray) -> str:
        raise NotImplementedError

    def _is_lbfgs(self) -> bool:
        if self.optimizer is None:
            return self.solver == "lbfgs"
        return self.optimizer is _optim.LBFGS or (isinstance(self.optimizer, str) and self.optimizer == "lbfgs")

    # ---- the optimizer ----------------------------------------------------------------------------------
    def _make_optimizer(self):
        params = list(self.module_.parameters())
        options = self._prefixed("optimizer__")
        if self.optimizer is None:
            if self.solver == "sgd":
                nesterov = bool(self.nesterovs_momentum) and self.momentum > 0
                return _optim.SGD(params, lr=self.learning_rate_init, momentum=self.momentum, nesterov=nesterov)
            if self.solver == "adam":
                return _optim.Adam(params, lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                                   eps=self.epsilon)
            # scipy's L-BFGS-B as sklearn calls it: 10 pairs, gtol = tol, at most max_fun evaluations
            return _optim.LBFGS(params, lr=1, max_iter=self.max_iter, max_eval=self.max_fun,
                                tolerance_grad=self.tol, tolerance_change=np.finfo(float).eps * 1e7,
                                history_size=10, line_search_fn="strong_wolfe")
        if isinstance(self.optimizer, str):
            if self.optimizer == "lbfgs":
                return _optim.LBFGS(params, **options)
            options.setdefault("lr", self.learning_rate_init)
            return get_optimizer(self.optimizer, params, **options)
        if callable(self.optimizer):
            if isinstance(self.optimizer, type) and issubclass(self.optimizer, _optim.Optimizer):
                options.setdefault("lr", self.learning_rate_init)
            opt = self.optimizer(params, **options)
            if not isinstance(opt, _optim.Optimizer):
                raise TypeError(f"{type(self).__name__}: optimizer must build a chainrule Optimizer, "
                                f"got {type(opt).__name__}")
            return opt
        raise TypeError(f"{type(self).__name__}: optimizer must be None, a name such as 'adamw', or an Optimizer "
                        f"class or factory taking the parameters (cr.optim.AdamW), got {self.optimizer!r}")

    def _prepare_optimizer(self, incremental: bool) -> None:
        if not incremental or getattr(self, "optimizer_", None) is None:
            self.optimizer_ = self._make_optimizer()
            saved = getattr(self, "_optimizer_state", None)
            if incremental and saved is not None:  # an unpickled estimator goes on where it stopped
                self.optimizer_.load_state_dict(_from_arrays(saved))
            else:
                self._updates_ = 0
        self._optimizer_state = None

    def _builtin(self, solver: str) -> bool:
        return self.optimizer is None and self.solver == solver

    def _set_lr(self, lr: float) -> None:
        """A new learning rate. sklearn's SGD keeps the velocity v = mu v - lr g (lr inside); chainrule's,
        PyTorch's buffer b = mu b + g with theta -= lr b: v = -lr b, so b is rescaled by old / new."""
        for group in self.optimizer_.param_groups:
            old = group["lr"]
            if self._builtin("sgd") and old != lr and lr > 0:
                for p in group["params"]:
                    buf = self.optimizer_.state.get(p, {}).get("momentum_buffer")
                    if buf is not None:
                        buf._data *= old / lr
            group["lr"] = lr

    def _current_lr(self) -> float:
        return float(self.optimizer_.param_groups[0].get("lr", math.nan))

    def _step(self) -> None:
        if self._builtin("adam"):
            # sklearn adds epsilon to sqrt(v), chainrule (PyTorch) to sqrt(v / (1 - beta_2^t)):
            # epsilon / sqrt(1 - beta_2^t) here is sklearn's epsilon there.
            t = self._updates_ + 1
            for group in self.optimizer_.param_groups:
                group["eps"] = self.epsilon / math.sqrt(1 - self.beta_2**t)
        self.optimizer_.step()
        self._updates_ += 1

    # ---- the loss ---------------------------------------------------------------------------------------
    def _targets(self, Y: np.ndarray):
        """What the loss compares the network's output with: class indices for softmax, else floats."""
        if self._loss_kind_ == "softmax":
            idx = Y.argmax(axis=1) if Y.shape[1] > 1 else Y[:, 0].astype(np.int64)
            return idx.astype(np.int64)
        return np.ascontiguousarray(Y, dtype=self._dtype_)

    def _data_loss(self, out: Tensor, target: np.ndarray, sw: np.ndarray | None) -> Tensor:
        """The (weighted) mean over samples of the per-sample loss whose gradient is sklearn's
        ``(output - y) / n``: cross-entropy of the logits, BCE summed over outputs, half the squared
        error summed over outputs, Poisson's exp(z) - y z summed over outputs."""
        kind, n = self._loss_kind_, target.shape[0]
        t = Tensor._wrap(target)
        if kind == "softmax":
            if sw is None:
                return F.cross_entropy(out, t)
            per_sample = F.cross_entropy(out, t, reduction="none")
        else:
            if kind == "logistic":
                per_element = F.binary_cross_entropy_with_logits(out, t, reduction="none" if sw is not None else "sum")
            elif kind == "squared_error":
                diff = out - t
                per_element = diff * diff * 0.5
                per_element = per_element.sum() if sw is None else per_element
            else:
                per_element = exp(out) - out * t
                per_element = per_element.sum() if sw is None else per_element
            if sw is None:
                return per_element * (1.0 / n)
            per_sample = per_element.sum(1)
        return (per_sample * Tensor._wrap(sw)).sum() * (1.0 / float(sw.sum()))

    def _reported(self, data_loss: float, target: np.ndarray, sw: np.ndarray | None) -> float:
        """sklearn's value of the same loss: squared error is averaged over outputs, Poisson's deviance
        carries the constant y log y - y."""
        if self._loss_kind_ == "squared_error":
            return data_loss / target.shape[1]
        if self._loss_kind_ == "poisson":
            const = np.where(target > 0, target * np.log(np.where(target > 0, target, 1)), 0) - target
            return data_loss + float(np.average(const.sum(1), weights=sw))
        return data_loss

    def _penalty(self, sw_sum: float) -> float:
        """Add alpha * W / n to each weight's gradient; return sklearn's alpha / 2 * ||W||^2 / n."""
        if not self.alpha:
            return 0.0
        total = 0.0
        scale = self.alpha / sw_sum
        for w in self._penalized_:
            flat = w._data.ravel()
            total += float(flat @ flat)
            if w.grad is not None:
                w.grad._data += scale * w._data
        return 0.5 * self.alpha * total / sw_sum

    def _batch(self, xb, target, sw, trainer=None, logs=None) -> float:
        opt = self.optimizer_
        loss = self._data_loss(self.module_(Tensor._wrap(xb)), target, sw)
        opt.zero_grad()
        loss.backward()
        value = self._reported(loss.item(), target, sw)
        value += self._penalty(len(target) if sw is None else float(sw.sum()))
        if trainer is not None:
            logs["loss"] = value
            trainer._call("on_after_backward", trainer.step, logs)
        self._step()
        return value

    # ---- stochastic solvers -----------------------------------------------------------------------------
    def _split(self, X, Y, sw, rng):
        if not self.early_stopping:
            return X, Y, sw, None, None, None
        stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = (X, Y) if sw is None else (X, Y, sw)
        parts = train_test_split(*arrays, random_state=rng, test_size=self.validation_fraction, stratify=stratify)
        X_train, X_val, Y_train, Y_val = parts[:4]
        sw_train, sw_val = (parts[4], parts[5]) if sw is not None else (None, None)
        if X_val.shape[0] < 2:
            raise ValueError(f"{type(self).__name__}: the validation set is too small ({X_val.shape[0]} sample); "
                             "increase validation_fraction or give more data")
        return X_train, Y_train, sw_train, X_val, Y_val, sw_val

    def _fit_stochastic(self, X, Y, sw, rng, incremental: bool) -> None:
        if self.early_stopping and incremental:
            raise ValueError(f"{type(self).__name__}: partial_fit does not support early_stopping=True")
        X_train, Y_train, sw_train, X_val, Y_val, sw_val = self._split(X, Y, sw, rng)
        T_train = self._targets(Y_train)
        n_samples = X_train.shape[0]
        sample_idx = np.arange(n_samples, dtype=int)
        if self.batch_size == "auto":
            batch_size = min(200, n_samples)
        else:
            if self.batch_size > n_samples:
                warnings.warn(f"{type(self).__name__}: batch_size {self.batch_size} is larger than the "
                              f"{n_samples} samples; it is clipped", stacklevel=4)
            batch_size = int(np.clip(self.batch_size, 1, n_samples))

        trainer = Trainer(self.module_, None, self.optimizer_, {}, self.callbacks_)
        trainer.history = self.history_
        trainer.epoch = len(self.loss_curve_)
        trainer.step = len(self.history_.iterations)
        progress = _Progress(self.max_iter if not incremental else 1, self.verbose)
        self.module_.train()
        trainer._call("on_train_begin", trainer)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    # sklearn.utils.shuffle(sample_idx, random_state=rng), the same draw without its
                    # per-call validation (a third of a small fit's time)
                    order = np.arange(n_samples)
                    rng.shuffle(order)
                    sample_idx = sample_idx[order]
                trainer.epoch += 1
                trainer._call("on_epoch_begin", trainer.epoch, {"epoch": trainer.epoch})
                accumulated = 0.0
                for start in range(0, n_samples, batch_size):
                    batch = slice(start, min(start + batch_size, n_samples))  # sklearn's gen_batches
                    idx = sample_idx[batch] if self.shuffle else batch
                    trainer.step += 1
                    logs = {"epoch": trainer.epoch, "batch": trainer.step}
                    trainer._call("on_batch_begin", trainer.step, logs)
                    value = self._batch(X_train[idx], T_train[idx], None if sw_train is None else sw_train[idx],
                                        trainer, logs)
                    accumulated += value * (batch.stop - batch.start)
                    self.history_.iterations.append(value)
                    trainer._call("on_batch_end", trainer.step, {**logs, "loss": value})
                    if trainer.stop_training:
                        break
                self.n_iter_ += 1
                self.loss_ = accumulated / n_samples
                self.t_ += n_samples
                self.loss_curve_.append(self.loss_)
                logs = {"epoch": trainer.epoch, "loss": self.loss_, "lr": self._current_lr()}
                self._update_no_improvement_count(X_val, Y_val, sw_val, logs)
                self.history_.epochs.append(logs)
                progress.update(f"epoch {trainer.epoch}", {k: v for k, v in logs.items() if k != "epoch"})
                trainer._call("on_epoch_end", trainer.epoch, logs)
                self._iteration_ends()
                if self._no_improvement_count > self.n_iter_no_change:
                    if self._trigger_stopping():
                        break
                    self._no_improvement_count = 0
                if incremental or trainer.stop_training:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(f"{type(self).__name__}: stochastic optimizer: maximum iterations "
                                  f"({self.max_iter}) reached and the optimization hasn't converged yet.",
                                  ConvergenceWarning, stacklevel=4)
        finally:
            progress.close()
        if self.early_stopping and self._best_state is not None:
            self.module_.load_state_dict(self._best_state)
        trainer._call("on_train_end", self.history_.epochs[-1] if self.history_.epochs else {})
        for cb in self.callbacks_:
            cb.trainer = None  # the estimator stays picklable; the callback keeps what it recorded

    def _iteration_ends(self) -> None:
        if self._builtin("sgd") and self.learning_rate == "invscaling":
            self._set_lr(float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t)

    def _trigger_stopping(self) -> bool:
        """sklearn's rule: stop, except that the 'adaptive' schedule first divides lr by 5 (down to 1e-6)."""
        if not (self._builtin("sgd") and self.learning_rate == "adaptive"):
            return True
        lr = self._current_lr()
        if lr <= 1e-6:
            return True
        self._set_lr(lr / 5.0)
        return False

    def _update_no_improvement_count(self, X_val, Y_val, sw_val, logs: dict) -> None:
        if self.early_stopping:
            out = self._output(X_val)
            T_val = self._targets(Y_val)
            with autograd.no_grad():
                val_loss = self._reported(self._data_loss(Tensor._wrap(out), T_val, sw_val).item(), T_val, sw_val)
            score = self._score_output(out, Y_val, sw_val)
            self.val_loss_curve_.append(val_loss)
            self.validation_scores_.append(score)
            logs.update(val_loss=val_loss, val_score=score)
            if is_classifier(self):
                logs["val_accuracy"] = score
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_state = {k: v._data.copy() for k, v in self.module_.state_dict().items()}
            return
        if self.loss_curve_[-1] > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if self.loss_curve_[-1] < self.best_loss_:
            self.best_loss_ = self.loss_curve_[-1]

    def _score_output(self, out: np.ndarray, Y: np.ndarray, sw) -> float:
        if not np.isfinite(out).all():
            return np.nan
        if is_classifier(self):
            y_true = self._label_binarizer.inverse_transform(Y)
            return float(accuracy_score(y_true, self._decide(out), sample_weight=sw))
        pred = self._regression_output(out)
        return float(r2_score(Y if pred.ndim == 2 else Y.ravel(), pred, sample_weight=sw))

    # ---- L-BFGS -----------------------------------------------------------------------------------------
    def _fit_lbfgs(self, X, Y, sw) -> None:
        target = self._targets(Y)
        sw_sum = X.shape[0] if sw is None else float(sw.sum())
        x = Tensor._wrap(X)
        last = {}

        def closure():
            self.optimizer_.zero_grad()
            loss = self._data_loss(self.module_(x), target, sw)
            loss.backward()
            last["loss"] = self._reported(loss.item(), target, sw) + self._penalty(sw_sum)
            return last["loss"]

        self.module_.train()
        self.optimizer_.step(closure)
        state = self.optimizer_.state[self.optimizer_.param_groups[0]["params"][0]]
        self.n_iter_ = int(state["n_iter"])
        with autograd.enable_grad():
            self.loss_ = float(closure())
        self.optimizer_.zero_grad()
        if self.n_iter_ >= self.max_iter or state["func_evals"] >= self.max_fun:
            warnings.warn(f"{type(self).__name__}: lbfgs failed to converge after {self.n_iter_} iterations "
                          f"({state['func_evals']} loss evaluations); increase max_iter or max_fun, or scale "
                          "the data", ConvergenceWarning, stacklevel=4)

    # ---- prediction -------------------------------------------------------------------------------------
    def _validate_X(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32), allow_nd=self._allow_nd)
        return X.astype(self._dtype_, copy=False)

    def _output(self, X: np.ndarray) -> np.ndarray:
        """The network's raw output (logits) in eval mode, without a graph."""
        module = self.module_
        was_training = module.training
        module.eval()
        try:
            with autograd.no_grad():
                return module(Tensor._wrap(np.ascontiguousarray(X, dtype=self._dtype_)))._data
        finally:
            module.train(was_training)

    def _output_width(self, X: np.ndarray) -> int:
        out = self._output(X[:1])
        if out.ndim != 2:
            raise ValueError(f"{type(self).__name__}: the network must output one row per sample, shape "
                             f"(n_samples, n_outputs); it gave shape {out.shape[1:]} per sample")
        return out.shape[1]

    def _regression_output(self, out: np.ndarray) -> np.ndarray:
        if self._loss_kind_ == "poisson":
            out = np.exp(out)
        return out.ravel() if out.shape[1] == 1 else out

    # ---- the fitted network ----------------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    # ---- pickling and safetensors -------------------------------------------------------------------------
    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        module = state.pop("module_", None)
        state.pop("_penalized_", None)
        state.pop("_best_state_tensors", None)
        if module is not None:
            state["_module_arrays"] = {k: v._data.copy() for k, v in module.state_dict().items()}
        opt = state.pop("optimizer_", None)
        if opt is not None:
            state["_optimizer_state"] = _to_arrays(opt.state_dict())
        return state

    def __setstate__(self, state):
        arrays = state.pop("_module_arrays", None)
        super().__setstate__(state)
        if arrays is not None:
            self._restore_module(arrays)

    def _restore_module(self, arrays: dict) -> None:
        with _chainrule_seed(0):  # building the layers draws an init that the loaded weights replace
            module = self._rebuild_module()
        module.to(self._dtype_)
        module.load_state_dict({k: Tensor._wrap(np.array(v)) for k, v in arrays.items()})
        self.module_ = module
        self._penalized_ = [p for name, p in module.named_parameters()
                            if name.rsplit(".", 1)[-1] == "weight" and p.ndim >= 2]
        self.optimizer_ = None

    def save(self, path) -> None:
        """Write the fitted estimator to a safetensors checkpoint (``cr.save``): the network's weights as
        tensors, the hyperparameters and fitted attributes as JSON. Unlike a pickle, which scikit-learn
        uses and which runs code when it is loaded, such a file can be loaded from any source safely;
        read it back with ``type(estimator).load(path)``: ``clf.save("digits.safetensors")``, then
        ``MLPClassifier.load("digits.safetensors")``.
        """
        check_is_fitted(self)
        params = {k: v for k, v in self.get_params(deep=False).items() if _json_able(v)}
        fitted = {k: v for k, v in vars(self).items()
                  if k.endswith("_") and not k.startswith("__") and _json_able(v) and k != "classes_"}
        extra = {"dtype": str(self._dtype_), "loss_kind": self._loss_kind_}
        if is_classifier(self):
            lb = self._label_binarizer
            extra.update(classes=np.asarray(self.classes_).tolist(), y_type=lb.y_type_,
                         classes_dtype=str(np.asarray(self.classes_).dtype))
        extra.update(self._save_extra())
        _checkpoint.save({"model": self.module_, "estimator": type(self).__name__, "params": params,
                          "fitted": fitted, "extra": extra}, path)

    def _save_extra(self) -> dict:
        return {}

    @classmethod
    def load(cls, path, **params):
        """An estimator written by :meth:`save`, ready to predict (``params`` fill in what JSON cannot hold,
        such as ``module=`` for a NeuralNet estimator)."""
        data = _checkpoint.load(path)
        if not isinstance(data, dict) or data.get("estimator") != cls.__name__:
            found = data.get("estimator") if isinstance(data, dict) else None
            raise ValueError(f"{cls.__name__}.load: {path} does not hold a saved {cls.__name__} (found {found!r})")
        est = cls(**{**data["params"], **params})
        for key, value in data["fitted"].items():
            if not isinstance(getattr(type(est), key, None), property):
                setattr(est, key, value)
        extra = data["extra"]
        est._dtype_ = np.dtype(extra["dtype"])
        est._loss_kind_ = extra["loss_kind"]
        est._load_extra(extra)
        if is_classifier(est):
            from sklearn.preprocessing import LabelBinarizer

            classes = np.asarray(extra["classes"], dtype=extra["classes_dtype"])
            lb = LabelBinarizer()
            lb.classes_, lb.y_type_, lb.sparse_input_ = classes, extra["y_type"], False
            est._label_binarizer, est.classes_ = lb, classes
        est._restore_module({k: v._data for k, v in data["model"].items()})
        return est

    def _load_extra(self, extra: dict) -> None:
        pass


def hide_var_keyword(cls: type) -> type:
    """Class decorator: the signature scikit-learn inspects lists the named parameters only; the prefixed
    keywords (``module__hidden=64``) that ``**kwargs`` takes are reported by ``get_params`` themselves."""
    init = cls.__init__
    sig = inspect.signature(init)
    init.__signature__ = sig.replace(parameters=[p for p in sig.parameters.values() if p.kind != p.VAR_KEYWORD])
    return cls


def _json_able(value) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return not isinstance(value, float) or math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_json_able(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_able(v) for k, v in value.items())
    return False
