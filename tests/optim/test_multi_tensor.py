"""Adam's whole-group update (one set of ufunc calls for a small group's concatenated parameters)
gives bitwise the per-parameter result, keeps every ``p._data`` the same array, and hands over to the
per-parameter code whenever a step does not qualify. SGD's chunked update of big parameters gives
bitwise the one-pass result."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.optim import adam, optimizer


def _model_and_batches(seed=0):
    cr.manual_seed(seed)
    model = cr.nn.MLP([5, 7, 3])
    rng = np.random.default_rng(seed)
    batches = [(cr.tensor(rng.standard_normal((4, 5)), dtype=cr.float32), cr.tensor(rng.integers(0, 3, 4)))
               for _ in range(6)]
    return model, batches


def _train(make_opt, flat: bool, skip_bias_at=None):
    model, batches = _model_and_batches()
    opt = make_opt(model.parameters())
    if not flat:
        opt._flat_step = lambda group: False
    arrays = [p._data for p in model.parameters()]
    for k, (x, y) in enumerate(batches):
        opt.zero_grad()
        cr.nn.functional.cross_entropy(model(x), y).backward()
        if k == skip_bias_at:
            model[0].bias.grad = None  # this step goes parameter by parameter; the step counts part
        opt.step()
    assert all(p._data is a for p, a in zip(model.parameters(), arrays))
    return [p.detach().numpy().copy() for p in model.parameters()], opt


@pytest.mark.parametrize("make_opt", [
    lambda ps: cr.optim.Adam(ps, lr=0.01),
    lambda ps: cr.optim.Adam(ps, lr=0.02, betas=(0.8, 0.99), eps=1e-6),
    lambda ps: cr.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
], ids=["Adam", "Adam-betas-eps", "AdamW"])
@pytest.mark.parametrize("skip_bias_at", [None, 2], ids=["every-step", "one-grad-missing"])
def test_group_update_is_bitwise_the_per_parameter_update(make_opt, skip_bias_at):
    flat, opt = _train(make_opt, flat=True, skip_bias_at=skip_bias_at)
    each, _ = _train(make_opt, flat=False, skip_bias_at=skip_bias_at)
    for a, b in zip(flat, each):
        np.testing.assert_array_equal(a, b)
    steps = sorted(state["step"] for state in opt.state.values())
    assert steps == ([6, 6, 6, 6] if skip_bias_at is None else [5, 6, 6, 6])


def test_moments_are_views_of_the_group_buffer_and_state_dict_copies_them():
    model, batches = _model_and_batches()
    opt = cr.optim.Adam(model.parameters(), lr=0.01)
    x, y = batches[0]
    cr.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    (flat,) = opt._flat.values()
    p = next(model.parameters())
    assert opt.state[p]["exp_avg"]._data.base is flat.exp_avg
    saved = opt.state_dict()
    assert saved["state"][0]["exp_avg"]._data.base is None
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"].numpy(), opt.state[p]["exp_avg"].numpy())


def test_a_loaded_state_moves_into_new_group_buffers():
    model, batches = _model_and_batches()
    opt = cr.optim.Adam(model.parameters(), lr=0.01)
    for x, y in batches[:3]:
        opt.zero_grad()
        cr.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    saved = opt.state_dict()
    before = [p.detach().numpy().copy() for p in model.parameters()]
    opt.load_state_dict(saved)  # replaces the state tensors: the group buffers are rebuilt from them
    x, y = batches[3]
    opt.zero_grad()
    cr.nn.functional.cross_entropy(model(x), y).backward()
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    opt.step()
    for p, theta, g, i in zip(model.parameters(), before, grads, range(len(before))):
        m = 0.9 * saved["state"][i]["exp_avg"].numpy() + 0.1 * g
        v = 0.999 * saved["state"][i]["exp_avg_sq"].numpy() + 0.001 * g * g
        expected = theta - 0.01 / (1 - 0.9**4) * m / (np.sqrt(v) / np.sqrt(1 - 0.999**4) + 1e-8)
        np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-5, atol=1e-7)
        assert opt.state[p]["exp_avg"]._data.base is opt._flat[id(opt.param_groups[0])].exp_avg


def test_large_groups_and_other_options_go_parameter_by_parameter(monkeypatch):
    monkeypatch.setattr(adam, "_FLAT_MAX_NUMEL", 10)
    model, batches = _model_and_batches()
    for opt in (cr.optim.Adam(model.parameters(), lr=0.01),
                cr.optim.Adam(model.parameters(), lr=0.01, amsgrad=True)):
        x, y = batches[0]
        opt.zero_grad()
        cr.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        assert not opt.__dict__.get("_flat")
        assert all(opt.state[p]["step"] == 1 for p in model.parameters())


@pytest.mark.parametrize("options", [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True),
], ids=["plain", "momentum", "dampening-decay", "nesterov-maximize"])
def test_sgd_chunked_update_of_a_big_parameter_is_bitwise_the_one_pass_update(monkeypatch, options):
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3 * 2**15 + 5,)).astype(np.float32).reshape(-1, 1)
    grads = [rng.standard_normal(start.shape).astype(np.float32) for _ in range(3)]

    def train(chunk):
        monkeypatch.setattr(optimizer, "_CHUNK", chunk)
        w = cr.nn.Parameter(cr.tensor(start.copy()))
        opt = cr.optim.SGD([w], **options)
        for g in grads:
            w.grad = cr.tensor(g)
            opt.step()
        return w.detach().numpy()

    chunked, whole = train(2**15), train(2**30)
    np.testing.assert_array_equal(chunked, whole)
    assert not np.array_equal(whole, start)
