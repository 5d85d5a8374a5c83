import numpy as np
import pytest

import chainrule as cr

try:
    import torch
except ImportError:  # PyTorch is an optional test oracle
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch (test oracle) is not installed")


def gradcheck_layer(layer, *inputs, second_order: bool = False, output=None) -> None:
    """gradcheck (and optionally gradgradcheck) of ``layer`` over its inputs AND every parameter.

    gradcheck perturbs float64 copies of what it is given, so the parameters go through the layer by
    ``functional_call``: a wrong gradient of any parameter fails the check. ``output`` post-processes
    the layer's output (e.g. ``tanh`` to make a linear layer's second derivatives non-zero).
    """
    names = [n for n, _ in layer.named_parameters()]
    params = [p for _, p in layer.named_parameters()]
    assert names or inputs, "nothing to check"
    k = len(inputs)

    def fn(*args):
        out = cr.nn.utils.functional_call(layer, dict(zip(names, args[k:])), args[:k])
        return out if output is None else output(out)

    cr.gradcheck(fn, [*inputs, *params])
    if second_order:
        cr.gradgradcheck(fn, [*inputs, *params])


@pytest.fixture(autouse=True)
def _seed():
    cr.manual_seed(0)
    np.random.seed(0)
    if torch is not None:
        torch.manual_seed(0)
    yield
