"""Full-batch methods: L-BFGS (against torch.optim.LBFGS), nonlinear CG, Newton's method."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import requires_torch
from optim_problems import (
    closure_for,
    cr_logistic,
    cr_mlp,
    grad_norm,
    logistic_data,
    mlp_arrays,
    rosenbrock,
    torch_mlp,
)

import chainrule as cr
from chainrule.optim.line_search import cubic_minimizer, strong_wolfe

LBFGS_CASES = [
    dict(),
    dict(max_iter=5),
    dict(lr=0.1),
    dict(history_size=4, max_iter=10),
    dict(line_search_fn="strong_wolfe"),
    dict(line_search_fn="strong_wolfe", max_iter=5),
    dict(line_search_fn="strong_wolfe", lr=0.1),
    dict(line_search_fn="strong_wolfe", history_size=4, max_iter=10, max_eval=12),
]


def _run_lbfgs_pair(x0, options, steps=20):
    """20 LBFGS steps on the same Rosenbrock closure in chainrule and PyTorch."""
    import torch

    p = cr.nn.Parameter(cr.tensor(x0.copy()))
    tp = torch.nn.Parameter(torch.tensor(x0.copy()))
    opt = cr.optim.LBFGS([p], **options)
    topt = torch.optim.LBFGS([tp], **options)
    closure = closure_for(opt, lambda: rosenbrock(p))
    tclosure = closure_for(topt, lambda: rosenbrock(tp))
    rows = []
    for _ in range(steps):
        loss, tloss = opt.step(closure).item(), topt.step(tclosure).item()
        rows.append((loss, tloss, p.detach().numpy().copy(), tp.detach().numpy().copy()))
    return rows, opt.state[p], topt.state[tp]


@requires_torch
@pytest.mark.parametrize("x0", [np.array([-1.2, 1.0]), np.linspace(1.0, -1.2, 6)], ids=["2d", "6d"])
@pytest.mark.parametrize(
    "options", LBFGS_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults"
)
def test_lbfgs_iterates_match_torch_on_rosenbrock(x0, options):
    rows, state, tstate = _run_lbfgs_pair(x0, options)
    for loss, tloss, x, tx in rows:
        np.testing.assert_allclose(x, tx, rtol=1e-7, atol=1e-7)
        np.testing.assert_allclose(loss, tloss, rtol=1e-6, atol=1e-10)
    assert state["func_evals"] == tstate["func_evals"]
    assert state["n_iter"] == tstate["n_iter"]
    assert rows[-1][0] < rows[0][0]  # and it did optimise


@requires_torch
@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_iterates_match_torch_on_a_tanh_network(line_search_fn):
    # A non-convex problem: rounding differences between the libraries grow slowly along the
    # trajectory, so short steps (max_iter=4) keep 20 steps = 80 iterations comparable.
    import torch

    params, loss_fn = cr_mlp(mlp_arrays())
    tparams, tloss_fn = torch_mlp(mlp_arrays())
    opt = cr.optim.LBFGS(params, max_iter=4, line_search_fn=line_search_fn)
    topt = torch.optim.LBFGS(tparams, max_iter=4, line_search_fn=line_search_fn)
    closure, tclosure = closure_for(opt, loss_fn), closure_for(topt, tloss_fn)
    for _ in range(20):
        np.testing.assert_allclose(opt.step(closure).item(), topt.step(tclosure).item(), rtol=1e-6)
        for p, q in zip(params, tparams):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6, atol=1e-6)
    assert opt.state[params[0]]["func_evals"] == topt.state[tparams[0]]["func_evals"]
    assert torch is not None


@pytest.mark.parametrize(
    "make",
    [
        lambda p: cr.optim.LBFGS(p, history_size=3, max_iter=6, line_search_fn="strong_wolfe"),
        lambda p: cr.optim.LBFGS(p, max_iter=6),
        lambda p: cr.optim.ConjugateGradient(p, max_iter=6),
        lambda p: cr.optim.ConjugateGradient(p, max_iter=6, beta="FR", line_search_fn=None, lr=0.05),
        lambda p: cr.optim.Newton(p),
        lambda p: cr.optim.Newton(p, method="cg"),
    ],
    ids=["lbfgs-wolfe", "lbfgs", "cg", "cg-fr-fixed", "newton", "newton-cg"],
)
def test_state_dict_resume_gives_identical_iterates(make):
    def run(steps, resume_after=None):
        params, loss_fn = cr_mlp(mlp_arrays())
        opt = make(params)
        for i in range(steps):
            if i == resume_after:
                saved, values = opt.state_dict(), [p.detach().numpy().copy() for p in params]
                opt.step(closure_for(opt, loss_fn))  # carry on a little, then throw it all away
                params, loss_fn = cr_mlp(dict(mlp_arrays(), w1=values[0], b1=values[1], w2=values[2]))
                opt = make(params)
                opt.load_state_dict(saved)
            opt.step(closure_for(opt, loss_fn))
        return [p.detach().numpy() for p in params]

    straight = run(8)
    resumed = run(8, resume_after=3)
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)


# ---- the convex problem of issue 7: logistic regression against scikit-learn ------------------------


@pytest.fixture(scope="module")
def sklearn_optimum():
    sklearn = pytest.importorskip("sklearn.linear_model")
    x, y = logistic_data()
    model = sklearn.LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(x, (y > 0).astype(int))
    return np.r_[model.coef_.ravel(), model.intercept_]


def _solution(params):
    return np.concatenate([p.detach().numpy().ravel() for p in params])


def test_newton_reaches_the_logistic_optimum_in_at_most_15_iterations(sklearn_optimum):
    params, loss_fn = cr_logistic(*logistic_data())
    opt = cr.optim.Newton(params)
    closure = closure_for(opt, loss_fn)
    norms = []
    for _ in range(15):
        opt.step(closure)
        norms.append(grad_norm(params, loss_fn))
        if norms[-1] < 1e-8:
            break
    assert norms[-1] < 1e-8, norms
    assert len(norms) <= 15
    # superlinear (the damping fades, so nearly quadratic) convergence at the end
    assert norms[-1] < norms[-2] ** 1.5 and norms[-2] < norms[-3] ** 1.5, norms
    np.testing.assert_allclose(_solution(params), sklearn_optimum, atol=1e-4)
    assert opt.method == "exact"


@pytest.mark.parametrize(
    "make",
    [
        lambda p: cr.optim.LBFGS(
            p, line_search_fn="strong_wolfe", max_iter=200, tolerance_grad=1e-9, tolerance_change=1e-15
        ),
        lambda p: cr.optim.LBFGS(
            p, lr=0.5, max_iter=500, max_eval=600, tolerance_grad=1e-9, tolerance_change=1e-15
        ),
        lambda p: cr.optim.ConjugateGradient(
            p, max_iter=200, max_eval=500, tolerance_grad=1e-9, tolerance_change=1e-15
        ),
        lambda p: cr.optim.ConjugateGradient(
            p, beta="FR", max_iter=200, max_eval=500, tolerance_grad=1e-9, tolerance_change=1e-15
        ),
        lambda p: cr.optim.ConjugateGradient(
            p, beta="PR", restart=2, max_iter=200, max_eval=500, tolerance_grad=1e-9, tolerance_change=1e-15
        ),
        lambda p: cr.optim.Newton(p, method="cg"),
    ],
    ids=["lbfgs-wolfe", "lbfgs-fixed", "cg-pr+", "cg-fr", "cg-pr-restart2", "newton-cg"],
)
def test_full_batch_methods_agree_with_sklearn_on_logistic_regression(make, sklearn_optimum):
    params, loss_fn = cr_logistic(*logistic_data())
    opt = make(params)
    for _ in range(15):
        opt.step(closure_for(opt, loss_fn))
        if grad_norm(params, loss_fn) < 1e-6:
            break
    assert grad_norm(params, loss_fn) < 1e-6
    np.testing.assert_allclose(_solution(params), sklearn_optimum, atol=1e-4)


# ---- conjugate gradient ------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", ["PR+", "PR", "FR"])
def test_cg_solves_a_quadratic_in_n_iterations(beta):
    # On f = 1/2 x'Ax - b'x with exact line searches, CG ends in n steps; the cubic interpolation
    # of the line search is exact on a quadratic.
    rng = np.random.default_rng(1)
    n = 6
    q = rng.standard_normal((n, n))
    a = q @ q.T + n * np.eye(n)
    b = rng.standard_normal(n)
    x = cr.nn.Parameter(cr.zeros(n, dtype=cr.float64))
    at, bt = cr.tensor(a), cr.tensor(b)
    opt = cr.optim.ConjugateGradient(
        [x], beta=beta, max_iter=n, max_eval=10 * n, restart=n + 1, powell_restart=False, tolerance_grad=1e-13
    )
    opt.step(closure_for(opt, lambda: 0.5 * (x @ (at @ x)) - bt @ x))
    np.testing.assert_allclose(x.detach().numpy(), np.linalg.solve(a, b), rtol=1e-7, atol=1e-9)
    assert opt.state[x]["n_iter"] <= n


def test_cg_with_the_defaults_converges_on_a_convex_problem_step_after_step():
    """Logistic regression (3 parameters, 200 points, L2 penalty) in float64: repeated step() calls
    with the defaults reach a gradient norm below 1e-8, as Newton does, and until then every step
    makes progress (a stopping rule that ends each later step at once stalled it at ~3e-5)."""
    params, loss_fn = cr_logistic(*logistic_data(200, seed=3))
    opt = cr.optim.ConjugateGradient(params)
    closure = closure_for(opt, loss_fn)
    losses, norms = [loss_fn().item()], [grad_norm(params, loss_fn)]
    for _ in range(30):
        opt.step(closure)
        losses.append(loss_fn().item())
        norms.append(grad_norm(params, loss_fn))
        if norms[-1] < 1e-8:
            break
    assert norms[-1] < 1e-8, norms
    assert all(b < a for a, b in zip(norms[:-1], norms[1:])), norms
    assert all(b <= a for a, b in zip(losses[:-1], losses[1:])), losses


def test_cg_minimises_rosenbrock_and_restarts():
    x = cr.nn.Parameter(cr.tensor([-1.2, 1.0], dtype=cr.float64))
    opt = cr.optim.ConjugateGradient(
        [x], max_iter=500, max_eval=2000, tolerance_grad=1e-8, tolerance_change=1e-16
    )
    opt.step(closure_for(opt, lambda: rosenbrock(x)))
    np.testing.assert_allclose(x.detach().numpy(), [1.0, 1.0], atol=1e-5)
    assert opt.state[x]["restarts"] > 0


def test_bad_options_of_full_batch_methods_are_refused():
    p = [cr.nn.Parameter(cr.zeros(2, dtype=cr.float64))]
    with pytest.raises(ValueError, match="Invalid learning rate"):
        cr.optim.LBFGS(p, lr=-1)
    with pytest.raises(ValueError, match="line_search_fn must be None or 'strong_wolfe', got 'armijo'"):
        cr.optim.LBFGS(p, line_search_fn="armijo")
    with pytest.raises(ValueError, match="per-parameter options"):
        cr.optim.LBFGS([{"params": p}, {"params": [cr.nn.Parameter(cr.zeros(1))]}])
    with pytest.raises(ValueError, match="beta must be one of 'PR\\+', 'PR', 'FR', got 'HS'"):
        cr.optim.ConjugateGradient(p, beta="HS")
    with pytest.raises(ValueError, match="0 < c1 < c2 < 1"):
        cr.optim.ConjugateGradient(p, c1=0.5, c2=0.1)
    with pytest.raises(ValueError, match="method must be one of"):
        cr.optim.Newton(p, method="bfgs")
    with pytest.raises(ValueError, match="damping must be >= 0"):
        cr.optim.Newton(p, damping=-1)
    with pytest.raises(RuntimeError, match="needs a closure"):
        cr.optim.LBFGS(p).step(None)


def test_cubic_minimizer_finds_the_minimum_of_a_cubic():
    f = lambda t: (t - 1.0) ** 3 - 3 * (t - 1.0)  # noqa: E731  minimum at t = 2
    df = lambda t: 3 * (t - 1.0) ** 2 - 3  # noqa: E731
    assert cubic_minimizer(0.5, f(0.5), df(0.5), 3.0, f(3.0), df(3.0)) == pytest.approx(2.0)
    assert cubic_minimizer(3.0, f(3.0), df(3.0), 0.5, f(0.5), df(0.5)) == pytest.approx(2.0)
    assert cubic_minimizer(0.5, f(0.5), df(0.5), 3.0, f(3.0), df(3.0), bounds=(0.0, 1.5)) == 1.5
    # degenerate inputs give the middle of the bounds instead of a division by zero or NaN
    assert cubic_minimizer(1.0, 2.0, -1.0, 1.0, 2.0, -1.0, bounds=(0.5, 1.5)) == 1.0
    assert cubic_minimizer(0.0, 0.0, 2.0, 1.0, 4.0 / 3.0, 2.0) == 0.5  # monotone cubic: no minimiser


def test_strong_wolfe_returns_a_step_satisfying_both_conditions():
    # phi(t) = f(x + t d) for f = sum(x^4) + x^2, from x = 2 along -grad
    x = np.array([2.0, -1.0])
    f = lambda v: float((v**4).sum() + (v**2).sum())  # noqa: E731
    grad = lambda v: 4 * v**3 + 2 * v  # noqa: E731
    g = grad(x)
    d = -g
    f_new, g_new, t, evals = strong_wolfe(
        lambda t: (f(x + t * d), grad(x + t * d)), d, 1.0, f(x), g, float(g @ d)
    )
    assert f_new <= f(x) + 1e-4 * t * float(g @ d)
    assert abs(float(g_new @ d)) <= 0.9 * abs(float(g @ d))
    assert f_new == pytest.approx(f(x + t * d)) and evals >= 2


# ---- Newton's method ---------------------------------------------------------------------------------


def _small_mlp():
    rng = np.random.default_rng(3)
    x, y = cr.tensor(rng.standard_normal((6, 2))), cr.tensor(rng.standard_normal((6, 1)))
    params = [
        cr.nn.Parameter(cr.tensor(rng.standard_normal((2, 3)))),
        cr.nn.Parameter(cr.tensor(0.1 * rng.standard_normal(3))),
        cr.nn.Parameter(cr.tensor(rng.standard_normal((3, 1)))),
    ]

    def loss_fn():
        w1, b1, w2 = params
        return ((cr.tanh(x @ w1 + b1) @ w2 - y) ** 2).mean()

    return params, loss_fn


def test_newton_hessian_equals_finite_difference_hessian():
    params, loss_fn = _small_mlp()
    h = cr.optim.hessian(loss_fn, params)
    n = h.shape[0]
    assert n == 2 * 3 + 3 + 3
    flat = np.concatenate([p.detach().numpy().ravel() for p in params])

    def grad_at(v):
        offset = 0
        for p in params:
            p._data[...] = v[offset : offset + p._data.size].reshape(p.shape)
            offset += p._data.size
        return np.concatenate([g.detach().numpy().ravel() for g in cr.grad(loss_fn(), params)])

    eps = 1e-6
    fd = np.empty((n, n))
    for j in range(n):
        e = np.zeros(n)
        e[j] = eps
        fd[:, j] = (grad_at(flat + e) - grad_at(flat - e)) / (2 * eps)
    grad_at(flat)
    np.testing.assert_allclose(h, fd, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(h, h.T)
    assert np.linalg.eigvalsh(h)[0] < 0  # a non-convex point: the damping has work to do


def test_newton_cg_and_exact_newton_agree():
    # Where H + damping I is positive definite both solve the same system, one by Cholesky, one by
    # linear CG on Hessian-vector products.
    params, loss_fn = _small_mlp()
    damping = 0.1 - min(0.0, np.linalg.eigvalsh(cr.optim.hessian(loss_fn, params))[0])
    steps = {}
    for method in ("exact", "cg"):
        params, loss_fn = _small_mlp()
        opt = cr.optim.Newton(params, method=method, cg_tol=1e-12, cg_max_iter=100, damping=damping)
        x0 = np.concatenate([p.detach().numpy().ravel() for p in params])
        opt.step(closure_for(opt, loss_fn))
        steps[method] = np.concatenate([p.detach().numpy().ravel() for p in params]) - x0
        assert opt.method == method
    assert np.abs(steps["exact"]).max() > 1e-3
    np.testing.assert_allclose(steps["cg"], steps["exact"], rtol=1e-6, atol=1e-9)
    # and the whole trajectories on the convex problem
    finals = {}
    for method in ("exact", "cg"):
        params, loss_fn = cr_logistic(*logistic_data())
        opt = cr.optim.Newton(params, method=method, cg_tol=1e-12)
        for _ in range(6):
            opt.step(closure_for(opt, loss_fn))
        finals[method] = _solution(params)
    np.testing.assert_allclose(finals["cg"], finals["exact"], rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("method", ["exact", "cg"])
def test_newton_never_increases_a_non_convex_loss(method):
    params, loss_fn = _small_mlp()
    opt = cr.optim.Newton(params, method=method, damping=0.0)
    losses = [loss_fn().item()]
    for _ in range(40):
        opt.step(lambda: loss_fn())  # a closure that only returns the loss
        losses.append(loss_fn().item())
    assert all(b <= a + 1e-15 for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 1e-12  # 6 points, 12 weights: it interpolates
    assert grad_norm(params, loss_fn) < 1e-6
    assert opt.state[params[0]]["rejected"] > 0  # the damping did reject steps on the way


def test_newton_minimises_rosenbrock_with_the_damping():
    x = cr.nn.Parameter(cr.tensor([-1.2, 1.0], dtype=cr.float64))
    opt = cr.optim.Newton([x])
    for _ in range(60):
        opt.step(lambda: rosenbrock(x))
    np.testing.assert_allclose(x.detach().numpy(), [1.0, 1.0], atol=1e-8)


def test_newton_chooses_cg_for_many_parameters_and_refuses_a_hessian_too_big():
    small = cr.optim.Newton([cr.nn.Parameter(cr.zeros(10, dtype=cr.float64))])
    assert small.method == "exact"
    big = [cr.nn.Parameter(cr.zeros(1000, dtype=cr.float64))]
    assert cr.optim.Newton(big).method == "cg"
    assert cr.optim.Newton(big, exact_max_params=2000).method == "exact"
    with pytest.raises(MemoryError, match=r"exact Hessian of 1,000 parameters needs 15\.3 MiB.*method='cg'"):
        cr.optim.Newton(big, method="exact", max_hessian_bytes=2**20)
    huge = [cr.nn.Parameter(cr.zeros(300_000, dtype=cr.float32))]
    with pytest.raises(MemoryError, match="300,000 parameters"):
        cr.optim.Newton(huge, method="exact")


def test_newton_needs_a_loss_with_a_graph():
    w = cr.nn.Parameter(cr.zeros(2, dtype=cr.float64))
    opt = cr.optim.Newton([w])
    with pytest.raises(TypeError, match="must return the loss as a one-element Tensor"):
        opt.step(lambda: 1.0)
    with pytest.raises(RuntimeError, match="has no graph"):
        opt.step(lambda: (w * w).sum().detach())


def test_newton_on_a_loss_linear_in_some_parameters():
    # the bias enters linearly: its gradient has no graph, its Hessian row is zero
    w = cr.nn.Parameter(cr.tensor([1.0, -2.0], dtype=cr.float64))
    b = cr.nn.Parameter(cr.tensor([0.5], dtype=cr.float64))
    h = cr.optim.hessian(lambda: (w**4).sum() + 3.0 * b.sum(), [w, b])
    np.testing.assert_allclose(h, np.diag([12.0, 48.0, 0.0]))


def test_newton_in_float32_stays_quiet_at_the_rounding_floor(sklearn_optimum):
    # float32 never reaches tolerance_grad: steps at rounding level are taken without fuss
    x, y = logistic_data()
    w, b = cr.nn.Parameter(cr.zeros(2)), cr.nn.Parameter(cr.zeros(1))
    xt, yt = cr.tensor(x.astype(np.float32)), cr.tensor(y.astype(np.float32))
    alpha = 1.0 / len(y)
    opt = cr.optim.Newton([w, b])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(15):
            opt.step(lambda: cr.log(1 + cr.exp(-(yt * (xt @ w + b)))).mean() + 0.5 * alpha * (w * w).sum())
    assert w.dtype == np.float32 and b.dtype == np.float32
    np.testing.assert_allclose(_solution([w, b]), sklearn_optimum, atol=1e-5)


@pytest.mark.parametrize("beta", ["PR+", "FR"])
def test_cg_one_iteration_per_step_keeps_its_memory(beta):
    # max_iter=1: each step is one CG iteration; direction and step length carry over between calls
    params, loss_fn = cr_logistic(*logistic_data())
    opt = cr.optim.ConjugateGradient(
        params, beta=beta, max_iter=1, tolerance_grad=1e-12, tolerance_change=0.0
    )
    for _ in range(40):
        opt.step(closure_for(opt, loss_fn))
    assert grad_norm(params, loss_fn) < 1e-8
    assert opt.state[params[0]]["n_iter"] <= 40
