"""Adam and AdamW: adaptive moment estimation (Kingma & Ba), PyTorch's update rules."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer


def _check_adam_options(lr, betas, eps, weight_decay) -> None:
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


class Adam(Optimizer):
    r"""Adam: steps scaled by running estimates of the gradient's first and second moments.

    For each parameter :math:`\theta` with gradient :math:`g` (negated when ``maximize``), at step t:

    .. math::
        g &\leftarrow g + \lambda\,\theta \qquad\text{(weight\_decay } \lambda\text{, an L2 penalty)}\\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g^2 \\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ with amsgrad, else } v_t \\
        \theta &\leftarrow \theta - \frac{\eta}{1-\beta_1^t}\,
              \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1-\beta_2^t} + \epsilon}

    with :math:`m_0 = v_0 = \hat v_0 = 0`. State per parameter: ``step``, ``exp_avg`` (m),
    ``exp_avg_sq`` (v) and, with amsgrad, ``max_exp_avg_sq``.
    """

    _decoupled = False

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        _check_adam_options(lr, betas, eps, weight_decay)
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize
        )
        super().__init__(params, defaults)

    def _init_state(self, p: Tensor, amsgrad: bool) -> dict:
        state = {
            "step": 0,
            "exp_avg": Tensor._wrap(np.zeros_like(p._data)),
            "exp_avg_sq": Tensor._wrap(np.zeros_like(p._data)),
        }
        if amsgrad:
            state["max_exp_avg_sq"] = Tensor._wrap(np.zeros_like(p._data))
        self.state[p] = state
        return state

    def step(self, closure: Callable | None = None):
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay, amsgrad, maximize = group["weight_decay"], group["amsgrad"], group["maximize"]
            for p, grad in self._params_with_grad(group):
                theta = p._data
                state = self.state.get(p) or self._init_state(p, amsgrad)
                state["step"] += 1
                t = state["step"]
                g = grad
                if maximize:
                    g = np.negative(grad, out=self._workspace(theta, 0))
                if weight_decay != 0:
                    if self._decoupled:
                        theta *= 1 - lr * weight_decay
                    else:
                        decay = np.multiply(theta, weight_decay, out=self._workspace(theta, 1))
                        g = np.add(g, decay, out=self._workspace(theta, 0))
                m, v = state["exp_avg"]._data, state["exp_avg_sq"]._data
                w = self._workspace(theta, 1)
                # m += (1 - beta1) (g - m);  v = beta2 v + (1 - beta2) g^2
                np.subtract(g, m, out=w)
                w *= 1 - beta1
                m += w
                v *= beta2
                np.multiply(g, g, out=w)
                w *= 1 - beta2
                v += w
                if amsgrad:
                    if "max_exp_avg_sq" not in state:
                        state["max_exp_avg_sq"] = Tensor._wrap(np.zeros_like(theta))
                    v_hat = state["max_exp_avg_sq"]._data
                    np.maximum(v_hat, v, out=v_hat)
                else:
                    v_hat = v
                step_size = lr / (1 - beta1**t)
                np.sqrt(v_hat, out=w)
                w /= math.sqrt(1 - beta2**t)
                w += eps
                np.divide(m, w, out=w)
                w *= -step_size
                theta += w
                self._updated(p)
        return loss


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter): the decay shrinks the weights directly
    instead of entering the gradient, so the adaptive scaling does not weaken it.

    .. math::
        \theta &\leftarrow \theta\,(1 - \eta\lambda) \\
        m_t, v_t, \hat v_t &\text{ as in Adam, from the plain gradient } g \\
        \theta &\leftarrow \theta - \frac{\eta}{1-\beta_1^t}\,
              \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1-\beta_2^t} + \epsilon}

    The default ``weight_decay`` is 1e-2, as in PyTorch.
    """

    _decoupled = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
