"""Post-accumulate-grad hooks on leaves: they fire during backward, once the leaf's .grad is final."""

import numpy as np
import pytest

import chainrule as cr


def test_hook_sees_the_final_accumulated_grad_once():
    w = cr.ones(3, requires_grad=True)
    seen = []
    handle = w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    (w * 2 + w * w).sum().backward()  # two paths into w: the hook waits for both
    (w * 5).sum().backward()          # accumulated: 4 + 5
    assert [s.tolist() for s in seen] == [[4.0] * 3, [9.0] * 3]
    handle.remove()
    (w * 1).sum().backward()
    assert len(seen) == 2
    assert not cr.autograd._leaf_hooks


class _Tap(cr.Function):
    """Identity whose backward notes when the walk reaches it (the bottom of the network)."""

    log: list = []

    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        _Tap.log.append("bottom")
        return (grad,)


def test_hooks_fire_during_backward_as_each_leaf_is_done():
    # The output layer's weight is finished long before the walk reaches the input: its hook must run
    # first, while the rest of the backward pass is still to come (this is what lets DDP overlap).
    cr.manual_seed(0)
    model = cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.Tanh(), cr.nn.Linear(4, 4), cr.nn.Tanh(), cr.nn.Linear(4, 2))
    order = _Tap.log
    order.clear()
    for name, p in model.named_parameters():
        p.register_post_accumulate_grad_hook(lambda t, name=name: order.append(name))
    x = cr.randn(5, 3, requires_grad=True)
    model(_Tap().apply(x)).sum().backward()
    assert order.index("4.weight") < order.index("2.weight") < order.index("0.weight") < order.index("bottom")
    assert len(order) == 7


def test_hooks_do_not_fire_for_cr_grad_and_need_a_leaf():
    x = cr.ones(2, requires_grad=True)
    fired = []
    x.register_post_accumulate_grad_hook(fired.append)
    (g,) = cr.grad((x * x).sum(), x)
    assert fired == [] and x.grad is None and g.tolist() == [2.0, 2.0]
    with pytest.raises(RuntimeError, match="only a leaf tensor that requires grad takes one"):
        (x * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match="only a leaf tensor that requires grad takes one"):
        cr.ones(2).register_post_accumulate_grad_hook(print)


def test_hooked_and_unhooked_backward_give_the_same_gradients():
    cr.manual_seed(1)
    model = cr.nn.MLP([4, 6, 3])
    x = cr.randn(7, 4)
    model(x).square().sum().backward()
    plain = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    for p in model.parameters():
        p.register_post_accumulate_grad_hook(lambda t: None)
    model(x).square().sum().backward()
    for a, p in zip(plain, model.parameters()):
        np.testing.assert_array_equal(a, p.grad.numpy())


def test_hooks_run_with_create_graph():
    x = cr.tensor([2.0], requires_grad=True)
    seen = []
    x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.item()))
    (x ** 3).sum().backward(create_graph=True)
    assert seen == [12.0] and x.grad.requires_grad
