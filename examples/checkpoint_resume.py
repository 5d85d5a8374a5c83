"""Checkpoints: stop a training run, resume it from the file, and land on the same weights.

The manual PyTorch-style loop trains a small MLP on the moons set (a seeded DataLoader reshuffles every
epoch; dropout draws from the same generator). Halfway, the model, the optimizer state and the random
generator's state go into one safetensors file; a second run starts from that file alone and finishes
the job. Its weights equal those of an uninterrupted run, bit for bit. Finally ``cr.load_model`` rebuilds
the network from the file without the code that defined it.

    python examples/checkpoint_resume.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

import chainrule as cr
from chainrule.data import DataLoader, Standardizer, datasets, random_split


def setup():
    cr.manual_seed(0)
    data = datasets.moons(600, noise=0.15, seed=1)
    train, test = random_split(data, [0.8, 0.2], generator=2)
    scaler = Standardizer().fit(train)  # statistics of the training part only
    train, test = scaler.transform(train), scaler.transform(test)
    model = cr.nn.MLP([2, 32, 32, 2], activation="relu", dropout=0.1)
    opt = cr.optim.Adam(model.parameters(), lr=0.01)
    return model, opt, DataLoader(train, batch_size=32, shuffle=True), test


def train(model, opt, loader, epochs):
    loss_fn = cr.nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()


def accuracy(model, test) -> float:
    model.eval()
    x, y = test.tensors
    with cr.no_grad():
        return float((model(x).numpy().argmax(axis=1) == y.numpy()).mean())


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="chainrule-ckpt-"))
    path = folder / "halfway.safetensors"

    model, opt, loader, test = setup()
    train(model, opt, loader, epochs=20)
    uninterrupted = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    model, opt, loader, test = setup()
    train(model, opt, loader, epochs=10)
    cr.save({"model": model, "optimizer": opt, "epoch": 10, "rng": cr.io.get_rng_state()}, path)
    print(f"saved {path} ({path.stat().st_size} bytes) after 10 epochs")

    # A new run: fresh objects, then everything that matters comes from the file.
    model, opt, loader, test = setup()
    ckpt = cr.load(path)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    cr.io.set_rng_state(ckpt["rng"])
    train(model, opt, loader, epochs=20 - ckpt["epoch"])
    same = all(np.array_equal(model.state_dict()[k].numpy(), v) for k, v in uninterrupted.items())
    print(f"resumed run equals the uninterrupted one: {same}")
    print(f"test accuracy: {accuracy(model, test):.3f}")

    cr.save(model, folder / "final.safetensors")
    rebuilt = cr.load_model(folder / "final.safetensors")
    print(f"rebuilt without code: {type(rebuilt).__name__}, test accuracy {accuracy(rebuilt, test):.3f}")


if __name__ == "__main__":
    main()
