"""Shape ops: reshape/view, squeeze/unsqueeze, transpose/permute, expand, cat/stack, split, pad, flip.

Most are views (no copy). Their backward moves the gradient back into the input's shape.
"""

from __future__ import annotations

import math

import numpy as np

from ..tensor import Tensor, _check_dim, result_type
from .function import Function, unbroadcast, unbroadcast_array

_wrap = Tensor._wrap


def _sizes(args, op: str) -> tuple:
    """Accept sizes as positional ints or a single tuple/list, as PyTorch does."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    out = []
    for n in args:
        if isinstance(n, Tensor):
            n = n.item()
        if not isinstance(n, (int, np.integer)):
            raise TypeError(f"{op}: sizes must be integers, got {n!r}")
        out.append(int(n))
    return tuple(out)


class Reshape(Function):
    __slots__ = ("shape",)
    is_view = True

    def __init__(self, shape):
        self.shape = shape

    def forward(self, a):
        return a.reshape(self.shape)

    def backward(self, grad):
        return (grad.reshape(self.inputs[0]._data.shape),)

    def backward_array(self, grad):
        return (np.reshape(grad, self.inputs[0]._data.shape),)


def reshape(input: Tensor, *shape) -> Tensor:
    """A tensor with the same data and a new shape; one size may be -1 (inferred)."""
    shape = _sizes(shape, "reshape")
    n = input._data.size
    known = math.prod(s for s in shape if s != -1)
    if shape.count(-1) > 1 or any(s < -1 for s in shape) or (
        n != known if -1 not in shape else (known == 0 or n % known)
    ):
        raise ValueError(f"reshape: cannot view a tensor of shape {input.shape} ({n} elements) as {shape}")
    return Reshape(shape).apply(input)


view = reshape


def view_as(input: Tensor, other: Tensor) -> Tensor:
    return reshape(input, other.shape)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dimensions start_dim..end_dim into one."""
    nd = input._data.ndim
    if nd == 0:
        return reshape(input, (1,))
    s, e = _check_dim(start_dim, nd, "flatten"), _check_dim(end_dim, nd, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    shape = input._data.shape
    return reshape(input, shape[:s] + (math.prod(shape[s : e + 1]),) + shape[e + 1 :])


def unflatten(input: Tensor, dim: int, sizes) -> Tensor:
    d = _check_dim(dim, input._data.ndim, "unflatten")
    shape = input._data.shape
    return reshape(input, shape[:d] + tuple(sizes) + shape[d + 1 :])


def squeeze(input: Tensor, dim=None) -> Tensor:
    """Drop dimensions of size 1 (only ``dim`` when given; other sizes are left as they are)."""
    shape = input._data.shape
    if dim is None:
        return reshape(input, tuple(n for n in shape if n != 1))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    drop = {_check_dim(d, len(shape), "squeeze") for d in dims}
    return reshape(input, tuple(n for i, n in enumerate(shape) if not (i in drop and n == 1)))


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """Insert a dimension of size 1 at ``dim``."""
    shape = input._data.shape
    n = len(shape) + 1
    if not -n <= dim < n:
        raise IndexError(f"unsqueeze: dimension {dim} is out of range (expected -{n} to {n - 1})")
    d = dim % n
    return reshape(input, shape[:d] + (1,) + shape[d:])


class Permute(Function):
    __slots__ = ("dims",)
    is_view = True

    def __init__(self, dims):
        self.dims = dims

    def forward(self, a):
        return a.transpose(self.dims)

    def backward(self, grad):
        return (grad.permute(tuple(np.argsort(self.dims))),)

    def backward_array(self, grad):
        return (np.transpose(grad, np.argsort(self.dims)),)


def permute(input: Tensor, *dims) -> Tensor:
    dims = _sizes(dims, "permute")
    nd = input._data.ndim
    if len(dims) != nd or sorted(d % max(nd, 1) for d in dims) != list(range(nd)):
        raise ValueError(f"permute: {dims} is not a permutation of the {nd} dimensions of shape {input.shape}")
    return Permute(tuple(d % nd for d in dims)).apply(input)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    nd = input._data.ndim
    if nd < 2 and dim0 in (0, -1) and dim1 in (0, -1):
        return input
    d0, d1 = _check_dim(dim0, nd, "transpose"), _check_dim(dim1, nd, "transpose")
    dims = list(range(nd))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute(tuple(dims)).apply(input)


swapaxes = transpose


def t(input: Tensor) -> Tensor:
    if input._data.ndim > 2:
        raise ValueError(f"t: expects a tensor with at most 2 dimensions, got shape {input.shape}")
    return transpose(input, 0, -1) if input._data.ndim == 2 else input


def movedim(input: Tensor, source: int, destination: int) -> Tensor:
    nd = input._data.ndim
    order = [d for d in range(nd) if d != _check_dim(source, nd, "movedim")]
    order.insert(_check_dim(destination, nd, "movedim"), _check_dim(source, nd, "movedim"))
    return permute(input, order)


class Expand(Function):
    __slots__ = ("shape",)
    is_view = True

    def __init__(self, shape):
        self.shape = shape

    def forward(self, a):
        return np.broadcast_to(a, self.shape)

    def backward(self, grad):
        return (unbroadcast(grad, self.inputs[0]._data.shape),)

    def backward_array(self, grad):
        return (unbroadcast_array(grad, self.inputs[0]._data.shape),)


def expand(input: Tensor, *sizes) -> Tensor:
    """Broadcast to a larger shape without copying; -1 keeps a dimension's size."""
    sizes = _sizes(sizes, "expand")
    shape = input._data.shape
    lead = len(sizes) - len(shape)
    if lead < 0:
        raise ValueError(f"expand: cannot expand shape {shape} to fewer dimensions {sizes}")
    target = tuple(shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
    for i, n in enumerate(shape):
        if n != 1 and n != target[i + lead]:
            raise ValueError(f"expand: the size {n} of dimension {i} of {shape} can't become {target[i + lead]}")
    if target == shape:
        return input
    return Expand(target).apply(input)


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, other.shape)


def broadcast_to(input: Tensor, shape) -> Tensor:
    return expand(input, tuple(shape))


def broadcast_tensors(*tensors: Tensor) -> tuple:
    shape = np.broadcast_shapes(*(t.shape for t in tensors))
    return tuple(expand(t, shape) for t in tensors)


class Cat(Function):
    __slots__ = ("axis",)

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *arrays):
        return np.concatenate(arrays, axis=self.axis)

    def backward(self, grad):
        grads, start = [], 0
        lead = (slice(None),) * self.axis
        for t in self.inputs:
            n = t._data.shape[self.axis]
            grads.append(grad[lead + (slice(start, start + n),)] if t.requires_grad else None)
            start += n
        return tuple(grads)


def _same_dtype(tensors, op: str) -> list:
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    for i, x in enumerate(tensors):
        if not isinstance(x, Tensor):
            raise TypeError(f"{op}: element {i} is a {type(x).__name__}, expected a Tensor")
    dt = result_type(*tensors) if len({x.dtype for x in tensors}) > 1 else tensors[0].dtype
    return [x if x.dtype == dt else x.to(dt) for x in tensors]


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing dimension; the other dimensions must match."""
    tensors = _same_dtype(tensors, "cat")
    nd = tensors[0].ndim
    axis = _check_dim(dim, nd, "cat")
    for i, x in enumerate(tensors):
        if x.ndim != nd or x.shape[:axis] + x.shape[axis + 1 :] != tensors[0].shape[:axis] + tensors[0].shape[axis + 1 :]:
            raise ValueError(
                f"cat: tensor {i} has shape {x.shape}, which does not match {tensors[0].shape} "
                f"outside dimension {dim}"
            )
    return Cat(axis).apply(*tensors)


concat = concatenate = cat


class Stack(Function):
    __slots__ = ("axis",)

    def __init__(self, axis):
        self.axis = axis

    def forward(self, *arrays):
        return np.stack(arrays, axis=self.axis)

    def backward(self, grad):
        lead = (slice(None),) * self.axis
        return tuple(grad[lead + (i,)] if t.requires_grad else None for i, t in enumerate(self.inputs))


def stack(tensors, dim: int = 0) -> Tensor:
    """Join same-shaped tensors along a new dimension."""
    tensors = _same_dtype(tensors, "stack")
    for i, x in enumerate(tensors):
        if x.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {x.shape}, expected {tensors[0].shape} like tensor 0")
    nd = tensors[0].ndim + 1
    if not -nd <= dim < nd:
        raise IndexError(f"stack: dimension {dim} is out of range (expected -{nd} to {nd - 1})")
    return Stack(dim % nd).apply(*tensors)


def split(input: Tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Pieces of ``split_size`` along ``dim`` (the last may be smaller), or of the given sizes."""
    axis = _check_dim(dim, input._data.ndim, "split")
    n = input._data.shape[axis]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        sizes = [size] * (n // size) + ([n % size] if n % size else [])
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to {n}, the size of dimension {dim}")
    lead = (slice(None),) * axis
    out, start = [], 0
    for s in sizes:
        out.append(input[lead + (slice(start, start + s),)])
        start += s
    return tuple(out)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Split into ``chunks`` pieces of equal size (the last may be smaller)."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = input._data.shape[_check_dim(dim, input._data.ndim, "chunk")]
    return split(input, max(-(-n // chunks), 1), dim)


def unbind(input: Tensor, dim: int = 0) -> tuple:
    axis = _check_dim(dim, input._data.ndim, "unbind")
    lead = (slice(None),) * axis
    return tuple(input[lead + (i,)] for i in range(input._data.shape[axis]))


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    axis = _check_dim(dim, input._data.ndim, "narrow")
    return input[(slice(None),) * axis + (slice(start, start + length),)]


def select(input: Tensor, dim: int, index: int) -> Tensor:
    axis = _check_dim(dim, input._data.ndim, "select")
    return input[(slice(None),) * axis + (index,)]


class ConstantPad(Function):
    __slots__ = ("widths", "value")

    def __init__(self, widths, value):
        self.widths, self.value = widths, value

    def forward(self, a):
        return np.pad(a, self.widths, mode="constant", constant_values=self.value)

    def backward(self, grad):
        shape = grad._data.shape
        return (grad[tuple(slice(lo, n - hi) for (lo, hi), n in zip(self.widths, shape))],)


def pad(input: Tensor, pad, mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad the last dimensions; ``pad`` lists (left, right) of the last dim first, as ``F.pad``.

    Modes: 'constant' (with ``value``), 'reflect', 'replicate', 'circular'.
    """
    pad = tuple(int(p) for p in pad)
    nd = input._data.ndim
    if len(pad) % 2 or len(pad) // 2 > nd:
        raise ValueError(f"pad: expected an even number of values for at most {nd} dimensions, got {pad}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding {pad} is not supported; slice the tensor instead")
    widths = [(0, 0)] * nd
    for i in range(len(pad) // 2):
        widths[nd - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    if mode == "constant":
        return ConstantPad(tuple(widths), value).apply(input)
    np_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}.get(mode)
    if np_mode is None:
        raise ValueError(f"pad: unknown mode {mode!r}; use 'constant', 'reflect', 'replicate' or 'circular'")
    out = input
    for axis, (lo, hi) in enumerate(widths):
        if lo or hi:
            n = input._data.shape[axis]
            if mode == "reflect" and (lo >= n or hi >= n):
                raise ValueError(f"pad: reflect padding {lo, hi} must be smaller than the dimension size {n}")
            idx = np.pad(np.arange(n), (lo, hi), mode=np_mode)
            out = out.index_select(axis, _wrap(idx))
    return out


class Flip(Function):
    __slots__ = ("axes",)

    def __init__(self, axes):
        self.axes = axes

    def forward(self, a):
        return np.flip(a, self.axes)

    def backward(self, grad):
        return (grad.flip(self.axes),)


def flip(input: Tensor, dims) -> Tensor:
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    return Flip(tuple(_check_dim(d, input._data.ndim, "flip") for d in dims)).apply(input)


def repeat(input: Tensor, *sizes) -> Tensor:
    """Tile the tensor ``sizes`` times along each dimension (PyTorch's ``repeat``)."""
    sizes = _sizes(sizes, "repeat")
    if len(sizes) < input._data.ndim:
        raise ValueError(f"repeat: need at least {input.ndim} sizes for shape {input.shape}, got {sizes}")
    x = input.reshape((1,) * (len(sizes) - input.ndim) + input.shape)
    inter = []
    target = []
    for r, n in zip(sizes, x.shape):
        inter += [1, n]
        target += [r, n]
    return x.reshape(tuple(inter)).expand(tuple(target)).reshape(tuple(r * n for r, n in zip(sizes, x.shape)))


def tile(input: Tensor, dims) -> Tensor:
    dims = tuple(dims)
    return repeat(input, (1,) * (input.ndim - len(dims)) + dims)
