"""Module: the base of every layer and model.

Parameters and submodules are registered by attribute assignment, as in PyTorch, and named by the
attribute path (``0.weight``, ``encoder.fc1.bias``), so state dicts map one to one onto PyTorch's.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from .. import autograd
from ..tensor import Tensor
from .parameter import Parameter


class Module:
    """Base class for layers and models: subclass it, assign layers and Parameters in ``__init__``,
    and write ``forward``.

    >>> class Net(cr.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = cr.nn.Linear(2, 1)
    ...     def forward(self, x):
    ...         return self.fc(x).sigmoid()
    >>> Net().num_parameters()
    3
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration ----------------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        if "_parameters" not in d:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        params, modules, buffers = d["_parameters"], d["_modules"], d["_buffers"]
        if isinstance(value, (Parameter, Module)):
            for registry in (params, modules, buffers):
                registry.pop(name, None)
            d.pop(name, None)
            (params if isinstance(value, Parameter) else modules)[name] = value
            if isinstance(value, Module):
                value.__dict__["_module_name"] = name  # lets a layer name itself in error messages
        elif name in params or name in modules:
            if value is not None:
                kind = "parameter" if name in params else "submodule"
                raise TypeError(
                    f"{type(self).__name__}: cannot assign a {type(value).__name__} to {kind} {name!r} "
                    "(expected a Parameter/Module or None)"
                )
            (params if name in params else modules)[name] = None
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{type(self).__name__}: buffer {name!r} must be a Tensor or None")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        d = self.__dict__
        for registry in ("_parameters", "_modules", "_buffers"):
            reg = d.get(registry)
            if reg is not None and name in reg:
                return reg[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._modules, self._buffers):
            if name in registry:
                del registry[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """A tensor that is part of the state (saved in ``state_dict``) but not trained."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor or None")
        self._buffers[name] = tensor
        if not persistent:
            self.__dict__.setdefault("_non_persistent", set()).add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} must be a Module or None, got {type(module).__name__}")
        self._modules[name] = module
        if module is not None:
            module.__dict__["_module_name"] = name

    register_module = add_module

    # ---- calling ---------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        d = self.__dict__
        if "_forward_hooks" not in d and "_forward_pre_hooks" not in d and "_backward_hooks" not in d:
            return self.forward(*args, **kwargs)
        if "_backward_hooks" in d:
            return _call_with_backward_hooks(self, args, kwargs)
        return self._call_with_forward_hooks(args, kwargs)

    def _call_with_forward_hooks(self, args, kwargs):
        d = self.__dict__
        for hook in list(d.get("_forward_pre_hooks", {}).values()):
            changed = hook(self, args)
            if changed is not None:
                args = changed if isinstance(changed, tuple) else (changed,)
        out = self.forward(*args, **kwargs)
        for hook in list(d.get("_forward_hooks", {}).values()):
            changed = hook(self, args, out)
            if changed is not None:
                out = changed
        return out

    def register_forward_hook(self, hook) -> _HookHandle:
        """Call ``hook(module, args, output)`` after each forward; a non-None return replaces the output."""
        return _HookHandle(self.__dict__.setdefault("_forward_hooks", {}), hook, self, "_forward_hooks")

    def register_forward_pre_hook(self, hook) -> _HookHandle:
        """Call ``hook(module, args)`` before each forward; a non-None return replaces the arguments."""
        return _HookHandle(self.__dict__.setdefault("_forward_pre_hooks", {}), hook, self, "_forward_pre_hooks")

    def register_full_backward_hook(self, hook) -> _HookHandle:
        """Call ``hook(module, grad_input, grad_output)`` when the gradients with respect to this module's
        input are computed; a non-None return (a tuple) replaces ``grad_input``. As in PyTorch, the
        module's forward must take its tensors positionally; here one of them at most may require grad.
        """
        return _HookHandle(self.__dict__.setdefault("_backward_hooks", {}), hook, self, "_backward_hooks")

    def register_backward_hook(self, hook) -> _HookHandle:
        raise RuntimeError("register_backward_hook() is deprecated in PyTorch and not supported by chainrule; "
                           "use register_full_backward_hook()")

    @property
    def layer_name(self) -> str:
        """How error messages name this layer: its attribute name in the parent and its class."""
        name = self.__dict__.get("_module_name")
        return f"{type(self).__name__} layer {name!r}" if name is not None else f"{type(self).__name__} layer"

    # ---- config (rebuild without code) ----------------------------------------------------------
    def get_config(self) -> dict:
        """A JSON-able description ``{"class": name, "args": {...}}`` from which
        :func:`chainrule.nn.from_config` rebuilds this module (with fresh weights)."""
        raise TypeError(
            f"{type(self).__name__} cannot describe itself as a config; only built-in layers and models "
            "(and classes registered with cr.nn.register_config that define get_config) can"
        )

    # ---- traversal -------------------------------------------------------------------------------
    def named_modules(self, prefix: str = "", memo: set | None = None) -> Iterator[tuple[str, Module]]:
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, m in self._modules.items():
            if m is not None:
                yield name, m

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in mods:
            for name, p in m._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, m in mods:
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), b

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def num_parameters(self, trainable_only: bool = False) -> int:
        """How many weights: the total number of entries in all parameters."""
        return _parameter_count(self, trainable_only)

    # ---- modes -----------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad._data[...] = 0

    def apply(self, fn) -> Module:
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ---- dtype -----------------------------------------------------------------------------------
    def to(self, *args, dtype=None, device=None, non_blocking: bool = False, **kwargs) -> Module:
        """Cast floating parameters and buffers to ``dtype`` in place (``model.to(cr.float64)``);
        devices other than the CPU are refused."""
        from ..devices import check_device, is_device

        check_device(device, f"{type(self).__name__}.to()")
        for a in args:
            if is_device(a):
                check_device(a, f"{type(self).__name__}.to()")
                continue
            dtype = a.dtype if isinstance(a, Tensor) else a
        if dtype is None:
            return self
        dtype = np.dtype(dtype)
        for m in self.modules():
            for reg in (m._parameters, m._buffers):
                for t in reg.values():
                    if t is not None and t._data.dtype.kind == "f" and t._data.dtype != dtype:
                        t._data = t._data.astype(dtype)
                        if t.grad is not None:
                            t.grad = Tensor._wrap(t.grad._data.astype(dtype))
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    def half(self) -> Module:
        return self.to(np.float16)

    def cpu(self) -> Module:
        return self

    def cuda(self, device=None) -> Module:
        from ..devices import check_device

        check_device("cuda" if device is None else device if not isinstance(device, int) else f"cuda:{device}",
                     f"{type(self).__name__}.cuda()")
        return self

    # ---- state -----------------------------------------------------------------------------------
    def state_dict(self, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """Parameters and persistent buffers by dotted name (PyTorch's names for the same model)."""
        out = OrderedDict()
        for mod_prefix, m in self.named_modules(prefix.rstrip(".")):
            skip = m.__dict__.get("_non_persistent", ())
            pre = f"{mod_prefix}." if mod_prefix else ""
            for name, p in m._parameters.items():
                if p is not None:
                    out[pre + name] = p if keep_vars else p.detach()
            for name, b in m._buffers.items():
                if b is not None and name not in skip:
                    out[pre + name] = b if keep_vars else b.detach()
        return out

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values into the existing parameters and buffers in place (an optimizer built earlier
        keeps working). Values may be Tensors or ndarrays; shapes must match; with ``strict`` the keys
        must match exactly."""
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if unexpected:
                parts.append(f"unexpected keys {unexpected}")
            raise KeyError(f"load_state_dict: {type(self).__name__}: " + "; ".join(parts))
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            arr = value._data if isinstance(value, Tensor) else np.asarray(value)
            if arr.shape != target._data.shape:
                raise ValueError(
                    f"load_state_dict: size mismatch for {key!r}: the checkpoint has shape {tuple(arr.shape)}, "
                    f"the model has {tuple(target._data.shape)}"
                )
            with autograd.no_grad():
                np.copyto(target._data, arr, casting="unsafe")
            target._version[0] += 1
        return _IncompatibleKeys(missing, unexpected)

    # ---- printing --------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        """PyTorch's layout exactly (parameter counts are in ``cr.nn.summary``)."""
        lines = []
        extra = self.extra_repr()
        for name, m in self._modules.items():
            child = "None" if m is None else repr(m)
            lines.append(f"  ({name}): " + child.replace("\n", "\n  "))
        head = f"{type(self).__name__}("
        if not lines:
            return head + extra + ")"
        extra_lines = ["  " + e for e in extra.split("\n")] if extra else []
        return head + "\n" + "\n".join(extra_lines + lines) + "\n)"

    def __dir__(self):
        return list(super().__dir__()) + list(self._parameters) + list(self._modules) + list(self._buffers)


def _parameter_count(module: Module, trainable_only: bool = False) -> int:
    # a function, not the method: a layer may shadow num_parameters (PReLU's is its number of slopes)
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class _HookHandle:
    """Returned by ``register_forward_hook``: ``handle.remove()`` takes the hook off again."""

    _next_id = 0

    def __init__(self, hooks: dict, hook, module: Module, attr: str):
        _HookHandle._next_id += 1
        self.id = _HookHandle._next_id
        self._hooks, self._module, self._attr = hooks, module, attr
        hooks[self.id] = hook

    def remove(self) -> None:
        self._hooks.pop(self.id, None)
        if not self._hooks:
            self._module.__dict__.pop(self._attr, None)

    def __enter__(self) -> _HookHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class _IncompatibleKeys(tuple):
    def __new__(cls, missing, unexpected):
        return super().__new__(cls, (missing, unexpected))

    @property
    def missing_keys(self):
        return self[0]

    @property
    def unexpected_keys(self):
        return self[1]


def _call_with_backward_hooks(module: Module, args: tuple, kwargs: dict):
    """Run ``module`` so that its full backward hooks see (grad_input, grad_output)."""
    hooks = module.__dict__["_backward_hooks"]
    positions = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if len(positions) > 1:
        raise RuntimeError(
            f"register_full_backward_hook: {module.layer_name} got {len(positions)} inputs that require grad; "
            "chainrule supports full backward hooks on modules with one such input"
        )
    grad_output: list = [None]
    n_args = len(args)

    def call_hooks(grad_input: tuple):
        for hook in list(hooks.values()):
            changed = hook(module, grad_input, tuple(grad_output))
            if changed is not None:
                grad_input = tuple(changed) if isinstance(changed, (tuple, list)) else (changed,)
        return grad_input

    args = list(args)
    if positions:
        i = positions[0]
        args[i] = args[i].view_as(args[i])  # a node of our own, to catch the gradient of the input

        def on_input(g):
            grad_input = tuple(g if k == i else None for k in range(n_args))
            return call_hooks(grad_input)[i]

        args[i].register_hook(on_input)
    out = module._call_with_forward_hooks(tuple(args), kwargs)
    if isinstance(out, Tensor) and out.requires_grad:
        def on_output(g):
            grad_output[0] = g
            if not positions:
                call_hooks((None,) * max(n_args, 1))

        out.register_hook(on_output)
    return out
