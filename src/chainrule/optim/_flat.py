"""The parameters of a full-batch method seen as one flat vector x (their concatenation)."""

from __future__ import annotations

import numpy as np

from .. import autograd
from ..tensor import Tensor


class FlatParams:
    """Reads and writes a list of parameters as one vector, in place in each ``p._data``."""

    def __init__(self, params: list[Tensor]):
        self.params = params
        self.sizes = [p._data.size for p in params]
        self.numel = sum(self.sizes)
        self.dtype = np.result_type(*[p._data.dtype for p in params])

    def _views(self, flat: np.ndarray):
        offset = 0
        for p, n in zip(self.params, self.sizes):
            yield p, flat[offset : offset + n].reshape(p._data.shape)
            offset += n

    def get(self) -> np.ndarray:
        """A copy of x."""
        return np.concatenate([p._data.ravel() for p in self.params]).astype(self.dtype, copy=False)

    def set(self, x: np.ndarray) -> None:
        for p, view in self._views(x):
            np.copyto(p._data, view, casting="unsafe")
            p._version[0] += 1

    def add(self, t: float, d: np.ndarray) -> None:
        """x <- x + t d."""
        for p, view in self._views(d):
            p._data += t * view
            p._version[0] += 1

    def grad(self) -> np.ndarray:
        """The concatenated ``.grad`` (zeros where a parameter has none)."""
        return np.concatenate(
            [
                (p.grad._data.ravel() if p.grad is not None else np.zeros(p._data.size, p._data.dtype))
                for p in self.params
            ]
        ).astype(self.dtype, copy=False)

    def evaluate_at(self, closure, x: np.ndarray, t: float, d: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss and flat gradient at x + t d (for a line search); the parameters go back to x."""
        self.add(t, d)
        loss = float(call_closure(closure))
        grad = self.grad()
        self.set(x)
        return loss, grad

    def unflatten(self, flat: np.ndarray) -> list[Tensor]:
        """Tensors shaped like the parameters, viewing ``flat``."""
        return [Tensor._wrap(view.astype(p._data.dtype, copy=False)) for p, view in self._views(flat)]

    def flatten(self, tensors, like_zero: bool = True) -> np.ndarray:
        """Concatenate one tensor (or None for zeros) per parameter into a flat vector."""
        return np.concatenate(
            [
                (t._data.ravel() if t is not None else np.zeros(p._data.size, p._data.dtype))
                for p, t in zip(self.params, tensors)
            ]
        ).astype(self.dtype, copy=False)


def call_closure(closure) -> Tensor | float:
    """Evaluate the user's closure with grad recording on (it calls backward)."""
    with autograd.enable_grad():
        return closure()
