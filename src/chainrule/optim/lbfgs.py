"""L-BFGS: a quasi-Newton method for full-batch problems, with PyTorch's closure API and semantics."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from ._flat import FlatParams, call_closure
from .line_search import strong_wolfe
from .optimizer import Optimizer


def two_loop_direction(
    grad: np.ndarray, steps: list, grad_changes: list, rho: list, h_diag: float
) -> np.ndarray:
    r"""d = -H g, with H the L-BFGS inverse-Hessian approximation built from the stored pairs
    :math:`s_i = x_{i+1} - x_i`, :math:`y_i = g_{i+1} - g_i`, :math:`\rho_i = 1 / y_i^\top s_i`
    and the initial scaling :math:`H_0 = \gamma I`, :math:`\gamma = s^\top y / y^\top y` (the newest pair).
    Nocedal & Wright's two-loop recursion: O(m n) work, no matrix ever formed."""
    q = -grad
    alpha = [0.0] * len(steps)
    for i in range(len(steps) - 1, -1, -1):
        alpha[i] = float(steps[i] @ q) * rho[i]
        q -= alpha[i] * grad_changes[i]
    r = q * h_diag
    for i in range(len(steps)):
        beta = float(grad_changes[i] @ r) * rho[i]
        r += (alpha[i] - beta) * steps[i]
    return r


class LBFGS(Optimizer):
    r"""Limited-memory BFGS (Nocedal 1980; the variant of minFunc and ``torch.optim.LBFGS``).

    Each call ``step(closure)`` runs up to ``max_iter`` iterations, evaluating ``closure`` (which must
    zero the gradients, compute the loss, call ``backward`` and return the loss) at most ``max_eval``
    times. An iteration moves along :math:`d = -H_k g_k` (two-loop recursion over the last
    ``history_size`` pairs :math:`(s_i, y_i)`, a pair kept only when :math:`y^\top s > 10^{-10}`):

    .. math::
        x_{k+1} = x_k + t_k d_k, \qquad t_0 = \eta \min(1, 1/\lVert g_0\rVert_1), \quad t_k = \eta

    with the learning rate :math:`\eta` taken as is (``line_search_fn=None``) or as the first trial of
    a strong-Wolfe line search (``'strong_wolfe'``). It stops when :math:`\max|g| \le`
    ``tolerance_grad``, when the step or the change in loss falls below ``tolerance_change``, or when
    the slope :math:`g^\top d > -`\ ``tolerance_change``. The memory (d, t, the pairs, the previous
    gradient and loss) carries over from one ``step`` to the next, as in PyTorch, and is part of
    ``state_dict``. Only one parameter group is supported. Returns the loss of the first evaluation.

    >>> w = cr.nn.Parameter(cr.tensor([3.0, -1.0], dtype=cr.float64))
    >>> opt = cr.optim.LBFGS([w], line_search_fn="strong_wolfe")
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = ((w - 1.0) ** 2).sum()
    ...     loss.backward()
    ...     return loss
    >>> _ = opt.step(closure)
    >>> w.detach().numpy().round(6).tolist()
    [1.0, 1.0]
    """

    def __init__(
        self,
        params,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ):
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"LBFGS: max_iter must be a positive integer, got {max_iter!r}")
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        if not isinstance(history_size, int) or history_size < 1:
            raise ValueError(f"LBFGS: history_size must be a positive integer, got {history_size!r}")
        if line_search_fn not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}")
        defaults = dict(
            lr=lr,
            max_iter=max_iter,
            max_eval=max_eval,
            tolerance_grad=tolerance_grad,
            tolerance_change=tolerance_change,
            history_size=history_size,
            line_search_fn=line_search_fn,
        )
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._flat = FlatParams(self.param_groups[0]["params"])

    def step(self, closure: Callable):
        """Run up to ``max_iter`` iterations; ``closure`` re-evaluates the loss and its gradient."""
        if closure is None:
            raise RuntimeError("LBFGS.step needs a closure that re-evaluates the loss and calls backward()")
        group = self.param_groups[0]
        lr, max_iter, max_eval = group["lr"], group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size, line_search_fn = group["history_size"], group["line_search_fn"]
        flat = self._flat
        state = self.state.setdefault(flat.params[0], {})
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        orig_loss = call_closure(closure)
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        grad = flat.grad()
        if np.abs(grad).max() <= tolerance_grad:
            return orig_loss

        d, t = state.get("d"), state.get("t")
        steps, grad_changes, rho = state.get("old_stps"), state.get("old_dirs"), state.get("ro")
        h_diag, prev_grad, prev_loss = (
            state.get("H_diag"),
            state.get("prev_flat_grad"),
            state.get("prev_loss"),
        )

        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -grad
                steps, grad_changes, rho = [], [], []
                h_diag = 1.0
            else:
                y = grad - prev_grad
                s = d * t
                ys = float(y @ s)
                if ys > 1e-10:  # keep the pair only where the curvature condition holds
                    if len(steps) == history_size:
                        steps.pop(0)
                        grad_changes.pop(0)
                        rho.pop(0)
                    steps.append(s)
                    grad_changes.append(y)
                    rho.append(1.0 / ys)
                    h_diag = ys / float(y @ y)
                d = two_loop_direction(grad, steps, grad_changes, rho, h_diag)
            prev_grad = grad.copy()
            prev_loss = loss

            t = min(1.0, 1.0 / float(np.abs(grad).sum())) * lr if state["n_iter"] == 1 else lr
            gtd = float(grad @ d)
            if gtd > -tolerance_change:  # not a descent direction any more
                break

            evals = 0
            if line_search_fn == "strong_wolfe":
                x_init = flat.get()
                loss, grad, t, evals = strong_wolfe(
                    partial(self._flat.evaluate_at, closure, x_init, d=d),
                    d,
                    t,
                    loss,
                    grad,
                    gtd,
                    max_ls=max_eval - current_evals,
                )
                flat.add(t, d)
                optimal = np.abs(grad).max() <= tolerance_grad
            else:
                flat.add(t, d)
                optimal = False
                if n_iter != max_iter:
                    loss = float(call_closure(closure))
                    grad = flat.grad()
                    optimal = np.abs(grad).max() <= tolerance_grad
                    evals = 1
            current_evals += evals
            state["func_evals"] += evals

            if n_iter == max_iter or current_evals >= max_eval or optimal:
                break
            if np.abs(d * t).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        state.update(
            d=d,
            t=t,
            old_dirs=grad_changes,
            old_stps=steps,
            ro=rho,
            H_diag=h_diag,
            prev_flat_grad=prev_grad,
            prev_loss=prev_loss,
        )
        return orig_loss
