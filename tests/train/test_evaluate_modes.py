"""``cr.evaluate`` and ``cr.predict`` run the model in eval mode and hand it back in the mode it was in
(train or eval, submodule by submodule), also when the model raises halfway."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


class Probe(cr.nn.Module):
    """Records the mode it is called in; raises on the call number ``fail_at`` (1-based) if given."""

    def __init__(self, fail_at: int | None = None):
        super().__init__()
        self.seen: list[bool] = []
        self.fail_at = fail_at

    def forward(self, x):
        self.seen.append(self.training)
        if self.fail_at is not None and len(self.seen) == self.fail_at:
            raise ValueError("probe: planned failure")
        return x


def _model(fail_at=None):
    cr.manual_seed(0)
    return cr.nn.Sequential(cr.nn.Linear(2, 4), cr.nn.BatchNorm1d(4), cr.nn.Dropout(0.5), Probe(fail_at),
                            cr.nn.Linear(4, 2))


def _modes(model):
    return [m.training for m in model.modules()]


def _data(n=40):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 2)).astype(np.float32), rng.integers(0, 2, n)


def _evaluate(model, x, y):
    return cr.evaluate(model, (x, y), batch_size=16)


def _predict(model, x, y):
    return cr.predict(model, x, batch_size=16)


def _predict_loader(model, x, y):
    return cr.predict(model, cr.data.DataLoader(cr.data.TensorDataset(cr.tensor(x), cr.tensor(y)), batch_size=16))


RUNNERS = {"evaluate": _evaluate, "predict": _predict, "predict-loader": _predict_loader}
START = {
    "train": lambda m: m.train(),
    "eval": lambda m: m.eval(),
    # a model in train mode with a frozen BatchNorm (a common fine-tuning set-up)
    "mixed": lambda m: (m.train(), m[1].eval()),
}


@pytest.mark.parametrize("start", START)
@pytest.mark.parametrize("run", RUNNERS)
def test_the_model_runs_in_eval_mode_and_gets_its_modes_back(run, start):
    x, y = _data()
    model = _model()
    START[start](model)
    before = _modes(model)
    RUNNERS[run](model, x, y)
    probe = model[3]
    assert probe.seen == [False, False, False]  # 40 samples in batches of 16, all in eval mode
    assert _modes(model) == before


@pytest.mark.parametrize("start", START)
@pytest.mark.parametrize("run", RUNNERS)
def test_the_modes_come_back_when_the_model_raises(run, start):
    x, y = _data()
    model = _model(fail_at=2)
    START[start](model)
    before = _modes(model)
    with pytest.raises(ValueError, match="planned failure"):
        RUNNERS[run](model, x, y)
    assert model[3].seen == [False, False]
    assert _modes(model) == before


def test_evaluate_in_train_mode_does_not_update_batchnorm_statistics_or_drop_units():
    x, y = _data()
    model = _model().train()
    mean = model[1].running_mean.numpy().copy()
    first = cr.predict(model, x).numpy()
    scores = cr.evaluate(model, (x, y), metrics=())
    np.testing.assert_array_equal(model[1].running_mean.numpy(), mean)
    np.testing.assert_array_equal(cr.predict(model, x).numpy(), first)  # no dropout: deterministic
    assert np.isfinite(scores["loss"])
    assert model.training and all(_modes(model))
