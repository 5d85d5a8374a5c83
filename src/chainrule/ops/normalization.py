"""Batch normalization: normalise each channel by the statistics of the batch (training) or by
running estimates of them (evaluation), then scale and shift.

Training, per channel c, over the m = N * (spatial size) values of that channel:

    mu = mean(x),  var = mean((x - mu)^2)  (biased),  xhat = (x - mu) / sqrt(var + eps)
    y  = weight * xhat + bias

and, with g = dL/dy and gh = g * weight (means over the same m values):

    dx = (gh - mean(gh) - xhat * mean(gh * xhat)) / sqrt(var + eps)
    dweight = sum(g * xhat),   dbias = sum(g)

The running estimates move towards the batch's: r <- (1 - momentum) r + momentum * batch, with the
unbiased variance var * m / (m - 1), as PyTorch does.
"""

from __future__ import annotations

import numpy as np

from .. import autograd
from ..tensor import Tensor
from .function import Function


def _channel_shape(ndim: int, c: int) -> tuple:
    return (1, c) + (1,) * (ndim - 2)


class BatchNorm(Function):
    """Training-mode batch norm as one node; keeps xhat and 1/std for a one-pass backward."""

    __slots__ = ("eps", "mean", "var", "xhat", "invstd")
    saves = (0,)

    def __init__(self, eps: float):
        self.eps = eps

    @classmethod
    def op_name(cls) -> str:
        return "batch_norm"

    def forward(self, x, weight=None, bias=None):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = _channel_shape(x.ndim, x.shape[1])
        mean = x.mean(axis=axes)
        centred = x - mean.reshape(shape)
        var = np.mean(centred * centred, axis=axes)
        invstd = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype, copy=False)
        xhat = centred
        xhat *= invstd.reshape(shape)
        self.mean, self.var, self.xhat, self.invstd = mean, var, xhat, invstd
        if weight is None:
            return xhat.copy() if bias is None else xhat + bias.reshape(shape)
        out = xhat * weight.reshape(shape)
        if bias is not None:
            out += bias.reshape(shape)
        return out

    def backward(self, grad):
        if autograd.is_grad_enabled():  # create_graph: the same formula as a differentiable graph
            return self._backward_graph(grad)
        x = self.inputs[0]
        weight = self.inputs[1] if len(self.inputs) > 1 else None
        g = grad._data
        axes = (0,) + tuple(range(2, g.ndim))
        shape = _channel_shape(g.ndim, g.shape[1])
        xhat = self.xhat
        gx = gw = gb = None
        if weight is not None and weight.requires_grad:
            gw = Tensor._wrap(np.sum(g * xhat, axis=axes))
        if len(self.inputs) == 3 and self.inputs[2].requires_grad:
            gb = Tensor._wrap(np.sum(g, axis=axes))
        if x.requires_grad:
            gh = g * weight._data.reshape(shape) if weight is not None else g
            mean_gh = gh.mean(axis=axes).reshape(shape)
            mean_ghx = np.mean(gh * xhat, axis=axes).reshape(shape)
            dx = gh - mean_gh
            dx -= xhat * mean_ghx
            dx *= self.invstd.reshape(shape)
            gx = Tensor._wrap(dx)
        return (gx, gw, gb)[:len(self.inputs)]

    def _backward_graph(self, grad):
        x = self.inputs[0]
        weight = self.inputs[1] if len(self.inputs) > 1 else None
        axes = (0,) + tuple(range(2, x._data.ndim))
        shape = _channel_shape(x._data.ndim, x._data.shape[1])
        centred = x - x.mean(dim=axes, keepdim=True)
        invstd = ((centred * centred).mean(dim=axes, keepdim=True) + self.eps).rsqrt()
        xhat = centred * invstd
        gx = gw = gb = None
        if weight is not None and weight.requires_grad:
            gw = (grad * xhat).sum(dim=axes)
        if len(self.inputs) == 3 and self.inputs[2].requires_grad:
            gb = grad.sum(dim=axes)
        if x.requires_grad:
            gh = grad * weight.reshape(shape) if weight is not None else grad
            gx = (gh - gh.mean(dim=axes, keepdim=True)
                  - xhat * (gh * xhat).mean(dim=axes, keepdim=True)) * invstd
        return (gx, gw, gb)[:len(self.inputs)]


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalization over dim 1 of ``input`` (N, C), (N, C, L) or (N, C, H, W).

    ``training=True`` normalises with the batch's statistics and, when running_mean/running_var are
    given, updates them in place (momentum as in PyTorch: new = (1 - m) old + m batch);
    ``training=False`` normalises with running_mean/running_var.

    >>> import chainrule.nn.functional as F
    >>> x = cr.tensor([[1.0], [3.0]])
    >>> F.batch_norm(x, None, None, training=True, eps=0.0).flatten().tolist()
    [-1.0, 1.0]
    """
    op = "batch_norm"
    if input._data.ndim < 2:
        raise ValueError(f"{op}: expected an input of at least 2 dimensions (N, C, ...), got shape "
                         f"{tuple(input.shape)}")
    c = input._data.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight),
                    ("bias", bias)):
        if t is not None and tuple(t._data.shape) != (c,):
            raise ValueError(f"{op}: {name} has shape {tuple(t.shape)}, expected ({c},) for an input "
                             f"with {c} channels (shape {tuple(input.shape)})")
    if input._data.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point input, got {input.dtype}")
    if training:
        return _batch_norm_train(input, running_mean, running_var, weight, bias, momentum, eps)
    if running_mean is None or running_var is None:
        raise ValueError(f"{op}: running_mean and running_var are needed when training=False")
    shape = _channel_shape(input._data.ndim, c)
    # y = x * scale + shift with scale = weight / sqrt(running_var + eps), shift = bias - mean * scale
    dt = input._data.dtype
    invstd = Tensor._wrap((1.0 / np.sqrt(running_var._data.astype(dt) + eps)).astype(dt))
    mean = Tensor._wrap(running_mean._data.astype(dt, copy=False))
    scale = invstd if weight is None else weight * invstd
    shift = -mean * scale if bias is None else bias - mean * scale
    return input * scale.reshape(shape) + shift.reshape(shape)


def _batch_norm_train(x, running_mean, running_var, weight, bias, momentum, eps):
    count = x._data.size // x._data.shape[1]
    if count <= 1:
        raise ValueError(f"batch_norm: expected more than 1 value per channel when training, got input "
                         f"of shape {tuple(x.shape)}")
    args = [x]
    if weight is not None or bias is not None:
        args.append(weight if weight is not None else Tensor._wrap(np.ones(x._data.shape[1], x._data.dtype)))
    if bias is not None:
        args.append(bias)
    op = BatchNorm(eps)
    out = op.apply(*args)
    if running_mean is not None:
        _blend(running_mean, op.mean, momentum)
    if running_var is not None:
        _blend(running_var, op.var * (count / (count - 1)), momentum)
    op.mean = op.var = None
    return out


def _blend(running: Tensor, batch: np.ndarray, momentum: float) -> None:
    """running <- (1 - momentum) * running + momentum * batch, in place (a buffer, not in the graph)."""
    r = running._data
    r *= 1.0 - momentum
    r += (momentum * batch).astype(r.dtype, copy=False)
    running._version[0] += 1
