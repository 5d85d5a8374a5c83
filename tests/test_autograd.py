"""The graph walk: the lecture's worked examples, accumulation, cr.grad, grad modes, deep chains and
higher-order derivatives."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def test_lecture_example_x_plus_y_times_z():
    x, y, z = (cr.tensor(v, requires_grad=True) for v in (1.0, -3.0, 4.0))
    q = x + y
    f = q * z
    assert f.item() == -8.0
    f.backward()
    assert (x.grad.item(), y.grad.item(), z.grad.item()) == (4.0, 4.0, -2.0)
    assert x.grad.dtype == cr.float32


def test_sigmoid_neuron_built_from_exp_add_reciprocal_matches_closed_form():
    """f = 1 / (1 + exp(-(w0 x0 + w1 x1 + b))): the graph of primitive nodes gives sigma(1 - sigma) x."""
    values = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "b": -3.0}
    t = {k: cr.tensor(v, dtype=cr.float64, requires_grad=True) for k, v in values.items()}
    dot = t["w0"] * t["x0"] + t["w1"] * t["x1"] + t["b"]
    f = (cr.exp(-dot) + 1.0).reciprocal()
    f.backward()
    z = values["w0"] * values["x0"] + values["w1"] * values["x1"] + values["b"]
    s = 1.0 / (1.0 + np.exp(-z))
    local = s * (1.0 - s)
    assert f.item() == pytest.approx(s)
    assert t["w0"].grad.item() == pytest.approx(local * values["x0"])
    assert t["x0"].grad.item() == pytest.approx(local * values["w0"])
    assert t["w1"].grad.item() == pytest.approx(local * values["x1"])
    assert t["x1"].grad.item() == pytest.approx(local * values["w1"])
    assert t["b"].grad.item() == pytest.approx(local)
    # the lecture's numbers: w0 -> -0.2, x0 -> 0.39, w1 -> -0.39, x1 -> -0.59, b -> 0.2
    np.testing.assert_allclose([t[k].grad.item() for k in ("w0", "x0", "w1", "x1")],
                               [-0.196612, 0.393224, -0.393224, -0.589836], atol=1e-6)
    # and the fused op agrees with the graph of primitives
    t2 = {k: cr.tensor(v, dtype=cr.float64, requires_grad=True) for k, v in values.items()}
    cr.sigmoid(t2["w0"] * t2["x0"] + t2["w1"] * t2["x1"] + t2["b"]).backward()
    for k in values:
        assert t2[k].grad.item() == pytest.approx(t[k].grad.item(), rel=1e-12)


def test_value_used_twice_sums_its_gradients():
    x = cr.tensor(3.0, requires_grad=True)
    y = x * x + x  # dy/dx = 2x + 1
    y.backward()
    assert x.grad.item() == 7.0


def test_diamond_graph_sums_paths():
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    a = x.exp()
    b = a * 2.0
    c = a.sin()
    (b + c).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([1.0, 2.0]) * (2.0 + np.cos(np.exp([1.0, 2.0]))))


def test_grad_accumulates_across_backward_calls_until_zeroed():
    w = cr.tensor([1.0, -2.0], requires_grad=True)
    for _ in range(3):
        (w * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 3 * 2 * np.array([1.0, -2.0]))
    w.grad = None
    (w * 5.0).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [5.0, 5.0])
    w.grad.zero_()
    (w * 1.0).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [1.0, 1.0])


def test_leaf_grad_owns_its_memory():
    """Gradients handed to leaves must not alias each other or the seed (a + b sends one array to both)."""
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad += 10.0
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0])
    (a + b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [12.0, 12.0])
    np.testing.assert_allclose(b.grad.numpy(), [2.0, 2.0])


def test_backward_with_gradient_argument_for_non_scalar():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.backward(cr.tensor([1.0, 0.5, -1.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0, -6.0])


def test_graph_can_be_walked_twice_with_retain_graph():
    x = cr.tensor(2.0, requires_grad=True)
    y = x**3
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == 24.0


def test_a_second_backward_through_a_released_graph_raises_naming_retain_graph():
    """As in PyTorch: the first backward releases the graph; walking it again is an error, not a
    silently doubled gradient (x.grad would become 8 instead of 4)."""
    x, y, z = (cr.tensor(v, requires_grad=True) for v in (1.0, -3.0, 4.0))
    f = (x + y) * z
    f.backward()
    assert x.grad.item() == 4.0
    with pytest.raises(RuntimeError, match=r"backward through the graph a second time: mul's saved values "
                                           r"were released .*pass retain_graph=True"):
        f.backward()
    assert x.grad.item() == 4.0
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        cr.grad(f, [x])
    q = x * 2.0  # a new graph from the same leaves is fine
    q.backward()
    assert x.grad.item() == 6.0


def test_grad_releases_the_graph_unless_retained_and_create_graph_retains_it():
    x = cr.tensor(3.0, requires_grad=True)
    y = x**3
    (g,) = cr.grad(y, x, create_graph=True)  # create_graph keeps the graph, as in PyTorch
    (g2,) = cr.grad(y, x, retain_graph=True)
    assert g.item() == g2.item() == 27.0
    assert cr.grad(g, x)[0].item() == 18.0
    cr.grad(y, x)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_a_released_graph_can_still_be_drawn():
    x, y, z = (cr.tensor(v, requires_grad=True) for v in (1.0, -3.0, 4.0))
    f = (x + y) * z
    f.backward()
    from chainrule.viz.graph import build_graph

    graph = build_graph(f)
    grads = sorted(float(v.grad) for v in graph.values if v.grad is not None)
    assert grads == [-2.0, 1.0, 4.0, 4.0, 4.0]  # z, f, q, x, y


def test_cr_grad_returns_gradients_without_touching_dot_grad():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = cr.tensor(3.0, requires_grad=True)
    out = (x * y).sum()
    gx, gy = cr.grad(out, [x, y])
    np.testing.assert_allclose(gx.numpy(), [3.0, 3.0])
    assert gy.item() == 3.0
    assert x.grad is None and y.grad is None


def test_cr_grad_of_an_intermediate_tensor():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    out = (h * h).sum()
    (gh,) = cr.grad(out, h)
    np.testing.assert_allclose(gh.numpy(), 2 * 3.0 * np.array([1.0, 2.0]))


def test_cr_grad_with_grad_outputs_and_several_outputs():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    a, b = x * 2.0, x.exp()
    (g,) = cr.grad([a, b], x, grad_outputs=[cr.tensor([1.0, 1.0]), cr.tensor([0.0, 2.0])])
    np.testing.assert_allclose(g.numpy(), [2.0, 2.0 + 2.0 * np.exp(2.0)], rtol=1e-6)


def test_allow_unused_gives_none():
    x = cr.tensor(1.0, requires_grad=True)
    unused = cr.tensor(2.0, requires_grad=True)
    gx, gu = cr.grad(x * 2.0, [x, unused], allow_unused=True)
    assert gx.item() == 2.0 and gu is None


def test_no_grad_records_nothing_as_context_and_decorator():
    x = cr.ones(2, requires_grad=True)
    with cr.no_grad():
        y = x * 2
        assert not cr.is_grad_enabled()
        with cr.enable_grad():
            z = x * 2
    assert cr.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert z.requires_grad and z.grad_fn is not None

    @cr.no_grad()
    def double(t):
        return t * 2

    w = double(x)
    assert not w.requires_grad
    assert cr.is_grad_enabled()


def test_no_grad_restores_mode_after_an_exception():
    with pytest.raises(ValueError), cr.no_grad():
        raise ValueError("boom")
    assert cr.is_grad_enabled()


def test_set_grad_enabled():
    cr.set_grad_enabled(False)
    try:
        assert not (cr.ones(1, requires_grad=True) * 2).requires_grad
    finally:
        cr.set_grad_enabled(True)
    assert (cr.ones(1, requires_grad=True) * 2).requires_grad


def test_detach_cuts_the_graph():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2).detach() * x
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])  # d(c * x)/dx with c = 2x held constant


def test_a_10000_op_chain_backpropagates_without_recursion_error():
    x = cr.tensor(1.0, dtype=cr.float64, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward(retain_graph=True)
    assert x.grad.item() == pytest.approx(1.0001**10_000, rel=1e-9)
    (g,) = cr.grad(y, x, create_graph=True)  # the recorded backward pass is just as deep
    assert g.item() == pytest.approx(1.0001**10_000, rel=1e-9)


def test_second_derivative_of_cube_is_six_x():
    x = cr.tensor([-1.5, 0.5, 3.0], dtype=cr.float64, requires_grad=True)
    (g,) = cr.grad((x**3).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), 3 * x.detach().numpy() ** 2)
    (h,) = cr.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.detach().numpy())
    x3 = cr.tensor(3.0, requires_grad=True)
    (g3,) = cr.grad(x3 * x3 * x3, x3, create_graph=True)
    g3.backward()
    assert x3.grad.item() == pytest.approx(18.0)


def test_third_derivative():
    x = cr.tensor(0.7, dtype=cr.float64, requires_grad=True)
    (g1,) = cr.grad(x.sin(), x, create_graph=True)
    (g2,) = cr.grad(g1, x, create_graph=True)
    (g3,) = cr.grad(g2, x)
    assert g3.item() == pytest.approx(-np.cos(0.7))


def _two_layer_loss(params, x, y):
    w1, b1, w2, b2 = params
    h = (x @ w1 + b1).tanh()
    out = h @ w2 + b2
    return ((out - y) ** 2).mean()


def test_hessian_vector_product_of_two_layer_net_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = cr.tensor(rng.standard_normal((8, 3)), dtype=cr.float64)
    y = cr.tensor(rng.standard_normal((8, 1)), dtype=cr.float64)
    shapes = [(3, 5), (5,), (5, 1), (1,)]
    values = [rng.standard_normal(s) * 0.7 for s in shapes]
    v = [rng.standard_normal(s) for s in shapes]
    params = [cr.tensor(a, requires_grad=True) for a in values]
    grads = cr.grad(_two_layer_loss(params, x, y), params, create_graph=True)
    gv = sum((g * cr.tensor(d)).sum() for g, d in zip(grads, v))
    hvp = cr.grad(gv, params)

    def gradient_at(shift):
        ps = [cr.tensor(a + shift * d, requires_grad=True) for a, d in zip(values, v)]
        return [g.numpy() for g in cr.grad(_two_layer_loss(ps, x, y), ps)]

    eps = 1e-5
    up, down = gradient_at(eps), gradient_at(-eps)
    for h, gu, gd in zip(hvp, up, down):
        np.testing.assert_allclose(h.numpy(), (gu - gd) / (2 * eps), rtol=1e-6, atol=1e-8)


def test_newton_step_on_a_quadratic_reaches_the_minimum():
    """One Newton step x - f'(x)/f''(x) solves a 1-D quadratic: second derivatives are usable."""
    x = cr.tensor(5.0, dtype=cr.float64, requires_grad=True)
    f = 3.0 * (x - 1.5) ** 2 + 2.0
    (g,) = cr.grad(f, x, create_graph=True)
    (h,) = cr.grad(g, x)
    with cr.no_grad():
        x -= g.detach() / h
    assert x.item() == pytest.approx(1.5)


def test_create_graph_backward_accumulates_a_differentiable_grad():
    x = cr.tensor(2.0, dtype=cr.float64, requires_grad=True)
    (x**3).backward(create_graph=True)
    assert x.grad.requires_grad
    (h,) = cr.grad(x.grad, x)
    assert h.item() == pytest.approx(12.0)


def test_non_leaf_does_not_get_grad_and_leaf_without_requires_grad_neither():
    x = cr.tensor([1.0], requires_grad=True)
    c = cr.tensor([2.0])
    h = x * c
    (h * h).sum().backward()
    assert h.grad is None and c.grad is None
    assert x.grad.item() == pytest.approx(8.0)


def test_integer_inputs_do_not_block_float_gradients():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    k = cr.tensor([3, 4])
    (x * k).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 4.0])


def test_float64_leaf_gets_float64_grad_through_float32_ops():
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    (x.float() * 2.0).sum().backward()
    assert x.grad.dtype == cr.float64
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_nan_and_inf_follow_ieee_semantics():
    x = cr.tensor([0.0, -1.0, np.inf, np.nan], requires_grad=True)
    with np.errstate(all="ignore"):
        y = x.log()
        np.testing.assert_array_equal(np.isnan(y.detach().numpy()), [False, True, False, True])
        assert y.detach().numpy()[0] == -np.inf and y.detach().numpy()[2] == np.inf
        y.sum().backward()
    g = x.grad.numpy()
    assert g[0] == np.inf and g[1] == -1.0 and g[2] == 0.0 and np.isnan(g[3])
    assert cr.sigmoid(cr.tensor([-1000.0, 1000.0])).tolist() == [0.0, 1.0]
    assert np.isfinite(cr.logsumexp(cr.tensor([1000.0, 1000.0]), dim=0).item())
    assert np.isfinite(cr.softmax(cr.tensor([1000.0, -1000.0]), dim=0).numpy()).all()


def test_grad_fn_names_the_op():
    x = cr.tensor([1.0], requires_grad=True)
    assert "Exp" in repr(x.exp().grad_fn)
    assert "grad_fn=<MulBackward0>" in repr(x * 2)


def test_graph_is_freed_with_the_last_reference_to_the_output():
    """No reference cycles: nodes go away by reference counting alone, without the cycle collector."""
    import gc
    import weakref

    gc.disable()
    try:
        x = cr.ones(3, requires_grad=True)
        h = x.exp()
        y = (h * h).sigmoid().sum()
        node = weakref.ref(h.grad_fn)
        y.backward()
        del h, y
        assert node() is None
    finally:
        gc.enable()


def test_custom_function_may_return_a_lone_tensor_and_must_return_one_per_input():
    class Double(cr.Function):
        def forward(self, a):
            return a * 2.0

        def backward(self, grad):
            return grad * 2.0  # a bare Tensor, not a tuple

    class TooMany(cr.Function):
        def forward(self, a):
            return a * 1.0

        def backward(self, grad):
            return grad, grad

    x = cr.tensor([1.0, 2.0], requires_grad=True)
    Double().apply(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    with pytest.raises(RuntimeError, match="toomany: backward returned 2 gradients for 1 inputs"):
        TooMany().apply(x).sum().backward()


def test_no_grad_in_one_thread_leaves_another_thread_recording():
    """Grad mode is per thread, as in PyTorch."""
    import threading

    inside, go_on, results = threading.Event(), threading.Event(), {}

    def quiet():
        with cr.no_grad():
            inside.set()
            go_on.wait(10)
            results["quiet"] = (cr.ones(2, requires_grad=True) * 2).requires_grad

    worker = threading.Thread(target=quiet)
    worker.start()
    assert inside.wait(10)
    x = cr.ones(2, requires_grad=True)
    results["main"] = (x * 2).requires_grad and cr.is_grad_enabled()
    go_on.set()
    worker.join(10)
    assert results == {"quiet": False, "main": True}


def test_a_backward_pass_in_one_thread_leaves_another_thread_recording():
    import threading

    results = []

    def record():
        results.append(cr.is_grad_enabled())

    class Probe(cr.Function):
        def forward(self, a):
            return a * 1.0

        def backward(self, grad):
            t = threading.Thread(target=record)
            t.start()
            t.join(10)
            results.append(cr.is_grad_enabled())
            return (grad,)

    x = cr.ones(2, requires_grad=True)
    Probe().apply(x).sum().backward()
    assert results == [True, False]  # the other thread records; the backward itself does not
