"""Elementwise ops: arithmetic, exp/log, trigonometry, activations, comparisons.

Each op's forward sits beside its backward, the local derivative times the upstream gradient.
Binary ops broadcast like NumPy; ``unbroadcast`` sums each gradient back to its input's shape.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..tensor import Tensor, _binary_args, result_type
from .function import Function, unbroadcast, unbroadcast_array

_wrap = Tensor._wrap


def _floating(x: Tensor) -> Tensor:
    """Ops like exp on an integer tensor compute in the default float dtype, as PyTorch does."""
    if not isinstance(x, Tensor):
        x = Tensor(x)
    if x._data.dtype.kind == "f":
        return x
    return cast(x, backend.get_default_dtype())


def _const(mask: np.ndarray, dtype) -> Tensor:
    return _wrap(mask.astype(dtype, copy=False))


# ---- arithmetic ----------------------------------------------------------------------------------
class Add(Function):
    __slots__ = ()

    def forward(self, a, b):
        return a + b

    def backward(self, grad):
        a, b = self.inputs
        return (
            unbroadcast(grad, a._data.shape) if a.requires_grad else None,
            unbroadcast(grad, b._data.shape) if b.requires_grad else None,
        )

    def backward_array(self, grad):
        a, b = self.inputs
        return (
            unbroadcast_array(grad, a._data.shape) if a.requires_grad else None,
            unbroadcast_array(grad, b._data.shape) if b.requires_grad else None,
        )


class Sub(Function):
    __slots__ = ()

    def forward(self, a, b):
        return a - b

    def backward(self, grad):
        a, b = self.inputs
        return (
            unbroadcast(grad, a._data.shape) if a.requires_grad else None,
            unbroadcast(-grad, b._data.shape) if b.requires_grad else None,
        )

    def backward_array(self, grad):
        a, b = self.inputs
        return (
            unbroadcast_array(grad, a._data.shape) if a.requires_grad else None,
            unbroadcast_array(-grad, b._data.shape) if b.requires_grad else None,
        )


class Mul(Function):
    __slots__ = ()
    saves = (0, 1)

    def forward(self, a, b):
        return a * b

    def backward(self, grad):
        a, b = self.inputs
        return (
            unbroadcast(grad * b, a._data.shape) if a.requires_grad else None,
            unbroadcast(grad * a, b._data.shape) if b.requires_grad else None,
        )

    def backward_array(self, grad):
        a, b = self.inputs
        return (
            unbroadcast_array(grad * b._data, a._data.shape) if a.requires_grad else None,
            unbroadcast_array(grad * a._data, b._data.shape) if b.requires_grad else None,
        )


class Div(Function):
    __slots__ = ()
    saves = (0, 1)

    def forward(self, a, b):
        return a / b

    def backward(self, grad):
        a, b = self.inputs
        # d(a/b)/da = 1/b ; d(a/b)/db = -a/b^2
        ga = unbroadcast(grad / b, a._data.shape) if a.requires_grad else None
        gb = unbroadcast(-grad * a / (b * b), b._data.shape) if b.requires_grad else None
        return ga, gb

    def backward_array(self, grad):
        a, b = self.inputs[0]._data, self.inputs[1]._data
        ga = unbroadcast_array(grad / b, a.shape) if self.inputs[0].requires_grad else None
        gb = unbroadcast_array(-grad * a / (b * b), b.shape) if self.inputs[1].requires_grad else None
        return ga, gb


class Neg(Function):
    __slots__ = ()

    def forward(self, a):
        return -a

    def backward(self, grad):
        return (-grad,)

    def backward_array(self, grad):
        return (-grad,)


class AddScalar(Function):
    """``a + c`` for a Python number ``c``: a constant, so no tensor is made for it."""

    __slots__ = ("c",)

    def __init__(self, c):
        self.c = c

    def forward(self, a):
        return a + self.c

    def backward(self, grad):
        return (grad,)

    def backward_array(self, grad):
        return (grad,)


class RsubScalar(Function):
    """``c - a`` for a Python number ``c``."""

    __slots__ = ("c",)

    def __init__(self, c):
        self.c = c

    def forward(self, a):
        return self.c - a

    def backward(self, grad):
        return (-grad,)

    def backward_array(self, grad):
        return (-grad,)


class MulScalar(Function):
    """``a * c`` for a Python number ``c``."""

    __slots__ = ("c",)

    def __init__(self, c):
        self.c = c

    def forward(self, a):
        return a * self.c

    def backward(self, grad):
        return (grad * self.c,)

    def backward_array(self, grad):
        return (grad * self.c,)


class DivScalar(Function):
    """``a / c`` for a Python number ``c``."""

    __slots__ = ("c",)

    def __init__(self, c):
        self.c = c

    def forward(self, a):
        return a / self.c

    def backward(self, grad):
        return (grad / self.c,)

    def backward_array(self, grad):
        return (grad / self.c,)


# The fast paths below cover nearly every call: two tensors of one dtype, or a floating tensor and a
# Python number (which keeps the tensor's dtype, as in PyTorch). Everything else goes through
# _binary_args, which applies the full promotion rules.
_PY_NUMBERS = (float, int)


def add(input, other, alpha=1) -> Tensor:
    """``input + alpha * other`` with broadcasting."""
    if alpha == 1 and isinstance(input, Tensor):
        if isinstance(other, Tensor):
            if input._data.dtype is other._data.dtype:
                return Add().apply(input, other)
        elif type(other) in _PY_NUMBERS and input._data.dtype.kind == "f":
            return AddScalar(other).apply(input)
    a, b = _binary_args(input, other)
    if alpha != 1:
        b = mul(b, alpha)
    return Add().apply(a, b)


def sub(input, other, alpha=1) -> Tensor:
    """``input - alpha * other`` with broadcasting."""
    if alpha == 1 and isinstance(input, Tensor):
        if isinstance(other, Tensor):
            if input._data.dtype is other._data.dtype:
                return Sub().apply(input, other)
        elif type(other) in _PY_NUMBERS and input._data.dtype.kind == "f":
            return AddScalar(-other).apply(input)  # a - c is exactly a + (-c)
    elif type(input) in _PY_NUMBERS and isinstance(other, Tensor) and other._data.dtype.kind == "f":
        return RsubScalar(input).apply(other)
    a, b = _binary_args(input, other)
    if alpha != 1:
        b = mul(b, alpha)
    return Sub().apply(a, b)


def mul(input, other) -> Tensor:
    """Elementwise product with broadcasting."""
    if isinstance(input, Tensor):
        if isinstance(other, Tensor):
            if input._data.dtype is other._data.dtype:
                return Mul().apply(input, other)
        elif type(other) in _PY_NUMBERS and input._data.dtype.kind == "f":
            return MulScalar(other).apply(input)
    return Mul().apply(*_binary_args(input, other))


def div(input, other) -> Tensor:
    """True division; integer inputs give the default float dtype, as in PyTorch."""
    if isinstance(input, Tensor) and input._data.dtype.kind == "f":
        if isinstance(other, Tensor):
            if input._data.dtype is other._data.dtype:
                return Div().apply(input, other)
        elif type(other) in _PY_NUMBERS:
            return DivScalar(other).apply(input)
    a, b = _binary_args(input, other)
    if a._data.dtype.kind != "f":
        a, b = _floating(a), _floating(b)
    return Div().apply(a, b)


def neg(input: Tensor) -> Tensor:
    return Neg().apply(input)


def rsub(input, other) -> Tensor:
    return sub(other, input)


def floor_divide(input, other) -> Tensor:
    """Rounded-down division (no gradient)."""
    a, b = _binary_args(input, other)
    return _wrap(np.floor_divide(a._data, b._data))


def remainder(input, other) -> Tensor:
    """Python's modulo (no gradient)."""
    a, b = _binary_args(input, other)
    return _wrap(np.asarray(np.remainder(a._data, b._data)))


class PowScalar(Function):
    __slots__ = ("p",)
    saves = (0,)

    def __init__(self, p):
        self.p = p

    def forward(self, a):
        return a**self.p

    def _rule(self, grad, a):
        """d/da a^p = p a^(p-1), for Tensors (backward) and ndarrays (backward_array) alike."""
        p = self.p
        if p == 0:
            return (grad * 0.0,)
        if p == 1:
            return (grad,)
        if p == 2:
            return (grad * 2.0 * a,)
        return (grad * p * a ** (p - 1),)

    def backward(self, grad):
        return self._rule(grad, self.inputs[0])

    def backward_array(self, grad):
        return self._rule(grad, self.inputs[0]._data)


class RPowScalar(Function):
    __slots__ = ("c",)
    save_output = True

    def __init__(self, c):
        self.c = c

    def forward(self, a):
        return np.power(np.asarray(self.c, dtype=a.dtype), a)

    def backward(self, grad):
        return (grad * self.output * float(np.log(self.c)),)  # d/da c^a = c^a log c


class Pow(Function):
    __slots__ = ()
    saves = (0, 1)
    save_output = True

    def forward(self, a, b):
        return np.power(a, b)

    def backward(self, grad):
        a, b = self.inputs
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(grad * b * a ** (b - 1.0), a._data.shape)
        if b.requires_grad:
            # d/db a^b = a^b log a, taken as 0 where a == 0 and b >= 0 (PyTorch's convention)
            zero = (a._data == 0) & (b._data >= 0)
            safe_log = log(where(zero, 1.0, a))
            gb = unbroadcast(grad * self.output * safe_log, b._data.shape)
        return ga, gb


def pow(input, exponent) -> Tensor:  # noqa: A001 - PyTorch's name
    """``input ** exponent``; either side may be a Python number."""
    if isinstance(input, Tensor) and isinstance(exponent, numbers.Real) and not isinstance(exponent, bool):
        x = input
        if x._data.dtype.kind != "f":
            if isinstance(exponent, numbers.Integral) and exponent < 0:
                raise ValueError("pow: integers to negative integer powers are not allowed")
            if not isinstance(exponent, numbers.Integral):
                x = _floating(x)
        return PowScalar(exponent).apply(x)
    if not isinstance(input, Tensor):
        if not isinstance(input, numbers.Real):
            raise TypeError(f"pow: unsupported base of type {type(input).__name__}")
        x = exponent if exponent._data.dtype.kind == "f" else _floating(exponent)
        return RPowScalar(input).apply(x)
    a, b = _binary_args(input, exponent)
    if a._data.dtype.kind != "f":
        return _wrap(np.power(a._data, b._data))
    return Pow().apply(a, b)


# ---- unary math ----------------------------------------------------------------------------------
class Exp(Function):
    __slots__ = ()
    save_output = True

    def forward(self, a):
        return np.exp(a)

    def backward(self, grad):
        return (grad * self.output,)  # d/da e^a = e^a

    def backward_array(self, grad):
        return (grad * self.output._data,)


class Log(Function):
    __slots__ = ()
    saves = (0,)

    def forward(self, a):
        return np.log(a)

    def backward(self, grad):
        return (grad / self.inputs[0],)  # d/da log a = 1/a

    def backward_array(self, grad):
        return (grad / self.inputs[0]._data,)


class Sqrt(Function):
    __slots__ = ()
    save_output = True

    def forward(self, a):
        return np.sqrt(a)

    def backward(self, grad):
        return (grad / (2.0 * self.output),)  # d/da sqrt a = 1 / (2 sqrt a)

    def backward_array(self, grad):
        return (grad / (2.0 * self.output._data),)


class Abs(Function):
    __slots__ = ()
    saves = (0,)

    def forward(self, a):
        return np.abs(a)

    def backward(self, grad):
        (a,) = self.inputs
        return (grad * _wrap(np.sign(a._data)),)  # sign(0) = 0: PyTorch's subgradient


class Sin(Function):
    __slots__ = ()
    saves = (0,)

    def forward(self, a):
        return np.sin(a)

    def backward(self, grad):
        return (grad * cos(self.inputs[0]),)


class Cos(Function):
    __slots__ = ()
    saves = (0,)

    def forward(self, a):
        return np.cos(a)

    def backward(self, grad):
        return (-grad * sin(self.inputs[0]),)


class Tanh(Function):
    __slots__ = ()
    save_output = True

    def forward(self, a):
        return np.tanh(a)

    def backward(self, grad):
        out = self.output
        return (grad * (1.0 - out * out),)  # d/da tanh a = 1 - tanh^2 a

    def backward_array(self, grad):
        out = self.output._data
        return (grad * (1.0 - out * out),)


def _stable_sigmoid(a: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-a) without overflow: e^-|a| never exceeds 1 (then sigma(a) = e^a / (1 + e^a) for a < 0)."""
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1.0, e) / (1.0 + e)


class Sigmoid(Function):
    __slots__ = ()
    save_output = True

    def forward(self, a):
        return _stable_sigmoid(a)

    def backward(self, grad):
        out = self.output
        return (grad * out * (1.0 - out),)  # sigma' = sigma (1 - sigma)

    def backward_array(self, grad):
        out = self.output._data
        return (grad * out * (1.0 - out),)


class Relu(Function):
    __slots__ = ()
    save_output = True

    def forward(self, a):
        return np.maximum(a, 0)

    def backward(self, grad):
        # 1 where the unit is active, else 0 (a bool mask: NumPy multiplies it in without a cast pass)
        return (Mul().apply(grad, _wrap(self.output._data > 0)),)

    def backward_array(self, grad):
        return (grad * (self.output._data > 0),)


def exp(input: Tensor) -> Tensor:
    return Exp().apply(_floating(input))


def log(input: Tensor) -> Tensor:
    return Log().apply(_floating(input))


def sqrt(input: Tensor) -> Tensor:
    return Sqrt().apply(_floating(input))


def rsqrt(input: Tensor) -> Tensor:
    return PowScalar(-0.5).apply(_floating(input))


def square(input: Tensor) -> Tensor:
    return PowScalar(2).apply(input)


def reciprocal(input: Tensor) -> Tensor:
    return PowScalar(-1).apply(_floating(input))


def abs(input: Tensor) -> Tensor:  # noqa: A001 - PyTorch's name
    return Abs().apply(input)


def sin(input: Tensor) -> Tensor:
    return Sin().apply(_floating(input))


def cos(input: Tensor) -> Tensor:
    return Cos().apply(_floating(input))


def tanh(input: Tensor) -> Tensor:
    return Tanh().apply(_floating(input))


def sigmoid(input: Tensor) -> Tensor:
    """The logistic function 1 / (1 + e^-x), stable for any x."""
    return Sigmoid().apply(_floating(input))


def relu(input: Tensor) -> Tensor:
    """max(x, 0)."""
    return Relu().apply(input)


def sign(input: Tensor) -> Tensor:
    """-1, 0 or 1 (no gradient: the derivative is 0 almost everywhere)."""
    return _wrap(np.sign(input._data))


def floor(input: Tensor) -> Tensor:
    return _wrap(np.floor(input._data))


def ceil(input: Tensor) -> Tensor:
    return _wrap(np.ceil(input._data))


def round(input: Tensor) -> Tensor:  # noqa: A001
    return _wrap(np.round(input._data))


def isnan(input: Tensor) -> Tensor:
    return _wrap(np.isnan(input._data))


def isinf(input: Tensor) -> Tensor:
    return _wrap(np.isinf(input._data))


def isfinite(input: Tensor) -> Tensor:
    return _wrap(np.isfinite(input._data))


# ---- clamp, maximum, minimum, where ---------------------------------------------------------------
class Clamp(Function):
    __slots__ = ("lo", "hi")
    saves = (0,)

    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def forward(self, a):
        return np.clip(a, self.lo, self.hi)

    def backward(self, grad):
        a = self.inputs[0]._data
        inside = np.ones(a.shape, bool)
        if self.lo is not None:
            inside &= a >= self.lo
        if self.hi is not None:
            inside &= a <= self.hi
        return (grad * _const(inside, a.dtype),)  # 1 inside [min, max], 0 where clipped


def clamp(input: Tensor, min=None, max=None) -> Tensor:  # noqa: A002 - PyTorch's names
    """Limit values to [min, max]; either bound may be None or a Tensor."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        out = input
        if min is not None:
            out = maximum(out, min)
        if max is not None:
            out = minimum(out, max)
        return out
    x = input
    if x._data.dtype.kind != "f" and any(isinstance(v, float) for v in (min, max)):
        x = _floating(x)
    return Clamp(min, max).apply(x)


clip = clamp


class _Extremum(Function):
    """Elementwise max/min; on ties the gradient is split evenly, as in PyTorch."""

    __slots__ = ()
    saves = (0, 1)
    pick = staticmethod(np.maximum)

    def forward(self, a, b):
        return self.pick(a, b)

    def backward(self, grad):
        a, b = self.inputs
        ad, bd = a._data, b._data
        dt = np.result_type(ad, bd)
        wins = (ad > bd) if self.pick is np.maximum else (ad < bd)
        share = wins.astype(dt) + 0.5 * (ad == bd)
        ga = unbroadcast(grad * _wrap(share), ad.shape) if a.requires_grad else None
        gb = unbroadcast(grad * _wrap(1.0 - share), bd.shape) if b.requires_grad else None
        return ga, gb


class Maximum(_Extremum):
    __slots__ = ()
    pick = staticmethod(np.maximum)


class Minimum(_Extremum):
    __slots__ = ()
    pick = staticmethod(np.minimum)


def maximum(input, other) -> Tensor:
    return Maximum().apply(*_binary_args(input, other))


def minimum(input, other) -> Tensor:
    return Minimum().apply(*_binary_args(input, other))


class Where(Function):
    __slots__ = ("cond",)

    def __init__(self, cond):
        self.cond = cond

    def forward(self, a, b):
        return np.where(self.cond, a, b)

    def backward(self, grad):
        a, b = self.inputs
        c = _wrap(self.cond)
        ga = unbroadcast(where(c, grad, 0.0), a._data.shape) if a.requires_grad else None
        gb = unbroadcast(where(c, 0.0, grad), b._data.shape) if b.requires_grad else None
        return ga, gb


def where(condition, input, other) -> Tensor:
    """Pick ``input`` where ``condition`` holds and ``other`` elsewhere (broadcast together)."""
    cond = condition._data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {cond.dtype}")
    a, b = _binary_args(input, other)
    try:
        return Where(cond).apply(a, b)
    except ValueError:
        raise ValueError(
            f"where: condition {cond.shape}, input {a.shape} and other {b.shape} cannot be broadcast together"
        ) from None


# ---- dtype, copies ---------------------------------------------------------------------------------
class Cast(Function):
    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, a):
        return a.astype(self.dtype)

    def backward(self, grad):
        return (grad.to(self.inputs[0]._data.dtype),)


def cast(input: Tensor, dtype) -> Tensor:
    dtype = backend.as_dtype(dtype)
    if dtype.kind != "f" or input._data.dtype.kind != "f":
        return _wrap(input._data.astype(dtype))
    return Cast(dtype).apply(input)


class Clone(Function):
    __slots__ = ()

    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        return (grad,)

    def backward_array(self, grad):
        return (grad,)


def clone(input: Tensor) -> Tensor:
    return Clone().apply(input)


class Fill(Function):
    """Backs fill_ and zero_: constant values; the old values get a zero gradient, as in PyTorch."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def forward(self, a):
        return np.full(a.shape, self.value, dtype=a.dtype)

    def backward(self, grad):
        return (grad * 0.0,)


def _filled(input: Tensor, value) -> Tensor:
    if isinstance(value, Tensor):
        value = value.item()
    return Fill(value).apply(input)


class Copy(Function):
    """Backs copy_: ``src`` broadcast and cast to the destination; only ``src`` gets a gradient."""

    __slots__ = ()

    def forward(self, dest, src):
        out = np.empty_like(dest)
        out[...] = src
        return out

    def backward(self, grad):
        dest, src = self.inputs
        gd = grad * 0.0 if dest.requires_grad else None
        gs = unbroadcast(grad, src._data.shape) if src.requires_grad else None
        return gd, gs


def _copied(input: Tensor, src) -> Tensor:
    if not isinstance(src, Tensor):
        src = Tensor(np.asarray(src))
    if src._data.dtype.kind == "f" and input._data.dtype.kind != "f":
        src = _wrap(src._data)  # cast to an integer destination: no gradient
    return Copy().apply(input, src)


# ---- comparisons and logic (no gradient) --------------------------------------------------------
def _compare(ufunc, name: str):
    def compare(input, other) -> Tensor:
        a, b = _binary_args(input, other)
        try:
            return _wrap(np.asarray(ufunc(a._data, b._data)))
        except ValueError:
            raise ValueError(f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None

    compare.__name__ = name
    return compare


eq = _compare(np.equal, "eq")
ne = _compare(np.not_equal, "ne")
lt = _compare(np.less, "lt")
le = _compare(np.less_equal, "le")
gt = _compare(np.greater, "gt")
ge = _compare(np.greater_equal, "ge")
logical_and = _compare(np.logical_and, "logical_and")
logical_or = _compare(np.logical_or, "logical_or")
logical_xor = _compare(np.logical_xor, "logical_xor")
bitwise_and = _compare(np.bitwise_and, "bitwise_and")
bitwise_or = _compare(np.bitwise_or, "bitwise_or")
bitwise_xor = _compare(np.bitwise_xor, "bitwise_xor")


def logical_not(input: Tensor) -> Tensor:
    return _wrap(np.logical_not(input._data))


def bitwise_not(input: Tensor) -> Tensor:
    if input._data.dtype.kind not in "biu":
        raise TypeError(f"~: bitwise not is only defined on bool and integer tensors, got {input.dtype}")
    return _wrap(np.invert(input._data))


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and values."""
    return input.shape == other.shape and bool(np.array_equal(input._data, other._data))


def allclose(input: Tensor, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> bool:
    b = other._data if isinstance(other, Tensor) else other
    return bool(np.allclose(input._data, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def isclose(input: Tensor, other, rtol=1e-5, atol=1e-8, equal_nan=False) -> Tensor:
    b = other._data if isinstance(other, Tensor) else other
    return _wrap(np.isclose(input._data, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "rsqrt", "square", "reciprocal",
    "abs", "sin", "cos", "tanh", "sigmoid", "relu", "clamp", "clip", "maximum", "minimum", "where",
    "sign", "floor", "ceil", "round", "isnan", "isinf", "isfinite", "eq", "ne", "lt", "le", "gt",
    "ge", "logical_and", "logical_or", "logical_xor", "logical_not", "equal", "allclose", "isclose",
    "floor_divide", "remainder", "result_type",
]
