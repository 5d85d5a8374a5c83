"""Adagrad (Duchi, Hazan & Singer): per-coordinate steps shrinking with the summed squared gradients."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer


class Adagrad(Optimizer):
    r"""Divide each coordinate's step by the root of the sum of its squared gradients so far.

    For each parameter :math:`\theta` with gradient :math:`g` (negated when ``maximize``), at step t:

    .. math::
        g &\leftarrow g + \lambda\,\theta \qquad\text{(weight\_decay } \lambda\text{)}\\
        \tilde\eta &= \frac{\eta}{1 + (t-1)\,\delta} \qquad\text{(lr\_decay } \delta\text{)}\\
        s_t &= s_{t-1} + g^2, \qquad s_0 = \text{initial\_accumulator\_value} \\
        \theta &\leftarrow \theta - \tilde\eta\, \frac{g}{\sqrt{s_t} + \epsilon}

    State per parameter: ``step`` and ``sum`` (s), created with the optimizer, as in PyTorch.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if lr_decay < 0.0:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if initial_accumulator_value < 0.0:
            raise ValueError(f"Invalid initial_accumulator_value value: {initial_accumulator_value}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p: Tensor, group: dict) -> dict:
        value = group["initial_accumulator_value"]
        state = self.state[p] = {"step": 0, "sum": Tensor._wrap(np.full_like(p._data, value))}
        return state

    def step(self, closure: Callable | None = None):
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, lr_decay, eps, weight_decay = (
                group["lr"],
                group["lr_decay"],
                group["eps"],
                group["weight_decay"],
            )
            for p, grad in self._params_with_grad(group):
                theta = p._data
                state = self.state.get(p) or self._init_state(p, group)
                state["step"] += 1
                g = grad
                if group["maximize"]:
                    g = np.negative(grad, out=self._workspace(theta, 0))
                if weight_decay != 0:
                    decay = np.multiply(theta, weight_decay, out=self._workspace(theta, 1))
                    g = np.add(g, decay, out=self._workspace(theta, 0))
                clr = lr / (1 + (state["step"] - 1) * lr_decay)
                total = state["sum"]._data
                s = self._workspace(theta, 1)
                np.multiply(g, g, out=s)
                total += s
                np.sqrt(total, out=s)
                s += eps
                np.divide(g, s, out=s)
                s *= -clr
                theta += s
                self._updated(p)
        return loss
