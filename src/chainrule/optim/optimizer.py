"""Optimizer: the base class with PyTorch's param groups, state and state_dict."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import autograd
from ..tensor import Tensor

required = object()


class Optimizer:
    """Base of every optimizer. ``params`` is an iterable of Parameters or of dicts (param groups)
    each holding ``params`` and any per-group option overriding ``defaults``.

    Subclasses implement ``step`` and update ``p._data`` in place, so models and other references see
    the new weights. Per-parameter state (momentum buffers, moments) lives in ``self.state[p]``.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = defaults
        self.state: dict = {}
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Tensors or dicts, got a single Tensor; "
                "pass model.parameters() or [tensor]"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict) -> None:
        group = dict(group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf Tensor")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(
                f"{type(self).__name__}: some parameters appear in more than one parameter group"
            )
        group["params"] = params
        for key, default in self.defaults.items():
            if default is required and key not in group:
                raise ValueError(f"{type(self).__name__}: parameter group didn't specify a value of {key!r}")
            group.setdefault(key, default)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``p.grad = None`` (default), or fill them with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif g._node is not None or not g._data.flags.writeable:
                    p.grad = Tensor._wrap(np.zeros_like(g._data))
                else:
                    g._data[...] = 0

    def step(self, closure: Callable | None = None):
        raise TypeError(f"{type(self).__name__} must define step()")

    def _closure_loss(self, closure):
        if closure is None:
            return None
        with autograd.enable_grad():
            return closure()

    # ---- helpers for subclasses -------------------------------------------------------------------
    @staticmethod
    def _params_with_grad(group: dict):
        """``(param, grad array)`` for the group's parameters that have a gradient."""
        for p in group["params"]:
            if p.grad is not None:
                yield p, p.grad._data

    @staticmethod
    def _updated(p: Tensor) -> None:
        """Record an in-place change of ``p`` (as PyTorch's version counter does), so a graph that saved
        the old values refuses to backpropagate through them."""
        p._version[0] += 1

    def _workspace(self, like: np.ndarray, slot: int = 0) -> np.ndarray:
        """A scratch array shaped and typed like ``like``: a view into one buffer per (slot, dtype)
        that grows to the largest parameter, so steps allocate nothing once warmed up."""
        cache = self.__dict__.setdefault("_scratch", {})
        key = (slot, like.dtype)
        buf = cache.get(key)
        if buf is None or buf.size < like.size:
            buf = cache[key] = np.empty(like.size, dtype=like.dtype)
        return buf[: like.size].reshape(like.shape)

    # ---- state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{'state': {index: {name: value}}, 'param_groups': [...]}`` with params as indices, as PyTorch."""
        index = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: _copy_state(v) for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the state has {len(groups)} parameter groups, "
                f"this optimizer has {len(self.param_groups)}"
            )
        params = [p for g in self.param_groups for p in g["params"]]
        for mine, theirs in zip(self.param_groups, groups):
            if len(mine["params"]) != len(theirs["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: a parameter group differs in size")
            for k, v in theirs.items():
                if k != "params":
                    mine[k] = v
        self.state = {}
        for i, st in state_dict["state"].items():
            p = params[int(i)]
            new = {}
            for k, v in st.items():
                v = _copy_state(v, p.dtype)
                # per-parameter buffers (Tensors) must match their parameter; flat vectors (ndarrays,
                # as L-BFGS keeps) are the whole problem's size
                if isinstance(v, Tensor) and v.shape not in ((), p.shape):
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict: state {k!r} of parameter {i} has shape "
                        f"{tuple(v.shape)}, the parameter has shape {p.shape}"
                    )
                new[k] = v
            self.state[p] = new

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        lines.append(")")
        return "\n".join(lines)


# Chunks of 32k numbers: the four or five arrays of an update (128 KB each) stay in the L2 cache.
_CHUNK = 1 << 15


def in_chunks(update: Callable, arrays: tuple, *args) -> None:
    """``update(*arrays, *args)``, applied to consecutive chunks of big arrays.

    A multi-pass elementwise update (SGD with momentum makes four passes) then reads each chunk from
    the cache after its first pass instead of from memory: W-medium's 535k-number update takes about
    20% less time. ``update`` must work elementwise and in place; the arrays (None allowed) share the
    first one's shape. Small or non-contiguous arrays get one call; results are bitwise the same.
    """
    n = arrays[0].size
    if n <= 2 * _CHUNK or not all(a is None or a.flags.c_contiguous for a in arrays):
        update(*arrays, *args)
        return
    flat = [None if a is None else a.reshape(-1) for a in arrays]
    for lo in range(0, n, _CHUNK):
        update(*[None if a is None else a[lo : lo + _CHUNK] for a in flat], *args)


def _copy_state(value, dtype=None):
    """A deep copy of a state value (Tensor, ndarray, or list/tuple/dict of them); floating arrays are
    cast to ``dtype`` when given (loading into a model of another precision)."""
    if isinstance(value, Tensor):
        return Tensor._wrap(_copy_state(value._data, dtype))
    if isinstance(value, np.ndarray):
        return value.astype(dtype) if dtype is not None and value.dtype.kind == "f" else value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_state(v, dtype) for v in value)
    if isinstance(value, dict):
        return {k: _copy_state(v, dtype) for k, v in value.items()}
    return value
