"""Creating tensors: from data, constant fills, ranges and random draws (all seeded by manual_seed)."""

from __future__ import annotations

import numbers

import numpy as np

from . import backend
from .devices import check_device
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


def tensor(data, dtype=None, device=None, requires_grad: bool = False, name: str | None = None,
           pin_memory: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (Python floats become float32, ints int64); ``name``
    labels it in ``cr.viz`` drawings and chain-rule tables.

    >>> cr.tensor([[1, 2], [3, 4]]).dtype
    dtype('int64')
    """
    check_device(device, "tensor()")
    t = _finish(_to_array(data, dtype), requires_grad)
    t.name = name
    return t


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like :func:`tensor`, but shares memory with an ndarray (or Tensor) of the right dtype."""
    check_device(device, "as_tensor()")
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


def _made(arr: np.ndarray, requires_grad: bool, device, out, op: str) -> Tensor:
    """The common tail of the factories: the device check, ``out=`` and ``requires_grad``."""
    check_device(device, f"{op}()")
    if out is not None:
        if not isinstance(out, Tensor):
            raise TypeError(f"{op}(): out= must be a Tensor, got {type(out).__name__}")
        out._data = arr.astype(out._data.dtype, copy=False) if out._data.dtype != arr.dtype else arr
        out._version[0] += 1
        return out
    return _finish(arr, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False, out=None, layout=None) -> Tensor:
    return _made(np.zeros(_sizes(size, "zeros"), _float_dtype(dtype)), requires_grad, device, out, "zeros")


def ones(*size, dtype=None, device=None, requires_grad: bool = False, out=None, layout=None) -> Tensor:
    return _made(np.ones(_sizes(size, "ones"), _float_dtype(dtype)), requires_grad, device, out, "ones")


def empty(*size, dtype=None, device=None, requires_grad: bool = False, out=None, layout=None,
          pin_memory: bool = False, memory_format=None) -> Tensor:
    return _made(np.empty(_sizes(size, "empty"), _float_dtype(dtype)), requires_grad, device, out, "empty")


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    """A tensor of ``size`` filled with ``fill_value`` (dtype inferred from it, as in PyTorch)."""
    if isinstance(size, (int, np.integer)):
        size = (size,)
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    dt = backend.as_dtype(dtype) or _scalar_dtype(fill_value)
    return _made(np.full(_sizes((tuple(size),), "full"), fill_value, dt), requires_grad, device, out, "full")


def eye(n: int, m: int | None = None, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    return _made(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad, device, out, "eye")


def _number(v):
    return v.item() if isinstance(v, Tensor) else v


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    """Values from ``start`` to ``end`` (exclusive); int64 for integer arguments, float32 otherwise."""
    start, end, step = _number(start), _number(end), _number(step)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    dt = backend.as_dtype(dtype)
    if dt is None:
        ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dt = backend.int64 if ints else backend.get_default_dtype()
    return _made(np.arange(start, end, step).astype(dt, copy=False), requires_grad, device, out, "arange")


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    arr = np.linspace(_number(start), _number(end), steps).astype(_float_dtype(dtype))
    return _made(arr, requires_grad, device, out, "linspace")


def logspace(start, end, steps: int, base: float = 10.0, dtype=None, device=None,
             requires_grad: bool = False, out=None) -> Tensor:
    arr = np.logspace(_number(start), _number(end), steps, base=base).astype(_float_dtype(dtype))
    return _made(arr, requires_grad, device, out, "logspace")


# ---- random draws -----------------------------------------------------------------------------------
class Generator:
    """A random generator of its own, for the ``generator=`` argument of the random functions.

    >>> g = cr.Generator().manual_seed(0)
    >>> cr.rand(2, generator=g).shape
    chainrule.Size([2])
    """

    def __init__(self, device="cpu") -> None:
        check_device(device, "Generator()")
        self.device = device
        self._seed = int(np.random.SeedSequence().entropy % (2 ** 63))
        self._rng = np.random.default_rng(self._seed)

    def manual_seed(self, seed: int) -> Generator:
        self._seed = int(seed)
        self._rng = np.random.default_rng(self._seed)
        return self

    def seed(self) -> int:
        self.manual_seed(int(np.random.SeedSequence().entropy % (2 ** 63)))
        return self._seed

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self):
        return self._rng.bit_generator.state

    def set_state(self, state) -> Generator:
        self._rng.bit_generator.state = state
        return self


def _rng(generator) -> np.random.Generator:
    if generator is None:
        return backend.generator()
    if isinstance(generator, Generator):
        return generator._rng
    if isinstance(generator, np.random.Generator):
        return generator
    raise TypeError(f"generator= must be a cr.Generator, got {type(generator).__name__}")


def rand(*size, generator=None, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    """Uniform draws on [0, 1)."""
    dt = _float_dtype(dtype)
    arr = _rng(generator).random(_sizes(size, "rand")).astype(dt, copy=False)
    return _made(arr, requires_grad, device, out, "rand")


def randn(*size, generator=None, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    """Standard normal draws."""
    dt = _float_dtype(dtype)
    arr = _rng(generator).standard_normal(_sizes(size, "randn")).astype(dt, copy=False)
    return _made(arr, requires_grad, device, out, "randn")


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None, requires_grad: bool = False,
            out=None) -> Tensor:
    """Integers drawn uniformly from [low, high) (int64): ``randint(high, size)`` or
    ``randint(low, high, size)``, as in PyTorch."""
    if size is None and isinstance(high, (tuple, list)):  # randint(high, size)
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint(): missing the size argument, e.g. randint(10, (3,)) or randint(0, 10, (3,))")
    if isinstance(size, (int, np.integer)):
        size = (size,)
    low, high = int(_number(low)), int(_number(high))
    if high <= low:
        raise RuntimeError(f"randint(): expected low < high, got low={low} and high={high}")
    dt = backend.as_dtype(dtype) or backend.int64
    arr = _rng(generator).integers(low, high, size=_sizes((tuple(size),), "randint")).astype(dt, copy=False)
    return _made(arr, requires_grad, device, out, "randint")


def randperm(n: int, *, generator=None, dtype=None, device=None, requires_grad: bool = False, out=None) -> Tensor:
    arr = _rng(generator).permutation(int(n)).astype(backend.as_dtype(dtype) or backend.int64)
    return _made(arr, requires_grad, device, out, "randperm")


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None, requires_grad: bool = False,
           out=None) -> Tensor:
    """Normal draws, with PyTorch's overloads: ``normal(mean_tensor, std_tensor)``,
    ``normal(mean_tensor, std=1.0)``, ``normal(mean, std_tensor)`` and ``normal(mean, std, size)``.

    >>> cr.normal(cr.zeros(3), 1.0).shape
    chainrule.Size([3])
    """
    rng = _rng(generator)
    tensors = [v for v in (mean, std) if isinstance(v, Tensor)]
    if tensors:
        if size is not None:
            raise TypeError("normal(): size= goes with a float mean and std, not with tensors")
        m = mean._data if isinstance(mean, Tensor) else mean
        s = std._data if isinstance(std, Tensor) else std
        if np.any(np.asarray(s) < 0):
            raise RuntimeError("normal(): std must be >= 0")
        shape = np.broadcast_shapes(np.shape(m), np.shape(s))
        dt = backend.as_dtype(dtype) or tensors[0].dtype
        if dt.kind != "f":
            raise RuntimeError(f"normal(): expected a floating-point mean or std, got {dt}")
        arr = (m + s * rng.standard_normal(shape)).astype(dt, copy=False)
        return _made(np.asarray(arr), requires_grad, device, out, "normal")
    if size is None:
        raise TypeError("normal(): with a float mean and std, pass size, e.g. normal(0.0, 1.0, (3,))")
    if isinstance(size, (int, np.integer)):
        size = (size,)
    if std < 0:
        raise RuntimeError(f"normal(): std must be >= 0, got {std}")
    arr = rng.normal(mean, std, _sizes((tuple(size),), "normal")).astype(_float_dtype(dtype), copy=False)
    return _made(arr, requires_grad, device, out, "normal")


def _like(input: Tensor, dtype):
    return backend.as_dtype(dtype) or input.dtype


def zeros_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    return _made(np.zeros(input.shape, _like(input, dtype)), requires_grad, device, None, "zeros_like")


def ones_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    return _made(np.ones(input.shape, _like(input, dtype)), requires_grad, device, None, "ones_like")


def empty_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False, memory_format=None) -> Tensor:
    return _made(np.empty(input.shape, _like(input, dtype)), requires_grad, device, None, "empty_like")


def full_like(input: Tensor, fill_value, dtype=None, device=None, requires_grad: bool = False,
              memory_format=None) -> Tensor:
    arr = np.full(input.shape, _number(fill_value), _like(input, dtype))
    return _made(arr, requires_grad, device, None, "full_like")


def rand_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False, memory_format=None,
              generator=None) -> Tensor:
    return rand(*input.shape, generator=generator, dtype=_like(input, dtype), device=device,
                requires_grad=requires_grad)


def randn_like(input: Tensor, dtype=None, device=None, requires_grad: bool = False, memory_format=None,
               generator=None) -> Tensor:
    return randn(*input.shape, generator=generator, dtype=_like(input, dtype), device=device,
                 requires_grad=requires_grad)


def randint_like(input: Tensor, low=0, high=None, *, dtype=None, device=None, requires_grad: bool = False,
                 generator=None) -> Tensor:
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), generator=generator, dtype=_like(input, dtype), device=device,
                   requires_grad=requires_grad)


# ---- in-place random fills (Tensor methods) ----------------------------------------------------------
def _fill_random(t: Tensor, arr: np.ndarray, name: str) -> Tensor:
    from .ops import elementwise as _E

    return t._inplace(_E._copied, Tensor._wrap(np.asarray(arr)), name=name)


def uniform_(self: Tensor, from_: float = 0.0, to: float = 1.0, *, generator=None) -> Tensor:
    return _fill_random(self, _rng(generator).uniform(from_, to, self._data.shape), "uniform_")


def normal_(self: Tensor, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    return _fill_random(self, _rng(generator).normal(mean, std, self._data.shape), "normal_")


def bernoulli_(self: Tensor, p=0.5, *, generator=None) -> Tensor:
    p = p._data if isinstance(p, Tensor) else p
    return _fill_random(self, _rng(generator).random(self._data.shape) < p, "bernoulli_")


def exponential_(self: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    return _fill_random(self, _rng(generator).exponential(1.0 / lambd, self._data.shape), "exponential_")


def random_(self: Tensor, from_=0, to=None, *, generator=None) -> Tensor:
    """Integers from [from_, to); ``random_(to)`` means [0, to); with neither, [0, 2**mantissa] for
    floats (as in PyTorch) and the whole non-negative range of an integer dtype."""
    if to is None and from_ != 0:
        from_, to = 0, from_
    dt = self._data.dtype
    if to is None:
        to = 2 ** (np.finfo(dt).nmant + 1) + 1 if dt.kind == "f" else (2 if dt.kind == "b" else np.iinfo(dt).max)
    return _fill_random(self, _rng(generator).integers(from_, to, self._data.shape), "random_")


def bernoulli(input: Tensor, p=None, *, generator=None, out=None) -> Tensor:
    """Draw 0 or 1 with the probabilities in ``input`` (or ``p``)."""
    probs = input._data if p is None else (p._data if isinstance(p, Tensor) else p)
    arr = (_rng(generator).random(input._data.shape) < probs).astype(input._data.dtype)
    return _made(arr, False, None, out, "bernoulli")


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Indices drawn from the rows of ``input`` (non-negative weights), as in PyTorch."""
    rng = _rng(generator)
    probs = np.atleast_2d(input._data).astype(np.float64)
    rows = []
    for row in probs:
        total = row.sum()
        if total <= 0 or np.any(row < 0):
            raise RuntimeError("multinomial(): expected non-negative weights with a positive sum")
        rows.append(rng.choice(row.size, size=num_samples, replace=replacement, p=row / total))
    arr = np.asarray(rows, dtype=backend.int64)
    return Tensor._wrap(arr if input._data.ndim == 2 else arr[0])
