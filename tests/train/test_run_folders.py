"""Run folders are safe: checked before training, written beside and renamed into place, never mixed,
never shared by two runs, kept inside --out; an interrupted run resumes to the uninterrupted result;
a csv: run is self-contained; files get the user's umask; the same weights give the same bytes."""

import contextlib
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.train.callbacks import Callback
from chainrule.train.runs import RunError, RunFolder, TrainConfig, evaluate_run, read_run, train_run

SMALL = ["--dataset", "moons", "--hidden", "16", "--dropout", "0.1", "--epochs", "4", "--quiet"]
RUN_FILES = ["curves.png", "history.csv", "history.json", "model.safetensors", "run.json"]
INTERRUPTED_FILES = sorted([*RUN_FILES, "checkpoint.safetensors"])


def _cli(*args, kill=None, cwd=None, **kwargs):
    """``chainrule ARGS`` in a real process; ``kill="EVENT:SIGNAL"`` interrupts it at that exact point."""
    env = {k: v for k, v in os.environ.items() if k != "CHAINRULE_TEST_KILL"}
    if kill:
        env["CHAINRULE_TEST_KILL"] = kill
    return subprocess.run([sys.executable, "-m", "chainrule.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600, **kwargs)


def _error_line(proc) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


class _Began(Callback):
    began = False

    def on_train_begin(self, trainer):
        _Began.began = True


def _config(**changes):
    return TrainConfig(**{"dataset": "xor", "hidden": (8,), "epochs": 2, **changes})


# ---- --out and --name are checked before training ----------------------------------------------------
def test_an_out_that_is_a_file_is_refused_before_training(tmp_path):
    out = tmp_path / "file"
    out.write_text("not a folder")
    _Began.began = False
    with pytest.raises(NotADirectoryError) as info:
        train_run(_config(), out=str(out), verbose=0, callbacks=[_Began()])
    assert str(info.value) == f"--out {out}: is a file, not a folder"
    assert not _Began.began
    # the command: a SIGKILL after epoch 1 would show that training had started
    proc = _cli("train", *SMALL, "--out", str(out), kill="epoch 1:SIGKILL")
    assert proc.returncode == 1
    assert _error_line(proc).endswith(f"--out {out}: is a file, not a folder")


def test_an_out_on_a_missing_mount_is_refused_before_training(tmp_path):
    out = tmp_path / "usb-drive" / "runs"
    with pytest.raises(FileNotFoundError) as info:
        train_run(_config(), out=str(out), verbose=0)
    assert str(info.value) == (
        f"--out {out}: its parent folder {out.parent} does not exist (a drive that is not mounted?); create it first"
    )
    assert not out.parent.exists()
    proc = _cli("train", *SMALL, "--out", str(out), kill="epoch 1:SIGKILL")
    assert proc.returncode == 1
    assert _error_line(proc).endswith(f"--out {out}: its parent folder {out.parent} does not exist (a drive that "
                                      "is not mounted?); create it first")


@contextlib.contextmanager
def _read_only_folder():
    """A real read-only folder: a read-only tmpfs when running as root (root writes through any mode
    bits), else a folder of mode 0o555. Yields None where root may not mount."""
    top = Path(tempfile.mkdtemp(prefix="chainrule-ro-"))
    try:
        if os.geteuid() != 0:
            os.chmod(top, 0o555)
            yield top
            os.chmod(top, 0o755)
        elif subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(top)],
                            capture_output=True).returncode == 0:
            try:
                yield top
            finally:
                subprocess.run(["umount", str(top)], check=True)
        else:
            yield None
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_a_read_only_out_is_refused_before_training(tmp_path, monkeypatch):
    with _read_only_folder() as top:
        if top is not None:
            reason = "Permission denied" if os.geteuid() != 0 else "Read-only file system"
            cases = [(top, f"--out {top}: cannot write there ({reason})"),
                     (top / "runs", f"--out {top / 'runs'}: cannot create the folder ({reason})")]
            for out, message in cases:
                proc = _cli("train", *SMALL, "--out", str(out), kill="epoch 1:SIGKILL")
                assert proc.returncode == 1, proc.stderr
                assert _error_line(proc).endswith(message)
            assert os.listdir(top) == []
            return
    # root without the right to mount: the same refusal, with the system's answer simulated
    def refuse(path, mode=0o777):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    monkeypatch.setattr(os, "mkdir", refuse)
    with pytest.raises(OSError) as info:
        train_run(_config(), out=str(tmp_path), verbose=0)
    assert str(info.value) == f"--out {tmp_path}: cannot write there (Read-only file system)"


@pytest.mark.parametrize("name", ["../../x", "../x", "a/b", "/tmp/x", ".", "..", ".hidden", ""])
def test_a_name_cannot_leave_out(tmp_path, name):
    out = tmp_path / "deep" / "runs"
    out.mkdir(parents=True)
    with pytest.raises(ValueError) as info:
        train_run(_config(), out=str(out), name=name, verbose=0)
    assert str(info.value) == (
        f"--name {name!r}: expected a plain folder name to create inside --out (no '/', no '..', not starting "
        "with '.')"
    )
    assert os.listdir(out) == [] and sorted(os.listdir(tmp_path)) == ["deep"]
    assert sorted(os.listdir(tmp_path / "deep")) == ["runs"]


def test_the_command_refuses_a_name_that_leaves_out(tmp_path):
    proc = _cli("train", *SMALL, "--out", str(tmp_path / "runs"), "--name", "../../x", kill="epoch 1:SIGKILL",
                cwd=tmp_path)
    assert proc.returncode == 1
    assert _error_line(proc).endswith("--name '../../x': expected a plain folder name to create inside --out "
                                      "(no '/', no '..', not starting with '.')")
    assert os.listdir(tmp_path / "runs") == []
    assert not (tmp_path.parent.parent / "x").exists()


# ---- an existing name, --overwrite, two runs at once ---------------------------------------------------
def test_an_existing_name_is_refused_and_overwrite_replaces_the_run_whole(tmp_path):
    assert _cli("train", *SMALL, "--out", str(tmp_path), "--name", "m").returncode == 0
    run = tmp_path / "m"
    (run / "filters.png").write_bytes(b"an old plot")  # what an old run with --plots would hold
    before = (run / "model.safetensors").read_bytes()
    proc = _cli("train", *SMALL, "--out", str(tmp_path), "--name", "m", "--seed", "1", kill="epoch 1:SIGKILL")
    assert proc.returncode == 1
    assert _error_line(proc).endswith(f"{run} already exists; choose another --name, or pass --overwrite to "
                                      "replace it")
    assert (run / "model.safetensors").read_bytes() == before and (run / "filters.png").exists()

    proc = _cli("train", *SMALL, "--out", str(tmp_path), "--name", "m", "--seed", "1", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["m"]
    assert sorted(os.listdir(run)) == RUN_FILES  # no old plot beside the new model
    assert (run / "model.safetensors").read_bytes() != before
    assert read_run(str(run))["config"]["seed"] == 1


def test_a_second_run_for_the_same_name_is_refused_while_the_first_trains(tmp_path):
    env = {**os.environ, "CHAINRULE_TEST_KILL": "epoch 1:SIGSTOP"}  # the first run stops itself mid-training
    first = subprocess.Popen([sys.executable, "-m", "chainrule.cli", "train", *SMALL, "--out", str(tmp_path),
                              "--name", "same"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, status = os.waitpid(first.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        second = _cli("train", *SMALL, "--out", str(tmp_path), "--name", "same", "--overwrite")
        assert second.returncode == 1
        assert _error_line(second).endswith(f"{tmp_path / 'same'}: another run is writing this run folder right "
                                            "now; wait for it to finish or choose another --name")
        assert not (tmp_path / "same").exists()
    finally:
        os.kill(first.pid, signal.SIGCONT)
        out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert out.endswith(f"run written to {tmp_path / 'same'}\n")
    assert sorted(os.listdir(tmp_path)) == ["same"] and sorted(os.listdir(tmp_path / "same")) == RUN_FILES


def test_one_folder_cannot_be_claimed_twice(tmp_path):
    folder = RunFolder.claim(str(tmp_path), "x")
    try:
        with pytest.raises(FileExistsError) as info:
            RunFolder.claim(str(tmp_path), "x", replace=True)
        assert str(info.value) == (f"{tmp_path / 'x'}: another run is writing this run folder right now; wait for "
                                   "it to finish or choose another --name")
        # an unnamed run takes the next free name instead
        other = RunFolder.claim(str(tmp_path), None, "x")
        assert other.target == str(tmp_path / "x-2")
        other.abandon()
    finally:
        folder.abandon()
    assert os.listdir(tmp_path) == []


def test_unnamed_runs_are_numbered(tmp_path):
    results = [train_run(_config(epochs=1), out=str(tmp_path), verbose=0) for _ in range(3)]
    assert [os.path.basename(r.run_dir) for r in results] == ["xor-mlp", "xor-mlp-2", "xor-mlp-3"]
    assert sorted(os.listdir(tmp_path)) == ["xor-mlp", "xor-mlp-2", "xor-mlp-3"]


class _Fails(Callback):
    def on_epoch_end(self, epoch, logs):
        assert os.listdir(self.out) == [".f.partial"]  # the run is being written beside its name
        raise RuntimeError("training failed")


def test_a_run_that_fails_during_training_leaves_no_folder(tmp_path):
    fails = _Fails()
    fails.out = tmp_path
    with pytest.raises(RuntimeError, match="^training failed$"):
        train_run(_config(), out=str(tmp_path), name="f", verbose=0, callbacks=[fails])
    assert os.listdir(tmp_path) == []


# ---- a kill at any point ----------------------------------------------------------------------------
@pytest.mark.parametrize("event", ["epoch 2", "wrote model.safetensors", "wrote run.json", "moved old run"])
def test_a_kill_at_any_point_leaves_the_old_run_whole_or_no_run(tmp_path, event):
    assert _cli("train", *SMALL, "--out", str(tmp_path), "--name", "x").returncode == 0
    old = {name: (tmp_path / "x" / name).read_bytes() for name in RUN_FILES if name != "curves.png"}
    proc = _cli("train", *SMALL, "--out", str(tmp_path), "--name", "x", "--seed", "7", "--overwrite",
                kill=f"{event}:SIGKILL")
    assert proc.returncode == -signal.SIGKILL
    visible = [n for n in os.listdir(tmp_path) if not n.startswith(".")]
    if event == "moved old run":  # between the two renames: the name is absent, never half of each
        assert visible == []
    else:
        assert visible == ["x"]
        assert sorted(os.listdir(tmp_path / "x")) == RUN_FILES
        assert {name: (tmp_path / "x" / name).read_bytes() for name in old} == old
    # the next run cleans up what the killed one left
    assert _cli("train", *SMALL, "--out", str(tmp_path), "--name", "x", "--seed", "7", "--overwrite").returncode == 0
    assert sorted(os.listdir(tmp_path)) == ["x"]
    assert sorted(os.listdir(tmp_path / "x")) == RUN_FILES
    assert read_run(str(tmp_path / "x"))["config"]["seed"] == 7


# ---- SIGINT / SIGTERM and --resume --------------------------------------------------------------------
# 720 training examples in batches of 32: 23 steps an epoch, so step 60 is in the middle of epoch 3
@pytest.mark.parametrize("sig, when", [(signal.SIGTERM, "epoch 2"), (signal.SIGINT, "step 60")])
def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, sig, when):
    assert _cli("train", *SMALL, "--out", str(tmp_path), "--name", "whole").returncode == 0
    proc = _cli("train", *SMALL, "--out", str(tmp_path), "--name", "cut", kill=f"{when}:{sig.name}")
    run = tmp_path / "cut"
    assert proc.returncode == 128 + sig
    assert _error_line(proc) == (
        f"chainrule train: interrupted by {sig.name}: the run is saved at epoch 2 of 4 in {run} (marked interrupted); "
        f"continue it with: chainrule train --resume {run}"
    )
    assert sorted(os.listdir(run)) == INTERRUPTED_FILES
    record = read_run(str(run))
    assert (record["status"], record["epochs_run"], record["interrupted_by"], record["test"]) == (
        "interrupted", 2, sig.name, None)
    history = json.loads((run / "history.json").read_text())
    assert (len(history["epochs"]), len(history["iterations"])) == (2, 46)
    # the checkpoint holds epoch 2: the model of the run stopped after two epochs
    assert _cli("train", *SMALL[:-3], "--epochs", "2", "--quiet", "--out", str(tmp_path), "--name", "two").returncode == 0
    assert (run / "model.safetensors").read_bytes() == (tmp_path / "two" / "model.safetensors").read_bytes()

    proc = _cli("train", "--resume", str(run), "--quiet")
    assert proc.returncode == 0, proc.stderr
    whole = tmp_path / "whole"
    assert proc.stdout == _cli("evaluate", str(whole)).stdout.splitlines()[0] + f"\nrun written to {run}\n"
    assert sorted(os.listdir(run)) == RUN_FILES
    assert (run / "model.safetensors").read_bytes() == (whole / "model.safetensors").read_bytes()
    assert read_run(str(run))["test"] == read_run(str(whole))["test"]
    assert read_run(str(run))["status"] == "complete"
    history = json.loads((run / "history.json").read_text())
    expected = json.loads((whole / "history.json").read_text())
    assert len(history["iterations"]) == 4 * 23
    assert history["iterations"] == expected["iterations"]
    assert [e["loss"] for e in history["epochs"]] == [e["loss"] for e in expected["epochs"]]

    proc = _cli("train", "--resume", str(run))
    assert proc.returncode == 1
    assert _error_line(proc).endswith(f"{run / 'run.json'}: the run is complete (4 of 4 epochs); there is nothing "
                                      "to resume")


# ---- csv: runs are self-contained --------------------------------------------------------------------
def _write_csv(path, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(120, 3))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", fmt="%.6f")


def test_a_csv_run_evaluates_from_another_folder_and_ignores_later_edits(tmp_path):
    data_dir, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    data_dir.mkdir()
    elsewhere.mkdir()
    _write_csv(data_dir / "table.csv")
    proc = _cli("train", "--dataset", "csv:table.csv", "--hidden", "8", "--epochs", "3", "--quiet", "--out", "runs",
                "--name", "c", cwd=data_dir)
    assert proc.returncode == 0, proc.stderr
    run = data_dir / "runs" / "c"
    assert sorted(os.listdir(run)) == sorted([*RUN_FILES, "test.safetensors"])
    scores = proc.stdout.splitlines()[0]
    record = read_run(str(run))
    assert record["data"]["source"]["path"] == str(data_dir / "table.csv")
    assert len(record["data"]["source"]["sha256"]) == 64
    assert _cli("evaluate", str(run), cwd=elsewhere).stdout.strip() == scores
    _write_csv(data_dir / "table.csv", seed=1)  # the file changes: the held-out score does not
    assert _cli("evaluate", str(run), cwd=elsewhere).stdout.strip() == scores
    (data_dir / "table.csv").unlink()
    assert _cli("evaluate", str(run), cwd=elsewhere).stdout.strip() == scores


def test_a_csv_run_refuses_to_resume_on_a_changed_file(tmp_path):
    _write_csv(tmp_path / "table.csv")
    args = ["train", "--dataset", "csv:table.csv", "--hidden", "8", "--epochs", "3", "--quiet", "--out", "runs"]
    assert _cli(*args, "--name", "c", kill="epoch 1:SIGTERM", cwd=tmp_path).returncode == 128 + signal.SIGTERM
    _write_csv(tmp_path / "table.csv", seed=1)
    proc = _cli("train", "--resume", str(tmp_path / "runs" / "c"))
    assert proc.returncode == 1
    assert _error_line(proc).endswith(
        f"{tmp_path / 'table.csv'}: changed since run {tmp_path / 'runs' / 'c'} was trained on it (its SHA-256 "
        "differs); restore the file or train a new run")
    assert read_run(str(tmp_path / "runs" / "c"))["status"] == "interrupted"  # untouched


# ---- permissions and bytes -------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_the_files_of_a_run_get_the_users_umask(tmp_path, umask):
    proc = _cli("train", *SMALL, "--out", str(tmp_path / "runs"), "--name", "u", "--plots",
                preexec_fn=lambda: os.umask(umask))
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "runs" / "u"
    assert stat.S_IMODE(run.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((tmp_path / "runs").stat().st_mode) == 0o777 & ~umask
    modes = {name: stat.S_IMODE((run / name).stat().st_mode) for name in os.listdir(run)}
    assert len(modes) > len(RUN_FILES)  # the plots too
    assert modes == dict.fromkeys(modes, 0o666 & ~umask)


_SAVE = "import chainrule as cr, sys\ncr.manual_seed(4)\ncr.save(cr.nn.MLP([5, 7, 3], dropout=0.1), sys.argv[1])"


def test_the_same_weights_give_byte_identical_checkpoint_files(tmp_path):
    # Separate processes: no state, hash seed or clock may leak into the bytes. Six of them, because
    # the safetensors package writes its metadata in a hash map's order, which was a coin flip per process.
    paths = [tmp_path / f"{k}.safetensors" for k in range(6)]
    for k, path in enumerate(paths):
        subprocess.run([sys.executable, "-c", _SAVE, str(path)], check=True, timeout=120,
                       env={**os.environ, "PYTHONHASHSEED": str(k)})
    assert len({path.read_bytes() for path in paths}) == 1
    # and two interrupted runs give the same checkpoints
    for name in ("a", "b"):
        assert _cli("train", *SMALL, "--out", str(tmp_path), "--name", name, kill="epoch 1:SIGTERM").returncode == 143
    for name in ("model.safetensors", "checkpoint.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# ---- damaged run folders name the file ------------------------------------------------------------------
def test_a_damaged_run_json_names_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train_run(_config(epochs=1), out="runs", name="x", verbose=0)
    good = Path("runs/x/run.json").read_text()
    record = json.loads(good)
    cases = [
        ("{", "runs/x/run.json: not valid JSON (line 1, column 2)"),
        ('{"config": 1,\n oops}', "runs/x/run.json: not valid JSON (line 2, column 2)"),
        ("[" * 100_000, "runs/x/run.json: not valid JSON (nested too deeply)"),
        ("[1, 2]", "runs/x/run.json: expected a JSON object (the run's record), found a list"),
        ("{}", "runs/x/run.json: expected 'config' to be a dict, found nothing"),
        (json.dumps({**record, "config": {**record["config"], "colour": 1}}),
         "runs/x/run.json: unknown config key 'colour' (known: activation, batch_size, dataset, dropout, epochs, "
         "hidden, loss, lr, model, optimizer, seed, test_split, val_split, weight_decay)"),
        (json.dumps({**record, "config": {**record["config"], "epochs": 0}}),
         "runs/x/run.json: invalid config (--epochs must be at least 1, got 0)"),
        (json.dumps({k: v for k, v in record.items() if k != "preprocessing"}),
         "runs/x/run.json: expected 'preprocessing' to be a dict, found nothing"),
    ]
    for text, message in cases:
        Path("runs/x/run.json").write_text(text)
        with pytest.raises(RunError) as info:
            evaluate_run("runs/x")
        assert str(info.value) == message
        proc = _cli("evaluate", "runs/x", cwd=tmp_path)
        assert proc.returncode == 1
        assert _error_line(proc).endswith(message)
    Path("runs/x/run.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(RunError, match=r"^runs/x/run.json: not valid JSON \(not UTF-8 text\)$"):
        evaluate_run("runs/x")
    Path("runs/x/run.json").write_text(good)
    os.unlink("runs/x/model.safetensors")
    with pytest.raises(FileNotFoundError) as info:
        evaluate_run("runs/x")
    assert str(info.value) == "runs/x/model.safetensors: missing; the run folder runs/x is incomplete"
    Path("runs/x/model.safetensors").write_bytes(b"garbage!")
    with pytest.raises(cr.io.CheckpointError) as info:
        evaluate_run("runs/x")
    assert str(info.value).startswith("runs/x/model.safetensors ")
    with pytest.raises(FileNotFoundError) as info:
        evaluate_run("runs/nope")
    assert str(info.value) == "runs/nope is not a run folder (no such folder); train one with `chainrule train`"
