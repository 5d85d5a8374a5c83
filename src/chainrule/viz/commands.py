"""What the ``chainrule graph``, ``explain`` and ``gradcheck`` commands do, as plain functions."""

from __future__ import annotations

import os

import numpy as np

from .. import expr
from ..tensor import Tensor


def _evaluate(expression: str, assignments) -> Tensor:
    """The expression's output at the assignments; an ExpressionError when a value or a gradient of a
    variable is not finite there (the drawing and the table would show inf or nan)."""
    from ..autograd import grad

    values = expr.parse_assignments(assignments or [])
    text = expression.strip()
    out, inputs = expr.evaluate(text, values, dtype=np.float64)
    if not inputs:
        return out
    with np.errstate(all="ignore"):
        grads = grad(out.sum() if out.ndim else out, list(inputs.values()), retain_graph=True, allow_unused=True)
    for name, g in zip(inputs, grads):
        if g is not None and not np.isfinite(g._data).all():
            bad = g._data[~np.isfinite(g._data)].reshape(-1)[0]
            where = ", ".join(f"{k}={expr._format_value(v._data)}" for k, v in inputs.items())
            raise expr.ExpressionError(f"expression {text!r}: the gradient with respect to {name} is {bad} at "
                                       f"{where}; choose values where the derivative is finite")
    return out


def graph(expression: str, assignments=(), output: str = "graph.svg", values: bool = True,
          grads: bool = True) -> str:
    """Draw the graph of ``expression`` at the ``NAME=VALUE`` assignments into ``output``
    (.svg, .png or .dot); returns the path."""
    from .draw import draw_graph

    out = _evaluate(expression, assignments)
    return draw_graph(out, values=values, grads=grads, title=expression.strip()).save(output)


def explain(expression: str, assignments=(), markdown: bool = False) -> str:
    """The chain-rule table of ``expression`` at the assignments, as text or Markdown."""
    from .explain import explain as explain_output

    out = _evaluate(expression, assignments)
    e = explain_output(out)
    return e.to_markdown() if markdown else e.to_text()


def gradcheck_run(run_dir: str, samples: int = 8, max_entries: int = 10, tol: float = 1e-5):
    """Check the gradients of a trained run's model on a few of its test examples.

    Loads ``model.safetensors`` and the data the run was trained on (from ``run.json``), then runs
    :func:`cr.gradcheck_model` with the run's loss. Returns the :class:`ModelGradcheck` report.
    """
    from ..errors import InvalidArgumentError
    from ..train.fit import get_loss
    from ..train.runs import _entry, _load_run_model, _preprocess, _test_split, read_run
    from ..train.targets import one_hot_targets
    from .gradcheck import gradcheck_model

    for option, value in (("samples", samples), ("entries", max_entries)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidArgumentError(f"gradcheck: --{option} must be a whole number of at least 1, got {value!r}")
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"gradcheck: {run_dir} is not a folder; pass a run folder written by `chainrule train`")
    record = read_run(run_dir)
    config = record["config"]
    x, y = _test_split(run_dir, record)  # a csv: run keeps its test rows: no CSV file needed
    idx = np.arange(min(samples, len(x)))
    xs = _preprocess(x[idx], _entry(record, "preprocessing", os.path.join(run_dir, "run.json")))
    y = one_hot_targets(config["loss"], y, record["data"]["n_classes"])
    model = _load_run_model(run_dir)
    model.eval()  # the model as it predicts (no dropout noise)
    return gradcheck_model(model, get_loss(config["loss"]), Tensor(np.asarray(xs)), Tensor(np.asarray(y[idx])),
                           max_entries=max_entries, tol=tol)
