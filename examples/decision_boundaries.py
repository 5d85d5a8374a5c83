"""Linear vs nonlinear decision boundaries, and how hidden layers transform the data.

On two interleaved half-moons and on two concentric circles, a linear classifier (one Linear layer,
softmax regression) can only draw a straight line; an MLP with hidden ReLU units bends the boundary
around the classes. The script trains both on each dataset, draws the four boundaries, an animated GIF
of the MLP's boundary on the circles evolving over the epochs, and a PCA of the MLP's last hidden
layer, where the classes have become (nearly) linearly separable.

    python examples/decision_boundaries.py --out boundaries/
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import chainrule as cr
from chainrule.viz import plots


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="output folder (default: a new temporary folder)")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="chainrule-boundaries-"))
    out.mkdir(parents=True, exist_ok=True)

    datasets = {"moons": cr.data.datasets.moons(300, noise=0.15, seed=0),
                "circles": cr.data.datasets.circles(300, noise=0.08, factor=0.4, seed=0)}
    fig, axes = plots._figure(9, 8, 2, 2)
    for row, (name, ds) in enumerate(datasets.items()):
        x, y = cr.tensor(ds.features), cr.tensor(ds.targets)
        cr.manual_seed(0)
        models = {"linear": cr.nn.Linear(2, 2), "MLP 2-16-16-2": cr.nn.MLP([2, 16, 16, 2])}
        recorder = cr.viz.DecisionBoundaryRecorder(x, y, every=3, resolution=60) if name == "circles" else None
        for col, (kind, model) in enumerate(models.items()):
            callbacks = [recorder] if recorder is not None and kind != "linear" else []
            history = cr.fit(model, (x, y), optimizer="adam", lr=0.03, epochs=args.epochs, batch_size=32,
                             callbacks=callbacks, verbose=0)
            acc = history["accuracy"][-1]
            print(f"{name:>8}, {kind:<14}: training accuracy {acc:.2f}")
            plots.decision_boundary(model, x, y, ax=axes[row, col], resolution=100,
                                    title=f"{name}: {kind} (accuracy {acc:.0%})")
        if recorder is not None:
            recorder.save_gif(out / "circles_boundary.gif")
            plots.hidden_pca(models["MLP 2-16-16-2"], x, y, path=out / "circles_hidden_pca.png",
                             title="circles: last hidden layer (PCA)")
    plots._finish(fig, out / "decision_boundaries.png")
    print(f"plots in {out}")


if __name__ == "__main__":
    main()
