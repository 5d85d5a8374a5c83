import xml.etree.ElementTree as ET

import pytest

from chainrule import cli


def test_graph_command_writes_svg_with_values_and_gradients(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CHAINRULE_GRAPH_ENGINE", "matplotlib")
    out = tmp_path / "graph.svg"
    assert cli.main(["graph", "(x + y) * z", "--set", "x=1", "y=-3", "z=4", "-o", str(out)]) == 0
    assert f"graph written to {out}" in capsys.readouterr().out
    texts = {"".join(el.itertext()).strip() for el in ET.parse(out).iter() if el.tag.endswith("text")}
    assert {"x", "value 1", "grad 4", "z", "grad -2", "x+y", "value -2", "value -8", "+", "*"} <= texts


def test_graph_command_dot_and_png(tmp_path):
    assert cli.main(["graph", "sigmoid(w * x + b)", "--set", "w=[2,-3]", "x=[-1,-2]", "b=-3",
                     "-o", str(tmp_path / "g.dot")]) == 0
    dot = (tmp_path / "g.dot").read_text()
    assert "sigmoid" in dot and 'label="w\\nshape (2,)\\nvalue [2, -3]' in dot
    assert cli.main(["graph", "x * x", "--set", "x=3", "-o", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explain_command_prints_the_lecture_table(capsys):
    assert cli.main(["explain", "(x + y) * z", "--set", "x=1", "y=-3", "z=4"]) == 0
    text = capsys.readouterr().out
    assert "Gradients: df/dx = 4, df/dy = 4, df/dz = -2" in text
    assert cli.main(["explain", "(x + y) * z", "--set", "x=1", "y=-3", "z=4", "--markdown"]) == 0
    assert r"\frac{\partial f}{\partial x}" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["explain", "__import__('os')", "--set", "x=1"], "unknown function '__import__'"),
    (["explain", "x * y", "--set", "x=1"], "no value for y"),
    (["graph", "x * 2", "--set", "x=abc"], "a number or a list"),
    (["graph", "x * 2", "--set", "x=1", "-o", "g.jpg"], r"\.svg, \.png or \.dot"),
])
def test_bad_input_is_one_clear_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"chainrule {argv[0]}: error: ")
    assert __import__("re").search(message, err)


def test_gradcheck_command_on_a_trained_run(tmp_path, capsys):
    assert cli.main(["train", "--dataset", "moons", "--epochs", "1", "--hidden", "6", "--out", str(tmp_path),
                     "--name", "run", "--quiet"]) == 0
    capsys.readouterr()
    assert cli.main(["gradcheck", str(tmp_path / "run"), "--entries", "4"]) == 0
    text = capsys.readouterr().out
    assert "0.weight" in text and "2.bias" in text and "all gradients match" in text


def test_gradcheck_command_refuses_a_missing_run(tmp_path, capsys):
    assert cli.main(["gradcheck", str(tmp_path / "nothing")]) == 1
    assert "not a folder" in capsys.readouterr().err


def test_train_with_plots_writes_the_viz_plots(tmp_path, capsys):
    assert cli.main(["train", "--dataset", "moons", "--epochs", "2", "--hidden", "6", "--out", str(tmp_path),
                     "--name", "moons", "--quiet", "--plots"]) == 0
    written = {p.name for p in (tmp_path / "moons").iterdir()}
    assert {"curves.png", "decision_boundary.png", "decision_boundary.gif", "hidden_pca.png",
            "gradient_norms.png"} <= written
    assert cli.main(["train", "--dataset", "digits", "--epochs", "1", "--hidden", "16", "--out", str(tmp_path),
                     "--name", "digits", "--quiet", "--plots"]) == 0
    written = {p.name for p in (tmp_path / "digits").iterdir()}
    assert {"curves.png", "first_layer_weights.png", "hidden_pca.png", "gradient_norms.png"} <= written
    assert "decision_boundary.png" not in written  # 64 inputs: no 2-D boundary to draw
