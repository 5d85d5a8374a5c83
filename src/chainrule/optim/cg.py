"""Nonlinear conjugate gradient (Fletcher-Reeves, Polak-Ribiere, Polak-Ribiere+) with restarts."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from ._flat import FlatParams, call_closure
from .line_search import strong_wolfe
from .optimizer import Optimizer

_BETAS = ("PR+", "PR", "FR")


def cg_beta(rule: str, grad: np.ndarray, prev_grad: np.ndarray) -> float:
    r"""The coefficient that mixes the previous direction into the new one, :math:`d = -g + \beta d_{prev}`:

    Fletcher-Reeves :math:`\beta = g^\top g / g_{prev}^\top g_{prev}`; Polak-Ribiere
    :math:`\beta = g^\top (g - g_{prev}) / g_{prev}^\top g_{prev}`; PR+ is :math:`\max(0, \beta_{PR})`,
    which restarts by itself when successive gradients stop being nearly orthogonal."""
    denominator = float(prev_grad @ prev_grad)
    if denominator == 0.0:
        return 0.0
    if rule == "FR":
        return float(grad @ grad) / denominator
    beta = float(grad @ (grad - prev_grad)) / denominator
    return max(beta, 0.0) if rule == "PR+" else beta


class ConjugateGradient(Optimizer):
    r"""Nonlinear conjugate gradient for full-batch problems, with the closure API of :class:`LBFGS`.

    Each ``step(closure)`` runs up to ``max_iter`` iterations (at most ``max_eval`` closure calls):

    .. math::
        d_0 = -g_0, \qquad d_k = -g_k + \beta_k d_{k-1}, \qquad x_{k+1} = x_k + t_k d_k

    with :math:`\beta_k` from ``beta`` ('PR+' default, 'PR' or 'FR', see :func:`cg_beta`) and
    :math:`t_k` from the strong-Wolfe line search shared with L-BFGS (``c2=0.1`` by default, the
    value the theory asks of CG: it keeps every :math:`d_k` a descent direction for FR). The first
    trial step is :math:`\eta \min(1, 1/\lVert g_0\rVert_1)` at the start and
    :math:`t_{k-1}\, g_{k-1}^\top d_{k-1} / g_k^\top d_k` afterwards (Nocedal & Wright, eq. 3.60).

    Restarts (:math:`d_k = -g_k`): every ``restart`` iterations (default: the number of parameters,
    after which the directions of a quadratic are exhausted); when successive gradients are far from
    orthogonal, :math:`|g_k^\top g_{k-1}| \ge 0.2\, g_k^\top g_k` (Powell; ``powell_restart``); and
    whenever :math:`d_k` is not a descent direction. Stopping rules: ``tolerance_grad`` on
    :math:`\max|g|`, ``tolerance_change`` on step and loss change. Unlike L-BFGS there is no test of
    ``tolerance_change`` on :math:`g^\top d`: CG's direction is not scaled by any curvature, so
    :math:`g^\top d \approx -\lVert g\rVert^2` falls below 1e-9 when :math:`\lVert g\rVert` is
    still 3e-5, and every later ``step()`` would end at once, far from the optimum. With
    ``line_search_fn=None`` the step is the fixed ``lr``. ``max_eval`` defaults to
    ``max(max_iter * 5 // 4, max_iter + 25)``, so even ``max_iter=1`` leaves room for a full line
    search. When a line search finds no decrease at all, the next one starts from a ten times smaller
    trial step along the steepest-descent direction.
    """

    def __init__(
        self,
        params,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        beta: str = "PR+",
        restart: int | None = None,
        powell_restart: bool = True,
        line_search_fn: str | None = "strong_wolfe",
        c1: float = 1e-4,
        c2: float = 0.1,
    ):
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"ConjugateGradient: max_iter must be a positive integer, got {max_iter!r}")
        if beta not in _BETAS:
            raise ValueError(
                f"ConjugateGradient: beta must be one of {', '.join(map(repr, _BETAS))}, got {beta!r}"
            )
        if restart is not None and (not isinstance(restart, int) or restart < 1):
            raise ValueError(
                f"ConjugateGradient: restart must be a positive integer or None, got {restart!r}"
            )
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(
                f"ConjugateGradient: line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}"
            )
        if not 0.0 < c1 < c2 < 1.0:
            raise ValueError(
                f"ConjugateGradient: the Wolfe constants need 0 < c1 < c2 < 1, got c1={c1}, c2={c2}"
            )
        if max_eval is None:
            max_eval = max(max_iter * 5 // 4, max_iter + 25)  # room for a full line search (25 trials)
        defaults = dict(
            lr=lr,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            beta=beta,
            restart=restart,
            powell_restart=powell_restart,
            line_search_fn=line_search_fn,
            c1=c1,
            c2=c2,
        )
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("ConjugateGradient doesn't support per-parameter options (parameter groups)")
        self._flat = FlatParams(self.param_groups[0]["params"])

    def _direction(self, group: dict, state: dict, grad: np.ndarray) -> np.ndarray:
        d, prev_grad = state.get("d"), state.get("prev_flat_grad")
        restart_every = group["restart"] or self._flat.numel
        if d is None or prev_grad is None or state["since_restart"] >= restart_every:
            state["since_restart"] = 0
            return -grad
        if group["powell_restart"] and abs(float(grad @ prev_grad)) >= 0.2 * float(grad @ grad):
            state["since_restart"] = 0
            state["restarts"] += 1
            return -grad
        d = -grad + cg_beta(group["beta"], grad, prev_grad) * d
        if float(grad @ d) >= 0:  # not a descent direction: fall back to steepest descent
            state["since_restart"] = 0
            state["restarts"] += 1
            return -grad
        return d

    def step(self, closure: Callable):
        """Run up to ``max_iter`` iterations; ``closure`` re-evaluates the loss and its gradient."""
        if closure is None:
            raise RuntimeError(
                "ConjugateGradient.step needs a closure that re-evaluates the loss and calls backward()"
            )
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        flat = self._flat
        state = self.state.setdefault(flat.params[0], {})
        for key in ("func_evals", "n_iter", "since_restart", "restarts"):
            state.setdefault(key, 0)

        orig_loss = call_closure(closure)
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        grad = flat.grad()
        if np.abs(grad).max() <= tolerance_grad:
            return orig_loss

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            d = self._direction(group, state, grad)
            state["since_restart"] += 1
            gtd = float(grad @ d)
            if state.get("t") is None:
                t = min(1.0, 1.0 / float(np.abs(grad).sum())) * lr
            elif state.get("prev_gtd") is None:  # after a failed line search
                t = state["t"]
            elif group["line_search_fn"] is None:
                t = lr
            else:
                t = state["t"] * state["prev_gtd"] / gtd
                if not np.isfinite(t) or t <= 0:
                    t = lr
            state.update(d=d, prev_flat_grad=grad.copy(), prev_gtd=gtd)
            prev_loss = loss
            if gtd >= 0.0:  # a zero gradient (descent directions have gtd < 0)
                state["t"] = t
                break

            evals = 0
            if group["line_search_fn"] == "strong_wolfe":
                x_init, t_trial = flat.get(), t
                loss, grad, t, evals = strong_wolfe(
                    partial(self._flat.evaluate_at, closure, x_init, d=d),
                    d,
                    t,
                    loss,
                    grad,
                    gtd,
                    c1=group["c1"],
                    c2=group["c2"],
                    tolerance_change=tolerance_change,
                    max_ls=max(max_eval - current_evals, 1),
                )
                flat.add(t, d)
                optimal = np.abs(grad).max() <= tolerance_grad
                if t == 0.0:  # no decrease found: restart from steepest descent with a shorter trial
                    state["t"], state["prev_gtd"], state["d"] = 0.1 * t_trial, None, None
                    state["since_restart"] = 0
                    state["func_evals"] += evals
                    break
            else:
                flat.add(t, d)
                loss = float(call_closure(closure))
                grad = flat.grad()
                optimal = np.abs(grad).max() <= tolerance_grad
                evals = 1
            state["t"] = t
            current_evals += evals
            state["func_evals"] += evals

            if n_iter == max_iter or current_evals >= max_eval or optimal:
                break
            if np.abs(d * t).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break
        return orig_loss
