"""Devices and sizes with PyTorch's names: chainrule runs on the CPU, and says so clearly.

``cr.device("cuda")`` can be built (as in PyTorch without a GPU), but any tensor or layer asked to live
there raises one clear error. ``cr.Size`` is the tuple subclass that ``.shape`` and ``.size()`` return.

>>> cr.device("cpu")
device(type='cpu')
>>> cr.cuda.is_available()
False
>>> cr.zeros(2, 3).shape
chainrule.Size([2, 3])
"""

from __future__ import annotations

import types

# How printed type names start: "chainrule" normally, "torch" inside `chainrule run` (set by compat).
_names = {"prefix": "chainrule"}

_KNOWN = ("cpu", "cuda", "mps", "xpu", "meta", "xla", "hip", "ipu", "mtia")


class device:
    """Where a tensor lives. Only ``cpu`` holds data here; other types raise when used.

    >>> cr.device("cpu") == "cpu"
    True
    """

    __slots__ = ("type", "index")

    def __init__(self, type: str | device = "cpu", index: int | None = None) -> None:
        if isinstance(type, device):
            type, index = type.type, type.index
        elif isinstance(type, int) and not isinstance(type, bool):
            type, index = "cuda", type
        if not isinstance(type, str):
            raise TypeError(f"device(): expected a string like 'cpu' or 'cuda:0', got {type!r}")
        name = type.strip()
        if ":" in name:
            name, _, idx = name.partition(":")
            if not idx.isdigit() or index is not None:
                raise RuntimeError(f"device(): invalid device string {type!r}")
            index = int(idx)
        if name not in _KNOWN:
            raise RuntimeError(f"device(): expected one of {', '.join(_KNOWN)} as the device type, got {type!r}")
        object.__setattr__(self, "type", name)
        object.__setattr__(self, "index", index)

    def __setattr__(self, name, value):
        raise AttributeError("device objects are immutable")

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except (RuntimeError, TypeError):
                return False
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and self.index == other.index

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type={self.type!r})"
        return f"device(type={self.type!r}, index={self.index})"

    def __enter__(self):
        check_device(self, "with device")
        return self

    def __exit__(self, *exc):
        return False

    def __reduce__(self):
        return (device, (self.type, self.index))


CPU = device("cpu")


def check_device(dev, op: str) -> None:
    """Refuse any device but the CPU with one clear sentence (None means the CPU)."""
    if dev is None:
        return
    if not isinstance(dev, device):
        dev = device(dev)
    if dev.type != "cpu":
        raise RuntimeError(
            f"{op}: device {str(dev)!r} is not available; chainrule runs on the CPU only "
            "(use device='cpu', or torch.cuda.is_available() to choose)"
        )


def is_device(value) -> bool:
    """Whether ``value`` names a device (a device object, or a string such as 'cpu' or 'cuda:0')."""
    if isinstance(value, device):
        return True
    if isinstance(value, str):
        return value.split(":")[0] in _KNOWN
    return False


class Size(tuple):
    """The shape of a tensor: a tuple that prints as ``chainrule.Size([2, 3])``.

    >>> cr.Size([2, 3]).numel()
    6
    """

    __slots__ = ()

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"{_names['prefix']}.Size({list(self)})"

    def __str__(self) -> str:
        # Messages read "shape (2, 3)"; inside `chainrule run`, print(x.shape) shows PyTorch's form.
        return repr(self) if _names["prefix"] == "torch" else tuple.__repr__(self)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __getitem__(self, index):
        out = tuple.__getitem__(self, index)
        return Size(out) if isinstance(index, slice) else out

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))

    def __reduce__(self):
        return (Size, (tuple(self),))


def _cuda_unavailable(name: str):
    def fn(*args, **kwargs):
        raise RuntimeError(f"torch.cuda.{name}(): CUDA is not available; chainrule runs on the CPU only")

    fn.__name__ = name
    return fn


def _nothing(*args, **kwargs) -> None:
    return None


cuda = types.ModuleType("chainrule.cuda", "CUDA queries: chainrule runs on the CPU, so none is available.")
cuda.is_available = lambda: False
cuda.device_count = lambda: 0
cuda.is_initialized = lambda: False
# Seeding and synchronising are harmless no-ops without a GPU, as in PyTorch.
cuda.manual_seed = cuda.manual_seed_all = cuda.seed = cuda.seed_all = _nothing
cuda.synchronize = cuda.empty_cache = _nothing
for _name in ("current_device", "get_device_name", "set_device", "get_device_properties", "memory_allocated",
              "max_memory_allocated", "memory_reserved", "init"):
    setattr(cuda, _name, _cuda_unavailable(_name))
del _name

backends = types.ModuleType("chainrule.backends", "Accelerator back-ends: none but the CPU.")
backends.mps = types.SimpleNamespace(is_available=lambda: False, is_built=lambda: False)
backends.cudnn = types.SimpleNamespace(is_available=lambda: False, enabled=False, deterministic=False,
                                       benchmark=False)

accelerator = types.ModuleType("chainrule.accelerator", "The current accelerator: none, chainrule runs on the CPU.")
accelerator.is_available = lambda: False
accelerator.current_accelerator = lambda check_available=False: None
accelerator.device_count = lambda: 0


def set_default_device(dev) -> None:
    """PyTorch's ``torch.set_default_device``: only the CPU (or None) is accepted."""
    check_device(dev, "set_default_device()")


def get_default_device() -> device:
    return CPU
