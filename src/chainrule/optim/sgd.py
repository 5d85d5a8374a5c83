"""Stochastic gradient descent, with momentum and Nesterov's variant: PyTorch's update rule."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer


class SGD(Optimizer):
    r"""Gradient descent on whatever gradient the last backward left in ``.grad``.

    For each parameter :math:`\theta` with gradient :math:`g` (negated when ``maximize``), at step t:

    .. math::
        g &\leftarrow g + \lambda\,\theta \qquad\text{(weight\_decay } \lambda\text{)}\\
        b_t &= \begin{cases} g & t = 1\\ \mu\, b_{t-1} + (1-\tau)\, g & t > 1\end{cases}
              \qquad\text{(momentum } \mu\text{, dampening } \tau\text{)}\\
        d &= \begin{cases} g + \mu\, b_t & \text{nesterov}\\ b_t & \text{otherwise}\end{cases}
              \qquad (d = g \text{ when } \mu = 0)\\
        \theta &\leftarrow \theta - \eta\, d

    >>> w = cr.nn.Parameter(cr.tensor([1.0, -2.0], dtype=cr.float64))
    >>> opt = cr.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.detach().numpy().round(6).tolist()   # w - 0.1 * 2w: the first buffer is the gradient itself
    [0.8, -1.6]
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def step(self, closure: Callable | None = None):
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov, maximize = group["weight_decay"], group["nesterov"], group["maximize"]
            for p, grad in self._params_with_grad(group):
                theta = p._data
                d = grad
                if weight_decay != 0 or maximize:
                    d = self._workspace(theta, 0)
                    if weight_decay != 0:
                        np.multiply(theta, weight_decay, out=d)
                        if maximize:
                            np.subtract(d, grad, out=d)
                        else:
                            np.add(d, grad, out=d)
                    else:
                        np.negative(grad, out=d)
                if momentum != 0:
                    state = self.state.setdefault(p, {})
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        state["momentum_buffer"] = buf = Tensor._wrap(d.copy())
                        b = buf._data
                    else:
                        b = buf._data
                        b *= momentum
                        if dampening == 0:
                            b += d
                        else:
                            w = self._workspace(theta, 1)
                            np.multiply(d, 1 - dampening, out=w)
                            b += w
                    if nesterov:
                        w = self._workspace(theta, 1)
                        np.multiply(b, momentum, out=w)
                        w += d
                        d = w
                    else:
                        d = b
                step = self._workspace(theta, 1)  # may alias d (nesterov): elementwise, so that is fine
                np.multiply(d, -lr, out=step)
                theta += step
                self._updated(p)
        return loss
