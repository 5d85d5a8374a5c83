"""Classification and regression: targets in, predictions out, as ``sklearn.neural_network`` does."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    _check_partial_fit_first_call,
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import validate_data

from .. import autograd
from ..nn import functional as F
from ..tensor import Tensor


def _apply(fn, out: np.ndarray, *args) -> np.ndarray:
    with autograd.no_grad():
        return fn(Tensor._wrap(out), *args)._data


def _stochastic(estimator) -> bool:
    """partial_fit exists for the stochastic solvers only (L-BFGS needs the whole data set)."""
    return not estimator._is_lbfgs()


class _Classifier(ClassifierMixin):
    """Labels of any kind through a LabelBinarizer; softmax over the classes (multiclass) or one
    logistic output per label (binary, multilabel), as sklearn's MLPClassifier."""

    def _validate_input(self, X, y, incremental: bool, reset: bool):
        X, y = validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32), reset=reset,
                             allow_nd=self._allow_nd)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError(f"{type(self).__name__}: warm_start needs y with the classes of the previous "
                                     f"fit; it had {self.classes_}, y has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError(f"{type(self).__name__}: y has classes not in classes_ {self.classes_}: "
                                 f"{np.setdiff1d(classes, self.classes_)}")
        return X, self._label_binarizer.transform(y).astype(bool)

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X``, ``y`` (``classes``: every class, required on the first call); returns self."""
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def _with_class_weight(self, Y, sample_weight, dtype):
        if self.class_weight is None:
            return sample_weight
        lb = self._label_binarizer
        labels = Y.astype(int) if lb.y_type_.startswith("multilabel") else lb.inverse_transform(Y)
        weight = compute_sample_weight(self.class_weight, labels).astype(dtype)
        return weight if sample_weight is None else weight * sample_weight

    def _loss_kind(self, X) -> str:
        width, expected = self._output_width(X), self.n_outputs_
        if self._label_binarizer.y_type_ == "multiclass" and width == expected:
            return "softmax"
        if self._label_binarizer.y_type_ == "binary" and width == 2:
            return "softmax"
        if self._label_binarizer.y_type_ != "multiclass" and width == expected:
            return "logistic"
        raise ValueError(f"{type(self).__name__}: the network gives {width} outputs per sample; expected "
                         f"{expected} ({'one per class' if expected > 1 else 'one logit for two classes'})")

    def _decide(self, out: np.ndarray) -> np.ndarray:
        if self._loss_kind_ == "softmax":
            return self.classes_[out.argmax(axis=1)]
        return self._label_binarizer.inverse_transform(_apply(F.sigmoid, out))

    def predict(self, X) -> np.ndarray:
        """The class of each sample (a label indicator row for multilabel targets)."""
        return self._decide(self._output(self._validate_X(X)))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape (n_samples, n_classes), in the order of ``classes_``."""
        out = self._output(self._validate_X(X))
        if self._loss_kind_ == "softmax":
            return _apply(F.softmax, out, 1)
        p = _apply(F.sigmoid, out)
        return np.hstack([1 - p, p]) if self.n_outputs_ == 1 else p

    def predict_log_proba(self, X) -> np.ndarray:
        """log of ``predict_proba``, computed from the logits (finite where the probability underflows)."""
        out = self._output(self._validate_X(X))
        if self._loss_kind_ == "softmax":
            return _apply(F.log_softmax, out, 1)
        log_p = _apply(F.logsigmoid, out)
        log_not_p = _apply(F.logsigmoid, -out)
        return np.hstack([log_not_p, log_p]) if self.n_outputs_ == 1 else log_p

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class _Regressor(RegressorMixin):
    """Real targets, one output per target column; squared error (or Poisson deviance)."""

    def _validate_input(self, X, y, incremental: bool, reset: bool):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=(np.float64, np.float32),
                             reset=reset, allow_nd=self._allow_nd)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if getattr(self, "loss", "squared_error") == "poisson" and (y < 0).any():
            raise ValueError(f"{type(self).__name__}: loss='poisson' needs non-negative targets, got min(y) = {y.min()}")
        return X, y.astype(X.dtype, copy=False)

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X``, ``y``; returns self."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _loss_kind(self, X) -> str:
        width = self._output_width(X)
        if width != self.n_outputs_:
            raise ValueError(f"{type(self).__name__}: the network gives {width} outputs per sample; expected "
                             f"{self.n_outputs_} (one per target column)")
        return getattr(self, "loss", "squared_error")

    def predict(self, X) -> np.ndarray:
        """The predicted targets, shape (n_samples,) or (n_samples, n_outputs)."""
        return self._regression_output(self._output(self._validate_X(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
