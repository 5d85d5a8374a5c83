import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import chainrule as cr
from chainrule.viz import _render


def lecture():
    x, y, z = (cr.tensor(v, requires_grad=True, name=n, dtype=cr.float64)
               for v, n in ((1.0, "x"), (-3.0, "y"), (4.0, "z")))
    return x, y, z, (x + y) * z


def svg_texts(svg: bytes) -> list:
    root = ET.fromstring(svg)
    return ["".join(el.itertext()).strip() for el in root.iter() if el.tag.endswith("text")]


def dot_labels(source: str) -> dict:
    """node key -> list of label lines, read back from the DOT text."""
    out = {}
    for key, label in re.findall(r'^\s*(\w+) \[.*label="((?:[^"\\]|\\.)*)"\];$', source, flags=re.M):
        out[key] = label.split("\\n")
    return out


def dot_program():
    """The dot-like program found here (ignoring CHAINRULE_GRAPH_ENGINE), or None."""
    import os

    saved = os.environ.pop("CHAINRULE_GRAPH_ENGINE", None)
    try:
        engine = _render.find_engine()
    finally:
        if saved is not None:
            os.environ["CHAINRULE_GRAPH_ENGINE"] = saved
    return None if engine == "matplotlib" else engine


@pytest.fixture
def matplotlib_engine(monkeypatch):
    monkeypatch.setenv("CHAINRULE_GRAPH_ENGINE", "matplotlib")


def test_lecture_graph_dot_has_every_nodes_op_value_and_gradient():
    *_, f = lecture()
    labels = dot_labels(cr.viz.draw_graph(f).source)
    values = sorted(labels.values())
    assert ["x", "value 1", "grad 4"] in values
    assert ["y", "value -3", "grad 4"] in values
    assert ["z", "value 4", "grad -2"] in values
    assert ["x+y", "value -2", "grad 4"] in values  # the intermediate q, with its gradient df/dq = z
    assert ["(x+y)*z", "value -8", "grad 1"] in values
    assert ["+"] in values and ["*"] in values
    assert len(labels) == 7


def test_lecture_graph_edges_follow_the_computation():
    *_, f = lecture()
    d = cr.viz.draw_graph(f)
    names = {k: v[0] for k, v in dot_labels(d.source).items()}
    edges = {(names[a], names[b]) for a, b in re.findall(r"^\s*(\w+) -> (\w+);$", d.source, flags=re.M)}
    assert edges == {("x", "+"), ("y", "+"), ("+", "x+y"), ("x+y", "*"), ("z", "*"), ("*", "(x+y)*z")}


def test_draw_graph_does_not_touch_grad():
    x, y, z, f = lecture()
    cr.viz.draw_graph(f)
    assert x.grad is None and z.grad is None
    f.backward()
    assert x.grad.item() == 4.0


def test_lecture_graph_svg_from_matplotlib_shows_every_label(matplotlib_engine):
    *_, f = lecture()
    d = cr.viz.draw_graph(f)
    assert d.engine == "matplotlib"
    texts = svg_texts(d.pipe("svg"))
    for line in ("x", "value 1", "grad 4", "value -3", "value 4", "grad -2", "x+y", "value -2",
                 "(x+y)*z", "value -8", "grad 1", "+", "*"):
        assert line in texts, line
    assert d._repr_svg_().lstrip().startswith("<?xml")


def test_png_is_a_real_image(matplotlib_engine, tmp_path):
    from PIL import Image

    *_, f = lecture()
    path = cr.viz.draw_graph(f).save(tmp_path / "g.png")
    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert 100 < img.shape[1] < 3000 and 50 < img.shape[0] < 3000
    assert img.std() > 10  # not a blank page
    assert (img < 100).mean() > 0.005  # some dark ink: text and edges


def test_dot_engine_when_available(tmp_path):
    engine = _render.find_engine()
    if engine == "matplotlib":
        pytest.skip("no dot or graphviz-pure program here")
    *_, f = lecture()
    d = cr.viz.draw_graph(f)
    texts = svg_texts(d.pipe("svg"))
    assert "value -8" in texts and "grad -2" in texts
    from PIL import Image

    img = Image.open(io.BytesIO(d.pipe("png")))
    assert img.size[0] > 100 and np.asarray(img.convert("L")).std() > 10


def test_save_formats_and_bad_extension(tmp_path, matplotlib_engine):
    *_, f = lecture()
    d = cr.viz.draw_graph(f)
    assert open(d.save(tmp_path / "g.dot")).read() == d.source
    assert open(d.save(tmp_path / "g.svg"), "rb").read().lstrip().startswith(b"<?xml")
    with pytest.raises(ValueError, match=r"\.svg, \.png or \.dot"):
        d.save(tmp_path / "g.jpg")


def mlp_loss():
    cr.manual_seed(0)
    model = cr.nn.MLP([3, 4, 2], activation="sigmoid").double()
    x = cr.randn(5, 3, dtype=cr.float64)
    x.name = "x"
    y = cr.tensor([0, 1, 1, 0, 1])
    loss = cr.nn.CrossEntropyLoss()(model(x), y)
    return model, x, y, loss


def test_mlp_drawing_names_parameters_and_shows_every_gradient(matplotlib_engine):
    model, x, y, loss = mlp_loss()
    d = cr.viz.draw_graph(loss, model=model)
    labels = dot_labels(d.source)
    graph = d.graph
    by_name = {v.name: v for v in graph.values if v.name}
    for name, _ in model.named_parameters():
        assert name in by_name
        assert by_name[name].kind == "param"
    loss.backward()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(by_name[name].grad, p.grad._data)  # the same as backprop
    texts = set(svg_texts(d.pipe("svg")))
    program = dot_program()
    if program:  # and the same text in what Graphviz's dot (or graphviz-pure) draws
        texts &= set(svg_texts(d.pipe("svg", engine=program)))
    drawn = [line for lines in labels.values() for line in lines]
    for op in graph.ops:
        assert [op.label] in labels.values()
    for v in graph.values:
        lines = v.lines()
        assert lines in labels.values()
        assert any(line.startswith("value ") for line in lines)
        if v.tensor.requires_grad:
            assert any(line.startswith("grad ") for line in lines), lines
        assert set(lines) <= texts
    assert "linear" in drawn and "sigmoid" in drawn


def test_intermediate_gradients_match_autograd():
    model, x, y, loss = mlp_loss()
    graph = cr.viz.draw_graph(loss, model=model).graph
    inner = [v for v in graph.values if v.kind == "op" and v.grad is not None and v.value.ndim == 2]
    assert inner
    grads = cr.grad(loss, [v.tensor for v in inner])
    for v, g in zip(inner, grads):
        np.testing.assert_allclose(v.grad, g._data)


def test_group_modules_collapses_each_layer(matplotlib_engine):
    cr.manual_seed(0)
    model = cr.nn.MLP([3, 4, 2], activation="tanh").double()
    x = cr.randn(5, 3, dtype=cr.float64)
    with cr.viz.trace_modules(model):
        out = model(x)
        loss = (out * out).mean()
    d = cr.viz.draw_graph(loss, group_modules=True, model=model)
    labels = dot_labels(d.source)
    boxes = [lines for lines in labels.values() if lines[0].startswith(("0:", "1:", "2:"))]
    assert len(boxes) == 3
    assert any(lines[0].startswith("0: Linear") for lines in boxes)
    assert any(lines[0].startswith("1: Tanh") for lines in boxes)
    assert ["linear"] not in labels.values()  # the ops are inside the boxes
    assert ["*"] in labels.values()  # the loss's own ops stay
    assert "0: Linear" in " ".join(svg_texts(d.pipe("svg")))


def test_trace_modules_restores_call_and_tags_nothing_outside():
    call = cr.nn.Module.__call__
    model = cr.nn.Linear(2, 2)
    with cr.viz.trace_modules(model):
        assert cr.nn.Module.__call__ is not call
    assert cr.nn.Module.__call__ is call
    out = model(cr.randn(1, 2))
    assert cr.viz.modules.module_of(out.grad_fn) is None


def test_group_modules_without_information_warns():
    *_, f = lecture()
    with pytest.warns(UserWarning, match="trace_modules"):
        cr.viz.draw_graph(f, group_modules=True)


def test_max_nodes_keeps_the_nodes_nearest_the_output():
    x = cr.tensor(0.5, requires_grad=True, name="x", dtype=cr.float64)
    h = x
    for _ in range(50):
        h = cr.tanh(h)
    d = cr.viz.draw_graph(h, max_nodes=9)
    graph = d.graph
    assert len(graph.values) + len(graph.ops) <= 9
    assert "history not drawn" in d.source
    assert graph.outputs[0].value == h._data


def test_values_and_grads_can_be_hidden():
    *_, f = lecture()
    labels = dot_labels(cr.viz.draw_graph(f, values=False, grads=False).source)
    assert ["x"] in labels.values()
    assert not any(line.startswith(("value", "grad")) for lines in labels.values() for line in lines)


def test_array_values_show_shape_and_summary():
    w = cr.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True, name="W")
    v = cr.tensor([1.0, 2.0], requires_grad=True, name="v")
    out = (w.sum() + v.sum())
    labels = dot_labels(cr.viz.draw_graph(out).source)
    assert ["W", "shape (3, 4)", "value mean 5.5 std 3.45 [0, 11]", "grad mean 1 std 0 [1, 1]"] in labels.values()
    assert ["v", "shape (2,)", "value [1, 2]", "grad [1, 1]"] in labels.values()


def test_draw_graph_refuses_a_non_tensor():
    with pytest.raises(TypeError, match="expected a Tensor"):
        cr.viz.draw_graph(3.0)


def test_long_chains_are_drawn_top_to_bottom(matplotlib_engine):
    x = cr.tensor(0.5, requires_grad=True, name="x", dtype=cr.float64)
    h = x
    for _ in range(10):
        h = cr.tanh(h)
    d = cr.viz.draw_graph(h)
    assert "rankdir=TB;" in d.source
    assert "rankdir=LR;" in cr.viz.draw_graph(h, rankdir="LR").source
    from PIL import Image

    img = Image.open(io.BytesIO(d.pipe("png")))
    assert img.size[1] > img.size[0]  # taller than wide
    with pytest.raises(ValueError, match="rankdir"):
        cr.viz.draw_graph(h, rankdir="RL")


def test_params_dict_names_parameters():
    lin = cr.nn.Linear(2, 1)
    out = lin(cr.randn(3, 2)).sum()
    names = {v.name for v in cr.viz.draw_graph(out, params={"W": lin.weight, "b": lin.bias}).graph.values}
    assert {"W", "b"} <= names
