"""Properties over random expressions: explain's chain rule and draw_graph's gradients agree with backward."""

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule import expr

NAMES = ("x", "y", "z")
UNARY = ("tanh", "sigmoid", "sin", "cos", "exp")  # smooth everywhere: finite differences not needed


def expressions(depth: int):
    leaf = st.sampled_from(NAMES + ("2", "0.5"))
    if depth == 0:
        return leaf
    sub = expressions(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["+", "-", "*"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(UNARY), sub).map(lambda t: f"{t[0]}({t[1]})"),
        sub.map(lambda s: f"-{s}"),
        sub.map(lambda s: f"({s}) ** 2"),
    )


@settings(max_examples=40, deadline=None)
@given(text=expressions(3), values=st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3))
def test_explain_and_draw_graph_agree_with_backward(text, values):
    e = expr.parse(text)
    assume(e.names)
    out, inputs = e.evaluate({n: v for n, v in zip(NAMES, values) if n in e.names})
    explanation = cr.viz.explain(out)
    graph = cr.viz.draw_graph(out).graph
    out.backward()
    for name, t in inputs.items():
        np.testing.assert_allclose(explanation.gradients[name], t.grad._data, rtol=1e-10, atol=1e-12)
        (node,) = [v for v in graph.values if v.tensor is t]
        np.testing.assert_allclose(node.grad, t.grad._data, rtol=1e-10, atol=1e-12)
    for step in explanation.steps:  # every step is upstream x local = product
        np.testing.assert_allclose(step.product, step.upstream * step.local, rtol=1e-10, atol=1e-12)
