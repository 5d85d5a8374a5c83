"""Every example script runs in seconds and writes what it promises (run as a user would, in a subprocess)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EXPECTED = {
    "perceptron": ["perceptron_graph.svg", "perceptron_chain_rule.md"],
    "chain_rule_graph": ["chain_rule_graph.svg", "chain_rule_graph.png", "chain_rule_graph.dot", "chain_rule.md"],
    "sigmoid_neuron": ["sigmoid_neuron_gates.svg", "sigmoid_neuron_sigmoid.svg", "sigmoid_neuron_sigmoid.md"],
    "xor": ["xor_linear.png", "xor_hidden.png", "xor_graph.svg"],
    "vanishing_gradients": ["gradient_norms.png", "first_layer_grad_norms.json"],
    "decision_boundaries": ["decision_boundaries.png", "circles_boundary.gif", "circles_hidden_pca.png"],
    "cnn_filters": ["conv_filters.png", "linear_templates.png"],
}


def run(name: str, out: Path) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--out", str(out)], capture_output=True,
                          text=True, timeout=240, cwd=out.parent)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_every_lecture_example_exists():
    assert set(EXPECTED) <= {p.stem for p in EXAMPLES.glob("*.py")}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_and_writes_its_outputs(name, tmp_path):
    out = tmp_path / name
    stdout = run(name, out)
    for filename in EXPECTED[name]:
        path = out / filename
        assert path.is_file() and path.stat().st_size > 0, filename
        if path.suffix in (".png", ".gif"):
            img = np.asarray(Image.open(path).convert("L"), dtype=float)
            assert img.std() > 5, f"{filename} is blank"
    check = CHECKS.get(name)
    if check:
        check(stdout, out)


def check_chain_rule(stdout, out):
    assert "Gradients: df/dx = 4, df/dy = 4, df/dz = -2" in stdout
    assert "backward: x.grad = 4, y.grad = 4, z.grad = -2" in stdout
    dot = (out / "chain_rule_graph.dot").read_text()
    assert 'label="q\\nvalue -2\\ngrad 4"' in dot and 'label="z\\nvalue 4\\ngrad -2"' in dot


def check_perceptron(stdout, out):
    assert "learned w = 2.0000" in stdout
    assert "Gradients: df/dw = -27" in stdout  # dL/dw = 2 (w x - y) x = 2 (1.5 - 6) 3


def check_neuron(stdout, out):
    assert "output f = 0.7311" in stdout
    assert "[-0.1966 -0.3932  0.1966  0.3932 -0.5898]" in stdout


def check_xor(stdout, out):
    assert "hidden: " in stdout and "(4/4 right)" in stdout.split("hidden: ")[1]
    assert "all gradients match" in stdout


def check_vanishing(stdout, out):
    norms = json.loads((out / "first_layer_grad_norms.json").read_text())
    sigmoid, relu = np.array(norms["sigmoid"]), np.array(norms["relu"])
    assert len(sigmoid) == len(relu) >= 1
    assert np.all(sigmoid * 100 <= relu)


def check_boundaries(stdout, out):
    acc = dict(line.rsplit(": training accuracy ", 1) for line in stdout.splitlines() if "training accuracy" in line)
    acc = {k.strip(): float(v) for k, v in acc.items()}
    assert acc["circles, linear"] < 0.75 < acc["circles, MLP 2-16-16-2"]
    assert Image.open(out / "circles_boundary.gif").n_frames >= 5


def check_cnn(stdout, out):
    acc = float(stdout.split("CNN test accuracy after 3 epochs: ")[1].split()[0])
    assert acc > 0.8


CHECKS = {"chain_rule_graph": check_chain_rule, "perceptron": check_perceptron, "sigmoid_neuron": check_neuron,
          "xor": check_xor, "vanishing_gradients": check_vanishing, "decision_boundaries": check_boundaries,
          "cnn_filters": check_cnn}
