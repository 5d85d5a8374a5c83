"""Measurement plumbing for benchmarks/run.py: load accounting, memory, BLAS info, statistics, tables.

Nothing here knows about a particular framework; the workloads live in ``_workloads.py``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

_CLOCK_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# ---- CPU time taken by other processes ---------------------------------------------------------------
def _busy_cpu_seconds() -> float | None:
    """CPU seconds all processes on the machine have spent busy since boot (/proc/stat, first line)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    ticks = [int(v) for v in fields]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already inside user/nice]
    busy = sum(ticks[:8]) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)
    return busy / _CLOCK_TICK


def _own_cpu_seconds() -> float:
    """CPU seconds this process (all its threads) has used, at nanosecond resolution."""
    return time.process_time()


@dataclass
class Meter:
    """Times a region and tells how much CPU other processes took meanwhile.

    ``other_cpu_s`` = (busy CPU of the whole machine over the region) - (this process's CPU over it);
    ``load`` is that divided by the wall time, in cores: 0 on a quiet machine, 1.0 when another process
    kept one core busy the whole time.
    """

    wall_s: float = 0.0
    own_cpu_s: float = 0.0
    other_cpu_s: float | None = None
    _start: tuple = field(default=(), repr=False)

    def __enter__(self) -> Meter:
        self._start = (time.perf_counter(), _own_cpu_seconds(), _busy_cpu_seconds())
        return self

    def __exit__(self, *exc) -> None:
        wall0, own0, busy0 = self._start
        busy1 = _busy_cpu_seconds()
        self.own_cpu_s = _own_cpu_seconds() - own0
        self.wall_s = time.perf_counter() - wall0
        if busy0 is not None and busy1 is not None:
            self.other_cpu_s = max(0.0, busy1 - busy0 - self.own_cpu_s)

    @property
    def load(self) -> float | None:
        if self.other_cpu_s is None or self.wall_s <= 0:
            return None
        return self.other_cpu_s / self.wall_s

    def as_dict(self) -> dict:
        return {"wall_s": self.wall_s, "own_cpu_s": self.own_cpu_s, "other_cpu_s": self.other_cpu_s,
                "load": self.load}


def combine_meters(meters: list[Meter]) -> dict:
    """One record for several timed regions (e.g. the epochs of one run): sums, and the overall load."""
    wall = sum(m.wall_s for m in meters)
    own = sum(m.own_cpu_s for m in meters)
    others = [m.other_cpu_s for m in meters]
    other = None if any(o is None for o in others) else sum(others)
    return {"wall_s": wall, "own_cpu_s": own, "other_cpu_s": other,
            "load": None if other is None or wall <= 0 else other / wall}


def wait_for_quiet(max_load: float, timeout: float, interval: float = 0.5) -> float | None:
    """Sleep until the machine's other processes use at most ``max_load`` cores (or ``timeout`` runs out).

    Returns the last load seen (None where /proc/stat is unreadable). The caller sleeps meanwhile, so
    all busy time is other processes'.
    """
    deadline = time.monotonic() + timeout
    while True:
        busy0, wall0 = _busy_cpu_seconds(), time.perf_counter()
        if busy0 is None:
            return None
        time.sleep(interval)
        load = (_busy_cpu_seconds() - busy0) / (time.perf_counter() - wall0)
        if load <= max_load or time.monotonic() >= deadline:
            return load


# ---- memory --------------------------------------------------------------------------------------------
def rss_mb() -> float:
    """Resident set size of this process now, in MB (10^6 bytes)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE / 1e6
    except OSError:
        return float("nan")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


# ---- the machine ---------------------------------------------------------------------------------------
def blas_info() -> list[dict]:
    """The BLAS libraries loaded in this process, as threadpoolctl sees them ([] without it)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = ("user_api", "internal_api", "version", "architecture", "num_threads", "threading_layer", "prefix")
    return [{k: info.get(k) for k in keep} for info in threadpool_info()]


def blas_threads() -> int:
    """The number of threads NumPy's BLAS uses (PyTorch is given the same number)."""
    for info in blas_info():
        if info.get("user_api") == "blas" and info.get("num_threads"):
            return int(info["num_threads"])
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict:
    """Versions of the frameworks that are installed, found without importing them."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("numpy", "chainrule", "torch", "scikit-learn", "micrograd", "threadpoolctl"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def machine_info() -> dict:
    env = {k: os.environ[k] for k in sorted(os.environ)
           if k.startswith(("OPENBLAS_", "OMP_", "MKL_")) and k != "OPENBLAS_VERBOSE"}
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform(), "blas_env": env,
            "versions": versions()}


# ---- running one measurement in a fresh process --------------------------------------------------------
class WorkerError(RuntimeError):
    pass


def run_worker(argv: list[str], timeout: float, env: dict | None = None) -> dict:
    """Run ``python argv...`` and return the JSON object its last stdout line holds."""
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=timeout, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
        raise WorkerError(f"worker {' '.join(argv[-3:])} failed (exit {proc.returncode}): " + " | ".join(tail))
    return json.loads(lines[-1])


# ---- statistics and tables -----------------------------------------------------------------------------
def summarize(values: list[float]) -> dict:
    """Median, min and max of the finite values (None when there are none)."""
    vals = [v for v in values if v is not None and v == v]
    if not vals:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def fmt(value: float | None, digits: int = 3) -> str:
    """A number in ``digits`` significant figures, without scientific notation for everyday sizes."""
    if value is None or value != value:
        return "-"
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 10 ** digits:
        return f"{value:,.0f}"
    decimals = max(0, digits - 1 - int(_floor_log10(magnitude)))
    return f"{value:.{decimals}f}"


def _floor_log10(x: float) -> int:
    import math

    return math.floor(math.log10(x))


def fmt_range(summary: dict, digits: int = 3) -> str:
    if not summary or summary.get("median") is None:
        return "-"
    return f"{fmt(summary['median'], digits)} [{fmt(summary['min'], digits)}-{fmt(summary['max'], digits)}]"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain-text table, columns padded to the widest cell, in Markdown pipe syntax."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])
