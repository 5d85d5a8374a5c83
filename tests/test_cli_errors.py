"""Every bad input of the command line gets one line naming what is wrong, and the right exit status.

The examples are those of issue 12 (items 1, 2 and 5); each asserts the exact message and status.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import errors
from chainrule.cli import main

SEE_HELP = " (see --help)"


def _run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "chainrule.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def _error(capsys, argv) -> tuple:
    """(exit status, the stderr text) of an in-process run; argparse's exits are caught too."""
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def csv_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))

    def write(name, labels, features=x):
        np.savetxt(folder / name, np.column_stack([features, labels]), delimiter=",", header="a,b,c,label",
                   comments="")
        return str(folder / name)

    with_nan, with_inf = x.copy(), x.copy()
    with_nan[7, 1] = np.nan
    with_inf[3, 2] = np.inf
    files = {
        "ok": write("ok.csv", np.arange(40) % 2),
        "fractional": write("fractional.csv", np.where(np.arange(40) % 2, 0.5, 1.5)),
        "one_class": write("one_class.csv", np.ones(40)),
        "plus_minus": write("plus_minus.csv", np.where(np.arange(40) % 2, 1, -1)),
        "nan": write("nan.csv", np.arange(40) % 2, with_nan),
        "inf": write("inf.csv", np.arange(40) % 2, with_inf),
    }
    (folder / "header.csv").write_text("a,b,c\n")
    (folder / "rows_nan.csv").write_text("1,2,3\n4,nan,6\n")
    (folder / "rows_inf.csv").write_text("a,b,c\n1,2,3\n4,5,inf\n7,8,-inf\n")
    files.update(header=str(folder / "header.csv"), rows_nan=str(folder / "rows_nan.csv"),
                 rows_inf=str(folder / "rows_inf.csv"), folder=folder)
    return files


@pytest.fixture(scope="module")
def csv_run(csv_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["train", "--dataset", f"csv:{csv_files['ok']}", "--epochs", "1", "--out", str(out),
                 "--name", "ok", "--quiet"]) == 0
    return str(out / "ok")


# ---- options the parser refuses (exit 2) -------------------------------------------------------------
PARSER_CASES = [
    (["train", "--hidden", ""], "chainrule train: error: argument --hidden: expected layer sizes separated by "
     "commas like 128,64 (or 'none' for no hidden layer), got ''"),
    (["train", "--hidden", "abc"], "chainrule train: error: argument --hidden: 'abc' is not a layer size; expected "
     "positive whole numbers separated by commas like 128,64"),
    (["train", "--hidden", "64,,32"], "chainrule train: error: argument --hidden: expected layer sizes separated "
     "by commas like 128,64 (or 'none' for no hidden layer), got '64,,32'"),
    (["train", "--lr", "inf"], "chainrule train: error: argument --lr: expected a finite positive number, got 'inf'"),
    (["train", "--lr", "nan"], "chainrule train: error: argument --lr: expected a finite positive number, got 'nan'"),
    (["train", "--epochs", "0"], "chainrule train: error: argument --epochs: expected a whole number of at least 1, "
     "got '0'"),
    (["compare", "--batch-size", "0"], "chainrule compare: error: argument --batch-size: expected a whole number of "
     "at least 1, got '0'"),
    (["compare", "--epochs", "0"], "chainrule compare: error: argument --epochs: expected a whole number of at "
     "least 1, got '0'"),
    (["gradcheck", "run", "--entries", "0"], "chainrule gradcheck: error: argument --entries: expected a whole "
     "number of at least 1, got '0'"),
    (["gradcheck", "run", "--samples", "0"], "chainrule gradcheck: error: argument --samples: expected a whole "
     "number of at least 1, got '0'"),
]


@pytest.mark.parametrize("argv, line", PARSER_CASES, ids=[" ".join(a) for a, _ in PARSER_CASES])
def test_the_parser_refuses_bad_options_in_one_line(capsys, argv, line):
    code, err = _error(capsys, argv)
    assert code == 2
    assert err == line + SEE_HELP + "\n"


# ---- user errors found when the command runs (exit 1) ------------------------------------------------
def test_empty_splits_are_refused_before_training(capsys, tmp_path):
    out = ["--out", str(tmp_path), "--quiet"]
    cases = [
        (["train", "--val-split", "0.99999"], "--val-split 0.99999 and --test-split 0.2 leave no training example "
         "of 1797; lower them"),
        (["train", "--test-split", "0.0001"], "--test-split 0.0001 of 1797 examples leaves no test example; raise it"),
        (["train", "--val-split", "0.0001"], "--val-split 0.0001 of the 1438 examples left after the test split "
         "leaves no validation example; raise it or use --val-split 0"),
    ]
    for argv, message in cases:
        code, err = _error(capsys, argv + out)
        assert (code, err) == (1, f"chainrule train: error: {message}\n")
    assert os.listdir(tmp_path) == []  # nothing was written


def test_a_model_too_large_for_memory_is_refused_naming_hidden(capsys, tmp_path, monkeypatch):
    from chainrule.train import targets

    monkeypatch.setattr(targets, "_memory_bytes", lambda: 16 * 2**30)
    code, err = _error(capsys, ["train", "--hidden", "1000000000", "--out", str(tmp_path)])
    assert code == 1
    assert err == ("chainrule train: error: --hidden 1000000000: a model of 75,000,000,010 parameters needs about "
                   "1117.6 GiB for its weights, gradients and optimizer state, more than this machine's 16.0 GiB; "
                   "use smaller layers\n")
    code, err = _error(capsys, ["compare", "--hidden", "1000000000", "--out", str(tmp_path)])
    assert code == 1
    assert err.startswith("chainrule compare: error: --hidden 1000000000: a model of 5,000,000,002 parameters")


def test_hidden_none_builds_a_linear_model_on_purpose(tmp_path, capsys):
    assert main(["train", "--dataset", "xor", "--hidden", "none", "--epochs", "1", "--out", str(tmp_path),
                 "--name", "lin", "--quiet"]) == 0
    model = cr.load_model(str(tmp_path / "lin" / "model.safetensors"))
    assert [type(m).__name__ for m in model] == ["Linear"]


@pytest.mark.parametrize("argv, message", [
    (["compare", "--optimizers", ","], "--optimizers: no optimizer named in ','; give a comma-separated list like "
     "gd,adam from gd, sgd, minibatch, momentum, adam, lbfgs, cg, newton"),
    (["compare", "--dataset", "digits"], "compare: --dataset 'digits' is not one of compare's generated sets; use "
     "moons, circles, spirals, xor, blobs (train other data with `chainrule train`)"),
    (["compare", "--optimizers", "gd,nope"], "compare: unknown optimizer 'nope'; choose from gd, sgd, minibatch, "
     "momentum, adam, lbfgs, cg, newton"),
])
def test_compare_refuses_bad_options_in_one_line(capsys, tmp_path, argv, message):
    code, err = _error(capsys, argv + ["--out", str(tmp_path)])
    assert (code, err) == (1, f"chainrule compare: error: {message}\n")


def test_compare_library_checks_its_arguments():
    from chainrule.train.compare import compare

    with pytest.raises(ValueError, match=r"^compare: --batch-size must be a whole number of at least 1, got 0$"):
        compare("moons", ["gd"], batch_size=0)
    with pytest.raises(ValueError, match=r"^compare: --epochs must be a whole number of at least 1, got 0$"):
        compare("moons", ["gd"], epochs=0)
    with pytest.raises(ValueError, match=r"^compare: no optimizer given"):
        compare("moons", [])


@pytest.mark.parametrize("name, message", [
    ("fractional", "fractional.csv: the label of data row 1 is 1.5, not a whole number; class labels must be 0, 1, "
     "2, ... (this looks like a regression target)"),
    ("one_class", "one_class.csv: every example has the label 1; a classifier needs at least two classes"),
    ("plus_minus", "plus_minus.csv: the label of data row 1 is -1; class labels must be 0, 1, 2, ... (labels [-1, 1] "
     "found; map -1/+1 to 0/1)"),
    ("nan", "nan.csv: data row 8 has the value nan in column 2; features must be finite numbers"),
    ("inf", "inf.csv: data row 4 has the value inf in column 3; features must be finite numbers"),
])
def test_degenerate_training_data_is_refused_naming_the_row(capsys, tmp_path, csv_files, name, message):
    code, err = _error(capsys, ["train", "--dataset", f"csv:{csv_files[name]}", "--out", str(tmp_path), "--quiet"])
    folder = str(csv_files["folder"]) + os.sep
    assert (code, err.replace(folder, "")) == (1, f"chainrule train: error: {message}\n")


@pytest.mark.parametrize("name, message", [
    ("header", "predict: {path} has a header row but no data rows"),
    ("rows_nan", "predict: {path}: data row 2 has nan in column 2; every feature must be a finite number (1 row like "
     "this)"),
    ("rows_inf", "predict: {path}: data row 2 has inf in column 3; every feature must be a finite number (2 rows "
     "like this)"),
])
def test_predict_refuses_empty_and_non_finite_inputs(capsys, csv_files, csv_run, name, message):
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")  # no NumPy warning first
        code, err = _error(capsys, ["predict", csv_run, csv_files[name]])
    assert (code, err) == (1, "chainrule predict: error: " + message.format(path=csv_files[name]) + "\n")
    assert capsys.readouterr().out == ""


# ---- losses and targets -------------------------------------------------------------------------------
LOSSES = ["cross_entropy", "nll", "hinge", "mse", "l1", "huber", "bce", "bce_with_logits"]


@pytest.fixture(scope="module")
def loss_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("loss_runs")
    results = {}
    for loss in LOSSES:
        args = ["train", "--dataset", "blobs", "--hidden", "16", "--epochs", "5", "--lr", "0.03", "--loss", loss,
                "--out", str(out), "--name", loss, "--quiet"]
        assert main(args) == 0, loss
        results[loss] = str(out / loss)
    return results


@pytest.mark.parametrize("loss", LOSSES)
def test_every_classification_loss_trains_evaluates_predicts_and_gradchecks(loss_runs, capsys, loss, tmp_path):
    import json

    capsys.readouterr()
    run = loss_runs[loss]
    record = json.loads(open(os.path.join(run, "run.json")).read())
    # blobs are well separated: every loss that fits the labels learns them (each measured 1.0)
    assert record["test"]["accuracy"] >= 0.9, (loss, record["test"])
    assert np.isfinite(record["test"]["loss"]) and record["test"]["loss"] >= 0
    assert main(["evaluate", run]) == 0
    assert capsys.readouterr().out.startswith(f"test accuracy: {record['test']['accuracy']:.4f}")
    rows = tmp_path / "rows.csv"
    rows.write_text("0.5,0.5\n-3,2\n")
    assert main(["predict", run, str(rows), "--proba"]) == 0
    lines = capsys.readouterr().out.splitlines()
    probabilities = [[float(v) for v in line.split(",")[2:]] for line in lines[1:]]
    assert all(abs(sum(p) - 1) < 1e-4 and min(p) >= 0 for p in probabilities), (loss, lines)
    assert main(["gradcheck", run, "--samples", "3", "--entries", "3"]) == 0, capsys.readouterr().out


def test_nll_with_its_log_softmax_head_trains_exactly_like_cross_entropy(loss_runs):
    import json

    scores = [json.loads(open(os.path.join(loss_runs[k], "run.json")).read())["test"] for k in ("nll", "cross_entropy")]
    assert scores[0] == pytest.approx(scores[1], rel=1e-5)
    model = cr.load_model(os.path.join(loss_runs["nll"], "model.safetensors"))
    assert type(list(model)[-1]).__name__ == "LogSoftmax"
    assert type(list(cr.load_model(os.path.join(loss_runs["bce"], "model.safetensors")))[-1]).__name__ == "Sigmoid"


@pytest.mark.parametrize("argv, message", [
    (["--loss", "nope"], "--loss 'nope' does not fit class labels; choose from bce, bce_with_logits, ce, "
     "cross_entropy, hinge, huber, l1, l2, mae, mse, multi_margin, nll"),
    (["--model", "cnn", "--loss", "nll"], "--loss nll needs a log_softmax head, which --model cnn does not have; use "
     "--loss cross_entropy (or --model mlp)"),
])
def test_losses_that_do_not_fit_are_refused_naming_both(capsys, tmp_path, argv, message):
    code, err = _error(capsys, ["train", *argv, "--out", str(tmp_path)])
    assert (code, err) == (1, f"chainrule train: error: {message}\n")


def test_fit_refuses_a_loss_that_does_not_fit_the_targets_or_the_model():
    model = cr.nn.MLP([2, 4, 3])
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    y = np.arange(8) % 3
    with pytest.raises(errors.LossTargetError, match=r"^fit: NLLLoss needs log-probabilities, but the model's "
                       r"outputs are not \(the exponentials of one row sum to [0-9.]+, not 1\); end the model with "
                       r"LogSoftmax\(dim=1\) or use loss='cross_entropy' on logits$"):
        cr.fit(model, (x, y), loss="nll", epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"^mse_loss: the targets of shape \(8,\) are class indices but mse_loss "
                       r"compares with an output of shape \(8, 3\); one-hot encode them"):
        cr.fit(model, (x, y), loss="mse", epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"^cross_entropy: targets of shape \(8,\) look like class indices but are "
                       r"float32; class indices must be integers \(int64: y.long\(\)\), class probabilities must "
                       r"have the input's shape \(8, 3\)$"):
        cr.fit(model, (x, y.astype(np.float32)), loss="cross_entropy", epochs=1, verbose=0)
    log_model = cr.nn.MLP([2, 4, 3], output_activation=cr.nn.LogSoftmax(dim=1))
    history = cr.fit(log_model, (x, y), loss="nll", epochs=2, verbose=0)
    assert len(history.epochs) == 2


def test_a_diverging_run_is_one_error_without_numpy_warnings(tmp_path):
    proc = _run("train", "--dataset", "xor", "--lr", "1e30", "--optimizer", "sgd", "--epochs", "3",
                "--out", str(tmp_path), "--quiet")
    assert proc.returncode == 1
    assert proc.stderr.startswith("chainrule train: error: fit: the loss became ")
    assert len(proc.stderr.splitlines()) == 1, proc.stderr


# ---- expressions on the command line --------------------------------------------------------------------
def test_a_leading_minus_is_an_expression_not_an_option(tmp_path, capsys):
    out = tmp_path / "g.dot"
    assert main(["graph", "-x*y", "--set", "x=2", "y=3", "-o", str(out)]) == 0
    assert "label=\"-x*y\"" in out.read_text()
    assert capsys.readouterr().out == f"graph written to {out}\n"
    assert main(["explain", "-x*y", "--set", "x=2", "y=3"]) == 0
    assert capsys.readouterr().out.startswith("Chain rule for f = -6,")
    assert main(["explain", "--set", "x=2", "--", "-x"]) == 0  # the usual -- still works
    assert "f = -2" in capsys.readouterr().out


def test_huge_literals_and_non_finite_points_are_one_line_errors(capsys, tmp_path):
    big = "1" + "0" * 1990
    cases = [
        (["graph", big + "*x", "--set", "x=1"], "chainrule graph: error: expression '100000000000000000000000000000...' "
         "at column 1: the number 100000000000... (1991 digits) is too large for a float (at most about 1.8e308)"),
        (["graph", "x", "--set", "x=" + "1" + "0" * 1999], "chainrule graph: error: value "
         "'100000000000000000000000000000...': the number 100000000000... (2000 digits) is too large for a float "
         "(at most about 1.8e308)"),
        (["explain", "x", "--set", "x=1e999"], "chainrule explain: error: value '1e999': the number inf is too large "
         "for a float (at most about 1.8e308)"),
        (["explain", "log(x)", "--set", "x=0"], "chainrule explain: error: expression 'log(x)': log(x) is -inf at x=0; "
         "choose values where every part is finite"),
        (["explain", "x*y/(x-1)", "--set", "x=1", "y=2"], "chainrule explain: error: expression 'x*y/(x-1)': "
         "x*y/(x-1) is inf at x=1, y=2; choose values where every part is finite"),
        (["explain", "sqrt(x)", "--set", "x=0"], "chainrule explain: error: expression 'sqrt(x)': the gradient with "
         "respect to x is inf at x=0; choose values where the derivative is finite"),
        (["graph", "exp(x) - exp(x)", "--set", "x=1000", "-o", str(tmp_path / "g.svg")], "chainrule graph: error: "
         "expression 'exp(x) - exp(x)': exp(x) is inf at x=1000; choose values where every part is finite"),
    ]
    for argv, line in cases:
        code, err = _error(capsys, argv)
        assert (code, err) == (1, line + "\n"), argv
    assert not (tmp_path / "g.svg").exists()


def test_expression_errors_come_without_numpy_warnings():
    proc = _run("explain", "log(x) + 1/y", "--set", "x=0", "y=0")
    assert proc.returncode == 1
    assert proc.stderr == ("chainrule explain: error: expression 'log(x) + 1/y': log(x) is -inf at x=0, y=0; choose "
                           "values where every part is finite\n")


# ---- the one rule: version, traceback on request, bugs said to be bugs --------------------------------------
def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"chainrule {cr.__version__}\n"


def test_traceback_only_on_request(csv_files):
    args = ["train", "--dataset", f"csv:{csv_files['one_class']}", "--out", str(csv_files["folder"])]
    line = f"chainrule train: error: {csv_files['one_class']}: every example has the label 1; a classifier needs at " \
           "least two classes\n"
    plain = _run(*args)
    assert (plain.returncode, plain.stderr) == (1, line)
    for proc in (_run(*args, "--traceback"), _run(*args, env={"CHAINRULE_TRACEBACK": "1"})):
        assert proc.returncode == 1
        assert proc.stderr.startswith("Traceback (most recent call last):")
        assert "chainrule.errors.DataError" in proc.stderr
        assert proc.stderr.endswith(line)


def test_an_internal_error_says_it_is_a_bug_and_how_to_see_the_traceback(capsys, monkeypatch):
    from chainrule.viz import commands

    def broken(*args, **kwargs):
        return [][1]

    monkeypatch.setattr(commands, "explain", broken)
    code, err = _error(capsys, ["explain", "x", "--set", "x=1"])
    assert code == errors.EXIT_BUG == 70
    assert err == ("chainrule explain: internal error, a bug in chainrule: IndexError: list index out of range; run "
                   "again with --traceback (or CHAINRULE_TRACEBACK=1) to see where, and please report it\n")
    code, err = _error(capsys, ["explain", "x", "--set", "x=1", "--traceback"])
    assert code == 70
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith("chainrule explain: internal error, a bug in chainrule: IndexError: list index out of range, "
                        "and please report it\n")


def test_user_errors_and_bugs_are_told_apart():
    from chainrule.train.targets import one_hot_targets

    with pytest.raises(ValueError) as deliberate:
        cr.nn.MLP([3])  # chainrule's own raise with a message for the user
    assert errors.is_user_error(deliberate.value)
    with pytest.raises(IndexError) as escaped:
        one_hot_targets("mse", np.array([5]), 3)  # NumPy's error escaping from chainrule code: a bug
    assert not errors.is_user_error(escaped.value)
    assert errors.is_user_error(FileNotFoundError(2, "No such file or directory", "x.csv"))
    assert errors.message(FileNotFoundError(2, "No such file or directory", "x.csv")) == "x.csv: No such file or directory"
    assert issubclass(errors.DataError, errors.ChainruleError) and issubclass(errors.DataError, ValueError)
    assert issubclass(cr.expr.ExpressionError, errors.ChainruleError)
    from chainrule.train.fit import TrainingError

    assert issubclass(TrainingError, errors.ChainruleError) and issubclass(TrainingError, RuntimeError)


def test_warnings_are_one_line_without_source(capsys, monkeypatch):
    import warnings

    from chainrule.viz import commands

    def noisy(*args, **kwargs):
        warnings.warn("something odd\n  happened", RuntimeWarning)
        return "done"

    monkeypatch.setattr(commands, "explain", noisy)
    assert main(["explain", "x", "--set", "x=1"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "done\n"
    assert captured.err == "chainrule explain: warning: something odd happened\n"


def test_resume_refuses_options_it_would_ignore(tmp_path, capsys):
    """--resume continues a run with the options in its run.json; others are an error, not ignored."""
    from chainrule.cli import main

    code = main(["train", "--resume", str(tmp_path / "run"), "--epochs", "3", "--lr=0.1", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err == (f"chainrule train: error: --resume continues {tmp_path / 'run'} with the options it was "
                   "started with; drop --epochs, --lr")
