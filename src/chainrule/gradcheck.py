"""Numerical gradients and gradcheck: the analytic chain rule checked against finite differences.

The numerical gradient is approximate, slow and easy to write; the analytic one is exact, fast and
easy to get wrong. ``gradcheck`` compares the two in float64 and names the worst disagreement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import autograd
from .tensor import Tensor


class GradcheckError(RuntimeError):
    """Raised by :func:`gradcheck` when analytic and numerical gradients disagree."""

    def __init__(self, report: GradcheckReport):
        super().__init__(report.message)
        self.report = report


@dataclass
class GradcheckReport:
    """The outcome of a gradient check: ``ok``, and the worst mismatch when there is one."""

    ok: bool
    input_index: int | None = None
    element: tuple | None = None
    analytic: float | None = None
    numerical: float | None = None
    max_abs_error: float = 0.0
    order: int = 1
    details: list = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.ok:
            return f"gradcheck passed (order {self.order}, max abs error {self.max_abs_error:.3g})"
        what = "gradient" if self.order == 1 else "second derivative"
        return (
            f"gradcheck: {what} mismatch for input {self.input_index} at index {self.element}: "
            f"analytic {self.analytic:.10g} vs numerical {self.numerical:.10g}"
        )

    def __bool__(self) -> bool:
        return self.ok


def _prepare(inputs) -> list:
    if isinstance(inputs, Tensor):
        inputs = (inputs,)
    out = []
    for x in inputs:
        if isinstance(x, Tensor) and x.dtype.kind == "f":
            t = Tensor._wrap(x._data.astype(np.float64))
            t.requires_grad = x.requires_grad
            out.append(t)
        else:
            out.append(x)
    return out


def _projection(fn, inputs, seed: int):
    """s(x) = sum(v * f(x)) for a fixed random v, so one backward checks the whole Jacobian."""
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(0.5, 1.5, o.shape) * rng.choice([-1.0, 1.0], o.shape) for o in outs]

    def scalar(*xs):
        res = fn(*xs)
        res = res if isinstance(res, (tuple, list)) else (res,)
        total = None
        for r, w in zip(res, weights):
            if not isinstance(r, Tensor) or r.dtype.kind != "f":
                continue
            term = (r * Tensor._wrap(w.astype(r.dtype))).sum()
            total = term if total is None else total + term
        return total

    return scalar


def numerical_grad(f: Callable[[], float], x: Tensor, eps: float) -> np.ndarray:
    """Central differences of the scalar ``f()`` with respect to each entry of ``x`` (changed in place)."""
    flat = x._data.reshape(-1)
    grad = np.zeros(flat.shape, dtype=np.float64)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        up = f()
        flat[i] = orig - eps
        down = f()
        flat[i] = orig
        grad[i] = (up - down) / (2 * eps)
    return grad.reshape(x.shape)


def _compare(analytic, numerical, atol, rtol, order) -> GradcheckReport:
    """The worst mismatch over all inputs: the entry that exceeds its tolerance by the most."""
    worst = GradcheckReport(ok=True, order=order)
    worst_excess = 0.0
    for i, (a, n) in enumerate(zip(analytic, numerical)):
        if n is None:
            continue
        a = np.zeros_like(n) if a is None else a
        err = np.abs(a - n)
        excess = err - (atol + rtol * np.abs(n))
        excess = np.where(np.isnan(err), np.inf, excess)  # NaN on one side only is a mismatch too
        worst.max_abs_error = max(worst.max_abs_error, float(np.nanmax(err, initial=0.0)))
        if excess.size == 0:
            continue
        j = np.unravel_index(np.argmax(excess), n.shape)
        if excess[j] > worst_excess:
            worst_excess = float(excess[j])
            worst.ok, worst.input_index, worst.element = False, i, tuple(int(k) for k in j)
            worst.analytic, worst.numerical = float(a[j]), float(n[j])
    return worst


def _first_order(fn, xs, eps, atol, rtol, seed) -> GradcheckReport:
    s = _projection(fn, xs, seed)
    wrt = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
    analytic = autograd.grad(s(*xs), wrt, allow_unused=True)
    with autograd.no_grad():
        numerical = [numerical_grad(lambda: s(*xs).item(), x, eps) for x in wrt]
    return _compare([None if g is None else g._data for g in analytic], numerical, atol, rtol, 1)


def _second_order(fn, xs, eps, atol, rtol, seed) -> GradcheckReport:
    s = _projection(fn, xs, seed)
    wrt = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
    rng = np.random.default_rng(seed + 1)
    dirs = [rng.standard_normal(x.shape) for x in wrt]

    def directional(*args):
        grads = autograd.grad(s(*args), wrt, create_graph=True, allow_unused=True)
        total = None
        for g, d in zip(grads, dirs):
            if g is None:
                continue
            term = (g * Tensor._wrap(d)).sum()
            total = term if total is None else total + term
        return total

    out = directional(*xs)
    if out is None or not out.requires_grad:  # no graph from the gradient back to the inputs
        analytic = [None] * len(wrt)
    else:
        analytic = [None if g is None else g._data for g in autograd.grad(out, wrt, allow_unused=True)]

    def value():
        v = directional(*xs)
        return 0.0 if v is None else v.item()

    numerical = [numerical_grad(value, x, eps) for x in wrt]
    return _compare(analytic, numerical, atol, rtol, 2)


def gradcheck(
    fn: Callable,
    inputs: Tensor | Sequence,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> GradcheckReport:
    """Check ``fn``'s analytic gradients against central finite differences, in float64.

    Inputs that require grad are copied to float64 and perturbed one entry at a time. On a mismatch,
    raises :class:`GradcheckError` (or returns the failing report when ``raise_exception=False``)
    naming the input, the index and both values.

    >>> x = cr.randn(3, requires_grad=True)
    >>> cr.gradcheck(lambda x: (x * x).sum(), [x]).ok
    True
    """
    xs = _prepare(inputs)
    report = _first_order(fn, xs, eps, atol, rtol, seed)
    if not report.ok and raise_exception:
        raise GradcheckError(report)
    return report


def gradgradcheck(
    fn: Callable,
    inputs: Tensor | Sequence,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> GradcheckReport:
    """Check second derivatives: the gradient of a directional derivative, against finite differences."""
    xs = _prepare(inputs)
    report = _second_order(fn, xs, eps, atol, rtol, seed)
    if not report.ok and raise_exception:
        raise GradcheckError(report)
    return report
