"""The world's smallest perceptron: y = w * x, one weight learned by gradient descent.

The data follow y = 2x. The loss of one example is L = (w x - y)^2, its gradient dL/dw = 2 (w x - y) x:
the script prints w as gradient descent moves it to 2, draws the graph of the first step's loss with
every value and gradient, and writes the chain rule for it step by step.

    python examples/perceptron.py --out perceptron/
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
    out = Path(args.out or tempfile.mkdtemp(prefix="chainrule-perceptron-"))
    out.mkdir(parents=True, exist_ok=True)

    xs = cr.tensor([1.0, 2.0, 3.0, 4.0], dtype=cr.float64, name="x")
    ys = 2 * xs
    w = cr.tensor(0.5, dtype=cr.float64, requires_grad=True, name="w")
    lr = 0.02

    # one example, drawn and explained: L = (w x - y)^2 at x = 3, y = 6
    x1 = cr.tensor(3.0, dtype=cr.float64, name="x")
    y1 = cr.tensor(6.0, dtype=cr.float64, name="y")
    prediction = w * x1
    prediction.name = "w*x"
    loss = (prediction - y1) ** 2
    cr.viz.draw_graph(loss, title="L = (w x - y)^2").save(out / "perceptron_graph.svg")
    explanation = cr.viz.explain(loss)
    (out / "perceptron_chain_rule.md").write_text(explanation.to_markdown())
    print(explanation.to_text())

    for step in range(1, 31):
        loss = ((w * xs - ys) ** 2).mean()
        loss.backward()
        with cr.no_grad():
            w -= lr * w.grad
        w.grad = None
        if step in (1, 2, 5, 10, 30):
            print(f"step {step:2d}: loss {loss.item():.5f}  w = {w.item():.5f}")
    print(f"learned w = {w.item():.4f} (the data follow y = 2x); outputs in {out}")


if __name__ == "__main__":
    main()
