"""``summary(model, input_shape)``: the lecture's "how many weights?" as a table, layer by layer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import autograd
from ..tensor import Tensor
from .module import Module, _parameter_count


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple | None
    weights: int
    biases: int

    @property
    def total(self) -> int:
        return self.weights + self.biases


class Summary:
    """The table returned by :func:`summary`; ``str(s)`` (or ``print(s)``) shows it."""

    def __init__(self, model_name: str, input_shape: tuple, rows: list[LayerRow], trainable: int, total: int):
        self.model_name, self.input_shape, self.rows = model_name, input_shape, rows
        self.trainable_parameters, self.total_parameters = trainable, total

    def __str__(self) -> str:
        header = ("Layer", "Output shape", "Weights", "Biases", "Total")
        body = [
            (f"{r.name} ({r.kind})" if r.name else r.kind,
             "-" if r.output_shape is None else str(tuple(r.output_shape)),
             f"{r.weights:,}", f"{r.biases:,}", f"{r.total:,}")
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(5)]

        def line(cells):
            left = cells[0].ljust(widths[0]) + "  " + cells[1].ljust(widths[1])
            return left + "".join("  " + c.rjust(w) for c, w in zip(cells[2:], widths[2:]))

        rule = "-" * len(line(header))
        weights = sum(r.weights for r in self.rows)
        biases = sum(r.biases for r in self.rows)
        out = [f"{self.model_name} on input {tuple(self.input_shape)}", rule, line(header), rule]
        out += [line(b) for b in body]
        out += [rule, line(("Total", "", f"{weights:,}", f"{biases:,}", f"{self.total_parameters:,}"))]
        out.append(f"Trainable parameters: {self.trainable_parameters:,}")
        return "\n".join(out)

    __repr__ = __str__


def summary(model: Module, input_shape, dtype=None) -> Summary:
    """Run ``model`` once on zeros of ``input_shape`` (the full shape, batch included, e.g. (1, 64))
    and tabulate each layer: output shape, number of weights, of biases, and their total.

    Nothing is printed: ``print(cr.nn.summary(model, (1, 64)))``. Layers are the modules without
    children, in the order they ran (a layer used twice appears twice); parameters named ``bias``
    count as biases, all others as weights.

    >>> print(cr.nn.summary(cr.nn.MLP([2, 2, 1], activation="sigmoid"), (4, 2)))
    MLP on input (4, 2)
    -------------------------------------------------
    Layer        Output shape  Weights  Biases  Total
    -------------------------------------------------
    0 (Linear)   (4, 2)              4       2      6
    1 (Sigmoid)  (4, 2)              0       0      0
    2 (Linear)   (4, 1)              2       1      3
    -------------------------------------------------
    Total                            6       3      9
    Trainable parameters: 9
    """
    shape = (int(input_shape),) if isinstance(input_shape, (int, np.integer)) else tuple(int(n) for n in input_shape)
    if dtype is None:
        first = next(model.parameters(), None)
        dtype = first.dtype if first is not None else np.float32
    rows: list[LayerRow] = []
    names = {id(m): n for n, m in model.named_modules()}

    seen: set[int] = set()

    def record(module, args, output):
        out_shape = tuple(output.shape) if isinstance(output, Tensor) else None
        weights = biases = 0
        first_use = id(module) not in seen
        seen.add(id(module))
        for pname, p in module.named_parameters(recurse=False) if first_use else ():
            if pname == "bias":
                biases += p.numel()
            else:
                weights += p.numel()
        rows.append(LayerRow(names.get(id(module), ""), type(module).__name__, out_shape, weights, biases))

    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(record) for m in leaves]
    modes = {id(m): m.training for m in model.modules()}
    model.eval()
    try:
        with autograd.no_grad():
            model(Tensor._wrap(np.zeros(shape, dtype=dtype)))
    finally:
        for h in handles:
            h.remove()
        for m in model.modules():
            object.__setattr__(m, "training", modes[id(m)])
    # parameters held by non-leaf modules (rare) still count in the totals
    counted = sum(r.total for r in rows)
    total = _parameter_count(model)
    if counted < total:
        rows.append(LayerRow("", "other parameters", None, total - counted, 0))
    trainable = _parameter_count(model, trainable_only=True)
    return Summary(type(model).__name__, shape, rows, trainable, total)
