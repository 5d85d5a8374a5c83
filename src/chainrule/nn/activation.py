"""Activation layers: thin modules over the fused ops in ``chainrule.ops.activation``.

All are stable for inputs of any size (no overflow at +-1000). Only PReLU has parameters
(default init: every slope 0.25, PyTorch's).
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..ops import activation as A
from ..ops.elementwise import relu, sigmoid, tanh
from ..ops.reduce import log_softmax, softmax
from ..tensor import Tensor
from .config import make_config, register_config
from .module import Module
from .parameter import Parameter


def _as_input(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


class _Activation(Module):
    """An activation without arguments: ``forward`` applies ``fn``."""

    fn = None

    def forward(self, input: Tensor) -> Tensor:
        return type(self).fn(_as_input(input))

    def get_config(self) -> dict:
        return make_config(self)


@register_config
class Sigmoid(_Activation):
    """sigma(x) = 1 / (1 + e^-x)."""

    fn = staticmethod(sigmoid)


@register_config
class Tanh(_Activation):
    """tanh(x) = (e^x - e^-x) / (e^x + e^-x)."""

    fn = staticmethod(tanh)


@register_config
class SiLU(_Activation):
    """x * sigmoid(x)."""

    fn = staticmethod(A.silu)


@register_config
class LogSigmoid(_Activation):
    """log(sigmoid(x))."""

    fn = staticmethod(A.logsigmoid)


@register_config
class SELU(_Activation):
    """Scaled ELU with the self-normalising constants."""

    fn = staticmethod(A.selu)


@register_config
class ReLU(Module):
    """max(x, 0)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return relu(_as_input(input))

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""

    def get_config(self) -> dict:
        return make_config(self)


@register_config
class LeakyReLU(Module):
    """x for x > 0, negative_slope * x otherwise (PyTorch's default slope 0.01; the lecture uses 0.1)."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return A.leaky_relu(_as_input(input), self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"

    def get_config(self) -> dict:
        return make_config(self, negative_slope=self.negative_slope)


@register_config
class PReLU(Module):
    """x for x > 0, a * x otherwise, with learned slopes ``weight``: one shared slope
    (``num_parameters=1``) or one per channel (dimension 1 of the input). Default init: ``init`` (0.25)."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25, dtype=None) -> None:
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, (int, np.integer)) or num_parameters < 1:
            raise ValueError(f"PReLU: num_parameters must be a positive integer, got {num_parameters!r}")
        self.num_parameters = int(num_parameters)
        self.init = float(init)
        dtype = backend.as_dtype(dtype) or backend.get_default_dtype()
        self.weight = Parameter(backend.full(self.num_parameters, self.init, dtype))

    def reset_parameters(self) -> None:
        from . import init

        init.constant_(self.weight, self.init)

    def forward(self, input: Tensor) -> Tensor:
        return A.prelu(_as_input(input), self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"

    def get_config(self) -> dict:
        return make_config(self, num_parameters=self.num_parameters, init=self.init)


@register_config
class ELU(Module):
    """x for x > 0, alpha (e^x - 1) otherwise."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return A.elu(_as_input(input), self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"

    def get_config(self) -> dict:
        return make_config(self, alpha=self.alpha)


@register_config
class GELU(Module):
    """x * Phi(x) (exact, through erf), or its tanh approximation with ``approximate='tanh'``."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return A.gelu(_as_input(input), self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"

    def get_config(self) -> dict:
        return make_config(self, approximate=self.approximate)


@register_config
class Softplus(Module):
    """log(1 + e^{beta x}) / beta, linear where beta x > threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        if beta == 0:
            raise ValueError("Softplus: beta must be non-zero")
        self.beta, self.threshold = float(beta), float(threshold)

    def forward(self, input: Tensor) -> Tensor:
        return A.softplus(_as_input(input), self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"

    def get_config(self) -> dict:
        return make_config(self, beta=self.beta, threshold=self.threshold)


@register_config
class Hardtanh(Module):
    """Clamp to [min_val, max_val]."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0) -> None:
        super().__init__()
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
        self.min_val, self.max_val = float(min_val), float(max_val)

    def forward(self, input: Tensor) -> Tensor:
        return A.hardtanh(_as_input(input), self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"

    def get_config(self) -> dict:
        return make_config(self, min_val=self.min_val, max_val=self.max_val)


class _Normalise(Module):
    fn = None

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        # dim=None means the last dimension (PyTorch's implicit choice is deprecated there)
        return type(self).fn(_as_input(input), -1 if self.dim is None else self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"

    def get_config(self) -> dict:
        return make_config(self, dim=self.dim)


@register_config
class Softmax(_Normalise):
    """exp(x_i) / sum_j exp(x_j) along ``dim`` (the last dimension when None)."""

    fn = staticmethod(softmax)


@register_config
class LogSoftmax(_Normalise):
    """x_i - log sum_j exp(x_j) along ``dim`` (the last dimension when None)."""

    fn = staticmethod(log_softmax)


# Names accepted wherever an activation is given as a string (MLP, the CLI); case and '_' ignored.
ACTIVATIONS: dict[str, type] = {
    "relu": ReLU, "leakyrelu": LeakyReLU, "prelu": PReLU, "elu": ELU, "selu": SELU, "gelu": GELU,
    "silu": SiLU, "swish": SiLU, "sigmoid": Sigmoid, "logistic": Sigmoid, "tanh": Tanh,
    "softplus": Softplus, "softmax": Softmax, "logsoftmax": LogSoftmax, "logsigmoid": LogSigmoid,
    "hardtanh": Hardtanh,
}


def activation_class(name: str) -> type | None:
    """The activation class for a name like 'relu', 'leaky_relu' or 'LeakyReLU' (None for
    'identity'/'linear'/'none')."""
    key = name.replace("_", "").replace("-", "").lower()
    if key in ("identity", "linear", "none"):
        return None
    if key not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATIONS))} or 'identity'"
        )
    return ACTIVATIONS[key]
