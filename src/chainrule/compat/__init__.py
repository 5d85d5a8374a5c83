"""What ``chainrule run script.py`` needs: PyTorch's module names resolved to chainrule's, for one run.

Inside :func:`torch_names`, ``import torch``, ``import torch.nn as nn``, ``from torch.utils.data
import DataLoader`` ... give chainrule's modules (seen through a thin proxy module per PyTorch name),
type names print as PyTorch's (``torch.Size``, ``dtype=torch.float64``), and everything is put back
afterwards. Nothing happens on ``import chainrule``: the hook exists only while the context is open.

A name chainrule does not have fails with :class:`NotSupportedError`, which names the PyTorch API::

    chainrule run: torch.fft.rfft is not supported by chainrule

>>> from chainrule.compat import torch_names
>>> with torch_names():
...     import torch
...     torch.ones(2).shape
torch.Size([2])
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import os
import runpy
import sys
import types

import numpy as np

from .. import devices as _device_module
from ..tensor import Tensor

# Each PyTorch module and the chainrule module that stands in for it. None: a namespace that only
# holds submodules (``torch.utils``).
MODULES = {
    "torch": "chainrule",
    "torch.nn": "chainrule.nn",
    "torch.nn.functional": "chainrule.nn.functional",
    "torch.nn.init": "chainrule.nn.init",
    "torch.nn.utils": "chainrule.nn.utils",
    "torch.nn.modules": "chainrule.nn",
    "torch.nn.modules.module": "chainrule.nn",
    "torch.nn.modules.loss": "chainrule.nn",
    "torch.nn.parameter": "chainrule.nn",
    "torch.optim": "chainrule.optim",
    "torch.optim.lr_scheduler": "chainrule.optim.lr_scheduler",
    "torch.optim.optimizer": "chainrule.optim",
    "torch.utils": None,
    "torch.utils.data": "chainrule.data",
    "torch.utils.data.dataset": "chainrule.data",
    "torch.utils.data.dataloader": "chainrule.data",
    "torch.autograd": "chainrule.autograd",
    "torch.autograd.function": "chainrule.autograd_function",
    "torch.onnx": "chainrule.onnx",
    "torch.cuda": "chainrule.cuda",
    "torch.backends": "chainrule.backends",
    "torch.accelerator": "chainrule.accelerator",
}

# Names PyTorch has under another name (or place) than chainrule.
ALIASES = {
    "torch": {"__version__": "chainrule.__version__"},
    "torch.nn.utils": {},
}


class TorchDtype:
    """A NumPy dtype that prints as PyTorch's (``torch.float32``): what ``t.dtype`` gives during a run.

    It equals, hashes and converts like the NumPy dtype it wraps (``np.dtype(d)`` reads ``d.dtype``),
    so programs may compare it with ``torch.float32`` or pass it anywhere a dtype goes.
    """

    __slots__ = ("dtype",)

    def __init__(self, dtype) -> None:
        self.dtype = np.dtype(dtype)

    def __eq__(self, other) -> bool:
        if isinstance(other, TorchDtype):
            return self.dtype == other.dtype
        try:
            return self.dtype == np.dtype(other)
        except TypeError:
            return False

    def __hash__(self) -> int:
        return hash(self.dtype)

    def __repr__(self) -> str:
        return f"torch.{_TORCH_NAMES.get(self.dtype.name, self.dtype.name)}"

    __str__ = __repr__

    def __getattr__(self, name: str):
        return getattr(self.dtype, name)

    @property
    def is_floating_point(self) -> bool:
        return self.dtype.kind == "f"

    @property
    def is_complex(self) -> bool:
        return self.dtype.kind == "c"

    @property
    def is_signed(self) -> bool:
        return self.dtype.kind in "fic"


_TORCH_NAMES = {"bool": "bool"}
_DTYPES = {name: TorchDtype(name) for name in
           ("float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool")}
_DTYPE_ALIASES = {
    **_DTYPES, "half": _DTYPES["float16"], "float": _DTYPES["float32"], "double": _DTYPES["float64"],
    "short": _DTYPES["int16"], "int": _DTYPES["int32"], "long": _DTYPES["int64"],
}


def _torch_dtype(self) -> TorchDtype:
    return _DTYPES.get(self._data.dtype.name) or TorchDtype(self._data.dtype)


class NotSupportedError(AttributeError):
    """A PyTorch name that chainrule does not provide (an AttributeError, so ``hasattr`` still works)."""


class NotSupportedModuleError(ModuleNotFoundError):
    """A PyTorch module that chainrule does not provide (``import torch.distributions``)."""


def _target(torch_name: str):
    target = MODULES[torch_name]
    if target is None:
        return None
    if target in ("chainrule.cuda", "chainrule.backends", "chainrule.accelerator"):
        return getattr(_device_module, target.rpartition(".")[2])
    return importlib.import_module(target)


class _TorchModule(types.ModuleType):
    """A PyTorch module name whose attributes are chainrule's (``torch.nn`` -> ``chainrule.nn``)."""

    def __init__(self, torch_name: str) -> None:
        super().__init__(torch_name)
        self.__dict__["_cr_target"] = _target(torch_name)
        self.__path__ = []  # a package, so `import torch.nn` asks the finder for the submodule

    def __getattr__(self, name: str):
        torch_name = self.__name__
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        child = f"{torch_name}.{name}"
        if child in MODULES:
            return importlib.import_module(child)
        if torch_name == "torch" and name in _DTYPE_ALIASES:
            return _DTYPE_ALIASES[name]
        if torch_name == "torch" and name == "get_default_dtype":
            from .. import backend

            return lambda: _DTYPES[backend.get_default_dtype().name]
        alias = ALIASES.get(torch_name, {}).get(name)
        if alias is not None:
            module, _, attr = alias.rpartition(".")
            return getattr(importlib.import_module(module), attr)
        target = self.__dict__["_cr_target"]
        if target is not None:
            try:
                return getattr(target, name)
            except AttributeError:
                pass
        raise NotSupportedError(f"chainrule run: {child} is not supported by chainrule")

    def __dir__(self):
        target = self.__dict__["_cr_target"]
        return sorted(set(dir(target) if target is not None else ()) | set(self.__dict__))

    def __repr__(self) -> str:
        return f"<module {self.__name__!r} (chainrule run)>"


class _TorchFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers ``import torch...``: mapped names get a proxy, others a clear 'not supported' error."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torch" and not fullname.startswith("torch."):
            return None
        if fullname not in MODULES:
            raise NotSupportedModuleError(
                f"chainrule run: the module {fullname} is not supported by chainrule", name=fullname
            )
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        return _TorchModule(spec.name)

    def exec_module(self, module) -> None:
        return None


def _is_torch(name: str) -> bool:
    return name == "torch" or name.startswith("torch.")


@contextlib.contextmanager
def torch_names():
    """Within this block, ``import torch`` (and its submodules) resolves to chainrule."""
    saved = {name: mod for name, mod in sys.modules.items() if _is_torch(name)}
    for name in saved:
        del sys.modules[name]
    finder = _TorchFinder()
    sys.meta_path.insert(0, finder)
    prefix = _device_module._names["prefix"]
    _device_module._names["prefix"] = "torch"
    dtype_property = Tensor.__dict__["dtype"]
    Tensor.dtype = property(_torch_dtype)
    try:
        yield
    finally:
        Tensor.dtype = dtype_property
        _device_module._names["prefix"] = prefix
        sys.meta_path.remove(finder)
        for name in [n for n in sys.modules if _is_torch(n)]:
            del sys.modules[name]
        sys.modules.update(saved)


def run_script(path: str, args: list[str] | None = None) -> None:
    """Run the PyTorch program at ``path`` as ``__main__`` on chainrule, with ``sys.argv`` set.

    Raises what the program raises (a :class:`NotSupportedError` for a PyTorch name chainrule lacks).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"chainrule run: no such script {path!r}")
    argv, sys_path0 = sys.argv, sys.path[0] if sys.path else None
    sys.argv = [path, *(args or [])]
    script_dir = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, script_dir)
    try:
        with torch_names():
            try:
                runpy.run_path(path, run_name="__main__")
            except ImportError as e:
                if isinstance(e, NotSupportedModuleError) or not _mentions_torch(e):
                    raise
                raise NotSupportedError(f"chainrule run: {_import_target(e)} is not supported by chainrule") from e
    finally:
        sys.argv = argv
        if sys.path and sys.path[0] == script_dir:
            sys.path.pop(0)
        elif sys_path0 is not None and script_dir in sys.path:
            sys.path.remove(script_dir)


def _mentions_torch(e: ImportError) -> bool:
    return bool(e.name and _is_torch(e.name)) or "'torch" in str(e)


def _import_target(e: ImportError) -> str:
    """``torch.fft.rfft`` from Python's "cannot import name 'rfft' from 'torch.fft'"."""
    msg = str(e)
    if msg.startswith("cannot import name"):
        parts = msg.split("'")
        if len(parts) >= 4:
            return f"{parts[3]}.{parts[1]}"
    return e.name or msg
