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


# A small model's Adam step is mostly per-call NumPy overhead (W-small: 6 parameters, 17k numbers, 13
# ufunc calls each). A group without amsgrad, maximize or L2 weight decay (AdamW's decoupled decay is
# fine) whose parameters all have gradients and share one step count is updated through
# ``_FlatGroup``: its moments live in one flat buffer per group (the state tensors are views into it),
# the gradients are gathered into another, the update is computed by one set of ufunc calls and added
# to each parameter in place (``p._data`` stays the same array). The arithmetic is the per-parameter
# code's, element by element, so the results are bitwise the same. Larger groups gain nothing (the
# per-call overhead is negligible there) and would pay for the gather.
_FLAT_MAX_NUMEL = 1 << 16


def _bias_corrections(lr: float, beta1: float, beta2: float, eps: float, t: int) -> tuple[float, float]:
    """The step as -scale m / (sqrt(v) + eps_scaled): one pass fewer than dividing sqrt(v) by c.

    lr/(1 - beta1^t) m / (sqrt(v)/c + eps) = lr c/(1 - beta1^t) m / (sqrt(v) + eps c), c = sqrt(1 - beta2^t).
    """
    c = math.sqrt(1 - beta2**t)
    return -lr * c / (1 - beta1**t), eps * c


def _update_moments(g, m, v, work, beta1: float, beta2: float) -> None:
    """m += (1 - beta1) (g - m);  v = beta2 v + (1 - beta2) g^2, in place (``work`` is scratch)."""
    np.subtract(g, m, out=work)
    work *= 1 - beta1
    m += work
    v *= beta2
    np.multiply(g, g, out=work)
    work *= 1 - beta2
    v += work


def _step_into(out, m, v_hat, scale: float, eps_scaled: float) -> None:
    """out = scale m / (sqrt(v_hat) + eps_scaled): the change to add to theta."""
    np.sqrt(v_hat, out=out)
    out += eps_scaled
    np.divide(m, out, out=out)
    out *= scale


class _FlatGroup:
    """Flat moment buffers for one param group, with per-parameter views of them and of the scratch."""

    __slots__ = ("params", "exp_avg", "exp_avg_sq", "grad", "work", "m_views", "v_views", "grad_views",
                 "work_views")

    def __init__(self, params: list, states: list):
        sizes = [p._data.size for p in params]
        total, dtype = sum(sizes), params[0]._data.dtype
        self.params = list(params)
        self.exp_avg, self.exp_avg_sq, self.grad, self.work = (np.zeros(total, dtype) for _ in range(4))
        offsets = np.cumsum([0, *sizes])
        views = [[flat[a:b].reshape(p._data.shape) for p, a, b in zip(params, offsets[:-1], offsets[1:])]
                 for flat in (self.exp_avg, self.exp_avg_sq, self.grad, self.work)]
        self.m_views, self.v_views, self.grad_views, self.work_views = views
        for state, m, v in zip(states, self.m_views, self.v_views):
            # moments already there (earlier steps, a loaded state_dict) move into the flat buffers
            if "exp_avg" in state:
                m[...] = state["exp_avg"]._data
                v[...] = state["exp_avg_sq"]._data
            state["exp_avg"], state["exp_avg_sq"] = Tensor._wrap(m), Tensor._wrap(v)

    def serves(self, params: list, states: list) -> bool:
        """Same parameters, and the state tensors are still our views (load_state_dict replaces them)."""
        if len(params) != len(self.params):
            return False
        for p, q, state, m, v in zip(params, self.params, states, self.m_views, self.v_views):
            if p is not q or state["exp_avg"]._data is not m or state["exp_avg_sq"]._data is not v:
                return False
        return True


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
            if not self._flat_step(group):
                self._step_each(group)
        return loss

    def _flat_step(self, group: dict) -> bool:
        """The whole group in one set of ufunc calls (see ``_FlatGroup``); False when it does not qualify."""
        if group["amsgrad"] or group["maximize"] or (group["weight_decay"] != 0 and not self._decoupled):
            return False
        params = group["params"]
        dtype = params[0]._data.dtype
        numel = 0
        for p in params:
            if p.grad is None or p._data.dtype != dtype or p.grad._data.dtype != dtype:
                return False
            numel += p._data.size
        if numel > _FLAT_MAX_NUMEL:
            return False
        states = [self.state.get(p) or self._init_state(p, False) for p in params]
        t = states[0]["step"] + 1
        if any(state["step"] != t - 1 for state in states):
            return False
        cache = self.__dict__.setdefault("_flat", {})
        flat = cache.get(id(group))
        if flat is None or not flat.serves(params, states):
            if len({id(p) for p in params}) != len(params):
                return False  # a parameter listed twice is stepped twice, one after the other
            flat = cache[id(group)] = _FlatGroup(params, states)
        for p, state, g in zip(params, states, flat.grad_views):
            np.copyto(g, p.grad._data)
            state["step"] = t
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        m, v, w = flat.exp_avg, flat.exp_avg_sq, flat.work
        # the per-parameter update (_step_each), on the concatenation
        _update_moments(flat.grad, m, v, w, beta1, beta2)
        _step_into(w, m, v, *_bias_corrections(lr, beta1, beta2, eps, t))
        decay = 1 - lr * group["weight_decay"]  # AdamW's theta <- theta (1 - lr lambda); 1 for Adam
        for p, step in zip(params, flat.work_views):
            if decay != 1:
                p._data *= decay
            p._data += step
            p._version[0] += 1
        return True

    def _step_each(self, group: dict) -> None:
        """The update parameter by parameter (any options)."""
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
            _update_moments(g, m, v, w, beta1, beta2)
            if amsgrad:
                if "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = Tensor._wrap(np.zeros_like(theta))
                v_hat = state["max_exp_avg_sq"]._data
                np.maximum(v_hat, v, out=v_hat)
            else:
                v_hat = v
            _step_into(w, m, v_hat, *_bias_corrections(lr, beta1, beta2, eps, t))
            theta += w
            self._updated(p)


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
