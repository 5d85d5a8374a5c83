"""Plots say what they show (issue 12, item 6), tested through the data on the matplotlib Axes:
titles, labels, legends and texts, not pixels."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import expr
from chainrule.train.compare import MethodRun, compare, format_table, loss_figures
from chainrule.viz import _render, plots
from chainrule.viz._format import percent


def _texts(ax) -> list:
    return [t.get_text() for t in ax.texts]


def test_percent_is_never_rounded_up_to_all():
    assert [percent(v) for v in (0.995, 0.9996, 0.99449, 1.0, 0.0, 0.1234)] == \
        ["99.5%", "99.9%", "99.4%", "100%", "0.0%", "12.3%"]


def _threshold_model():
    """A 2-class linear model that predicts class 1 exactly when x1 > 0."""
    model = cr.nn.Linear(2, 2)
    with cr.no_grad():
        model.weight.data[...] = np.array([[-1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
        model.bias.data[...] = 0.0
    return model


def test_decision_boundary_accuracy_is_not_rounded_up_and_names_the_split():
    x = np.linspace(-1, 1, 200, dtype=np.float32)
    points = np.stack([np.where(x == 0, 0.01, x), np.zeros_like(x)], axis=1)
    labels = (points[:, 0] > 0).astype(np.int64)
    labels[0] = 1 - labels[0]  # one of 200 wrong: 99.5%
    model = _threshold_model()
    fig = plots.decision_boundary(model, points, labels, split="test")
    assert fig.axes[0].get_title() == "decision boundary (test accuracy 99.5%)"
    fig = plots.decision_boundary(model, points, labels)
    assert fig.axes[0].get_title() == "decision boundary (accuracy on the points shown 99.5%)"


def test_compare_axes_start_at_zero_and_the_table_says_training_accuracy():
    runs = compare("moons", ["gd", "adam"], epochs=2, n_samples=40)
    figures = loss_figures(runs)
    assert sorted(figures) == ["iterations", "passes", "seconds"]
    for key, fig in figures.items():
        ax = fig.axes[0]
        assert ax.get_xlim()[0] == 0, key
        visible = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert min(visible) >= 0, (key, visible)
        assert ax.get_ylabel() == "training loss (full batch)"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["gd", "adam"]
    assert figures["iterations"].axes[0].get_xscale() == "symlog"
    run = MethodRun("gd", losses=[0.5], final_loss=0.5, accuracy=0.9995, steps=1)
    table = format_table([run])
    assert table.splitlines()[0].split()[3:5] == ["train", "acc"]
    assert "99.9%" in table.splitlines()[2] and "100" not in table.splitlines()[2]


class _Named(cr.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = cr.nn.Linear(2, 6)
        self.act = cr.nn.Sigmoid()
        self.fc2 = cr.nn.Linear(6, 2)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def _diagnose(model, epochs=2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    diag = cr.viz.Diagnostics()
    cr.fit(model, (x, y), epochs=epochs, batch_size=8, callbacks=[diag], verbose=0)
    return diag


def test_diagnostics_name_layers_as_the_model_does_and_the_legend_counts_them():
    cr.manual_seed(0)
    diag = _diagnose(cr.nn.MLP([2, 8, 8, 2], activation="sigmoid"))
    assert list(diag.history) == ["0", "2", "4"]  # the keys stay the state-dict prefixes
    assert diag.labels == {"0": "Linear 1", "2": "Linear 2", "4": "Linear 3"}
    ax = diag.plot_gradient_norms().axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["Linear 1", "Linear 2", "Linear 3"]
    assert legend.get_title().get_text() == "3 layers, input first"
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("||dL/dW||", "epoch")
    assert diag.to_text().splitlines()[1].startswith("Linear 1")
    named = _diagnose(_Named())
    assert named.labels == {"fc1": "fc1", "fc2": "fc2"}
    legend = named.plot_gradient_norms().axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["fc1", "fc2"]


def test_empty_diagnostics_panels_say_why_and_every_panel_has_a_y_label():
    cr.manual_seed(0)
    diag = _diagnose(cr.nn.MLP([2, 8, 2], activation="sigmoid"))
    fig = plots.plot_diagnostics(diag, metrics=("grad_norm", "update_ratio", "act_std", "saturated", "dead"))
    axes = fig.axes
    assert [ax.get_ylabel() for ax in axes] == ["||dL/dW||", "||W_after - W_before|| / ||W||",
                                                "std of the activations", "fraction of saturated outputs",
                                                "fraction of dead ReLU units"]
    assert _texts(axes[4]) == ["nothing to show: no ReLU layer"] and not axes[4].lines
    assert all(ax.lines and not _texts(ax) for ax in axes[:4])
    assert axes[0].get_legend() is not None
    untrained = cr.viz.Diagnostics()
    untrained.on_train_begin(cr.nn.MLP([2, 3, 2]))
    ax = plots.plot_gradient_norms(untrained).axes[0]
    assert _texts(ax) == ["no gradients recorded (pass the Diagnostics to fit(callbacks=[...]))"]
    assert not ax.lines


def _colour_bar_labels(fig) -> list:
    return [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]


def test_weight_and_filter_plots_have_a_colour_scale_and_say_when_some_units_are_shown():
    cr.manual_seed(0)
    mlp = cr.nn.MLP([64, 40, 10])
    fig = plots.first_layer_weights(mlp, max_units=32)
    assert fig._suptitle.get_text() == "first-layer weights (Linear 1), first 32 of 40 units: red +, blue -"
    assert _colour_bar_labels(fig) == ["weight"]
    fig = plots.first_layer_weights(mlp, max_units=64)
    assert fig._suptitle.get_text() == "first-layer weights (Linear 1), all 40 units: red +, blue -"
    image_axes = [ax for ax in fig.axes if ax.images]
    limits = {ax.images[0].get_clim() for ax in image_axes}
    assert len(limits) == 1  # one scale for all units, so the colour bar reads for every one
    conv = cr.nn.Sequential(cr.nn.Conv2d(1, 4, 3), cr.nn.ReLU())
    fig = plots.conv_filters(conv, max_filters=3)
    assert fig._suptitle.get_text() == "learned filters of Conv2d 1 (3x3, one channel), first 3 of 4 filters"
    assert _colour_bar_labels(fig) == ["weight"]


# ---- draw_graph ---------------------------------------------------------------------------------------
def _labels(drawing) -> dict:
    return {n.key: n.lines for n in drawing.drawing.nodes}


def test_draw_graph_names_unnamed_values_as_explain_does():
    a = cr.tensor([1.0, 2.0], requires_grad=True)  # no names at all
    b = cr.tensor([3.0, -1.0], requires_grad=True)
    out = (a * b + a.exp() / b).sum()
    drawn = {lines[0] for lines in _labels(cr.viz.draw_graph(out)).values() if len(lines) > 1}
    steps = cr.viz.explain(out).steps
    explained = {s.output for s in steps} | {s.input for s in steps}
    assert explained <= drawn
    assert {"f", "t1", "t2"} <= drawn


def test_draw_graph_keeps_and_labels_the_operands_of_a_division():
    # the last two came out upside down before the operand order was kept in the layout
    for text, top, bottom in (("y/x", "y", "x"), ("x/y", "x", "y"), ("y/(x*x)", "y", "x*x"), ("z/(x+y)", "z", "x+y")):
        out, _ = expr.evaluate(text, **{n: v for n, v in (("x", 1.0), ("y", 2.0), ("z", 3.0)) if n in text})
        drawing = cr.viz.draw_graph(out)
        pos = _render.layout(drawing.drawing)
        (div,) = [op for op in drawing.graph.ops if op.label == "/"]
        numerator, denominator = div.inputs
        assert (numerator.name, denominator.name) == (top, bottom)
        assert pos[numerator.key][1] > pos[denominator.key][1], text  # numerator drawn above
        assert drawing.drawing.edge_labels[(numerator.key, div.key)] == "numerator"
        assert drawing.drawing.edge_labels[(denominator.key, div.key)] == "denominator"
        assert f'{numerator.key} -> {div.key} [label="numerator"' in drawing.source
    out, _ = expr.evaluate("b/a - a/b", a=1.0, b=2.0)
    drawing = cr.viz.draw_graph(out)
    roles = {(e[0], e[1]): r for e, r in drawing.drawing.edge_labels.items()}
    names = {v.key: v.name for v in drawing.graph.values}
    divisions = sorted((names[a], role) for (a, b), role in roles.items() if role in ("numerator", "denominator"))
    assert divisions == [("a", "denominator"), ("a", "numerator"), ("b", "denominator"), ("b", "numerator")]


@pytest.mark.parametrize("text", ["x - y", "x ** y"])
def test_other_ordered_operands_are_labelled(text):
    out, _ = expr.evaluate(text, x=2.0, y=3.0)
    roles = sorted(cr.viz.draw_graph(out).drawing.edge_labels.values())
    assert roles == (["minuend", "subtrahend"] if "-" in text else ["base", "exponent"])
