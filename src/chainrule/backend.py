"""The array module, dtypes and the package's random generator.

Every op reaches NumPy through ``xp`` so that a CuPy backend later is one module, not a rewrite.
"""

from __future__ import annotations

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
