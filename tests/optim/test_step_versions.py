"""Every optimizer's ``step()`` records its in-place change of each parameter it moves (the version
counter, as in PyTorch), so that a graph built before the step and backpropagated after it raises
the in-place error instead of silently using the new values; a parameter it leaves alone keeps its
version (its old graphs stay valid)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.optim import optimizer as optimizer_module

optim = cr.optim

FIRST_ORDER = {
    "SGD": lambda ps: optim.SGD(ps, lr=0.1),
    "SGD-momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    "SGD-momentum-dampening": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.5),
    "SGD-nesterov": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "SGD-weight-decay-maximize": lambda ps: optim.SGD(ps, lr=0.1, weight_decay=0.1, maximize=True),
    "Adam": lambda ps: optim.Adam(ps, lr=0.1),  # small group: the flat (whole-group) path
    "Adam-amsgrad": lambda ps: optim.Adam(ps, lr=0.1, amsgrad=True),  # per-parameter path
    "Adam-L2": lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1),  # per-parameter path
    "Adam-maximize": lambda ps: optim.Adam(ps, lr=0.1, maximize=True),  # per-parameter path
    "AdamW": lambda ps: optim.AdamW(ps, lr=0.1),  # flat path with decoupled decay
    "Adam-two-groups": lambda ps: optim.Adam([{"params": ps[:1]}, {"params": ps[1:], "amsgrad": True}],
                                             lr=0.1),  # one group flat, one per parameter
    "RMSprop": lambda ps: optim.RMSprop(ps, lr=0.01),
    "RMSprop-momentum-centered": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, centered=True),
    "RMSprop-weight-decay": lambda ps: optim.RMSprop(ps, lr=0.01, weight_decay=0.1),
    "Adagrad": lambda ps: optim.Adagrad(ps, lr=0.1),
    "Adagrad-weight-decay": lambda ps: optim.Adagrad(ps, lr=0.1, weight_decay=0.1, lr_decay=0.01),
}

CLOSURE = {
    "LBFGS": lambda ps: optim.LBFGS(ps, lr=1, max_iter=5),
    "LBFGS-strong-wolfe": lambda ps: optim.LBFGS(ps, lr=1, max_iter=5, line_search_fn="strong_wolfe"),
    "LBFGS-one-iteration": lambda ps: optim.LBFGS(ps, lr=0.1, max_iter=1),
    "ConjugateGradient": lambda ps: optim.ConjugateGradient(ps, max_iter=5),
    "ConjugateGradient-no-line-search": lambda ps: optim.ConjugateGradient(ps, lr=0.01, max_iter=3,
                                                                           line_search_fn=None),
    "Newton-exact": lambda ps: optim.Newton(ps, method="exact"),
    "Newton-cg": lambda ps: optim.Newton(ps, method="cg"),
}


def _params(shapes=((3,), (2, 2)), seed=0):
    rng = np.random.default_rng(seed)
    return [cr.nn.Parameter(cr.tensor(rng.standard_normal(s), dtype=cr.float64)) for s in shapes]


def _loss(ps):
    """Smooth, not quadratic, minimum away from the start: every method moves every parameter."""
    return sum((((p - 0.5) ** 4).sum() + (p * p).sum()) for p in ps)


def _stale_graphs(ps):
    """One graph per parameter that saved it (mul saves its inputs for backward)."""
    return [(p * p).sum() for p in ps]


def _check(ps, stale, before, versions, untouched=()):
    for k, (p, graph, old, version) in enumerate(zip(ps, stale, before, versions)):
        if k in untouched:
            np.testing.assert_array_equal(p.detach().numpy(), old)
            assert p._version[0] == version, f"parameter {k} was not changed but its version moved"
            graph.backward()  # its saved values are still the current ones
            continue
        assert not np.array_equal(p.detach().numpy(), old), f"parameter {k} did not move"
        assert p._version[0] > version, f"parameter {k} changed in place but its version did not move"
        with pytest.raises(RuntimeError, match="modified by an in-place operation"):
            graph.backward()


def _snapshot(ps):
    return [p.detach().numpy().copy() for p in ps], [p._version[0] for p in ps]


@pytest.mark.parametrize("one_without_grad", [False, True], ids=["all-grads", "one-without-grad"])
@pytest.mark.parametrize("name", FIRST_ORDER)
def test_first_order_step_bumps_versions_of_what_it_changes(name, one_without_grad):
    """With every gradient present a small Adam group takes the flat path; with one missing, the
    per-parameter path (which skips the parameter without a gradient)."""
    ps = _params(((3,), (2, 2), (2,)))
    opt = FIRST_ORDER[name](ps)
    trained = ps[:2] if one_without_grad else ps
    for _ in range(3):  # the first step and later ones (momentum buffers, moments) take other paths
        opt.zero_grad(set_to_none=True)
        _loss(trained).backward()
        stale = _stale_graphs(ps)
        before, versions = _snapshot(ps)
        opt.step()
        _check(ps, stale, before, versions, untouched=(2,) if one_without_grad else ())


def test_the_adam_flat_path_is_the_one_under_test():
    ps = _params()
    opt = optim.Adam(ps, lr=0.1)
    taken = []
    flat_step = opt._flat_step
    opt._flat_step = lambda group: taken.append(flat_step(group)) or taken[-1]
    _loss(ps).backward()
    stale = _stale_graphs(ps)
    before, versions = _snapshot(ps)
    opt.step()
    assert taken == [True]
    _check(ps, stale, before, versions)


def test_sgd_chunked_update_of_a_big_parameter_bumps_its_version():
    n = 2 * optimizer_module._CHUNK + 7  # big enough for the chunked update
    p = cr.nn.Parameter(cr.tensor(np.linspace(-1, 1, n), dtype=cr.float64))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    for _ in range(2):
        opt.zero_grad()
        _loss([p]).backward()
        stale = _stale_graphs([p])
        before, versions = _snapshot([p])
        opt.step()
        _check([p], stale, before, versions)


@pytest.mark.parametrize("name", CLOSURE)
def test_closure_step_bumps_versions_of_what_it_changes(name):
    ps = _params()
    opt = CLOSURE[name](ps)

    def closure():
        opt.zero_grad()
        loss = _loss(ps)
        loss.backward()
        return loss

    stale = _stale_graphs(ps)
    before, versions = _snapshot(ps)
    opt.step(closure)
    _check(ps, stale, before, versions)


@pytest.mark.parametrize("name", CLOSURE)
def test_a_step_that_leaves_the_parameters_alone_keeps_their_versions(name):
    """At the minimum (gradient zero) there is nothing to do: no parameter moves, old graphs stay valid."""
    ps = [cr.nn.Parameter(cr.tensor(np.zeros(s), dtype=cr.float64)) for s in ((3,), (2, 2))]
    opt = CLOSURE[name](ps)

    def closure():
        opt.zero_grad()
        loss = sum((p * p).sum() for p in ps)
        loss.backward()
        return loss

    stale = _stale_graphs(ps)
    before, versions = _snapshot(ps)
    opt.step(closure)
    _check(ps, stale, before, versions, untouched=(0, 1))
