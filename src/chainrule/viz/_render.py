"""Turning a drawing (boxes with lines of text, and arrows) into DOT, SVG and PNG.

Three engines, tried in this order: a system Graphviz ``dot``; the ``graphviz-pure`` command from
PyPI (a self-contained port of ``dot``, installed with ``pip install 'chainrule[all]'``); and a
layered layout drawn with matplotlib, so a drawing renders wherever matplotlib does. The environment
variable ``CHAINRULE_GRAPH_ENGINE`` (``dot``, ``graphviz-pure``, ``matplotlib`` or a path to a dot-like
program) forces one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

STYLE = {
    "param": ("box", "rounded,filled", "#fde7c8"),
    "input": ("box", "rounded,filled", "#dbe9fb"),
    "const": ("box", "rounded,filled", "#eeeeee"),
    "op": ("box", "rounded,filled", "#ffffff"),
    "output": ("box", "rounded,filled", "#d5f2d5"),
    "function": ("ellipse", "filled", "#fff6c2"),
    "module": ("box", "filled", "#eadcf8"),
    "more": ("note", "filled", "#f4f4f4"),
}


@dataclass
class DrawNode:
    key: str
    lines: list
    kind: str  # a key of STYLE


@dataclass
class Drawing:
    nodes: list
    edges: list = field(default_factory=list)  # (src key, dst key)
    title: str | None = None
    rankdir: str = "LR"  # inputs on the left ("LR") or at the top ("TB")
    edge_labels: dict = field(default_factory=dict)  # (src key, dst key) -> text, e.g. "numerator"
    ordered: list = field(default_factory=list)  # input keys of an op drawn in this order (first on top)


# ---- DOT ------------------------------------------------------------------------------------------
def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(d: Drawing) -> str:
    out = ["digraph chainrule {", f"  rankdir={d.rankdir};", '  node [fontname="Helvetica", fontsize=11];',
           '  edge [arrowsize=0.7, color="#555555"];']
    if d.title:
        out.append(f"  label={_quote(d.title)}; labelloc=t;")
    for n in d.nodes:
        shape, style, fill = STYLE[n.kind]
        label = "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in n.lines)
        out.append(f'  {n.key} [shape={shape}, style="{style}", fillcolor="{fill}", label="{label}"];')
    for a, b in d.edges:
        label = d.edge_labels.get((a, b))
        out.append(f"  {a} -> {b} [label={_quote(label)}, fontsize=9];" if label else f"  {a} -> {b};")
    out.append("}")
    return "\n".join(out) + "\n"


# ---- engines --------------------------------------------------------------------------------------
def find_engine() -> str:
    """``'matplotlib'`` or the path of a dot-like program."""
    forced = os.environ.get("CHAINRULE_GRAPH_ENGINE")
    if forced:
        if forced == "matplotlib":
            return forced
        found = shutil.which(forced) or (forced if os.path.isfile(forced) else None)
        if found is None:
            raise RuntimeError(f"CHAINRULE_GRAPH_ENGINE={forced!r}: no such program")
        return found
    for name in ("dot", "graphviz-pure"):
        found = shutil.which(name)
        if found:
            return found
    # A virtual environment's scripts folder is not on PATH unless it is activated.
    for folder in {sysconfig.get_path("scripts"), str(Path(sys.executable).parent)}:
        candidate = Path(folder) / "graphviz-pure"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return "matplotlib"


def render(d: Drawing, fmt: str, engine: str | None = None) -> bytes:
    """The drawing as ``fmt`` ('svg', 'png' or 'dot') bytes."""
    if fmt == "dot":
        return to_dot(d).encode()
    if fmt not in ("svg", "png"):
        raise ValueError(f"draw_graph: can't save as {fmt!r}; use .svg, .png or .dot")
    engine = engine or find_engine()
    if engine != "matplotlib":
        try:
            proc = subprocess.run([engine, f"-T{fmt}"], input=to_dot(d).encode(), capture_output=True,
                                  timeout=120, check=False)
        except OSError:
            proc = None
        if proc is not None and proc.returncode == 0 and proc.stdout:
            return proc.stdout
        # a broken dot falls through to matplotlib rather than failing the user's plot
    return _matplotlib(d, fmt)


# ---- the matplotlib layout -------------------------------------------------------------------------
FONT = 9.0  # points
CHAR = 0.6 * FONT  # width of one monospace character
LINE = 1.3 * FONT
GAP_X, GAP_Y = 36.0, 14.0


def _size(n: DrawNode) -> tuple:
    width = max(len(s) for s in n.lines) * CHAR + (26 if n.kind == "function" else 14)
    height = len(n.lines) * LINE + (10 if n.kind == "function" else 8)
    return width, height


def _layers(keys: list, edges: list) -> dict:
    preds = {k: [] for k in keys}
    succs = {k: [] for k in keys}
    for a, b in edges:
        preds[b].append(a)
        succs[a].append(b)
    layer = {}
    # longest path from the sources, iteratively in topological order
    indeg = {k: len(preds[k]) for k in keys}
    ready = [k for k in keys if indeg[k] == 0]
    order = []
    while ready:
        k = ready.pop()
        order.append(k)
        layer[k] = max((layer[p] + 1 for p in preds[k]), default=0)
        for s in succs[k]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    for k in keys:  # (cycles cannot happen in a computational graph; be safe anyway)
        layer.setdefault(k, 0)
    # sources sit just before their first consumer rather than all at the far left
    for k in reversed(order):
        if not preds[k] and succs[k]:
            layer[k] = min(layer[s] for s in succs[k]) - 1
    return layer, preds, succs


def _keep_operand_order(row: list, ordered: list) -> None:
    """Operands of a division (and the like) that share a row keep their order: numerator first."""
    for keys in ordered:
        present = [k for k in keys if k in row]
        if len(present) < 2:
            continue
        slots = sorted(row.index(k) for k in present)
        for slot, k in zip(slots, present):
            row[slot] = k


def layout(d: Drawing) -> dict:
    """Positions (centre x, centre y, width, height) in points, inputs on the left, output on the right."""
    keys = [n.key for n in d.nodes]
    vertical = d.rankdir == "TB"
    boxes = {n.key: _size(n) for n in d.nodes}
    # (extent along the layers, extent across them)
    sizes = {k: (h, w) if vertical else (w, h) for k, (w, h) in boxes.items()}
    gap_across = 2 * GAP_Y if vertical else GAP_Y
    layer, preds, succs = _layers(keys, d.edges)
    n_layers = max(layer.values(), default=0) + 1
    rows: list = [[] for _ in range(n_layers)]
    for k in keys:
        rows[layer[k]].append(k)
    # order within layers: a few barycentre sweeps to reduce crossings
    pos = {k: i for row in rows for i, k in enumerate(row)}
    for sweep in range(4):
        seq = range(1, n_layers) if sweep % 2 == 0 else range(n_layers - 2, -1, -1)
        for li in seq:
            nbrs = preds if sweep % 2 == 0 else succs
            row = rows[li]

            def bary(k, nbrs=nbrs):
                ns = nbrs[k]
                return sum(pos[n] for n in ns) / len(ns) if ns else pos[k]

            row.sort(key=bary)
            _keep_operand_order(row, d.ordered)
            for i, k in enumerate(row):
                pos[k] = i
    # x by layer; y stacked, then pulled towards the neighbours and spread apart again
    xs, x = [], 0.0
    for row in rows:
        w = max((sizes[k][0] for k in row), default=0.0)
        xs.append(x + w / 2)
        x += w + (GAP_X * 0.7 if vertical else GAP_X)
    y = {}
    for row in rows:
        total = sum(sizes[k][1] for k in row) + gap_across * (len(row) - 1)
        top = total / 2
        for k in row:
            h = sizes[k][1]
            y[k] = top - h / 2
            top -= h + gap_across
    for _ in range(3):
        for li in list(range(n_layers)) + list(range(n_layers - 1, -1, -1)):
            row = rows[li]
            want = []
            for k in row:
                ns = preds[k] + succs[k]
                want.append(sum(y[n] for n in ns) / len(ns) if ns else y[k])
            # keep the order, at least the gap apart, as close to `want` as a simple sweep allows
            placed = []
            for i, k in enumerate(row):
                yk = want[i]
                if placed:
                    prev = placed[-1]
                    limit = y[prev] - sizes[prev][1] / 2 - gap_across - sizes[k][1] / 2
                    yk = min(yk, limit)
                y[k] = yk
                placed.append(k)
            if row:
                shift = sum(want) / len(want) - sum(y[k] for k in row) / len(row)
                for k in row:
                    y[k] += shift
    if vertical:
        return {k: (y[k], -xs[layer[k]], *boxes[k]) for k in keys}
    return {k: (xs[layer[k]], y[k], *boxes[k]) for k in keys}


def depth(d: Drawing) -> int:
    """How many layers the layered layout has (the longest path, in nodes)."""
    layer, _, _ = _layers([n.key for n in d.nodes], d.edges)
    return max(layer.values(), default=0) - min(layer.values(), default=0) + 1


def _matplotlib(d: Drawing, fmt: str) -> bytes:
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "draw_graph: rendering SVG/PNG needs Graphviz's dot, the graphviz-pure package or matplotlib; "
            "pip install 'chainrule[all]' (or save as .dot)"
        ) from None
    import io

    from matplotlib.figure import Figure
    from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch

    boxes = layout(d)
    pad = 10.0
    title_h = 2 * LINE if d.title else 0.0
    x0 = min(b[0] - b[2] / 2 for b in boxes.values()) - pad
    x1 = max(b[0] + b[2] / 2 for b in boxes.values()) + pad
    y0 = min(b[1] - b[3] / 2 for b in boxes.values()) - pad
    y1 = max(b[1] + b[3] / 2 for b in boxes.values()) + pad + title_h
    width, height = x1 - x0, y1 - y0
    scale = min(1.0, 2400.0 / max(width, height))  # keep huge graphs within a sane figure size
    with matplotlib.rc_context({"svg.fonttype": "none", "font.family": "monospace"}):
        fig = Figure(figsize=(width * scale / 72, height * scale / 72))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.axis("off")
        font = FONT * scale
        for a, b in d.edges:
            xa, ya, wa, ha = boxes[a]
            xb, yb, wb, hb = boxes[b]
            if d.rankdir == "TB":
                start, end = (xa, ya - ha / 2), (xb, yb + hb / 2)
            else:
                start, end = (xa + wa / 2, ya), (xb - wb / 2, yb)
            ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>",
                                         mutation_scale=8 * scale, color="#555555", lw=0.8 * scale,
                                         shrinkA=0, shrinkB=1))
            label = d.edge_labels.get((a, b))
            if label:
                at = (start[0] + 0.7 * (end[0] - start[0]), start[1] + 0.7 * (end[1] - start[1]))  # by its op
                ax.text(*at, label, ha="center", va="bottom",
                        fontsize=font * 0.75, color="#555555")
        for n in d.nodes:
            cx, cy, w, h = boxes[n.key]
            _, _, fill = STYLE[n.kind]
            if n.kind == "function":
                ax.add_patch(Ellipse((cx, cy), w, h, facecolor=fill, edgecolor="#333333", lw=0.8 * scale))
            else:
                style = "round,pad=0,rounding_size=4" if n.kind not in ("module", "more") else "square,pad=0"
                ax.add_patch(FancyBboxPatch((cx - w / 2, cy - h / 2), w, h, boxstyle=style, facecolor=fill,
                                            edgecolor="#333333", lw=0.8 * scale))
            top = cy + (len(n.lines) - 1) * LINE / 2
            for i, line in enumerate(n.lines):
                ax.text(cx, top - i * LINE, line, ha="center", va="center", fontsize=font,
                        fontweight="bold" if i == 0 and n.kind in ("module",) else "normal")
        if d.title:
            ax.text((x0 + x1) / 2, y1 - LINE, d.title, ha="center", va="center", fontsize=font * 1.1)
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=max(72.0, 110.0 / max(scale, 1e-3) * scale))
    return buf.getvalue()
