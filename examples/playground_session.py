"""The playground without the page: one session trained step by step from Python.

What `chainrule playground` shows in the browser comes from a Session: the network, its data and
optimizer, the graph of one example with every value and gradient, the chain rule at every edge, a
gradient check per layer, and the exports (a checkpoint, a script that retrains the same weights).

    python examples/playground_session.py --out playground/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from chainrule.playground import Session


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="playground", help="folder for the checkpoint and the script")
    ap.add_argument("--epochs", type=int, default=15)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    session = Session({"dataset": "spiral", "layers": [8, 8], "activation": "tanh", "optimizer": "adam",
                       "lr": 0.03, "features": ["x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2"]})
    for _ in range(args.epochs):
        session.step()  # one epoch, as the page's step button
    print(f"epoch {session.epoch} ({session.steps} steps): train loss {session.loss_train:.4f}, "
          f"test loss {session.loss_test:.4f}")

    graph = session.graph(0)  # the graph panel for training example 0
    print(f"example 0 at {graph['point']}: loss {graph['loss']:.4g}, {len(graph['nodes'])} values, "
          f"{len(graph['ops'])} ops")
    step = next(s for s in graph["steps"] if s["input"] == "0.weight")
    print(f"chain rule at 0.weight: upstream from {step['output']} through {step['op']} -> "
          f"d loss/d 0.weight[0] = {step['product'][0]:.4g}")

    for layer in session.gradcheck()["layers"]:
        print(f"gradient check, {layer['name']}: {'ok' if layer['ok'] else 'FAILED'} "
              f"(max relative error {layer['max_rel_error']:.1e})")
    for layer in session.snapshot()["diagnostics"]["layers"]:
        print(f"{layer['name']}: gradient norm {layer['last_grad_norm']:.3g}")

    (out / "playground_model.safetensors").write_bytes(session.checkpoint_bytes())
    (out / "playground_model.py").write_text(session.script())
    print(f"checkpoint and script written to {out}/")


if __name__ == "__main__":
    main()
