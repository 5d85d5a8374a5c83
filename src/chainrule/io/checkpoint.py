"""Checkpoints: ``cr.save``, ``cr.load`` and ``cr.load_model``.

What goes where: every tensor and array is stored in a safetensors file; everything else (the nesting of
dicts, lists and tuples, numbers and strings such as an optimizer's hyperparameters and the epoch, each
model's architecture config) is JSON in the file's metadata, under the key ``"chainrule"``. Nothing is
pickled, so loading a file from an untrusted source cannot run code: the only classes ever built are
the layers registered with ``cr.nn.from_config``.

>>> cr.save({"model": model, "optimizer": opt.state_dict(), "epoch": 3}, "ckpt.safetensors")
>>> ckpt = cr.load("ckpt.safetensors")
>>> model.load_state_dict(ckpt["model"]); opt.load_state_dict(ckpt["optimizer"])
>>> model = cr.load_model("ckpt.safetensors")          # rebuilt from the stored config
"""

from __future__ import annotations

import json
import os
import warnings
from collections import OrderedDict

import numpy as np

from .. import backend
from ..tensor import Tensor
from .safetensors import CheckpointError, read_safetensors, write_safetensors

FORMAT_KEY = "chainrule"
VERSION_KEY = "chainrule_format"
FORMAT_VERSION = "1"
_RESERVED = ("__tensor__", "__ndarray__", "__tuple__", "__dict__", "__module__")


def _is_module(obj) -> bool:
    from ..nn import Module

    return isinstance(obj, Module)


def _module_config(module) -> dict | None:
    try:
        config = module.get_config()
    except (TypeError, NotImplementedError, AttributeError):
        return None
    return config if isinstance(config, dict) else None


class _ConfigEncoder:
    """Configs hold no tensors; anything beyond JSON's plain values (tuples, int keys) is kept exactly."""

    def encode(self, config, where: str):
        encoder = _Encoder()
        node = encoder.encode(config, where)
        if encoder.tensors:
            raise TypeError("an architecture config cannot hold tensors")
        return node


class _Encoder:
    """Turns a nested structure into JSON-able data plus a flat ``{name: ndarray}`` table."""

    def __init__(self) -> None:
        self.tensors: dict[str, np.ndarray] = {}
        self._by_id: dict[int, tuple[str, np.ndarray]] = {}

    def _add(self, arr: np.ndarray, where: str) -> str:
        known = self._by_id.get(id(arr))
        if known is not None:  # the same array twice (tied weights): stored once
            return known[0]
        name, k = where or "tensor", 2
        while name in self.tensors:
            name, k = f"{where}#{k}", k + 1
        self.tensors[name] = arr
        self._by_id[id(arr)] = (name, arr)  # keeps arr alive, so its id stays unique
        return name

    def _config(self, module, where: str):
        config = _module_config(module)
        if config is None:
            return None
        try:
            return _ConfigEncoder().encode(config, where)
        except TypeError as err:
            warnings.warn(
                f"cr.save: {type(module).__name__}.get_config() cannot be stored ({err}); the weights are saved, "
                "but cr.load_model will not be able to rebuild the model",
                stacklevel=4,
            )
            return None

    def encode(self, obj, where: str):
        if isinstance(obj, Tensor):
            from ..nn import Parameter

            node = {"__tensor__": self._add(obj._data, where)}
            if isinstance(obj, Parameter):
                node["parameter"] = True
            elif obj.requires_grad:
                node["requires_grad"] = True
            return node
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                raise TypeError(f"cr.save: cannot store an object array at {where or 'the top level'!r}")
            return {"__ndarray__": self._add(obj, where)}
        if _is_module(obj):
            state = obj.state_dict()
            return {
                "__module__": {
                    "class": type(obj).__name__,
                    "config": self._config(obj, where),
                    "state": {k: self.encode(v, _join(where, k)) for k, v in state.items()},
                }
            }
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.dtype) or (isinstance(obj, type) and issubclass(obj, np.generic)):
            return str(np.dtype(obj))
        if isinstance(obj, dict):
            if all(isinstance(k, str) and k not in _RESERVED for k in obj):
                return {k: self.encode(v, _join(where, k)) for k, v in obj.items()}
            return {"__dict__": [[self.encode(k, where), self.encode(v, _join(where, str(k)))] for k, v in obj.items()]}
        if isinstance(obj, list):
            return [self.encode(v, _join(where, str(i))) for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {"__tuple__": [self.encode(v, _join(where, str(i))) for i, v in enumerate(obj)]}
        state_dict = None if isinstance(obj, type) else getattr(obj, "state_dict", None)
        if callable(state_dict):  # optimizers, schedulers, standardizers: their state
            return self.encode(state_dict(), where)
        raise TypeError(
            f"cr.save: cannot store a {type(obj).__name__} at {where or 'the top level'!r}; a checkpoint holds "
            "Modules, Tensors, arrays, numbers, strings, None, and lists, tuples and dicts of them"
        )


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def save(obj, path) -> None:
    """Save ``obj`` to ``path`` as a safetensors file, atomically (a crash mid-save leaves the previous
    file intact).

    ``obj`` may be a Module (its state dict and architecture config, so :func:`load_model` can rebuild
    it), a state dict, an optimizer (or its ``state_dict()``), or any nesting of dicts, lists and tuples
    of those, Tensors, arrays, numbers and strings — e.g.
    ``{"model": model, "optimizer": opt.state_dict(), "epoch": 3}``.
    A Module or state dict saved on its own keeps its parameter names as the tensor names, so the file is
    a plain safetensors state dict for other tools too.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"cr.save: path must be a str or os.PathLike, got {type(path).__name__}")
    encoder = _Encoder()
    structure = encoder.encode(obj, "")
    try:
        text = json.dumps(structure, allow_nan=True, separators=(",", ":"))
    except (TypeError, ValueError) as err:
        raise TypeError(f"cr.save: the structure around the tensors cannot be written as JSON ({err})") from None
    write_safetensors(path, encoder.tensors, {FORMAT_KEY: text, VERSION_KEY: FORMAT_VERSION})


_MAX_DEPTH = 100  # real checkpoints nest a few levels per container; deeper metadata is damaged or hostile


def _read(path) -> tuple[object, dict[str, np.ndarray], bool]:
    tensors, metadata = read_safetensors(path)
    text = metadata.get(FORMAT_KEY)
    if text is None:
        return None, tensors, False
    try:
        structure = json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is corrupt: its chainrule metadata is not valid JSON ({err})") from None
    except RecursionError:
        raise CheckpointError(_too_deep(path)) from None
    _check_depth(structure, path)
    return structure, tensors, True


def _too_deep(path) -> str:
    return f"{path} is corrupt: its chainrule metadata is nested more than {_MAX_DEPTH} levels deep"


def _check_depth(structure, path) -> None:
    """Refuse nesting deeper than ``_MAX_DEPTH`` before anything walks the structure recursively."""
    stack = [(structure, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise CheckpointError(_too_deep(path))
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def _malformed(path, what: str, node) -> CheckpointError:
    return CheckpointError(f"{path} is corrupt: its chainrule metadata has {what}, got {node!r:.100}")


class _Decoder:
    def __init__(self, tensors: dict[str, np.ndarray], path) -> None:
        self.tensors = tensors
        self.path = path
        self._made: dict[tuple, object] = {}

    def _array(self, name) -> np.ndarray:
        if not isinstance(name, str):
            raise _malformed(self.path, "a tensor reference that is not a name", name)
        if name not in self.tensors:
            raise CheckpointError(f"{self.path} is corrupt: its metadata names tensor {name!r}, which the file lacks")
        return self.tensors[name]

    def decode(self, node):
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        if not isinstance(node, dict):
            return node
        if "__tensor__" in node:
            if not isinstance(node["__tensor__"], str):
                raise _malformed(self.path, "a tensor reference that is not a name", node["__tensor__"])
            key = ("tensor", node["__tensor__"], bool(node.get("parameter")), bool(node.get("requires_grad")))
            if key not in self._made:  # tensors stored once come back as one object
                self._made[key] = self._tensor(node)
            return self._made[key]
        if "__ndarray__" in node:
            return self._array(node["__ndarray__"])
        if "__tuple__" in node:
            if not isinstance(node["__tuple__"], list):
                raise _malformed(self.path, "a tuple that is not a list", node)
            return tuple(self.decode(v) for v in node["__tuple__"])
        if "__dict__" in node:
            items = node["__dict__"]
            if not isinstance(items, list) or not all(isinstance(i, list) and len(i) == 2 for i in items):
                raise _malformed(self.path, "a dict that is not a list of [key, value] pairs", node)
            return {self._key(k): self.decode(v) for k, v in items}
        if "__module__" in node:
            return OrderedDict((k, self.decode(v)) for k, v in _module_state(node["__module__"], self.path).items())
        return {k: self.decode(v) for k, v in node.items()}

    def _key(self, node):
        key = _hashable(self.decode(node))
        try:
            hash(key)
        except TypeError:
            raise _malformed(self.path, "a dict key that cannot be a key", node) from None
        return key

    def _tensor(self, node) -> Tensor:
        arr = self._array(node["__tensor__"])
        if node.get("parameter"):
            from ..nn import Parameter

            return Parameter(Tensor._wrap(arr), requires_grad=arr.dtype.kind == "f")
        t = Tensor._wrap(arr)
        if node.get("requires_grad"):
            t.requires_grad_(True)
        return t


def _module_state(module_node, path) -> dict:
    if not isinstance(module_node, dict) or not isinstance(module_node.get("state"), dict):
        raise _malformed(path, "a saved module without a 'state' dict", module_node)
    return module_node["state"]


def _hashable(key):
    return tuple(_hashable(k) for k in key) if isinstance(key, (list, tuple)) else key


def load(path):
    """Load what :func:`save` wrote, with Tensors (and ndarrays where arrays were saved).

    A saved Module comes back as its state dict (an OrderedDict), so ``model.load_state_dict(cr.load(p))``
    works whether the model or its state dict was saved; use :func:`load_model` to rebuild the model
    itself. A safetensors file written by another tool loads as a ``{name: Tensor}`` dict.
    """
    structure, tensors, ours = _read(path)
    if not ours:
        return {name: Tensor._wrap(arr) for name, arr in tensors.items()}
    return _Decoder(tensors, path).decode(structure)


def _find_modules(node, where: str = "") -> list[tuple[str, dict]]:
    if isinstance(node, dict):
        if "__module__" in node:
            return [(where, node["__module__"])]
        found = []
        for k, v in node.items():
            if k in ("__tensor__", "__ndarray__"):
                continue
            found += _find_modules(v, _join(where, k) if k not in _RESERVED else where)
        return found
    if isinstance(node, list):
        return [m for i, v in enumerate(node) for m in _find_modules(v, _join(where, str(i)))]
    return []


def load_model(path, key: str | None = None):
    """Rebuild a model saved with :func:`save` from its stored architecture config, and load its weights.

    The file may hold the model alone or a bundle such as ``{"model": model, "optimizer": ...}``; with
    several models in it, ``key`` says which (its dotted place in the bundle). The model is rebuilt by
    ``cr.nn.from_config`` (only registered layer classes: a file cannot name code to run) in the dtype
    of the saved weights, and the weights are loaded with the usual key and shape checks.
    """
    structure, tensors, ours = _read(path)
    if not ours:
        raise CheckpointError(
            f"{path} holds tensors only (it was not written by cr.save), so there is no architecture to rebuild; "
            "build the model in code and call model.load_state_dict(cr.load(path))"
        )
    found = _find_modules(structure)
    if key is not None:
        found = [m for m in found if m[0] == key]
    if not found:
        where = f" at key {key!r}" if key is not None else ""
        raise CheckpointError(
            f"{path} holds no saved model{where} (a state dict has no architecture): save the Module itself "
            "with cr.save(model, path), or build the model in code and load_state_dict(cr.load(path))"
        )
    if len(found) > 1:
        keys = ", ".join(repr(m[0]) for m in found)
        raise ValueError(f"load_model: {path} holds several models ({keys}); pass key= to choose one")
    where, node = found[0]
    if not isinstance(node, dict):
        raise _malformed(path, "a saved module that is not a dict", node)
    config = node.get("config")
    if config is None:
        raise CheckpointError(
            f"{path}: the saved {node.get('class', 'model')} could not describe its architecture (no get_config), "
            "so it cannot be rebuilt without code; build it in code and load_state_dict(cr.load(path)"
            + (f"[{where!r}])" if where else ")")
        )
    from .. import nn

    state = _Decoder(tensors, path).decode({"__module__": node})
    try:
        # The architecture comes from the metadata, the weights from the tensors: building it may not
        # take more than the stored tensors hold, so a file declaring a huge model over a few kilobytes
        # is refused before the memory is taken (the shapes are compared one by one afterwards).
        with backend.allocation_budget(_budget(tensors), _refuse_allocation(path, tensors)):
            model = nn.from_config(_Decoder({}, path).decode(config))
    except (ValueError, TypeError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"{path}: cannot rebuild the saved model: {err}") from None
    float_dtypes = {v.dtype for v in state.values() if isinstance(v, Tensor) and v.dtype.kind == "f"}
    if len(float_dtypes) == 1:
        model.to(float_dtypes.pop())
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as err:
        message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        raise CheckpointError(f"{path}: the stored weights do not fit the stored architecture: {message}") from None
    return model


_BUDGET_SLACK = 1 << 16  # arrays a layer may keep besides its state (none today): 64 Ki values


def _budget(tensors: dict[str, np.ndarray]) -> int:
    """How many values (plus per-array overhead) the stored architecture may allocate: what is stored."""
    return sum(arr.size + backend.ARRAY_OVERHEAD for arr in tensors.values()) + _BUDGET_SLACK


def _refuse_allocation(path, tensors: dict[str, np.ndarray]):
    def refuse(shape: tuple, left: int) -> CheckpointError:
        stored = sum(arr.size for arr in tensors.values())
        largest = max(tensors.items(), key=lambda item: item[1].size, default=None)
        biggest = f"; its largest tensor, {largest[0]!r}, has shape {tuple(largest[1].shape)}" if largest else ""
        return CheckpointError(
            f"{path}: the stored architecture does not match the stored tensors: it needs an array of shape "
            f"{shape} ({int(np.prod(shape, dtype=np.float64)):,} values), but the file holds {stored:,} values "
            f"in {len(tensors)} tensors{biggest}"
        )

    return refuse


# ---- random state, for resuming ----------------------------------------------------------------------
def get_rng_state() -> dict:
    """The package generator's state (a JSON-able dict): save it in a checkpoint to resume a run with
    the same shuffles and dropout masks."""
    return backend.generator().bit_generator.state


def set_rng_state(state: dict) -> None:
    """Restore the package generator's state from :func:`get_rng_state`."""
    generator = backend.generator()
    if not isinstance(state, dict) or state.get("bit_generator") != type(generator.bit_generator).__name__:
        raise ValueError(
            f"set_rng_state: expected a {type(generator.bit_generator).__name__} state from get_rng_state(), got {state!r:.100}"
        )
    generator.bit_generator.state = state
