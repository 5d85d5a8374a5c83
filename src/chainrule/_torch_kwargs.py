"""PyTorch's keyword aliases on common ops: ``axis=`` for ``dim=``, ``keepdims=`` for ``keepdim=``,
and ``out=`` (the result written into a given tensor).

The ops in ``ops/`` take PyTorch's main spelling; these wrappers add the aliases around the public
functions and Tensor methods only (Python operators call the ops directly and pay nothing). A call
without keyword arguments goes straight through.

>>> cr.ones(2, 3).sum(axis=1, keepdims=True).shape
chainrule.Size([2, 1])
"""

from __future__ import annotations

import functools

import numpy as np

from . import autograd
from .tensor import Tensor

# Ops whose first dimension argument PyTorch also accepts as ``axis``.
DIM_OPS = (
    "sum", "mean", "var", "std", "amax", "amin", "max", "min", "argmax", "argmin", "all", "any", "prod",
    "norm", "logsumexp", "softmax", "log_softmax", "cumsum", "cat", "concat", "concatenate", "stack",
    "squeeze", "unsqueeze", "flip", "var_mean", "std_mean",
)
# Ops that also take ``out=``.
OUT_OPS = (
    "add", "sub", "mul", "div", "pow", "exp", "log", "sqrt", "abs", "neg", "sin", "cos", "tanh", "sigmoid",
    "matmul", "mm", "bmm", "sum", "mean", "prod", "cat", "stack", "clamp", "maximum", "minimum", "amax",
    "amin", "cumsum",
)


def write_out(out: Tensor, result: Tensor, op: str) -> Tensor:
    """PyTorch's ``out=``: the result's values in ``out`` (resized if its shape differs)."""
    if not isinstance(out, Tensor):
        raise TypeError(f"{op}(): out= must be a Tensor, got {type(out).__name__}")
    if autograd.is_grad_enabled() and (result.requires_grad or out.requires_grad):
        raise RuntimeError(f"{op}(): functions with out=... arguments don't support automatic differentiation")
    arr = result._data
    if out._data.shape == arr.shape and out._data.flags.writeable:
        np.copyto(out._data, arr, casting="unsafe")
    else:
        out._data = arr.astype(out._data.dtype, copy=True)
    out._version[0] += 1
    return out


def with_aliases(fn, name: str, dims: bool, outs: bool):
    @functools.wraps(fn)
    def op(*args, **kwargs):
        if not kwargs:
            return fn(*args)
        if dims:
            if "axis" in kwargs:
                if "dim" in kwargs:
                    raise TypeError(f"{name}(): got both dim= and its alias axis=")
                kwargs["dim"] = kwargs.pop("axis")
            if "keepdims" in kwargs:
                kwargs["keepdim"] = kwargs.pop("keepdims")
        out = kwargs.pop("out", None) if outs else None
        result = fn(*args, **kwargs)
        return result if out is None else write_out(out, result, name)

    return op


def install(namespace: dict) -> None:
    """Wrap the ops in ``namespace`` (the chainrule package's) and the matching Tensor methods."""
    for name in sorted(set(DIM_OPS) | set(OUT_OPS)):
        dims, outs = name in DIM_OPS, name in OUT_OPS
        fn = namespace.get(name)
        if fn is not None and callable(fn):
            namespace[name] = with_aliases(fn, name, dims, outs)
        method = Tensor.__dict__.get(name)
        if method is not None and callable(method):
            setattr(Tensor, name, with_aliases(method, name, dims, False))
