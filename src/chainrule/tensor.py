"""Tensor: an ndarray, its gradient, and the node of the graph that produced it.

The ndarray lives in ``_data``; ``.data`` gives it back as a Tensor without history (sharing memory),
as in PyTorch. Python operators and most methods delegate to the functions in ``ops/``; the method
table at the bottom of this file binds them.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import backend
from .devices import CPU as _CPU
from .devices import Size, device
from .devices import _names as _device_names
from .devices import check_device as _check_device
from .devices import is_device as _is_device

_FLOAT_KINDS = "f"
_RANK = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def _promote_types(a: np.dtype, b: np.dtype) -> np.dtype:
    """PyTorch's promotion of two dtypes: a higher category (bool < int < float) wins outright."""
    if a == b:
        return a
    ra, rb = _RANK[a.kind], _RANK[b.kind]
    if ra != rb:
        return a if ra > rb else b
    return np.promote_types(a, b)


def _combine(higher: np.dtype | None, lower: np.dtype | None) -> np.dtype | None:
    """Fold a lower-priority group (0-d tensors, then Python scalars) into a higher one."""
    if higher is None:
        return lower
    if lower is None or higher.kind == "f":
        return higher
    if higher.kind == "b" or _RANK[lower.kind] > _RANK[higher.kind]:
        return _promote_types(higher, lower)
    return higher


def _scalar_dtype(value) -> np.dtype:
    if isinstance(value, (bool, np.bool_)):
        return backend.bool_
    if isinstance(value, numbers.Integral):
        return backend.int64
    if isinstance(value, numbers.Real):
        return backend.get_default_dtype()
    raise TypeError(f"expected a Tensor or a real number, got {type(value).__name__}")


def result_type(*operands) -> np.dtype:
    """The dtype PyTorch gives an op on these operands (Tensors and Python numbers).

    Tensors with dimensions outrank 0-d tensors, which outrank Python numbers, unless a lower group
    has a higher category: ``float32 tensor * 2.5`` stays float32, ``int64 tensor * 2.5`` is float32.
    """
    dim = zero = scalar = None
    for x in operands:
        if isinstance(x, Tensor):
            dt = x._data.dtype
            if x._data.ndim:
                dim = dt if dim is None else _promote_types(dim, dt)
            else:
                zero = dt if zero is None else _promote_types(zero, dt)
        else:
            dt = _scalar_dtype(x)
            scalar = dt if scalar is None else _promote_types(scalar, dt)
    return _combine(dim, _combine(zero, scalar))


def _binary_args(a, b) -> tuple[Tensor, Tensor]:
    """Turn the operands of a binary op into two Tensors of the promoted dtype."""
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        if a._data.dtype == b._data.dtype:
            return a, b
        dt = result_type(a, b)
        return (a if a._data.dtype == dt else a.to(dt)), (b if b._data.dtype == dt else b.to(dt))
    if not isinstance(a, Tensor):
        b2, a2 = _binary_args(b, a)
        return a2, b2
    # a is a Tensor, b is something else
    if isinstance(b, np.ndarray) and b.ndim > 0:
        return _binary_args(a, Tensor._wrap(b))
    if isinstance(b, np.ndarray):
        b = b.item()
    dt = a._data.dtype
    if dt.kind != "f" or not isinstance(b, numbers.Real):
        dt = result_type(a, b)
        if a._data.dtype != dt:
            a = a.to(dt)
    return a, Tensor._wrap(np.asarray(b, dtype=dt))


class Tensor:
    """An n-dimensional array that records the operations applied to it.

    >>> x = cr.tensor([1.0, 2.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([2., 4.])
    """

    __slots__ = ("_data", "grad", "requires_grad", "_node", "_version", "name", "__weakref__")
    __array_ufunc__ = None  # NumPy defers `ndarray op Tensor` to Tensor's reflected operators

    def __init__(self, data, dtype=None, requires_grad: bool = False, name: str | None = None):
        arr = _to_array(data, dtype)
        self._data = arr
        self.grad = None
        self._node = None
        self._version = [0]
        self.name = name
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _wrap(array: np.ndarray) -> Tensor:
        """Fast constructor for op results: no copy (NumPy's 0-d results come back as scalars)."""
        if type(array) is not np.ndarray:
            array = np.asarray(array)
        t = _new(Tensor)
        t._data = array
        t.grad = None
        t.requires_grad = False
        t._node = None
        t._version = [0]
        t.name = None
        return t

    # ---- attributes -------------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def device(self) -> device:
        return _CPU

    @property
    def is_cuda(self) -> bool:
        return False

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    @property
    def data(self) -> Tensor:
        """This tensor without history, sharing memory (assign to replace the values in place)."""
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value) -> None:
        # As in PyTorch, changes made through .data bypass the graph and its version counter.
        self._data = value._data if isinstance(value, Tensor) else np.asarray(value)

    def size(self, dim: int | None = None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_check_dim(dim, self._data.ndim, "size")]

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return self._data.size

    def element_size(self) -> int:
        return self._data.itemsize

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f"

    # ---- conversion --------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The underlying ndarray (shares memory). Refused when the tensor requires grad, as in PyTorch."""
        if self.requires_grad:
            raise RuntimeError(
                "numpy(): can't call numpy() on a tensor that requires grad; use t.detach().numpy()"
            )
        return self._data

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and np.dtype(dtype) != self._data.dtype:
            return self._data.astype(dtype)
        return self._data.copy() if copy else self._data

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"item(): only one-element tensors can be converted to a Python number, "
                f"got {self._data.size} elements (shape {self.shape})"
            )
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def _scalar(self, kind: str):
        if self._data.size != 1:  # ValueError, as PyTorch raises for float() and int()
            raise ValueError(
                f"{kind}(): only one-element tensors can be converted to Python scalars, "
                f"got shape {self.shape}"
            )
        return self._data.item()

    def __float__(self) -> float:
        return float(self._scalar("float"))

    def __int__(self) -> int:
        return int(self._scalar("int"))

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"bool(): the truth value of a tensor with {self._data.size} elements is ambiguous; "
                "use .any() or .all()"
            )
        return bool(self._data.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._data.item())

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return _format(self)

    def __format__(self, spec: str) -> str:
        """``f"{loss:.4f}"`` formats a 0-d tensor's value, as in PyTorch."""
        if self._data.ndim == 0:
            return format(self._data.item(), spec)
        return object.__format__(self, spec)

    # ---- graph -------------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self._data.dtype.kind != "f":
            raise RuntimeError(
                f"requires_grad: only floating-point tensors can require gradients, got {self.dtype}"
            )
        if not requires_grad and self._node is not None:
            raise RuntimeError(
                "requires_grad_(False): this tensor is the output of an op; use .detach() instead"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> Tensor:
        """The same values (shared memory), cut from the graph."""
        t = Tensor._wrap(self._data)
        t._version = self._version
        return t

    def detach_(self) -> Tensor:
        self._node = None
        self.requires_grad = False
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph: bool = False) -> None:
        """Backpropagate from this tensor, accumulating into ``.grad`` of the leaves."""
        autograd.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(self)`` in ``backward()`` once this leaf's ``.grad`` is final (as in PyTorch)."""
        return autograd.register_post_accumulate_grad_hook(self, hook)

    # ---- in-place ----------------------------------------------------------------------------
    def _inplace(self, op, *args, name: str) -> Tensor:
        """Apply the out-of-place ``op`` and write its result into this tensor's memory.

        As in PyTorch: a leaf that requires grad may only be changed under ``no_grad``; a non-leaf
        takes the new node as its history, and the version counter tells any op that saved the old
        values that they are gone.
        """
        tracking = autograd._grad_mode.enabled
        if tracking and self.requires_grad and self._node is None:
            raise RuntimeError(
                f"{name}: a leaf tensor that requires grad{_named(self)} is being used in an in-place "
                "operation; wrap the update in `with cr.no_grad():`"
            )
        old = _new(Tensor)
        old._data, old.grad, old.requires_grad = self._data, None, self.requires_grad
        old._node, old._version, old.name = self._node, self._version, self.name
        result = op(old, *[old if a is self else a for a in args])  # x.mul_(x) reads the old x twice
        if tracking and result.requires_grad and self._data.base is not None:
            # The tensor this view came from would not learn about the new history.
            raise RuntimeError(
                f"{name}: in-place change of a view (a slice, reshape, ...) with a result that requires "
                "grad is not supported; use an out-of-place op or cr.no_grad()"
            )
        out = result._data
        if out.dtype != self._data.dtype and not np.can_cast(out.dtype, self._data.dtype, "same_kind"):
            raise RuntimeError(f"{name}: result type {out.dtype} can't be cast to {self._data.dtype}")
        if not self._data.flags.writeable:
            raise RuntimeError(f"{name}: this tensor's memory is read-only (an expanded view?)")
        node = result._node if tracking else None
        if node is not None and 0 in node.saves:
            # The new node reads the old values in backward: they get their own copy, since the
            # write below replaces them (the version they were saved at stays the same).
            old._data, old._version = self._data.copy(), [old._version[0]]
        if out is not self._data:
            np.copyto(self._data, out, casting="unsafe")
        self._version[0] += 1
        if tracking:
            self._node = node
            self.requires_grad = result.requires_grad
            if node is not None and node.save_output:
                node._out_ref = _weakref(self)
                node._out_version = self._version[0]
        return self

    def add_(self, other, alpha=1) -> Tensor:
        return self._inplace(_E.add, other, alpha, name="add_")

    def sub_(self, other, alpha=1) -> Tensor:
        return self._inplace(_E.sub, other, alpha, name="sub_")

    def mul_(self, other) -> Tensor:
        return self._inplace(_E.mul, other, name="mul_")

    def div_(self, other) -> Tensor:
        return self._inplace(_E.div, other, name="div_")

    def pow_(self, exponent) -> Tensor:
        return self._inplace(_E.pow, exponent, name="pow_")

    def clamp_(self, min=None, max=None) -> Tensor:
        return self._inplace(_E.clamp, min, max, name="clamp_")

    def neg_(self) -> Tensor:
        return self._inplace(_E.neg, name="neg_")

    def exp_(self) -> Tensor:
        return self._inplace(_E.exp, name="exp_")

    def relu_(self) -> Tensor:
        return self._inplace(_E.relu, name="relu_")

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def fill_(self, value) -> Tensor:
        return self._inplace(_E._filled, value, name="fill_")

    def copy_(self, src) -> Tensor:
        s, d = np.shape(src._data if isinstance(src, Tensor) else src), self._data.shape
        if s != d:
            try:
                fits = np.broadcast_shapes(s, d) == d
            except ValueError:
                fits = False
            if not fits:
                raise RuntimeError(f"copy_: source of shape {s} cannot be broadcast to {d}")
        return self._inplace(_E._copied, src, name="copy_")

    def __iadd__(self, other):
        return self._inplace(_E.add, other, name="+=")

    def __isub__(self, other):
        return self._inplace(_E.sub, other, name="-=")

    def __imul__(self, other):
        return self._inplace(_E.mul, other, name="*=")

    def __itruediv__(self, other):
        return self._inplace(_E.div, other, name="/=")

    def __setitem__(self, index, value) -> None:
        self._inplace(_I.index_put, index, value, name="__setitem__")

    # ---- copies and dtype ----------------------------------------------------------------------
    def to(self, *args, dtype=None, copy: bool = False, device=None, non_blocking: bool = False,
           memory_format=None) -> Tensor:
        """Convert to a dtype (``t.to(cr.float64)``); devices other than the CPU are refused."""
        _check_device(device, "to()")
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif _is_device(a):
                _check_device(a, "to()")
            else:
                dtype = a
        if dtype is None:
            return self.clone() if copy else self
        dtype = backend.as_dtype(dtype)
        if dtype == self._data.dtype and not copy:
            return self
        return _E.cast(self, dtype)

    def type(self, dtype=None, non_blocking: bool = False):
        """With no argument, the legacy type name (``'chainrule.FloatTensor'``); else a cast to ``dtype``,
        which may be a dtype, a legacy type (``cr.LongTensor``) or its name (``'torch.LongTensor'``)."""
        from . import legacy

        if dtype is None:
            return legacy.type_name(self._data.dtype)
        return self.to(legacy.as_dtype(dtype))

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def float(self) -> Tensor:
        return self.to(backend.float32)

    def double(self) -> Tensor:
        return self.to(backend.float64)

    def half(self) -> Tensor:
        return self.to(backend.float16)

    def long(self) -> Tensor:
        return self.to(backend.int64)

    def int(self) -> Tensor:
        return self.to(backend.int32)

    def bool(self) -> Tensor:
        return self.to(backend.bool_)

    def cpu(self, memory_format=None) -> Tensor:
        return self

    def cuda(self, device=None, non_blocking: bool = False, memory_format=None) -> Tensor:
        _check_device("cuda" if device is None else device if not isinstance(device, int) else f"cuda:{device}",
                      "cuda()")
        return self

    def clone(self) -> Tensor:
        return _E.clone(self)

    def contiguous(self) -> Tensor:
        if self._data.flags.c_contiguous:
            return self
        return _E.clone(self)

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` at the next backward (as in PyTorch).

        >>> x = cr.tensor([1.0, 2.0], requires_grad=True)
        >>> y = x * 3
        >>> y.retain_grad()
        >>> y.sum().backward()
        >>> y.grad
        tensor([1., 1.])
        """
        autograd.retain_grad(self)

    @property
    def retains_grad(self) -> bool:
        return autograd.retains_grad(self)

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned Tensor replaces it.

        >>> x = cr.tensor([1.0, 2.0], requires_grad=True)
        >>> h = x.register_hook(lambda g: g * 2)
        >>> (x * x).sum().backward()
        >>> x.grad
        tensor([4., 8.])
        """
        return autograd.register_hook(self, hook)

    def __getitem__(self, index):
        return _I.getitem(self, index)

    def __reduce_ex__(self, protocol):
        raise TypeError("chainrule tensors are not pickled; save them with cr.save (safetensors)")


_new = object.__new__


def _weakref(t):
    import weakref

    return weakref.ref(t)


def _named(t: Tensor) -> str:
    return f" ({t.name!r})" if t.name else ""


def _check_dim(dim: int, ndim: int, op: str) -> int:
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dimension {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % n


def _to_array(data, dtype=None) -> np.ndarray:
    """Build a fresh ndarray with PyTorch's dtype inference (Python floats become float32)."""
    dtype = backend.as_dtype(dtype)
    if isinstance(data, Tensor):
        arr = data._data
        return arr.astype(dtype) if dtype is not None and dtype != arr.dtype else arr.copy()
    if isinstance(data, np.ndarray):
        return np.array(data, dtype=dtype)
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in _flat(data)):
        data = [x._data if isinstance(x, Tensor) else x for x in data]
    arr = np.array(data, dtype=dtype)
    if dtype is None:
        if arr.dtype.kind == "f" and arr.dtype != backend.get_default_dtype() and not _has_np_float(data):
            arr = arr.astype(backend.get_default_dtype())
        elif arr.dtype.kind in "iu" and not isinstance(data, np.generic):
            arr = arr.astype(backend.int64, copy=False)
        elif arr.dtype.kind not in "fiub":
            raise TypeError(f"tensor(): can't convert data of dtype {arr.dtype} ({type(data).__name__})")
    return arr


def _flat(data):
    for x in data:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def _has_np_float(data) -> bool:
    return isinstance(data, np.floating)


def _float_mode(arr: np.ndarray) -> str:
    """PyTorch prints whole floats as ``1.`` and others with four decimals (``2.5000``)."""
    if arr.dtype.kind != "f":
        return "maxprec"
    finite = arr[np.isfinite(arr)]
    return "maxprec_equal" if np.all(finite == np.round(finite)) else "fixed"


def _format(t: Tensor) -> str:
    arr = t._data
    if arr.size == 0:
        body = f"[], size={arr.shape}"
    else:
        body = np.array2string(
            arr, separator=", ", prefix="tensor(", precision=4, threshold=1000, edgeitems=3,
            floatmode=_float_mode(arr),
        )
    extras = []
    if arr.dtype not in (backend.get_default_dtype(), backend.int64, backend.bool_):
        extras.append(f"dtype={_device_names['prefix']}.{arr.dtype.name}")
    if t._node is not None:
        extras.append(f"grad_fn=<{t._node.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + ", ".join([body, *extras]) + ")"


# The ops import Tensor from this module, so they come in after the class exists.
from . import autograd  # noqa: E402
from .ops import elementwise as _E  # noqa: E402
from .ops import indexing as _I  # noqa: E402
from .ops import linalg as _L  # noqa: E402
from .ops import reduce as _R  # noqa: E402
from .ops import shape as _S  # noqa: E402


def _reflected(fn):
    def method(self, other):
        return fn(other, self)

    method.__name__ = f"r{fn.__name__}"
    return method


def _method_table() -> None:
    """Bind ops as Tensor methods and operators: ``x.exp()`` is ``cr.exp(x)``."""
    T = Tensor
    for name in (
        "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "rsqrt", "square", "reciprocal",
        "abs", "sin", "cos", "tanh", "sigmoid", "relu", "clamp", "clip", "maximum", "minimum", "sign",
        "floor", "ceil", "round", "isnan", "isinf", "isfinite", "eq", "ne", "lt", "le", "gt", "ge",
        "logical_and", "logical_or", "logical_xor", "logical_not", "equal", "allclose", "isclose",
        "floor_divide", "remainder",
    ):
        setattr(T, name, getattr(_E, name))
    for name in (
        "sum", "mean", "var", "std", "amax", "amin", "max", "min", "argmax", "argmin", "all", "any",
        "prod", "norm", "logsumexp", "softmax", "log_softmax", "cumsum",
    ):
        setattr(T, name, getattr(_R, name))
    for name in (
        "reshape", "view", "view_as", "flatten", "unflatten", "squeeze", "unsqueeze", "permute",
        "transpose", "swapaxes", "t", "movedim", "expand", "expand_as", "broadcast_to", "split", "chunk",
        "unbind", "narrow", "select", "flip", "repeat", "tile",
    ):
        setattr(T, name, getattr(_S, name))
    for name in ("gather", "index_select", "masked_fill", "take_along_dim"):
        setattr(T, name, getattr(_I, name))
    for name in ("matmul", "mm", "bmm", "mv", "dot", "outer"):
        setattr(T, name, getattr(_L, name))
    T.multiply, T.subtract, T.divide, T.true_divide, T.negative = _E.mul, _E.sub, _E.div, _E.div, _E.neg
    T.absolute, T.greater, T.less = _E.abs, _E.gt, _E.lt
    T.where = lambda self, condition, other: _E.where(condition, self, other)  # x.where(c, y), as PyTorch
    T.__add__, T.__radd__ = _E.add, _E.add  # + and * commute (exactly, in floating point too)
    T.__sub__, T.__rsub__ = _E.sub, _reflected(_E.sub)
    T.__mul__, T.__rmul__ = _E.mul, _E.mul
    T.__truediv__, T.__rtruediv__ = _E.div, _reflected(_E.div)
    T.__floordiv__, T.__rfloordiv__ = _E.floor_divide, _reflected(_E.floor_divide)
    T.__mod__, T.__rmod__ = _E.remainder, _reflected(_E.remainder)
    T.__pow__, T.__rpow__ = _E.pow, _reflected(_E.pow)
    T.__matmul__, T.__rmatmul__ = _L.matmul, _reflected(_L.matmul)
    T.__neg__ = _E.neg
    T.__pos__ = lambda self: self
    T.__abs__ = _E.abs
    T.__invert__ = _E.bitwise_not
    T.__and__, T.__rand__ = _E.bitwise_and, _reflected(_E.bitwise_and)
    T.__or__, T.__ror__ = _E.bitwise_or, _reflected(_E.bitwise_or)
    T.__xor__, T.__rxor__ = _E.bitwise_xor, _reflected(_E.bitwise_xor)
    T.__eq__, T.__ne__ = _E.eq, _E.ne
    T.__lt__, T.__le__, T.__gt__, T.__ge__ = _E.lt, _E.le, _E.gt, _E.ge
    T.T = property(lambda self: _S.permute(self, tuple(reversed(range(self.ndim)))))
    T.mT = property(lambda self: _S.transpose(self, -2, -1))


_method_table()
