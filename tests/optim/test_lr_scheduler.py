"""Learning-rate schedulers: lr sequences against torch.optim.lr_scheduler, order, state_dict."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import requires_torch

import chainrule as cr
from chainrule.optim import lr_scheduler

METRICS = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.97, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.4, 0.41, 0.42, 0.43]


def _warmup(epoch):
    return min(1.0, (epoch + 1) / 5) * 0.95**epoch


# (scheduler name, options, optimizer name, optimizer options, steps)
CASES = [
    ("StepLR", dict(step_size=3), "SGD", dict(lr=0.1), 12),
    ("StepLR", dict(step_size=2, gamma=0.5), "Adam", dict(lr=0.01), 9),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3), "SGD", dict(lr=1.0), 12),
    ("ExponentialLR", dict(gamma=0.9), "SGD", dict(lr=0.5), 10),
    ("CosineAnnealingLR", dict(T_max=5), "SGD", dict(lr=0.1), 23),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01), "Adam", dict(lr=0.2), 30),
    ("LambdaLR", dict(lr_lambda=_warmup), "SGD", dict(lr=0.3), 12),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=20), "SGD", dict(lr=0.1, momentum=0.9), 19),
    ("OneCycleLR", dict(max_lr=0.5, epochs=4, steps_per_epoch=5, pct_start=0.25), "Adam", dict(lr=0.1), 20),
    (
        "OneCycleLR",
        dict(max_lr=[0.2], total_steps=15, anneal_strategy="linear", three_phase=True, div_factor=10.0),
        "SGD",
        dict(lr=0.1, momentum=0.8),
        15,
    ),
    ("OneCycleLR", dict(max_lr=0.2, total_steps=10, cycle_momentum=False), "Adagrad", dict(lr=0.1), 10),
    ("ReduceLROnPlateau", dict(patience=2), "SGD", dict(lr=1.0), len(METRICS)),
    (
        "ReduceLROnPlateau",
        dict(
            mode="max", factor=0.5, patience=1, threshold=0.05, threshold_mode="abs", cooldown=2, min_lr=0.1
        ),
        "SGD",
        dict(lr=1.0),
        len(METRICS),
    ),
]


def _case_id(case):
    return f"{case[0]}-{','.join(f'{k}={v}' for k, v in case[1].items() if k != 'lr_lambda')}"


def _lr_sequence(lib, case):
    name, opts, opt_name, opt_opts, steps = case
    if lib is cr:
        w = cr.nn.Parameter(cr.zeros(2))
    else:
        w = lib.nn.Parameter(lib.zeros(2))
    opt = getattr(lib.optim, opt_name)([w], **opt_opts)
    sched = getattr(lib.optim.lr_scheduler, name)(opt, **opts)
    lrs = [(sched.get_last_lr()[0], _momentum(opt))]
    for i in range(steps):
        opt.step()
        sched.step(METRICS[i]) if name == "ReduceLROnPlateau" else sched.step()
        lrs.append((sched.get_last_lr()[0], _momentum(opt)))
        assert opt.param_groups[0]["lr"] == sched.get_last_lr()[0]
    return np.array(lrs)


def _momentum(opt):
    group = opt.param_groups[0]
    return group["betas"][0] if "betas" in group else group.get("momentum", 0.0)


@requires_torch
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_lr_sequence_matches_torch(case):
    import torch

    mine = _lr_sequence(cr, case)
    theirs = _lr_sequence(torch, case)
    np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-15)
    assert len(set(mine[:, 0])) > 1  # the schedule did change the lr


def test_step_lr_values_without_torch():
    w = cr.nn.Parameter(cr.zeros(1))
    opt = cr.optim.SGD([w], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(5):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    np.testing.assert_allclose(lrs, [1.0, 1.0, 0.1, 0.1, 0.01, 0.01])


def test_cosine_annealing_follows_the_closed_form_within_a_period():
    w = cr.nn.Parameter(cr.zeros(1))
    opt = cr.optim.SGD([w], lr=0.4)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.1)
    for t in range(1, 11):
        opt.step()
        sched.step()
        expected = 0.1 + 0.5 * (0.4 - 0.1) * (1 + math.cos(math.pi * t / 10))
        assert sched.get_last_lr()[0] == pytest.approx(expected, rel=1e-12)


def test_param_groups_get_their_own_schedules():
    a, b = cr.nn.Parameter(cr.zeros(1)), cr.nn.Parameter(cr.zeros(1))
    opt = cr.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    sched = lr_scheduler.LambdaLR(opt, [lambda e: 1.0 / (e + 1), lambda e: 2.0**e])
    opt.step()
    sched.step()
    opt.step()
    sched.step()
    assert sched.get_last_lr() == pytest.approx([0.1 / 3, 0.5 * 4])
    assert [g["initial_lr"] for g in opt.param_groups] == [0.1, 0.5]


def test_warns_when_scheduler_steps_before_optimizer():
    opt = cr.optim.SGD([cr.nn.Parameter(cr.zeros(1))], lr=0.1)
    sched = lr_scheduler.StepLR(opt, step_size=1)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    opt2 = cr.optim.SGD([cr.nn.Parameter(cr.zeros(1))], lr=0.1)
    sched2 = lr_scheduler.StepLR(opt2, step_size=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt2.step()
        sched2.step()


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_state_dict_resume_gives_the_same_lrs(case):
    name, opts, opt_name, opt_opts, steps = case
    full = _lr_sequence(cr, case)

    def make():
        w = cr.nn.Parameter(cr.zeros(2))
        opt = getattr(cr.optim, opt_name)([w], **opt_opts)
        return opt, getattr(lr_scheduler, name)(opt, **opts)

    opt, sched = make()
    half = steps // 2
    for i in range(half):
        opt.step()
        sched.step(METRICS[i]) if name == "ReduceLROnPlateau" else sched.step()
    opt_state, sched_state = opt.state_dict(), sched.state_dict()

    opt2, sched2 = make()  # fresh objects, as after a restart: construct, then load
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    assert sched2.get_last_lr() == sched.get_last_lr()
    lrs = []
    for i in range(half, steps):
        opt2.step()
        sched2.step(METRICS[i]) if name == "ReduceLROnPlateau" else sched2.step()
        lrs.append((sched2.get_last_lr()[0], _momentum(opt2)))
    np.testing.assert_allclose(np.array(lrs), full[half + 1 :], rtol=1e-12)


def test_lambda_lr_state_dict_saves_callable_objects_not_functions():
    class Decay:
        def __init__(self, rate):
            self.rate = rate

        def __call__(self, epoch):
            return self.rate**epoch

    opt = cr.optim.SGD([cr.nn.Parameter(cr.zeros(1))], lr=1.0)
    sched = lr_scheduler.LambdaLR(opt, [Decay(0.5)])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [{"rate": 0.5}]
    other = lr_scheduler.LambdaLR(cr.optim.SGD([cr.nn.Parameter(cr.zeros(1))], lr=1.0), [Decay(0.9)])
    other.load_state_dict(sd)
    assert other.lr_lambdas[0].rate == 0.5
    sched_fn = lr_scheduler.LambdaLR(opt, lambda e: 1.0)
    assert sched_fn.state_dict()["lr_lambdas"] == [None]


def test_step_with_epoch_uses_closed_form_and_warns():
    opt = cr.optim.SGD([cr.nn.Parameter(cr.zeros(1))], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    opt.step()
    with pytest.warns(UserWarning, match="deprecated"):
        sched.step(7)
    assert sched.get_last_lr() == [0.125]


def test_bad_arguments_are_refused():
    opt = cr.optim.SGD([cr.nn.Parameter(cr.zeros(1))], lr=1.0, momentum=0.9)
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=1)
    with pytest.raises(ValueError, match="step_size must be a positive integer"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.ExponentialLR(cr.optim.SGD([cr.nn.Parameter(cr.zeros(1))], lr=1.0), 0.9, last_epoch=3)
    with pytest.raises(ValueError, match="total_steps OR"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="anneal_strategy"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=5, anneal_strategy="step")
    with pytest.raises(ValueError, match="must support momentum"):
        lr_scheduler.OneCycleLR(cr.optim.Adagrad([cr.nn.Parameter(cr.zeros(1))]), max_lr=0.1, total_steps=5)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=2.0)
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'"):
        lr_scheduler.ReduceLROnPlateau(opt, mode="best")
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas, but got 2"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1, lambda e: 2])
    sched = lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=2)
    opt.step()
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        sched.step()
