"""Small problems built from Parameters and core ops only (no cr.nn layers), shared by the optimizer
tests, with a PyTorch twin of each where the test compares against torch.optim."""

from __future__ import annotations

import numpy as np

import chainrule as cr


def mlp_arrays(seed: int = 0, dtype=np.float64) -> dict:
    """Inputs, targets and initial weights of a 3-5-2 tanh network."""
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((8, 3)).astype(dtype),
        "y": rng.standard_normal((8, 2)).astype(dtype),
        "w1": (0.7 * rng.standard_normal((3, 5))).astype(dtype),
        "b1": (0.1 * rng.standard_normal(5)).astype(dtype),
        "w2": (0.7 * rng.standard_normal((5, 2))).astype(dtype),
    }


def cr_mlp(arrays: dict):
    """``(params, loss_fn)`` in chainrule: mean squared error of tanh(x W1 + b1) W2 against y."""
    params = [cr.nn.Parameter(cr.tensor(arrays[k].copy())) for k in ("w1", "b1", "w2")]
    x, y = cr.tensor(arrays["x"]), cr.tensor(arrays["y"])

    def loss_fn():
        w1, b1, w2 = params
        out = cr.tanh(x @ w1 + b1) @ w2
        return ((out - y) ** 2).mean()

    return params, loss_fn


def torch_mlp(arrays: dict):
    import torch

    params = [torch.nn.Parameter(torch.tensor(arrays[k].copy())) for k in ("w1", "b1", "w2")]
    x, y = torch.tensor(arrays["x"]), torch.tensor(arrays["y"])

    def loss_fn():
        w1, b1, w2 = params
        out = torch.tanh(x @ w1 + b1) @ w2
        return ((out - y) ** 2).mean()

    return params, loss_fn
