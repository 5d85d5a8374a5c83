"""Loss functions as fused ops: cross-entropy through log-sum-exp, binary cross-entropy (on
probabilities and on logits), and the simpler regression and margin losses.

The fused ops compute the loss in one NumPy pass and write their backward in closed form with Tensor
ops (so second derivatives work). ``reduction`` is ``'mean'``, ``'sum'`` or ``'none'`` everywhere, with
PyTorch's meaning, including its weighted mean for cross-entropy: sum(w_y * loss) / sum(w_y).
"""

from __future__ import annotations

import numpy as np

from .. import autograd
from ..errors import LossTargetError
from ..tensor import Tensor
from .activation import _softplus_array, softplus
from .elementwise import _floating, _stable_sigmoid, abs, clamp, log, relu, sigmoid, where
from .function import Function
from .indexing import gather
from .reduce import log_softmax, softmax

_wrap = Tensor._wrap
_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _as_tensor(value, dtype=None) -> Tensor:
    if isinstance(value, Tensor):
        return value
    arr = np.asarray(value)
    if dtype is not None and arr.dtype.kind == "f":
        arr = arr.astype(dtype)
    return _wrap(arr)


def _check_same_shape(input: Tensor, target: Tensor, op: str) -> None:
    if input._data.shape != target._data.shape:
        raise ValueError(
            f"{op}: target shape {tuple(target.shape)} does not match input shape {tuple(input.shape)}"
        )


def _float_pair(input, target, op: str) -> tuple[Tensor, Tensor]:
    x = _floating(_as_tensor(input))
    t_arr = target._data if isinstance(target, Tensor) else np.asarray(target)
    if t_arr.dtype.kind in "iu" and x._data.ndim >= 2 and t_arr.shape == x._data.shape[:1] + x._data.shape[2:]:
        raise LossTargetError(
            f"{op}: the targets of shape {t_arr.shape} are class indices but {op} compares with an output of "
            f"shape {tuple(x.shape)}; one-hot encode them (cr.nn.functional.one_hot) or use cross_entropy"
        )
    t = _as_tensor(target, x._data.dtype)
    if t._data.dtype != x._data.dtype:
        t = t.to(x._data.dtype)
    _check_same_shape(x, t, op)
    return x, t


# ---- cross-entropy ---------------------------------------------------------------------------------
class CrossEntropy(Function):
    """loss_n = -sum_c a_nc log_softmax(x_n)_c with fixed coefficients a (one node).

    For class indices a_nc = (1 - eps) w_y [c = y] + eps/C w_c (zero where y is ignored); for class
    probabilities a_nc = w_c ((1 - eps) t_nc + eps/C). Then d loss_n / d x_n = softmax(x_n) sum_c a_nc - a_n,
    the familiar "softmax minus target". ``scale`` is 1/sum(w_y) for the mean, 1 for the sum.
    """

    __slots__ = ("coef", "axis", "reduction", "scale", "eps", "class_weight", "probs")
    saves = (0,)

    def __init__(self, coef, axis, reduction, scale, eps=0.0, class_weight=None):
        self.coef, self.axis, self.reduction, self.scale = coef, axis, reduction, scale
        self.eps, self.class_weight = eps, class_weight

    def forward(self, logits, *target):
        coef = self.coef if not target else self._target_coef(target[0])
        shift = np.max(logits, axis=self.axis, keepdims=True)
        shift = np.where(np.isfinite(shift), shift, 0)
        shifted = logits - shift
        e = np.exp(shifted)
        total = np.sum(e, axis=self.axis, keepdims=True)
        self.probs = e / total  # kept for the first-order backward
        lse = np.log(total)
        # sum_c a_c (lse - shifted_c): finite even for logits of 1e4 (the shift cancels exactly)
        per_sample = np.sum(coef * (lse - shifted), axis=self.axis)
        if self.reduction == "none":
            return per_sample
        loss = np.sum(per_sample)
        if self.reduction == "sum":
            return loss
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(loss * self.scale, dtype=logits.dtype)

    def _target_coef(self, t):
        if self.eps:
            t = t * (1.0 - self.eps) + self.eps / t.shape[self.axis]
        return t * self.class_weight if self.class_weight is not None else t

    def _upstream(self, grad: Tensor, ndim: int) -> Tensor:
        if self.reduction == "none":
            return grad.unsqueeze(self.axis)
        g = grad * self.scale if self.reduction == "mean" else grad
        return g.reshape((1,) * ndim)

    def backward(self, grad):
        logits = self.inputs[0]
        nd = logits._data.ndim
        g = self._upstream(grad, nd)
        if len(self.inputs) == 1:
            coef = self.coef
            total = coef.sum(axis=self.axis, keepdims=True)
            if not autograd._grad_mode.enabled:  # first order: one NumPy expression, no graph to record
                return (_wrap((self.probs * total - coef) * g._data),)
            return (g * (softmax(logits, self.axis) * _wrap(total) - _wrap(coef)),)
        target = self.inputs[1]
        coef = self._target_coef(target)
        gx = gt = None
        if logits.requires_grad:
            probs = _wrap(self.probs) if not autograd._grad_mode.enabled else softmax(logits, self.axis)
            gx = g * (probs * coef.sum(dim=self.axis, keepdim=True) - coef)
        if target.requires_grad:
            # d loss / d t_c = -(1 - eps) w_c log_softmax(x)_c
            local = log_softmax(logits, self.axis) * (-(1.0 - self.eps))
            if self.class_weight is not None:
                local = local * _wrap(self.class_weight)
            gt = g * local
        return gx, gt

    def backward_array(self, grad):
        g = self._upstream_array(grad, self.probs.ndim)
        if len(self.inputs) == 1:
            coef = self.coef
            return ((self.probs * coef.sum(axis=self.axis, keepdims=True) - coef) * g,)
        logits, target = self.inputs
        coef = self._target_coef(target._data)
        gx = gt = None
        if logits.requires_grad:
            gx = g * (self.probs * coef.sum(axis=self.axis, keepdims=True) - coef)
        if target.requires_grad:
            local = _log_softmax_array(logits._data, self.axis) * (-(1.0 - self.eps))
            if self.class_weight is not None:
                local = local * self.class_weight
            gt = g * local
        return gx, gt

    def _upstream_array(self, grad, ndim: int):
        if self.reduction == "none":
            return np.expand_dims(grad, self.axis)
        g = grad * self.scale if self.reduction == "mean" else grad
        return np.reshape(g, (1,) * ndim)


def _log_softmax_array(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    shifted -= np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return shifted


class ClassIndexCrossEntropy(Function):
    """cross_entropy's common case as one node: 2-D logits, class indices, no class weight, no label
    smoothing, the mean over the targets that are not ignored.

    loss = 1/N sum_n (logsumexp(x_n) - x_n[y_n]);  d loss / d x_n = (softmax(x_n) - onehot(y_n)) / N,
    N the number of counted targets (the rows of ignored ones get zero). The forward keeps the softmax
    for the first-order backward.
    """

    __slots__ = ("target", "valid", "scale", "probs")
    saves = (0,)

    def __init__(self, target: np.ndarray, valid: np.ndarray | None, scale: float):
        # target: a class index per row (0 where ignored); valid: which rows count (None: all)
        self.target, self.valid, self.scale = target, valid, scale

    def forward(self, logits):
        # (array methods rather than np.max/np.sum: their wrappers cost a microsecond a call)
        shift = logits.max(axis=1)
        if not np.isfinite(shift).all():
            shift = np.where(np.isfinite(shift), shift, 0)
        shifted = logits - shift[:, None]
        probs = np.exp(shifted)
        total = probs.sum(axis=1)
        probs /= total[:, None]
        self.probs = probs
        per_sample = np.log(total) - shifted[np.arange(len(self.target)), self.target]
        if self.valid is not None:
            per_sample = np.where(self.valid, per_sample, 0)
        with np.errstate(invalid="ignore"):
            return np.asarray(per_sample.sum() * self.scale, dtype=logits.dtype)

    def _onehot(self) -> np.ndarray:
        """onehot(y), rows of ignored targets zero."""
        onehot = np.zeros_like(self.probs)
        onehot[np.arange(len(self.target)), self.target] = 1.0
        if self.valid is not None:
            onehot *= self.valid[:, None]
        return onehot

    def backward(self, grad):
        probs = softmax(self.inputs[0], 1)
        if self.valid is not None:
            probs = probs * _wrap(self.valid[:, None].astype(self.probs.dtype))
        return ((grad * self.scale) * (probs - _wrap(self._onehot())),)

    def backward_array(self, grad):
        delta = self.probs.copy()
        delta[np.arange(len(self.target)), self.target] -= 1.0
        if self.valid is not None:
            delta *= self.valid[:, None]
        delta *= grad * self.scale
        return (delta,)


def _class_index_cross_entropy(x: Tensor, target: np.ndarray, ignore_index: int) -> Tensor:
    """The fused node for (N, C) logits and N class indices; range checks in two reductions."""
    n, num_classes = x._data.shape
    lo, hi = int(target.min()), int(target.max())
    if lo >= 0 and hi < num_classes and not (lo <= ignore_index <= hi and (target == ignore_index).any()):
        return ClassIndexCrossEntropy(target.copy(), None, 1.0 / n).apply(x)
    valid = _check_indices(target, num_classes, ignore_index, "cross_entropy")
    count = int(np.count_nonzero(valid))
    scale = 1.0 / count if count else float("nan")
    return ClassIndexCrossEntropy(np.where(valid, target, 0), valid, scale).apply(x)


def _class_weight(weight, num_classes: int, axis: int, ndim: int, dtype, op: str):
    if weight is None:
        return None
    w = weight._data if isinstance(weight, Tensor) else np.asarray(weight)
    if w.shape != (num_classes,):
        raise ValueError(f"{op}: weight must have shape ({num_classes},) (one per class), got {w.shape}")
    shape = [1] * ndim
    shape[axis] = num_classes
    return w.astype(dtype, copy=False).reshape(shape)


def _class_axis(x: Tensor, op: str) -> int:
    if x._data.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension, got a 0-d tensor")
    return 1 if x._data.ndim >= 2 else 0


def _check_indices(target: np.ndarray, num_classes: int, ignore_index: int, op: str) -> np.ndarray:
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: class-index targets must be integers (int64), got {target.dtype}; "
            "class probabilities must have the input's shape"
        )
    valid = target != ignore_index
    bad = valid & ((target < 0) | (target >= num_classes))
    if bad.any():
        index = int(target[bad].reshape(-1)[0])
        raise IndexError(
            f"{op}: target class index {index} is out of range for {num_classes} classes "
            f"(expected 0 to {num_classes - 1})"
        )
    return valid


def _index_shape_check(x: Tensor, target: np.ndarray, axis: int, op: str) -> None:
    expected = x._data.shape[:axis] + x._data.shape[axis + 1:]
    if target.shape != expected:
        raise ValueError(
            f"{op}: target of shape {target.shape} does not fit input of shape {tuple(x.shape)} "
            f"(expected class indices of shape {expected} or class probabilities of shape {tuple(x.shape)})"
        )


def cross_entropy(
    input: Tensor,
    target,
    weight=None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy between softmax(input) along dimension 1 and the target, as one fused node.

    ``target`` holds class indices (shape of input without dimension 1, int64) or class probabilities
    (same shape as input). ``weight`` rescales each class; ``ignore_index`` entries contribute nothing
    (and are left out of the mean); ``label_smoothing`` eps mixes the target with the uniform
    distribution: (1 - eps) target + eps / C. With ``reduction='mean'`` and class indices the result is
    sum_n w_{y_n} loss_n / sum_n w_{y_n}, as in PyTorch.

    >>> logits = cr.tensor([[1e4, 0.0, -1e4]])
    >>> cr.nn.functional.cross_entropy(logits, cr.tensor([0])).item()
    0.0
    """
    op = "cross_entropy"
    _check_reduction(reduction, op)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    x = _floating(_as_tensor(input))
    axis = _class_axis(x, op)
    num_classes = x._data.shape[axis]
    dtype = x._data.dtype
    t_arr = target._data if isinstance(target, Tensor) else np.asarray(target)
    if (weight is None and not label_smoothing and reduction == "mean" and x._data.ndim == 2
            and t_arr.dtype.kind in "iu" and t_arr.shape == x._data.shape[:1] and t_arr.size):
        return _class_index_cross_entropy(x, t_arr, ignore_index)
    w = _class_weight(weight, num_classes, axis, x._data.ndim, dtype, op)

    if t_arr.dtype.kind == "f":
        if t_arr.shape != x._data.shape and t_arr.shape == x._data.shape[:axis] + x._data.shape[axis + 1:]:
            raise LossTargetError(
                f"{op}: targets of shape {t_arr.shape} look like class indices but are {t_arr.dtype}; class "
                f"indices must be integers (int64: y.long()), class probabilities must have the input's "
                f"shape {tuple(x.shape)}"
            )
        if ignore_index != -100:
            raise ValueError(f"{op}: ignore_index is not supported with class-probability targets")
        t = _as_tensor(target, dtype)
        if t._data.dtype != dtype:
            t = t.to(dtype)
        _check_same_shape(x, t, op)
        count = x._data.size // max(num_classes, 1)
        scale = 1.0 / count if count else float("nan")
        fn = CrossEntropy(None, axis, reduction, scale, float(label_smoothing), w)
        return fn.apply(x, t)

    _index_shape_check(x, t_arr, axis, op)
    valid = _check_indices(t_arr, num_classes, ignore_index, op)
    safe = np.where(valid, t_arr, 0)
    eps = float(label_smoothing)
    onehot = np.zeros(x._data.shape, dtype=dtype)
    if x._data.ndim == 2:
        onehot[np.arange(safe.shape[0]), safe] = 1.0
    else:
        np.put_along_axis(onehot, np.expand_dims(safe, axis), 1.0, axis=axis)
    coef = onehot * (1.0 - eps)
    if eps:
        coef += eps / num_classes
    if w is not None:
        coef *= w
    coef *= np.expand_dims(valid, axis).astype(dtype)
    if w is not None:
        denominator = float(np.sum(np.take(w.reshape(-1), safe) * valid))
    else:
        denominator = float(np.sum(valid))
    with np.errstate(divide="ignore"):
        scale = 1.0 / denominator if denominator else float("nan")
    return CrossEntropy(coef, axis, reduction, scale).apply(x)


def nll_loss(input: Tensor, target, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood: -w_y input[n, y] for log-probabilities ``input`` (e.g. log_softmax).

    The mean divides by sum_n w_{y_n} over targets that are not ``ignore_index``, as in PyTorch.
    """
    op = "nll_loss"
    _check_reduction(reduction, op)
    x = _floating(_as_tensor(input))
    axis = _class_axis(x, op)
    num_classes = x._data.shape[axis]
    t_arr = target._data if isinstance(target, Tensor) else np.asarray(target)
    _index_shape_check(x, t_arr, axis, op)
    valid = _check_indices(t_arr, num_classes, ignore_index, op)
    safe = np.where(valid, t_arr, 0).astype(np.int64)
    picked = gather(x, axis, _wrap(np.expand_dims(safe, axis))).squeeze(axis)
    per_class = np.ones(num_classes, x._data.dtype)
    if weight is not None:
        per_class = _class_weight(weight, num_classes, 0, 1, x._data.dtype, op)
    w = np.take(per_class, safe) * valid
    loss = picked * _wrap(-w.astype(x._data.dtype))
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    total = float(w.sum())
    return loss.sum() / (total if total else float("nan"))


# ---- binary cross-entropy --------------------------------------------------------------------------
class BinaryCrossEntropy(Function):
    """-w (t log x + (1 - t) log(1 - x)), each log clamped at -100 as in PyTorch (so x = 0 or 1 stays
    finite). d/dx = w (x - t) / max(x (1 - x), 1e-12); d/dt = w (log(1 - x) - log x)."""

    __slots__ = ("weight",)
    saves = (0, 1)

    def __init__(self, weight):
        self.weight = weight

    def forward(self, x, t):
        with np.errstate(divide="ignore"):
            log_x = np.maximum(np.log(x), -100.0)
            log_1mx = np.maximum(np.log1p(-x), -100.0)
        out = -(t * log_x + (1.0 - t) * log_1mx)
        if self.weight is not None:
            out = out * self.weight
        return out.astype(x.dtype, copy=False)

    def backward(self, grad):
        x, t = self.inputs
        g = grad if self.weight is None else grad * _wrap(self.weight)
        gx = gt = None
        if x.requires_grad:
            gx = g * (x - t) / clamp(x * (1.0 - x), min=1e-12)
        if t.requires_grad:
            gt = g * (clamp(log(1.0 - x), min=-100.0) - clamp(log(x), min=-100.0))
        return gx, gt


def binary_cross_entropy(input: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy between probabilities ``input`` in [0, 1] and targets in [0, 1]."""
    op = "binary_cross_entropy"
    _check_reduction(reduction, op)
    x, t = _float_pair(input, target, op)
    xd = x._data
    if xd.size and (np.nanmin(xd) < 0 or np.nanmax(xd) > 1 or np.isnan(xd).any()):
        raise ValueError(
            f"{op}: input must hold probabilities in [0, 1] (got values from {float(np.nanmin(xd)):.4g} to "
            f"{float(np.nanmax(xd)):.4g}); use binary_cross_entropy_with_logits on raw scores"
        )
    w = None
    if weight is not None:
        w = (weight._data if isinstance(weight, Tensor) else np.asarray(weight)).astype(xd.dtype, copy=False)
        np.broadcast_shapes(w.shape, xd.shape)
    return _reduce(BinaryCrossEntropy(w).apply(x, t), reduction)


class BinaryCrossEntropyWithLogits(Function):
    """(1 - t) x + L softplus(-x), L = 1 + (pos_weight - 1) t: BCE on sigmoid(x) without forming it.

    d/dx = (1 - t) - L sigmoid(-x)   (= sigmoid(x) - t when pos_weight = 1)
    d/dt = -x + (pos_weight - 1) softplus(-x)
    """

    __slots__ = ("pos_weight", "weight")
    saves = (0, 1)

    def __init__(self, pos_weight, weight):
        self.pos_weight, self.weight = pos_weight, weight

    def forward(self, x, t):
        soft = _softplus_array(-x)
        if self.pos_weight is None:
            out = (1.0 - t) * x + soft
        else:
            out = (1.0 - t) * x + (1.0 + (self.pos_weight - 1.0) * t) * soft
        if self.weight is not None:
            out = out * self.weight
        return out.astype(x.dtype, copy=False)

    def backward(self, grad):
        x, t = self.inputs
        g = grad if self.weight is None else grad * _wrap(self.weight)
        pw = None if self.pos_weight is None else _wrap(self.pos_weight)
        gx = gt = None
        if x.requires_grad:
            if pw is None:
                gx = g * (sigmoid(x) - t)
            else:
                gx = g * ((1.0 - t) - (1.0 + (pw - 1.0) * t) * sigmoid(-x))
        if t.requires_grad:
            gt = g * (-x) if pw is None else g * ((pw - 1.0) * softplus(-x) - x)
        return gx, gt

    def backward_array(self, grad):
        x, t = self.inputs[0]._data, self.inputs[1]._data
        g = grad if self.weight is None else grad * self.weight
        pw = self.pos_weight
        gx = gt = None
        if self.inputs[0].requires_grad:
            if pw is None:
                gx = g * (_stable_sigmoid(x) - t)
            else:
                gx = g * ((1.0 - t) - (1.0 + (pw - 1.0) * t) * _stable_sigmoid(-x))
        if self.inputs[1].requires_grad:
            gt = g * (-x) if pw is None else g * ((pw - 1.0) * _softplus_array(-x) - x)
        return gx, gt


def binary_cross_entropy_with_logits(
    input: Tensor, target, weight=None, reduction: str = "mean", pos_weight=None
) -> Tensor:
    """BCE of sigmoid(input) and target in one stable node; ``pos_weight`` weighs positive examples
    (broadcast along the last dimension, one per class)."""
    op = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, op)
    x, t = _float_pair(input, target, op)
    dt = x._data.dtype

    def arr(v):
        return None if v is None else (v._data if isinstance(v, Tensor) else np.asarray(v)).astype(dt)

    pw, w = arr(pos_weight), arr(weight)
    for name, v in (("pos_weight", pw), ("weight", w)):
        if v is not None:
            try:
                np.broadcast_shapes(v.shape, x._data.shape)
            except ValueError:
                raise ValueError(
                    f"{op}: {name} of shape {v.shape} cannot be broadcast to the input shape {tuple(x.shape)}"
                ) from None
    return _reduce(BinaryCrossEntropyWithLogits(pw, w).apply(x, t), reduction)


# ---- regression losses -----------------------------------------------------------------------------
def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error: (input - target)^2, reduced."""
    _check_reduction(reduction, "mse_loss")
    x, t = _float_pair(input, target, "mse_loss")
    diff = x - t
    return _reduce(diff * diff, reduction)


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean absolute error: |input - target|, reduced (subgradient 0 at equality, as in PyTorch)."""
    _check_reduction(reduction, "l1_loss")
    x, t = _float_pair(input, target, "l1_loss")
    return _reduce(abs(x - t), reduction)


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| <= delta, delta (|d| - delta/2) beyond, d = input - target."""
    _check_reduction(reduction, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    x, t = _float_pair(input, target, "huber_loss")
    d = x - t
    inside = _wrap(np.abs(d._data) < delta)
    # the quadratic branch sees d clamped to [-delta, delta] so both branches stay finite and smooth
    near = d.clamp(-delta, delta)
    loss = where(inside, 0.5 * near * near, delta * (abs(d) - 0.5 * delta))
    return _reduce(loss, reduction)


def smooth_l1_loss(input: Tensor, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Huber loss divided by beta (PyTorch's SmoothL1Loss); beta = 0 gives the L1 loss."""
    if beta == 0:
        return l1_loss(input, target, reduction)
    return huber_loss(input, target, reduction, beta) / beta


# ---- margin loss -----------------------------------------------------------------------------------
def multi_margin_loss(
    input: Tensor, target, p: int = 1, margin: float = 1.0, weight=None, reduction: str = "mean"
) -> Tensor:
    """Multi-class hinge loss: loss_n = sum_{i != y} w_y max(0, margin - x_y + x_i)^p / C."""
    op = "multi_margin_loss"
    _check_reduction(reduction, op)
    if p not in (1, 2):
        raise ValueError(f"{op}: only p = 1 and p = 2 are supported, got {p}")
    x = _floating(_as_tensor(input))
    if x._data.ndim not in (1, 2):
        raise ValueError(f"{op}: input must be (C,) or (N, C), got shape {tuple(x.shape)}")
    x2 = x if x._data.ndim == 2 else x.unsqueeze(0)
    n, num_classes = x2._data.shape
    t_arr = np.asarray(target._data if isinstance(target, Tensor) else target).reshape(-1)
    if t_arr.shape != (n,):
        raise ValueError(f"{op}: target of shape {np.shape(target)} does not fit input of shape {tuple(x.shape)}")
    _check_indices(t_arr, num_classes, -(10**18), op)
    idx = t_arr.astype(np.int64).reshape(n, 1)
    x_y = gather(x2, 1, _wrap(idx))
    hinge = relu(margin - x_y + x2)
    if p == 2:
        hinge = hinge * hinge
    others = np.ones((n, num_classes), x._data.dtype)
    np.put_along_axis(others, idx, 0.0, axis=1)
    if weight is not None:
        w = _class_weight(weight, num_classes, 0, 1, x._data.dtype, op)
        others *= np.take(w, idx)
    loss = (hinge * _wrap(others)).sum(dim=1) / float(num_classes)
    if x._data.ndim == 1:
        loss = loss.squeeze(0)
    return _reduce(loss, reduction)


__all__ = [
    "cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss",
    "l1_loss", "huber_loss", "smooth_l1_loss", "multi_margin_loss",
]
