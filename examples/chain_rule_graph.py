"""The lecture's first graph: f(x, y, z) = (x + y) z at x = 1, y = -3, z = 4.

Forward: q = x + y = -2, f = q z = -8. Backward: df/dz = q = -2, df/dq = z = 4, and through the
addition df/dx = df/dq * dq/dx = 4 * 1 = 4, likewise df/dy = 4. The script draws the graph with every
value and gradient (SVG and PNG) and prints the chain rule step by step.

    python examples/chain_rule_graph.py --out graph/
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import chainrule as cr


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="output folder (default: a new temporary folder)")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="chainrule-graph-"))
    out.mkdir(parents=True, exist_ok=True)

    x = cr.tensor(1.0, requires_grad=True, name="x", dtype=cr.float64)
    y = cr.tensor(-3.0, requires_grad=True, name="y", dtype=cr.float64)
    z = cr.tensor(4.0, requires_grad=True, name="z", dtype=cr.float64)
    q = x + y
    q.name = "q"
    f = q * z
    f.name = "f"

    drawing = cr.viz.draw_graph(f, title="f = (x + y) z")
    for name in ("chain_rule_graph.svg", "chain_rule_graph.png", "chain_rule_graph.dot"):
        drawing.save(out / name)
    explanation = cr.viz.explain(f)
    (out / "chain_rule.md").write_text(explanation.to_markdown())
    print(explanation.to_text())

    f.backward()  # the same numbers from the library's backward
    print(f"backward: x.grad = {x.grad.item():g}, y.grad = {y.grad.item():g}, z.grad = {z.grad.item():g}")
    print(f"drawings ({drawing.engine}) in {out}")


if __name__ == "__main__":
    main()
