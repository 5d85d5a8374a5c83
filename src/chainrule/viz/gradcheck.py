"""``gradcheck_model``: every parameter's backprop gradient checked against central differences.

The numerical gradient is approximate, slow and easy to write:
``dL/dw_i ~ (L(w + eps e_i) - L(w - eps e_i)) / (2 eps)``; the analytic one (backprop) is exact,
fast and easy to get wrong. Comparing the two, parameter by parameter, finds a wrong ``backward``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import autograd, backend
from ..tensor import Tensor
from . import _format


@dataclass
class ParamCheck:
    """One parameter: the worst relative error over the checked entries, and where it was."""

    name: str
    shape: tuple
    checked: int
    max_rel_error: float
    max_abs_error: float
    worst_index: tuple
    analytic: float
    numerical: float
    ok: bool


@dataclass
class ModelGradcheck:
    """The outcome of :func:`gradcheck_model`: ``ok``, ``params`` (one :class:`ParamCheck` each),
    ``failures`` and a printable table (``to_text()``)."""

    params: list = field(default_factory=list)
    tol: float = 1e-5
    eps: float = 1e-6

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.params)

    @property
    def failures(self) -> list:
        return [p for p in self.params if not p.ok]

    def __bool__(self) -> bool:
        return self.ok

    def __getitem__(self, name: str) -> ParamCheck:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(f"gradcheck_model: no parameter {name!r}; parameters are {[p.name for p in self.params]}")

    def to_text(self) -> str:
        head = f"{'parameter':<24} {'shape':<14} {'checked':>7} {'max rel error':>14}  {'':<6}"
        lines = [head, "-" * len(head)]
        for p in self.params:
            flag = "ok" if p.ok else "FAILED"
            shape = _format.shape(p.shape)
            lines.append(f"{p.name:<24} {shape:<14} {p.checked:>7} {p.max_rel_error:>14.3e}  {flag}")
            if not p.ok:
                lines.append(f"{'':<4}worst at {p.worst_index}: analytic {p.analytic:.8g} vs numerical "
                             f"{p.numerical:.8g}")
        verdict = "all gradients match" if self.ok else f"{len(self.failures)} parameter(s) FAILED"
        lines.append(f"{verdict} (float64 central differences, eps={self.eps:g}, tolerance {self.tol:g})")
        return "\n".join(lines)

    __str__ = to_text


def _to64(x):
    if isinstance(x, Tensor):
        return Tensor._wrap(x._data.astype(np.float64)) if x._data.dtype.kind == "f" else x
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return Tensor._wrap(x.astype(np.float64))
    if isinstance(x, np.ndarray):
        return Tensor._wrap(x)
    return x


def gradcheck_model(model, loss_fn, x, y, eps: float = 1e-6, tol: float = 1e-5, atol: float = 1e-8,
                    max_entries: int | None = 30,
                    seed: int = 0) -> ModelGradcheck:
    """Compare backprop's gradient of ``loss_fn(model(x), y)`` with central differences, per parameter.

    The check runs in float64; the model is left exactly as it was. For each
    parameter, up to ``max_entries`` entries (chosen at random; None: all) are perturbed by ``+-eps``.
    The relative error of an entry is ``|a - n| / max(|a|, |n|, atol / tol)`` (the floor keeps the
    ~1e-10 noise of central differences from counting where a gradient is nearly 0); a parameter fails when its
    worst entry exceeds ``tol``. The random draws of the forward (dropout) are replayed identically.

    >>> report = cr.gradcheck_model(model, cr.nn.MSELoss(), x, y)
    >>> print(report.to_text())
    """
    # Work on the model itself in float64, and put every array back afterwards (tensors are not
    # copyable, and a forward in train mode may update buffers such as BatchNorm's running mean).
    saved = []
    for m in model.modules():
        for reg, is_buffer in ((m._parameters, False), (m._buffers, True)):
            for t in reg.values():
                if t is not None:
                    saved.append((t, t._data, t.grad, t._data.copy() if is_buffer else None))
    x64, y64 = _to64(x), _to64(y)
    state = backend.generator().bit_generator.state
    try:
        model.double()
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"gradcheck_model: {type(model).__name__} has no parameters that require grad")

        def loss_value() -> Tensor:
            backend.generator().bit_generator.state = state  # the same dropout masks every time
            out = loss_fn(model(x64), y64)
            if not isinstance(out, Tensor) or out._data.size != 1:
                raise ValueError("gradcheck_model: loss_fn(model(x), y) must return a scalar Tensor")
            return out

        loss = loss_value()
        analytic = autograd.grad(loss, [p for _, p in params], allow_unused=True)
        rng = np.random.default_rng(seed)
        report = ModelGradcheck(tol=tol, eps=eps)
        with autograd.no_grad():
            for (name, p), g in zip(params, analytic):
                report.params.append(_check_param(name, p, g, loss_value, eps, tol, atol, max_entries, rng))
    finally:
        backend.generator().bit_generator.state = state
        for t, data, grad, copy in saved:
            t._data, t.grad = data, grad
            if copy is not None:
                np.copyto(data, copy)
    return report


def _check_param(name, p, g, loss_value, eps, tol, atol, max_entries, rng) -> ParamCheck:
    flat = p._data.reshape(-1)
    n = flat.size
    idx = np.arange(n) if max_entries is None or n <= max_entries else rng.choice(n, max_entries, replace=False)
    ga = np.zeros(n) if g is None else g._data.reshape(-1).astype(np.float64)
    numerical = np.empty(len(idx))
    for j, i in enumerate(idx):
        orig = flat[i]
        flat[i] = orig + eps
        up = loss_value().item()
        flat[i] = orig - eps
        down = loss_value().item()
        flat[i] = orig
        numerical[j] = (up - down) / (2 * eps)
    a = ga[idx]
    abs_err = np.abs(a - numerical)
    # relative error, with the scale floored at atol / tol: central differences carry ~1e-10 of noise,
    # which must not count as a relative error where a gradient is nearly 0
    scale = np.maximum(np.maximum(np.abs(a), np.abs(numerical)), atol / tol)
    rel = abs_err / scale
    w = int(np.argmax(rel)) if len(rel) else 0
    worst = tuple(int(k) for k in np.unravel_index(int(idx[w]), p.shape)) if len(idx) else ()
    return ParamCheck(name, tuple(p.shape), len(idx), float(rel.max(initial=0.0)), float(abs_err.max(initial=0.0)),
                      worst, float(a[w]) if len(a) else 0.0, float(numerical[w]) if len(a) else 0.0,
                      bool(rel.max(initial=0.0) <= tol))
