"""The functional forms of the layers, activations and losses (PyTorch's ``torch.nn.functional``).

>>> import chainrule.nn.functional as F
>>> F.relu(cr.tensor([-1.0, 2.0]))
tensor([0., 2.])
"""

from __future__ import annotations

import numpy as np

from .. import backend
from ..ops.activation import elu, gelu, hardtanh, leaky_relu, logsigmoid, prelu, selu, silu, softplus
from ..ops.conv import conv1d, conv2d
from ..ops.elementwise import relu, sigmoid, tanh
from ..ops.linalg import linear
from ..ops.loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    l1_loss,
    mse_loss,
    multi_margin_loss,
    nll_loss,
    smooth_l1_loss,
)
from ..ops.normalization import batch_norm
from ..ops.pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
)
from ..ops.reduce import log_softmax, softmax
from ..tensor import Tensor


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each entry with probability p and scale the rest by 1/(1-p) ("inverted" dropout, so the
    expected value is unchanged and evaluation needs no rescaling). Identity when not training.
    The mask is drawn from the package generator (``cr.manual_seed``)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability p must be between 0 and 1, got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    dtype = input._data.dtype
    keep = backend.generator().random(input.shape) >= p
    mask = keep.astype(dtype)
    mask *= dtype.type(1.0 / (1.0 - p))
    return input * Tensor._wrap(mask)


def maxout(input: Tensor, weight: Tensor, bias: Tensor | None, pieces: int) -> Tensor:
    """max over k affine pieces: the linear map gives out * k values per row, grouped as (out, k)."""
    z = linear(input, weight, bias)
    return z.reshape(z.shape[:-1] + (z.shape[-1] // pieces, pieces)).amax(dim=-1)


def relu6(input: Tensor) -> Tensor:
    return hardtanh(input, 0.0, 6.0)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices (int) to one-hot rows of length ``num_classes`` (int64, no gradient)."""
    idx = tensor._data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"one_hot: class indices must be integers, got {idx.dtype}")
    if num_classes < 0:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
        raise IndexError(f"one_hot: class index {bad} is out of range for {num_classes} classes")
    out = np.zeros(idx.shape + (num_classes,), dtype=np.int64)
    np.put_along_axis(out, idx[..., None].astype(np.int64), 1, axis=-1)
    return Tensor._wrap(out)


__all__ = [
    "linear", "dropout", "maxout", "relu", "relu6", "sigmoid", "tanh", "leaky_relu", "prelu", "elu",
    "gelu", "silu", "softplus", "softmax", "log_softmax", "logsigmoid", "hardtanh", "selu", "one_hot",
    "cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss",
    "l1_loss", "huber_loss", "smooth_l1_loss", "multi_margin_loss",
    "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "batch_norm", "dropout2d",
]


from .conv import dropout2d  # noqa: E402 - nn.conv imports this package's siblings first

# isort: split
from .normalization import group_norm, layer_norm  # noqa: E402
from .sparse import embedding  # noqa: E402

__all__ += ["embedding", "layer_norm", "group_norm"]
