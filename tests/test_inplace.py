"""In-place updates (issue 8): the operators and methods, PyTorch's rules for leaves and saved
tensors, ``.data`` and ``.grad`` assignment, and the lecture's hand-written training loop."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

try:
    import torch
except ImportError:
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch (test oracle) is not installed")

DATA = [[1.5, -2.0, 0.25], [3.0, -0.5, 4.0]]

INPLACE = [
    ("iadd_tensor", lambda t, o: t.__iadd__(o)),
    ("isub_scalar", lambda t, o: t.__isub__(0.5)),
    ("imul_tensor", lambda t, o: t.__imul__(o)),
    ("itruediv_scalar", lambda t, o: t.__itruediv__(4.0)),
    ("add_alpha", lambda t, o: t.add_(o, alpha=2.0)),
    ("sub_", lambda t, o: t.sub_(o)),
    ("mul_scalar", lambda t, o: t.mul_(3.0)),
    ("div_tensor", lambda t, o: t.div_(o)),
    ("zero_", lambda t, o: t.zero_()),
    ("fill_", lambda t, o: t.fill_(7.5)),
    ("copy_", lambda t, o: t.copy_(o)),
    ("clamp_", lambda t, o: t.clamp_(min=-1.0, max=2.0)),
    ("clamp_min_only", lambda t, o: t.clamp_(min=0.0)),
]
IDS = [name for name, _ in INPLACE]
OTHER = [2.0, -4.0, 0.5]  # broadcast along the rows


@requires_torch
@pytest.mark.parametrize("case", INPLACE, ids=IDS)
def test_inplace_values_match_torch_and_keep_identity(case):
    _, fn = case
    t, tt = cr.tensor(DATA), torch.tensor(DATA)
    memory = t._data
    out = fn(t, cr.tensor(OTHER))
    tout = fn(tt, torch.tensor(OTHER))
    assert out is t and tout is tt  # the method returns the tensor itself
    assert t._data is memory  # ... and wrote into its memory
    np.testing.assert_allclose(t.numpy(), tt.numpy())
    assert t.dtype == cr.float32


@requires_torch
@pytest.mark.parametrize("case", INPLACE, ids=IDS)
def test_inplace_on_a_leaf_that_requires_grad_under_no_grad(case):
    _, fn = case
    w, tw = cr.tensor(DATA, requires_grad=True), torch.tensor(DATA, requires_grad=True)
    with cr.no_grad():
        fn(w, cr.tensor(OTHER))
    with torch.no_grad():
        fn(tw, torch.tensor(OTHER))
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy())
    assert w.requires_grad and w.is_leaf and w.grad_fn is None


@requires_torch
@pytest.mark.parametrize("case", INPLACE, ids=IDS)
def test_inplace_on_a_non_leaf_backpropagates_like_torch(case):
    """h = x * 1.5 (saves nothing of h), changed in place, then used: the gradient flows through."""
    _, fn = case
    x, tx = cr.tensor(DATA, dtype=cr.float64, requires_grad=True), torch.tensor(DATA, dtype=torch.float64,
                                                                                 requires_grad=True)
    o, to = cr.tensor(OTHER, dtype=cr.float64, requires_grad=True), torch.tensor(OTHER, dtype=torch.float64,
                                                                                  requires_grad=True)
    h, th = x + 1.5, tx + 1.5
    fn(h, o)
    fn(th, to)
    ((h * h).sum() + o.sum()).backward()
    ((th * th).sum() + to.sum()).backward()
    np.testing.assert_allclose(h.detach().numpy(), th.detach().numpy())
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())
    np.testing.assert_allclose(o.grad.numpy(), to.grad.numpy())


@requires_torch
def test_chained_inplace_ops_on_a_non_leaf_match_torch():
    def run(lib):
        x = lib.tensor([1.0, 2.0], dtype=lib.float64, requires_grad=True)
        b = lib.tensor([3.0, 4.0], dtype=lib.float64, requires_grad=True)
        h = x * 1
        h.mul_(b)  # backward needs the old h: it must not see the new values
        h.exp_()
        h.sum().backward()
        return x.grad.numpy(), b.grad.numpy()

    for ours, theirs in zip(run(cr), run(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("case", INPLACE, ids=IDS)
def test_inplace_on_a_leaf_that_requires_grad_outside_no_grad_raises(case):
    name, fn = case
    w = cr.tensor(DATA, requires_grad=True, name="w")
    before = w.detach().numpy().copy()
    with pytest.raises(RuntimeError, match=r"a leaf tensor that requires grad \('w'\) is being used in an "
                                           r"in-place operation; wrap the update in `with cr.no_grad\(\):`"):
        fn(w, cr.tensor(OTHER))
    np.testing.assert_array_equal(w.detach().numpy(), before)  # nothing was written


def test_the_error_names_the_inplace_op():
    w = cr.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"^-=: a leaf tensor"):
        w -= 1.0
    with pytest.raises(RuntimeError, match=r"^clamp_: a leaf tensor"):
        w.clamp_(0.0, 1.0)


@pytest.mark.parametrize("op,change", [
    ("exp", lambda y: y.add_(1.0)),
    ("sigmoid", lambda y: y.mul_(2.0)),
    ("tanh", lambda y: y.zero_()),
    ("relu", lambda y: y.clamp_(max=0.5)),
])
def test_changing_a_saved_output_then_backward_names_the_op(op, change):
    x = cr.tensor([0.5, 1.0], requires_grad=True)
    y = getattr(x * 1.0, op)()
    change(y)
    with pytest.raises(RuntimeError, match=f"backward: the output of {op} was modified by an in-place operation"):
        y.sum().backward()


@pytest.mark.parametrize("op,fn", [
    ("log", lambda h: h.log()),
    ("mul", lambda h: h * h),
    ("sin", lambda h: h.sin()),
    ("matmul", lambda h: h @ h),
    ("div", lambda h: 1.0 / h),
])
def test_changing_a_saved_input_then_backward_names_the_op(op, fn):
    x = cr.tensor([0.5, 1.0], requires_grad=True)
    h = x * 1.0
    y = fn(h)
    h += 1.0
    with pytest.raises(RuntimeError, match=f"backward: an input of {op} was modified by an in-place operation "
                                           r"after it was saved for backward \(version 1, expected 0\)"):
        y.sum().backward()


def test_changing_a_tensor_that_no_backward_reads_is_fine():
    x = cr.tensor([0.5, 1.0], requires_grad=True)
    h = x * 2.0
    y = h + 3.0  # add saves nothing
    h.mul_(10.0)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_version_counter_counts_inplace_changes_and_is_shared_by_views():
    t = cr.zeros(2, 3)
    v = t.view(6)
    assert t._version[0] == 0
    t += 1.0
    t.mul_(2.0)
    v.add_(1.0)
    assert t._version[0] == v._version[0] == 3
    np.testing.assert_array_equal(t.numpy(), np.full((2, 3), 3.0))
    assert t.detach()._version is t._version


def test_inplace_through_a_view_changes_the_base_under_no_grad():
    w = cr.zeros(2, 3, requires_grad=True)
    with cr.no_grad():
        w[0].add_(1.0)
        w[:, 1].fill_(5.0)
    np.testing.assert_array_equal(w.detach().numpy(), [[1.0, 5.0, 1.0], [0.0, 5.0, 0.0]])


def test_inplace_on_a_view_of_a_tensor_that_requires_grad_is_refused_with_grad_on():
    x = cr.ones(2, 3, requires_grad=True)
    h = x * 1.0
    with pytest.raises(RuntimeError, match=r"add_: in-place change of a view \(a slice, reshape, ...\) with a "
                                           "result that requires grad is not supported"):
        h[0].add_(1.0)
    buffer = cr.zeros(2, 3)
    with pytest.raises(RuntimeError, match="mul_: in-place change of a view"):
        buffer[1].mul_(x[0])  # the buffer itself would not know that it now depends on x
    buffer[1] = x[0]  # assignment into the tensor itself is fine
    buffer.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])


def test_inplace_int_tensor_with_float_result_is_refused():
    t = cr.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="result type float32 can't be cast to int64"):
        t *= 1.5
    t += 2
    assert t.tolist() == [3, 4, 5] and t.dtype == cr.int64


def test_copy_checks_shape_and_casts():
    t = cr.zeros(2, 3)
    with pytest.raises(RuntimeError, match=r"copy_: source of shape \(4,\) cannot be broadcast to \(2, 3\)"):
        t.copy_(cr.ones(4))
    t.copy_(cr.tensor([1, 2, 3]))
    assert t.dtype == cr.float32
    np.testing.assert_array_equal(t.numpy(), [[1, 2, 3], [1, 2, 3]])
    t.copy_(np.full((2, 3), 9.0))
    assert t.numpy().max() == 9.0


@requires_torch
def test_setitem_matches_torch_values_and_gradients():
    def run(lib):
        x = lib.tensor(DATA, dtype=lib.float64, requires_grad=True)
        v = lib.tensor([10.0, 20.0], dtype=lib.float64, requires_grad=True)
        h = x * 2.0
        h[:, 1] = v
        h[0, 0] = 0.0
        (h * h).sum().backward()
        return h.detach().numpy(), x.grad.numpy(), v.grad.numpy()

    for ours, theirs in zip(run(cr), run(torch)):
        np.testing.assert_allclose(ours, theirs)


# ---- .data and .grad ------------------------------------------------------------------------------
def test_data_shares_memory_and_has_no_history():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    d = w.data
    assert not d.requires_grad and d.is_leaf
    d.mul_(3.0)  # allowed: .data is outside the graph
    np.testing.assert_array_equal(w.detach().numpy(), [3.0, 6.0])
    assert w.requires_grad


def test_data_setter_replaces_the_values_and_keeps_requires_grad():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    w.data = cr.tensor([5.0, 6.0])
    assert w.requires_grad and w.is_leaf
    np.testing.assert_array_equal(w.detach().numpy(), [5.0, 6.0])
    w.data = np.zeros(2, dtype=np.float32)
    (w * 2.0).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0])


@requires_torch
def test_data_inplace_update_matches_torch():
    w, tw = cr.tensor(DATA, requires_grad=True), torch.tensor(DATA, requires_grad=True)
    (w * w).sum().backward()
    (tw * tw).sum().backward()
    w.data -= 0.1 * w.grad
    tw.data -= 0.1 * tw.grad
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=1e-6)
    assert w.requires_grad and w.is_leaf


def test_grad_can_be_set_to_none_or_assigned():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    (w * 3.0).sum().backward()
    w.grad = None
    assert w.grad is None
    (w * 3.0).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [3.0, 3.0])
    w.grad = cr.tensor([1.0, 1.0])
    (w * 3.0).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [4.0, 4.0])


# ---- the lecture's hand-written training loop --------------------------------------------------
def _moons():
    sklearn = pytest.importorskip("sklearn.datasets")
    x, y = sklearn.make_moons(n_samples=120, noise=0.1, random_state=0)
    return cr.tensor(x, dtype=cr.float64), cr.tensor(y.reshape(-1, 1), dtype=cr.float64)


def _init_params():
    rng = np.random.default_rng(0)
    shapes = [(2, 16), (16,), (16, 1), (1,)]
    return [rng.standard_normal(s) * (0.5 if len(s) == 2 else 0.0) for s in shapes]


def _loss(params, x, y):
    """Two-layer net (tanh hidden layer, sigmoid output) and binary cross-entropy."""
    w1, b1, w2, b2 = params
    p = ((x @ w1 + b1).tanh() @ w2 + b2).sigmoid()
    return -(y * p.log() + (1.0 - y) * (1.0 - p).log()).mean()


def _train(update, steps=60, lr=0.5):
    x, y = _moons()
    params = [cr.nn.Parameter(cr.tensor(a)) for a in _init_params()]
    handles = list(params)
    losses = []
    for _ in range(steps):
        loss = _loss(params, x, y)
        losses.append(loss.item())
        for p in params:
            p.grad = None
        loss.backward()
        update(params, lr)
    assert all(p is h for p, h in zip(params, handles))  # updated in place, never rebound
    return [p.detach().numpy().copy() for p in params], losses


def _no_grad_update(params, lr):
    with cr.no_grad():
        for p in params:
            p -= lr * p.grad


def _data_update(params, lr):
    for p in params:
        p.data -= lr * p.grad


def _reference_update(params, lr):
    """The update rule with plain arrays: w <- w - lr * grad."""
    for p in params:
        p._data = p._data - lr * p.grad._data


def test_hand_written_loop_with_no_grad_and_with_data_matches_the_reference_update():
    reference, ref_losses = _train(_reference_update)
    for update in (_no_grad_update, _data_update):
        params, losses = _train(update)
        for p, r in zip(params, reference):
            np.testing.assert_allclose(p, r, atol=1e-6, rtol=0)
        np.testing.assert_allclose(losses, ref_losses, atol=1e-6)


def test_hand_written_loop_matches_sgd():
    reference, _ = _train(_no_grad_update)
    optimizers = []

    def sgd_update(params, lr):
        if not optimizers:
            optimizers.append(cr.optim.SGD(params, lr=lr))
        optimizers[0].step()

    params, _ = _train(sgd_update)
    for p, r in zip(params, reference):
        np.testing.assert_allclose(p, r, atol=1e-6, rtol=0)


def test_hand_written_loop_learns_the_moons():
    params, losses = _train(_no_grad_update, steps=300, lr=1.0)
    assert losses[-1] < 0.5 * losses[0]
    x, y = _moons()
    with cr.no_grad():
        w1, b1, w2, b2 = (cr.tensor(p) for p in params)
        pred = ((x @ w1 + b1).tanh() @ w2 + b2).sigmoid() > 0.5
    accuracy = (pred.numpy() == (y.numpy() > 0.5)).mean()
    assert accuracy > 0.85


@requires_torch
def test_hand_written_loop_matches_torch():
    ours, _ = _train(_no_grad_update, steps=20)
    x, y = _moons()
    tx, ty = torch.tensor(x.numpy()), torch.tensor(y.numpy())
    params = [torch.tensor(a, requires_grad=True) for a in _init_params()]
    for _ in range(20):
        loss = _loss(params, tx, ty)
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= 0.5 * p.grad
    for p, t in zip(ours, params):
        np.testing.assert_allclose(p, t.detach().numpy(), atol=1e-10)


def test_rebinding_instead_of_updating_in_place_is_not_silent():
    """`p = p - lr * p.grad` outside no_grad makes p a non-leaf: the next backward gives it no grad."""
    p = cr.tensor([1.0], requires_grad=True)
    (p * p).sum().backward()
    p = p - 0.1 * p.grad
    assert not p.is_leaf
    (p * p).sum().backward()
    assert p.grad is None


def test_inplace_with_itself_as_the_operand_gives_the_out_of_place_gradient():
    """x.mul_(x) reads the old x twice (PyTorch refuses this one; the values say what it means)."""

    def run(inplace: bool):
        x = cr.tensor([1.5, -2.0], dtype=cr.float64, requires_grad=True)
        h = x * 1.0
        if inplace:
            h.mul_(h)
            h += h
        else:
            h = h * h
            h = h + h
        h.sum().backward()
        return h.detach().numpy(), x.grad.numpy()

    for ours, expected in zip(run(True), run(False)):
        np.testing.assert_allclose(ours, expected)
    np.testing.assert_allclose(run(True)[1], [6.0, -8.0])  # d(2 x^2)/dx = 4x


# ---- load_state_dict copies in place (issue 8; nn/module.py is the nn helper's) -------------------
def test_load_state_dict_copies_into_the_existing_parameters():
    model = cr.nn.Linear(3, 2)
    weight, bias = model.weight, model.bias
    optimizer = cr.optim.SGD(model.parameters(), lr=0.5)
    model.load_state_dict({"weight": np.ones((2, 3)), "bias": cr.tensor([0.5, -0.5], dtype=cr.float64)})
    assert model.weight is weight and model.bias is bias  # same objects: the optimizer still holds them
    assert weight.dtype == cr.float32 and bias.dtype == cr.float32  # cast into the parameters' dtype
    np.testing.assert_array_equal(weight.detach().numpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(bias.detach().numpy(), [0.5, -0.5])
    model(cr.ones(1, 3)).sum().backward()
    optimizer.step()
    np.testing.assert_allclose(weight.detach().numpy(), np.full((2, 3), 0.5))
    np.testing.assert_allclose(bias.detach().numpy(), [0.0, -1.0])


def test_load_state_dict_checks_shapes():
    model = cr.nn.Linear(3, 2)
    before = model.weight.detach().numpy().copy()
    with pytest.raises(ValueError, match=r"size mismatch for 'weight': the checkpoint has shape \(3, 3\), "
                                         r"the model has \(2, 3\)"):
        model.load_state_dict({"weight": np.ones((3, 3)), "bias": np.zeros(2)})
    np.testing.assert_array_equal(model.weight.detach().numpy(), before)
