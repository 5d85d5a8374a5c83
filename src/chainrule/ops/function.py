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

An op may also define a first-order fast path, ``backward_array(self, grad: ndarray)``, returning one
ndarray (or None) per input in plain NumPy: no Tensor objects, no op dispatch. The engine calls it when
``create_graph`` is False and the plain ``backward`` otherwise, so both must give the same gradient
(tests/test_fast_backward.py compares them for every row of the op table). It must not modify
``grad`` in place (the engine may hand the same array to several inputs) nor return an array the node
keeps (the graph can be walked again).
"""

from __future__ import annotations

import weakref

import numpy as np

from .. import autograd
from ..tensor import Tensor

_new = object.__new__
_ndarray = np.ndarray
_asarray = np.asarray


class Function:
    """Base class of every differentiable op (a node of the computational graph).

    Class attributes a subclass may set:

    - ``saves``: indices of the inputs whose *values* ``backward`` reads. An in-place change to one of
      them after the forward makes ``backward`` raise instead of returning a wrong gradient.
    - ``save_output``: ``backward`` reads the output (available as ``self.output``).
    - ``is_view``: the output shares memory with input 0 (in-place changes are tracked together).

    A recorded node holds ``inputs`` (the tensors, for backward to read), ``parents`` (each input's
    node at the time, None for a leaf) and the versions of the inputs it saved.
    """

    __slots__ = ("inputs", "parents", "_saved_versions", "_out_ref", "_out_version", "_released", "__weakref__")
    saves: tuple = ()
    save_output = False
    is_view = False

    def forward(self, *arrays):
        raise TypeError(f"{type(self).__name__} must define forward(self, *arrays)")

    def backward(self, grad_output: Tensor) -> tuple:
        raise TypeError(f"{type(self).__name__} must define backward(self, grad_output)")

    # Optional: ``backward_array(self, grad: ndarray) -> tuple`` of ndarrays, the first-order fast path.
    backward_array = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # A subclass that rewrites backward but not the fast path must not inherit a stale fast path.
        if "backward" in cls.__dict__ and "backward_array" not in cls.__dict__:
            cls.backward_array = None

    @classmethod
    def op_name(cls) -> str:
        """The op's name in messages: ``mul`` for both ``Mul`` and its Python-number form ``MulScalar``."""
        return cls.__name__.removesuffix("Scalar").lower()

    @property
    def output(self) -> Tensor:
        out = self._out_ref()
        if out is None:
            raise RuntimeError(f"{self.op_name()}: the output needed for backward no longer exists")
        return out

    def apply(self, *inputs: Tensor) -> Tensor:
        """Run ``forward`` on the inputs' arrays and, when grad mode is on, record this node.

        This runs for every op, forward and backward, so it is written for speed: one- and
        two-input ops (nearly all of them) skip the generic list building.
        """
        n = len(inputs)
        try:
            if n == 1:
                data = self.forward(inputs[0]._data)
            elif n == 2:
                data = self.forward(inputs[0]._data, inputs[1]._data)
            else:
                data = self.forward(*[t._data for t in inputs])
        except ValueError as e:
            raise _shape_error(self, inputs, e) from None
        out = _new(Tensor)
        out._data = data if type(data) is _ndarray else _asarray(data)
        out.grad = out._node = out.name = None
        out.requires_grad = False
        out._version = inputs[0]._version if self.is_view else [0]
        if not autograd._grad_mode.enabled:
            return out
        # Record the node only when some input needs a gradient. ``parents`` holds each input's node
        # as it is now: an in-place op later gives that tensor a new node, but this op's gradient
        # must still flow into the old one.
        if n == 1:
            x = inputs[0]
            if not x.requires_grad:
                return out
            self.parents = (x._node,)
            if self.saves:
                self._saved_versions = (x._version[0],)
        elif n == 2:
            x, y = inputs
            if not (x.requires_grad or y.requires_grad):
                return out
            self.parents = (x._node, y._node)
            if self.saves:
                self._saved_versions = (x._version[0], y._version[0])
        else:
            for t in inputs:
                if t.requires_grad:
                    break
            else:
                return out
            self.parents = tuple([t._node for t in inputs])
            if self.saves:
                self._saved_versions = tuple([t._version[0] for t in inputs])
        self.inputs = inputs
        out.requires_grad = True
        out._node = self
        if self.save_output:
            self._out_ref = weakref.ref(out)
            self._out_version = out._version[0]
        return out

    def __repr__(self) -> str:  # PyTorch's form; a tensor's repr shows grad_fn=<MulBackward0>
        return f"<{self.name()} object at {hex(id(self))}>"

    # ---- PyTorch's view of a node (grad_fn) ------------------------------------------------------
    def name(self) -> str:
        """PyTorch's name for this node: ``MulBackward0`` for ``x * y``."""
        return f"{type(self).__name__.removesuffix('Scalar')}Backward0"

    @property
    def next_functions(self) -> tuple:
        """``(node, 0)`` per input, as PyTorch's ``grad_fn.next_functions``: the input's own node, an
        ``AccumulateGrad`` for a leaf that requires grad, None for an input without gradient."""
        inputs = getattr(self, "inputs", ())
        parents = getattr(self, "parents", (None,) * len(inputs))
        return tuple(
            (p if p is not None else AccumulateGrad(t) if t.requires_grad else None, 0)
            for t, p in zip(inputs, parents)
        )

    def register_hook(self, hook):
        """``hook(grad_inputs, grad_outputs)`` is not supported on nodes; hook the tensor instead."""
        raise RuntimeError("grad_fn.register_hook() is not supported by chainrule; use Tensor.register_hook()")


class AccumulateGrad:
    """Where a leaf's gradient ends up (``.variable`` is the leaf), as in PyTorch's graph."""

    __slots__ = ("variable",)
    next_functions = ()

    def __init__(self, variable: Tensor) -> None:
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    def __eq__(self, other) -> bool:
        return isinstance(other, AccumulateGrad) and other.variable is self.variable

    def __hash__(self) -> int:
        return id(self.variable)

    def __repr__(self) -> str:
        return f"<AccumulateGrad object at {hex(id(self))}>"


def _shape_error(fn: Function, inputs, err: Exception) -> Exception:
    msg = str(err)
    shapes = " and ".join(str(tuple(t.shape)) for t in inputs)
    if "broadcast" in msg:
        return ValueError(f"{fn.op_name()}: shapes {shapes} cannot be broadcast together")
    return ValueError(f"{fn.op_name()}: invalid input of shape {shapes}: {msg}")


def _unbroadcast_axes(gshape: tuple, shape: tuple) -> tuple[int, tuple]:
    """How many leading dimensions broadcasting added, and the axes to sum (those and stretched 1s)."""
    lead = len(gshape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and gshape[i + lead] != 1
    )
    return lead, axes


def unbroadcast(grad: Tensor, shape: tuple) -> Tensor:
    """Sum ``grad`` down to ``shape``: the backward of broadcasting, shared by every op.

    A dimension that broadcasting added in front is summed away; a dimension of size 1 that was
    stretched is summed with keepdim.
    """
    gshape = grad._data.shape
    if gshape == shape:
        return grad
    lead, axes = _unbroadcast_axes(gshape, shape)
    if axes:
        grad = grad.sum(dim=axes, keepdim=True)
    if lead or grad._data.shape != shape:
        grad = grad.reshape(shape)
    return grad


def unbroadcast_array(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """:func:`unbroadcast` on a plain array, for ``backward_array`` fast paths."""
    gshape = np.shape(grad)
    if gshape == shape:
        return grad
    _, axes = _unbroadcast_axes(gshape, shape)
    if axes:
        grad = np.sum(grad, axis=axes, keepdims=True)
    return np.reshape(grad, shape)
