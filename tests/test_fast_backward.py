"""The first-order fast paths (``Function.backward_array``) agree with the Tensor-op backward.

Without ``create_graph`` the engine calls an op's ``backward_array`` (plain NumPy); with it, the
differentiable ``backward``. Every row of the op table in test_ops_gradcheck.py, plus the rows below
(activations and losses), is differentiated both ways and the gradients compared; a last check makes
sure every op that has a fast path is reached by some row.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_ops_gradcheck import OPS, Op, make_inputs, normal

import chainrule as cr
import chainrule.nn.functional as F
from chainrule.ops.function import Function

TARGETS = np.array([2, 0, 4, 1, 3, 0])
IGNORED = np.array([2, -100, 4, 1, -100, 0])
IGNORED_IN_RANGE = np.array([2, 3, 4, 1, 3, 0])  # ignore_index=3 drops rows 1 and 4
PROBS = np.random.default_rng(5).dirichlet(np.ones(5), 6)
BINARY = np.random.default_rng(6).uniform(0, 1, (4, 3))

EXTRA = [
    Op("leaky_relu", lambda m, a: F.leaky_relu(a, 0.1), normal((3, 4))),
    Op("elu", lambda m, a: F.elu(a, 1.7), normal((3, 4))),
    Op("silu", lambda m, a: F.silu(a), normal((3, 4))),
    Op("softplus", lambda m, a: F.softplus(a), normal((3, 4))),
    Op("softplus_threshold", lambda m, a: F.softplus(a * 3.0, beta=2.0, threshold=3.0), normal((3, 4))),
    Op("logsigmoid", lambda m, a: F.logsigmoid(a), normal((3, 4))),
    Op("cross_entropy", lambda m, a: F.cross_entropy(a * 2.0, cr.tensor(TARGETS)), normal((6, 5))),
    Op("cross_entropy_ignored", lambda m, a: F.cross_entropy(a, cr.tensor(IGNORED)), normal((6, 5))),
    Op("cross_entropy_ignore_in_range",
       lambda m, a: F.cross_entropy(a, cr.tensor(IGNORED_IN_RANGE), ignore_index=3), normal((6, 5))),
    Op("cross_entropy_weight_sum",
       lambda m, a, w: F.cross_entropy(a, cr.tensor(IGNORED), weight=w.detach(), reduction="sum"),
       lambda rng: [rng.standard_normal((6, 5)), rng.uniform(0.5, 2, 5)]),
    Op("cross_entropy_none_smoothing",
       lambda m, a: F.cross_entropy(a, cr.tensor(TARGETS), reduction="none", label_smoothing=0.2), normal((6, 5))),
    Op("cross_entropy_probs", lambda m, a, t: F.cross_entropy(a, t.softmax(dim=1), label_smoothing=0.1),
       normal((6, 5), (6, 5))),
    Op("bce_with_logits", lambda m, a, t: F.binary_cross_entropy_with_logits(a, t.sigmoid()), normal((4, 3), (4, 3))),
    Op("bce_with_logits_weights",
       lambda m, a, t: F.binary_cross_entropy_with_logits(a, t.sigmoid(), weight=cr.tensor(BINARY),
                                                          pos_weight=cr.tensor([0.5, 2.0, 3.0]), reduction="sum"),
       normal((4, 3), (4, 3))),
]
ROWS = OPS + EXTRA


def _outputs(op: Op, xs) -> list:
    out = op.fn(cr, *xs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _both_ways(op: Op, seed: int = 3):
    """(gradients by the fast paths, gradients by the Tensor-op backward) for the same inputs."""
    xs = make_inputs(op, seed=seed)
    outs = _outputs(op, xs)
    rng = np.random.default_rng(seed)
    seeds = [cr.tensor(rng.standard_normal(o.shape)) for o in outs]
    fast = cr.grad(outs, xs, grad_outputs=seeds, allow_unused=True, retain_graph=True)
    slow = cr.grad(outs, xs, grad_outputs=seeds, create_graph=True, allow_unused=True)
    return fast, slow


@pytest.mark.parametrize("op", ROWS, ids=[op.name for op in ROWS])
def test_fast_path_matches_the_tensor_backward(op):
    fast, slow = _both_ways(op)
    for f, s in zip(fast, slow):
        assert (f is None) == (s is None)
        if f is not None:
            assert f.shape == s.shape and f.dtype == s.dtype
            np.testing.assert_allclose(f.numpy(), s.detach().numpy(), rtol=1e-12, atol=1e-14)


def _node_types(op: Op) -> set:
    xs = make_inputs(op)
    stack = [o._node for o in _outputs(op, xs) if o._node is not None]
    seen = set()
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(p for p in node.parents if p is not None)
    return {type(n) for n in seen}


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_fast_path_is_compared_by_some_row():
    with_fast_path = {c for c in _subclasses(Function) if c.backward_array is not None
                      and c.__module__.startswith("chainrule.")}
    reached = set().union(*(_node_types(op) for op in ROWS))
    missing = sorted(c.__name__ for c in with_fast_path - reached)
    assert not missing, f"ops with a backward_array that no row exercises: {missing}"


def test_first_order_backward_does_not_call_the_tensor_backward(monkeypatch):
    from chainrule.ops import linalg, loss

    def refuse(self, grad):
        raise AssertionError("the Tensor-op backward ran in a first-order backward")

    for cls in (linalg.Linear, loss.ClassIndexCrossEntropy, cr.ops.elementwise.Relu):
        monkeypatch.setattr(cls, "backward", refuse)
    cr.manual_seed(0)
    model = cr.nn.MLP([4, 8, 3])
    x = cr.tensor(np.random.default_rng(0).standard_normal((5, 4)), dtype=cr.float32)
    F.cross_entropy(model(x), cr.tensor([0, 2, 1, 1, 0])).backward()
    assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all() for p in model.parameters())
    with pytest.raises(AssertionError, match="Tensor-op backward"):
        F.cross_entropy(model(x), cr.tensor([0, 2, 1, 1, 0])).backward(create_graph=True)


def test_fused_class_index_cross_entropy_equals_the_general_node():
    """No weight, no smoothing, mean: the fused node; all-ones weights force the general one."""
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((7, 4)).astype(np.float32) * 3
    for target, ignore in (([0, 3, 1, 1, 2, 0, 3], -100), ([0, 3, -100, 1, 2, -100, 3], -100),
                           ([0, 3, 1, 1, 2, 0, 3], 1)):
        t = cr.tensor(target)
        x1, x2 = cr.tensor(logits, requires_grad=True), cr.tensor(logits, requires_grad=True)
        fused = F.cross_entropy(x1, t, ignore_index=ignore)
        general = F.cross_entropy(x2, t, weight=cr.ones(4), ignore_index=ignore)
        assert type(fused._node).__name__ == "ClassIndexCrossEntropy"
        assert type(general._node).__name__ == "CrossEntropy"
        assert fused.dtype == cr.float32
        np.testing.assert_allclose(fused.item(), general.item(), rtol=1e-6)
        fused.backward()
        general.backward()
        np.testing.assert_allclose(x1.grad.numpy(), x2.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_fused_cross_entropy_keeps_its_own_copy_of_the_targets():
    x = cr.tensor([[1.0, 2.0, 0.5], [0.1, -1.0, 2.0]], requires_grad=True)
    target = np.array([1, 2])
    loss = F.cross_entropy(x, cr.from_numpy(target))
    target[:] = 0  # changing the caller's array after the forward must not change the gradient
    loss.backward()
    e = np.exp(x.detach().numpy())
    softmax = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(x.grad.numpy(), (softmax - np.eye(3)[[1, 2]]) / 2, rtol=1e-6)


def test_linear_output_is_its_own_array_so_in_place_ops_record_normally():
    """Linear computes y = (W x^T)^T into a column-major array: not a view, so y += 1 is allowed."""
    layer = cr.nn.Linear(3, 2).double()
    x = cr.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    y = layer(x)
    assert y._data.base is None and y._data.flags.f_contiguous
    y += 1.0
    (y * y).sum().backward()
    w, b = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    expected = 2 * (x.detach().numpy() @ w.T + b + 1.0)
    np.testing.assert_allclose(x.grad.numpy(), expected @ w, rtol=1e-12)
    np.testing.assert_allclose(layer.weight.grad.numpy(), expected.T @ x.detach().numpy(), rtol=1e-12)
    assert layer.weight.grad._data.flags.c_contiguous


def test_a_subclass_that_rewrites_backward_does_not_inherit_the_fast_path():
    from chainrule.ops.elementwise import Relu

    class HalfRelu(Relu):  # same forward, a different (made-up) derivative
        def backward(self, grad):
            return (grad * 0.5,)

    x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    HalfRelu().apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.5, 0.5, 0.5])
    assert HalfRelu.backward_array is None and Relu.backward_array is not None
