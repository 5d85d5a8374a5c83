"""Why gradient descent? Newton's method, L-BFGS and conjugate gradient against plain gradient descent
on one convex problem: L2-regularised logistic regression on two overlapping clouds in 2-D.

Each method gets the same starting point and a full-batch closure; the table shows how many
iterations and loss/gradient evaluations each needs to drive the gradient norm below 1e-8.

    python examples/second_order_methods.py
"""

import numpy as np

import chainrule as cr


def problem(seed: int = 0, n: int = 200):
    rng = np.random.default_rng(seed)
    x = np.vstack([rng.normal([1.0, 1.0], 1.0, (n // 2, 2)), rng.normal([-1.0, -1.0], 1.0, (n // 2, 2))])
    y = np.r_[np.ones(n // 2), -np.ones(n // 2)]
    w = cr.nn.Parameter(cr.zeros(2, dtype=cr.float64))
    b = cr.nn.Parameter(cr.zeros(1, dtype=cr.float64))
    xt, yt = cr.tensor(x), cr.tensor(y)

    def loss_fn():
        margin = yt * (xt @ w + b)
        return cr.log(1 + cr.exp(-margin)).mean() + 0.5 / n * (w * w).sum()

    return [w, b], loss_fn


def grad_norm(params, loss_fn) -> float:
    return float(np.sqrt(sum((g.detach().numpy() ** 2).sum() for g in cr.grad(loss_fn(), params))))


# One `step` = one iteration for every method (L-BFGS and CG can also run many per call).
TIGHT = dict(max_iter=1, tolerance_grad=1e-12, tolerance_change=0.0)
METHODS = {
    "gradient descent": lambda p: cr.optim.SGD(p, lr=2.0),
    "L-BFGS": lambda p: cr.optim.LBFGS(p, line_search_fn="strong_wolfe", max_eval=25, **TIGHT),
    "conjugate gradient": lambda p: cr.optim.ConjugateGradient(p, **TIGHT),
    "Newton": lambda p: cr.optim.Newton(p),
}


def run(make, max_steps: int = 5000) -> tuple[int, int, float, float]:
    """Iterations and closure evaluations to reach a gradient norm below 1e-8; final loss and norm."""
    params, loss_fn = problem()
    opt = make(params)
    evaluations = 0

    def closure():
        nonlocal evaluations
        evaluations += 1
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    steps = 0
    while steps < max_steps and grad_norm(params, loss_fn) >= 1e-8:
        opt.step(closure)
        steps += 1
    return steps, evaluations, loss_fn().item(), grad_norm(params, loss_fn)


if __name__ == "__main__":
    print(f"{'method':20s} {'iterations':>10s} {'evaluations':>12s} {'loss':>14s} {'|grad|':>10s}")
    for name, make in METHODS.items():
        steps, evaluations, loss, norm = run(make)
        print(f"{name:20s} {steps:10d} {evaluations:12d} {loss:14.10f} {norm:10.1e}")
