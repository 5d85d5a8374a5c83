"""Run folders: what ``chainrule train`` writes and ``evaluate``/``predict`` read back.

A run folder holds ``model.safetensors`` (weights plus the architecture, so the model is rebuilt
without code), ``run.json`` (the configuration, the data split and preprocessing, the test scores),
``history.json``/``history.csv`` and ``curves.png``; a ``csv:`` run also keeps its held-out rows in
``test.safetensors`` (and the CSV's SHA-256 in ``run.json``), so ``evaluate`` needs no CSV file. A run
interrupted by SIGINT/SIGTERM holds the last finished epoch and ``checkpoint.safetensors`` (optimizer
and random state) and is marked ``"status": "interrupted"``; ``chainrule train --resume`` finishes it.

A folder is written as ``OUT/.NAME.partial`` and renamed into place when complete (see
:class:`RunFolder`): ``OUT/NAME`` is always a whole run or absent.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import itertools
import json
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from .. import backend
from ..tensor import Tensor
from .callbacks import Callback
from .history import History, atomic_write_text
from .targets import (
    check_features,
    check_labels,
    check_model_fits,
    check_splits,
    head,
    loss_form,
    one_hot_targets,
)

TABULAR_SETS = ("digits", "moons", "circles", "spirals", "xor", "blobs")


@dataclass
class TrainConfig:
    """Everything that defines a training run (the ``chainrule train`` options)."""

    dataset: str = "digits"
    model: str = "mlp"
    hidden: tuple = (128, 64)
    activation: str = "relu"
    loss: str = "cross_entropy"
    optimizer: str = "adam"
    lr: float | None = None
    batch_size: int = 32
    epochs: int = 30
    weight_decay: float = 0.0
    dropout: float = 0.0
    seed: int = 0
    val_split: float = 0.1
    test_split: float = 0.2

    def validate(self) -> None:
        if self.model not in ("mlp", "cnn"):
            raise ValueError(f"--model must be 'mlp' or 'cnn', got {self.model!r}")
        if self.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        if not 0 < self.test_split < 1:
            raise ValueError(f"--test-split must be between 0 and 1, got {self.test_split}")
        if not 0 <= self.val_split < 1:
            raise ValueError(f"--val-split must be in [0, 1), got {self.val_split}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout must be in [0, 1), got {self.dropout}")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"--hidden sizes must be positive, got {','.join(map(str, self.hidden))}")
        _check_options(self)


@dataclass
class RunResult:
    run_dir: str
    test: dict
    history: History
    model: object = None
    info: dict = field(default_factory=dict)
    interrupted: int | None = None  # the signal that stopped training, if one did


# ---- data ------------------------------------------------------------------------------------------
def load_dataset(spec: str, images: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Features, integer labels and a description for a dataset name (see ``chainrule train --help``)."""
    from ..data import datasets

    if spec == "digits":
        ds = datasets.digits(images=images)
        x, y = ds.features, ds.targets
        info = {"scale": 16.0}
    elif spec in ("mnist-subset", "mnist_subset"):
        ds = datasets.mnist_subset()
        x, y = ds.features, ds.targets
        info = {"scale": 1.0}
        if not images:
            x = x.reshape(len(x), -1)
    elif spec.startswith("idx:"):
        ds = datasets.mnist(spec[4:], split="train")
        x, y = ds.features, ds.targets
        info = {"scale": 1.0}
        if not images:
            x = x.reshape(len(x), -1)
    elif spec.startswith("csv:"):
        from ..data import read_csv

        x, y = read_csv(spec[4:])
        info = {"source": {"path": os.path.abspath(spec[4:]), "sha256": _file_sha256(spec[4:])}}
    elif spec in TABULAR_SETS[1:]:
        ds = getattr(datasets, spec)(n_samples=1000, seed=seed)
        x, y = ds.features, ds.targets
        info = {}
    else:
        raise ValueError(
            f"unknown dataset {spec!r}; use digits, moons, circles, spirals, xor, blobs, mnist-subset, "
            "idx:FOLDER or csv:FILE"
        )
    source = spec[4:] if spec.startswith(("csv:", "idx:")) else spec
    check_features(x._data if isinstance(x, Tensor) else x, source)
    y = check_labels(y._data if isinstance(y, Tensor) else y, source)
    x = np.asarray(x._data if isinstance(x, Tensor) else x, dtype=np.float32)
    if images and x.ndim != 4:
        raise ValueError(f"--model cnn needs an image dataset (digits, mnist-subset, idx:...), not {spec!r}")
    info.update({"n_samples": int(len(x)), "n_classes": int(y.max()) + 1, "input_shape": list(x.shape[1:])})
    return x, y, info


def split_indices(n: int, test_split: float, val_split: float, seed: int) -> dict:
    """A seeded shuffle cut into test, validation and training indices."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_split))
    test, rest = order[:n_test], order[n_test:]
    n_val = int(round(len(rest) * val_split))
    return {"test": test, "val": rest[:n_val], "train": rest[n_val:]}


def _preprocess(x: np.ndarray, prep: dict) -> np.ndarray:
    if "mean" in prep:
        return ((x - np.asarray(prep["mean"], np.float32)) / np.asarray(prep["std"], np.float32)).astype(np.float32)
    return (x / np.float32(prep.get("scale", 1.0))).astype(np.float32)


def _fit_preprocessing(x_train: np.ndarray, images: bool, info: dict) -> dict:
    if images:
        return {"scale": float(info.get("scale", 1.0))}
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0
    return {"mean": mean.tolist(), "std": std.tolist()}


# ---- model -----------------------------------------------------------------------------------------
def build_model(config: TrainConfig, info: dict):
    from .. import nn

    n_classes = info["n_classes"]
    if config.model == "cnn":
        c, h, w = info["input_shape"]
        if min(h, w) >= 16:
            return nn.LeNet(in_channels=c, num_classes=n_classes, image_size=(h, w))
        # 8x8 images keep only 2x2 maps after two pools; wider convolutions with batch norm and
        # dropout take LeNet from about 97% to 98-99% test accuracy on the digits
        return nn.LeNet(in_channels=c, num_classes=n_classes, image_size=(h, w), channels=(16, 32),
                        batch_norm=True, dropout=0.3)
    sizes = [int(np.prod(info["input_shape"])), *config.hidden, n_classes]
    check_model_fits(sizes, "--hidden")
    return nn.MLP(sizes, activation=config.activation, dropout=config.dropout, output_activation=head(config.loss))


# ---- the run folder --------------------------------------------------------------------------------
def _check_name(name: str) -> str:
    if (not isinstance(name, str) or not name or name in (".", "..") or name.startswith(".") or "\0" in name
            or os.sep in name or (os.altsep and os.altsep in name)):
        raise ValueError(
            f"--name {name!r}: expected a plain folder name to create inside --out (no '/', no '..', not "
            "starting with '.')"
        )
    return name


def _prepare_out(out: str) -> str:
    """``out`` as an existing folder: created (the last level only) when missing, refused when it is a
    file or cannot be created; writing into it is tried when the run's folder is claimed."""
    out = os.fspath(out)
    if os.path.isdir(out):
        return out
    if os.path.lexists(out):
        raise NotADirectoryError(f"--out {out}: is a file, not a folder")
    parent = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(parent):
        raise FileNotFoundError(
            f"--out {out}: its parent folder {parent} does not exist (a drive that is not mounted?); create it first"
        )
    try:
        os.mkdir(out, 0o777)
    except FileExistsError:  # made meanwhile by another run
        pass
    except OSError as err:
        raise OSError(f"--out {out}: cannot create the folder ({err.strerror or err})") from None
    return out


def _try_lock(fd: int) -> bool:
    """An exclusive lock on an open file that the system drops when the process ends, however it ends."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


class RunFolder:
    """The exclusive right to write the run folder ``OUT/NAME``.

    A run is written into ``OUT/.NAME.partial`` and renamed to ``OUT/NAME`` when it is complete, so
    ``OUT/NAME`` is a whole run or absent, whenever the process is killed. The partial folder holds a
    ``.lock`` file locked while its run lives: a second run for the same name is refused at once, and
    the folder of a killed run (lock released by the system) is cleared and reused. ``replace``
    (``--overwrite``, ``--resume``) swaps an existing run for the new one whole.

    >>> folder = RunFolder.claim("runs", "demo")        # doctest: +SKIP
    >>> io.save(model, folder.file("model.safetensors")); folder.commit()   # doctest: +SKIP
    'runs/demo'
    """

    def __init__(self, out: str, name: str, partial: str, lock_fd: int, replace: bool) -> None:
        self.out, self.name, self.partial, self.replace = out, name, partial, replace
        self.target = os.path.join(out, name)
        self._lock_fd: int | None = lock_fd

    @classmethod
    def claim(cls, out: str, name: str | None, default: str = "run", replace: bool = False) -> RunFolder:
        """Claim ``OUT/NAME`` (checked: a plain name, refused if it exists unless ``replace``), or with
        ``name=None`` the first free one of ``OUT/DEFAULT``, ``OUT/DEFAULT-2``, ..."""
        out = _prepare_out(out)
        if name is not None:
            folder = cls._claim(out, _check_name(name), replace)
            if folder is None:
                raise FileExistsError(
                    f"{os.path.join(out, name)}: another run is writing this run folder right now; wait for it "
                    "to finish or choose another --name"
                )
            if os.path.lexists(folder.target) and not replace:
                folder.abandon()
                raise FileExistsError(
                    f"{folder.target} already exists; choose another --name, or pass --overwrite to replace it"
                )
            return folder
        for k in itertools.count(1):
            candidate = default if k == 1 else f"{default}-{k}"
            if os.path.lexists(os.path.join(out, candidate)):
                continue
            folder = cls._claim(out, candidate, False)
            if folder is None:
                continue
            if not os.path.lexists(folder.target):
                return folder
            folder.abandon()
        raise AssertionError("unreachable")

    @classmethod
    def _claim(cls, out: str, name: str, replace: bool) -> RunFolder | None:
        partial = os.path.join(out, f".{name}.partial")
        lock = os.path.join(partial, ".lock")
        for _ in range(100):
            try:
                os.mkdir(partial, 0o777)
                created = True
            except FileExistsError:
                created = False
            except OSError as err:
                raise OSError(f"--out {out}: cannot write there ({err.strerror or err})") from None
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
            except (FileNotFoundError, NotADirectoryError):
                continue  # its owner has just renamed it into place: look again
            except OSError as err:
                raise OSError(f"--out {out}: cannot write there ({err.strerror or err})") from None
            if not _try_lock(fd):
                os.close(fd)
                return None
            try:
                same = os.path.samestat(os.stat(lock), os.fstat(fd))
            except OSError:
                same = False
            if not same:  # locked a file its owner had just moved away with the finished run
                os.close(fd)
                continue
            folder = cls(out, name, partial, fd, replace)
            if not created:
                _clear(partial, keep=".lock")  # left by a run that was killed
            for stale in glob.glob(os.path.join(glob.escape(out), f".{glob.escape(name)}.old-*")):
                shutil.rmtree(stale, ignore_errors=True)  # a replaced run whose removal was cut short
            return folder
        raise OSError(f"--out {out}: cannot claim the run folder {name!r} (it keeps changing)")

    def file(self, name: str) -> str:
        """Where to write ``name`` of the run (inside the partial folder until :meth:`commit`)."""
        return os.path.join(self.partial, name)

    def commit(self) -> str:
        """Rename the finished run into place (replacing an old one whole with ``replace``) and release it."""
        from ..io.safetensors import _fsync_directory

        if os.path.lexists(self.target):
            if not self.replace:
                raise FileExistsError(
                    f"{self.target} was created by something else while this run trained; this run's files are "
                    f"left in {self.partial}"
                )
            old = os.path.join(self.out, f".{self.name}.old-{secrets.token_hex(4)}")
            os.rename(self.target, old)
            _test_hook("moved old run")
            os.rename(self.partial, self.target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(self.partial, self.target)
        _test_hook("renamed run")
        try:
            os.unlink(os.path.join(self.target, ".lock"))
        except OSError:
            pass
        self._release()
        _fsync_directory(Path(self.out))
        return self.target

    def abandon(self) -> None:
        """Delete the partial folder (a run that failed leaves nothing behind) and release it."""
        if self._lock_fd is None:
            return
        shutil.rmtree(self.partial, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _clear(folder: str, keep: str) -> None:
    for entry in os.listdir(folder):
        if entry == keep:
            continue
        path = os.path.join(folder, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def _test_hook(event: str) -> None:
    """For tests only: ``CHAINRULE_TEST_KILL="EVENT:SIGNAL"`` sends SIGNAL to this process when EVENT
    happens (``step 50``, ``epoch 2``, ``wrote model.safetensors``, ``moved old run``, ``renamed run``), so a test
    interrupts a real run at an exact point instead of after a guessed sleep."""
    spec = os.environ.get("CHAINRULE_TEST_KILL")
    if not spec:
        return
    wanted, _, name = spec.rpartition(":")
    if wanted == event:
        os.kill(os.getpid(), getattr(signal, name))


class _TestHookCallback(Callback):
    def on_batch_end(self, step: int, logs: dict) -> None:
        _test_hook(f"step {step}")

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        _test_hook(f"epoch {epoch}")


def _test_callbacks() -> list:
    return [_TestHookCallback()] if os.environ.get("CHAINRULE_TEST_KILL") else []


# ---- interruption ----------------------------------------------------------------------------------
class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived during training; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def _signals_interrupt_training():
    """SIGINT and SIGTERM raise :class:`TrainingInterrupted` inside the block (main thread only: signal
    handlers cannot be installed elsewhere, and the previous handlers come back afterwards)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise TrainingInterrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def _frozen(obj):
    """A deep copy of a state (dicts, lists, tuples, Tensors, arrays): later steps cannot change it."""
    if isinstance(obj, Tensor):
        return Tensor._wrap(obj._data.copy())
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, dict):
        return type(obj)((k, _frozen(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_frozen(v) for v in obj)
    return obj


class _EpochSnapshot(Callback):
    """Keeps the state at the end of the last finished epoch (the model, the optimizer, the random
    generator, the history), so an interrupted run saves a checkpoint it can be resumed from exactly."""

    def __init__(self, model, optimizer, initial_epoch: int) -> None:
        self.model, self.optimizer = model, optimizer
        self.state = None
        self._take(initial_epoch)

    def _take(self, epoch: int) -> None:
        from ..io import get_rng_state

        epochs = list(self.trainer.history.epochs) if self.trainer is not None else []
        iterations = len(self.trainer.history.iterations) if self.trainer is not None else 0
        # built whole, then assigned in one step: a signal cannot leave half a snapshot
        self.state = {"epoch": epoch, "model": _frozen(self.model.state_dict()),
                      "optimizer": _frozen(self.optimizer.state_dict()), "rng": _frozen(get_rng_state()),
                      "epochs": epochs, "iterations": iterations}

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        self._take(epoch)

    def restore(self) -> dict:
        """Put the snapshot back into the model, optimizer and generator; returns it."""
        from ..io import set_rng_state

        self.model.load_state_dict(self.state["model"])
        self.optimizer.load_state_dict(_frozen(self.state["optimizer"]))
        set_rng_state(self.state["rng"])
        return self.state


# ---- the three commands ----------------------------------------------------------------------------
def _distributed(model, batch_size: int):
    """(the model to train, the per-rank batch, this rank): DDP over the ranks when launched by mpiexec."""
    from .. import distributed

    if not distributed.launched_by_mpi():
        return model, batch_size, 0
    group = distributed.init()
    if group.size == 1:
        return model, batch_size, 0
    if batch_size < group.size:
        raise ValueError(f"train: the batch size {batch_size} is smaller than the {group.size} ranks sharing it")
    from ..nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model), batch_size // group.size, group.rank


def _this_rank() -> int:
    """This process's rank: 0 unless launched by mpiexec (``chainrule train --nproc N``)."""
    from .. import distributed

    return distributed.init().rank if distributed.launched_by_mpi() else 0


def train_run(config: TrainConfig, out: str = "runs", name: str | None = None, verbose: int = 1,
              plots: bool = False, overwrite: bool = False, callbacks: Sequence[Callback] = ()) -> RunResult:
    """Train as ``chainrule train`` does and write the run folder ``OUT/NAME``.

    The folder is claimed before training (``out`` and ``name`` checked, an existing run refused unless
    ``overwrite``) and renamed into place only when the run is written. SIGINT/SIGTERM during training
    saves the last finished epoch as an interrupted run (``result.interrupted`` is the signal), which
    :func:`resume_run` continues.

    Launched by ``mpiexec`` over several ranks (``chainrule train --nproc N``), the model is wrapped in
    DistributedDataParallel, ``config.batch_size`` is the global batch (split evenly over the ranks,
    so a run matches one process), and only rank 0 claims and writes the run folder (the others return
    a result whose ``run_dir`` is None).

    >>> result = train_run(TrainConfig(dataset="xor", epochs=2), out="runs", name="x", verbose=0)  # doctest: +SKIP
    >>> result.run_dir                                                                            # doctest: +SKIP
    'runs/x'
    """
    from .fit import get_optimizer

    config.validate()
    images = config.model == "cnn"
    x, y, info = load_dataset(config.dataset, images, config.seed)
    parts = split_indices(len(x), config.test_split, config.val_split, config.seed)
    check_splits(parts, len(x), config.test_split, config.val_split)
    folder = None
    if _this_rank() == 0:
        folder = RunFolder.claim(out, name, f"{config.dataset.split(':')[0]}-{config.model}", replace=overwrite)
    try:
        test_raw = (x[parts["test"]], y[parts["test"]])
        y = one_hot_targets(config.loss, y, info["n_classes"])
        prep = _fit_preprocessing(x[parts["train"]], images, info)
        x = _preprocess(x, prep)
        backend.manual_seed(config.seed)
        model = build_model(config, info)
        optimizer = get_optimizer(config.optimizer, model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
        return _train_and_write(folder, config, info, prep, parts, x, y, test_raw, model, optimizer, History(),
                                0, verbose, plots, callbacks)
    finally:
        if folder is not None:
            folder.abandon()  # a no-op once the run is committed


def resume_run(run_dir: str, verbose: int = 1, callbacks: Sequence[Callback] = ()) -> RunResult:
    """Continue an interrupted run (``chainrule train --resume RUN``) from its checkpoint to the end, with
    the run's own options: the result is the run that was never interrupted. The folder is replaced whole."""
    from .. import io
    from .fit import get_optimizer

    record = read_run(run_dir)
    path = os.path.join(run_dir, "run.json")
    config = _config_of(record, path)
    if record.get("status", "complete") != "interrupted":
        raise RunError(f"{path}: the run is complete ({record.get('epochs_run', '?')} of {config.epochs} epochs); "
                       "there is nothing to resume")
    x, y, info = _run_data(record, run_dir)
    prep = _entry(record, "preprocessing", path)
    parent, name = os.path.split(os.path.abspath(run_dir))
    out = os.path.relpath(parent) if not os.path.isabs(run_dir) else parent
    folder = RunFolder.claim(out, name, replace=True)
    try:
        parts = split_indices(len(x), config.test_split, config.val_split, config.seed)
        test_raw = (x[parts["test"]], y[parts["test"]])
        y = one_hot_targets(config.loss, y, info["n_classes"])
        x = _preprocess(x, prep)
        model = build_model(config, _entry(record, "data", path))
        model_path = os.path.join(run_dir, "model.safetensors")
        try:
            model.load_state_dict(io.load(model_path))
        except (KeyError, ValueError) as err:
            if isinstance(err, io.CheckpointError):
                raise
            message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
            raise RunError(f"{model_path}: does not fit the run's model: {message}") from None
        optimizer = get_optimizer(config.optimizer, model.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay)
        ckpt_path = os.path.join(run_dir, "checkpoint.safetensors")
        ckpt = io.load(ckpt_path)
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
            io.set_rng_state(ckpt["rng"])
            epoch = int(ckpt["epoch"])
        except (KeyError, ValueError, TypeError) as err:
            message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
            raise RunError(f"{ckpt_path}: not a resumable checkpoint of this run ({message})") from None
        history = _read_history(os.path.join(run_dir, "history.json"))
        return _train_and_write(folder, config, info, prep, parts, x, y, test_raw, model, optimizer, history,
                                epoch, verbose, bool(record.get("plots", False)), callbacks)
    finally:
        folder.abandon()


def _train_and_write(folder: RunFolder, config: TrainConfig, info: dict, prep: dict, parts: dict, x, y, test_raw,
                     model, optimizer, history: History, initial_epoch: int, verbose: int, plots: bool,
                     callbacks: Sequence[Callback]) -> RunResult:
    from .fit import evaluate, fit

    train = (Tensor(x[parts["train"]]), Tensor(y[parts["train"]]))
    val = (Tensor(x[parts["val"]]), Tensor(y[parts["val"]])) if len(parts["val"]) else None
    test = (Tensor(x[parts["test"]]), Tensor(y[parts["test"]]))
    snapshot = _EpochSnapshot(model, optimizer, initial_epoch)
    extra = []
    if plots:
        from ..viz import Diagnostics
        from ..viz.plots import DecisionBoundaryRecorder

        extra.append(Diagnostics())
        if x.ndim == 2 and x.shape[1] == 2:
            extra.append(DecisionBoundaryRecorder(*train, every=max(1, config.epochs // 20)))
    net, batch_size, rank = _distributed(model, config.batch_size)
    interrupted = None
    try:
        with _signals_interrupt_training():
            new = fit(net, train, loss=config.loss, optimizer=optimizer, epochs=config.epochs,
                      batch_size=batch_size, val_data=val, verbose=verbose,
                      callbacks=[snapshot, *extra, *callbacks, *_test_callbacks()], initial_epoch=initial_epoch)
    except TrainingInterrupted as stop:
        interrupted = stop.signum
        state = snapshot.restore()
        seen = snapshot.trainer.history if snapshot.trainer is not None else History()
        new = History(seen.iterations[:state["iterations"]], state["epochs"], dict(seen.params))
    history = History(history.iterations + new.iterations, history.epochs + new.epochs, new.params)
    epochs_run = initial_epoch + len(new.epochs) if interrupted is None else snapshot.state["epoch"]
    scores = evaluate(model, test, loss=config.loss) if interrupted is None else None
    if rank != 0:
        return RunResult(None, scores, history, model, {}, interrupted)
    _write_run(folder, config, info, prep, test_raw, model, optimizer, history, scores, epochs_run, interrupted,
               plots)
    if interrupted is None and plots:
        from ..viz import plots as viz_plots

        viz_plots.write_all(folder.partial, model=model, data=test, diagnostics=extra[0],
                            recorder=extra[1] if len(extra) > 1 else None)
    run_dir = folder.commit()
    record = json.loads(Path(os.path.join(run_dir, "run.json")).read_text())
    return RunResult(run_dir, scores, history, model, record, interrupted)


def _write_run(folder: RunFolder, config: TrainConfig, info: dict, prep: dict, test_raw, model, optimizer,
               history: History, scores: dict | None, epochs_run: int, interrupted: int | None, plots: bool) -> None:
    from .. import io
    from ..viz.plots import training_curves

    io.save(model, folder.file("model.safetensors"))
    _test_hook("wrote model.safetensors")
    if interrupted is not None:
        io.save({"optimizer": optimizer.state_dict(), "rng": io.get_rng_state(), "epoch": epochs_run},
                folder.file("checkpoint.safetensors"))
    if config.dataset.startswith("csv:"):  # the held-out rows, so evaluate needs no CSV file
        io.write_safetensors(folder.file("test.safetensors"),
                             {"features": np.ascontiguousarray(test_raw[0]), "targets": np.ascontiguousarray(test_raw[1])})
    record = {"config": asdict(config), "data": info, "preprocessing": prep, "test": scores,
              "epochs_run": epochs_run, "status": "complete" if interrupted is None else "interrupted",
              "plots": bool(plots)}
    if interrupted is not None:
        record["interrupted_by"] = signal.Signals(interrupted).name
    atomic_write_text(folder.file("run.json"), json.dumps(record, indent=1))
    _test_hook("wrote run.json")
    history.to_json(folder.file("history.json"))
    history.to_csv(folder.file("history.csv"))
    if history.epochs:
        training_curves(history, path=folder.file("curves.png"))


# ---- reading a run back ----------------------------------------------------------------------------
class RunError(ValueError):
    """A run folder that cannot be used: damaged, not written by ``chainrule train``, or not fit for the
    command (a complete run to resume, a CSV that changed since training)."""


def read_run(run_dir: str) -> dict:
    """The record of a run (its ``run.json``), with errors that name the file."""
    path = os.path.join(run_dir, "run.json")
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"{run_dir} is not a run folder (no such folder); train one with `chainrule train`")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{run_dir} is not a run folder (no run.json); train one with `chainrule train`")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise RunError(f"{path}: not valid JSON (not UTF-8 text)") from None
    except OSError as err:
        raise OSError(f"{path}: cannot be read ({err.strerror or err})") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise RunError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno})") from None
    except RecursionError:
        raise RunError(f"{path}: not valid JSON (nested too deeply)") from None
    if not isinstance(record, dict):
        raise RunError(f"{path}: expected a JSON object (the run's record), found a {type(record).__name__}")
    return record


def _entry(record: dict, key: str, path: str, kind: type = dict):
    value = record.get(key)
    if not isinstance(value, kind):
        found = "nothing" if value is None else f"a {type(value).__name__}"
        raise RunError(f"{path}: expected {key!r} to be a {kind.__name__}, found {found}")
    return value


def _config_of(record: dict, path: str) -> TrainConfig:
    raw = _entry(record, "config", path)
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise RunError(f"{path}: unknown config key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    try:
        config = TrainConfig(**{**raw, "hidden": tuple(raw.get("hidden", TrainConfig.hidden))})
        config.validate()
    except (TypeError, ValueError) as err:
        raise RunError(f"{path}: invalid config ({err})") from None
    return config


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run_data(record: dict, run_dir: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """The whole data set of a run, refused when it is a CSV file that changed since training."""
    path = os.path.join(run_dir, "run.json")
    config = _config_of(record, path)
    source = _entry(record, "data", path).get("source")
    if not config.dataset.startswith("csv:") or not isinstance(source, dict):
        return load_dataset(config.dataset, config.model == "cnn", config.seed)
    csv_path = source.get("path")
    if not isinstance(csv_path, str) or not os.path.isfile(csv_path):
        raise FileNotFoundError(f"{path}: the run was trained on {csv_path}, which no longer exists")
    if _file_sha256(csv_path) != source.get("sha256"):
        raise RunError(f"{csv_path}: changed since run {run_dir} was trained on it (its SHA-256 differs); "
                       "restore the file or train a new run")
    return load_dataset(f"csv:{csv_path}", config.model == "cnn", config.seed)


def _test_split(run_dir: str, record: dict) -> tuple[np.ndarray, np.ndarray]:
    """The run's held-out test examples (features before preprocessing, labels)."""
    from .. import io

    stored = os.path.join(run_dir, "test.safetensors")
    if os.path.exists(stored):
        tensors, _ = io.read_safetensors(stored)
        if set(tensors) != {"features", "targets"}:
            raise RunError(f"{stored}: expected tensors 'features' and 'targets', found {sorted(tensors)}")
        return tensors["features"], tensors["targets"]
    config = _config_of(record, os.path.join(run_dir, "run.json"))
    x, y, _ = _run_data(record, run_dir)
    parts = split_indices(len(x), config.test_split, config.val_split, config.seed)
    return x[parts["test"]], y[parts["test"]]


def _read_history(path: str) -> History:
    try:
        with open(path, encoding="utf-8") as f:
            return History.from_dict(json.load(f))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing; the run cannot be resumed without its history") from None
    except json.JSONDecodeError as err:
        raise RunError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno})") from None
    except (UnicodeDecodeError, AttributeError, TypeError, ValueError, RecursionError):
        raise RunError(f"{path}: not a history written by chainrule train") from None


def _load_run_model(run_dir: str):
    from .. import io

    path = os.path.join(run_dir, "model.safetensors")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing; the run folder {run_dir} is incomplete")
    return io.load_model(path)


def evaluate_run(run_dir: str) -> dict:
    """Rebuild a run's model and score it on the run's held-out test set."""
    from .fit import evaluate

    record = read_run(run_dir)
    path = os.path.join(run_dir, "run.json")
    config = _config_of(record, path)
    x, y = _test_split(run_dir, record)
    x = _preprocess(x, _entry(record, "preprocessing", path))
    y = one_hot_targets(config.loss, y, _entry(record, "data", path).get("n_classes"))
    model = _load_run_model(run_dir)
    return evaluate(model, (Tensor(x), Tensor(y)), loss=config.loss)


def predict_run(run_dir: str, csv_path: str, proba: bool = False) -> list:
    """Rows ``[index, class(, probabilities...)]`` (with a header row) for each example in a CSV file."""
    from ..ops.reduce import softmax
    from .fit import predict

    record = read_run(run_dir)
    path = os.path.join(run_dir, "run.json")
    config = _config_of(record, path)
    shape = _entry(_entry(record, "data", path), "input_shape", path, list)
    x = _read_feature_csv(csv_path, int(np.prod(shape)))
    x = _preprocess(x.reshape((len(x), *shape)) if config.model == "cnn" else x, _entry(record, "preprocessing", path))
    model = _load_run_model(run_dir)
    out = predict(model, Tensor(x))
    classes = out._data.argmax(axis=-1)
    header = ["index", "class"]
    rows = []
    probs = None
    if proba:  # a sigmoid head gives one probability per class: normalised to sum to 1
        probs = out._data / out._data.sum(axis=-1, keepdims=True) if head(record["config"]["loss"]) == "sigmoid" \
            else softmax(out, dim=-1)._data
    if proba:
        header += [f"p{k}" for k in range(out.shape[-1])]
    for i, c in enumerate(classes):
        row = [i, int(c)]
        if proba:
            row += [f"{p:.6f}" for p in probs[i]]
        rows.append(row)
    return [header, *rows]


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _read_feature_csv(path: str, n_features: int) -> np.ndarray:
    from ..data.datasets import read_table
    from ..errors import DataError

    table = read_table(path, who="predict")
    if table.shape[1] != n_features:
        raise ValueError(f"{path}: rows have {table.shape[1]} values, the model expects {n_features} features per row")
    bad = np.argwhere(~np.isfinite(table))
    if len(bad):
        row, col = (int(v) for v in bad[0])
        raise DataError(f"predict: {path}: data row {row + 1} has {table[row, col]} in column {col + 1}; every "
                        f"feature must be a finite number ({_rows(len(np.unique(bad[:, 0])))} like this)")
    return table.astype(np.float32)


def _check_options(config: TrainConfig) -> None:
    """The options the command's parser cannot check alone (the API gets the same messages)."""
    from ..errors import InvalidArgumentError

    if config.model == "cnn" and head(config.loss) is not None:
        raise InvalidArgumentError(f"--loss {config.loss} needs a {head(config.loss)} head, which --model cnn "
                                   "does not have; use --loss cross_entropy (or --model mlp)")
    loss_form(config.loss)
    if not (np.isfinite(config.weight_decay) and config.weight_decay >= 0):
        raise InvalidArgumentError(f"--weight-decay must be a finite number >= 0, got {config.weight_decay}")
    if config.lr is not None and not np.isfinite(config.lr):
        raise InvalidArgumentError(f"--lr must be a finite positive number, got {config.lr}")
