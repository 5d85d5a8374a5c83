"""``cr.onnx.export``: PyTorch's ``torch.onnx.export`` signature over chainrule's exporter
(:func:`chainrule.io.export_onnx`), so a tutorial's export line runs unchanged.

>>> model = cr.nn.Sequential(cr.nn.Linear(4, 8), cr.nn.ReLU(), cr.nn.Linear(8, 3))
>>> cr.onnx.export(model, cr.randn(1, 4), "model.onnx", input_names=["x"], output_names=["y"],
...                dynamic_axes={"x": {0: "batch_size"}, "y": {0: "batch_size"}})   # doctest: +SKIP

What the exporter can write: one input tensor and one output, the layers listed in
:func:`chainrule.io.export_onnx`, and only the batch dimension (axis 0) left free; anything else is
refused with an error that says so.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .io.onnx import export_onnx
from .tensor import Tensor

__all__ = ["export", "is_in_onnx_export"]

_IGNORED = {"do_constant_folding", "verbose", "keep_initializers_as_inputs", "dynamo", "external_data",
            "report", "verify", "optimize", "profile", "dump_exported_program", "artifacts_dir", "fallback",
            "export_modules_as_functions", "autograd_inlining", "operator_export_type", "custom_opsets"}


def _single(names, what: str, default: str) -> str:
    if names is None:
        return default
    names = list(names)
    if len(names) != 1 or not isinstance(names[0], str):
        raise ValueError(f"onnx.export: chainrule's exporter writes one {what[:-1]}, so {what} must be a list of one "
                         f"name, got {names!r}")
    return names[0]


def _dynamic_batch(dynamic_axes, input_name: str, output_name: str) -> tuple[bool, str]:
    """Whether axis 0 is dynamic, and its name; any other dynamic axis is refused."""
    if not dynamic_axes:
        return False, "batch"
    if not isinstance(dynamic_axes, dict):
        raise TypeError(f"onnx.export: dynamic_axes must be a dict {{name: {{axis: axis_name}}}} or "
                        f"{{name: [axes]}}, got {type(dynamic_axes).__name__}")
    batch_names = []
    for name, axes in dynamic_axes.items():
        if name not in (input_name, output_name):
            raise ValueError(f"onnx.export: dynamic_axes names {name!r}, which is neither the input {input_name!r} "
                             f"nor the output {output_name!r}")
        named = axes if isinstance(axes, dict) else {int(a): None for a in axes}
        for axis, axis_name in named.items():
            if int(axis) != 0:
                raise ValueError(f"onnx.export: axis {axis} of {name!r} cannot be dynamic; chainrule's exporter "
                                 f"fixes every dimension but the batch (axis 0)")
            if axis_name is not None:
                batch_names.append(str(axis_name))
    if len(set(batch_names)) > 1:
        raise ValueError(f"onnx.export: the input and output batch dimensions must share one name, got "
                         f"{sorted(set(batch_names))}")
    return True, batch_names[0] if batch_names else "batch"


def _example(args):
    if isinstance(args, Tensor) or not isinstance(args, (tuple, list)):
        return args
    args = list(args)
    if args and isinstance(args[-1], dict):  # PyTorch's trailing dict of keyword arguments
        if args[-1]:
            raise ValueError("onnx.export: keyword arguments for the model's forward are not supported by "
                             "chainrule's exporter")
        args.pop()
    if len(args) != 1:
        raise ValueError(f"onnx.export: chainrule's exporter handles models with one input tensor; args holds "
                         f"{len(args)}")
    return args[0]


def export(model, args, f=None, export_params: bool = True, verbose=None, training=None, input_names=None,
           output_names=None, opset_version: int | None = None, dynamic_axes=None, **options) -> None:
    """Export ``model`` to ``f`` (a path or a binary file object) as ONNX, as ``torch.onnx.export``.

    ``args`` is the example input (a Tensor, or a tuple holding one); ``input_names`` and
    ``output_names`` are lists of one name each (default ``input`` and ``output``); ``dynamic_axes``
    may free axis 0 of the input and output (``{"input": {0: "batch_size"}, "output": {0: "batch_size"}}``);
    without it every dimension is fixed, as in PyTorch. ``opset_version`` defaults to 17. The export is
    in eval mode (dropout off, batch norm's running statistics). Options that only tune PyTorch's own
    exporter (``do_constant_folding``, ``verbose``, ``dynamo``, ...) are accepted and have no effect.
    """
    unknown = sorted(set(options) - _IGNORED - {"kwargs"})
    if unknown:
        raise TypeError(f"onnx.export: unexpected keyword argument(s) {', '.join(map(repr, unknown))}")
    if options.get("kwargs"):
        raise ValueError("onnx.export: keyword arguments for the model's forward are not supported by chainrule's "
                         "exporter")
    if not export_params:
        raise ValueError("onnx.export: export_params=False (a graph without its weights) is not supported; the "
                         "weights are always stored in the file")
    if training not in (None, False) and str(training).split(".")[-1] not in ("EVAL", "PRESERVE"):
        raise ValueError(f"onnx.export: training={training!r} is not supported; chainrule exports in eval mode")
    if f is None:
        raise ValueError("onnx.export: f (the file to write: a path or a binary file object) is required")
    input_name = _single(input_names, "input_names", "input")
    output_name = _single(output_names, "output_names", "output")
    dynamic, batch_name = _dynamic_batch(dynamic_axes, input_name, output_name)
    example = _example(args)
    opset = 17 if opset_version is None else opset_version
    common = dict(input_name=input_name, output_name=output_name, opset=opset, dynamic_batch=dynamic,
                  batch_name=batch_name)
    if isinstance(f, (str, os.PathLike)):
        export_onnx(model, example, f, **common)
        return None
    if not hasattr(f, "write"):
        raise TypeError(f"onnx.export: f must be a path or a binary file object, got {type(f).__name__}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        export_onnx(model, example, path, **common)
        f.write(path.read_bytes())
    return None


def is_in_onnx_export() -> bool:
    """Always False: chainrule's exporter walks the layers, it does not run the model in a special mode."""
    return False
