"""Losses: gradcheck (and second derivatives where smooth), agreement with torch.nn in every
reduction and option, stability, and the error messages."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import requires_torch
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
import chainrule.nn.functional as F

rng = np.random.default_rng(7)
N, C = 6, 5
LOGITS = rng.standard_normal((N, C)) * 2
INDICES = rng.integers(0, C, N)
INDICES_IGNORED = INDICES.copy()
INDICES_IGNORED[[1, 4]] = -100
PROBS = rng.dirichlet(np.ones(C), N)
CLASS_WEIGHT = rng.uniform(0.3, 2.0, C)
PROB_IN = rng.uniform(0.05, 0.95, (N, 3))
BIN_TARGET = rng.uniform(0, 1, (N, 3))
REG_IN = rng.standard_normal((N, 3)) * 2
REG_TARGET = rng.standard_normal((N, 3)) * 2
SPATIAL = rng.standard_normal((2, C, 3, 2))
SPATIAL_T = rng.integers(0, C, (2, 3, 2))


# (id, our class, torch class name, constructor kwargs, input, target, target is differentiable, smooth)
def _cases():
    cases = []
    for red in ("mean", "sum", "none"):
        cases += [
            (f"ce-{red}", "CrossEntropyLoss", {"reduction": red}, LOGITS, INDICES, False, True),
            (f"ce-weight-ignore-{red}", "CrossEntropyLoss",
             {"reduction": red, "weight": CLASS_WEIGHT, "ignore_index": -100}, LOGITS, INDICES_IGNORED, False, True),
            (f"ce-smooth-weight-{red}", "CrossEntropyLoss",
             {"reduction": red, "weight": CLASS_WEIGHT, "label_smoothing": 0.2}, LOGITS, INDICES_IGNORED, False,
             True),
            (f"ce-probs-{red}", "CrossEntropyLoss", {"reduction": red}, LOGITS, PROBS, True, True),
            (f"ce-probs-weight-smooth-{red}", "CrossEntropyLoss",
             {"reduction": red, "weight": CLASS_WEIGHT, "label_smoothing": 0.1}, LOGITS, PROBS, True, True),
            (f"ce-spatial-{red}", "CrossEntropyLoss", {"reduction": red, "weight": CLASS_WEIGHT}, SPATIAL, SPATIAL_T,
             False, True),
            (f"nll-{red}", "NLLLoss", {"reduction": red, "weight": CLASS_WEIGHT}, LOGITS, INDICES_IGNORED, False,
             True),
            (f"mse-{red}", "MSELoss", {"reduction": red}, REG_IN, REG_TARGET, True, True),
            (f"l1-{red}", "L1Loss", {"reduction": red}, REG_IN, REG_TARGET, True, False),
            (f"huber-{red}", "HuberLoss", {"reduction": red, "delta": 1.5}, REG_IN, REG_TARGET, True, False),
            (f"smoothl1-{red}", "SmoothL1Loss", {"reduction": red, "beta": 0.5}, REG_IN, REG_TARGET, True, False),
            (f"bce-{red}", "BCELoss", {"reduction": red}, PROB_IN, BIN_TARGET, True, True),
            (f"bce-weight-{red}", "BCELoss", {"reduction": red, "weight": rng.uniform(0.5, 2, 3)}, PROB_IN,
             BIN_TARGET, True, True),
            (f"bcelogits-{red}", "BCEWithLogitsLoss", {"reduction": red}, REG_IN, BIN_TARGET, True, True),
            (f"bcelogits-posweight-{red}", "BCEWithLogitsLoss",
             {"reduction": red, "pos_weight": rng.uniform(0.5, 3, 3), "weight": rng.uniform(0.5, 2, 3)}, REG_IN,
             BIN_TARGET, True, True),
            (f"margin-p1-{red}", "MultiMarginLoss", {"reduction": red}, LOGITS, INDICES, False, False),
            (f"margin-p2-weight-{red}", "MultiMarginLoss",
             {"reduction": red, "p": 2, "margin": 0.7, "weight": CLASS_WEIGHT}, LOGITS, INDICES, False, False),
        ]
    return cases


CASES = _cases()
IDS = [c[0] for c in CASES]
TENSOR_ARGS = ("weight", "pos_weight")


def _ours(name, kwargs):
    args = {k: (cr.tensor(v) if k in TENSOR_ARGS else v) for k, v in kwargs.items()}
    return getattr(cr.nn, name)(**args)


def _inputs(x, t, target_grad):
    xt = cr.tensor(x, requires_grad=True)
    tt = cr.tensor(t, requires_grad=target_grad) if np.asarray(t).dtype.kind == "f" else cr.tensor(t)
    return xt, tt


@pytest.mark.parametrize("cid, name, kwargs, x, t, target_grad, smooth", CASES, ids=IDS)
def test_loss_passes_gradcheck(cid, name, kwargs, x, t, target_grad, smooth):
    loss = _ours(name, kwargs).double()
    xt, tt = _inputs(x, t, target_grad)
    wrt = [xt, tt] if target_grad else [xt]
    cr.gradcheck(lambda a, b=tt: loss(a, b), wrt)
    if smooth and cid.endswith("sum"):
        cr.gradgradcheck(lambda a, b=tt: loss(a, b), wrt)


@requires_torch
@pytest.mark.parametrize("cid, name, kwargs, x, t, target_grad, smooth", CASES, ids=IDS)
def test_loss_matches_torch(cid, name, kwargs, x, t, target_grad, smooth):
    import torch

    loss = _ours(name, kwargs).double()
    tloss = getattr(torch.nn, name)(**{k: (torch.tensor(v) if k in TENSOR_ARGS else v) for k, v in kwargs.items()})
    xt, tt = _inputs(x, t, target_grad)
    xT = torch.tensor(x, requires_grad=True)
    tT = torch.tensor(t, requires_grad=target_grad)
    out, tout = loss(xt, tt), tloss(xT, tT)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = np.random.default_rng(1).standard_normal(out.shape)
    (out * cr.tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), xT.grad.numpy(), rtol=1e-10, atol=1e-13)
    if target_grad:
        np.testing.assert_allclose(tt.grad.numpy(), tT.grad.numpy(), rtol=1e-10, atol=1e-13)


@requires_torch
def test_loss_buffers_load_from_torch_state_dict():
    import torch

    tloss = torch.nn.CrossEntropyLoss(weight=torch.tensor(CLASS_WEIGHT))
    loss = cr.nn.CrossEntropyLoss(weight=cr.ones(C, dtype=cr.float64))
    loss.load_state_dict(tloss.state_dict())
    np.testing.assert_allclose(loss.weight.numpy(), CLASS_WEIGHT)
    assert list(cr.nn.BCEWithLogitsLoss(pos_weight=cr.ones(3)).state_dict()) == ["pos_weight"]


def test_cross_entropy_is_finite_for_huge_logits():
    logits = cr.tensor([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]], requires_grad=True)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        loss = F.cross_entropy(logits, cr.tensor([2, 1]))
        loss.backward()
    assert loss.item() == pytest.approx(1e4, rel=1e-6)  # (0 + 2e4) / 2
    np.testing.assert_allclose(logits.grad.numpy(), [[0.5, 0, -0.5], [0, 0, 0]], atol=1e-6)


def test_bce_with_logits_is_finite_at_plus_minus_1000():
    x = cr.tensor([-1000.0, 1000.0, -1000.0, 1000.0], requires_grad=True)
    t = cr.tensor([1.0, 0.0, 0.0, 1.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
        loss.sum().backward()
    np.testing.assert_allclose(loss.detach().numpy(), [1000.0, 1000.0, 0.0, 0.0])
    np.testing.assert_allclose(x.grad.numpy(), [-1.0, 1.0, 0.0, 0.0])


def test_bce_clamps_log_at_minus_100():
    loss = F.binary_cross_entropy(cr.tensor([0.0, 1.0]), cr.tensor([1.0, 0.0]), reduction="none")
    np.testing.assert_allclose(loss.numpy(), [100.0, 100.0])


def test_cross_entropy_mean_over_all_ignored_targets_is_nan_like_torch():
    loss = F.cross_entropy(cr.randn(2, 3), cr.tensor([-100, -100]))
    assert np.isnan(loss.item())


def test_cross_entropy_names_the_bad_class_index_and_the_number_of_classes():
    with pytest.raises(IndexError, match="target class index 7 is out of range for 5 classes"):
        cr.nn.CrossEntropyLoss()(cr.randn(3, 5), cr.tensor([0, 7, 1]))
    with pytest.raises(IndexError, match="target class index -1 is out of range for 5 classes"):
        F.cross_entropy(cr.randn(3, 5), cr.tensor([0, -1, 1]))
    with pytest.raises(IndexError, match="index 5 is out of range for 5 classes"):
        F.nll_loss(cr.randn(3, 5), cr.tensor([5, 0, 1]))


def test_cross_entropy_rejects_misshapen_targets():
    with pytest.raises(ValueError, match=r"target of shape \(4,\) does not fit input of shape \(3, 5\)"):
        F.cross_entropy(cr.randn(3, 5), cr.tensor([0, 1, 2, 3]))
    with pytest.raises(TypeError, match="class-index targets must be integers"):
        F.cross_entropy(cr.randn(3, 5), cr.tensor([True, False, True]))


@pytest.mark.parametrize("loss", [cr.nn.MSELoss(), cr.nn.L1Loss(), cr.nn.BCELoss(), cr.nn.BCEWithLogitsLoss(),
                                  cr.nn.HuberLoss()])
def test_target_shape_mismatch_names_both_shapes(loss):
    with pytest.raises(ValueError, match=r"target shape \(4, 1\) does not match input shape \(4,\)"):
        loss(cr.rand(4), cr.rand(4, 1))


def test_bad_reduction_and_bce_input_range_are_refused():
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        cr.nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match=r"input must hold probabilities in \[0, 1\]"):
        F.binary_cross_entropy(cr.tensor([1.5]), cr.tensor([1.0]))


def test_mse_loss_value_by_hand():
    loss = cr.nn.MSELoss()(cr.tensor([1.0, 2.0, 4.0]), cr.tensor([1.0, 0.0, 1.0]))
    assert loss.item() == pytest.approx((0 + 4 + 9) / 3)


@requires_torch
@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 5), c=st.integers(1, 6), extra=st.sampled_from([(), (3,), (2, 2)]),
    use_weight=st.booleans(), smoothing=st.sampled_from([0.0, 0.15]), ignore=st.booleans(),
    reduction=st.sampled_from(["mean", "sum", "none"]), seed=st.integers(0, 2**16),
)
def test_cross_entropy_agrees_with_torch_on_any_shape(n, c, extra, use_weight, smoothing, ignore, reduction, seed):
    import torch

    r = np.random.default_rng(seed)
    logits = r.standard_normal((n, c) + extra) * 3
    target = r.integers(0, c, (n,) + extra)
    if ignore:
        target[r.random(target.shape) < 0.3] = -100
    weight = r.uniform(0.2, 2.0, c) if use_weight else None
    x = cr.tensor(logits, requires_grad=True)
    xt = torch.tensor(logits, requires_grad=True)
    out = F.cross_entropy(x, cr.tensor(target), None if weight is None else cr.tensor(weight),
                          reduction=reduction, label_smoothing=smoothing)
    tout = torch.nn.functional.cross_entropy(xt, torch.tensor(target), None if weight is None else torch.tensor(weight),
                                             reduction=reduction, label_smoothing=smoothing)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    if np.isfinite(tout.detach().numpy()).all():
        out.sum().backward()
        tout.sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
