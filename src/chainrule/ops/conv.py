"""Convolution: conv1d/conv2d as one matrix multiply over an im2col view, with its two adjoints.

For an input x (N, C, H, W) and a weight w (O, C/groups, kh, kw) the convolution (PyTorch's, i.e.
cross-correlation) is

    y[n, o, i, j] = sum_{c, p, q} w[o, c, p, q] * xpad[n, g(o)*C/G + c, i*sh + p*dh, j*sw + q*dw]

``_im2col`` lays every receptive field out as a column (a strided view of the padded input, copied
once), so the sum over (c, p, q) becomes one batched matmul ``w (G, O/G, K) @ cols (N, G, K, P)``.

The convolution is bilinear in (x, w). Write B(x, w, gy) = sum(gy * conv(x, w)); then

    conv(x, w)            = dB/dgy                         (this file's ``Conv2d`` op)
    conv_transpose(gy, w) = dB/dx   the input gradient     (``_ConvInputGrad``: matmul, then col2im)
    weight_grad(x, gy)    = dB/dw   the weight gradient    (``_ConvWeightGrad``: matmul with cols)

and the backward of each of the three ops is made of the other two, so gradients of gradients
(``create_graph=True``) come for free.
"""

from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import autograd
from ..tensor import Tensor
from .function import Function


# ---- argument handling ---------------------------------------------------------------------------
def _tuple(value, n: int, name: str, op: str) -> tuple:
    """An int or a sequence of n ints, as a tuple of n ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (int(value),) * n
    if isinstance(value, (tuple, list)) and len(value) == n and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value
    ):
        return tuple(int(v) for v in value)
    raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")


def _positive(values: tuple, name: str, op: str) -> tuple:
    if any(v < 1 for v in values):
        raise ValueError(f"{op}: {name} must be positive, got {values if len(values) > 1 else values[0]}")
    return values


def _conv_padding(padding, kernel: tuple, dilation: tuple, stride: tuple, op: str) -> tuple:
    """Padding as (before, after) per spatial dim: from an int/tuple, 'valid' or 'same'.

    'same' pads d*(k-1) in total, the odd element after (at the bottom/right), as PyTorch does.
    """
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions "
                                 f"(stride={stride if n > 1 else stride[0]})")
            total = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in total)
        raise ValueError(f"{op}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    pads = _tuple(padding, n, "padding", op)
    if any(p < 0 for p in pads):
        raise ValueError(f"{op}: padding must be non-negative, got {padding!r}")
    return tuple((p, p) for p in pads)


class _Geometry:
    """Everything about a 2-D sliding window except the data: kernel, stride, padding, dilation."""

    __slots__ = ("kernel", "stride", "padding", "dilation", "groups")

    def __init__(self, kernel, stride, padding, dilation, groups=1):
        self.kernel = kernel  # (kh, kw)
        self.stride = stride  # (sh, sw)
        self.padding = padding  # ((top, bottom), (left, right))
        self.dilation = dilation  # (dh, dw)
        self.groups = groups

    def out_size(self, h: int, w: int) -> tuple:
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        (pt, pb), (pl, pr) = self.padding
        return (h + pt + pb - dh * (kh - 1) - 1) // sh + 1, (w + pl + pr - dw * (kw - 1) - 1) // sw + 1

    def disjoint(self) -> bool:
        """Whether windows never overlap (stride at least the dilated kernel span in both dims)."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        return sh >= dh * (kh - 1) + 1 and sw >= dw * (kw - 1) + 1

    def offsets(self, out_h: int, out_w: int):
        """For each kernel offset (p, q): the slice of the padded input it reads for every output."""
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        for p in range(kh):
            rows = slice(p * dh, p * dh + sh * (out_h - 1) + 1, sh)
            for q in range(kw):
                yield p, q, (Ellipsis, rows, slice(q * dw, q * dw + sw * (out_w - 1) + 1, sw))


def _pad(x: np.ndarray, padding, value=0.0) -> np.ndarray:
    (pt, pb), (pl, pr) = padding
    if not (pt or pb or pl or pr):
        return x
    out = np.full(x.shape[:-2] + (x.shape[-2] + pt + pb, x.shape[-1] + pl + pr), value, dtype=x.dtype)
    out[..., pt:pt + x.shape[-2], pl:pl + x.shape[-1]] = x
    return out


def _crop(x: np.ndarray, padding, h: int, w: int) -> np.ndarray:
    (pt, _), (pl, _) = padding
    if x.shape[-2:] == (h, w):
        return x
    return np.ascontiguousarray(x[..., pt:pt + h, pl:pl + w])


def _windows(xpad: np.ndarray, geom: _Geometry) -> np.ndarray:
    """A strided view (N, C, Ho, Wo, kh, kw) of every receptive field: no copy."""
    (kh, kw), (sh, sw), (dh, dw) = geom.kernel, geom.stride, geom.dilation
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    view = sliding_window_view(xpad, span, axis=(-2, -1))
    return view[..., ::sh, ::sw, ::dh, ::dw]


def _im2col(x: np.ndarray, geom: _Geometry) -> np.ndarray:
    """The columns (N, G, C/G * kh * kw, Ho * Wo): one copy of the windows, laid out for matmul."""
    n, c = x.shape[:2]
    g = geom.groups
    win = _windows(_pad(x, geom.padding), geom)
    ho, wo, kh, kw = win.shape[2:]
    win = win.reshape(n, g, c // g, ho, wo, kh, kw).transpose(0, 1, 2, 5, 6, 3, 4)
    return win.reshape(n, g, (c // g) * kh * kw, ho * wo)


def _col2im(cols: np.ndarray, x_shape: tuple, geom: _Geometry) -> np.ndarray:
    """The adjoint of ``_im2col``: add every column entry back where it was read from.

    One strided ``+=`` per kernel offset (kh * kw of them); each covers the whole batch and all channels.
    """
    n, c, h, w = x_shape
    (pt, pb), (pl, pr) = geom.padding
    kh, kw = geom.kernel
    ho, wo = geom.out_size(h, w)
    out = np.zeros((n, c, h + pt + pb, w + pl + pr), dtype=cols.dtype)
    cols = cols.reshape(n, c, kh, kw, ho, wo)
    for p, q, where in geom.offsets(ho, wo):
        out[where] += cols[:, :, p, q]
    return _crop(out, geom.padding, h, w)


# ---- the three ops -------------------------------------------------------------------------------
class Conv2d(Function):
    """y = conv(x, w) + b, one matmul over the im2col columns (kept for the weight gradient)."""

    __slots__ = ("geom", "_cols", "keep_cols")
    saves = (0, 1)

    def __init__(self, geom: _Geometry, keep_cols: bool = True):
        self.geom = geom
        self.keep_cols = keep_cols  # False when no weight gradient will be asked for: save the memory
        self._cols = None

    @classmethod
    def op_name(cls) -> str:
        return "conv2d"

    def forward(self, x, weight, bias=None):
        n = x.shape[0]
        o, g = weight.shape[0], self.geom.groups
        ho, wo = self.geom.out_size(*x.shape[2:])
        cols = _im2col(x, self.geom)
        out = np.matmul(weight.reshape(g, o // g, -1), cols).reshape(n, o, ho, wo)
        if bias is not None:
            out += bias.reshape(o, 1, 1)
        if self.keep_cols:
            self._cols = cols
        return out

    def backward(self, grad):
        x, weight = self.inputs[0], self.inputs[1]
        gx = gw = gb = None
        if x.requires_grad:
            gx = _ConvInputGrad(self.geom, x._data.shape).apply(grad, weight)
        if weight.requires_grad:
            gw = _ConvWeightGrad(self.geom, weight._data.shape, self._cols).apply(x, grad)
        if len(self.inputs) == 3:
            if self.inputs[2].requires_grad:
                gb = grad.sum(dim=(0, 2, 3))
            return gx, gw, gb
        return gx, gw


class _ConvInputGrad(Function):
    """conv_transpose(gy, w): the gradient of conv(x, w) with respect to x (cols = w^T gy, then col2im)."""

    __slots__ = ("geom", "x_shape")
    saves = (0, 1)

    def __init__(self, geom: _Geometry, x_shape: tuple):
        self.geom = geom
        self.x_shape = tuple(x_shape)

    @classmethod
    def op_name(cls) -> str:
        return "conv_transpose2d"

    def forward(self, gy, weight):
        n, o, ho, wo = gy.shape
        g = self.geom.groups
        w_t = np.ascontiguousarray(weight.reshape(g, o // g, -1).transpose(0, 2, 1))  # (G, K, O/G)
        cols = np.matmul(w_t, gy.reshape(n, g, o // g, ho * wo))  # (N, G, K, P)
        return _col2im(cols, self.x_shape, self.geom)

    def backward(self, grad):
        gy, weight = self.inputs
        ggy = gw = None
        if gy.requires_grad:  # the adjoint of conv_transpose is conv
            ggy = Conv2d(self.geom).apply(grad, weight)
        if weight.requires_grad:  # d/dw <grad, dB/dx(gy, w)> = dB/dw(grad, gy)
            gw = _ConvWeightGrad(self.geom, weight._data.shape).apply(grad, gy)
        return ggy, gw


class _ConvWeightGrad(Function):
    """weight_grad(x, gy) = sum over batch and positions of gy (O, P) @ cols^T (P, K)."""

    __slots__ = ("geom", "w_shape", "_cols")
    saves = (0, 1)

    def __init__(self, geom: _Geometry, w_shape: tuple, cols: np.ndarray | None = None):
        self.geom = geom
        self.w_shape = tuple(w_shape)
        self._cols = cols

    @classmethod
    def op_name(cls) -> str:
        return "conv2d_weight_grad"

    def forward(self, x, gy):
        cols = self._cols if self._cols is not None else _im2col(x, self.geom)
        self._cols = None
        n, o, ho, wo = gy.shape
        g = self.geom.groups
        gy = gy.reshape(n, g, o // g, ho * wo)
        gw = np.matmul(gy, cols.transpose(0, 1, 3, 2)).sum(axis=0)  # (G, O/G, K)
        return gw.reshape(self.w_shape)

    def backward(self, grad):
        x, gy = self.inputs
        gx = ggy = None
        if x.requires_grad:  # d/dx B(x, grad, gy) = conv_transpose(gy, grad)
            gx = _ConvInputGrad(self.geom, x._data.shape).apply(gy, grad)
        if gy.requires_grad:  # d/dgy B(x, grad, gy) = conv(x, grad)
            ggy = Conv2d(self.geom).apply(x, grad)
        return gx, ggy


# ---- functional forms ----------------------------------------------------------------------------
def _check_conv_input(x: Tensor, weight: Tensor, groups: int, name: str, spatial: int) -> None:
    """The input checks shared by the functional forms and the layers (``name`` says who is asking)."""
    dims = spatial + 2
    layout = "(N, C, L)" if spatial == 1 else "(N, C, H, W)"
    if x._data.ndim != dims:
        hint = ""
        if x._data.ndim == dims - 1:
            hint = ("; for a single example add the batch dimension with x.unsqueeze(0), for inputs "
                    "without a channel dimension add it with x.unsqueeze(1)")
        raise ValueError(f"{name}: expected a {dims}-D input {layout}, got a {x._data.ndim}-D input "
                         f"of shape {tuple(x.shape)}{hint}")
    expected = weight._data.shape[1] * groups
    if x._data.shape[1] != expected:
        raise ValueError(f"{name}: expected input with {expected} channels, got {x._data.shape[1]} "
                         f"channels (input of shape {tuple(x.shape)})")


def _conv(x, weight, bias, stride, padding, dilation, groups, spatial: int, name: str) -> Tensor:
    op = name
    if weight._data.ndim != spatial + 2:
        raise ValueError(f"{op}: weight must be {spatial + 2}-D (out_channels, in_channels/groups, "
                         f"{'kL' if spatial == 1 else 'kH, kW'}), got shape {tuple(weight.shape)}")
    if not isinstance(groups, numbers.Integral) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if weight._data.shape[0] % groups:
        raise ValueError(f"{op}: out_channels ({weight._data.shape[0]}) must be divisible by groups ({groups})")
    _check_conv_input(x, weight, groups, op, spatial)
    if bias is not None and tuple(bias._data.shape) != (weight._data.shape[0],):
        raise ValueError(f"{op}: bias has shape {tuple(bias.shape)}, expected ({weight._data.shape[0]},)")
    kernel = tuple(weight._data.shape[2:])
    stride = _positive(_tuple(stride, spatial, "stride", op), "stride", op)
    dilation = _positive(_tuple(dilation, spatial, "dilation", op), "dilation", op)
    pads = _conv_padding(padding, kernel, dilation, stride, op)
    size = tuple(x._data.shape[2:])
    padded = tuple(s + a + b for s, (a, b) in zip(size, pads))
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(p < k for p, k in zip(padded, span)):
        fmt = (lambda t: t[0]) if spatial == 1 else tuple
        raise ValueError(f"{op}: input of size {fmt(size)} (padded to {fmt(padded)}) is smaller than "
                         f"the kernel, which spans {fmt(span)} (kernel_size={fmt(kernel)}, "
                         f"dilation={fmt(dilation)})")
    dt = weight._data.dtype
    if x._data.dtype != dt:
        x = x.to(dt)
    keep = weight.requires_grad and autograd.is_grad_enabled()
    if spatial == 1:  # a 1-D convolution is a 2-D one over a height-1 image
        geom = _Geometry((1,) + kernel, (1,) + stride, ((0, 0),) + pads, (1,) + dilation, groups)
        args = (x.unsqueeze(2), weight.unsqueeze(2)) + (() if bias is None else (bias,))
        return Conv2d(geom, keep).apply(*args).squeeze(2)
    geom = _Geometry(kernel, stride, pads, dilation, groups)
    args = (x, weight) if bias is None else (x, weight, bias)
    return Conv2d(geom, keep).apply(*args)


def conv2d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation) of ``input`` (N, C, H, W) with ``weight`` (O, C/groups, kH, kW).

    ``padding`` is an int, a pair, ``'valid'`` (none) or ``'same'`` (output as large as the input;
    stride 1 only). Output size per dim: floor((L + 2p - d (k - 1) - 1) / s) + 1.

    >>> import chainrule.nn.functional as F
    >>> y = F.conv2d(cr.ones(1, 1, 4, 4), cr.ones(2, 1, 3, 3), padding=1)
    >>> y.shape, y[0, 0, 0, 0].item(), y[0, 0, 1, 1].item()
    ((1, 2, 4, 4), 4.0, 9.0)
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv1d(input: Tensor, weight: Tensor, bias: Tensor | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1) -> Tensor:
    """1-D convolution of ``input`` (N, C, L) with ``weight`` (O, C/groups, kL); arguments as conv2d."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")
