import json
import os
import subprocess
import sys

import numpy as np

from chainrule.cli import main


def _run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "chainrule.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_train_defaults_reach_95_5_percent_and_evaluate_reproduces_it(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path), "--quiet"]) == 0
    printed = capsys.readouterr().out
    run = tmp_path / "digits-mlp"
    for name in ("model.safetensors", "run.json", "history.json", "history.csv", "curves.png"):
        assert (run / name).is_file(), name
    record = json.loads((run / "run.json").read_text())
    # Measured over seeds 0-7 (359 test digits): 96.1-98.3% on an AMD EPYC (Haswell kernels), the
    # same with one BLAS thread; seed 0 (the default) gives 98.3% there and on an Intel Xeon. The
    # threshold sits below the lowest seed, so a kernel that perturbs training like a seed still passes.
    assert record["test"]["accuracy"] >= 0.955
    assert f"test accuracy: {record['test']['accuracy']:.4f}" in printed
    history = json.loads((run / "history.json").read_text())
    assert len(history["epochs"]) == 30
    assert (run / "curves.png").stat().st_size > 10_000
    assert main(["evaluate", str(run)]) == 0
    again = capsys.readouterr().out
    assert again.strip().startswith(f"test accuracy: {record['test']['accuracy']:.4f}")
    assert f"test loss: {record['test']['loss']:.4f}" in again


def test_train_options_and_predict_writes_a_csv(tmp_path, capsys):
    args = ["train", "--threads", "1", "--dataset", "moons", "--hidden", "16,16", "--activation", "tanh", "--optimizer", "sgd",
            "--lr", "0.1", "--epochs", "5", "--batch-size", "16", "--out", str(tmp_path), "--name", "m", "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    inputs = tmp_path / "in.csv"
    np.savetxt(inputs, np.array([[0.0, 1.0], [1.0, -0.5], [2.0, 0.5]]), delimiter=",", header="x1,x2", comments="")
    out = tmp_path / "pred.csv"
    assert main(["predict", str(tmp_path / "m"), str(inputs), "-o", str(out), "--proba"]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "index,class,p0,p1"
    assert len(lines) == 4
    assert all(float(v) >= 0 for ln in lines[1:] for v in ln.split(",")[2:])


def test_bad_arguments_and_files_give_one_line_errors_without_traceback(tmp_path):
    cases = [
        (["train", "--epochs", "x"], 2, "argument --epochs: expected a whole number of at least 1, got 'x'"),
        (["train", "--dataset", "nope", "--out", str(tmp_path)], 1, "unknown dataset 'nope'"),
        (["train", "--lr", "-1", "--out", str(tmp_path)], 2, "argument --lr: expected a finite positive number, got '-1'"),
        (["evaluate", str(tmp_path / "missing")], 1, "is not a run folder"),
        (["train", "--threads", "0", "--out", str(tmp_path)], 1, "--threads must be at least 1"),
        (["train", "--dataset", f"idx:{tmp_path}", "--out", str(tmp_path)], 1, str(tmp_path)),
    ]
    for args, code, message in cases:
        proc = _run(*args)
        assert proc.returncode == code, (args, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_predict_refuses_a_csv_with_the_wrong_width(tmp_path, capsys):
    assert main(["train", "--dataset", "xor", "--epochs", "1", "--out", str(tmp_path), "--name", "x", "--quiet"]) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n")
    assert main(["predict", str(tmp_path / "x"), str(bad)]) == 1
    assert "rows have 3 values, the model expects 2 features" in capsys.readouterr().err


def test_help_lists_every_subcommand_and_option():
    text = _run("--help").stdout
    for cmd in ("train", "evaluate", "predict", "compare"):
        assert cmd in text
    train_help = _run("train", "--help").stdout
    for opt in ("--dataset", "--hidden", "--activation", "--loss", "--optimizer", "--lr", "--batch-size",
                "--epochs", "--weight-decay", "--seed", "--val-split", "--out", "--model"):
        assert opt in train_help


def test_compare_default_set_writes_its_table_and_plots(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    for method in ("gd", "sgd", "minibatch", "momentum", "adam", "lbfgs", "cg", "newton"):
        assert f"\n{method} " in table
    rows = json.loads((out / "compare.json").read_text())["table"]
    by = {r["method"]: r for r in rows}
    assert by["sgd"]["iterations"] == 30 * 200  # one example per step
    assert by["gd"]["iterations"] == 30 and by["gd"]["gradient_evaluations"] == 30
    assert by["newton"]["final_loss"] < by["gd"]["final_loss"]
    assert by["lbfgs"]["final_loss"] < by["gd"]["final_loss"]
    for name in ("compare.csv", "loss_vs_iterations.png", "loss_vs_passes.png", "loss_vs_seconds.png"):
        assert (out / name).is_file()


def test_compare_with_numerical_gradients_counts_loss_evaluations(tmp_path, capsys):
    assert main(["compare", "--optimizers", "gd", "--gradient", "numerical", "--epochs", "3",
                 "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "compare.json").read_text())["table"]
    n_weights = 2 * 8 + 8 + 8 * 2 + 2
    # each gradient costs 2 evaluations per weight, plus the loss itself
    assert rows[0]["loss_evaluations"] == 3 * (2 * n_weights + 1)
    assert os.path.isfile(tmp_path / "compare.csv")


def test_cnn_on_digits_reaches_96_5_percent_and_is_rebuilt_by_evaluate(tmp_path, capsys):
    assert main(["train", "--model", "cnn", "--dataset", "digits", "--out", str(tmp_path), "--quiet"]) == 0
    run = tmp_path / "digits-cnn"
    record = json.loads((run / "run.json").read_text())
    # Measured over seeds 0-7 (359 test digits): 98.0-99.4% on an Intel Xeon (SkylakeX kernels),
    # 97.5-99.2% on an AMD EPYC (Haswell kernels), the same with one BLAS thread; seed 0 gives 97.5%
    # on AMD. The threshold sits 1 point (about 4 digits) below the lowest.
    assert record["test"]["accuracy"] >= 0.965
    assert record["data"]["input_shape"] == [1, 8, 8]
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    assert f"test accuracy: {record['test']['accuracy']:.4f}" in capsys.readouterr().out


def test_lenet_beats_the_mlp_on_the_mnist_subset(tmp_path):
    scores = {}
    for model in ("cnn", "mlp"):
        assert main(["train", "--model", model, "--dataset", "mnist-subset", "--epochs", "3", "--out",
                     str(tmp_path), "--name", model, "--quiet"]) == 0
        scores[model] = json.loads((tmp_path / model / "run.json").read_text())["test"]["accuracy"]
    assert scores["cnn"] > scores["mlp"], scores
