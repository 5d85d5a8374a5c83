"""gradcheck over a layer's inputs and parameters, for layers whose call is more than ``layer(*inputs)``.

conftest's ``gradcheck_layer`` calls ``layer(*inputs)``; the recurrent layers take their initial state
as one argument (an LSTM's a pair) and return nested tuples, so here ``run(layer, *inputs)`` says how
to call the layer and returns a flat tuple of outputs.
"""

from __future__ import annotations

import chainrule as cr


def gradcheck_layer(layer: cr.nn.Module, inputs: list, run, second_order: bool = False) -> None:
    """gradcheck ``run(layer, *inputs)`` with respect to the inputs AND the layer's parameters: gradcheck
    perturbs float64 copies of everything it is given, and ``functional_call`` puts the copies of the
    parameters into the layer for each call, so a gradient that is wrong for any parameter fails."""
    names = [n for n, _ in layer.named_parameters()]
    params = [p for _, p in layer.named_parameters()]
    k = len(inputs)

    def fn(*args):
        return cr.nn.utils.functional_call(_Call(layer, run), {f"layer.{n}": p for n, p in zip(names, args[k:])},
                                           args[:k])

    check = cr.gradgradcheck if second_order else cr.gradcheck
    check(fn, list(inputs) + params, atol=1e-6, rtol=1e-4)


class _Call(cr.nn.Module):
    """``run(layer, *inputs)`` as a module whose only child is the layer (for functional_call's names)."""

    def __init__(self, layer, run):
        super().__init__()
        self.layer = layer
        self._run = run

    def forward(self, *inputs):
        return self._run(self.layer, *inputs)
