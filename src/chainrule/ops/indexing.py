"""Indexing: ``x[...]``, ``gather``, ``index_select`` and ``x[...] = v``.

All three reads are one op, ``Index``; its backward scatters the gradient back into a zero tensor of the
input's shape, adding where an index repeats. The scatter's own backward is the same read, so
second derivatives come for free.
"""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor, _binary_args, _check_dim
from .function import Function, unbroadcast

_wrap = Tensor._wrap


def _normalise(index, shape: tuple, op: str = "index"):
    """Turn a user index into one NumPy understands; report whether it is basic (a view)."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    basic = True
    for item in index:
        if isinstance(item, Tensor):
            item = item._data
        elif isinstance(item, list):
            item = np.asarray(item)
        if isinstance(item, np.ndarray):
            if item.dtype.kind not in "biu":
                raise IndexError(f"{op}: tensors used as indices must be integer or bool, got {item.dtype}")
            basic = False
        elif isinstance(item, (float, np.floating)):
            raise IndexError(f"{op}: indices must be integers, slices, None, ... or tensors, got {item!r}")
        out.append(item)
    return tuple(out), basic


def _index_error(err: Exception, shape: tuple) -> IndexError:
    msg = str(err).replace("axis", "dimension")
    return IndexError(f"index: {msg} (tensor of shape {shape})")


class Index(Function):
    __slots__ = ("index", "basic")

    def __init__(self, index, basic):
        self.index, self.basic = index, basic

    @property
    def is_view(self):
        return self.basic

    def forward(self, a):
        return a[self.index]

    def backward(self, grad):
        return (IndexBackward(self.inputs[0]._data.shape, self.index, self.basic).apply(grad),)


class IndexBackward(Function):
    """Scatter-add ``grad`` into zeros of ``shape`` at ``index`` (the adjoint of reading ``x[index]``)."""

    __slots__ = ("shape", "index", "basic")

    def __init__(self, shape, index, basic):
        self.shape, self.index, self.basic = shape, index, basic

    def forward(self, grad):
        out = np.zeros(self.shape, dtype=grad.dtype)
        if self.basic or _is_mask(self.index):
            out[self.index] = grad
        else:
            np.add.at(out, self.index, grad)
        return out

    def backward(self, gradgrad):
        return (Index(self.index, self.basic).apply(gradgrad),)


def _is_mask(index) -> bool:
    arrays = [i for i in index if isinstance(i, np.ndarray)]
    return len(arrays) == 1 and arrays[0].dtype == np.bool_


def getitem(input: Tensor, index) -> Tensor:
    """``x[index]`` with ints, slices, None, ..., integer tensors and boolean masks."""
    idx, basic = _normalise(index, input._data.shape)
    try:
        return Index(idx, basic).apply(input)
    except IndexError as e:
        raise _index_error(e, input.shape) from None


def index_select(input: Tensor, dim: int, index) -> Tensor:
    """Pick entries ``index`` (1-D integer tensor) along ``dim``."""
    axis = _check_dim(dim, input._data.ndim, "index_select")
    idx = index._data if isinstance(index, Tensor) else np.asarray(index)
    if idx.ndim > 1 or idx.dtype.kind not in "iu":
        raise IndexError(f"index_select: index must be a 1-D integer tensor, got shape {idx.shape} {idx.dtype}")
    n = input._data.shape[axis]
    if idx.size and (idx.max() >= n or idx.min() < -n):
        raise IndexError(f"index_select: index {int(idx.max())} is out of range for dimension {dim} of size {n}")
    return Index((slice(None),) * axis + (idx.reshape(-1),), False).apply(input)


def gather(input: Tensor, dim: int, index) -> Tensor:
    """``out[i][j] = input[index[i][j]][j]`` for dim 0 (and likewise for other dims), as ``torch.gather``."""
    nd = input._data.ndim
    axis = _check_dim(dim, nd, "gather")
    idx = index._data if isinstance(index, Tensor) else np.asarray(index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"gather: index must be an integer tensor, got {idx.dtype}")
    if idx.ndim != nd:
        raise ValueError(f"gather: index has {idx.ndim} dimensions but input has {nd}")
    for d in range(nd):
        if d != axis and idx.shape[d] > input._data.shape[d]:
            raise ValueError(
                f"gather: index shape {idx.shape} exceeds input shape {input.shape} in dimension {d}"
            )
    n = input._data.shape[axis]
    if idx.size and (idx.max() >= n or idx.min() < -n):
        raise IndexError(f"gather: index {int(idx.max())} is out of range for dimension {dim} of size {n}")
    grids = list(np.ogrid[tuple(slice(0, s) for s in idx.shape)]) if nd else []
    grids[axis] = idx
    return Index(tuple(grids), False).apply(input)


def take_along_dim(input: Tensor, indices, dim: int) -> Tensor:
    return gather(input, dim, indices)


class IndexPut(Function):
    """``out = x.copy(); out[index] = value``: the out-of-place form behind ``x[index] = value``."""

    __slots__ = ("index", "basic")

    def __init__(self, index, basic):
        self.index, self.basic = index, basic

    def forward(self, a, value):
        out = a.copy()
        out[self.index] = value
        return out

    def backward(self, grad):
        x, value = self.inputs
        gx = gv = None
        if x.requires_grad:
            gx = MaskOut(self.index).apply(grad)
        if value.requires_grad:
            picked = Index(self.index, self.basic).apply(grad)
            gv = unbroadcast(picked, value._data.shape)
        return gx, gv


class MaskOut(Function):
    """Zero the entries at ``index`` (the gradient of what an assignment overwrote)."""

    __slots__ = ("index",)

    def __init__(self, index):
        self.index = index

    def forward(self, g):
        out = g.copy()
        out[self.index] = 0
        return out

    def backward(self, gradgrad):
        return (MaskOut(self.index).apply(gradgrad),)


def index_put(input: Tensor, index, value) -> Tensor:
    idx, basic = _normalise(index, input._data.shape, "setitem")
    x, v = _binary_args(input, value)
    if v._data.dtype != input._data.dtype:
        v = v.to(input._data.dtype) if v._data.dtype.kind == "f" else _wrap(v._data.astype(input._data.dtype))
    x = input
    try:
        return IndexPut(idx, basic).apply(x, v)
    except IndexError as e:
        raise _index_error(e, input.shape) from None
    except ValueError:
        raise ValueError(
            f"setitem: a value of shape {v.shape} cannot be assigned to x[{index!r}] of a tensor of shape "
            f"{input.shape}"
        ) from None


def masked_fill(input: Tensor, mask, value) -> Tensor:
    """``value`` where ``mask`` is true, ``input`` elsewhere."""
    from .elementwise import where

    m = mask._data if isinstance(mask, Tensor) else np.asarray(mask)
    return where(_wrap(m), value, input)
