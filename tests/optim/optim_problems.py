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


def logistic_data(n: int = 100, seed: int = 0):
    """Two overlapping Gaussian clouds in 2-D (separable-ish), labels +1 / -1."""
    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal([1.0, 1.0], 1.0, (n // 2, 2)), rng.normal([-1.0, -1.0], 1.0, (n // 2, 2))])
    y = np.r_[np.ones(n // 2), -np.ones(n - n // 2)]
    return x, y


def cr_logistic(x: np.ndarray, y: np.ndarray, C: float = 1.0):  # noqa: N803
    r"""L2-regularised logistic regression written with core ops, scaled to match scikit-learn:
    sklearn minimises :math:`C \sum_i \log(1 + e^{-y_i z_i}) + \tfrac12 \lVert w\rVert^2` (intercept
    not penalised); dividing by C n gives the mean loss plus :math:`\lVert w\rVert^2 / (2 C n)`."""
    w = cr.nn.Parameter(cr.zeros(2, dtype=cr.float64))
    b = cr.nn.Parameter(cr.zeros(1, dtype=cr.float64))
    xt, yt = cr.tensor(x), cr.tensor(y)
    alpha = 1.0 / (C * len(y))

    def loss_fn():
        margin = yt * (xt @ w + b)
        return cr.log(1 + cr.exp(-margin)).mean() + 0.5 * alpha * (w * w).sum()

    return [w, b], loss_fn


def rosenbrock(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()


def closure_for(opt, loss_fn):
    def closure():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    return closure


def grad_norm(params, loss_fn) -> float:
    grads = cr.grad(loss_fn(), params)
    return float(np.sqrt(sum((g.detach().numpy() ** 2).sum() for g in grads)))
