"""Vanishing gradients: a 10-layer sigmoid MLP beside a 10-layer ReLU MLP.

Backprop multiplies each layer's delta by W^T and by the activation's derivative. The sigmoid's
derivative is at most 1/4, so after ten layers the gradient reaching the first layer is many orders of
magnitude smaller than at the last; ReLU's derivative is 1 where a unit is active and, with He
initialisation (weights of variance 2 / fan_in), the gradient keeps its scale from layer to layer.
``cr.viz.Diagnostics`` records the gradient norm of every layer per epoch; the plot shows both nets.

    python examples/vanishing_gradients.py --out vanishing/
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

import chainrule as cr
from chainrule.viz import plots


def deep_mlp(activation: str, depth: int = 10, width: int = 32):
    model = cr.nn.MLP([2] + [width] * depth + [2], activation=activation)
    if activation == "relu":
        for m in model.modules():
            if isinstance(m, cr.nn.Linear):
                cr.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                cr.nn.init.zeros_(m.bias)
    return model


def run(epochs: int = 3, seed: int = 0) -> dict:
    """Train both nets on the XOR quadrants; returns {activation: Diagnostics}."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(512, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    data = (cr.tensor(x), cr.tensor(y))
    result = {}
    for activation in ("sigmoid", "relu"):
        cr.manual_seed(seed)
        model = deep_mlp(activation)
        diag = cr.viz.Diagnostics()
        cr.fit(model, data, loss="cross_entropy", optimizer="sgd", lr=0.05, epochs=epochs, batch_size=64,
               callbacks=[diag], verbose=0)
        result[activation] = diag
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="output folder (default: a new temporary folder)")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="chainrule-vanishing-"))
    out.mkdir(parents=True, exist_ok=True)

    diags = run(args.epochs)
    fig, axes = plots._figure(11, 4, 1, 2, sharey=True)
    for ax, (activation, diag) in zip(axes[0], diags.items()):
        plots.plot_gradient_norms(diag, ax=ax, title=f"10-layer {activation} MLP")
    plots._finish(fig, out / "gradient_norms.png")
    first = {a: d.history["0"]["grad_norm"] for a, d in diags.items()}
    (out / "first_layer_grad_norms.json").write_text(json.dumps(first, indent=1))
    for activation, diag in diags.items():
        norms = [rows["grad_norm"][-1] for rows in diag.history.values()]
        print(f"{activation:>7}: gradient norm, first layer {norms[0]:.2e} ... last layer {norms[-1]:.2e}")
    ratio = min(first["relu"]) / max(first["sigmoid"])
    print(f"first layer: ReLU's gradient is {ratio:.1e} times the sigmoid net's; plot in {out}")


if __name__ == "__main__":
    main()
