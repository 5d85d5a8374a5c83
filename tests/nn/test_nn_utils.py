"""cr.nn.utils: penalties, gradient clipping (against torch), flat parameter vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import requires_torch

import chainrule as cr
from chainrule.nn import utils


def _params_with_grads(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    params = [cr.nn.Parameter(cr.tensor(rng.standard_normal(s))) for s in [(3, 4), (4,), (2, 2)]]
    for p in params:
        p.grad = cr.tensor(rng.standard_normal(p.shape) * scale)
    return params


def test_penalties_are_lambda_times_omega_and_differentiable():
    model = cr.nn.Linear(3, 2).double()
    w, b = model.weight.detach().numpy(), model.bias.detach().numpy()
    l1 = utils.l1_penalty(model, 0.1)
    l2 = utils.l2_penalty([model.weight], 0.5)
    assert l1.item() == pytest.approx(0.1 * (np.abs(w).sum() + np.abs(b).sum()))
    assert l2.item() == pytest.approx(0.5 * (w**2).sum())
    l2.backward()
    np.testing.assert_allclose(model.weight.grad.numpy(), 2 * 0.5 * w)  # the weight-decay step
    cr.gradcheck(lambda w: utils.l1_penalty([w], 0.3) + utils.l2_penalty([w], 0.2), [model.weight])


@requires_torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    import torch

    params = _params_with_grads()
    tparams = [torch.tensor(p.detach().numpy(), requires_grad=True) for p in params]
    for p, tp in zip(params, tparams):
        tp.grad = torch.tensor(p.grad.numpy())
    total = utils.clip_grad_norm_(params, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm, norm_type)
    assert total.item() == pytest.approx(ttotal.item(), rel=1e-12)
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_scales_to_max_norm_and_reports_the_norm_before():
    params = _params_with_grads(scale=10.0)
    before = math.sqrt(sum((p.grad.numpy() ** 2).sum() for p in params))
    total = utils.clip_grad_norm_(params, 1.0)
    assert total.item() == pytest.approx(before)
    after = math.sqrt(sum((p.grad.numpy() ** 2).sum() for p in params))
    assert after == pytest.approx(1.0, rel=1e-5)
    assert utils.clip_grad_norm_([cr.nn.Parameter(cr.zeros(2))], 1.0).item() == 0.0  # no grads


def test_clip_grad_norm_error_if_nonfinite():
    params = _params_with_grads()
    params[0].grad._data[0, 0] = np.inf
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is non-finite"):
        utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    assert math.isinf(utils.clip_grad_norm_(params, 1.0).item())


def test_clip_grad_value_clamps_each_entry():
    params = _params_with_grads(scale=3.0)
    utils.clip_grad_value_(params, 0.5)
    for p in params:
        assert np.abs(p.grad.numpy()).max() <= 0.5
    assert any((np.abs(p.grad.numpy()) == 0.5).any() for p in params)


def test_parameters_to_vector_and_back():
    model = cr.nn.MLP([3, 4, 2]).double()
    vec = utils.parameters_to_vector(model.parameters())
    assert vec.shape == (model.num_parameters(),)
    weight = model[0].weight
    utils.vector_to_parameters(vec * 2, model.parameters())
    assert model[0].weight is weight  # updated in place
    np.testing.assert_allclose(utils.parameters_to_vector(model.parameters()).detach().numpy(),
                               2 * vec.detach().numpy())
    with pytest.raises(ValueError, match=r"expected a vector of 26 entries .* got shape \(3,\)"):
        utils.vector_to_parameters(cr.zeros(3), model.parameters())
    with pytest.raises(TypeError, match="expected a Tensor, got list"):
        utils.vector_to_parameters([1.0], model.parameters())
