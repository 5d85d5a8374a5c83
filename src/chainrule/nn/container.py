"""Containers: Sequential (a chain of layers), ModuleList and ModuleDict (registered collections).

Children are named by position ("0", "1", ...) or by key, so ``state_dict`` keys match PyTorch's for
the same architecture.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping

from .config import from_config, make_config, register_config
from .module import Module


def _check_module(value, where: str) -> Module:
    if not isinstance(value, Module):
        raise TypeError(f"{where}: expected a Module, got {type(value).__name__}")
    return value


def _position(index, length: int, where: str) -> int:
    i = operator.index(index)
    if not -length <= i < length:
        raise IndexError(f"{where}: index {i} is out of range for {length} modules")
    return i % length


def _configs(modules: Iterable[Module]) -> list:
    return [m.get_config() for m in modules]


@register_config
class Sequential(Module):
    """Layers applied one after another: ``Sequential(Linear(2, 8), ReLU(), Linear(8, 1))``.

    Also accepts an ``OrderedDict`` of named layers. Supports ``len``, indexing (a slice gives a
    Sequential of the same layers, shared), iteration, ``append``, ``extend``, ``insert`` and ``del``.
    """

    def __init__(self, *args) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], Mapping):
            for name, module in args[0].items():
                self.add_module(str(name), _check_module(module, "Sequential"))
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), _check_module(module, "Sequential"))

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        keys = list(self._modules)
        return self._modules[keys[_position(index, len(keys), type(self).__name__)]]

    def __setitem__(self, index, module: Module) -> None:
        keys = list(self._modules)
        key = keys[_position(index, len(keys), type(self).__name__)]
        self.add_module(key, _check_module(module, type(self).__name__))

    def __delitem__(self, index) -> None:
        keys = list(self._modules)
        doomed = keys[index] if isinstance(index, slice) else [keys[_position(index, len(keys), "Sequential")]]
        for key in doomed:
            del self._modules[key]
        if all(k.isdigit() for k in self._modules):  # keep positional names 0..n-1, as PyTorch does
            self._renumber()

    def _renumber(self) -> None:
        items = list(self._modules.values())
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), _check_module(module, "Sequential.append"))
        return self

    def extend(self, modules: Iterable[Module]) -> Sequential:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        _check_module(module, "Sequential.insert")
        n = len(self._modules)
        i = index if index >= 0 else index + n
        if not 0 <= i <= n:
            raise IndexError(f"Sequential.insert: index {index} is out of range for {n} modules")
        items = list(self._modules.values())
        items.insert(i, module)
        self._modules.clear()
        for j, m in enumerate(items):
            self.add_module(str(j), m)
        return self

    def get_config(self) -> dict:
        names = list(self._modules)
        config = make_config(self, layers=_configs(self._modules.values()))
        if names != [str(i) for i in range(len(names))]:
            config["args"]["names"] = names
        return config

    @classmethod
    def _from_config_args(cls, args: dict):
        layers = [from_config(c) for c in args.get("layers", [])]
        names = args.get("names")
        if names is not None:
            return cls(OrderedDict(zip(names, layers)))
        return cls(*layers)


@register_config
class ModuleList(Module):
    """A list of modules, registered (their parameters are found and saved) but not called in order."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        keys = list(self._modules)
        return self._modules[keys[_position(index, len(keys), "ModuleList")]]

    def __setitem__(self, index, module: Module) -> None:
        i = _position(index, len(self._modules), "ModuleList")
        self.add_module(str(i), _check_module(module, "ModuleList"))

    def __delitem__(self, index) -> None:
        items = list(self._modules.values())
        if isinstance(index, slice):
            del items[index]
        else:
            del items[_position(index, len(items), "ModuleList")]
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), _check_module(module, "ModuleList.append"))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise TypeError("ModuleList.extend: expected an iterable of Modules, got a single Module")
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, _check_module(module, "ModuleList.insert"))
        self._modules.clear()
        for i, m in enumerate(items):
            self.add_module(str(i), m)

    def forward(self, *args, **kwargs):
        raise TypeError("ModuleList is not callable: iterate over it and call its modules in your forward()")

    def get_config(self) -> dict:
        return make_config(self, modules=_configs(self._modules.values()))

    @classmethod
    def _from_config_args(cls, args: dict):
        return cls([from_config(c) for c in args.get("modules", [])])


@register_config
class ModuleDict(Module):
    """A dict of modules by name, registered in insertion order."""

    def __init__(self, modules: Mapping[str, Module] | Iterable | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict: no module named {key!r}; names: {list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        if not isinstance(key, str) or not key or "." in key:
            raise KeyError(f"ModuleDict: keys must be non-empty strings without '.', got {key!r}")
        self.add_module(key, _check_module(module, "ModuleDict"))

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key: str) -> Module:
        return self._modules.pop(key)

    def clear(self) -> None:
        self._modules.clear()

    def update(self, modules) -> None:
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for key, module in pairs:
            self[key] = module

    def forward(self, *args, **kwargs):
        raise TypeError("ModuleDict is not callable: look up its modules by name in your forward()")

    def get_config(self) -> dict:
        return make_config(self, modules={k: m.get_config() for k, m in self._modules.items()})

    @classmethod
    def _from_config_args(cls, args: dict):
        return cls({k: from_config(c) for k, c in args.get("modules", {}).items()})
