"""Numbers and arrays as short text for node labels and tables."""

from __future__ import annotations

import numpy as np


def number(v: float, digits: int = 4) -> str:
    """``4``, ``-0.25``, ``1.235e-05``: at most ``digits`` significant digits, no trailing zeros."""
    v = float(v)
    if v == 0:
        return "0"
    if not np.isfinite(v):
        return str(v)
    return f"{v:.{digits}g}"


def array(a, digits: int = 4, max_items: int = 4) -> str:
    """A scalar as a number, a small array as a list, a larger one as a summary."""
    a = np.asarray(a)
    if a.size == 1:
        return number(a.reshape(()).item(), digits)
    if a.size == 0:
        return "[]"
    if a.size <= max_items:
        return "[" + ", ".join(number(v, digits) for v in a.reshape(-1)) + "]"
    af = a.astype(np.float64, copy=False)
    return f"mean {number(af.mean(), 3)} std {number(af.std(), 3)} [{number(af.min(), 3)}, {number(af.max(), 3)}]"


def shape(s: tuple) -> str:
    return "(" + ", ".join(str(n) for n in s) + ")" if len(s) != 1 else f"({s[0]},)"


def percent(fraction: float) -> str:
    """A fraction as a percentage with one decimal that never reads 100% unless it is all:
    ``0.995`` -> ``'99.5%'``, ``0.9996`` -> ``'99.9%'``, ``1.0`` -> ``'100%'``."""
    f = float(fraction)
    if not np.isfinite(f):
        return "n/a"
    if f >= 1.0:
        return "100%" if f == 1.0 else f"{f * 100:.1f}%"
    tenths = min(int(round(f * 1000)), 999)
    return f"{tenths / 10:.1f}%"
