"""scikit-learn estimators over chainrule networks: pipelines, grid searches, cross-validation.

``MLPClassifier`` / ``MLPRegressor`` take ``sklearn.neural_network``'s parameters (replacing the import
works) plus chainrule's own (activations, dropout, batch norm, optimizers, callbacks);
``NeuralNetClassifier`` / ``NeuralNetRegressor`` wrap any ``cr.nn.Module`` class, its constructor
arguments settable as ``module__<name>``. Needs scikit-learn (``pip install 'chainrule[sklearn]'``).

>>> from chainrule.sklearn import MLPClassifier
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), dropout=0.1))
"""

try:
    from sklearn.utils.validation import validate_data  # noqa: F401  (scikit-learn >= 1.6)
except ImportError as err:  # missing, or older than the estimator protocol used here
    raise ImportError("chainrule.sklearn needs scikit-learn >= 1.6: pip install 'chainrule[sklearn]'") from err

# isort: split
from .mlp import MLPClassifier, MLPRegressor
from .net import NeuralNetClassifier, NeuralNetRegressor

__all__ = ["MLPClassifier", "MLPRegressor", "NeuralNetClassifier", "NeuralNetRegressor"]
