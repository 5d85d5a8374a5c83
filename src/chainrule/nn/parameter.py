"""Parameter: a leaf Tensor that a Module registers as one of its weights."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor


class Parameter(Tensor):
    """A tensor that is a learnable weight: ``requires_grad=True`` and registered on assignment.

    >>> layer = cr.nn.Module()
    >>> layer.weight = cr.nn.Parameter(cr.zeros(3))
    >>> [name for name, _ in layer.named_parameters()]
    ['weight']
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty(0, dtype=np.float32)
        arr = data._data if isinstance(data, Tensor) else np.asarray(data)
        if arr.dtype.kind != "f" and requires_grad:
            raise TypeError(f"Parameter: only floating-point tensors can be parameters, got {arr.dtype}")
        super().__init__(arr if isinstance(data, Tensor) else data, requires_grad=requires_grad)
        if isinstance(data, Tensor):
            self._data = arr  # share memory with the tensor it was made from, as PyTorch does

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
