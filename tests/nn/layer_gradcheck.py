"""gradcheck over a layer's inputs and parameters (shared by the layer tests)."""

from __future__ import annotations

import chainrule as cr


def gradcheck_layer(layer: cr.nn.Module, inputs: list, run, second_order: bool = False) -> None:
    """gradcheck ``run(layer, *inputs)`` with respect to the inputs AND the layer's parameters: gradcheck
    perturbs float64 copies of everything it is given, so the copies of the parameters are put into the
    layer for each call (a gradient that is wrong for any parameter fails the check)."""
    slots = [(owner, attr) for owner in layer.modules() for attr, p in owner._parameters.items() if p is not None]
    params = [owner._parameters[attr] for owner, attr in slots]

    def fn(*args):
        xs, ps = args[:len(inputs)], args[len(inputs):]
        for (owner, attr), p in zip(slots, ps):
            owner._parameters[attr] = p
        try:
            return run(layer, *xs)
        finally:
            for (owner, attr), p in zip(slots, params):
                owner._parameters[attr] = p

    check = cr.gradgradcheck if second_order else cr.gradcheck
    check(fn, list(inputs) + params, atol=1e-6, rtol=1e-4)
