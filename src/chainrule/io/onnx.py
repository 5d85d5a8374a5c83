"""ONNX export: a trained model as an ``.onnx`` file that other runtimes (onnxruntime, ...) can serve.

``export_onnx(model, example_input, path)`` walks the model's layers in the order its forward applies
them and writes one ONNX node (or a few) per layer, with the weights as initializers. It understands

- containers whose forward is the chain of their children: ``Sequential`` and ``MLP``;
- ``LeNet``, whose forward is known (conv, [bn], relu, pool, conv, [bn], relu, pool, flatten, fc, ...);
- any other Module whose forward is a plain chain of supported layers (each layer's input the previous
  layer's output): checked by running the forward once on ``example_input`` with hooks on the layers.

The export is in eval semantics: dropout disappears and batch norm normalises with its running
statistics. The spatial sizes of ``example_input`` are fixed in the graph; the batch dimension stays
free with ``dynamic_batch=True``. The package ``onnx`` builds and checks the model (``pip install
'chainrule[onnx]'``); the tests compare onnxruntime's outputs with the model's own.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np

from .. import autograd
from ..nn.activation import (
    ELU,
    GELU,
    SELU,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    PReLU,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from ..nn.container import Sequential
from ..nn.conv import Conv1d, Conv2d, Dropout2d
from ..nn.linear import Dropout, Flatten, Identity, Linear, Unflatten
from ..nn.models import LeNet
from ..nn.module import Module
from ..nn.normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from ..nn.pooling import AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from ..nn.sparse import Embedding
from ..tensor import Tensor
from .safetensors import atomic_write

_MIN_OPSET = 13  # Softmax over one axis, Reshape/Unsqueeze with tensor inputs


def _onnx():
    """The ``onnx`` package, imported on first use: the core of chainrule needs NumPy only."""
    try:
        import onnx
        import onnx.checker
        import onnx.helper
        import onnx.numpy_helper
    except ImportError:
        raise ImportError("exporting to ONNX needs the onnx package: pip install 'chainrule[onnx]'") from None
    return onnx


# ---- from the model to a chain of layers ---------------------------------------------------------
_DROPPED = (Dropout, Dropout2d, Identity)  # identity in eval mode: no node


def _is_chain_container(module: Module) -> bool:
    return isinstance(module, Sequential) and type(module).forward is Sequential.forward


def _is_known_lenet(module: Module) -> bool:
    return isinstance(module, LeNet) and type(module).forward is LeNet.forward


def _lenet_steps(net: LeNet, prefix: str) -> list:
    """LeNet.forward written out as a chain (the relu and flatten are Tensor methods there)."""
    p = f"{prefix}." if prefix else ""
    steps = [(f"{p}conv1", net.conv1)]
    if net.batch_norm:
        steps.append((f"{p}bn1", net.bn1))
    steps += [(f"{p}relu1", ReLU()), (f"{p}pool", net.pool), (f"{p}conv2", net.conv2)]
    if net.batch_norm:
        steps.append((f"{p}bn2", net.bn2))
    steps += [(f"{p}relu2", ReLU()), (f"{p}pool", net.pool), (f"{p}flatten", Flatten(1)),
              (f"{p}fc1", net.fc1), (f"{p}relu3", ReLU())]
    if net.dropout:
        steps.append((f"{p}drop", net.drop))
    steps += [(f"{p}fc2", net.fc2), (f"{p}relu4", ReLU()), (f"{p}fc3", net.fc3)]
    return steps


def _unsupported(module: Module, name: str) -> TypeError:
    where = f" ('{name}')" if name else ""
    return TypeError(
        f"export_onnx: layer {type(module).__name__}{where} is not supported; supported layers are "
        f"{', '.join(sorted(c.__name__ for c in _EMITTERS))}, and Sequential, LeNet or Modules whose "
        f"forward applies such layers one after another"
    )


def _trace_chain(module: Module, name: str, x: Tensor) -> list:
    """The layers a custom module's forward applies to ``x``, in order, checking that they form a plain
    chain: each one's input is the previous one's output and the forward returns the last output."""
    if next(iter(module.children()), None) is None:  # a layer of its own, not a chain of layers
        raise _unsupported(module, name)
    atoms, unsupported = [], []
    for sub_name, sub in module.named_modules(prefix=name):
        if sub is module:
            continue
        if _is_known_lenet(sub) or type(sub) in _EMITTERS:
            atoms.append((sub_name, sub))
        elif not _is_chain_container(sub) and next(iter(sub.children()), None) is None:
            unsupported.append((sub_name, sub))
    # only the outermost atoms: a LeNet's own layers are walked by _lenet_steps
    lenets = [f"{n}." for n, m in atoms if _is_known_lenet(m)]
    atoms = [(n, m) for n, m in atoms if not any(n.startswith(p) for p in lenets)]
    calls, handles = [], []

    def record(sub_name):
        def hook(sub, args, output):
            calls.append((sub_name, sub, args, output))
        return hook

    for sub_name, sub in atoms + unsupported:
        handles.append(sub.register_forward_hook(record(sub_name)))
    try:
        output = module(x)
    finally:
        for handle in handles:
            handle.remove()
    steps, current = [], x
    for sub_name, sub, args, out in calls:
        if any(sub is m for _, m in unsupported):
            raise _unsupported(sub, sub_name)
        if len(args) != 1 or args[0] is not current:
            raise TypeError(
                f"export_onnx: the forward of {type(module).__name__}{f' ({name!r})' if name else ''} is "
                f"not a plain chain of layers: '{sub_name}' ({type(sub).__name__}) does not take the previous "
                f"layer's output as its only input; write it as a Sequential of supported layers"
            )
        steps.append((sub_name, sub))
        current = out
    if output is not current:
        raise TypeError(
            f"export_onnx: the forward of {type(module).__name__}{f' ({name!r})' if name else ''} is not a "
            f"plain chain of layers: it computes something after its last layer"
            f"{f' ({steps[-1][0]!r})' if steps else ''} or besides its layers; write it as a Sequential "
            f"of supported layers"
        )
    return [step for sub_name, sub in steps for step in _steps(sub, sub_name, None)] if steps else []


def _steps(module: Module, name: str, x: Tensor | None) -> list:
    """(qualified name, layer) pairs in the order ``module``'s forward applies them."""
    if _is_chain_container(module):
        return [step for child_name, child in module.named_children()
                for step in _steps(child, f"{name}.{child_name}" if name else child_name, None)]
    if _is_known_lenet(module):
        return _lenet_steps(module, name)
    if type(module) in _EMITTERS:
        return [(name, module)]
    if x is None:  # a custom module inside a container: traced when its input is known
        return [(name, _Traced(module))]
    return _trace_chain(module, name, x)


class _Traced:
    """A custom module met inside a container, expanded once its input is known."""

    def __init__(self, module: Module) -> None:
        self.module = module


# ---- the graph under construction ----------------------------------------------------------------
class _Graph:
    """Nodes and initializers; ``value`` holds the traced value of the current tensor (for shapes)."""

    def __init__(self, onnx, dtype: np.dtype, opset: int) -> None:
        self.onnx, self.helper = onnx, onnx.helper
        self.dtype, self.opset = dtype, opset
        self.nodes, self.initializers, self._names, self._params = [], [], set(), {}

    def fresh(self, base: str) -> str:
        base = base or "t"
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def constant(self, name: str, array, dtype=None) -> str:
        array = np.asarray(array, dtype=self.dtype if dtype is None else dtype)
        unique = self.fresh(name.lstrip("."))  # a top-level layer has the name "": ".weight" -> "weight"
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), unique))
        return unique

    def parameter(self, name: str, tensor: Tensor, shape: tuple | None = None, transpose: bool = False) -> str:
        """A parameter or buffer as an initializer, shared when a layer is applied twice."""
        key = (id(tensor), shape, transpose)
        if key not in self._params:
            array = tensor._data.astype(self.dtype, copy=False)
            if transpose:
                array = array.T
            if shape is not None:
                array = array.reshape(shape)
            self._params[key] = self.constant(name, array)
        return self._params[key]

    def node(self, op: str, inputs: list, name: str, **attributes) -> str:
        output = self.fresh(f"{name}/{op}" if name else op)
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


# ---- one emitter per layer class: (graph, layer, name, x, input value, output value) -> output name ----
def _linear(g: _Graph, layer: Linear, name: str, x: str, value: np.ndarray, out: np.ndarray) -> str:
    bias = [g.parameter(f"{name}.bias", layer.bias)] if layer.bias is not None else []
    if value.ndim == 2:
        return g.node("Gemm", [x, g.parameter(f"{name}.weight", layer.weight)] + bias, name, transB=1)
    y = g.node("MatMul", [x, g.parameter(f"{name}.weight", layer.weight, transpose=True)], name)
    return g.node("Add", [y] + bias, name) if bias else y


def _simple(op: str, **attributes) -> Callable:
    def emit(g, layer, name, x, value, out):
        return g.node(op, [x], name, **attributes)
    return emit


def _leaky_relu(g, layer: LeakyReLU, name, x, value, out):
    return g.node("LeakyRelu", [x], name, alpha=layer.negative_slope)


def _prelu(g, layer: PReLU, name, x, value, out):
    n = layer.weight._data.size
    # one slope per channel (dimension 1), broadcast over the dimensions after it
    shape = (1,) if n == 1 else (n,) + (1,) * max(value.ndim - 2, 0)
    return g.node("PRelu", [x, g.parameter(f"{name}.weight", layer.weight, shape=shape)], name)


def _elu(g, layer: ELU, name, x, value, out):
    return g.node("Elu", [x], name, alpha=layer.alpha)


def _selu(g, layer, name, x, value, out):
    return g.node("Selu", [x], name, alpha=1.6732632423543772, gamma=1.0507009873554805)


def _gelu(g, layer: GELU, name, x, value, out):
    if g.opset >= 20:
        return g.node("Gelu", [x], name, approximate=layer.approximate)
    half_x = g.node("Mul", [x, g.constant(f"{name}.half", 0.5)], name)
    if layer.approximate == "tanh":  # x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.node("Mul", [g.node("Mul", [x, x], name), x], name)
        inner = g.node("Add", [x, g.node("Mul", [cube, g.constant(f"{name}.c", 0.044715)], name)], name)
        phi = g.node("Tanh", [g.node("Mul", [inner, g.constant(f"{name}.k", math.sqrt(2 / math.pi))], name)],
                     name)
    else:  # x/2 (1 + erf(x / sqrt 2))
        phi = g.node("Erf", [g.node("Mul", [x, g.constant(f"{name}.inv_sqrt2", 1 / math.sqrt(2))], name)], name)
    return g.node("Mul", [half_x, g.node("Add", [phi, g.constant(f"{name}.one", 1.0)], name)], name)


def _silu(g, layer, name, x, value, out):
    return g.node("Mul", [x, g.node("Sigmoid", [x], name)], name)


def _softplus(g, layer: Softplus, name, x, value, out):
    """log(1 + e^{beta x}) / beta, and x where beta x > threshold (PyTorch's rule)."""
    scaled = x if layer.beta == 1.0 else g.node("Mul", [x, g.constant(f"{name}.beta", layer.beta)], name)
    soft = g.node("Softplus", [scaled], name)
    if layer.beta != 1.0:
        soft = g.node("Div", [soft, g.constant(f"{name}.beta", layer.beta)], name)
    linear = g.node("Greater", [scaled, g.constant(f"{name}.threshold", layer.threshold)], name)
    return g.node("Where", [linear, x, soft], name)


def _logsigmoid(g, layer, name, x, value, out):  # log sigmoid(x) = -softplus(-x)
    return g.node("Neg", [g.node("Softplus", [g.node("Neg", [x], name)], name)], name)


def _hardtanh(g, layer: Hardtanh, name, x, value, out):
    return g.node("Clip", [x, g.constant(f"{name}.min", layer.min_val), g.constant(f"{name}.max", layer.max_val)],
                  name)


def _softmax(op: str) -> Callable:
    def emit(g, layer, name, x, value, out):
        return g.node(op, [x], name, axis=-1 if layer.dim is None else int(layer.dim))
    return emit


def _reshape(g: _Graph, name: str, x: str, shape: list) -> str:
    return g.node("Reshape", [x, g.constant(f"{name}.shape", shape, dtype=np.int64)], name)


def _flatten(g, layer: Flatten, name, x, value, out):
    start, end = layer.start_dim % value.ndim, layer.end_dim % value.ndim
    if start == 0 and g.dynamic_batch:
        raise ValueError(f"export_onnx: {name or 'Flatten'} merges the batch dimension (start_dim=0), "
                         f"which cannot stay dynamic; export with dynamic_batch=False")
    if start == 1 and end == value.ndim - 1:
        return g.node("Flatten", [x], name, axis=1)
    # 0 copies the input's size (the batch), -1 lets the runtime infer the merged size
    return _reshape(g, name, x, [0] * start + [-1] + list(value.shape[end + 1:]))


def _unflatten(g, layer: Unflatten, name, x, value, out):
    dim = layer.dim % value.ndim
    if dim == 0 and g.dynamic_batch:
        raise ValueError(f"export_onnx: {name or 'Unflatten'} splits the batch dimension (dim=0), "
                         f"which cannot stay dynamic; export with dynamic_batch=False")
    return _reshape(g, name, x, [0] * dim + list(out.shape[dim:dim + len(layer.unflattened_size)])
                    + list(value.shape[dim + 1:]))


def _ints(value, n: int) -> tuple:
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * n


def _conv(g, layer, name, x, value, out):
    n = layer._spatial
    if isinstance(layer.padding, str):  # 'valid' or 'same' (stride 1): d (k - 1) in all, the odd one after
        total = [0 if layer.padding == "valid" else d * (k - 1) for k, d in zip(layer.kernel_size, layer.dilation)]
        before, after = [t // 2 for t in total], [t - t // 2 for t in total]
    else:
        before = after = list(_ints(layer.padding, n))
    inputs = [x, g.parameter(f"{name}.weight", layer.weight)]
    if layer.bias is not None:
        inputs.append(g.parameter(f"{name}.bias", layer.bias))
    return g.node("Conv", inputs, name, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                  dilations=list(layer.dilation), pads=list(before) + list(after), group=layer.groups)


def _pool_window(layer, spatial: int, value: np.ndarray, out: np.ndarray) -> tuple:
    """kernel, stride, dilation, pads before and after. ceil_mode becomes extra padding after, so the
    output has the model's size without relying on each runtime's ceil rule."""
    kernel = _ints(layer.kernel_size, spatial)
    stride = kernel if layer.stride is None or layer.stride == () else _ints(layer.stride, spatial)
    dilation = _ints(getattr(layer, "dilation", 1), spatial)
    pads = _ints(layer.padding, spatial)
    size, out_size = value.shape[-spatial:], out.shape[-spatial:]
    after = [max((o - 1) * s + d * (k - 1) + 1 - n - p, p)
             for n, k, s, p, d, o in zip(size, kernel, stride, pads, dilation, out_size)]
    return kernel, stride, dilation, list(pads), after


def _max_pool(spatial: int) -> Callable:
    def emit(g, layer, name, x, value, out):
        if layer.return_indices:
            raise ValueError(f"export_onnx: {name or type(layer).__name__} returns indices "
                             f"(return_indices=True); only the pooled values can be exported")
        kernel, stride, dilation, before, after = _pool_window(layer, spatial, value, out)
        return g.node("MaxPool", [x], name, kernel_shape=list(kernel), strides=list(stride),
                      dilations=list(dilation), pads=before + after)
    return emit


def _avg_pool(spatial: int) -> Callable:
    def emit(g, layer, name, x, value, out):
        kernel, stride, _, before, after = _pool_window(layer, spatial, value, out)
        # ONNX averages the real entries only (count_include_pad=0); PyTorch's divisor may differ:
        # the window clipped to the padded input, or divisor_override. Scale by real / divisor.
        real, divisor = [], []
        for n, k, s, p, o in zip(value.shape[-spatial:], kernel, stride, before, out.shape[-spatial:]):
            start = np.arange(o) * s - p
            end = np.minimum(start + k, n + p)
            real.append(np.minimum(end, n) - np.maximum(start, 0))
            divisor.append(end - start if layer.count_include_pad else real[-1])
        real = real[0] if spatial == 1 else np.multiply.outer(real[0], real[1])
        divisor = divisor[0] if spatial == 1 else np.multiply.outer(divisor[0], divisor[1])
        override = getattr(layer, "divisor_override", None)
        if override:
            divisor = np.full_like(divisor, override)
        y = g.node("AveragePool", [x], name, kernel_shape=list(kernel), strides=list(stride),
                   pads=before + after, count_include_pad=0)
        scale = real / divisor
        if np.all(scale == 1):
            return y
        return g.node("Mul", [y, g.constant(f"{name}.scale", scale)], name)
    return emit


def _adaptive_avg_pool(spatial: int) -> Callable:
    def emit(g, layer, name, x, value, out):
        size, out_size = value.shape[-spatial:], out.shape[-spatial:]
        if all(o == 1 for o in out_size):
            return g.node("GlobalAveragePool", [x], name)
        if any(n % o for n, o in zip(size, out_size)):
            raise ValueError(
                f"export_onnx: {name or type(layer).__name__} pools an input of size {tuple(size)} to "
                f"{tuple(out_size)}; only an output of size 1 or one that divides the input size evenly "
                f"can be exported"
            )
        kernel = [n // o for n, o in zip(size, out_size)]
        return g.node("AveragePool", [x], name, kernel_shape=kernel, strides=kernel)
    return emit


def _batch_norm(g, layer, name, x, value, out):
    if layer.running_mean is None:
        raise ValueError(f"export_onnx: {name or type(layer).__name__} has no running statistics "
                         f"(track_running_stats=False), so its eval output depends on the batch")
    c = layer.num_features
    scale = layer.weight._data if layer.affine else np.ones(c)
    shift = layer.bias._data if layer.affine else np.zeros(c)
    if value.ndim >= 3:
        return g.node("BatchNormalization", [
            x, g.constant(f"{name}.weight", scale), g.constant(f"{name}.bias", shift),
            g.parameter(f"{name}.running_mean", layer.running_mean),
            g.parameter(f"{name}.running_var", layer.running_var),
        ], name, epsilon=layer.eps)
    # (N, C): y = x * gamma / sqrt(var + eps) + (beta - mean * gamma / sqrt(var + eps))
    mean, var = (t._data.astype(np.float64) for t in (layer.running_mean, layer.running_var))
    factor = scale.astype(np.float64) / np.sqrt(var + layer.eps)
    y = g.node("Mul", [x, g.constant(f"{name}.scale", factor)], name)
    return g.node("Add", [y, g.constant(f"{name}.shift", shift - mean * factor)], name)


def _layer_norm(g, layer: LayerNorm, name, x, value, out):
    if g.opset < 17:
        raise ValueError(f"export_onnx: {name or 'LayerNorm'} needs ONNX's LayerNormalization, which is in opset 17 "
                         f"and later; export with opset=17 or higher (got {g.opset})")
    shape = layer.normalized_shape
    scale = g.parameter(f"{name}.weight", layer.weight) if layer.weight is not None else \
        g.constant(f"{name}.weight", np.ones(shape))
    inputs = [x, scale] + ([g.parameter(f"{name}.bias", layer.bias)] if layer.bias is not None else [])
    return g.node("LayerNormalization", inputs, name, axis=-len(shape), epsilon=layer.eps)


def _embedding(g, layer: Embedding, name, x, value, out):
    if layer.max_norm is not None:
        raise ValueError(f"export_onnx: {name or 'Embedding'} has max_norm={layer.max_norm}, which rescales its "
                         f"table during the forward; export a copy without max_norm")
    if value.dtype.kind not in "iu":
        raise TypeError(f"export_onnx: {name or 'Embedding'} reads integer indices, but its input is {value.dtype}")
    return g.node("Gather", [g.parameter(f"{name}.weight", layer.weight), x], name, axis=0)


_EMITTERS: dict[type, Callable] = {
    Linear: _linear, ReLU: _simple("Relu"), LeakyReLU: _leaky_relu, PReLU: _prelu, ELU: _elu,
    SELU: _selu, GELU: _gelu, SiLU: _silu, Sigmoid: _simple("Sigmoid"), Tanh: _simple("Tanh"),
    Softplus: _softplus, LogSigmoid: _logsigmoid, Hardtanh: _hardtanh,
    Softmax: _softmax("Softmax"), LogSoftmax: _softmax("LogSoftmax"),
    Flatten: _flatten, Unflatten: _unflatten, Dropout: None, Dropout2d: None, Identity: None,
    Conv1d: _conv, Conv2d: _conv, MaxPool1d: _max_pool(1), MaxPool2d: _max_pool(2),
    AvgPool1d: _avg_pool(1), AvgPool2d: _avg_pool(2),
    AdaptiveAvgPool1d: _adaptive_avg_pool(1), AdaptiveAvgPool2d: _adaptive_avg_pool(2),
    BatchNorm1d: _batch_norm, BatchNorm2d: _batch_norm, LayerNorm: _layer_norm, Embedding: _embedding,
}  # fmt: skip


# ---- the export -----------------------------------------------------------------------------------
def _model_dtype(model: Module, example: np.ndarray) -> np.dtype:
    for p in model.parameters():
        if p._data.dtype.kind == "f":
            return p._data.dtype
    return example.dtype if example.dtype.kind == "f" else np.dtype(np.float32)


def _build(g: _Graph, model: Module, x: Tensor) -> tuple:
    """Emit the model's nodes; the name of the last tensor and the value the layers computed."""
    pending = _steps(model, "", x)
    name, current = g.input_name, x
    while pending:
        step_name, layer = pending.pop(0)
        if isinstance(layer, _Traced):
            pending[:0] = _trace_chain(layer.module, step_name, current)
            continue
        if type(layer) not in _EMITTERS:
            raise _unsupported(layer, step_name)
        out = layer(current)
        emit = _EMITTERS[type(layer)]
        if emit is not None:
            name = emit(g, layer, step_name, name, current._data, out._data)
        current = out
    return name, current


def export_onnx(model: Module, example_input, path, input_name: str = "input", output_name: str = "output",
                opset: int = 17, dynamic_batch: bool = True, batch_name: str = "batch"):
    """Write ``model`` to ``path`` as an ONNX model (eval semantics) and return the ``onnx.ModelProto``.

    ``example_input`` (a Tensor or array of shape (N, ...)) fixes the input's shape except the batch
    size N, which stays free (named ``batch_name``) when ``dynamic_batch``; the dtype is the model's
    (float32 by default), or int64 for integer indices (a model that starts with an Embedding).
    Supported: Sequential/MLP, LeNet and Modules whose forward chains supported layers — Linear,
    Conv1d/2d, Max/AvgPool1d/2d, AdaptiveAvgPool1d/2d (to size 1 or an even divisor), BatchNorm1d/2d,
    LayerNorm (opset 17+), Embedding, Flatten, Unflatten, Dropout/Dropout2d/Identity (dropped), and the activations ReLU, LeakyReLU, PReLU,
    ELU, SELU, GELU, SiLU, Sigmoid, Tanh, Softplus, LogSigmoid, Hardtanh, Softmax, LogSoftmax.
    Other layers raise ``TypeError`` naming them. The file is checked with ``onnx.checker`` and
    written atomically.

    >>> model = cr.nn.MLP([4, 8, 3])
    >>> proto = cr.io.export_onnx(model, cr.zeros(1, 4), "mlp.onnx")   # doctest: +SKIP
    >>> import onnxruntime as ort                                       # doctest: +SKIP
    >>> ort.InferenceSession("mlp.onnx").run(None, {"input": x})[0]     # doctest: +SKIP
    """
    onnx = _onnx()
    if not isinstance(model, Module):
        raise TypeError(f"export_onnx: model must be a chainrule Module, got {type(model).__name__}")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"export_onnx: path must be a str or os.PathLike, got {type(path).__name__}")
    max_opset = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not _MIN_OPSET <= opset <= max_opset:
        raise ValueError(f"export_onnx: opset must be an int from {_MIN_OPSET} to {max_opset} (the installed "
                         f"onnx's newest), got {opset!r}")
    if not input_name or not output_name or input_name == output_name:
        raise ValueError(f"export_onnx: input_name and output_name must be different non-empty names, got "
                         f"{input_name!r} and {output_name!r}")
    example = example_input._data if isinstance(example_input, Tensor) else np.asarray(example_input)
    if example.ndim < 1 or example.shape[0] < 1:
        raise ValueError(f"export_onnx: example_input must have a batch dimension of size at least 1, got "
                         f"shape {example.shape}")
    dtype = _model_dtype(model, example)
    tensor_type = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    indices = example.dtype.kind in "iu"  # token indices for an Embedding stay integers
    input_dtype = np.dtype(np.int64) if indices else dtype
    input_type = onnx.helper.np_dtype_to_tensor_dtype(input_dtype)

    g = _Graph(onnx, dtype, opset)
    g.dynamic_batch, g.input_name = bool(dynamic_batch), input_name
    g.fresh(input_name)
    g.fresh(output_name)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with autograd.no_grad():
            x = Tensor._wrap(np.ascontiguousarray(example, dtype=input_dtype))
            name, traced = _build(g, model, x)
            expected = model(x)
    finally:
        for m, mode in modes:
            m.training = mode
    if not isinstance(expected, Tensor) or expected.shape != traced.shape or not np.allclose(
            expected._data, traced._data, rtol=1e-4, atol=1e-5, equal_nan=True):
        raise TypeError(f"export_onnx: {type(model).__name__}'s forward is not the chain of its layers; write "
                        f"it as a Sequential of supported layers")

    if g.nodes and g.nodes[-1].output[0] == name:
        g.nodes[-1].output[0] = output_name
    else:  # nothing but dropped layers: the output is the input
        g.nodes.append(onnx.helper.make_node("Identity", [name], [output_name], name="output"))
    batch = batch_name if dynamic_batch else None

    def value_info(value_name: str, shape: tuple, kind=tensor_type):
        dims = [batch or shape[0]] + list(shape[1:]) if shape else []
        return onnx.helper.make_tensor_value_info(value_name, kind, dims)

    graph = onnx.helper.make_graph(
        g.nodes, type(model).__name__, [value_info(input_name, example.shape, input_type)],
        [value_info(output_name, traced.shape)], initializer=g.initializers,
    )
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(graph, opset_imports=opsets, producer_name="chainrule",
                                   ir_version=onnx.helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    atomic_write(path, lambda f: f.write(data))
    return proto
