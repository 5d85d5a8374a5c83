"""Pooling: max and average over sliding windows, read through strided views of the input.

Each op loops over the kernel offsets (4 for a 2x2 window), never over batch, channels or pixels:
the slice of the padded input that offset (p, q) reads for every output at once is a strided view.

- Max pooling keeps, per output, which offset won (``indices``). Its backward sends the gradient to
  the winners (``_MaxPoolScatter``); the backward of that scatter is the matching gather
  (``_MaxPoolGather``) and vice versa, so second derivatives work.
- Average pooling is a window sum times 1/divisor. The window sum (``_WindowSum``) and its adjoint,
  which spreads each output's gradient over its window (``_WindowScatter``), are each other's backward.
- Adaptive average pooling is separable: out = A_h @ x @ A_w^T with averaging matrices A.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..tensor import Tensor
from .conv import _crop, _Geometry, _pad, _positive, _tuple
from .function import Function
from .linalg import matmul


def _lowest(dtype: np.dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _max_and_argmax(views: list) -> tuple:
    """Elementwise max over the arrays and the position of the first maximum, by a tournament:
    neighbours are compared pairwise (the earlier one wins ties), halving the field each round."""
    kind = np.int8 if len(views) < 128 else np.int32
    if len(views) == 1:
        return views[0].copy(), np.zeros(views[0].shape, dtype=kind)
    field = []
    for j in range(0, len(views) - 1, 2):  # first round: offsets j and j + 1
        a, b = views[j], views[j + 1]
        index = (b > a).astype(kind)
        if j:
            index += kind(j)
        field.append((np.maximum(a, b), index))
    if len(views) % 2:
        field.append((views[-1], np.full(views[-1].shape, len(views) - 1, dtype=kind)))
    while len(field) > 1:
        winners = []
        for j in range(0, len(field) - 1, 2):
            (a, index_a), (b, index_b) = field[j], field[j + 1]
            winners.append((np.maximum(a, b), np.where(b > a, index_b, index_a)))
        if len(field) % 2:
            winners.append(field[-1])
        field = winners
    return field[0]


class MaxPool2d(Function):
    """out = max over each window; ``indices`` holds the winning offset (first one on ties)."""

    __slots__ = ("geom", "indices", "in_shape")

    def __init__(self, geom: _Geometry):
        self.geom = geom

    @classmethod
    def op_name(cls) -> str:
        return "max_pool2d"

    def forward(self, x):
        ho, wo = self.geom.out_size(*x.shape[-2:])
        xp = _pad(x, self.geom.padding, _lowest(x.dtype))
        views = [xp[where] for _, _, where in self.geom.offsets(ho, wo)]
        out, self.indices = _max_and_argmax(views)
        self.in_shape = x.shape
        return out

    def backward(self, grad):
        return (_MaxPoolScatter(self.geom, self.indices, self.in_shape).apply(grad),)


class _MaxPoolScatter(Function):
    """The gradient of max pooling: each output's gradient goes to the input that won its window."""

    __slots__ = ("geom", "indices", "in_shape")

    def __init__(self, geom: _Geometry, indices: np.ndarray, in_shape: tuple):
        self.geom, self.indices, self.in_shape = geom, indices, in_shape

    @classmethod
    def op_name(cls) -> str:
        return "max_pool2d_backward"

    def forward(self, grad):
        (pt, pb), (pl, pr) = self.geom.padding
        h, w = self.in_shape[-2:]
        out = np.zeros(self.in_shape[:-2] + (h + pt + pb, w + pl + pr), dtype=grad.dtype)
        ho, wo = self.indices.shape[-2:]
        disjoint = self.geom.disjoint()
        for k, (_, _, where) in enumerate(self.geom.offsets(ho, wo)):
            if disjoint:  # each input is in at most one window: write, don't accumulate
                np.multiply(grad, self.indices == k, out=out[where])
            else:
                out[where] += grad * (self.indices == k)
        return _crop(out, self.geom.padding, h, w)

    def backward(self, grad):
        return (_MaxPoolGather(self.geom, self.indices, self.in_shape).apply(grad),)


class _MaxPoolGather(Function):
    """Read, for each window, the entry at the saved winning offset (the adjoint of the scatter)."""

    __slots__ = ("geom", "indices", "in_shape")

    def __init__(self, geom: _Geometry, indices: np.ndarray, in_shape: tuple):
        self.geom, self.indices, self.in_shape = geom, indices, in_shape

    @classmethod
    def op_name(cls) -> str:
        return "max_pool2d_gather"

    def forward(self, x):
        xp = _pad(x, self.geom.padding, 0)
        out = np.zeros(self.indices.shape, dtype=x.dtype)
        ho, wo = self.indices.shape[-2:]
        for k, (_, _, where) in enumerate(self.geom.offsets(ho, wo)):
            np.copyto(out, xp[where], where=self.indices == k)
        return out

    def backward(self, grad):
        return (_MaxPoolScatter(self.geom, self.indices, self.in_shape).apply(grad),)


class _WindowSum(Function):
    """out = sum over each window of the zero-padded input (average pooling before the division)."""

    __slots__ = ("geom", "in_shape")

    def __init__(self, geom: _Geometry):
        self.geom = geom

    @classmethod
    def op_name(cls) -> str:
        return "avg_pool2d"

    def forward(self, x):
        self.in_shape = x.shape
        ho, wo = self.geom.out_size(*x.shape[-2:])
        xp = _pad(x, self.geom.padding, 0)
        views = [xp[where] for _, _, where in self.geom.offsets(ho, wo)]
        out = views[0].copy()
        for v in views[1:]:
            out += v
        return out

    def backward(self, grad):
        return (_WindowScatter(self.geom, self.in_shape).apply(grad),)


class _WindowScatter(Function):
    """The adjoint of the window sum: every input receives the sum of the gradients of its windows."""

    __slots__ = ("geom", "in_shape")

    def __init__(self, geom: _Geometry, in_shape: tuple):
        self.geom, self.in_shape = geom, in_shape

    @classmethod
    def op_name(cls) -> str:
        return "avg_pool2d_backward"

    def forward(self, grad):
        (pt, pb), (pl, pr) = self.geom.padding
        h, w = self.in_shape[-2:]
        out = np.zeros(self.in_shape[:-2] + (h + pt + pb, w + pl + pr), dtype=grad.dtype)
        disjoint = self.geom.disjoint()
        for _, _, where in self.geom.offsets(*grad.shape[-2:]):
            if disjoint:
                out[where] = grad
            else:
                out[where] += grad
        return _crop(out, self.geom.padding, h, w)

    def backward(self, grad):
        return (_WindowSum(self.geom).apply(grad),)


# ---- geometry and checks -------------------------------------------------------------------------
def _pool_out_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """floor (or ceil) of (L + 2p - d (k - 1) - 1) / s, plus 1; with ceil_mode the last window must
    start inside the input or its left padding, as in PyTorch."""
    span = size + 2 * p - d * (k - 1) - 1
    if not ceil_mode:
        return span // s + 1
    out = -(-span // s) + 1
    if (out - 1) * s >= size + p:
        out -= 1
    return out


def _pool_geometry(x: Tensor, kernel_size, stride, padding, dilation, ceil_mode, spatial: int, op: str):
    """Validate the input and the window arguments; the geometry (in 2-D) and the output size."""
    dims = spatial + 2
    if x._data.ndim not in (dims - 1, dims):
        layout = "(N, C, L) or (C, L)" if spatial == 1 else "(N, C, H, W) or (C, H, W)"
        raise ValueError(f"{op}: expected a {dims - 1}-D or {dims}-D input {layout}, got a "
                         f"{x._data.ndim}-D input of shape {tuple(x.shape)}")
    kernel = _positive(_tuple(kernel_size, spatial, "kernel_size", op), "kernel_size", op)
    stride = kernel if stride is None or stride == () else _positive(
        _tuple(stride, spatial, "stride", op), "stride", op)
    pads = _tuple(padding, spatial, "padding", op)
    dilation = _positive(_tuple(dilation, spatial, "dilation", op), "dilation", op)
    if any(p < 0 or p > k // 2 for p, k in zip(pads, kernel)):
        raise ValueError(f"{op}: padding must be between 0 and half the kernel size, got "
                         f"padding={padding!r} for kernel_size={kernel_size!r}")
    size = tuple(x._data.shape[-spatial:])
    out = tuple(_pool_out_size(*a, ceil_mode) for a in zip(size, kernel, stride, pads, dilation))
    if any(o < 1 for o in out):
        fmt = (lambda t: t[0]) if spatial == 1 else tuple
        raise ValueError(f"{op}: input of size {fmt(size)} (padding {fmt(pads)}) is smaller than the "
                         f"window (kernel_size={fmt(kernel)}, dilation={fmt(dilation)}): the output "
                         f"would have size {fmt(out)}")
    # ceil_mode can need a last, partial window: pad after by whatever it reaches beyond the input
    both = []
    for n, k, s, p, d, o in zip(size, kernel, stride, pads, dilation, out):
        after = max((o - 1) * s + d * (k - 1) + 1 - n - p, 0)
        both.append((p, after))
    if spatial == 1:
        geom = _Geometry((1,) + kernel, (1,) + stride, ((0, 0), both[0]), (1,) + dilation)
    else:
        geom = _Geometry(kernel, stride, tuple(both), dilation)
    return geom, out, (kernel, stride, pads)


def _as_2d(x: Tensor, spatial: int) -> Tensor:
    return x.unsqueeze(-2) if spatial == 1 else x


def _from_2d(y: Tensor, spatial: int) -> Tensor:
    return y.squeeze(-2) if spatial == 1 else y


# ---- functional forms ----------------------------------------------------------------------------
def _input_positions(geom: _Geometry, offsets: np.ndarray, in_shape: tuple) -> np.ndarray:
    """PyTorch's pooling indices: for each output, the flat position (row * W + col) in its input plane
    of the entry that won the window, from the winning kernel offset k = p * kw + q."""
    (pt, _), (pl, _) = geom.padding
    (_, kw), (sh, sw), (dh, dw) = geom.kernel, geom.stride, geom.dilation
    ho, wo = offsets.shape[-2:]
    p, q = np.divmod(offsets.astype(np.int64), kw)
    rows = np.arange(ho).reshape(-1, 1) * sh + p * dh - pt
    cols = np.arange(wo) * sw + q * dw - pl
    return rows * in_shape[-1] + cols


def _max_pool(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices, spatial, op):
    geom, _, _ = _pool_geometry(x, kernel_size, stride, padding, dilation, ceil_mode, spatial, op)
    x2 = _as_2d(x, spatial)
    pool = MaxPool2d(geom)
    out = _from_2d(pool.apply(x2), spatial)
    if not return_indices:
        return out
    indices = Tensor._wrap(_input_positions(geom, pool.indices, x2.shape))
    return out, _from_2d(indices, spatial)


def max_pool2d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    """Maximum over each kH x kW window of ``input`` (N, C, H, W) or (C, H, W); stride defaults to
    the kernel size, padding (at most half the kernel) counts as -inf.

    >>> import chainrule.nn.functional as F
    >>> F.max_pool2d(cr.arange(16.0).reshape(1, 1, 4, 4), 2).flatten().tolist()
    [5.0, 7.0, 13.0, 15.0]
    """
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2,
                     "max_pool2d")


def max_pool1d(input: Tensor, kernel_size, stride=None, padding=0, dilation=1, ceil_mode: bool = False,
               return_indices: bool = False) -> Tensor:
    """Maximum over each window of length k of ``input`` (N, C, L) or (C, L)."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1,
                     "max_pool1d")


def _window_counts(size: int, k: int, s: int, p: int, out: int, include_pad: bool) -> np.ndarray:
    """How many entries each window of one axis averages (PyTorch's divisor, per axis)."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, size + p)
    if include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def _avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
              spatial, op):
    geom, out, (kernel, stride, pads) = _pool_geometry(
        x, kernel_size, stride, padding, 1, ceil_mode, spatial, op)
    dt = x._data.dtype if x._data.dtype.kind == "f" else backend.get_default_dtype()
    if x._data.dtype != dt:
        x = x.to(dt)
    total = _WindowSum(geom).apply(_as_2d(x, spatial))
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must be non-zero")
        scale = np.asarray(1.0 / divisor_override, dtype=dt)
    elif not any(pads) and not ceil_mode:
        scale = np.asarray(1.0 / math.prod(kernel), dtype=dt)
    else:
        counts = [_window_counts(*a, count_include_pad)
                  for a in zip(x._data.shape[-spatial:], kernel, stride, pads, out)]
        divisor = counts[0] if spatial == 1 else np.multiply.outer(counts[0], counts[1])
        scale = (1.0 / divisor).astype(dt)
    return _from_2d(total * Tensor._wrap(scale), spatial)


def avg_pool2d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over each kH x kW window of ``input`` (N, C, H, W) or (C, H, W). Zero padding counts
    towards the mean when ``count_include_pad`` (PyTorch's default).

    >>> import chainrule.nn.functional as F
    >>> F.avg_pool2d(cr.arange(16.0).reshape(1, 1, 4, 4), 2).flatten().tolist()
    [2.5, 4.5, 10.5, 12.5]
    """
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2, "avg_pool2d")


def avg_pool1d(input: Tensor, kernel_size, stride=None, padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """Mean over each window of length k of ``input`` (N, C, L) or (C, L)."""
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1,
                     "avg_pool1d")


def _adaptive_matrix(size: int, out: int, dtype) -> np.ndarray:
    """A (out, size) matrix whose row i averages input[floor(i L / n) : ceil((i + 1) L / n)]."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)
    cols = np.arange(size)
    inside = (cols >= start[:, None]) & (cols < end[:, None])
    return (inside / (end - start)[:, None]).astype(dtype)


def adaptive_avg_pool2d(input: Tensor, output_size) -> Tensor:
    """Average pooling to a fixed output size (oH, oW) whatever the input size; bins as in PyTorch:
    bin i covers [floor(i H / oH), ceil((i + 1) H / oH)). ``None`` keeps that input size.

    Separable, so out = A_h @ x @ A_w^T with (oH, H) and (oW, W) averaging matrices.

    >>> import chainrule.nn.functional as F
    >>> F.adaptive_avg_pool2d(cr.ones(2, 3, 7, 5), 1).shape
    chainrule.Size([2, 3, 1, 1])
    """
    op = "adaptive_avg_pool2d"
    if input._data.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D or 4-D input (N, C, H, W) or (C, H, W), got a "
                         f"{input._data.ndim}-D input of shape {tuple(input.shape)}")
    if not isinstance(output_size, (tuple, list)):
        output_size = (output_size, output_size)
    h, w = input._data.shape[-2:]
    oh, ow = (s if o is None else o for o, s in zip(output_size, (h, w)))
    _positive(_tuple((oh, ow), 2, "output_size", op), "output_size", op)
    if input._data.dtype.kind != "f":
        input = input.to(backend.get_default_dtype())
    dt = input._data.dtype
    if (oh, ow) == (1, 1):
        return input.mean(dim=(-2, -1), keepdim=True)
    if (oh, ow) == (h, w):
        return input
    if h % oh == 0 and w % ow == 0:  # equal, non-overlapping bins: a plain average pool
        return avg_pool2d(input, (h // oh, w // ow))
    a_h = Tensor._wrap(_adaptive_matrix(h, oh, dt))
    a_w_t = Tensor._wrap(np.ascontiguousarray(_adaptive_matrix(w, ow, dt).T))
    return matmul(a_h, matmul(input, a_w_t))


def adaptive_avg_pool1d(input: Tensor, output_size) -> Tensor:
    """Average pooling of (N, C, L) or (C, L) inputs to a fixed length (bins as in PyTorch)."""
    if isinstance(output_size, (tuple, list)):
        output_size = output_size[0]
    x = input
    if x.ndim not in (2, 3):
        raise ValueError(f"adaptive_avg_pool1d: expected a 2-D or 3-D input (N, C, L) or (C, L), got a "
                         f"{x.ndim}-D input of shape {tuple(x.shape)}")
    return adaptive_avg_pool2d(x.unsqueeze(-2), (1, output_size)).squeeze(-2)
