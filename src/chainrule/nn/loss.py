"""Loss layers: ``criterion = CrossEntropyLoss(); loss = criterion(logits, targets)``.

Each wraps a function of ``chainrule.ops.loss`` and takes ``reduction='mean'|'sum'|'none'``.
Class weights and ``pos_weight`` are buffers (saved in ``state_dict`` under PyTorch's names).
"""

from __future__ import annotations

import numpy as np

from ..ops import loss as L
from ..tensor import Tensor
from .config import make_config, register_config
from .module import Module


def _buffer(value) -> Tensor | None:
    if value is None:
        return None
    if isinstance(value, Tensor):
        return value.detach()
    arr = np.asarray(value)
    return Tensor(arr.astype(np.float32) if arr.dtype.kind in "iub" else arr)


def _as_list(t: Tensor | None):
    return None if t is None else t._data.tolist()


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        L._check_reduction(reduction, type(self).__name__)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""

    def get_config(self) -> dict:
        return make_config(self, reduction=self.reduction)


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", _buffer(weight))


@register_config
class L1Loss(_Loss):
    """|input - target|, averaged (or summed, or per element)."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L.l1_loss(input, target, self.reduction)


@register_config
class MSELoss(_Loss):
    """(input - target)^2, averaged (or summed, or per element)."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L.mse_loss(input, target, self.reduction)


@register_config
class HuberLoss(_Loss):
    """Quadratic for |d| <= delta, linear beyond: 0.5 d^2 or delta (|d| - delta / 2)."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        if delta <= 0:
            raise ValueError(f"HuberLoss: delta must be positive, got {delta}")
        self.delta = float(delta)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L.huber_loss(input, target, self.reduction, self.delta)

    def get_config(self) -> dict:
        return make_config(self, reduction=self.reduction, delta=self.delta)


@register_config
class SmoothL1Loss(_Loss):
    """Huber loss divided by beta."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = float(beta)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L.smooth_l1_loss(input, target, self.reduction, self.beta)

    def get_config(self) -> dict:
        return make_config(self, reduction=self.reduction, beta=self.beta)


@register_config
class BCELoss(_WeightedLoss):
    """-w (t log p + (1 - t) log(1 - p)) for probabilities p (logs clamped at -100, as in PyTorch)."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L.binary_cross_entropy(input, target, self.weight, self.reduction)

    def get_config(self) -> dict:
        return make_config(self, weight=_as_list(self.weight), reduction=self.reduction)


@register_config
class BCEWithLogitsLoss(_WeightedLoss):
    """Sigmoid and binary cross-entropy in one stable step, on raw scores (logits)."""

    def __init__(self, weight=None, reduction: str = "mean", pos_weight=None) -> None:
        super().__init__(weight, reduction)
        self.register_buffer("pos_weight", _buffer(pos_weight))

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)

    def get_config(self) -> dict:
        return make_config(self, weight=_as_list(self.weight), reduction=self.reduction,
                           pos_weight=_as_list(self.pos_weight))


@register_config
class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy on logits, fused through log-sum-exp; targets are class indices or class
    probabilities. See :func:`chainrule.nn.functional.cross_entropy`.

    >>> criterion = cr.nn.CrossEntropyLoss()
    >>> round(criterion(cr.zeros(2, 4), cr.tensor([1, 3])).item(), 4)  # log 4
    1.3863
    """

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)

    def extra_repr(self) -> str:
        parts = [super().extra_repr()] if self.reduction != "mean" else []
        if self.label_smoothing:
            parts.append(f"label_smoothing={self.label_smoothing}")
        return ", ".join(parts)

    def get_config(self) -> dict:
        return make_config(self, weight=_as_list(self.weight), ignore_index=self.ignore_index,
                           reduction=self.reduction, label_smoothing=self.label_smoothing)


@register_config
class NLLLoss(_WeightedLoss):
    """-w_y input[y] for log-probabilities (pair it with LogSoftmax)."""

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(weight, reduction)
        self.ignore_index = int(ignore_index)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)

    def get_config(self) -> dict:
        return make_config(self, weight=_as_list(self.weight), ignore_index=self.ignore_index,
                           reduction=self.reduction)


@register_config
class MultiMarginLoss(_WeightedLoss):
    """Multi-class hinge loss: sum_{i != y} w_y max(0, margin - x_y + x_i)^p / C, p in {1, 2}."""

    def __init__(self, p: int = 1, margin: float = 1.0, weight=None, reduction: str = "mean") -> None:
        super().__init__(weight, reduction)
        if p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: only p = 1 and p = 2 are supported, got {p}")
        self.p, self.margin = int(p), float(margin)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return L.multi_margin_loss(input, target, self.p, self.margin, self.weight, self.reduction)

    def get_config(self) -> dict:
        return make_config(self, p=self.p, margin=self.margin, weight=_as_list(self.weight),
                           reduction=self.reduction)
