"""Training diagnostics: what each layer's gradients, weights and activations do, epoch by epoch.

``Diagnostics`` is a ``fit`` callback. For every layer with parameters (Linear, Conv ...) it records,
averaged over each epoch's batches:

- ``grad_norm``: ||dL/dW|| of the layer's weight (all its parameters when it has no ``weight``);
- ``weight_norm``: ||W||;
- ``update_ratio``: ||W_after - W_before|| / ||W_before|| for one optimizer step (about 1e-3 is healthy);
- ``act_mean``, ``act_std``: of the activation that follows the layer (or of its output);
- ``saturated``: fraction of sigmoid outputs below 0.01 or above 0.99 (tanh: |a| > 0.99), where the
  derivative is nearly 0; ``dead``: fraction of ReLU units that output 0 for every example of a batch.

A vanishing gradient shows as ``grad_norm`` falling layer after layer towards the input.
"""

from __future__ import annotations

import numpy as np

from .. import autograd
from ..train.callbacks import Callback

METRICS = ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "saturated", "dead")
_SATURATING = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Hardtanh": "tanh", "LogSigmoid": None}
_ACTIVATIONS = {"Sigmoid", "Tanh", "Hardtanh", "ReLU", "LeakyReLU", "PReLU", "ELU", "SELU", "GELU", "SiLU",
                "Softplus", "LogSigmoid", "ReLU6", "Mish"}


class _Layer:
    __slots__ = ("name", "module", "params", "activation", "kind", "sums", "counts", "before", "handles")

    def __init__(self, name, module):
        self.name, self.module = name, module
        w = module._parameters.get("weight")
        self.params = [w] if w is not None else [p for p in module._parameters.values() if p is not None]
        self.activation = None
        self.kind = None  # 'sigmoid', 'tanh', 'relu' or None
        self.sums: dict = {}
        self.counts: dict = {}
        self.before = None
        self.handles = []

    def add(self, key: str, value: float) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + value
        self.counts[key] = self.counts.get(key, 0) + 1


def _norm(arrays) -> float:
    return float(np.sqrt(sum(float(np.vdot(a, a)) for a in arrays)))


class Diagnostics(Callback):
    """Record per-layer gradient norms, weight norms, update ratios and activation statistics per epoch.

    >>> diag = cr.viz.Diagnostics()
    >>> cr.fit(model, (X, y), epochs=5, callbacks=[diag], verbose=0)
    >>> diag.history["0"]["grad_norm"]          # one value per epoch for layer "0"
    >>> diag.plot("diagnostics.png")

    Outside ``fit``, drive it by hand: ``diag.on_train_begin(model)`` once, then per step
    ``on_after_backward`` (gradients ready, before the step) and ``on_batch_end`` (after the step),
    and ``on_epoch_end`` per epoch; ``on_train_end`` removes its hooks.
    """

    def __init__(self, activations: bool = True):
        self.record_activations = activations
        self.layers: list = []
        self.history: dict = {}  # layer name -> metric -> [one value per epoch]
        self.epochs: list = []
        self.labels: dict = {}  # layer name -> how plots name it ("fc1", or "Linear 2" inside a Sequential)
        self.model = None

    # ---- setup -----------------------------------------------------------------------------------
    def on_train_begin(self, trainer) -> None:
        model = getattr(trainer, "model", trainer)
        self.trainer = trainer if model is not trainer else None
        self.model = model
        self._remove_hooks()
        self.layers = []
        current = None
        for name, m in model.named_modules():
            if any(p is not None for p in m._parameters.values()) and type(m).__name__ not in _ACTIVATIONS:
                current = _Layer(name or type(m).__name__, m)
                self.layers.append(current)
            elif current is not None and current.activation is None and type(m).__name__ in _ACTIVATIONS:
                current.activation = m
                kind = type(m).__name__
                current.kind = _SATURATING.get(kind) or ("relu" if kind == "ReLU" else None)
        if not self.layers:
            raise ValueError(f"Diagnostics: {type(model).__name__} has no layers with parameters to watch")
        self.labels = _display_names(self.layers)
        for layer in self.layers:
            self.history.setdefault(layer.name, {k: [] for k in METRICS})
            if self.record_activations:
                target = layer.activation if layer.activation is not None else layer.module
                layer.handles.append(_hook(target, self._activation_hook(layer)))

    def _activation_hook(self, layer: _Layer):
        def hook(module, args, output):
            if not module.training or not autograd.is_grad_enabled():
                return None  # validation and predictions are not training statistics
            a = output._data
            layer.add("act_mean", float(a.mean()))
            layer.add("act_std", float(a.std()))
            if layer.kind == "sigmoid":
                layer.add("saturated", float(((a < 0.01) | (a > 0.99)).mean()))
            elif layer.kind == "tanh":
                layer.add("saturated", float((np.abs(a) > 0.99).mean()))
            elif layer.kind == "relu" and a.ndim >= 1 and a.shape[0] > 0:
                units = a.reshape(a.shape[0], -1)
                layer.add("dead", float((units <= 0).all(axis=0).mean()))
            return None

        return hook

    def _remove_hooks(self) -> None:
        for layer in self.layers:
            for h in layer.handles:
                h.remove()
            layer.handles = []

    # ---- per step --------------------------------------------------------------------------------
    def on_after_backward(self, step: int, logs: dict | None = None) -> None:
        for layer in self.layers:
            grads = [p.grad._data for p in layer.params if p.grad is not None]
            if grads:
                layer.add("grad_norm", _norm(grads))
            layer.before = [p._data.copy() for p in layer.params]

    def on_batch_end(self, step: int, logs: dict | None = None) -> None:
        for layer in self.layers:
            if layer.before is None:
                continue
            w = _norm(layer.before)
            change = _norm([p._data - b for p, b in zip(layer.params, layer.before)])
            layer.add("update_ratio", change / w if w > 0 else 0.0)
            layer.add("weight_norm", _norm([p._data for p in layer.params]))
            layer.before = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epochs.append(epoch)
        for layer in self.layers:
            row = self.history[layer.name]
            for key in METRICS:
                n = layer.counts.get(key, 0)
                value = layer.sums.get(key, 0.0) / n if n else float("nan")
                if key == "weight_norm" and not n:
                    value = _norm([p._data for p in layer.params])
                row[key].append(value)
            layer.sums, layer.counts = {}, {}

    def on_train_end(self, logs: dict | None = None) -> None:
        self._remove_hooks()

    # ---- results ---------------------------------------------------------------------------------
    def series(self, metric: str) -> dict:
        """``{layer name: [value per epoch]}`` for one metric."""
        if metric not in METRICS:
            raise KeyError(f"Diagnostics: unknown metric {metric!r}; metrics are {', '.join(METRICS)}")
        return {name: list(rows[metric]) for name, rows in self.history.items()}

    def label(self, name: str) -> str:
        """How the plots and the table name layer ``name``: its attribute name (``fc1``, ``conv2``), or
        its class and rank among the model's layers of that class (``Linear 1``) inside a Sequential."""
        return self.labels.get(name, name)

    def to_text(self) -> str:
        """The last epoch, one row per layer."""
        head = f"{'layer':<12}" + "".join(f"{k:>14}" for k in METRICS)
        lines = [head]
        for name, rows in self.history.items():
            cells = "".join(f"{(rows[k][-1] if rows[k] else float('nan')):>14.4g}" for k in METRICS)
            lines.append(f"{self.label(name):<12}{cells}")
        return "\n".join(lines)

    def plot(self, path: str | None = None, metrics=None):
        """A panel per metric, a line per layer over the epochs (log scale for norms and ratios).
        By default: gradient norm, update ratio, activation std, and the saturated or dead fraction."""
        from .plots import plot_diagnostics

        if metrics is None:
            units = [m for m in ("saturated", "dead") if any(np.isfinite(v).any() for v in self.series(m).values())]
            metrics = ("grad_norm", "update_ratio", "act_std", *units)
        return plot_diagnostics(self, path, metrics)

    def plot_gradient_norms(self, path: str | None = None, ax=None):
        from .plots import plot_gradient_norms

        return plot_gradient_norms(self, path, ax=ax)


def _display_names(layers: list) -> dict:
    counts: dict = {}
    names = {}
    for layer in layers:
        kind = type(layer.module).__name__
        counts[kind] = counts.get(kind, 0) + 1
        last = layer.name.rsplit(".", 1)[-1]
        names[layer.name] = f"{kind} {counts[kind]}" if last.isdigit() or layer.name == kind else layer.name
    return names


def _hook(module, fn):
    """A forward hook, through ``register_forward_hook`` when the module has it."""
    if hasattr(module, "register_forward_hook"):
        return module.register_forward_hook(fn)
    original = module.forward

    def forward(*args, **kwargs):
        out = original(*args, **kwargs)
        fn(module, args, out)
        return out

    module.__dict__["forward"] = forward

    class _Handle:
        def remove(self_inner):
            module.__dict__.pop("forward", None)

    return _Handle()
