"""Reductions: sum, mean, var/std, max/min, norm, logsumexp, softmax, log_softmax, argmax.

``dim`` is an int, a tuple of ints or None (all dimensions); ``keepdim`` keeps reduced dimensions
with size 1. The backward of a reduction broadcasts the upstream gradient back over what was reduced.
"""

from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from ..tensor import Tensor
from .elementwise import _floating, exp, log, where
from .function import Function

_wrap = Tensor._wrap

values_indices = namedtuple("values_indices", ["values", "indices"])


def _axes(dim, ndim: int, op: str):
    """Normalise ``dim`` to a tuple of non-negative axes (None means all)."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    n = builtins.max(ndim, 1)
    out = []
    for d in dims:
        if not -n <= d < n:
            raise IndexError(
                f"{op}: dimension {d} is out of range for a tensor with {ndim} dimensions "
                f"(expected -{n} to {n - 1})"
            )
        out.append(d % n if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dimension {dim} appears more than once")
    return tuple(out) if ndim else None


def _kept_shape(shape: tuple, axes) -> tuple:
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _spread(grad: Tensor, shape: tuple, axes, keepdim: bool) -> Tensor:
    """Broadcast a reduction's upstream gradient back to the input's shape."""
    if not keepdim:
        grad = grad.reshape(_kept_shape(shape, axes))
    return grad.expand(shape)


def _spread_array(grad: np.ndarray, shape: tuple, axes, keepdim: bool) -> np.ndarray:
    """:func:`_spread` on a plain array (a read-only broadcast view, as ``expand`` gives)."""
    if not keepdim:
        grad = np.reshape(grad, _kept_shape(shape, axes))
    return np.broadcast_to(grad, shape)


class Sum(Function):
    __slots__ = ("axes", "keepdim")

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, a):
        return np.sum(a, axis=self.axes, keepdims=self.keepdim)

    def backward(self, grad):
        return (_spread(grad, self.inputs[0]._data.shape, self.axes, self.keepdim),)

    def backward_array(self, grad):
        return (_spread_array(grad, self.inputs[0]._data.shape, self.axes, self.keepdim),)


class Mean(Function):
    __slots__ = ("axes", "keepdim")

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, a):
        return np.mean(a, axis=self.axes, keepdims=self.keepdim)

    def backward(self, grad):
        shape = self.inputs[0]._data.shape
        count = int(np.prod([shape[i] for i in self.axes])) if self.axes is not None else int(np.prod(shape))
        return (_spread(grad / float(builtins.max(count, 1)), shape, self.axes, self.keepdim),)

    def backward_array(self, grad):
        shape = self.inputs[0]._data.shape
        count = int(np.prod([shape[i] for i in self.axes])) if self.axes is not None else int(np.prod(shape))
        return (_spread_array(grad / float(builtins.max(count, 1)), shape, self.axes, self.keepdim),)


def sum(input: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:  # noqa: A001
    """Sum over ``dim`` (all dimensions when None). Bool and int tensors sum to int64."""
    x = input.to(dtype) if dtype is not None else input
    axes = _axes(dim, x._data.ndim, "sum")
    if x._data.dtype.kind in "biu":
        return _wrap(np.sum(x._data, axis=axes, keepdims=keepdim, dtype=np.int64))
    return Sum(axes, keepdim).apply(x)


def mean(input: Tensor, dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """Mean over ``dim``; only floating tensors, as in PyTorch."""
    x = input.to(dtype) if dtype is not None else input
    if x._data.dtype.kind != "f":
        raise TypeError(f"mean: input dtype must be floating point, got {x.dtype}; use .float() first")
    return Mean(_axes(dim, x._data.ndim, "mean"), keepdim).apply(x)


def var(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Variance, unbiased (``correction=1``) by default as in PyTorch."""
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    x = _floating(input)
    axes = _axes(dim, x._data.ndim, "var")
    n = x._data.size if axes is None else int(np.prod([x._data.shape[i] for i in axes]))
    centred = x - x.mean(dim=axes, keepdim=True)
    return (centred * centred).sum(dim=axes, keepdim=keepdim) / float(builtins.max(n - correction, 0))


class _StdFromVar(Function):
    """sqrt(var) whose gradient is 0 where var = 0 (a constant input), as PyTorch's std gives."""

    __slots__ = ()
    save_output = True

    def forward(self, v):
        return np.sqrt(v)

    def backward(self, grad):
        out = self.output
        zero = out == 0
        return (where(zero, 0.0, grad / (2.0 * where(zero, 1.0, out))),)  # d sqrt(v) = 1 / (2 sqrt v)


def std(input: Tensor, dim=None, unbiased=None, keepdim: bool = False, *, correction=None) -> Tensor:
    """Standard deviation: sqrt of :func:`var` (unbiased by default)."""
    return _StdFromVar().apply(var(input, dim, unbiased, keepdim, correction=correction))


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return var(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return std(input, dim, unbiased, keepdim, correction=correction), mean(input, dim, keepdim)


class _Extreme(Function):
    """amax/amin: the gradient is shared evenly among tied extremes, as in PyTorch."""

    __slots__ = ("axes", "keepdim")
    saves = (0,)
    save_output = True
    reduce = staticmethod(np.max)

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, a):
        if a.size == 0:
            raise ValueError(f"{self.op_name()}: cannot reduce an empty tensor")
        return self.reduce(a, axis=self.axes, keepdims=self.keepdim)

    def backward(self, grad):
        x = self.inputs[0]._data
        out = self.output._data
        if not self.keepdim:
            out = out.reshape(_kept_shape(x.shape, self.axes))
        hit = (x == out).astype(x.dtype)
        hit /= hit.sum(axis=self.axes, keepdims=True)
        return (_spread(grad, x.shape, self.axes, self.keepdim) * _wrap(hit),)


class Amax(_Extreme):
    __slots__ = ()
    reduce = staticmethod(np.max)


class Amin(_Extreme):
    __slots__ = ()
    reduce = staticmethod(np.min)


def amax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return Amax(_axes(dim, input._data.ndim, "amax"), keepdim).apply(input)


def amin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    return Amin(_axes(dim, input._data.ndim, "amin"), keepdim).apply(input)


def _max_min(input, dim, keepdim, other, largest: bool):
    name = "max" if largest else "min"
    if isinstance(dim, Tensor) or other is not None:
        from .elementwise import maximum, minimum

        other = dim if other is None else other
        return maximum(input, other) if largest else minimum(input, other)
    if dim is None:
        return amax(input) if largest else amin(input)
    (axis,) = _axes(dim, input._data.ndim, name) or (0,)
    if input._data.shape and input._data.shape[axis] == 0:
        raise ValueError(f"{name}: cannot reduce over an empty dimension {dim}")
    pick = np.argmax if largest else np.argmin
    idx = np.expand_dims(pick(input._data, axis=axis), axis) if input._data.ndim else np.zeros((), np.int64)
    if input._data.ndim == 0:
        return values_indices(input, _wrap(idx))
    from .indexing import gather

    values = gather(input, axis, _wrap(idx))
    if not keepdim:
        values = values.squeeze(axis)
        idx = idx.squeeze(axis)
    return values_indices(values, _wrap(idx.astype(np.int64, copy=False)))


def max(input: Tensor, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    """``max(x)`` is the largest value; ``max(x, dim)`` gives (values, indices); ``max(x, y)`` is maximum."""
    return _max_min(input, dim, keepdim, other, True)


def min(input: Tensor, dim=None, keepdim: bool = False, *, other=None):  # noqa: A001
    """``min(x)`` is the smallest value; ``min(x, dim)`` gives (values, indices); ``min(x, y)`` is minimum."""
    return _max_min(input, dim, keepdim, other, False)


def argmax(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if dim is None:
        return _wrap(np.asarray(np.argmax(input._data), dtype=np.int64))
    (axis,) = _axes(dim, input._data.ndim, "argmax")
    return _wrap(np.argmax(input._data, axis=axis, keepdims=keepdim).astype(np.int64, copy=False))


def argmin(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if dim is None:
        return _wrap(np.asarray(np.argmin(input._data), dtype=np.int64))
    (axis,) = _axes(dim, input._data.ndim, "argmin")
    return _wrap(np.argmin(input._data, axis=axis, keepdims=keepdim).astype(np.int64, copy=False))


def all(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return _wrap(np.all(input._data, axis=_axes(dim, input._data.ndim, "all"), keepdims=keepdim))


def any(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return _wrap(np.any(input._data, axis=_axes(dim, input._data.ndim, "any"), keepdims=keepdim))


def prod(input: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    """Product over ``dim``, as exp(sum(log|x|)) with the sign tracked (zeros handled exactly)."""
    x = input
    axes = _axes(dim, x._data.ndim, "prod")
    if not x.requires_grad or not np.all(x._data != 0):
        if x.requires_grad:
            raise ValueError("prod: the gradient of a product with zero entries is not supported")
        return _wrap(np.prod(x._data, axis=axes, keepdims=keepdim))
    sign = np.prod(np.sign(x._data), axis=axes, keepdims=keepdim)
    return exp(log(x.abs()).sum(dim=axes, keepdim=keepdim)) * _wrap(sign)


class Norm2(Function):
    __slots__ = ("axes", "keepdim")
    saves = (0,)
    save_output = True

    def __init__(self, axes, keepdim):
        self.axes, self.keepdim = axes, keepdim

    def forward(self, a):
        return np.sqrt(np.sum(a * a, axis=self.axes, keepdims=self.keepdim))

    def backward(self, grad):
        x = self.inputs[0]
        shape = x._data.shape
        out = self.output
        # d||x|| / dx = x / ||x||, taken as 0 at x = 0 (the subgradient PyTorch picks)
        safe = where(out == 0, 1.0, out)
        scale = where(out == 0, 0.0, grad / safe)
        return (_spread(scale, shape, self.axes, self.keepdim) * x,)


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False) -> Tensor:
    """Vector p-norm over ``dim`` (all elements when None): p = 2/'fro', 1, inf, or any positive p."""
    x = _floating(input)
    axes = _axes(dim, x._data.ndim, "norm")
    if p in ("fro", 2, 2.0):
        return Norm2(axes, keepdim).apply(x)
    if p in (1, 1.0):
        return x.abs().sum(dim=axes, keepdim=keepdim)
    if p in (float("inf"), "inf"):
        return amax(x.abs(), dim=axes, keepdim=keepdim)
    if isinstance(p, (int, float)) and p > 0:
        return (x.abs() ** p).sum(dim=axes, keepdim=keepdim) ** (1.0 / p)
    raise ValueError(f"norm: unsupported p={p!r}; use 'fro', 1, 2, inf or a positive number")


def logsumexp(input: Tensor, dim, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``dim``, shifted by the max so that large inputs do not overflow."""
    x = _floating(input)
    axes = _axes(dim, x._data.ndim, "logsumexp")
    shift = np.max(x._data, axis=axes, keepdims=True) if x._data.size else np.zeros(())
    shift = np.where(np.isfinite(shift), shift, 0).astype(x._data.dtype, copy=False)
    s = _wrap(shift)
    out = log(exp(x - s).sum(dim=axes, keepdim=True)) + s
    return out if keepdim else out.reshape(tuple(n for i, n in enumerate(out.shape) if axes is not None
                                                 and i not in axes))


class Softmax(Function):
    __slots__ = ("axis",)
    save_output = True

    def __init__(self, axis):
        self.axis = axis

    def forward(self, a):
        e = a - np.max(a, axis=self.axis, keepdims=True)
        np.exp(e, out=e)
        e /= np.sum(e, axis=self.axis, keepdims=True)
        return e

    def backward(self, grad):
        out = self.output
        # d softmax: s * (g - sum(g * s))
        return (out * (grad - (grad * out).sum(dim=self.axis, keepdim=True)),)

    def backward_array(self, grad):
        out = self.output._data
        return (out * (grad - (grad * out).sum(axis=self.axis, keepdims=True)),)


class LogSoftmax(Function):
    __slots__ = ("axis",)
    save_output = True

    def __init__(self, axis):
        self.axis = axis

    def forward(self, a):
        shifted = a - np.max(a, axis=self.axis, keepdims=True)
        shifted -= np.log(np.sum(np.exp(shifted), axis=self.axis, keepdims=True))
        return shifted

    def backward(self, grad):
        # d log_softmax: g - softmax * sum(g)
        return (grad - exp(self.output) * grad.sum(dim=self.axis, keepdim=True),)

    def backward_array(self, grad):
        return (grad - np.exp(self.output._data) * grad.sum(axis=self.axis, keepdims=True),)


def _softmax_axis(x: Tensor, dim, op: str) -> int:
    if dim is None:
        raise TypeError(f"{op}: dim is required (the dimension to normalise over, e.g. dim=-1)")
    return _axes(dim, x._data.ndim, op)[0] if x._data.ndim else None


def softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, computed stably."""
    x = _floating(input.to(dtype) if dtype is not None else input)
    return Softmax(_softmax_axis(x, dim, "softmax")).apply(x)


def log_softmax(input: Tensor, dim: int, dtype=None) -> Tensor:
    """x - logsumexp(x) along ``dim``, computed stably."""
    x = _floating(input.to(dtype) if dtype is not None else input)
    return LogSoftmax(_softmax_axis(x, dim, "log_softmax")).apply(x)


class Cumsum(Function):
    __slots__ = ("axis",)

    def __init__(self, axis):
        self.axis = axis

    def forward(self, a):
        return np.cumsum(a, axis=self.axis)

    def backward(self, grad):
        # each input feeds every later output: reverse cumulative sum
        return (grad.flip(self.axis).cumsum(self.axis).flip(self.axis),)


def cumsum(input: Tensor, dim: int) -> Tensor:
    (axis,) = _axes(dim, input._data.ndim, "cumsum") or (0,)
    if input._data.dtype.kind != "f":
        return _wrap(np.cumsum(input._data, axis=axis))
    return Cumsum(axis).apply(input)
