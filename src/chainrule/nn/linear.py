"""Dense layers and shape helpers: Identity, Linear, Maxout, Flatten, Unflatten, Dropout."""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..ops.linalg import linear
from ..tensor import Tensor
from . import functional as F
from . import init
from .config import make_config, register_config
from .module import Module
from .parameter import Parameter


def _as_input(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _positive_int(value, name: str, layer: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{layer}: {name} must be a non-negative integer, got {value!r}")
    return int(value)


@register_config
class Identity(Module):
    """Returns its input unchanged (a placeholder layer); accepts and ignores any arguments."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, input):
        return input

    def get_config(self) -> dict:
        return make_config(self)


@register_config
class Linear(Module):
    """y = x W^T + b, with ``weight`` of shape (out_features, in_features) and ``bias`` (out_features,).

    Default init (PyTorch's): W and b ~ U(-1/sqrt(in_features), 1/sqrt(in_features)), i.e.
    ``kaiming_uniform_(W, a=sqrt(5))``; call ``reset_parameters()`` to draw them again.

    >>> layer = cr.nn.Linear(3, 2)
    >>> layer(cr.ones(4, 3)).shape
    chainrule.Size([4, 2])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None) -> None:
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Linear")
        self.out_features = _positive_int(out_features, "out_features", "Linear")
        dtype = backend.as_dtype(dtype) or backend.get_default_dtype()
        self.weight = Parameter(backend.empty((self.out_features, self.in_features), dtype))
        if bias:
            self.bias = Parameter(backend.empty(self.out_features, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        x = _as_input(input)
        shape = x._data.shape
        if not shape or shape[-1] != self.in_features:
            raise ValueError(
                f"{self.layer_name} ({self.extra_repr()}): got input of shape {tuple(x.shape)}, expected "
                f"shape (..., {self.in_features}) to match its weight of shape {tuple(self.weight.shape)}"
            )
        # read the registry directly (attribute access goes through Module.__getattr__, a few us a step)
        params = self._parameters
        weight = params["weight"] if "weight" in params else self.weight
        bias = params["bias"] if "bias" in params else self.bias
        return linear(x, weight, bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def get_config(self) -> dict:
        return make_config(self, in_features=self.in_features, out_features=self.out_features,
                           bias=self.bias is not None)


@register_config
class Maxout(Module):
    """Maxout unit: k affine pieces per output, y_j = max_i (x W_ji^T + b_ji).

    ``weight`` has shape (out_features * k, in_features), rows j*k .. j*k + k - 1 being output j's
    pieces. Default init: as a ``Linear(in_features, out_features * k)``.
    """

    def __init__(self, in_features: int, out_features: int, k: int = 2, bias: bool = True, dtype=None) -> None:
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features", "Maxout")
        self.out_features = _positive_int(out_features, "out_features", "Maxout")
        if _positive_int(k, "k", "Maxout") < 1:
            raise ValueError(f"Maxout: k (the number of pieces) must be at least 1, got {k}")
        self.k = int(k)
        dtype = backend.as_dtype(dtype) or backend.get_default_dtype()
        self.weight = Parameter(backend.empty((self.out_features * self.k, self.in_features), dtype))
        if bias:
            self.bias = Parameter(backend.empty(self.out_features * self.k, dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    reset_parameters = Linear.reset_parameters

    def forward(self, input: Tensor) -> Tensor:
        x = _as_input(input)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self.layer_name} ({self.extra_repr()}): got input of shape {tuple(x.shape)}, "
                f"expected shape (..., {self.in_features})"
            )
        return F.maxout(x, self.weight, self.bias, self.k)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, k={self.k}, "
                f"bias={self.bias is not None}")

    def get_config(self) -> dict:
        return make_config(self, in_features=self.in_features, out_features=self.out_features, k=self.k,
                           bias=self.bias is not None)


@register_config
class Flatten(Module):
    """Merge dimensions start_dim..end_dim (by default all but the batch dimension)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, input: Tensor) -> Tensor:
        return _as_input(input).flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def get_config(self) -> dict:
        return make_config(self, start_dim=self.start_dim, end_dim=self.end_dim)


@register_config
class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size`` (e.g. 784 -> (1, 28, 28))."""

    def __init__(self, dim: int, unflattened_size) -> None:
        super().__init__()
        self.dim = int(dim)
        self.unflattened_size = tuple(int(n) for n in unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        x = _as_input(input)
        d = self.dim % max(x.ndim, 1)
        sizes = self.unflattened_size
        known = math.prod(n for n in sizes if n != -1)
        if x.ndim == 0 or (-1 not in sizes and known != x.shape[d]) or (known and x.shape[d] % known):
            raise ValueError(
                f"{self.layer_name}: cannot split dimension {self.dim} of an input of shape {tuple(x.shape)} "
                f"into {sizes}"
            )
        return x.unflatten(d, sizes)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"

    def get_config(self) -> dict:
        return make_config(self, dim=self.dim, unflattened_size=list(self.unflattened_size))


@register_config
class Dropout(Module):
    """During training zero each entry with probability p and scale the rest by 1/(1-p); identity in
    ``eval()`` mode. Masks come from the package generator (``cr.manual_seed``)."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: probability p must be between 0 and 1, got {p!r}")
        self.p = float(p)
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(_as_input(input), self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"

    def get_config(self) -> dict:
        return make_config(self, p=self.p)
