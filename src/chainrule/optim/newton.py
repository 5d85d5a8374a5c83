"""Newton's method with the exact Hessian (double backward), damped in the Levenberg-Marquardt way."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable

import numpy as np

from .. import autograd
from ..tensor import Tensor
from ._flat import FlatParams, call_closure
from .optimizer import Optimizer

_METHODS = ("auto", "exact", "cg")


def _loss_tensor(value, who: str) -> Tensor:
    if not isinstance(value, Tensor) or value._data.size != 1:
        raise TypeError(
            f"{who}: the closure must return the loss as a one-element Tensor, got {type(value).__name__}"
        )
    if not value.requires_grad:
        raise RuntimeError(
            f"{who}: the loss returned by the closure has no graph; compute it from the parameters with grad "
            "enabled (not under cr.no_grad())"
        )
    return value


class _Curvature:
    """Gradient (with its graph) of a loss and Hessian-vector products through it.

    g = dL/dx is computed once with ``create_graph=True``; then H v = d(g . v)/dx is one more backward
    pass through g's graph (Pearlmutter's trick): the Hessian is never formed unless asked for.
    """

    def __init__(self, loss: Tensor, flat: FlatParams):
        self.flat = flat
        params = flat.params
        # The closure may have called loss.backward() (as closures for L-BFGS do): the values that
        # graph saved are still there, so walking it again here is sound.
        grads = autograd.grad(loss, params, create_graph=True, allow_unused=True, _released_ok=True)
        self.grad = flat.flatten(grads)
        # entries of g that are constant in x (loss linear in that parameter) contribute nothing to H v
        self._outputs = [(i, g) for i, g in enumerate(grads) if g is not None and g.requires_grad]
        self.hvp_count = 0

    def hvp(self, v: np.ndarray) -> np.ndarray:
        """H v for a flat vector v."""
        self.hvp_count += 1
        if not self._outputs:
            return np.zeros_like(v)
        v_parts = self.flat.unflatten(v)
        outputs = [g for _, g in self._outputs]
        seeds = [v_parts[i] for i, _ in self._outputs]
        hv = autograd.grad(outputs, self.flat.params, grad_outputs=seeds, allow_unused=True,
                           retain_graph=True, _released_ok=True)  # one graph of g serves every H v
        return self.flat.flatten(hv)

    def hessian(self) -> np.ndarray:
        """The n x n Hessian, column by column (n Hessian-vector products), symmetrised."""
        n = self.flat.numel
        h = np.empty((n, n), dtype=self.flat.dtype)
        e = np.zeros(n, dtype=self.flat.dtype)
        for j in range(n):
            e[j] = 1.0
            h[:, j] = self.hvp(e)
            e[j] = 0.0
        h += h.T
        h *= 0.5
        return h


def hessian(closure: Callable[[], Tensor], params) -> np.ndarray:
    r"""The exact Hessian :math:`\partial^2 L / \partial x_i \partial x_j` of the loss returned by
    ``closure`` with respect to ``params`` (flattened and concatenated in order), by double backward.

    >>> x = cr.nn.Parameter(cr.tensor([1.0, 2.0], dtype=cr.float64))
    >>> hessian(lambda: (x[0] ** 2 * x[1]), [x]).tolist()
    [[4.0, 2.0], [2.0, 0.0]]
    """
    params = [params] if isinstance(params, Tensor) else list(params)
    loss = _loss_tensor(call_closure(closure), "hessian")
    return _Curvature(loss, FlatParams(params)).hessian()


def _memory_limit() -> int:
    """Half the machine's physical memory (4 GiB when it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def _format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class Newton(Optimizer):
    r"""Newton's method on the exact Hessian, with Levenberg-Marquardt damping.

    Each ``step(closure)`` is one Newton iteration. The closure returns the loss (it may also call
    ``backward``: Newton does not read ``.grad``, it takes the gradient g and Hessian-vector products
    H v itself, by ``cr.grad(..., create_graph=True)``). It solves the damped Newton system

    .. math::
        (H + \lambda I)\, p = -g, \qquad x \leftarrow x + \eta\, p

    and accepts the step when the loss decreases. The damping :math:`\lambda` (initially ``damping``)
    adapts as in Levenberg-Marquardt (Nielsen's rule) to the ratio of actual to predicted decrease
    :math:`\rho = (L(x) - L(x + \eta p)) / -(\eta g^\top p + \tfrac12 \eta^2 p^\top H p)`: a good
    step (:math:`\rho > 0`) is accepted and :math:`\lambda \leftarrow \lambda \max(\tfrac13,
    1 - (2\rho - 1)^3)`, so near a minimum the iteration becomes plain Newton and converges
    quadratically; a bad step is rejected and retried with :math:`\lambda` multiplied by 2, 4, 8, ...
    Far from a minimum or where H is indefinite (non-convex losses), a large :math:`\lambda` turns the
    step into a short gradient-descent step, so the loss never goes up.

    ``method``: 'exact' forms H (n Hessian-vector products) and solves by Cholesky factorisation
    (raising :math:`\lambda` until :math:`H + \lambda I` is positive definite); 'cg' never forms H and
    solves the system by linear conjugate gradient on Hessian-vector products (Newton-CG), stopping at
    relative residual ``cg_tol`` (default :math:`\min(0.5, \sqrt{\lVert g\rVert})`, which keeps
    superlinear convergence) or ``cg_max_iter`` products, and at negative curvature; 'auto' (default)
    is 'exact' for at most ``exact_max_params`` parameters and 'cg' above. An exact Hessian larger
    than ``max_hessian_bytes`` (default: half the physical memory) is refused with a ``MemoryError``.

    Nothing is done when :math:`\max|g| \le` ``tolerance_grad``. Returns the loss before the step.
    ``state`` keeps ``damping``, ``n_iter``, ``func_evals``, ``hvp_evals`` and ``rejected`` steps.
    """

    def __init__(
        self,
        params,
        lr: float = 1.0,
        damping: float = 1e-3,
        method: str = "auto",
        exact_max_params: int = 500,
        cg_tol: float | None = None,
        cg_max_iter: int | None = None,
        tolerance_grad: float = 1e-12,
        max_tries: int = 30,
        max_hessian_bytes: int | None = None,
    ):
        if not lr > 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not damping >= 0.0:
            raise ValueError(f"Newton: damping must be >= 0, got {damping}")
        if method not in _METHODS:
            raise ValueError(
                f"Newton: method must be one of {', '.join(map(repr, _METHODS))}, got {method!r}"
            )
        if cg_tol is not None and not cg_tol > 0:
            raise ValueError(f"Newton: cg_tol must be positive, got {cg_tol}")
        if cg_max_iter is not None and (not isinstance(cg_max_iter, int) or cg_max_iter < 1):
            raise ValueError(f"Newton: cg_max_iter must be a positive integer, got {cg_max_iter!r}")
        if not isinstance(max_tries, int) or max_tries < 1:
            raise ValueError(f"Newton: max_tries must be a positive integer, got {max_tries!r}")
        defaults = dict(
            lr=lr,
            damping=damping,
            method=method,
            exact_max_params=exact_max_params,
            cg_tol=cg_tol,
            cg_max_iter=cg_max_iter,
            tolerance_grad=tolerance_grad,
            max_tries=max_tries,
        )
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("Newton doesn't support per-parameter options (parameter groups)")
        self._flat = FlatParams(self.param_groups[0]["params"])
        self.max_hessian_bytes = _memory_limit() if max_hessian_bytes is None else int(max_hessian_bytes)
        if self.method == "exact":
            self._check_hessian_fits()

    @property
    def method(self) -> str:
        """The method used: 'exact' or 'cg' ('auto' resolved by the parameter count)."""
        group = self.param_groups[0]
        if group["method"] != "auto":
            return group["method"]
        return "exact" if self._flat.numel <= group["exact_max_params"] else "cg"

    def _check_hessian_fits(self) -> None:
        n = self._flat.numel
        needed = 2 * n * n * np.dtype(self._flat.dtype).itemsize  # H and its Cholesky factor
        if needed > self.max_hessian_bytes:
            raise MemoryError(
                f"Newton: the exact Hessian of {n:,} parameters needs {_format_bytes(needed)} "
                f"(H and its factor, {np.dtype(self._flat.dtype).name}), more than the "
                f"{_format_bytes(self.max_hessian_bytes)} allowed (max_hessian_bytes); use method='cg' "
                "(Newton-CG on Hessian-vector products) or method='auto'"
            )

    # ---- the damped Newton system -----------------------------------------------------------------
    def _solve_exact(self, h: np.ndarray, g: np.ndarray, damping: float, floor: float):
        """p solving (H + damping I) p = -g, raising damping until H + damping I is positive definite."""
        eye = np.eye(len(g), dtype=h.dtype)
        while True:
            try:
                factor = np.linalg.cholesky(h + damping * eye)
            except np.linalg.LinAlgError:
                smallest = float(np.linalg.eigvalsh(h)[0])
                damping = max(2.0 * damping, -smallest * 1.5 + floor, floor)
                continue
            z = np.linalg.solve(factor, -g)
            return np.linalg.solve(factor.T, z), damping

    def _solve_cg(self, curvature: _Curvature, g: np.ndarray, damping: float, tol: float, max_iter: int):
        """Linear conjugate gradient for (H + damping I) p = -g from p = 0 (Newton-CG). Stops at relative
        residual ``tol``, after ``max_iter`` products, or at a direction of non-positive curvature
        (then returns the iterate so far, or -g if there is none). Returns (p, negative_curvature)."""
        p = np.zeros_like(g)
        r = -g.copy()  # residual of the system at p
        d = r.copy()
        rr = float(r @ r)
        stop = tol * math.sqrt(rr)
        for i in range(max_iter):
            ad = curvature.hvp(d) + damping * d
            curv = float(d @ ad)
            if curv <= 0:
                return (-g.copy() if i == 0 else p), True
            alpha = rr / curv
            p += alpha * d
            r -= alpha * ad
            rr_new = float(r @ r)
            if math.sqrt(rr_new) <= stop:
                break
            d = r + (rr_new / rr) * d
            rr = rr_new
        return p, False

    def step(self, closure: Callable):
        """One damped Newton iteration; ``closure`` returns the loss (a Tensor with its graph)."""
        if closure is None:
            raise RuntimeError("Newton.step needs a closure that returns the loss")
        group = self.param_groups[0]
        lr, tries = group["lr"], group["max_tries"]
        flat = self._flat
        state = self.state.setdefault(flat.params[0], {})
        for key in ("n_iter", "func_evals", "hvp_evals", "rejected"):
            state.setdefault(key, 0)
        state.setdefault("damping", float(group["damping"]))
        state.setdefault("damping_growth", 2.0)
        floor = max(float(group["damping"]), 1e-8)

        loss = _loss_tensor(call_closure(closure), "Newton.step")
        state["func_evals"] += 1
        f = float(loss)
        curvature = _Curvature(loss, flat)
        g = curvature.grad
        if float(np.abs(g).max()) <= group["tolerance_grad"]:
            return loss
        state["n_iter"] += 1

        method = self.method
        if method == "exact":
            self._check_hessian_fits()
            h = curvature.hessian()
        else:
            n = flat.numel
            cg_tol = (
                group["cg_tol"] if group["cg_tol"] is not None else min(0.5, math.sqrt(np.linalg.norm(g)))
            )
            cg_max_iter = group["cg_max_iter"] or min(n, 250)

        x0 = flat.get()
        versions = [p._version[0] for p in flat.params]
        damping, growth = state["damping"], state["damping_growth"]
        eps = np.finfo(flat.dtype).eps
        accepted = False
        for _ in range(tries):
            if method == "exact":
                p, damping = self._solve_exact(h, g, damping, floor)
                php = float(p @ h @ p)
                negative_curvature = False
            else:
                p, negative_curvature = self._solve_cg(curvature, g, damping, cg_tol, cg_max_iter)
                php = float(p @ curvature.hvp(p))
            predicted = -(lr * float(g @ p) + 0.5 * lr * lr * php)
            flat.add(lr, p)
            f_new = float(call_closure(closure))  # with grad on: the closure may call backward
            state["func_evals"] += 1
            actual = f - f_new
            rounding_level = predicted <= 16 * eps * max(1.0, abs(f))
            if rounding_level:
                # the model's decrease is at rounding level: accept unless the loss visibly went up
                good = math.isfinite(f_new) and actual >= -16 * eps * max(1.0, abs(f))
                rho = 1.0
            else:
                rho = actual / predicted
                good = math.isfinite(f_new) and rho > 0
            if good and not negative_curvature:
                damping *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
                growth = 2.0
                accepted = True
                break
            flat.set(x0)
            # The very values the gradient's graph saved are back: let Newton-CG keep using that graph.
            for p_, version in zip(flat.params, versions):
                p_._version[0] = version
            if good:  # descent along a direction of negative curvature: keep it, but damp harder next time
                flat.add(lr, p)
                damping, accepted = max(damping * growth, floor), True
                break
            if rounding_level:  # converged as far as the arithmetic can tell: nothing left to gain
                accepted = True
                break
            state["rejected"] += 1
            damping = max(damping * growth, floor)
            growth *= 2.0
        if not accepted:  # pragma: no cover - a safeguard: with enough damping a descent step exists
            warnings.warn(
                f"Newton.step: no decrease of the loss found after {tries} damped steps "
                f"(damping {damping:.3g}); the parameters are unchanged",
                RuntimeWarning,
                stacklevel=2,
            )
        state["hvp_evals"] += curvature.hvp_count
        state["damping"], state["damping_growth"] = damping, growth
        return loss
