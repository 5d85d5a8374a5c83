"""The array module, dtypes and the package's random generator.

Every op reaches NumPy through ``xp`` so that a CuPy backend later is one module, not a rewrite.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
from collections.abc import Callable

import numpy as np

xp = np

float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int8 = np.dtype("int8")
uint8 = np.dtype("uint8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")


_default_float = float32
_rng = np.random.default_rng()


def get_default_dtype() -> np.dtype:
    """The dtype given to tensors made from Python floats (float32 unless changed)."""
    return _default_float


def set_default_dtype(dtype) -> None:
    """Change the dtype for tensors made from Python floats; must be a floating dtype."""
    global _default_float
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"set_default_dtype: expected a floating dtype, got {dtype}")
    _default_float = dtype


def manual_seed(seed: int) -> np.random.Generator:
    """Seed every random draw of the package (init, dropout, shuffling, rand*)."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def generator() -> np.random.Generator:
    """The package-wide random generator (reseeded by :func:`manual_seed`)."""
    return _rng


def as_dtype(dtype) -> np.dtype | None:
    """Normalise a dtype given as a NumPy dtype, type, or name like ``'float32'``."""
    if dtype is None:
        return None
    if isinstance(dtype, np.dtype):
        return dtype
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"not a dtype: {dtype!r}") from None


_malloc_tuned = False


def tune_malloc() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse instead of returning it to the OS.

    Opt-in: importing chainrule changes nothing in the host process. The ``chainrule`` command and
    the benchmarks call this; a training script may too. Returns whether malloc was tuned.

    A training step allocates and frees the same large arrays every iteration (activations,
    gradients). With glibc's defaults, arrays over 128 KiB come from fresh ``mmap`` pages or are
    trimmed back to the OS when freed, so every step pays page faults to zero new memory again:
    about 40 % of a 256x256 MLP step. Raising the mmap and trim thresholds (as the
    ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` environment variables would) keeps that
    memory in the process. Set ``CHAINRULE_MALLOC_TUNING=0`` to leave malloc alone. Linux/glibc only.
    """
    global _malloc_tuned
    if not _malloc_tuned:
        _malloc_tuned = _mallopt()
    return _malloc_tuned


def _mallopt() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("CHAINRULE_MALLOC_TUNING", "1") == "0":
        return False
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False  # the user chose
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(libc.mallopt(m_mmap_threshold, 32 << 20) and libc.mallopt(m_trim_threshold, 256 << 20))
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False



# ---- a budget for the arrays that layers allocate ----------------------------------------------------
# ``cr.load_model`` rebuilds a model from a file's metadata before it loads the weights. A damaged or
# hostile file may declare a huge architecture over a few kilobytes of tensors; layers allocate their
# parameters and buffers through :func:`empty`/:func:`full`, which check each request against a budget
# taken from the file, so a mismatch is refused before the memory is taken.
_budget = threading.local()

# What one array costs the budget beyond its values: bounds the number of arrays too (a file of many
# tiny layers), since a NumPy array's own overhead is about a hundred bytes.
ARRAY_OVERHEAD = 256


@contextlib.contextmanager
def allocation_budget(values: int, refuse: Callable[[tuple, int], Exception]):
    """Within the block, :func:`empty` and :func:`full` of this thread raise ``refuse(shape, left)``
    instead of allocating once their arrays would total more than ``values`` (each array counts its
    size plus ``ARRAY_OVERHEAD``).

    >>> with allocation_budget(10, lambda shape, left: ValueError(f"{shape} exceeds {left}")):
    ...     empty((100, 100), "float32")
    Traceback (most recent call last):
    ValueError: (100, 100) exceeds 10
    """
    previous = getattr(_budget, "left", None)
    _budget.left = int(values)
    _budget.refuse = refuse
    try:
        yield
    finally:
        _budget.left = previous


def _charge(shape) -> tuple:
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
    left = getattr(_budget, "left", None)
    if left is not None:
        cost = math.prod(shape) + ARRAY_OVERHEAD
        if cost > left:
            raise _budget.refuse(shape, left)
        _budget.left = left - cost
    return shape


def empty(shape, dtype) -> np.ndarray:
    """``np.empty(shape, dtype)``, counted against the current :func:`allocation_budget`."""
    return np.empty(_charge(shape), dtype=dtype)


def full(shape, fill_value, dtype) -> np.ndarray:
    """``np.full(shape, fill_value, dtype)``, counted against the current :func:`allocation_budget`."""
    return np.full(_charge(shape), fill_value, dtype=dtype)
