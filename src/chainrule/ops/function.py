"""``Function``: an op as a small object with ``forward`` and ``backward`` and nothing else.

``forward`` works on NumPy arrays and returns an array; ``backward`` receives the gradient of the
output as a Tensor and returns one Tensor (or None) per input. Backward rules are written with Tensor
ops, so with ``create_graph=True`` the backward pass is itself recorded and can be differentiated
again; without it, grad mode is off during backward and those ops build no nodes.

Write your own op the same way::

    class Cube(cr.Function):
        def forward(self, x):
            return x ** 3
        def backward(self, grad):
            (x,) = self.inputs
            return (grad * 3 * x ** 2,)

    y = Cube().apply(x)
"""

from __future__ import annotations

import weakref

from .. import autograd
from ..tensor import Tensor


class Function:
    """Base class of every differentiable op (a node of the computational graph).

    Class attributes a subclass may set:

    - ``saves``: indices of the inputs whose *values* ``backward`` reads. An in-place change to one of
      them after the forward makes ``backward`` raise instead of returning a wrong gradient.
    - ``save_output``: ``backward`` reads the output (available as ``self.output``).
    - ``is_view``: the output shares memory with input 0 (in-place changes are tracked together).
    """

    __slots__ = ("inputs", "_saved_versions", "_out_ref", "__weakref__")
    saves: tuple = ()
    save_output = False
    is_view = False

    def forward(self, *arrays):
        raise TypeError(f"{type(self).__name__} must define forward(self, *arrays)")

    def backward(self, grad_output: Tensor) -> tuple:
        raise TypeError(f"{type(self).__name__} must define backward(self, grad_output)")

    @classmethod
    def op_name(cls) -> str:
        return cls.__name__.lower()

    @property
    def output(self) -> Tensor:
        out = self._out_ref()
        if out is None:
            raise RuntimeError(f"{self.op_name()}: the output needed for backward no longer exists")
        return out

    def apply(self, *inputs: Tensor) -> Tensor:
        """Run ``forward`` on the inputs' arrays and, when grad mode is on, record this node."""
        try:
            data = self.forward(*[t._data for t in inputs])
        except ValueError as e:
            raise _shape_error(self, inputs, e) from None
        out = Tensor._wrap(data)
        if self.is_view:
            out._version = inputs[0]._version
        if autograd._grad_enabled:
            for t in inputs:
                if t.requires_grad:
                    break
            else:
                return out
            self.inputs = inputs
            out.requires_grad = True
            out._node = self
            if self.saves:
                self._saved_versions = tuple([inputs[i]._version[0] for i in self.saves])
            if self.save_output:
                self._out_ref = weakref.ref(out)
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"


def _shape_error(fn: Function, inputs, err: Exception) -> Exception:
    msg = str(err)
    shapes = " and ".join(str(tuple(t.shape)) for t in inputs)
    if "broadcast" in msg:
        return ValueError(f"{fn.op_name()}: shapes {shapes} cannot be broadcast together")
    return ValueError(f"{fn.op_name()}: invalid input of shape {shapes}: {msg}")


def unbroadcast(grad: Tensor, shape: tuple) -> Tensor:
    """Sum ``grad`` down to ``shape``: the backward of broadcasting, shared by every op.

    A dimension that broadcasting added in front is summed away; a dimension of size 1 that was
    stretched is summed with keepdim.
    """
    gshape = grad._data.shape
    if gshape == shape:
        return grad
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and gshape[i + lead] != 1
    )
    if axes:
        grad = grad.sum(dim=axes, keepdim=True)
    if lead or grad._data.shape != shape:
        grad = grad.reshape(shape)
    return grad
