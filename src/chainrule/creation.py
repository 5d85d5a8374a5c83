"""Creating tensors: from data, constant fills, ranges and random draws (all seeded by manual_seed)."""

from __future__ import annotations

import numbers

import numpy as np

from . import backend
from .tensor import Tensor, _scalar_dtype, _to_array


def _sizes(size, op: str) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for n in size:
        if not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"{op}: sizes must be non-negative integers, got {size}")
    return tuple(int(n) for n in size)


def _finish(arr: np.ndarray, requires_grad: bool) -> Tensor:
    t = Tensor._wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _float_dtype(dtype) -> np.dtype:
    return backend.as_dtype(dtype) or backend.get_default_dtype()


def tensor(data, dtype=None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """A new tensor holding a copy of ``data`` (Python floats become float32, ints int64); ``name``
    labels it in ``cr.viz`` drawings and chain-rule tables.

    >>> cr.tensor([[1, 2], [3, 4]]).dtype
    dtype('int64')
    """
    t = _finish(_to_array(data, dtype), requires_grad)
    t.name = name
    return t


def as_tensor(data, dtype=None) -> Tensor:
    """Like :func:`tensor`, but shares memory with an ndarray (or Tensor) of the right dtype."""
    if isinstance(data, Tensor) and (dtype is None or backend.as_dtype(dtype) == data.dtype):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or backend.as_dtype(dtype) == data.dtype):
        return Tensor._wrap(data)
    return tensor(data, dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``array`` (its dtype kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected an ndarray, got {type(array).__name__}")
    return Tensor._wrap(array)


def zeros(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.zeros(_sizes(size, "zeros"), _float_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.ones(_sizes(size, "ones"), _float_dtype(dtype)), requires_grad)


def empty(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.empty(_sizes(size, "empty"), _float_dtype(dtype)), requires_grad)


def full(size, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (dtype inferred from it, as in PyTorch)."""
    if isinstance(size, (int, np.integer)):
        size = (size,)
    dt = backend.as_dtype(dtype) or _scalar_dtype(fill_value)
    return _finish(np.full(_sizes((tuple(size),), "full"), fill_value, dt), requires_grad)


def eye(n: int, m: int | None = None, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad: bool = False) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive); int64 for integer arguments, float32 otherwise."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    dt = backend.as_dtype(dtype)
    if dt is None:
        ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dt = backend.int64 if ints else backend.get_default_dtype()
    return _finish(np.arange(start, end, step).astype(dt, copy=False), requires_grad)


def linspace(start, end, steps: int, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.linspace(start, end, steps).astype(_float_dtype(dtype)), requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, dtype=None) -> Tensor:
    return Tensor._wrap(np.logspace(start, end, steps, base=base).astype(_float_dtype(dtype)))


def rand(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Uniform draws on [0, 1)."""
    dt = _float_dtype(dtype)
    return _finish(backend.generator().random(_sizes(size, "rand")).astype(dt, copy=False), requires_grad)


def randn(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    """Standard normal draws."""
    dt = _float_dtype(dtype)
    arr = backend.generator().standard_normal(_sizes(size, "randn")).astype(dt, copy=False)
    return _finish(arr, requires_grad)


def randint(low, high=None, size=(), dtype=None) -> Tensor:
    """Integers drawn uniformly from [low, high) (int64)."""
    if high is None:
        low, high = 0, low
    if isinstance(size, int):
        size = (size,)
    dt = backend.as_dtype(dtype) or backend.int64
    return Tensor._wrap(backend.generator().integers(low, high, size=tuple(size)).astype(dt, copy=False))


def randperm(n: int, dtype=None) -> Tensor:
    return Tensor._wrap(backend.generator().permutation(n).astype(backend.as_dtype(dtype) or backend.int64))


def normal(mean: float, std: float, size, dtype=None) -> Tensor:
    arr = backend.generator().normal(mean, std, tuple(size)).astype(_float_dtype(dtype), copy=False)
    return Tensor._wrap(arr)


def _like(fn, input: Tensor, dtype, requires_grad):
    return fn(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad)


def zeros_like(input: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.zeros(input.shape, backend.as_dtype(dtype) or input.dtype), requires_grad)


def ones_like(input: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.ones(input.shape, backend.as_dtype(dtype) or input.dtype), requires_grad)


def empty_like(input: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.empty(input.shape, backend.as_dtype(dtype) or input.dtype), requires_grad)


def full_like(input: Tensor, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    return _finish(np.full(input.shape, fill_value, backend.as_dtype(dtype) or input.dtype), requires_grad)


def rand_like(input: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return _like(rand, input, dtype, requires_grad)


def randn_like(input: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    return _like(randn, input, dtype, requires_grad)
