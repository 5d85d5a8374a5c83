"""RMSprop (Hinton's lecture 6e), optionally centered and with momentum: PyTorch's update rule."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer


class RMSprop(Optimizer):
    r"""Divide the gradient by a running root mean square of recent gradients.

    For each parameter :math:`\theta` with gradient :math:`g` (negated when ``maximize``):

    .. math::
        g &\leftarrow g + \lambda\,\theta \qquad\text{(weight\_decay } \lambda\text{)}\\
        v_t &= \alpha\, v_{t-1} + (1-\alpha)\, g^2 \\
        \bar g_t &= \alpha\, \bar g_{t-1} + (1-\alpha)\, g
              \quad\text{and}\quad \tilde v_t = v_t - \bar g_t^2 \qquad\text{(centered)}\\
        s &= \sqrt{\tilde v_t} + \epsilon \quad(\sqrt{v_t} + \epsilon \text{ if not centered})\\
        b_t &= \mu\, b_{t-1} + g / s, \quad \theta \leftarrow \theta - \eta\, b_t
              \qquad\text{(momentum } \mu > 0\text{)}\\
        \theta &\leftarrow \theta - \eta\, g / s \qquad\text{(no momentum)}

    with :math:`v_0 = \bar g_0 = b_0 = 0`. State: ``step``, ``square_avg`` (v), ``grad_avg``
    (centered), ``momentum_buffer`` (momentum > 0).
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if alpha < 0.0:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def step(self, closure: Callable | None = None):
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            weight_decay, momentum, centered = group["weight_decay"], group["momentum"], group["centered"]
            for p, grad in self._params_with_grad(group):
                theta = p._data
                state = self.state.get(p)
                if not state:
                    state = self.state[p] = {"step": 0, "square_avg": Tensor._wrap(np.zeros_like(theta))}
                    if momentum > 0:
                        state["momentum_buffer"] = Tensor._wrap(np.zeros_like(theta))
                    if centered:
                        state["grad_avg"] = Tensor._wrap(np.zeros_like(theta))
                state["step"] += 1
                g = grad
                if group["maximize"]:
                    g = np.negative(grad, out=self._workspace(theta, 0))
                if weight_decay != 0:
                    decay = np.multiply(theta, weight_decay, out=self._workspace(theta, 1))
                    g = np.add(g, decay, out=self._workspace(theta, 0))
                v = state["square_avg"]._data
                s = self._workspace(theta, 1)
                v *= alpha
                np.multiply(g, g, out=s)
                s *= 1 - alpha
                v += s
                if centered:
                    g_bar = state["grad_avg"]._data
                    np.subtract(g, g_bar, out=s)  # g_bar += (1 - alpha)(g - g_bar)
                    s *= 1 - alpha
                    g_bar += s
                    np.multiply(g_bar, g_bar, out=s)
                    np.subtract(v, s, out=s)
                    np.sqrt(s, out=s)
                else:
                    np.sqrt(v, out=s)
                s += eps
                np.divide(g, s, out=s)
                if momentum > 0:
                    buf = state["momentum_buffer"]._data
                    buf *= momentum
                    buf += s
                    np.multiply(buf, -lr, out=s)
                else:
                    s *= -lr
                theta += s
                self._updated(p)
        return loss
