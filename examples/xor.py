"""XOR needs hidden units: no line separates (0,0), (1,1) from (0,1), (1,0).

A single linear unit (logistic regression) gets at most 3 of the 4 points right; a network with one
hidden layer of sigmoid units learns XOR. The script trains both, prints their predictions, draws
their decision boundaries and the hidden net's graph with gradients, and checks the hidden net's
backprop gradients against finite differences before training.

    python examples/xor.py --out xor/
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import chainrule as cr
from chainrule.viz import plots


def train(model, x, y, steps: int = 2000, lr: float = 0.5) -> float:
    opt = cr.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = cr.nn.BCEWithLogitsLoss()
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return loss.item()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=None, help="output folder (default: a new temporary folder)")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="chainrule-xor-"))
    out.mkdir(parents=True, exist_ok=True)

    x = cr.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = cr.tensor([[0.0], [1.0], [1.0], [0.0]])
    cr.manual_seed(3)
    models = {"linear": cr.nn.Linear(2, 1), "hidden": cr.nn.MLP([2, 4, 1], activation="sigmoid")}
    # check backprop against finite differences before trusting it to train
    report = cr.gradcheck_model(models["hidden"], cr.nn.BCEWithLogitsLoss(), x, y)
    print(report.to_text())
    for name, model in models.items():
        loss = train(model, x, y)
        with cr.no_grad():
            predicted = (model(x)._data > 0).astype(int).ravel()
        correct = int((predicted == y._data.ravel()).sum())
        print(f"{name:>6}: loss {loss:.4f}, predictions {predicted.tolist()} ({correct}/4 right)")
        plots.decision_boundary(model, x, y._data.ravel(), out / f"xor_{name}.png", resolution=80,
                                title=f"XOR, {name} model ({correct}/4)")

    hidden = models["hidden"]
    loss = cr.nn.BCEWithLogitsLoss()(hidden(x), y)
    cr.viz.draw_graph(loss, model=hidden, title="XOR net: loss").save(out / "xor_graph.svg")
    print(f"plots in {out}")


if __name__ == "__main__":
    main()
