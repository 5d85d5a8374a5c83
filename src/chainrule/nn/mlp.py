"""MLP: the multi-layer perceptron of the lecture, as a Sequential of Linear and activation layers."""

from __future__ import annotations

from .activation import activation_class
from .config import from_config, register_config
from .container import Sequential
from .linear import Dropout, Linear
from .module import Module


def _factory(spec, what: str):
    """Turn an activation given as a name, a Module class or a configurable instance into
    (a function making a fresh layer, a JSON-able description)."""
    if spec is None:
        return None, None
    if isinstance(spec, str):
        cls = activation_class(spec)
        return (cls, spec) if cls is not None else (None, spec)
    if isinstance(spec, type) and issubclass(spec, Module):
        return spec, spec.__name__
    if isinstance(spec, Module):
        config = spec.get_config()
        return (lambda: from_config(config)), config
    if isinstance(spec, dict):
        return (lambda: from_config(spec)), spec
    raise TypeError(f"MLP: {what} must be a name like 'relu', a Module class or a Module, got {spec!r}")


@register_config
class MLP(Sequential):
    """Fully connected network: Linear layers of the given ``sizes`` with ``activation`` between them.

    ``MLP([64, 128, 10])`` is ``Sequential(Linear(64, 128), ReLU(), Linear(128, 10))``: the same
    layers and state-dict keys (``0.weight``, ``0.bias``, ``2.weight``, ...) as that PyTorch Sequential.
    ``dropout > 0`` adds a Dropout after each hidden activation; ``output_activation`` (e.g.
    ``'sigmoid'``) is appended after the last Linear. Activations are names (``'relu'``,
    ``'leaky_relu'``, ``'tanh'``, ...), Module classes (``cr.nn.GELU``) or configured layers
    (``cr.nn.LeakyReLU(0.1)``, copied for each position).

    >>> model = cr.nn.MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid")
    >>> model.num_parameters()
    9
    """

    def __init__(self, sizes, activation="relu", output_activation=None, dropout: float = 0.0,
                 bias: bool = True) -> None:
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or any(n < 1 for n in sizes):
            raise ValueError(f"MLP: sizes must list at least two positive layer widths, got {sizes}")
        if isinstance(dropout, bool) or not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"MLP: dropout must be in [0, 1), got {dropout!r}")
        make_hidden, hidden_desc = _factory(activation, "activation")
        make_output, output_desc = _factory(output_activation, "output_activation")
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(n_in, n_out, bias=bias))
            if i < len(sizes) - 2:
                if make_hidden is not None:
                    layers.append(make_hidden())
                if dropout:
                    layers.append(Dropout(float(dropout)))
        if make_output is not None:
            layers.append(make_output())
        super().__init__(*layers)
        self.sizes = sizes
        self._args = {"sizes": sizes, "activation": hidden_desc, "output_activation": output_desc,
                      "dropout": float(dropout), "bias": bool(bias)}

    def get_config(self) -> dict:
        return {"class": "MLP", "args": dict(self._args)}

    @classmethod
    def _from_config_args(cls, args: dict):
        return cls(**args)
