"""EarlyStopping and ModelCheckpoint(save_best_only=True) on scripted validation curves.

The model trains for real (so its weights differ from epoch to epoch), but the validation loss or
accuracy that the callbacks monitor follows a script, so the epoch where training must stop and the
epoch whose weights must be kept are known in advance.
"""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import autograd


class ScriptedValidationLoss:
    """MSE while training (grad mode on); under ``evaluate`` (no grad) the next value of ``script``."""

    def __init__(self, script):
        self.script, self.calls = list(script), 0

    def __call__(self, output, target):
        if autograd.is_grad_enabled():
            return ((output - target) ** 2).mean()
        value = self.script[self.calls]
        self.calls += 1
        return cr.tensor(value, dtype=cr.float64)


def scripted_accuracy(script):
    """A metric named ``acc`` (so ``val_acc`` is maximised): 0 while training, the script in evaluate."""
    values = iter(script)

    def acc(output, target, **_):
        return 0.0 if autograd.is_grad_enabled() else next(values)

    return acc


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 2))
    return x, x @ np.array([[1.5], [-2.0]]) + 0.5


def _fit(loss, epochs, callbacks, metrics=()):
    """Train a Linear(2, 1) with SGD; returns the weights at the end of each epoch (1-based)."""
    cr.manual_seed(0)
    model = cr.nn.Linear(2, 1).double()
    seen = {}

    def remember(epoch, logs):
        seen[epoch] = {k: v.numpy().copy() for k, v in model.state_dict().items()}

    x, y = _data()
    history = cr.fit(model, (x, y), loss=loss, optimizer="sgd", lr=0.05, epochs=epochs, batch_size=8,
                     val_data=(x, y), metrics=metrics, shuffle=False, verbose=0,
                     callbacks=[cr.train.LambdaCallback(on_epoch_end=remember), *callbacks])
    for a, b in zip(seen.values(), list(seen.values())[1:]):
        assert not np.array_equal(a["weight"], b["weight"])  # every epoch's weights are its own
    return model, history, seen


# ---- EarlyStopping -----------------------------------------------------------------------------------

def keras_early_stopping(values, patience, min_delta=0.0, mode="min"):
    """Keras' rule, as a reference: ``(stopped_epoch or None, best_epoch)`` for a monitored sequence
    (epochs counted from 1).

    Keras keeps the best value seen so far. An epoch improves on it only if it beats it by more than
    ``min_delta`` (for ``mode='min'`` the value must be below best - min_delta, for ``'max'`` above
    best + min_delta; a tie is no improvement, the sign of min_delta is ignored). An improvement
    records the new best (and, with ``restore_best_weights``, a copy of the weights) and sets the wait
    count to zero; any other epoch adds one to it, and training ends after the epoch at which the count
    reaches ``patience``: that is, after exactly ``patience`` epochs in a row without improvement. The
    first epoch always improves on the initial best (+inf for min, -inf for max). With
    ``restore_best_weights`` the model ends with the weights of the best epoch (the first of equal
    bests), whether or not training stopped early.
    """
    best = np.inf if mode == "min" else -np.inf
    best_epoch, wait = None, 0
    delta = abs(min_delta)
    for epoch, value in enumerate(values, 1):
        improved = value < best - delta if mode == "min" else value > best + delta
        if improved:
            best, best_epoch, wait = value, epoch, 0
            continue
        wait += 1
        if wait >= patience:
            return epoch, best_epoch
    return None, best_epoch


# (values, patience, min_delta, monitor, expected (stopped_epoch, best_epoch)), worked out by hand
CASES = {
    "min-patience-3": ([5.0, 4.0, 3.0, 3.5, 3.25, 3.125, 3.75], 3, 0.0, "val_loss", (6, 3)),
    "min-patience-4": ([5.0, 4.0, 3.0, 3.5, 3.25, 3.125, 3.75], 4, 0.0, "val_loss", (7, 3)),
    "min-patience-1": ([3.0, 2.0, 2.5, 1.0], 1, 0.0, "val_loss", (3, 2)),
    "min-tie-is-no-improvement": ([2.0, 1.0, 1.0, 1.0, 0.5], 2, 0.0, "val_loss", (4, 2)),
    # min_delta=0.5: 3.5 is not below 4 - 0.5 (epoch 2), 3.25 is (epoch 3); 3.0 and 2.75 are not
    # below 3.25 - 0.5 (epochs 4, 5): the second epoch in a row without improvement stops
    "min-delta": ([4.0, 3.5, 3.25, 3.0, 2.75, 2.5], 2, 0.5, "val_loss", (5, 3)),
    "min-delta-sign-ignored": ([4.0, 3.5, 3.25, 3.0, 2.75, 2.5], 2, -0.5, "val_loss", (5, 3)),
    "min-no-delta-never-stops": ([4.0, 3.5, 3.25, 3.0, 2.75, 2.5], 2, 0.0, "val_loss", (None, 6)),
    "max-accuracy": ([0.5, 0.75, 0.75, 0.625, 0.875, 0.75, 0.75, 0.75], 3, 0.0, "val_acc", (8, 5)),
    "max-accuracy-patience-2": ([0.5, 0.75, 0.75, 0.625, 0.875, 0.75], 2, 0.0, "val_acc", (4, 2)),
    "max-delta": ([0.5, 0.625, 0.75, 0.8125, 0.875], 2, 0.125, "val_acc", (5, 3)),
}


def _monitored(monitor, values, epochs):
    """The scripted loss and metrics for ``fit``, monitored as ``monitor``."""
    if monitor == "val_loss":
        return ScriptedValidationLoss(values), ()
    return ScriptedValidationLoss([1.0] * epochs), (scripted_accuracy(values),)


@pytest.mark.parametrize("case", CASES)
def test_the_hand_worked_cases_agree_with_the_keras_rule(case):
    values, patience, min_delta, monitor, expected = CASES[case]
    assert keras_early_stopping(values, patience, min_delta, "min" if monitor == "val_loss" else "max") \
        == expected


@pytest.mark.parametrize("case", CASES)
def test_early_stopping_stops_after_exactly_patience_epochs_without_improvement(case):
    values, patience, min_delta, monitor, (stopped, best) = CASES[case]
    loss, metrics = _monitored(monitor, values, len(values))
    stop = cr.EarlyStopping(monitor=monitor, patience=patience, min_delta=min_delta)  # mode 'auto'
    model, history, seen = _fit(loss, len(values), [stop], metrics)
    assert stop.mode == ("min" if monitor == "val_loss" else "max")
    assert stop.stopped_epoch == stopped
    assert len(history.epochs) == (stopped or len(values))
    assert history[monitor] == values[: len(history.epochs)]
    assert stop.best_epoch == best
    # restore_best_weights (the default): the model ends with the best epoch's weights
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), seen[best][k], err_msg=k)


def test_without_restore_best_weights_the_model_keeps_its_last_weights():
    values, patience = [5.0, 4.0, 3.0, 3.5, 3.25, 3.125], 3
    stop = cr.EarlyStopping(patience=patience, restore_best_weights=False)
    model, history, seen = _fit(ScriptedValidationLoss(values), 10, [stop])
    assert stop.stopped_epoch == 6 and len(history.epochs) == 6
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), seen[6][k], err_msg=k)
    assert not np.array_equal(seen[6]["weight"], seen[3]["weight"])


def test_explicit_mode_overrides_the_name():
    values = [1.0, 2.0, 3.0, 2.5, 2.75]  # a loss-named value that we want to maximise
    stop = cr.EarlyStopping(monitor="val_loss", patience=2, mode="max")
    _fit(ScriptedValidationLoss(values), 5, [stop])
    assert (stop.stopped_epoch, stop.best_epoch) == (5, 3)


class _Trainer:
    def __init__(self):
        self.model = cr.nn.Linear(1, 1)
        self.stop_training = False


@pytest.mark.parametrize("mode", ["min", "max"])
@pytest.mark.parametrize("patience", [0, 1, 2, 5])
@pytest.mark.parametrize("min_delta", [0.0, 0.25])
def test_early_stopping_matches_the_keras_rule_on_random_curves(mode, patience, min_delta):
    rng = np.random.default_rng([patience, int(4 * min_delta), mode == "max"])
    for _ in range(50):
        values = list(np.round(rng.standard_normal(rng.integers(1, 15)) * 4) / 4)  # steps of 1/4: ties
        stop = cr.EarlyStopping(monitor="score", patience=patience, min_delta=min_delta, mode=mode)
        trainer = _Trainer()
        stop.on_train_begin(trainer)
        ran = 0
        for epoch, value in enumerate(values, 1):
            ran = epoch
            stop.on_epoch_end(epoch, {"score": value})
            if trainer.stop_training:
                break
        expected_stop, expected_best = keras_early_stopping(values, patience, min_delta, mode)
        assert (stop.stopped_epoch, stop.best_epoch) == (expected_stop, expected_best), values
        assert ran == (expected_stop or len(values))


# ---- ModelCheckpoint(save_best_only=True) ------------------------------------------------------------

CHECKPOINT_CASES = {
    # monitor, values, best epoch (strictly better than every earlier one; ties keep the earlier)
    "loss-min": ("val_loss", [3.0, 2.0, 2.5, 1.5, 1.5, 4.0, 1.75], 4),
    "loss-min-best-first": ("val_loss", [1.0, 2.0, 3.0, 4.0], 1),
    "loss-min-best-last": ("val_loss", [4.0, 3.0, 2.0, 1.0], 4),
    "accuracy-max": ("val_acc", [0.5, 0.875, 0.75, 0.875, 0.25, 0.625], 2),
    "accuracy-max-best-last": ("val_acc", [0.25, 0.5, 0.5, 0.75], 4),
}


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_model_checkpoint_save_best_only_keeps_the_best_epoch(case, tmp_path):
    monitor, values, best = CHECKPOINT_CASES[case]
    loss, metrics = _monitored(monitor, values, len(values))
    path = tmp_path / "best.safetensors"
    ckpt = cr.ModelCheckpoint(str(path), monitor=monitor, save_best_only=True)
    model, history, seen = _fit(loss, len(values), [ckpt], metrics)
    assert history[monitor] == values
    assert ckpt.best == values[best - 1]
    restored = cr.load_model(str(path), key="model")
    for k, v in restored.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), seen[best][k], err_msg=k)
    assert cr.io.load(str(path))["epoch"] == best


def test_model_checkpoint_writes_only_at_improvements(tmp_path):
    values = [3.0, 2.0, 2.5, 1.5, 1.5, 4.0]
    path = str(tmp_path / "ckpt-{epoch}.safetensors")
    _fit(ScriptedValidationLoss(values), len(values), [cr.ModelCheckpoint(path, save_best_only=True)])
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"ckpt-{e}.safetensors" for e in (1, 2, 4)]
