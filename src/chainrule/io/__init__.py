"""Saving and loading: checkpoints in the safetensors format with JSON metadata; never pickle.

``cr.save``, ``cr.load`` and ``cr.load_model`` are re-exported at the top level, and so is
``cr.export_onnx`` (a model as an ONNX file for other runtimes; needs ``pip install 'chainrule[onnx]'``).
"""

from .checkpoint import get_rng_state, load, load_model, save, set_rng_state
from .onnx import export_onnx
from .safetensors import CheckpointError, atomic_write, read_safetensors, write_safetensors

__all__ = [
    "CheckpointError",
    "atomic_write",
    "export_onnx",
    "get_rng_state",
    "load",
    "load_model",
    "read_safetensors",
    "save",
    "set_rng_state",
    "write_safetensors",
]
