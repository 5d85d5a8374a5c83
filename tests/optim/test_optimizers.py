"""The first-order optimizers: trajectories against torch.optim, options, state, zero_grad."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import requires_torch
from optim_problems import cr_mlp, mlp_arrays, torch_mlp

import chainrule as cr

# (name, options): every optimizer and its main option combinations
CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.5, weight_decay=0.1, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1, eps=1e-6)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.2, amsgrad=True)),
    ("AdamW", dict(lr=0.01, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True)),
    ("RMSprop", dict(lr=0.005, momentum=0.9, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.005, momentum=0.5, centered=True, eps=1e-4, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, initial_accumulator_value=0.2)),
    ("Adagrad", dict(lr=0.1, weight_decay=0.1, eps=1e-4, maximize=True)),
]


def _case_id(case):
    name, opts = case
    return name + "-" + ",".join(f"{k}={v}" for k, v in opts.items())


def run_cr(name, opts, steps=20, arrays=None, params_and_loss=None):
    params, loss_fn = params_and_loss or cr_mlp(arrays if arrays is not None else mlp_arrays())
    opt = getattr(cr.optim, name)(params, **opts)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return [p.detach().numpy().copy() for p in params], losses


def run_torch(name, opts, steps=20):
    import torch

    params, loss_fn = torch_mlp(mlp_arrays())
    opt = getattr(torch.optim, name)(params, **opts)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return [p.detach().numpy() for p in params], losses


@requires_torch
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_trajectory_matches_torch(case):
    name, opts = case
    mine, my_losses = run_cr(name, opts)
    theirs, their_losses = run_torch(name, opts)
    np.testing.assert_allclose(my_losses, their_losses, rtol=1e-5, atol=1e-5)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert not np.allclose(mine[0], mlp_arrays()["w1"])  # the parameters did move


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_descends_and_keeps_float32(name):
    params, loss_fn = cr_mlp(mlp_arrays(dtype=np.float32))
    opt = getattr(cr.optim, name)(
        params, lr=0.01, **({"momentum": 0.9} if name in ("SGD", "RMSprop") else {})
    )
    first = loss_fn().item()
    for _ in range(30):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    assert loss_fn().item() < first
    for p in params:
        assert p.dtype == np.float32
    for state in opt.state.values():
        for v in state.values():
            if isinstance(v, cr.Tensor):
                assert v.dtype == np.float32


def test_updates_parameters_in_place():
    params, loss_fn = cr_mlp(mlp_arrays())
    arrays = [p._data for p in params]
    opt = cr.optim.Adam(params, lr=0.1)
    loss_fn().backward()
    opt.step()
    assert all(p._data is a for p, a in zip(params, arrays))
    assert not np.allclose(arrays[0], mlp_arrays()["w1"])


def test_step_bumps_version_so_stale_graphs_refuse_backward():
    w = cr.nn.Parameter(cr.tensor([1.0, 2.0], dtype=cr.float64))
    opt = cr.optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    loss = (w * w).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()


def test_parameters_without_grad_are_skipped():
    a = cr.nn.Parameter(cr.tensor([1.0, 2.0]))
    b = cr.nn.Parameter(cr.tensor([3.0]))
    opt = cr.optim.Adam([a, b], lr=0.1)
    (a * a).sum().backward()
    opt.step()
    np.testing.assert_array_equal(b.detach().numpy(), [3.0])
    assert b not in opt.state


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    w = cr.nn.Parameter(cr.tensor([1.0, 2.0]))
    opt = cr.optim.SGD([w], lr=0.1)
    (w * 3).sum().backward()
    grad_array = w.grad._data
    opt.zero_grad(set_to_none=set_to_none)
    if set_to_none:
        assert w.grad is None
    else:
        assert w.grad._data is grad_array  # zeroed in place, same memory
        np.testing.assert_array_equal(w.grad.detach().numpy(), [0.0, 0.0])
    (w * 3).sum().backward()
    np.testing.assert_array_equal(w.grad.detach().numpy(), [3.0, 3.0])


def test_param_groups_with_different_lrs():
    a = cr.nn.Parameter(cr.tensor([1.0], dtype=cr.float64))
    b = cr.nn.Parameter(cr.tensor([1.0], dtype=cr.float64))
    opt = cr.optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0.0 and opt.param_groups[1]["lr"] == 0.5
    for _ in range(2):
        opt.zero_grad()
        (a * 2 + b * 2).sum().backward()
        opt.step()
    np.testing.assert_allclose(a.detach().numpy(), [1.0 - 0.2 - 0.2])
    np.testing.assert_allclose(b.detach().numpy(), [1.0 - 1.0 - (0.9 * 2 + 2) * 0.5])


@requires_torch
def test_param_groups_match_torch():
    import torch

    arrays = mlp_arrays()
    params, loss_fn = cr_mlp(arrays)
    tparams, tloss_fn = torch_mlp(arrays)
    groups = lambda ps: [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.001, "betas": (0.5, 0.9)}]  # noqa: E731
    opt = cr.optim.Adam(groups(params), lr=0.03)
    topt = torch.optim.Adam(groups(tparams), lr=0.03)
    for _ in range(10):
        for o, f in ((opt, loss_fn), (topt, tloss_fn)):
            o.zero_grad()
            f().backward()
            o.step()
    for p, q in zip(params, tparams):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_state_dict_resume_gives_identical_trajectory(case):
    name, opts = case
    full, _ = run_cr(name, opts, steps=12)

    params, loss_fn = cr_mlp(mlp_arrays())
    opt = getattr(cr.optim, name)(params, **opts)
    for _ in range(5):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    saved_opt = opt.state_dict()
    saved_params = [p.detach().numpy().copy() for p in params]
    # The saved state must not alias the live one.
    for _ in range(3):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()

    arrays = dict(mlp_arrays())
    arrays.update(w1=saved_params[0], b1=saved_params[1], w2=saved_params[2])
    params2, loss_fn2 = cr_mlp(arrays)
    opt2 = getattr(cr.optim, name)(params2, lr=123.0)
    opt2.load_state_dict(saved_opt)
    assert opt2.param_groups[0]["lr"] == opts["lr"]
    for _ in range(7):
        opt2.zero_grad()
        loss_fn2().backward()
        opt2.step()
    for a, b in zip(full, params2):
        np.testing.assert_array_equal(a, b.detach().numpy())


def test_state_dict_uses_indices_and_copies():
    params, loss_fn = cr_mlp(mlp_arrays())
    opt = cr.optim.SGD(params, lr=0.1, momentum=0.9)
    loss_fn().backward()
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0, 1, 2]
    assert set(sd["state"]) == {0, 1, 2}
    buf = sd["state"][0]["momentum_buffer"]
    assert buf._data is not opt.state[params[0]]["momentum_buffer"]._data


def test_load_state_dict_refuses_wrong_shapes_and_groups():
    params, loss_fn = cr_mlp(mlp_arrays())
    opt = cr.optim.Adam(params, lr=0.1)
    loss_fn().backward()
    opt.step()
    sd = opt.state_dict()
    other = cr.optim.Adam([cr.nn.Parameter(cr.zeros(2, 2)), params[1], params[2]])
    with pytest.raises(ValueError, match="exp_avg.*shape"):
        other.load_state_dict(sd)
    two_groups = cr.optim.Adam([{"params": params[:1]}, {"params": params[1:]}])
    with pytest.raises(ValueError, match="parameter groups"):
        two_groups.load_state_dict(sd)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: cr.optim.SGD(p, lr=-1), "Invalid learning rate: -1"),
        (lambda p: cr.optim.SGD(p, momentum=-0.1), "Invalid momentum value: -0.1"),
        (lambda p: cr.optim.SGD(p, weight_decay=-1), "Invalid weight_decay value: -1"),
        (
            lambda p: cr.optim.SGD(p, nesterov=True),
            "Nesterov momentum requires a momentum and zero dampening",
        ),
        (lambda p: cr.optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
        (lambda p: cr.optim.Adam(p, lr=-0.1), "Invalid learning rate"),
        (lambda p: cr.optim.Adam(p, betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
        (lambda p: cr.optim.Adam(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
        (lambda p: cr.optim.Adam(p, eps=-1e-8), "Invalid epsilon value"),
        (lambda p: cr.optim.AdamW(p, weight_decay=-0.1), "Invalid weight_decay value"),
        (lambda p: cr.optim.RMSprop(p, alpha=-0.5), "Invalid alpha value: -0.5"),
        (lambda p: cr.optim.RMSprop(p, momentum=-1), "Invalid momentum value"),
        (lambda p: cr.optim.RMSprop(p, eps=-1), "Invalid epsilon value"),
        (lambda p: cr.optim.Adagrad(p, lr_decay=-1), "Invalid lr_decay value: -1"),
        (lambda p: cr.optim.Adagrad(p, initial_accumulator_value=-1), "Invalid initial_accumulator_value"),
        (lambda p: cr.optim.Adagrad(p, eps=-1), "Invalid epsilon value"),
    ],
)
def test_bad_options_are_refused(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make([cr.nn.Parameter(cr.zeros(2))])


def test_bad_params_are_refused():
    w = cr.nn.Parameter(cr.zeros(2))
    with pytest.raises(TypeError, match="single Tensor"):
        cr.optim.SGD(w, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        cr.optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        cr.optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)


def test_closure_is_evaluated_with_grad_and_its_loss_returned():
    w = cr.nn.Parameter(cr.tensor([2.0], dtype=cr.float64))
    opt = cr.optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with cr.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 4.0
    np.testing.assert_allclose(w.detach().numpy(), [1.0])


def test_optimizer_and_scheduler_resume_through_a_checkpoint_file(tmp_path):
    # cr.save / cr.load carry the state dicts; the resumed run ends exactly where the straight one does
    def make(arrays):
        params, loss_fn = cr_mlp(arrays)
        opt = cr.optim.Adam(params, lr=0.05, amsgrad=True)
        return params, loss_fn, opt, cr.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)

    def train(params, loss_fn, opt, sched, steps):
        for _ in range(steps):
            opt.zero_grad()
            loss_fn().backward()
            opt.step()
            sched.step()

    params, loss_fn, opt, sched = make(mlp_arrays())
    train(params, loss_fn, opt, sched, 10)
    straight = [p.detach().numpy().copy() for p in params]

    params, loss_fn, opt, sched = make(mlp_arrays())
    train(params, loss_fn, opt, sched, 4)
    path = tmp_path / "ckpt.safetensors"
    weights = {k: p for k, p in zip(("w1", "b1", "w2"), params)}
    cr.save({"weights": weights, "optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, path)
    ckpt = cr.load(path)
    arrays = dict(mlp_arrays(), **{k: v.detach().numpy().copy() for k, v in ckpt["weights"].items()})
    params, loss_fn, opt, sched = make(arrays)
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    train(params, loss_fn, opt, sched, 6)
    for a, p in zip(straight, params):
        np.testing.assert_array_equal(a, p.detach().numpy())
