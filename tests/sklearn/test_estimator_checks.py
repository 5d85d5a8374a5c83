"""scikit-learn's own conformance suite, every check, for the four estimators (defaults as users get them)."""

from __future__ import annotations

import warnings

import pytest
from sklearn.utils.estimator_checks import check_estimator

import chainrule as cr
from chainrule.sklearn import MLPClassifier, MLPRegressor, NeuralNetClassifier, NeuralNetRegressor


class TwoLayer(cr.nn.Module):
    """A module whose sizes come from the data: NeuralNet* fill in in_features and out_features."""

    def __init__(self, in_features: int, out_features: int, hidden: int = 32):
        super().__init__()
        self.net = cr.nn.Sequential(cr.nn.Linear(in_features, hidden), cr.nn.ReLU(),
                                    cr.nn.Linear(hidden, out_features))

    def forward(self, x):
        return self.net(x)


ESTIMATORS = [MLPClassifier(), MLPRegressor(), NeuralNetClassifier(TwoLayer), NeuralNetRegressor(TwoLayer)]


# The one check scikit-learn itself skips for its MLPClassifier: there is no decision_function to check
# (the network's outputs are exposed as predict_proba / predict_log_proba, as in sklearn).
NOT_APPLICABLE = {"check_classifiers_multilabel_output_format_decision_function": "decision_function"}


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_check_estimator_passes_every_check(estimator, monkeypatch):
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")  # else check_array_api_input skips itself
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarnings of the checks' tiny data sets
        results = check_estimator(estimator, on_fail=None, on_skip=None)
    failed = {r["check_name"]: repr(r["exception"])[:300] for r in results if r["status"] == "failed"}
    skipped = {r["check_name"]: repr(r["exception"])[:300] for r in results if r["status"] == "skipped"}
    assert not failed, failed
    for name, reason in skipped.items():
        assert name in NOT_APPLICABLE and NOT_APPLICABLE[name] in reason, (name, reason)
    assert len(results) > 50  # the suite ran
