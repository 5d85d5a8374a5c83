"""chainrule.sklearn.MLPClassifier against scikit-learn's MLPClassifier on digits: fit time at the same accuracy.

Both estimators get the same call: ``MLPClassifier(random_state=0, **settings).fit(X_train, y_train)``
on the standardised digits (80/20 split). With the same ``random_state`` chainrule draws scikit-learn's
initial weights and shuffles and runs its update and stopping rules, so both fit the same network for
the same number of epochs and reach the same test accuracy (the table shows both): the speed ratio
compares equal work. Fits alternate A B A B in this process; each row gives the median [min-max] of
``--runs`` fits and chainrule's speed as a multiple of scikit-learn's (above 1x: chainrule is faster).
The CPU other processes took meanwhile is printed: figures taken under load are noisy.

    python benchmarks/sklearn_estimators.py [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _harness import Meter, blas_threads, fmt, fmt_range, summarize, table

SETTINGS = {
    "adam, (100,), float64": dict(hidden_layer_sizes=(100,), solver="adam", dtype=np.float64),
    "adam, (100,), float32": dict(hidden_layer_sizes=(100,), solver="adam", dtype=np.float32),
    "sgd nesterov, (64, 32), float32": dict(hidden_layer_sizes=(64, 32), solver="sgd", learning_rate_init=0.05,
                                           dtype=np.float32),
}


def digits(dtype):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train).astype(dtype), y_train, scaler.transform(X_test).astype(dtype), y_test


def fit_once(cls, settings: dict, data, max_iter: int) -> dict:
    X_train, y_train, X_test, y_test = data
    params = {k: v for k, v in settings.items() if k != "dtype"}
    est = cls(random_state=0, max_iter=max_iter, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # --quick stops before convergence
        with Meter() as m:
            est.fit(X_train, y_train)
    return {"seconds": m.wall_s, "load": m.load, "epochs": est.n_iter_, "accuracy": float(est.score(X_test, y_test))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one run of 5 epochs per setting (a smoke test)")
    args = parser.parse_args()
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    from chainrule.sklearn import MLPClassifier as ChainruleMLP

    runs, max_iter = (1, 5) if args.quick else (args.runs, 200)
    rows = []
    for name, settings in SETTINGS.items():
        data = digits(settings["dtype"])
        fit_once(ChainruleMLP, settings, data, 2)  # first-call costs stay out
        fit_once(SklearnMLP, settings, data, 2)
        results = {"chainrule": [], "sklearn": []}
        for _ in range(runs):
            results["chainrule"].append(fit_once(ChainruleMLP, settings, data, max_iter))
            results["sklearn"].append(fit_once(SklearnMLP, settings, data, max_iter))
        times = {lib: summarize([r["seconds"] for r in rs]) for lib, rs in results.items()}
        ratio = times["sklearn"]["median"] / times["chainrule"]["median"]
        load = max((r["load"] or 0.0) for rs in results.values() for r in rs)
        acc = {lib: rs[-1]["accuracy"] for lib, rs in results.items()}
        epochs = {lib: rs[-1]["epochs"] for lib, rs in results.items()}
        rows.append([name, f"{fmt_range(times['chainrule'])} s", f"{fmt_range(times['sklearn'])} s",
                     f"{acc['chainrule']:.2%} / {acc['sklearn']:.2%}", f"{epochs['chainrule']} / {epochs['sklearn']}",
                     f"{fmt(ratio)}x", f"{load:.2f}"])
    print(f"digits (1437 train / 360 test, standardised), fit time, {runs} run(s) each; BLAS threads: {blas_threads()}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(table(["setting", "chainrule", "scikit-learn", "test acc (cr / sk)", "epochs (cr / sk)",
                 "chainrule speed / sklearn", "max other load (cores)"], rows))
    if any(float(r[-1]) > 0.5 for r in rows):
        print("Note: other processes kept more than half a core busy during some fits; the figures were taken "
              "under load.")


if __name__ == "__main__":
    main()
