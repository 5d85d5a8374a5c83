"""A sigmoid neuron as a graph: f(w, x) = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))).

With the lecture's numbers w = (2, -3, -3), x = (-1, -2) the neuron outputs 0.73. Written with the
elementary gates (*, +, neg, exp, +1, 1/x) the graph shows every local gradient; the sigmoid as one
node has the simple local derivative sigma (1 - sigma) = 0.73 * 0.27 = 0.2, and both give the same
gradients: dw = (-0.2, -0.39, 0.2), dx = (0.39, -0.59).

    python examples/sigmoid_neuron.py --out neuron/
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import chainrule as cr


def neuron(gates: bool):
    w0, w1, w2 = (cr.tensor(v, requires_grad=True, name=n, dtype=cr.float64)
                  for v, n in ((2.0, "w0"), (-3.0, "w1"), (-3.0, "w2")))
    x0, x1 = (cr.tensor(v, requires_grad=True, name=n, dtype=cr.float64) for v, n in ((-1.0, "x0"), (-2.0, "x1")))
    s = w0 * x0 + w1 * x1 + w2
    s.name = "s"
    if gates:  # 1 / (1 + exp(-s)), gate by gate
        f = 1.0 / (1.0 + cr.exp(-s))
    else:
        f = cr.sigmoid(s)
    f.name = "f"
    return f, (w0, w1, w2, x0, x1)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="output folder (default: a new temporary folder)")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="chainrule-neuron-"))
    out.mkdir(parents=True, exist_ok=True)

    grads = {}
    for gates in (True, False):
        f, inputs = neuron(gates)
        tag = "gates" if gates else "sigmoid"
        cr.viz.draw_graph(f, title=f"sigmoid neuron ({tag})").save(out / f"sigmoid_neuron_{tag}.svg")
        explanation = cr.viz.explain(f)
        (out / f"sigmoid_neuron_{tag}.md").write_text(explanation.to_markdown())
        if not gates:
            print(explanation.to_text())
        grads[tag] = np.array([float(explanation.gradients[t.name]) for t in inputs])
    print(f"output f = {f.item():.4f}")
    print("gradients (w0, w1, w2, x0, x1):", np.round(grads["sigmoid"], 4))
    assert np.allclose(grads["gates"], grads["sigmoid"])
    print(f"gate-by-gate and one-node sigmoid agree; drawings in {out}")


if __name__ == "__main__":
    main()
