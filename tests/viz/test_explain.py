import numpy as np
import pytest

import chainrule as cr


def lecture(name_q: bool = True):
    x, y, z = (cr.tensor(v, requires_grad=True, name=n, dtype=cr.float64)
               for v, n in ((1.0, "x"), (-3.0, "y"), (4.0, "z")))
    q = x + y
    if name_q:
        q.name = "q"
    return q * z


def test_lecture_example_reads_like_the_slide():
    e = cr.viz.explain(lecture())
    assert e.output == "f" and e.value == -8.0
    rows = [(s.output, s.op, s.input, float(s.upstream), float(s.local), float(s.product), s.local_formula)
            for s in e.steps]
    assert rows == [
        ("f", "*", "q", 1.0, 4.0, 4.0, "z"),    # df/dq = df/df * dq... = 1 * z = 4
        ("f", "*", "z", 1.0, -2.0, -2.0, "q"),  # df/dz = q = -2
        ("q", "+", "x", 4.0, 1.0, 4.0, "1"),    # df/dx = df/dq * dq/dx = 4 * 1
        ("q", "+", "y", 4.0, 1.0, 4.0, "1"),
    ]
    assert {k: float(v) for k, v in e.gradients.items()} == {"x": 4.0, "y": 4.0, "z": -2.0}


def test_lecture_text_table():
    text = cr.viz.explain(lecture()).to_text()
    lines = text.splitlines()
    assert lines[0].startswith("Chain rule for f = -8")
    assert lines[3].split() == ["1", "f", "*", "q", "1", "z", "=", "4", "4"]
    assert lines[5].split() == ["3", "q", "+", "x", "4", "1", "4"]
    assert lines[-1] == "Gradients: df/dx = 4, df/dy = 4, df/dz = -2"


def test_lecture_markdown_has_latex_chain_rule():
    md = cr.viz.explain(lecture()).to_markdown()
    assert r"$\frac{\partial f}{\partial x} = \frac{\partial f}{\partial q}\cdot\frac{\partial q}{\partial x}" \
           r" = 4 \cdot 1 = 4$" in md
    assert r"= 1 \cdot (-2) = -2$" in md
    assert r"$\frac{\partial f}{\partial z} = -2$" in md
    assert md.count("\n|") == 6  # header, rule, four steps


def test_unnamed_intermediate_gets_its_expression():
    e = cr.viz.explain(lecture(name_q=False))
    assert [s.output for s in e.steps] == ["f", "f", "x+y", "x+y"]
    assert e.steps[1].local_formula == "x+y"


def test_a_value_used_twice_sums_its_products():
    x = cr.tensor(3.0, requires_grad=True, name="x", dtype=cr.float64)
    e = cr.viz.explain(x * x + x)
    assert [float(p) for p in e.sums["x"]] == [1.0, 3.0, 3.0]
    assert float(e.gradients["x"]) == 7.0  # d/dx (x^2 + x) = 2x + 1
    assert "x is used 3 times: df/dx = 1 + 3 + 3 = 7" in e.to_text()


def test_sigmoid_neuron_steps_match_autograd():
    w = cr.tensor([2.0, -3.0], requires_grad=True, name="w", dtype=cr.float64)
    x = cr.tensor([-1.0, -2.0], name="x", dtype=cr.float64)
    b = cr.tensor(-3.0, requires_grad=True, name="b", dtype=cr.float64)
    out = cr.sigmoid((w * x).sum() + b)
    e = cr.viz.explain(out)
    s = e.steps[0]
    assert s.op == "sigmoid"
    np.testing.assert_allclose(s.local, out.item() * (1 - out.item()))
    out.backward()
    np.testing.assert_allclose(e.gradients["w"], w.grad._data)
    np.testing.assert_allclose(e.gradients["b"], b.grad._data)
    # an elementwise step on arrays: local derivative per element, product = upstream * local
    mul = e.step("w*x", "w")
    np.testing.assert_allclose(mul.product, mul.upstream * mul.local)


def test_matrix_ops_show_a_jacobian():
    cr.manual_seed(0)
    W = cr.randn(2, 3, dtype=cr.float64, requires_grad=True)
    W.name = "W"
    v = cr.randn(3, dtype=cr.float64)
    v.name = "v"
    e = cr.viz.explain((W @ v).sum())
    mm = e.step("W@v", "W")
    assert mm.local is None and "Jacobian" in e.to_text()
    np.testing.assert_allclose(mm.product, np.outer(np.ones(2), v._data))


def test_explain_refuses_a_tensor_without_graph():
    with pytest.raises(ValueError, match="no graph"):
        cr.viz.explain(cr.tensor(1.0))


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu", "gelu"])
@pytest.mark.parametrize("depth", [1, 2, 5])
def test_deltas_match_autograd(activation, depth):
    cr.manual_seed(depth)
    model = cr.nn.MLP([4] + [6] * depth + [3], activation=activation).double()
    x = cr.randn(8, 4, dtype=cr.float64)
    y = cr.randint(0, 3, (8,))
    d = cr.viz.deltas(model, x, y, cr.nn.CrossEntropyLoss())
    assert len(d) == depth + 1
    assert d.max_error < 1e-6
    for layer in d.layers:
        assert np.abs(layer.delta).max() > 0  # a real comparison, not two zeros
        np.testing.assert_allclose(layer.delta, layer.autograd, atol=1e-6)


def test_deltas_with_an_output_activation_and_mse():
    cr.manual_seed(1)
    model = cr.nn.MLP([2, 5, 5, 1], activation="tanh", output_activation="sigmoid").double()
    x = cr.randn(6, 2, dtype=cr.float64)
    y = cr.rand(6, 1, dtype=cr.float64)
    d = cr.viz.deltas(model, x, y, cr.nn.MSELoss())
    assert d.max_error < 1e-6
    assert "max diff" in d.to_text()


def test_deltas_explicit_rule_really_is_explicit():
    # a one-hidden-layer sigmoid net by hand: delta_0 = s'(s0) * (delta_1 W_1)
    cr.manual_seed(2)
    model = cr.nn.MLP([2, 3, 1], activation="sigmoid").double()
    x = cr.randn(4, 2, dtype=cr.float64)
    y = cr.randn(4, 1, dtype=cr.float64)
    d = cr.viz.deltas(model, x, y, cr.nn.MSELoss())
    W0, b0 = model[0].weight._data, model[0].bias._data
    W1, b1 = model[2].weight._data, model[2].bias._data
    s0 = x._data @ W0.T + b0
    a0 = 1 / (1 + np.exp(-s0))
    out = a0 @ W1.T + b1
    delta1 = 2 * (out - y._data) / out.size
    delta0 = a0 * (1 - a0) * (delta1 @ W1)
    np.testing.assert_allclose(d[1].delta, delta1, atol=1e-12)
    np.testing.assert_allclose(d[0].delta, delta0, atol=1e-12)
    np.testing.assert_allclose(d[0].weight_grad, delta0.T @ x._data, atol=1e-12)


def test_deltas_refuses_a_model_without_linear_first():
    with pytest.raises(ValueError, match="Linear"):
        cr.viz.deltas(cr.nn.Sequential(cr.nn.ReLU()), cr.randn(2, 2), cr.randn(2, 2), cr.nn.MSELoss())


def test_ops_with_a_python_number_show_it():
    x = cr.tensor(3.0, requires_grad=True, name="x", dtype=cr.float64)
    f = (x * 2 + 1) / 4 - (2 - x) ** 3
    e = cr.viz.explain(f)
    ops = {(s.output, s.op, s.input): (s.local_formula, float(s.local)) for s in e.steps}
    assert ops[("x*2", "*2", "x")] == ("2", 2.0)
    assert ops[("(x*2)+1", "+1", "x*2")] == ("1", 1.0)
    assert ops[("((x*2)+1)/4", "/4", "(x*2)+1")] == ("1/4", 0.25)
    assert ops[("(2-x)**3", "**3", "2-x")] == ("3*(2-x)^2", 3.0)
    assert ops[("2-x", "2-", "x")] == ("-1", -1.0)
    f.backward()
    assert float(e.gradients["x"]) == x.grad.item() == 0.5 + 3.0
    labels = [n.lines()[0] for n in cr.viz.draw_graph(f).graph.values]
    assert {"x*2", "(x*2)+1", "((x*2)+1)/4", "2-x", "(2-x)**3"} <= set(labels)
