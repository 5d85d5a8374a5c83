"""Regularisation and gradient utilities: penalties, gradient clipping, flat parameter vectors.

A penalty is added to the loss: ``loss = criterion(model(x), y) + l2_penalty(model.parameters(), 1e-4)``.
With plain SGD, ``l2_penalty(params, lam)`` has gradient 2 lam W, the same step as ``weight_decay = 2 lam``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import autograd
from ..ops.shape import cat
from ..tensor import Tensor


def _params(parameters) -> list[Tensor]:
    from .module import Module

    if isinstance(parameters, Module):
        return list(parameters.parameters())
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def l1_penalty(parameters, lam: float = 1.0) -> Tensor:
    """lam * Omega(W) with Omega(W) = sum |w| over all given parameters (a Module means all of its
    parameters; pass e.g. ``[m.weight for m in layers]`` to leave biases out)."""
    params = _params(parameters)
    if not params:
        raise ValueError("l1_penalty: no parameters given")
    total = params[0].abs().sum()
    for p in params[1:]:
        total = total + p.abs().sum()
    return total * lam


def l2_penalty(parameters, lam: float = 1.0) -> Tensor:
    """lam * Omega(W) with Omega(W) = sum w^2 (the squared Frobenius norms) over the given parameters."""
    params = _params(parameters)
    if not params:
        raise ValueError("l2_penalty: no parameters given")
    total = (params[0] * params[0]).sum()
    for p in params[1:]:
        total = total + (p * p).sum()
    return total * lam


def _grads(parameters) -> list[Tensor]:
    return [p.grad for p in _params(parameters) if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> Tensor:
    """Scale all gradients together so that their joint ``norm_type``-norm is at most ``max_norm``.

    The total norm is the norm of the vector of all gradient entries; gradients are multiplied by
    min(1, max_norm / (total + 1e-6)), as in PyTorch. Returns the total norm before clipping.
    """
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not grads:
        return Tensor._wrap(np.asarray(0.0, dtype=np.float32))
    dtype = grads[0]._data.dtype
    if math.isinf(norm_type):
        norms = [np.max(np.abs(g._data)) if g._data.size else 0.0 for g in grads]
        total = float(np.max(norms))
    else:
        per = [np.sum(np.abs(g._data.astype(np.float64)) ** norm_type) for g in grads]
        total = float(np.sum(per) ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite ({total}), "
            "so it cannot be clipped; pass error_if_nonfinite=False to clip anyway"
        )
    coef = min(max_norm / (total + 1e-6), 1.0)
    with autograd.no_grad(), np.errstate(invalid="ignore"):  # inf * 0 -> nan, as in PyTorch
        for g in grads:
            g._data *= g._data.dtype.type(coef)
            g._version[0] += 1
    return Tensor._wrap(np.asarray(total, dtype=dtype))


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient entry to [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        np.clip(g._data, -clip_value, clip_value, out=g._data)
        g._version[0] += 1


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated into one vector (differentiable)."""
    params = _params(parameters)
    if not params:
        raise ValueError("parameters_to_vector: no parameters given")
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of ``vec`` into the parameters, in place (an optimizer holding them
    keeps working)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"vector_to_parameters: expected a Tensor, got {type(vec).__name__}")
    params = _params(parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(
            f"vector_to_parameters: expected a vector of {total} entries (the parameters' total size), "
            f"got shape {tuple(vec.shape)}"
        )
    offset = 0
    for p in params:
        n = p.numel()
        np.copyto(p._data, vec._data[offset:offset + n].reshape(p.shape), casting="unsafe")
        p._version[0] += 1
        offset += n


__all__ = ["l1_penalty", "l2_penalty", "clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters"]


def functional_call(module, parameters_and_buffers: dict, args=(), kwargs=None):
    """Call ``module(*args, **kwargs)`` with some of its parameters or buffers replaced by the given
    tensors (by ``state_dict`` name), then put the module's own back, as ``torch.func.functional_call``.

    This is how a check that perturbs copies of the weights (``cr.gradcheck`` works on float64 copies)
    routes those copies through a layer:

    >>> layer = cr.nn.Linear(3, 2).double()
    >>> x = cr.randn(4, 3, dtype=cr.float64, requires_grad=True)
    >>> names = [n for n, _ in layer.named_parameters()]
    >>> cr.gradcheck(lambda x, *p: functional_call(layer, dict(zip(names, p)), (x,)),
    ...              [x, *layer.parameters()]).ok
    True
    """
    if not isinstance(args, tuple):
        args = (args,)
    swapped = []
    try:
        for name, value in parameters_and_buffers.items():
            owner_path, _, leaf = name.rpartition(".")
            owner = module
            for part in owner_path.split(".") if owner_path else ():
                if part not in owner._modules:
                    raise KeyError(f"functional_call: {type(module).__name__} has no submodule {owner_path!r}")
                owner = owner._modules[part]
            for registry in (owner._parameters, owner._buffers):
                if leaf in registry:
                    swapped.append((registry, leaf, registry[leaf]))
                    registry[leaf] = value
                    break
            else:
                raise KeyError(f"functional_call: {type(module).__name__} has no parameter or buffer {name!r}")
        return module(*args, **(kwargs or {}))
    finally:
        for registry, leaf, old in reversed(swapped):
            registry[leaf] = old


# isort: split
# ``cr.nn.utils.rnn``: packing and padding of variable-length sequences, as ``torch.nn.utils.rnn``.
import sys  # noqa: E402

from . import rnn_utils as rnn  # noqa: E402

# ``import chainrule.nn.utils.rnn`` / ``from chainrule.nn.utils.rnn import pad_sequence`` work as in PyTorch
sys.modules.setdefault(f"{__name__}.rnn", rnn)
