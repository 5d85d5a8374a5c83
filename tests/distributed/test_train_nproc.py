"""`chainrule train --nproc 2`: two ranks through the wheel's mpiexec, rank 0 alone prints and writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def _train(tmp_path, name: str, *extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_", "HYDI_"))}
    cmd = [sys.executable, "-m", "chainrule.cli", "train", "--dataset", "digits", "--epochs", "3", "--quiet",
           "--out", str(tmp_path), "--name", name, *extra]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=150, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_train_on_two_ranks_matches_one_process_and_only_rank_0_writes(tmp_path):
    one = _train(tmp_path, "one", "--threads", "1")
    two = _train(tmp_path, "two", "--nproc", "2")
    assert two.stdout.count("test accuracy:") == 1 and two.stdout.count("run written to") == 1, two.stdout
    assert sorted(os.listdir(tmp_path)) == ["one", "two"]  # no second run folder from rank 1
    assert os.path.exists(tmp_path / "two" / "model.safetensors")
    acc = {n: json.loads((tmp_path / n / "run.json").read_text())["test"]["accuracy"] for n in ("one", "two")}
    assert acc["one"] > 0.9
    assert abs(acc["two"] - acc["one"]) <= 0.01, acc
    epochs = json.loads((tmp_path / "two" / "history.json").read_text())["epochs"]
    assert len(epochs) == 3 and epochs[-1]["loss"] < epochs[0]["loss"]
    assert "test accuracy:" in one.stdout


def test_nproc_must_be_positive(tmp_path):
    result = subprocess.run([sys.executable, "-m", "chainrule.cli", "train", "--nproc", "0", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "chainrule train: error: --nproc must be at least 1, got 0" in result.stderr
