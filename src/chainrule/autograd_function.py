"""``cr.autograd.Function``: PyTorch's protocol for an op written by hand, with a ``ctx`` object.

``forward(ctx, *args)`` computes the output from Tensors (recording nothing) and keeps what backward
needs on ``ctx``; ``backward(ctx, *grad_outputs)`` returns one gradient per argument of forward (None
for the ones without). ``MyFn.apply(*args)`` runs it and records one node of the graph. Because
backward is written with Tensor ops, ``create_graph=True`` records it too, so double backward works;
``@once_differentiable`` marks a backward that must not be differentiated again.

The ``setup_context`` style is supported as well: ``forward(*args)`` without ctx, and
``setup_context(ctx, inputs, output)`` to fill ctx. (``cr.Function``, the array-level base class of
chainrule's own ops, is a different, lower-level protocol and stays as it is.)

>>> class Cube(cr.autograd.Function):
...     @staticmethod
...     def forward(ctx, x):
...         ctx.save_for_backward(x)
...         return x ** 3
...     @staticmethod
...     def backward(ctx, grad_output):
...         (x,) = ctx.saved_tensors
...         return grad_output * 3 * x ** 2
>>> x = cr.tensor(2.0, requires_grad=True)
>>> Cube.apply(x).backward()
>>> x.grad.item()
12.0
"""

from __future__ import annotations

import functools

from . import autograd
from .ops.function import Function as _Node
from .tensor import Tensor


class FunctionCtx:
    """What ``forward`` hands to ``backward``: saved tensors, flags, and any attribute you set."""

    def __init__(self) -> None:
        self._saved: tuple = ()
        self._saved_versions: tuple = ()
        self.needs_input_grad: tuple = ()
        self._non_differentiable: set = set()
        self.materialize_grads = True
        self._name = "Function"

    def save_for_backward(self, *tensors) -> None:
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_backward: expected Tensors (or None), got {type(t).__name__}; keep other "
                    "values as attributes of ctx (ctx.k = k)"
                )
        self._saved = tensors
        self._saved_versions = tuple(None if t is None else t._version[0] for t in tensors)

    @property
    def saved_tensors(self) -> tuple:
        for i, (t, seen) in enumerate(zip(self._saved, self._saved_versions)):
            if t is not None and t._version[0] != seen:
                raise RuntimeError(
                    f"{self._name}.backward: saved tensor {i} was modified by an in-place operation after "
                    f"save_for_backward (version {t._version[0]}, expected {seen})"
                )
        return tuple(self._saved)

    saved_variables = saved_tensors

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors) -> None:
        """Accepted for PyTorch compatibility: an in-place forward's output is recorded as a new value."""

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)


class _CustomBackward(_Node):
    """The graph node of one ``Function.apply`` call: backward calls the user's static backward."""

    __slots__ = ("ctx", "fn", "arg_is_tensor", "n_args")

    def forward(self, *arrays):  # never called: apply() runs the user's forward on Tensors
        raise RuntimeError("internal: _CustomBackward.forward")

    def backward(self, grad_output: Tensor):
        fn = self.fn
        with _grad_mode(autograd.is_grad_enabled()):
            grads = fn.backward(self.ctx, grad_output)
        if not isinstance(grads, tuple):
            grads = (grads,)
        n = self.n_args
        if len(grads) < n or any(g is not None for g in grads[n:]):
            raise RuntimeError(
                f"{fn.__name__}.backward: returned {len(grads)} gradients, expected {n} "
                "(one per argument of forward, None for those without a gradient)"
            )
        out = []
        for g, is_tensor, t in zip(grads, self.arg_is_tensor, _tensor_args(self)):
            if not is_tensor:
                if g is not None:
                    raise RuntimeError(
                        f"{fn.__name__}.backward: returned a gradient for a non-Tensor argument of forward"
                    )
                continue
            if g is not None:
                if not isinstance(g, Tensor):
                    raise TypeError(f"{fn.__name__}.backward: expected Tensors or None, got {type(g).__name__}")
                if g.shape != t.shape:
                    try:
                        g = g.expand(t.shape) if g.numel() != t.numel() else g.reshape(t.shape)
                    except (ValueError, RuntimeError):
                        raise RuntimeError(
                            f"{fn.__name__}.backward: gradient of shape {tuple(g.shape)} for an input of shape "
                            f"{tuple(t.shape)}"
                        ) from None
            out.append(g)
        return tuple(out)

    def name(self) -> str:
        return f"{self.fn.__name__}Backward"

    def op_name(self) -> str:  # instance-level: messages name the user's Function
        return self.fn.__name__


def _tensor_args(node: _CustomBackward):
    """Pair each argument slot of forward with its tensor (None for non-Tensor arguments)."""
    it = iter(node.inputs)
    return [next(it) if is_tensor else None for is_tensor in node.arg_is_tensor]


class _grad_mode:
    def __init__(self, mode: bool) -> None:
        self.mode = mode

    def __enter__(self):
        self.prev = autograd.is_grad_enabled()
        autograd.set_grad_enabled(self.mode)

    def __exit__(self, *exc):
        autograd.set_grad_enabled(self.prev)
        return False


class Function:
    """Base class of an op written with PyTorch's ``ctx`` protocol (see the module docstring)."""

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define a static forward(ctx, *args)")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function subclass must define a static backward(ctx, *grad_outputs)")

    vjp = backward

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError(
            f"{type(self).__name__}: call {type(self).__name__}.apply(...) (legacy Function instances with "
            "a non-static forward are not supported, as in recent PyTorch)"
        )

    @classmethod
    def apply(cls, *args, **kwargs):
        ctx = FunctionCtx()
        ctx._name = cls.__name__
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        separate = cls.setup_context is not Function.setup_context
        with _grad_mode(False):
            if separate:
                output = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, output)
            else:
                output = cls.forward(ctx, *args, **kwargs)
        tensors = tuple(a for a in args if isinstance(a, Tensor))
        record = autograd.is_grad_enabled() and any(ctx.needs_input_grad)
        if isinstance(output, (tuple, list)):
            return _several_outputs(cls, ctx, tensors, args, output, record)
        if not isinstance(output, Tensor):
            raise TypeError(f"{cls.__name__}.forward: expected a Tensor (or a tuple of them), got "
                            f"{type(output).__name__}")
        if not record:
            return output
        if any(output is t for t in tensors) or output._node is not None:
            output = Tensor._wrap(output._data)  # a fresh tensor to carry this node
        if id(output) in ctx._non_differentiable:
            return output
        if output._data.dtype.kind != "f":
            return output
        node = _CustomBackward()
        node.ctx, node.fn, node.n_args = ctx, cls, len(args)
        node.arg_is_tensor = tuple(isinstance(a, Tensor) for a in args)
        node.inputs = tensors
        node.parents = tuple(t._node for t in tensors)
        output.requires_grad = True
        output._node = node
        return output


def _several_outputs(cls, ctx, tensors, args, outputs, record):
    """Several outputs: one node per output would call backward several times, so it is refused
    plainly rather than computed wrongly."""
    differentiable = [o for o in outputs if isinstance(o, Tensor) and id(o) not in ctx._non_differentiable
                      and o._data.dtype.kind == "f"]
    if not record or not differentiable:
        return tuple(outputs)
    if len(differentiable) == 1:
        only = differentiable[0]

        class _One(cls):  # the one differentiable output: backward gets a gradient for it alone
            @staticmethod
            def forward(ctx2, *a):
                return only

        _One.__name__ = cls.__name__
        index = [i for i, o in enumerate(outputs) if o is only][0]
        original = cls.backward

        def backward(ctx2, grad_output):
            grads = [None] * len(outputs)
            grads[index] = grad_output
            return original(ctx, *grads)

        _One.backward = staticmethod(backward)
        carried = _One.apply(*args)
        return tuple(carried if i == index else o for i, o in enumerate(outputs))
    raise RuntimeError(
        f"{cls.__name__}: a Function with several differentiable outputs is not supported by chainrule yet; "
        "return one Tensor, or mark the others with ctx.mark_non_differentiable"
    )


def once_differentiable(backward):
    """Mark a backward that is not itself differentiable: it runs without recording, and a second
    derivative through it raises a clear error instead of silently giving zero."""

    @functools.wraps(backward)
    def wrapper(ctx, *grad_outputs):
        create_graph = autograd.is_grad_enabled()
        with _grad_mode(False):
            grads = backward(ctx, *grad_outputs)
        # As in PyTorch: only when an incoming gradient is itself differentiable is there a second
        # derivative to refuse; the results then carry a node that raises if backward reaches it.
        if not create_graph or not any(isinstance(g, Tensor) and g.requires_grad for g in grad_outputs):
            return grads
        single = not isinstance(grads, tuple)
        sources = tuple(g for g in grad_outputs if isinstance(g, Tensor) and g.requires_grad)
        out = tuple(_not_twice(g, ctx._name, sources) if isinstance(g, Tensor) else g
                    for g in ((grads,) if single else grads))
        return out[0] if single else out

    return wrapper


class _OnceDifferentiable(_Node):
    __slots__ = ("fn_name",)

    def backward(self, grad_output):
        raise RuntimeError(
            f"{self.fn_name}: trying to differentiate twice a function that was marked with @once_differentiable"
        )


def _not_twice(g: Tensor, name: str, sources: tuple) -> Tensor:
    """``g`` as a result of the differentiable incoming gradients ``sources``, through a node that
    raises when a second backward reaches it (PyTorch's DelayedError)."""
    carried = Tensor._wrap(g._data)
    node = _OnceDifferentiable()
    node.fn_name = name
    node.inputs, node.parents = sources, tuple(t._node for t in sources)
    carried.requires_grad, carried._node = True, node
    return carried


def Variable(data, requires_grad: bool = False, volatile: bool = False):
    """PyTorch's old ``Variable``: today a Tensor sharing ``data``'s memory (``requires_grad`` as given)."""
    if isinstance(data, Tensor):
        if not requires_grad or data.requires_grad:
            return data
        t = data.detach()
    else:
        t = Tensor(data)
    return t.requires_grad_(True) if requires_grad else t
