"""What a CNN learns in its first layer: filters, and an MLP's first-layer weights as templates.

Trains a small convolutional network (Conv2d 1->8 3x3, ReLU, max-pool, Linear) on the bundled 8x8
digits for a few epochs and draws its learned 3x3 filters; trains a linear classifier on the same
pixels and draws each class's weights as an 8x8 image: the "template" each class is matched against.

    python examples/cnn_filters.py --out cnn/
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import chainrule as cr
from chainrule.viz import plots


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="output folder (default: a new temporary folder)")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="chainrule-cnn-"))
    out.mkdir(parents=True, exist_ok=True)

    ds = cr.data.datasets.digits(images=True)
    images = np.asarray(ds.features, dtype=np.float32) / 16.0  # (N, 1, 8, 8), pixels in [0, 1]
    labels = np.asarray(ds.targets, dtype=np.int64)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    train, test = order[:1400], order[1400:]

    cr.manual_seed(0)
    cnn = cr.nn.Sequential(cr.nn.Conv2d(1, 8, 3, padding=1), cr.nn.ReLU(), cr.nn.MaxPool2d(2),
                           cr.nn.Flatten(), cr.nn.Linear(8 * 4 * 4, 10))
    cr.fit(cnn, (cr.tensor(images[train]), cr.tensor(labels[train])), optimizer="adam", lr=0.01,
           epochs=args.epochs, batch_size=64, verbose=0)
    acc = cr.evaluate(cnn, (cr.tensor(images[test]), cr.tensor(labels[test])))["accuracy"]
    print(f"CNN test accuracy after {args.epochs} epochs: {acc:.3f}")
    plots.conv_filters(cnn, out / "conv_filters.png")

    flat = images.reshape(len(images), -1)
    linear = cr.nn.Sequential(cr.nn.Linear(64, 10))
    cr.fit(linear, (cr.tensor(flat[train]), cr.tensor(labels[train])), optimizer="adam", lr=0.01,
           epochs=args.epochs * 3, batch_size=64, verbose=0)
    acc = cr.evaluate(linear, (cr.tensor(flat[test]), cr.tensor(labels[test])))["accuracy"]
    print(f"linear classifier test accuracy: {acc:.3f}")
    plots.first_layer_weights(linear, image_shape=(8, 8), path=out / "linear_templates.png")
    print(f"plots in {out}")


if __name__ == "__main__":
    main()
