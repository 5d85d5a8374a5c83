"""The Python script behind the page's "export code" button: the same data, network, initial weights,
optimizer and training loop with chainrule's API, so ``python playground_model.py`` retrains what
the page trained (weights edited by hand on the page are not replayed).

>>> text = script(dict(DEFAULTS), init_seed=0)
>>> "cr.manual_seed(0)" in text and "optimizer.step()" in text
True
"""

from __future__ import annotations

import json

from .data import FEATURES

_ACT = {"tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()", "relu": "nn.ReLU()", "elu": "nn.ELU()",
        "leaky_relu": "nn.LeakyReLU(0.1)", "prelu": "nn.PReLU()"}
_LOSS = {"cross_entropy": "nn.CrossEntropyLoss()", "bce": "nn.BCEWithLogitsLoss()", "mse": "nn.MSELoss()",
         "l1": "nn.L1Loss()", "hinge": "nn.MultiMarginLoss()"}


def _layers(config: dict) -> list:
    n_in, lines = len(config["features"]), []
    for width in config["layers"]:
        if config["activation"] == "maxout":
            lines.append(f"nn.Maxout({n_in}, {width}, k=2)")
        else:
            lines.append(f"nn.Linear({n_in}, {width})")
            if config["activation"] != "linear":
                lines.append(_ACT[config["activation"]])
        n_in = width
    n_out = 1 if config["problem"] == "regression" or config["loss"] == "bce" else config["classes"]
    lines.append(f"nn.Linear({n_in}, {n_out})")
    if config["problem"] == "classification" and config["loss"] in ("mse", "l1"):
        lines.append("nn.Softmax(dim=-1)")
    return lines


def _optimizer(config: dict) -> str:
    lr, kind = config["lr"], config["optimizer"]
    return {"sgd": f"cr.optim.SGD(model.parameters(), lr={lr!r})",
            "gd": f"cr.optim.SGD(model.parameters(), lr={lr!r})  # full batch: gradient descent",
            "momentum": f"cr.optim.SGD(model.parameters(), lr={lr!r}, momentum=0.9)",
            "adam": f"cr.optim.Adam(model.parameters(), lr={lr!r})",
            "lbfgs": f"cr.optim.LBFGS(model.parameters(), lr={lr!r}, max_iter=1, line_search_fn='strong_wolfe')"}[kind]


def _targets(config: dict, y: str) -> str:
    if config["problem"] == "regression" or config["loss"] == "bce":
        return f"{y}.astype(np.float64).reshape(-1, 1)"
    if config["loss"] in ("mse", "l1"):
        return f"np.eye({config['classes']})[{y}]"
    return f"{y}.astype(np.int64)"


def script(config: dict, init_seed: int, csv_name: str | None = None, epochs: int = 100) -> str:
    """A runnable script for ``config`` (a checked settings dict of the playground)."""
    c = config
    if c["dataset"] == "csv":
        data = (f"table = np.loadtxt({csv_name or 'points.csv'!r}, delimiter=',', skiprows=0, ndmin=2)"
                "  # rows x1,x2,label (drop a header row first)\n"
                f"X, y = table[:, :2], table[:, 2]\ny = y.astype(np.int64) if {c['problem'] == 'classification'} else y")
    else:
        data = (f"X, y = make_dataset({c['dataset']!r}, n_samples=500, noise={c['noise']!r}, seed={c['seed']!r}, "
                f"classes={c['classes']!r})")
    full_batch = c["optimizer"] in ("gd", "lbfgs")
    reg = ""
    if c["regularization"] != "none" and c["reg_rate"] > 0:
        term = "m.weight.abs().sum()" if c["regularization"] == "l1" else "0.5 * (m.weight * m.weight).sum()"
        reg = (f"\n    for m in model.children():\n        if isinstance(m, (nn.Linear, nn.Maxout)):\n"
               f"            total = total + {c['reg_rate']!r} * {term}")
    layers = ",\n    ".join(_layers(c))
    if c["optimizer"] == "lbfgs":
        update = ("        def closure():\n            optimizer.zero_grad()\n            total = objective(x, t)\n"
                  "            total.backward()\n            return total\n        optimizer.step(closure)")
    else:
        update = ("        total = objective(x, t)\n        optimizer.zero_grad()\n        total.backward()\n"
                  "        optimizer.step()")
    batches = ("    batches = [np.arange(len(F_train))]  # full batch" if full_batch else
               f"    perm = rng.permutation(len(F_train))\n"
               f"    batches = [perm[i:i + {c['batch_size']}] for i in range(0, len(perm), {c['batch_size']})]")
    feature_names = ", ".join(FEATURES[f][0] for f in c["features"])
    return f'''"""A chainrule playground setup as a script: same data, network, initial weights and training.

Settings: {json.dumps(c)}
Inputs: {feature_names}.
"""

import numpy as np

import chainrule as cr
from chainrule import nn
from chainrule.playground.data import features, make_dataset, split

EPOCHS = {epochs}

{data}
train, test = split(len(X), {c['train_ratio']!r}, {c['seed']!r})
F_train, F_test = features(X[train], {c['features']!r}), features(X[test], {c['features']!r})
T_train, T_test = {_targets(c, "y[train]")}, {_targets(c, "y[test]")}

cr.manual_seed({init_seed})  # the page's initial weights
model = nn.Sequential(
    {layers},
).double()
loss_fn = {_LOSS[c["loss"]]}
optimizer = {_optimizer(c)}
rng = np.random.default_rng({c['seed'] + 2})  # the order of the mini-batches


def objective(x, t):
    total = loss_fn(model(x), t){reg}
    return total


for epoch in range(1, EPOCHS + 1):
{batches}
    for idx in batches:
        x, t = cr.tensor(F_train[idx]), cr.tensor(T_train[idx])
{update}
    with cr.no_grad():
        train_loss = loss_fn(model(cr.tensor(F_train)), cr.tensor(T_train)).item()
        test_loss = loss_fn(model(cr.tensor(F_test)), cr.tensor(T_test)).item()
    if epoch % 10 == 0 or epoch == EPOCHS:
        print(f"epoch {{epoch}}: train loss {{train_loss:.4f}}, test loss {{test_loss:.4f}}")

cr.save(model, "playground_model.safetensors")  # cr.load_model("playground_model.safetensors") rebuilds it
'''
