"""scikit-learn workflows with a chainrule network: a pipeline, a grid search, a CNN, a safe save.

A ``Pipeline(StandardScaler(), chainrule.sklearn.MLPClassifier())`` is tuned by ``GridSearchCV`` over
the hidden layer sizes and the L2 penalty on the digits; then a small CNN (any ``cr.nn.Module`` class) becomes an estimator whose constructor
argument ``channels`` is searched as ``module__channels``. The best pipeline's network is written as a
safetensors file (arrays and JSON only: unlike a pickle it cannot run code when loaded) and read back.

    python examples/sklearn_pipeline.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import chainrule as cr
from chainrule.sklearn import MLPClassifier, NeuralNetClassifier


class DigitsCNN(cr.nn.Module):
    """64 pixels -> 1x8x8 image -> conv 3x3 -> relu -> 2x2 max-pool -> linear to the classes."""

    def __init__(self, out_features: int, channels: int = 4):
        super().__init__()
        self.body = cr.nn.Sequential(
            cr.nn.Unflatten(1, (1, 8, 8)), cr.nn.Conv2d(1, channels, 3, padding=1), cr.nn.ReLU(),
            cr.nn.MaxPool2d(2), cr.nn.Flatten(), cr.nn.Linear(channels * 16, out_features))

    def forward(self, x):
        return self.body(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="sklearn_pipeline_out")
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)

    warnings.filterwarnings("ignore", message=".*maximum iterations")  # short runs, on purpose
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)

    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=20, learning_rate_init=0.01, random_state=0))
    grid = {"mlpclassifier__hidden_layer_sizes": [(16,), (64,)], "mlpclassifier__alpha": [1e-4, 10.0]}
    search = GridSearchCV(pipe, grid, cv=2).fit(X_train, y_train)
    print(f"MLP grid search: best {search.best_params_}, cv accuracy {search.best_score_:.3f}, "
          f"test accuracy {search.score(X_test, y_test):.3f}")

    cnn = NeuralNetClassifier(DigitsCNN, max_iter=8, learning_rate_init=0.01, random_state=0)
    cnn_search = GridSearchCV(cnn, {"module__channels": [2, 8]}, cv=2).fit(X_train / 16, y_train)
    print(f"CNN grid search: best {cnn_search.best_params_}, test accuracy {cnn_search.score(X_test / 16, y_test):.3f}")

    best = search.best_estimator_.named_steps["mlpclassifier"]
    path = out / "digits_mlp.safetensors"
    best.save(path)
    again = MLPClassifier.load(path)
    scaled = search.best_estimator_.named_steps["standardscaler"].transform(X_test)
    same = bool((again.predict(scaled) == best.predict(scaled)).all())
    print(f"saved to {path.name} and loaded back: same predictions = {same}")
    results = [{"params": {k.split("__")[1]: v for k, v in p.items()}, "cv_accuracy": float(s)}
               for p, s in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"])]
    (out / "grid_search.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
