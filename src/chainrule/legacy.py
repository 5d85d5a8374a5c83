"""PyTorch's legacy typed constructors (``cr.FloatTensor``, ``cr.LongTensor`` ...) and ``Tensor.type``.

``cr.FloatTensor(2, 3)`` is an uninitialised float32 tensor of that size, ``cr.FloatTensor([1, 2])``
one holding those values, as in PyTorch; ``t.type(cr.LongTensor)`` casts.

>>> cr.LongTensor([1, 2]).dtype
dtype('int64')
>>> cr.ones(2).type()
'chainrule.FloatTensor'
"""

from __future__ import annotations

import numpy as np

from . import backend
from .devices import _names
from .devices import check_device as _check_device
from .tensor import Tensor

_TYPES = {
    "FloatTensor": backend.float32, "DoubleTensor": backend.float64, "HalfTensor": backend.float16,
    "LongTensor": backend.int64, "IntTensor": backend.int32, "ShortTensor": backend.int16,
    "CharTensor": backend.int8, "ByteTensor": backend.uint8, "BoolTensor": backend.bool_,
}
_NAMES = {dt: name for name, dt in _TYPES.items()}


class _LegacyMeta(type):
    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj.dtype == cls.dtype

    def __repr__(cls) -> str:
        return f"<class '{_names['prefix']}.{cls.__name__}'>"


class _LegacyTensor(metaclass=_LegacyMeta):
    dtype: np.dtype = backend.float32

    def __new__(cls, *args, device=None):
        _check_device(device, cls.__name__)
        if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
            return Tensor(args[0], dtype=cls.dtype)
        for n in args:
            if not isinstance(n, (int, np.integer)) or n < 0:
                raise TypeError(f"{cls.__name__}(): expected sizes (non-negative ints) or data, got {args}")
        return Tensor._wrap(np.zeros(tuple(int(n) for n in args), cls.dtype))


def _make(name: str, dtype: np.dtype) -> type:
    return _LegacyMeta(name, (_LegacyTensor,), {"dtype": dtype, "__doc__": f"Legacy {dtype} tensor type."})


LEGACY = {name: _make(name, dt) for name, dt in _TYPES.items()}
globals().update(LEGACY)


def type_name(dtype: np.dtype) -> str:
    """``'chainrule.FloatTensor'`` for float32 (``torch.`` inside ``chainrule run``)."""
    return f"{_names['prefix']}.{_NAMES[np.dtype(dtype)]}"


def as_dtype(value) -> np.dtype:
    """A dtype from a dtype, a legacy type or its name ('torch.FloatTensor', 'chainrule.LongTensor')."""
    if isinstance(value, _LegacyMeta):
        return value.dtype
    if isinstance(value, str):
        name = value.rpartition(".")[2]
        if name in _TYPES:
            return _TYPES[name]
    return backend.as_dtype(value)
