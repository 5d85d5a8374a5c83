"""Which module produced which node: a context manager that tags graph nodes while a forward runs.

Normal training pays nothing: ``Module.__call__`` is wrapped only inside ``with trace_modules():``
and restored on exit. Inside, each call of a *leaf* module (one without submodules: Linear, ReLU,
Conv2d ...) walks back from its outputs and tags the new nodes, stopping at its inputs, so every op
of the forward is attributed to the innermost layer that ran it. Tags are kept in a weak dictionary
keyed by the op node: they disappear with the graph.

>>> with cr.viz.trace_modules(model):
...     loss = loss_fn(model(x), y)
>>> cr.viz.draw_graph(loss, group_modules=True, model=model)
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from dataclasses import dataclass

from ..nn.module import Module
from ..tensor import Tensor

# node (a Function) -> ModuleCall. Weak keys: a tag lives exactly as long as its node.
_TAGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(eq=False)
class ModuleCall:
    """One call of one module: ``name`` (its path in the model, or its class name) and ``index``
    (how many earlier calls of the same module the trace saw: a layer used twice gives two boxes)."""

    module: Module
    name: str
    index: int

    @property
    def label(self) -> str:
        head = repr(self.module).split("\n", 1)[0]
        name = f"{self.name}: " if self.name and self.name != type(self.module).__name__ else ""
        suffix = f" (call {self.index + 1})" if self.index else ""
        return f"{name}{head}{suffix}"


def module_of(node) -> ModuleCall | None:
    """The module call that produced ``node`` during a :func:`trace_modules` block, if any."""
    try:
        return _TAGS.get(node)
    except TypeError:
        return None


def _tensors(obj, out: list) -> list:
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, (tuple, list)):
        for o in obj:
            _tensors(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _tensors(o, out)
    return out


def _tag(call: ModuleCall, inputs: list, outputs: list) -> None:
    stop = {id(t) for t in inputs}
    stack = list(outputs)
    while stack:
        t = stack.pop()
        node = t._node
        if node is None or id(t) in stop or node in _TAGS:
            continue
        _TAGS[node] = call
        stack.extend(node.inputs)


@contextmanager
def trace_modules(model: Module | None = None):
    """Within the block, tag every op node with the leaf module whose forward created it.

    With ``model`` the modules are named by their path in it (``layers.0``); otherwise by class.
    """
    names = {id(m): n for n, m in model.named_modules()} if model is not None else {}
    counts: dict = {}
    original = Module.__call__

    def traced(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if self._modules:  # containers: their glue ops stay as separate nodes
            return out
        k = id(self)
        call = ModuleCall(self, names.get(k, type(self).__name__), counts.get(k, 0))
        counts[k] = call.index + 1
        _tag(call, _tensors((args, kwargs), []), _tensors(out, []))
        return out

    Module.__call__ = traced
    try:
        yield
    finally:
        Module.__call__ = original
