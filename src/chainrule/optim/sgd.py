"""Stochastic gradient descent, with momentum and Nesterov's variant: PyTorch's update rule."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, in_chunks


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
            options = (group["lr"], group["momentum"], group["dampening"], group["weight_decay"],
                       group["nesterov"], group["maximize"])
            momentum = group["momentum"]
            for p, grad in self._params_with_grad(group):
                theta = p._data
                buf, first = None, False
                if momentum != 0:
                    state = self.state.setdefault(p, {})
                    if state.get("momentum_buffer") is None:
                        state["momentum_buffer"] = Tensor._wrap(np.empty_like(theta))
                        first = True
                    buf = state["momentum_buffer"]._data
                arrays = (theta, grad, buf, self._workspace(theta, 0), self._workspace(theta, 1))
                in_chunks(_sgd_update, arrays, first, *options)
                self._updated(p)
        return loss


def _sgd_update(theta, grad, buf, work0, work1, first, lr, momentum, dampening, weight_decay, nesterov,
                maximize) -> None:
    """Update ``theta`` (and the momentum buffer) in place, elementwise, so it may be given matching
    chunks of the arrays (see ``in_chunks``). ``first``: the buffer is new."""
    d = grad
    if weight_decay != 0 or maximize:
        d = work0
        if weight_decay != 0:
            np.multiply(theta, weight_decay, out=d)
            if maximize:
                np.subtract(d, grad, out=d)
            else:
                np.add(d, grad, out=d)
        else:
            np.negative(grad, out=d)
    if momentum != 0:
        if first:
            np.copyto(buf, d)  # PyTorch: the first buffer is the gradient itself
        else:
            buf *= momentum
            if dampening == 0:
                buf += d
            else:
                np.multiply(d, 1 - dampening, out=work1)
                buf += work1
        if nesterov:
            np.multiply(buf, momentum, out=work1)
            work1 += d
            d = work1
        else:
            d = buf
    np.multiply(d, -lr, out=work1)  # may alias d (nesterov): elementwise, so that is fine
    theta += work1
