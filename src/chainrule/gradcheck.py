"""Numerical gradients and gradcheck: the analytic chain rule checked against finite differences.

The numerical gradient is approximate, slow and easy to write; the analytic one is exact, fast and
easy to get wrong. ``gradcheck`` compares the two in float64 and names the worst disagreement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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
    """The outcome of a gradient check: ``ok``, and the worst mismatch when there is one.

    For a first-order mismatch, ``analytic`` and ``numerical`` are the two values of one Jacobian
    entry: d output[``output_index``] / d input ``input_index``[``element``] (``output`` says which
    output when ``fn`` returns several). For a second-order one they are the entries of the
    gradient of a directional derivative.
    """

    ok: bool
    input_index: int | None = None
    element: tuple | None = None
    analytic: float | None = None
    numerical: float | None = None
    max_abs_error: float = 0.0
    order: int = 1
    output: int | None = None
    output_index: tuple | None = None
    stage: str = ""  # set by gradgradcheck: "first derivatives" when create_graph's gradient is wrong

    @property
    def message(self) -> str:
        if self.ok:
            return f"gradcheck passed (order {self.order}, max abs error {self.max_abs_error:.3g})"
        if self.order == 2:
            return (
                f"gradgradcheck: second derivative mismatch for input {self.input_index} at index "
                f"{self.element}: analytic {self.analytic:.10g} vs numerical {self.numerical:.10g}"
            )
        where = ""
        if self.output_index is not None:
            out = "output" if self.output is None else f"output {self.output}"
            where = (f" (d {out}[{', '.join(map(str, self.output_index))}] / d input {self.input_index}"
                     f"[{', '.join(map(str, self.element))}])")
        what = ("gradcheck: gradient" if not self.stage
                else "gradgradcheck: first derivative (the gradient create_graph=True builds)")
        return (
            f"{what} mismatch for input {self.input_index} at index {self.element}{where}: "
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


def _float_outputs(res) -> list:
    res = res if isinstance(res, (tuple, list)) else (res,)
    return [r for r in res if isinstance(r, Tensor) and r.dtype.kind == "f"]


def _unused_error(xs, wrt, i) -> ValueError:
    position = next(k for k, x in enumerate(xs) if x is wrt[i])
    return ValueError(
        f"gradcheck: the output does not depend on input {position} (shape {tuple(wrt[i].shape)}), "
        "which requires grad; pass allow_unused=True if that is intended"
    )


def _jacobian_entry(fn, xs, wrt, report: GradcheckReport, eps: float, atol: float, rtol: float,
                    create_graph: bool, max_outputs: int = 1024) -> None:
    """Replace the projected mismatch in ``report`` by the worst Jacobian entry in its column.

    The column d outputs / d x[element] is taken numerically (one central difference of the whole
    output) and analytically (one backward pass per output entry, for at most ``max_outputs``
    entries, the largest numerical ones first).
    """
    x = wrt[report.input_index]
    flat = x._data.reshape(-1)
    j = int(np.ravel_multi_index(report.element, x.shape)) if x.ndim else 0
    with autograd.no_grad():
        orig = flat[j]
        flat[j] = orig + eps
        up = [o._data.astype(np.float64).ravel() for o in _float_outputs(fn(*xs))]
        flat[j] = orig - eps
        down = [o._data.astype(np.float64).ravel() for o in _float_outputs(fn(*xs))]
        flat[j] = orig
    column = np.concatenate([(u - d) / (2 * eps) for u, d in zip(up, down)])
    outs = _float_outputs(fn(*xs))
    sizes = [o._data.size for o in outs]
    starts = np.cumsum([0] + sizes)
    order = np.argsort(-np.abs(column), kind="stable")[:max_outputs]
    best, best_excess = None, -np.inf
    for k in order:
        which = int(np.searchsorted(starts, k, side="right") - 1)
        seed = [Tensor._wrap(np.zeros(o.shape, dtype=o.dtype)) for o in outs]
        seed[which]._data.reshape(-1)[k - starts[which]] = 1.0
        (g,) = autograd.grad(outs, [x], grad_outputs=seed, allow_unused=True, retain_graph=True,
                             create_graph=create_graph)
        a = 0.0 if g is None else float(g._data.reshape(-1)[j])
        n = float(column[k])
        excess = abs(a - n) - (atol + rtol * abs(n)) if np.isfinite(a) else np.inf
        if excess > best_excess:
            best, best_excess = (which, k - starts[which], a, n), excess
    if best is None:
        return
    which, index, a, n = best
    shape = outs[which].shape
    report.output = which if len(outs) > 1 else None
    report.output_index = tuple(int(i) for i in np.unravel_index(index, shape)) if shape else ()
    report.analytic, report.numerical = a, n


def _first_order(fn, xs, eps, atol, rtol, seed, allow_unused, create_graph=False) -> GradcheckReport:
    s = _projection(fn, xs, seed)
    wrt = [x for x in xs if isinstance(x, Tensor) and x.requires_grad]
    analytic = autograd.grad(s(*xs), wrt, allow_unused=True, create_graph=create_graph)
    if not allow_unused:
        for i, g in enumerate(analytic):
            if g is None:
                raise _unused_error(xs, wrt, i)
    with autograd.no_grad():
        numerical = [numerical_grad(lambda: s(*xs).item(), x, eps) for x in wrt]
    report = _compare([None if g is None else g._data for g in analytic], numerical, atol, rtol, 1)
    if not report.ok:
        _jacobian_entry(fn, xs, wrt, report, eps, atol, rtol, create_graph)
    return report


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
    allow_unused: bool = False,
) -> GradcheckReport:
    """Check ``fn``'s analytic gradients against central finite differences, in float64.

    Inputs that require grad are copied to float64 and perturbed one entry at a time (``fn`` must
    compute with the copies it is given: a layer's parameters go through ``fn``'s arguments, e.g.
    with :func:`chainrule.nn.utils.functional_call`). The analytic side is one backward pass of
    sum(v * fn(x)) for a fixed random v. On a mismatch, raises :class:`GradcheckError` (or returns
    the failing report when ``raise_exception=False``) naming the input, the index and the two
    values of the worst Jacobian entry there. An input that requires grad but that the output does
    not depend on is an error (a check of nothing), unless ``allow_unused=True``.

    >>> x = cr.randn(3, requires_grad=True)
    >>> cr.gradcheck(lambda x: (x * x).sum(), [x]).ok
    True
    """
    xs = _prepare(inputs)
    report = _first_order(fn, xs, eps, atol, rtol, seed, allow_unused)
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
    allow_unused: bool = False,
) -> GradcheckReport:
    """Check the derivatives that ``create_graph=True`` builds, against finite differences.

    First the gradient itself, computed by the ops' Tensor backward rules (the path that
    ``create_graph`` takes), entry by entry as in :func:`gradcheck`; then the second derivatives:
    the gradient of a directional derivative.
    """
    xs = _prepare(inputs)
    # The gradient that create_graph=True builds (the Tensor backward rules) must itself be right:
    # checked against finite differences first, so a wrong rule is not differentiated "consistently".
    report = _first_order(fn, xs, eps, atol, rtol, seed, allow_unused, create_graph=True)
    if report.ok:
        report = _second_order(fn, xs, eps, atol, rtol, seed)
    else:
        report.stage = "first derivatives"
    if not report.ok and raise_exception:
        raise GradcheckError(report)
    return report
