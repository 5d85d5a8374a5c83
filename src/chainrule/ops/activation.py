"""Activation functions as fused ops: one node each, stable for any input, backward in Tensor ops.

Every forward here is written so that inputs of +-1000 (and beyond) give finite results without
overflow warnings; every backward is a composition of differentiable Tensor ops, so
``create_graph=True`` gives exact second derivatives.

``erf`` has no NumPy implementation, so it is built here from piecewise Chebyshev interpolants whose
coefficients are computed once from :func:`math.erf` (float64-accurate to a few ulps; see ``_erf``).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..tensor import Tensor
from .elementwise import _floating, _stable_sigmoid, exp, sigmoid, tanh, where
from .function import Function, unbroadcast

_wrap = Tensor._wrap
_SQRT_2 = math.sqrt(2.0)
_SQRT_PI = math.sqrt(math.pi)
_TWO_OVER_SQRT_PI = 2.0 / _SQRT_PI
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_K = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


# ---- erf / erfc ------------------------------------------------------------------------------------
def _erfc_asymptotic(x: float) -> float:
    """x sqrt(pi) e^{x^2} erfc(x) = 1 - 1/(2x^2) + 3/(2x^2)^2 - ... (used for x > 10 only)."""
    total, term = 1.0, 1.0
    for n in range(1, 30):
        term *= -(2 * n - 1) / (2.0 * x * x)
        total += term
    return total


def _interpolant(f, degree: int) -> np.ndarray:
    from numpy.polynomial import chebyshev

    # the loop runs over the degree+1 interpolation nodes once, never over a tensor's elements
    return chebyshev.chebinterpolate(lambda t: np.array([f(float(v)) for v in t]), degree)


@functools.cache
def _erf_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chebyshev coefficients of three smooth functions that together give erf and erfc:

    - |x| < 1:  erf(x) = x * A(u),  A = erf(x)/x as a function of u = x^2, t = 2u - 1;
    - 1 <= x < 4: erfc(x) = e^{-x^2} * B(x),  t = (2x - 5) / 3;
    - x >= 4: erfc(x) = e^{-x^2} / (x sqrt(pi)) * C(s),  s = 4/x, t = 2s - 1.
    """

    def a(t):
        x = math.sqrt((t + 1.0) / 2.0)
        return math.erf(x) / x if x > 0 else _TWO_OVER_SQRT_PI

    def b(t):
        x = (3.0 * t + 5.0) / 2.0
        return math.erfc(x) * math.exp(x * x)

    def c(t):
        s = (t + 1.0) / 2.0
        if s <= 0:
            return 1.0
        x = 4.0 / s
        if x > 10.0:
            return _erfc_asymptotic(x)
        return x * _SQRT_PI * math.erfc(x) * math.exp(x * x)

    return _interpolant(a, 12), _interpolant(b, 22), _interpolant(c, 20)


def _erfc_positive(x: np.ndarray) -> np.ndarray:
    """erfc(x) for x >= 1 (relative accuracy ~1e-14 in float64, including the far tail)."""
    from numpy.polynomial import chebyshev

    _, tb, tc = _erf_tables()
    out = np.empty_like(x)
    mid = x < 4.0
    with np.errstate(under="ignore", over="ignore"):  # e^{-x^2} -> 0 for huge x is the right answer
        xm = x[mid]
        out[mid] = np.exp(-xm * xm) * chebyshev.chebval((2.0 * xm - 5.0) / 3.0, tb)
        xt = x[~mid]
        out[~mid] = np.exp(-xt * xt) / (xt * _SQRT_PI) * chebyshev.chebval(8.0 / xt - 1.0, tc)
    return out


def _erf(x: np.ndarray) -> np.ndarray:
    """Vectorised erf, float64-accurate; computed in float64 and returned in x's dtype."""
    from numpy.polynomial import chebyshev

    ta = _erf_tables()[0]
    x64 = np.asarray(x, dtype=np.float64)
    ax = np.abs(x64)
    out = np.empty_like(x64)
    small = ax < 1.0
    xs = x64[small]
    out[small] = xs * chebyshev.chebval(2.0 * xs * xs - 1.0, ta)
    big = ~small
    xb = x64[big]
    out[big] = np.copysign(1.0 - _erfc_positive(np.abs(xb)), xb)
    nan = np.isnan(x64)
    if nan.any():
        out[nan] = np.nan
    return out.astype(x.dtype, copy=False)


def _erfc(x: np.ndarray) -> np.ndarray:
    """Vectorised erfc = 1 - erf, accurate in relative terms for large positive x."""
    x64 = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x64)
    pos = x64 >= 1.0
    out[pos] = _erfc_positive(x64[pos])
    neg = x64 <= -1.0
    out[neg] = 2.0 - _erfc_positive(-x64[neg])
    mid = ~(pos | neg)
    out[mid] = 1.0 - _erf(x64[mid])
    return out.astype(x.dtype, copy=False)


class Erf(Function):
    __slots__ = ()
    saves = (0,)

    def forward(self, a):
        return _erf(a)

    def backward(self, grad):
        (x,) = self.inputs
        return (grad * _TWO_OVER_SQRT_PI * exp(-(x * x)),)  # d/dx erf = 2/sqrt(pi) e^{-x^2}


class Erfc(Function):
    __slots__ = ()
    saves = (0,)

    def forward(self, a):
        return _erfc(a)

    def backward(self, grad):
        (x,) = self.inputs
        return (grad * -_TWO_OVER_SQRT_PI * exp(-(x * x)),)


def erf(input: Tensor) -> Tensor:
    """The error function 2/sqrt(pi) * integral_0^x e^{-t^2} dt."""
    return Erf().apply(_floating(input))


def erfc(input: Tensor) -> Tensor:
    """The complementary error function 1 - erf(x), accurate where erf(x) is close to 1."""
    return Erfc().apply(_floating(input))


# ---- piecewise-linear units ------------------------------------------------------------------------
class LeakyRelu(Function):
    __slots__ = ("slope",)
    saves = (0,)

    def __init__(self, slope):
        self.slope = slope

    def forward(self, a):
        return np.where(a > 0, a, a * a.dtype.type(self.slope))

    def backward(self, grad):
        x = self.inputs[0]._data
        local = np.where(x > 0, x.dtype.type(1), x.dtype.type(self.slope))
        return (grad * _wrap(local),)  # 1 for x > 0, slope elsewhere

    def backward_array(self, grad):
        x = self.inputs[0]._data
        return (grad * np.where(x > 0, x.dtype.type(1), x.dtype.type(self.slope)),)


def leaky_relu(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    return LeakyRelu(float(negative_slope)).apply(_floating(input))


class Prelu(Function):
    """x for x > 0, a * x otherwise, with a learned slope ``a`` (broadcast against x)."""

    __slots__ = ()
    saves = (0, 1)

    def forward(self, x, a):
        return np.where(x > 0, x, a * x)

    def backward(self, grad):
        x, a = self.inputs
        positive = _wrap(x._data > 0)
        gx = ga = None
        if x.requires_grad:
            gx = unbroadcast(grad * where(positive, 1.0, a), x._data.shape)  # 1 or a
        if a.requires_grad:
            ga = unbroadcast(grad * where(positive, 0.0, x), a._data.shape)  # d/da = x where x <= 0
        return gx, ga


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """PReLU with ``weight`` of shape (1,) or (channels,), channels being dimension 1 (0 for 1-D)."""
    x = _floating(input)
    n = weight._data.size
    if weight._data.ndim > 1:
        raise ValueError(f"prelu: weight must be 1-D, got shape {weight.shape}")
    if n != 1:
        channel_dim = 1 if x._data.ndim >= 2 else 0
        channels = x._data.shape[channel_dim] if x._data.ndim else 1
        if channels != n:
            raise ValueError(
                f"prelu: weight has {n} slopes but the input of shape {x.shape} has {channels} channels "
                f"(dimension {channel_dim})"
            )
        shape = [1] * x._data.ndim
        shape[channel_dim] = n
        weight = weight.reshape(tuple(shape))
    elif x._data.ndim == 0:
        weight = weight.reshape(())
    if weight._data.dtype != x._data.dtype:
        weight = weight.to(x._data.dtype)
    return Prelu().apply(x, weight)


class Elu(Function):
    __slots__ = ("alpha",)
    saves = (0,)

    def __init__(self, alpha):
        self.alpha = alpha

    def forward(self, a):
        negative = np.expm1(np.minimum(a, 0))  # never overflows: the argument is <= 0
        negative *= a.dtype.type(self.alpha)
        return np.where(a > 0, a, negative)

    def backward(self, grad):
        (x,) = self.inputs
        positive = _wrap(x._data > 0)
        # 1 for x > 0, alpha e^x otherwise (written on min(x, 0) so it stays finite and differentiable)
        local = where(positive, 1.0, self.alpha * exp(x.clamp(max=0.0)))
        return (grad * local,)

    def backward_array(self, grad):
        x = self.inputs[0]._data
        return (grad * np.where(x > 0, 1.0, self.alpha * np.exp(np.minimum(x, 0.0))),)


def elu(input: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha (e^x - 1) otherwise."""
    return Elu(float(alpha)).apply(_floating(input))


# ---- smooth units ----------------------------------------------------------------------------------
class Gelu(Function):
    """x * Phi(x), Phi the standard normal CDF: Phi(x) = (1 + erf(x / sqrt 2)) / 2."""

    __slots__ = ()
    saves = (0,)

    def forward(self, a):
        with np.errstate(under="ignore"):
            cdf = 0.5 * _erfc(-a.astype(np.float64) / _SQRT_2)
        return (a * cdf).astype(a.dtype, copy=False)

    def backward(self, grad):
        (x,) = self.inputs
        cdf = 0.5 * erfc(x * (-1.0 / _SQRT_2))
        pdf = _INV_SQRT_2PI * exp(-0.5 * (x * x))
        return (grad * (cdf + x * pdf),)  # d/dx x Phi(x) = Phi(x) + x phi(x)


class GeluTanh(Function):
    """x/2 (1 + tanh(k (x + c x^3))), k = sqrt(2/pi), c = 0.044715: the tanh approximation."""

    __slots__ = ()
    saves = (0,)

    def forward(self, a):
        inner = a * (1.0 + _GELU_C * a * a)
        inner *= _GELU_K
        return (0.5 * a * (1.0 + np.tanh(inner))).astype(a.dtype, copy=False)

    def backward(self, grad):
        (x,) = self.inputs
        x2 = x * x
        th = tanh(_GELU_K * x * (1.0 + _GELU_C * x2))
        dinner = _GELU_K * (1.0 + 3.0 * _GELU_C * x2)
        # d/dx = (1 + th)/2 + x/2 (1 - th^2) dinner/dx
        return (grad * (0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * dinner),)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit x * Phi(x); ``approximate='tanh'`` uses the tanh formula."""
    x = _floating(input)
    if approximate == "none":
        return Gelu().apply(x)
    if approximate == "tanh":
        return GeluTanh().apply(x)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


class Silu(Function):
    __slots__ = ()
    saves = (0,)

    def forward(self, a):
        with np.errstate(under="ignore"):
            return a * _stable_sigmoid(a)

    def backward(self, grad):
        (x,) = self.inputs
        s = sigmoid(x)
        return (grad * (s * (1.0 + x * (1.0 - s))),)  # d/dx x s(x) = s (1 + x (1 - s))

    def backward_array(self, grad):
        x = self.inputs[0]._data
        s = _stable_sigmoid(x)
        return (grad * (s * (1.0 + x * (1.0 - s))),)


def silu(input: Tensor) -> Tensor:
    """x * sigmoid(x) (also called swish)."""
    return Silu().apply(_floating(input))


def _softplus_array(z: np.ndarray) -> np.ndarray:
    """log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}): never overflows."""
    with np.errstate(under="ignore"):
        out = np.abs(z)
        np.negative(out, out=out)
        np.exp(out, out=out)
        np.log1p(out, out=out)
    out += np.maximum(z, 0)
    return out


class Softplus(Function):
    __slots__ = ("beta", "threshold")
    saves = (0,)

    def __init__(self, beta, threshold):
        self.beta, self.threshold = beta, threshold

    def forward(self, a):
        z = a * a.dtype.type(self.beta)
        soft = _softplus_array(z)
        soft /= a.dtype.type(self.beta)
        return np.where(z > self.threshold, a, soft)

    def backward(self, grad):
        (x,) = self.inputs
        linear = _wrap(x._data * self.beta > self.threshold)
        return (grad * where(linear, 1.0, sigmoid(x * self.beta)),)  # d/dx softplus = sigmoid(beta x)

    def backward_array(self, grad):
        z = self.inputs[0]._data * self.beta
        return (grad * np.where(z > self.threshold, 1.0, _stable_sigmoid(z)),)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^{beta x}) / beta, and x itself where beta x > threshold (PyTorch's rule)."""
    if beta == 0:
        raise ValueError("softplus: beta must be non-zero")
    return Softplus(float(beta), float(threshold)).apply(_floating(input))


class LogSigmoid(Function):
    __slots__ = ()
    saves = (0,)

    def forward(self, a):
        return -_softplus_array(-a)  # log sigmoid(x) = -softplus(-x)

    def backward(self, grad):
        (x,) = self.inputs
        return (grad * sigmoid(-x),)  # d/dx log sigmoid(x) = 1 - sigmoid(x)

    def backward_array(self, grad):
        return (grad * _stable_sigmoid(-self.inputs[0]._data),)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)), finite for any x."""
    return LogSigmoid().apply(_floating(input))


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """Clamp to [min_val, max_val]."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not exceed max_val ({max_val})")
    return _floating(input).clamp(min_val, max_val)


def selu(input: Tensor) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants."""
    return elu(input, 1.6732632423543772) * 1.0507009873554805


# The Tensor methods PyTorch has for these ops.
Tensor.erf = erf
Tensor.erfc = erfc

__all__ = ["erf", "erfc", "leaky_relu", "prelu", "elu", "gelu", "silu", "softplus", "logsigmoid",
           "hardtanh", "selu"]
