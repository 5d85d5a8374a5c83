"""Stopping a run, saving a checkpoint and resuming gives the parameters of an uninterrupted run."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.data import DataLoader, datasets


def _setup(optimizer: str):
    cr.manual_seed(0)
    model = cr.nn.MLP([2, 16, 16, 2], activation="tanh", dropout=0.1)
    if optimizer == "sgd":
        opt = cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    else:
        opt = cr.optim.Adam(model.parameters(), lr=0.01, amsgrad=True)
    data = datasets.moons(96, noise=0.2, seed=1)
    # Shuffling and dropout both draw from the package generator: its state is part of the run.
    loader = DataLoader(data, batch_size=16, shuffle=True)
    return model, opt, loader


def _train(model, opt, loader, epochs):
    loss_fn = cr.nn.CrossEntropyLoss()
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resume_matches_an_uninterrupted_run(tmp_path, optimizer):
    model, opt, loader = _setup(optimizer)
    _train(model, opt, loader, epochs=6)
    expected = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    model, opt, loader = _setup(optimizer)
    _train(model, opt, loader, epochs=3)
    path = tmp_path / "ckpt.safetensors"
    cr.save({"model": model, "optimizer": opt.state_dict(), "epoch": 3, "rng": cr.io.get_rng_state()}, path)
    del model, opt

    # A fresh process would start here: new objects with other weights, then the checkpoint.
    cr.manual_seed(12345)
    model, opt, loader = _setup(optimizer)
    cr.manual_seed(12345)
    ckpt = cr.load(path)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    cr.io.set_rng_state(ckpt["rng"])
    _train(model, opt, loader, epochs=6 - ckpt["epoch"])

    got = model.state_dict()
    for k, v in expected.items():
        np.testing.assert_array_equal(got[k].numpy(), v, err_msg=k)


def test_resume_from_a_rebuilt_model(tmp_path):
    """load_model + the optimizer state also resumes exactly."""
    model, opt, loader = _setup("adam")
    _train(model, opt, loader, epochs=4)
    expected = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    model, opt, loader = _setup("adam")
    _train(model, opt, loader, epochs=2)
    path = tmp_path / "ckpt.safetensors"
    cr.save({"model": model, "optimizer": opt, "rng": cr.io.get_rng_state()}, path)

    model = cr.load_model(path)
    opt = cr.optim.Adam(model.parameters(), lr=0.5)  # hyperparameters come back from the checkpoint
    ckpt = cr.load(path)
    opt.load_state_dict(ckpt["optimizer"])
    assert opt.param_groups[0]["lr"] == 0.01
    cr.io.set_rng_state(ckpt["rng"])
    _train(model, opt, loader, epochs=2)
    for k, v in expected.items():
        np.testing.assert_array_equal(model.state_dict()[k].numpy(), v, err_msg=k)
