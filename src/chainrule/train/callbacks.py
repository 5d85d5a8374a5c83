"""Callbacks: code that runs at fixed points of ``fit`` (early stopping, checkpoints, lr schedules).

A callback overrides any of the hooks below. ``on_train_begin`` receives the :class:`Trainer`, which
gives access to ``model``, ``optimizer``, ``history`` and the ``stop_training`` flag.
"""

from __future__ import annotations

import math

import numpy as np


class Callback:
    """Base class: every hook does nothing."""

    trainer = None

    def on_train_begin(self, trainer) -> None:
        self.trainer = trainer

    def on_epoch_begin(self, epoch: int, logs: dict) -> None:
        pass

    def on_batch_begin(self, step: int, logs: dict) -> None:
        pass

    def on_after_backward(self, step: int, logs: dict) -> None:
        """Gradients of this step are in ``.grad``; the optimizer has not stepped yet."""

    def on_batch_end(self, step: int, logs: dict) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, logs: dict) -> None:
        pass


def _monitor_value(logs: dict, monitor: str, who: str) -> float:
    if monitor not in logs:
        raise KeyError(f"{who}: the monitored value {monitor!r} is not logged; available: {sorted(logs)}")
    return float(logs[monitor])


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; with
    ``restore_best_weights`` the model gets back the weights of its best epoch."""

    def __init__(self, monitor: str = "val_loss", patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = True):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, abs(min_delta)
        self.restore_best_weights = restore_best_weights
        self.mode = mode if mode != "auto" else ("max" if "acc" in monitor else "min")
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_state = None
        self.wait = 0
        self.stopped_epoch = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs):
        value = _monitor_value(logs, self.monitor, "EarlyStopping")
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_state = {k: v._data.copy() for k, v in self.trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True

    def on_train_end(self, logs):
        if self.restore_best_weights and self.best_state is not None:
            self.trainer.model.load_state_dict(self.best_state)


class ModelCheckpoint(Callback):
    """Save the model (and optimizer state) after each epoch, or only when ``monitor`` improves."""

    def __init__(self, path: str, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto",
                 save_optimizer: bool = True):
        self.path, self.monitor, self.save_best_only = path, monitor, save_best_only
        self.mode = mode if mode != "auto" else ("max" if "acc" in monitor else "min")
        self.best = math.inf if self.mode == "min" else -math.inf
        self.save_optimizer = save_optimizer

    def on_epoch_end(self, epoch, logs):
        model = self.trainer.model
        group = getattr(model, "_group", None) if hasattr(model, "reducer") else None
        if group is not None:  # DistributedDataParallel: rank 0 alone writes, the bare model
            if group.rank != 0:
                return
            model = model.module
        if self.save_best_only:
            value = _monitor_value(logs, self.monitor, "ModelCheckpoint")
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        from ..io import save

        bundle = {"model": model, "epoch": epoch}
        if self.save_optimizer and self.trainer.optimizer is not None:
            bundle["optimizer"] = self.trainer.optimizer.state_dict()
        save(bundle, self.path.format(**{**logs, "epoch": epoch}))


class LearningRateScheduler(Callback):
    """Change the learning rate at each epoch: ``schedule`` is either a function
    ``(epoch, lr) -> new lr`` or a ``cr.optim.lr_scheduler`` object (stepped once per epoch;
    ReduceLROnPlateau is stepped with ``monitor``)."""

    def __init__(self, schedule, monitor: str = "val_loss"):
        self.schedule, self.monitor = schedule, monitor

    def on_epoch_begin(self, epoch, logs):
        if callable(self.schedule) and not hasattr(self.schedule, "step"):
            for group in self.trainer.optimizer.param_groups:
                group["lr"] = float(self.schedule(epoch, group["lr"]))

    def on_epoch_end(self, epoch, logs):
        if hasattr(self.schedule, "step"):
            if type(self.schedule).__name__ == "ReduceLROnPlateau":
                self.schedule.step(_monitor_value(logs, self.monitor, "LearningRateScheduler"))
            else:
                self.schedule.step()


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, **hooks):
        for name, fn in hooks.items():
            if not hasattr(Callback, name):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stop (without raising) as soon as a step's loss is NaN or infinite."""

    def on_batch_end(self, step, logs):
        if not np.isfinite(logs.get("loss", 0.0)):
            self.trainer.stop_training = True
