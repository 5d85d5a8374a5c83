"""The graph walk: reverse-mode backpropagation by the chain rule.

This module knows no op. A node is any object with ``inputs`` (the tensors it read) and
``backward(grad_output)`` returning one gradient per input; ``Function`` in ``ops/function.py`` is the
base class every op derives from. ``backward`` sorts the nodes reachable from the outputs in
topological order (iteratively, so a 10,000-op chain is fine), then hands each node the gradient of
its output and sums what comes back into the gradients of its inputs.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Sequence

import numpy as np

from .tensor import Tensor


class _ThreadGradMode(threading.local):
    """Grad mode, one flag per thread (as in PyTorch): ``no_grad`` in one thread, or a backward
    pass (which records nothing unless create_graph), leaves other threads recording."""

    enabled = True


_grad_mode = _ThreadGradMode()

# Post-accumulate-grad hooks of leaves, by id(leaf): {id: (weakref to the leaf, [hooks])}. Empty unless
# something (DistributedDataParallel) registered one; the walk checks it once per backward() call.
_leaf_hooks: dict = {}


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph (in this thread)."""
    return _grad_mode.enabled


def set_grad_enabled(mode: bool) -> None:
    """Turn graph recording on or off in this thread (see :class:`no_grad` for the scoped form)."""
    _grad_mode.enabled = bool(mode)


class _GradMode:
    """Context manager and decorator that sets grad mode and restores it afterwards."""

    _mode = True

    def __enter__(self):
        self._prev = _grad_mode.enabled
        _grad_mode.enabled = self._mode

    def __exit__(self, *exc):
        _grad_mode.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Record nothing inside: ``with cr.no_grad(): ...`` or ``@cr.no_grad()``.

    >>> x = cr.ones(2, requires_grad=True)
    >>> with cr.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    _mode = False


class enable_grad(_GradMode):
    """Record the graph inside, even within :class:`no_grad`."""

    _mode = True


def _count_consumers(roots) -> dict:
    """For every node reachable from ``roots``: how many recorded edges lead into it.

    A node may run its backward once that many gradients have arrived (Kahn's topological order,
    walked with an explicit stack: a 10,000-op chain is fine).
    """
    deps = {}
    stack = []
    for root in roots:
        if root not in deps:
            deps[root] = 0
            stack.append(root)
    while stack:
        for parent in stack.pop().parents:
            if parent is None:
                continue
            n = deps.get(parent)
            if n is None:
                deps[parent] = 1
                stack.append(parent)
            else:
                deps[parent] = n + 1
    return deps


def _check_versions(node) -> None:
    """Refuse to backprop through a value that was changed in place after the op saved it."""
    for i in node.saves:
        t = node.inputs[i]
        seen = node._saved_versions[i]
        if t._version[0] != seen:
            raise RuntimeError(
                f"backward: an input of {node.op_name()} was modified by an in-place operation after "
                f"it was saved for backward (version {t._version[0]}, expected {seen}); "
                "use an out-of-place op (e.g. x = x + 1 instead of x += 1)"
            )
    if node.save_output:
        out = node._out_ref()
        if out is not None and out._version[0] != node._out_version:
            raise RuntimeError(
                f"backward: the output of {node.op_name()} was modified by an in-place operation "
                f"(version {out._version[0]}, expected {node._out_version}), but {node.op_name()}'s "
                "backward needs it; use an out-of-place op instead"
            )


def _as_grad(t: Tensor, g, what: str) -> Tensor:
    if g is None:
        if t._data.size != 1:
            raise RuntimeError(
                f"{what}: grad can be implicitly created only for scalar outputs, but the output has "
                f"shape {t.shape}; pass gradient= (a tensor of that shape)"
            )
        return Tensor._wrap(np.ones(t.shape, dtype=t._data.dtype))
    if not isinstance(g, Tensor):
        g = Tensor._wrap(np.asarray(g, dtype=t._data.dtype))
    if g.shape != t.shape:
        raise RuntimeError(f"{what}: gradient has shape {g.shape} but the output has shape {t.shape}")
    return g


def _as_tuple(node, grads) -> tuple:
    """Accept a lone gradient (or None) from a one-input op's backward; refuse a wrong count."""
    if grads is None or isinstance(grads, (Tensor, np.ndarray, np.generic)):
        grads = (grads,)
    grads = tuple(grads)
    if len(grads) != len(node.parents):
        raise RuntimeError(
            f"{node.op_name()}: backward returned {len(grads)} gradients for {len(node.parents)} inputs; "
            "return one Tensor (or None) per input"
        )
    return grads


def _node_grads(node, g, arrays: bool) -> tuple:
    """The gradients of a node's inputs given the gradient ``g`` of its output.

    With ``arrays`` (first order, no create_graph) the walk carries plain ndarrays: the op's
    ``backward_array`` fast path when it has one, else its Tensor ``backward`` on a wrapped array.
    Otherwise ``backward`` runs on Tensors, recording the graph of the backward pass itself.
    """
    if not arrays:
        return node.backward(g)
    if node.backward_array is not None:
        return node.backward_array(g)
    grads = node.backward(Tensor._wrap(g))
    return tuple([None if gi is None else gi._data for gi in _as_tuple(node, grads)])


def _cast(g, dtype):
    """``g`` (a Tensor or an ndarray) in the dtype of the input it flows into."""
    return g.to(dtype) if type(g) is Tensor else g.astype(dtype)


def _released_error(node) -> RuntimeError:
    return RuntimeError(
        f"backward: trying to backward through the graph a second time: {node.op_name()}'s saved values "
        "were released by the first backward(); pass retain_graph=True to the first backward() "
        "(or cr.grad) to walk the graph again"
    )


def _run(outputs, grad_outputs, create_graph: bool, wanted=None, retain_graph: bool = True,
         released_ok: bool = False, on_leaf_done=None):
    """Backpropagate from ``outputs``. Returns {id(leaf): (leaf, grad)} and {id(wanted tensor): grad}.

    Each node's backward runs once all its consumers have sent their gradient, which are summed:
    the chain rule for a value that feeds several ops. Without ``create_graph`` the gradients travel
    as ndarrays (see :func:`_node_grads`) and are wrapped into Tensors only at the end.

    Without ``retain_graph`` every node walked is marked released, as PyTorch frees its saved
    tensors: a second walk through it raises instead of silently adding the gradient again.
    The node keeps its inputs, so ``cr.viz`` can still draw the graph (``released_ok``).
    ``on_leaf_done(leaf, grad)`` is called for a hooked leaf as soon as its last consumer has run, so
    its gradient is final before the walk ends (DistributedDataParallel starts communication there).
    """
    arrays = not create_graph
    if arrays:
        grad_outputs = [g._data for g in grad_outputs]
    node_grads: dict = {}
    leaf_grads: dict = {}
    roots = []
    wanted_nodes = {}
    if wanted is not None:
        for t in wanted:
            if t._node is not None:
                wanted_nodes[t._node] = t
    found = {}
    for t, g in zip(outputs, grad_outputs):
        node = t._node
        if node is None:
            key = id(t)
            leaf_grads[key] = (t, g if key not in leaf_grads else leaf_grads[key][1] + g)
            continue
        roots.append(node)
        node_grads[node] = g if node not in node_grads else node_grads[node] + g
    deps = _count_consumers(roots)
    if not released_ok:
        for node in deps:
            if getattr(node, "_released", False):
                raise _released_error(node)
    ready = [node for node in dict.fromkeys(roots) if deps[node] == 0]
    pending = _pending_hooked_leaves(deps) if on_leaf_done is not None else None
    prev = _grad_mode.enabled
    _grad_mode.enabled = create_graph
    try:
        while ready:
            node = ready.pop()
            g = node_grads.pop(node, None)
            if g is None:  # no gradient reached this node: its inputs get none from it either
                grads = (None,) * len(node.parents)
            else:
                if _node_hooks and node in _node_hooks:  # Tensor.register_hook on this node's output
                    g = _call_hooks(_node_hooks[node], g, arrays)
                if wanted_nodes and node in wanted_nodes:
                    found[id(wanted_nodes[node])] = g
                if node.saves or node.save_output:
                    _check_versions(node)
                fast = node.backward_array if arrays else None
                grads = fast(g) if fast is not None else _node_grads(node, g, arrays)
                if type(grads) is not tuple or len(grads) != len(node.parents):
                    grads = _as_tuple(node, grads)
            if not retain_graph:
                node._released = True
            for t, parent, gi in zip(node.inputs, node.parents, grads):
                if parent is not None:
                    if gi is not None:
                        dt = t._data.dtype
                        if gi.dtype is not dt and gi.dtype != dt:  # an ndarray's or a Tensor's dtype
                            gi = _cast(gi, dt)
                        prev_g = node_grads.get(parent)
                        node_grads[parent] = gi if prev_g is None else prev_g + gi
                    n = deps[parent] - 1
                    deps[parent] = n
                    if n == 0:
                        ready.append(parent)
                elif gi is not None and t.requires_grad and t._node is None:
                    dt = t._data.dtype
                    if gi.dtype is not dt and gi.dtype != dt:
                        gi = _cast(gi, dt)
                    key = id(t)
                    prev_g = leaf_grads.get(key)
                    leaf_grads[key] = (t, gi if prev_g is None else prev_g[1] + gi)
            if pending:
                _leaves_done(node, pending, leaf_grads, on_leaf_done)
        if _leaf_grad_hooks:
            for key, (t, g) in list(leaf_grads.items()):
                entry = _leaf_grad_hooks.get(key)
                if entry is not None and entry[0]() is t:
                    leaf_grads[key] = (t, _call_hooks(entry[1], g, arrays))
    finally:
        _grad_mode.enabled = prev
    if arrays:
        wrap = Tensor._wrap
        leaf_grads = {key: (t, wrap(g)) for key, (t, g) in leaf_grads.items()}
        found = {key: wrap(g) for key, g in found.items()}
    return leaf_grads, found


def _pending_hooked_leaves(deps) -> dict:
    """How many edges of the graph lead into each hooked leaf: {id(leaf): count}."""
    pending: dict = {}
    for node in deps:
        for t, parent in zip(node.inputs, node.parents):
            if parent is None and id(t) in _leaf_hooks:
                pending[id(t)] = pending.get(id(t), 0) + 1
    return pending


def _leaves_done(node, pending: dict, leaf_grads: dict, on_leaf_done) -> None:
    """Count down the hooked leaves ``node`` read; hand over those whose gradient is now final."""
    for t, parent in zip(node.inputs, node.parents):
        if parent is not None:
            continue
        key = id(t)
        n = pending.get(key)
        if n is None:
            continue
        if n > 1:
            pending[key] = n - 1
            continue
        del pending[key]
        entry = leaf_grads.pop(key, None)
        if entry is not None:
            on_leaf_done(t, entry[1])


def register_post_accumulate_grad_hook(t: Tensor, hook: Callable) -> _LeafHookHandle:
    """Call ``hook(t)`` during ``backward()`` once the gradient of leaf ``t`` is final and accumulated
    into ``t.grad`` (PyTorch's ``Tensor.register_post_accumulate_grad_hook``). Returns a handle whose
    ``remove()`` takes the hook off again.

    >>> w = cr.ones(2, requires_grad=True)
    >>> h = cr.autograd.register_post_accumulate_grad_hook(w, lambda t: print(t.grad))
    >>> (w * 3).sum().backward()
    tensor([3., 3.])
    """
    if not isinstance(t, Tensor) or t._node is not None or not t.requires_grad:
        raise RuntimeError("register_post_accumulate_grad_hook: only a leaf tensor that requires grad takes one")
    key = id(t)
    entry = _leaf_hooks.get(key)
    if entry is None:
        entry = (weakref.ref(t, lambda _ref, key=key, hooks=_leaf_hooks: hooks.pop(key, None)), [])
        _leaf_hooks[key] = entry
    entry[1].append(hook)
    return _LeafHookHandle(key, hook)


class _LeafHookHandle:
    __slots__ = ("key", "hook")

    def __init__(self, key: int, hook: Callable):
        self.key, self.hook = key, hook

    def remove(self) -> None:
        entry = _leaf_hooks.get(self.key)
        if entry is not None and self.hook in entry[1]:
            entry[1].remove(self.hook)
            if not entry[1]:
                del _leaf_hooks[self.key]


def _run_leaf_hooks(t: Tensor) -> None:
    entry = _leaf_hooks.get(id(t))
    if entry is not None and entry[0]() is t:
        for hook in list(entry[1]):
            hook(t)


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> None:
    """Accumulate d(tensors)/d(leaf) into ``.grad`` of every leaf that requires grad.

    ``retain_graph`` (default: ``create_graph``) keeps the graph walkable for another backward;
    without it the graph is released, and a second backward through it raises, as in PyTorch.
    """
    outputs = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(outputs) if grad_tensors is None else [grad_tensors]
    seeds = []
    for i, (t, g) in enumerate(zip(outputs, grad_tensors)):
        if not t.requires_grad:
            what = "the tensor" if len(outputs) == 1 else f"tensor {i}"
            raise RuntimeError(
                f"backward: {what} does not require grad and has no graph (no input required grad); "
                "create the inputs with requires_grad=True (and not under cr.no_grad())"
            )
        seeds.append(_as_grad(t, g, "backward"))
    retain = create_graph if retain_graph is None else bool(retain_graph)
    # Arrays handed to a leaf's .grad must be owned by it alone: the seed, broadcast views and a
    # gradient shared by two inputs (as `a + b` sends) are copied; fresh results are kept as they are.
    handed = {id(s._data) for s in seeds}
    if not _leaf_hooks:
        leaf_grads, _ = _run(outputs, seeds, create_graph, retain_graph=retain)
        for t, g in leaf_grads.values():
            _accumulate(t, g, create_graph, handed)
        return

    def leaf_done(t, g):
        _accumulate(t, g if create_graph else Tensor._wrap(g), create_graph, handed)
        _run_leaf_hooks(t)

    leaf_grads, _ = _run(outputs, seeds, create_graph, retain_graph=retain, on_leaf_done=leaf_done)
    for t, g in leaf_grads.values():
        _accumulate(t, g, create_graph, handed)
        _run_leaf_hooks(t)


def _accumulate(t: Tensor, g: Tensor, create_graph: bool, handed: set) -> None:
    if t.grad is None:
        if not create_graph:  # g was wrapped by _run for this leaf alone; its array may be shared
            a = g._data
            if a.base is not None or not a.flags.writeable or id(a) in handed or g._node is not None:
                g = Tensor._wrap(a.copy())
            handed.add(id(g._data))
        t.grad = g
        return
    old = t.grad
    if create_graph or old.requires_grad:
        t.grad = old + g
    elif old._data.flags.writeable and old._data.shape == g._data.shape:
        np.add(old._data, g._data, out=old._data)
    else:
        t.grad = Tensor._wrap(old._data + g._data)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
    *,
    _released_ok: bool = False,
) -> tuple:
    """Return d(outputs)/d(inputs) without touching any ``.grad``.

    With ``create_graph=True`` the returned gradients are themselves part of a graph, so they can be
    differentiated again (second derivatives, Hessian-vector products). ``retain_graph`` (default:
    ``create_graph``) keeps the graph walkable for another call, as in :func:`backward`.

    >>> x = cr.tensor(3.0, requires_grad=True)
    >>> (g,) = cr.grad(x ** 3, x, create_graph=True)
    >>> cr.grad(g, x)[0].item()   # d2/dx2 x^3 = 6x
    18.0
    """
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outs) if grad_outputs is None else [grad_outputs]
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    for i, t in enumerate(outs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: output {i} does not require grad and has no graph")
    seeds = [_as_grad(t, g, "grad") for t, g in zip(outs, grad_outputs)]
    retain = create_graph if retain_graph is None else bool(retain_graph)
    leaf_grads, found = _run(outs, seeds, create_graph, wanted=[t for t in ins if t._node is not None],
                             retain_graph=retain, released_ok=_released_ok)
    result = []
    for i, t in enumerate(ins):
        g = found.get(id(t)) if t._node is not None else leaf_grads.get(id(t), (None, None))[1]
        if g is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} (shape {t.shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
        result.append(g)
    return tuple(result)


# ---- tensor hooks --------------------------------------------------------------------------------
# Hooks live beside the graph, not in it: a non-leaf's hooks are keyed by its node, a leaf's by the
# tensor's id (with a weak reference to tell a reused id apart). Both stay empty unless a hook is set,
# so the walk above pays one truth test for them.
_node_hooks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_leaf_grad_hooks: dict = {}


def _call_hooks(hooks: list, g, arrays: bool):
    """Run ``hook(grad)`` in order; a hook that returns a Tensor replaces the gradient."""
    grad = Tensor._wrap(g) if arrays else g
    for hook in list(hooks):
        changed = hook(grad)
        if changed is not None:
            if not isinstance(changed, Tensor) or changed.shape != grad.shape:
                raise RuntimeError(
                    f"register_hook: a hook must return None or a Tensor of shape {tuple(grad.shape)}, "
                    f"got {changed!r:.60}"
                )
            grad = changed
    return grad._data if arrays else grad


class RemovableHandle:
    """Returned by ``Tensor.register_hook``: ``handle.remove()`` takes the hook off again."""

    def __init__(self, hooks: list, hook, on_empty) -> None:
        self._hooks, self._hook, self._on_empty = hooks, hook, on_empty
        hooks.append(hook)

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)
        if not self._hooks:
            self._on_empty()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def register_hook(t: Tensor, hook) -> RemovableHandle:
    """Call ``hook(grad)`` whenever the gradient of ``t`` is computed (see ``Tensor.register_hook``)."""
    if not t.requires_grad:
        raise RuntimeError("register_hook: cannot register a hook on a tensor that doesn't require gradient")
    node = t._node
    if node is not None:
        hooks = _node_hooks.setdefault(node, [])
        return RemovableHandle(hooks, hook, lambda: _node_hooks.pop(node, None))
    key = id(t)
    entry = _leaf_grad_hooks.get(key)
    if entry is None or entry[0]() is not t:
        entry = (weakref.ref(t, lambda _, key=key: _leaf_grad_hooks.pop(key, None)), [])
        _leaf_grad_hooks[key] = entry
    return RemovableHandle(entry[1], hook, lambda: _leaf_grad_hooks.pop(key, None))


class _RetainGrad:
    """The hook behind ``retain_grad()``: keeps a non-leaf's gradient in its ``.grad``."""

    def __init__(self, t: Tensor) -> None:
        self.ref = weakref.ref(t)

    def __call__(self, grad: Tensor) -> None:
        t = self.ref()
        if t is None:
            return
        if t.grad is None:
            t.grad = grad if grad.requires_grad else Tensor._wrap(grad._data.copy())
        else:
            t.grad = t.grad + grad


def retain_grad(t: Tensor) -> None:
    if not t.requires_grad:
        raise RuntimeError("retain_grad: can't retain_grad on a tensor that doesn't require grad")
    node = t._node
    if node is None or retains_grad(t):
        return  # a leaf keeps its gradient anyway
    register_hook(t, _RetainGrad(t))


def retains_grad(t: Tensor) -> bool:
    node = t._node
    return node is not None and any(isinstance(h, _RetainGrad) and h.ref() is t for h in _node_hooks.get(node, ()))


def __getattr__(name: str):
    """PyTorch's ``torch.autograd`` names that are built above this module (on the ops)."""
    if name in ("Function", "FunctionCtx", "once_differentiable", "Variable"):
        from . import autograd_function

        return getattr(autograd_function, name)
    if name in ("gradcheck", "gradgradcheck"):
        from . import gradcheck

        return getattr(gradcheck, name)
    raise AttributeError(f"module 'chainrule.autograd' has no attribute {name!r}")
