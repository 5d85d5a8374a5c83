"""chainrule side by side with PyTorch, scikit-learn and micrograd: one table per workload.

    python benchmarks/run.py                 # the full suite (a few minutes), writes results/latest.json
    python benchmarks/run.py --quick         # a seconds-long smoke run (CI), writes results/quick.json
    python benchmarks/run.py --workloads W-small,W-scalar --libs chainrule,torch --runs 5
    python benchmarks/run.py --profile W-small   # where chainrule's time goes (cProfile, wall clock)

Every measurement runs in a fresh process (this script with ``--worker``), the frameworks interleaved
A B A B so slow drifts of the machine hit all of them alike; the tables give the median and min-max
over the runs and chainrule's throughput as a multiple of each peer's (above 1: chainrule is faster).
Each measurement also records the CPU time other processes took meanwhile (from /proc/stat), in cores;
one taken while others used more than ``--max-load`` cores is repeated (at most ``--retries`` times,
keeping the quietest), since two BLAS threads on two cores slow down several times under load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import _harness as h
import _workloads as wl

HERE = Path(__file__).resolve().parent

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# How each workload is read: its headline metric, whether higher is better, and the extra columns.
METRICS = {
    "W-small": ("epoch_s", False, [("test_acc", "test acc", 3), ("step_us", "us/step", 3)]),
    "W-medium": ("samples_per_s", True, [("peak_rss_mb", "peak RSS MB", 3)]),
    "W-large": ("samples_per_s", True, [("gflops", "GFLOP/s", 3), ("peak_fraction", "of peak", 2),
                                        ("peak_gflops", "matmul peak", 3)]),
    "W-conv": ("samples_per_s", True, []),
    "W-scalar": ("ms_per_step", False, [("final_loss", "loss", 3)]),
    "W-small-rss": ("rss_growth_mb", False, [("cyclic_garbage_objects", "cyclic objs", 3)]),
}
UNITS = {"epoch_s": "s/epoch", "samples_per_s": "samples/s", "ms_per_step": "ms/step", "rss_growth_mb": "MB growth"}

# The targets: (workload, metric, peer or None, comparison, bound, text).
TARGETS = [
    ("W-small", "speed", "torch", ">=", 2.0, "W-small epoch time <= 0.5x PyTorch's"),
    ("W-small", "speed", "sklearn", ">=", 1 / 0.65, "W-small epoch time <= 0.65x scikit-learn's"),
    ("W-small", "acc_gap", "torch", "<=", 0.01, "W-small test accuracy within 1 point of PyTorch's"),
    ("W-medium", "speed", "torch", ">=", 1.0, "W-medium throughput >= 1.0x PyTorch's"),
    ("W-large", "peak_fraction", None, ">=", 0.70, "W-large >= 70% of the matmul peak"),
    ("W-conv", "speed", "torch", ">=", 0.5, "W-conv throughput >= 0.5x PyTorch's"),
    ("W-scalar", "speed", "torch", ">=", 1.0, "W-scalar step time <= PyTorch's"),
    ("W-medium", "rss_ratio", "torch", "<=", 1.2, "W-medium peak RSS <= 1.2x PyTorch's"),
    ("W-small-rss", "rss_growth_mb", None, "<", 5.0, "RSS growth over 1,000 W-small steps < 5 MB"),
]


# ---- worker side ---------------------------------------------------------------------------------------
def worker(workload: str, lib: str, quick: bool) -> None:
    cfg = wl.WORKLOADS[workload]["quick" if quick else "full"]
    result = wl.RUNNERS[workload](lib, cfg)
    result["blas"] = h.blas_info()
    print(json.dumps(result))


def profile(workload: str, lib: str, quick: bool, top: int = 25) -> None:
    """Run one measurement in this process under cProfile (wall clock) and print where the time goes."""
    import cProfile
    import pstats

    cfg = wl.WORKLOADS[workload]["quick" if quick else "full"]
    wl.RUNNERS[workload](lib, wl.WORKLOADS[workload]["quick"])  # imports and first-call costs stay out
    profiler = cProfile.Profile()  # wall clock: run it on a quiet machine
    profiler.enable()
    result = wl.RUNNERS[workload](lib, cfg)
    profiler.disable()
    print(f"{workload} {lib} ({cfg}): {json.dumps(result['metrics'])}")
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


# ---- parent side ---------------------------------------------------------------------------------------
def measure(workload: str, lib: str, args) -> dict:
    """One measurement in a fresh process, repeated while the machine was busier than --max-load."""
    argv = [str(Path(__file__).resolve()), "--worker", workload, lib] + (["--quick"] if args.quick else [])
    env = None
    if args.threads:
        env = dict(os.environ, **{var: str(args.threads) for var in THREAD_VARS})
    attempts: list[dict] = []
    while True:
        if args.wait > 0:
            h.wait_for_quiet(args.max_load, args.wait)
        try:
            rec = h.run_worker(argv, timeout=args.timeout, env=env)
        except Exception as err:  # WorkerError, subprocess.TimeoutExpired, OSError
            if attempts:  # keep the loaded measurement already made
                break
            return {"error": str(err) if isinstance(err, h.WorkerError) else f"{type(err).__name__}: {err}"}
        attempts.append(rec)
        load = rec["meter"].get("load")
        quiet = load is None or load <= args.max_load
        if quiet or len(attempts) > args.retries or args.retry_budget <= 0:
            break
        args.retry_budget -= 1
    best = min(attempts, key=lambda r: r["meter"].get("load") or 0.0)
    best["attempt_loads"] = [r["meter"].get("load") for r in attempts]
    best["loaded"] = (best["meter"].get("load") or 0.0) > args.max_load
    return best


def run_suite(args) -> dict:
    workloads = args.workloads
    results: dict = {}
    for workload in workloads:
        spec = wl.WORKLOADS[workload]
        libs = spec.get("quick_libs", spec["libs"]) if args.quick else spec["libs"]
        libs = [lib for lib in libs if lib in args.libs and wl.available(lib)]
        results[workload] = {"config": wl.WORKLOADS[workload]["quick" if args.quick else "full"],
                             "libs": {lib: [] for lib in libs}}
        for run in range(args.runs):
            for lib in libs:
                start = time.perf_counter()
                rec = measure(workload, lib, args)
                results[workload]["libs"][lib].append(rec)
                _progress(workload, lib, run, args.runs, rec, time.perf_counter() - start)
        _summarize(workload, results[workload])
        print("\n" + render_workload(workload, results[workload]), flush=True)
    return results


def _progress(workload, lib, run, runs, rec, seconds) -> None:
    metric = METRICS[workload][0]
    if "error" in rec:
        text = "ERROR " + rec["error"]
    else:
        load = rec["meter"].get("load")
        text = (f"{h.fmt(rec['metrics'][metric])} {UNITS[metric]}, others used {h.fmt(load, 2)} cores"
                + (f" (attempts: {len(rec['attempt_loads'])})" if len(rec["attempt_loads"]) > 1 else ""))
    print(f"  {workload:<11} {lib:<9} run {run + 1}/{runs}: {text}  [{seconds:.1f} s]", file=sys.stderr, flush=True)


def _summarize(workload: str, entry: dict) -> None:
    """Median/min/max of every numeric metric per lib, and chainrule's throughput ratio to each peer."""
    metric, higher, _ = METRICS[workload]
    summaries = {}
    for lib, recs in entry["libs"].items():
        ok = [r for r in recs if "error" not in r]
        keys = {k for r in ok for k, v in r["metrics"].items() if isinstance(v, (int, float))}
        summaries[lib] = {k: h.summarize([r["metrics"].get(k) for r in ok]) for k in sorted(keys)}
        summaries[lib]["cpu_" + metric] = h.summarize([_cpu_metric(r, metric, higher) for r in ok])
        summaries[lib]["load"] = h.summarize([r["meter"].get("load") for r in ok])
        summaries[lib]["loaded_runs"] = sum(bool(r.get("loaded")) for r in ok)
        summaries[lib]["errors"] = [r["error"] for r in recs if "error" in r]
    entry["summary"] = summaries
    entry["ratios"] = _ratios(summaries, metric, higher)
    entry["best_ratios"] = _ratios(summaries, metric, higher, "max" if higher else "min")
    entry["cpu_ratios"] = _ratios(summaries, "cpu_" + metric, higher)


def _cpu_metric(rec: dict, metric: str, higher: bool) -> float | None:
    """The headline metric recomputed from the process's own CPU time instead of the wall clock.

    With one thread per framework (--threads 1) this hardly depends on what else the machine runs.
    """
    wall, cpu, value = rec["meter"].get("wall_s"), rec["meter"].get("own_cpu_s"), rec["metrics"].get(metric)
    if not wall or not cpu or value is None:
        return None
    return value * wall / cpu if higher else value * cpu / wall


def _ratios(summaries: dict, metric: str, higher: bool, stat: str = "median") -> dict:
    """chainrule's throughput as a multiple of each peer's, from the medians (or bests) of ``metric``."""
    ours = summaries.get("chainrule", {}).get(metric, {}).get(stat)
    ratios = {}
    for lib, summary in summaries.items():
        theirs = summary.get(metric, {}).get(stat)
        if lib != "chainrule" and ours and theirs:
            ratios[lib] = ours / theirs if higher else theirs / ours
    return ratios


def render_workload(workload: str, entry: dict) -> str:
    metric, higher, extras = METRICS[workload]
    cfg = ", ".join(f"{k}={v}" for k, v in entry["config"].items())
    headers = ["lib", f"{UNITS[metric]} median [min-max]", *(label for _, label, _ in extras),
               "others' CPU (cores)", "runs", "chainrule/lib" + (" speed" if workload != "W-small-rss" else ""),
               "best/best", "by CPU time"]
    rows = []
    for lib, summary in entry["summary"].items():
        n = summary.get(metric, {}).get("n", 0)
        if not n:
            rows.append([lib, "error: " + (summary["errors"][0][-80:] if summary["errors"] else "no result"),
                         *("-" for _ in extras), "-", "0", "-", "-", "-"])
            continue
        ratios = [entry[key].get(lib) for key in ("ratios", "best_ratios", "cpu_ratios")]
        loaded = f" ({summary['loaded_runs']} loaded)" if summary["loaded_runs"] else ""
        rows.append([lib, h.fmt_range(summary[metric]),
                     *(h.fmt(summary.get(key, {}).get("median"), digits) for key, _, digits in extras),
                     h.fmt(summary["load"]["median"], 2) + loaded, str(n),
                     *("-" if r is None else f"{r:.2f}x" for r in ratios)])
    title = f"{workload} ({cfg}): {UNITS[metric]}, {'higher' if higher else 'lower'} is better"
    return f"{title}\n{h.table(headers, rows)}"


def evaluate_targets(results: dict) -> list[dict]:
    """Each of the issue's targets with the measured value (None when a side is missing)."""
    out = []
    for workload, kind, peer, op, bound, text in TARGETS:
        entry = results.get(workload)
        value = best = None
        if entry is not None:
            summary = entry["summary"]
            ours = summary.get("chainrule", {})
            theirs = summary.get(peer, {}) if peer else {}
            if kind == "speed":
                value, best = entry["ratios"].get(peer), entry["best_ratios"].get(peer)
            elif kind == "acc_gap" and ours.get("test_acc", {}).get("median") is not None \
                    and theirs.get("test_acc", {}).get("median") is not None:
                value = theirs["test_acc"]["median"] - ours["test_acc"]["median"]
            elif kind == "rss_ratio" and ours.get("peak_rss_mb", {}).get("median") \
                    and theirs.get("peak_rss_mb", {}).get("median"):
                value = ours["peak_rss_mb"]["median"] / theirs["peak_rss_mb"]["median"]
            elif kind in ("peak_fraction", "rss_growth_mb"):
                value = ours.get(kind, {}).get("median")
                best = ours.get(kind, {}).get("max" if kind == "peak_fraction" else "min")
        met = None if value is None else {">=": value >= bound, "<=": value <= bound, "<": value < bound}[op]
        out.append({"target": text, "workload": workload, "measure": kind, "peer": peer, "bound": f"{op} {bound:.3g}",
                    "value": value, "best": best, "met": met})
    return out


def render_memory(results: dict) -> str | None:
    medium, rss = results.get("W-medium"), results.get("W-small-rss")
    if not medium and not rss:
        return None
    rows = []
    for lib in sorted(set((medium or {}).get("summary", {})) | set((rss or {}).get("summary", {})),
                      key=lambda k: (k != "chainrule", k)):
        m = (medium or {}).get("summary", {}).get(lib, {})
        r = (rss or {}).get("summary", {}).get(lib, {})
        rows.append([lib, h.fmt_range(m.get("peak_rss_mb", {})), h.fmt(m.get("rss_setup_mb", {}).get("median")),
                     h.fmt_range(r.get("rss_growth_mb", {})), h.fmt(r.get("cyclic_garbage_objects", {}).get("median"))])
    steps = (rss or {}).get("config", {}).get("steps", "-")
    headers = ["lib", "W-medium peak RSS MB [min-max]", "RSS after setup MB",
               f"RSS growth over {steps} W-small steps MB", "cyclic garbage objects"]
    return "Memory (each in a fresh process)\n" + h.table(headers, rows)


LIB_NAMES = {"chainrule": "chainrule", "torch": "PyTorch", "sklearn": "scikit-learn", "numpy": "NumPy by hand",
             "micrograd": "micrograd"}


def render_summary(results: dict) -> str:
    """One line per workload: each framework's median, and chainrule's speed relative to PyTorch."""
    libs = [lib for lib in LIB_NAMES if any(lib in e.get("summary", {}) for e in results.values())]
    rows = []
    for workload, entry in results.items():
        if workload == "W-small-rss":
            continue
        metric, _, _ = METRICS[workload]
        cells = []
        for lib in libs:
            summary = entry["summary"].get(lib, {})
            value = summary.get(metric, {}).get("median")
            cell = h.fmt(value)
            if value is not None and workload == "W-small":
                cell += f" ({100 * summary['test_acc']['median']:.1f}%)"
            elif value is not None and workload == "W-large":
                cell += f" ({100 * summary['peak_fraction']['median']:.0f}% of peak)"
            cells.append(cell)
        ratio = entry["ratios"].get("torch")
        label = f"{workload} ({UNITS[metric]}{', test accuracy' if workload == 'W-small' else ''})"
        rows.append([label, *cells, "-" if ratio is None else f"{ratio:.2f}x"])
    medium, rss = results.get("W-medium"), results.get("W-small-rss")
    if medium:
        peak = [medium["summary"].get(lib, {}).get("peak_rss_mb", {}).get("median") for lib in libs]
        ours, theirs = (dict(zip(libs, peak)).get(lib) for lib in ("chainrule", "torch"))
        rows.append(["W-medium peak RSS (MB)", *(h.fmt(v) for v in peak),
                     f"{ours / theirs:.2f}x RSS" if ours and theirs else "-"])
    if rss:
        growth = [rss["summary"].get(lib, {}).get("rss_growth_mb", {}).get("median") for lib in libs]
        rows.append([f"RSS growth, {rss['config']['steps']} W-small steps (MB)", *(h.fmt(v) for v in growth), "-"])
    headers = ["workload (median of runs)", *(LIB_NAMES[lib] for lib in libs), "chainrule speed / PyTorch's"]
    return "Summary\n" + h.table(headers, rows)


def render_targets(targets: list[dict]) -> str:
    rows = []
    for t in targets:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[t["met"]]
        rows.append([t["target"], t["bound"], h.fmt(t["value"], 3), h.fmt(t.get("best"), 3), verdict])
    return ("Targets (issue 6; speed = chainrule throughput / peer throughput; verdict on the medians)\n"
            + h.table(["target", "bound", "median", "best run", "verdict"], rows))


def machine_line(meta: dict) -> str:
    blas = next((b for b in meta["blas"] if b.get("user_api") == "blas"), {})
    return (f"{meta['cpu']}, {meta['cores']} cores; NumPy BLAS: {blas.get('internal_api', '?')} "
            f"{blas.get('version', '')} ({blas.get('architecture', '?')} kernels, {blas.get('num_threads', '?')} "
            f"threads{'; workers: ' + str(meta['threads']) if meta.get('threads') else ''}); "
            f"env {meta['blas_env'] or '{}'}")


def render_report(meta: dict, results: dict, targets: list[dict]) -> str:
    """Every table as Markdown, headed by the command, the date, the machine and the versions."""
    versions = ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v)
    parts = [f"`{meta['command']}` ({meta['date']}, {meta['seconds']:.0f} s)", "", machine_line(meta) + ".",
             "", versions + ".", ""]
    for workload, entry in results.items():
        title, body = render_workload(workload, entry).split("\n", 1)
        parts += [f"**{title}**", "", body, ""]
    memory = render_memory(results)
    if memory:
        title, body = memory.split("\n", 1)
        parts += [f"**{title}**", "", body, ""]
    for text in (render_summary(results), render_targets(targets)):
        title, body = text.split("\n", 1)
        parts += [f"**{title}**", "", body, ""]
    return "\n".join(parts)


# ---- command line --------------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run (small sizes, one run)")
    parser.add_argument("--runs", type=int, default=None, help="measurements per framework (default 3; --quick 1)")
    parser.add_argument("--workloads", default=",".join(wl.WORKLOADS), help="comma-separated workload names")
    parser.add_argument("--libs", default=None,
                        help="comma-separated frameworks (default all installed; --quick: chainrule,torch)")
    parser.add_argument("--json", default=None, help="where to write results (default results/latest.json, "
                                                     "--quick: results/quick.json)")
    parser.add_argument("--max-load", type=float, default=0.25,
                        help="repeat a measurement when other processes used more cores than this")
    parser.add_argument("--retries", type=int, default=None, help="repeats per loaded measurement (default 2; --quick 0)")
    parser.add_argument("--wait", type=float, default=None,
                        help="seconds to wait for a quiet machine before each measurement (default 5; --quick 0)")
    parser.add_argument("--retry-budget", type=int, default=40, help="repeats allowed in the whole run")
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS/OpenMP threads for every framework (default: the BLAS default, usually one "
                             "per core); 1 makes numbers on a shared machine steadier")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one measurement may take")
    parser.add_argument("--profile", metavar="WORKLOAD",
                        help="run WORKLOAD once with chainrule (or the first of --libs) under cProfile and print "
                             "the top functions by own and cumulative time")
    parser.add_argument("--worker", nargs=2, metavar=("WORKLOAD", "LIB"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return args
    if args.profile and args.profile not in wl.WORKLOADS:
        parser.error(f"unknown workload {args.profile!r}; choose from {list(wl.WORKLOADS)}")
    args.runs = args.runs or (1 if args.quick else 3)
    args.retries = args.retries if args.retries is not None else (0 if args.quick else 2)
    args.wait = args.wait if args.wait is not None else (0.0 if args.quick else 5.0)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in args.workloads if w not in wl.WORKLOADS]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {list(wl.WORKLOADS)}")
    default_libs = "chainrule,torch" if args.quick else "chainrule,torch,sklearn,numpy,micrograd"
    args.libs = [lib.strip() for lib in (args.libs or default_libs).split(",") if lib.strip()]
    known = {"chainrule", "torch", "sklearn", "numpy", "micrograd"}
    if set(args.libs) - known:
        parser.error(f"unknown lib(s) {sorted(set(args.libs) - known)}; choose from {sorted(known)}")
    args.json = Path(args.json) if args.json else HERE / "results" / ("quick.json" if args.quick else "latest.json")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        worker(*args.worker, quick=args.quick)
        return 0
    if args.profile:
        profile(args.profile, args.libs[0], args.quick)
        return 0
    started = time.perf_counter()
    meta = {"command": " ".join(["python benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)]),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "quick": args.quick,
            "runs": args.runs, "max_load": args.max_load, "wait": args.wait, "threads": args.threads, **h.machine_info(), "blas": h.blas_info()}
    print(machine_line(meta), flush=True)
    results = run_suite(args)
    memory = render_memory(results)
    if memory:
        print("\n" + memory)
    print("\n" + render_summary(results))
    targets = evaluate_targets(results)
    print("\n" + render_targets(targets))
    meta["seconds"] = round(time.perf_counter() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "workloads": results, "targets": targets}, indent=1))
    report = args.json.with_suffix(".md")
    report.write_text(render_report(meta, results, targets))
    print(f"\n{meta['seconds']:.0f} s; results in {args.json}, tables in {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
