"""cr.onnx.export with torch.onnx.export's signature: names, dynamic batch, file objects, the new
LayerNorm and Embedding emitters (checked with onnxruntime), and clear errors for what it cannot write."""

from __future__ import annotations

import io

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import chainrule as cr
import chainrule.nn as nn


def _session(source):
    return ort.InferenceSession(source if isinstance(source, bytes) else str(source),
                                providers=["CPUExecutionProvider"])


def _eval(model, x):
    model.eval()
    with cr.no_grad():
        return model(cr.tensor(x)).numpy()


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_export_with_pytorchs_signature_names_the_io_and_frees_the_batch(tmp_path):
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.LayerNorm(8), nn.Linear(8, 3))
    path = tmp_path / "model.onnx"
    result = cr.onnx.export(model, (cr.randn(1, 4),), str(path), export_params=True, opset_version=17,
                            do_constant_folding=True, input_names=["features"], output_names=["logits"],
                            dynamic_axes={"features": {0: "batch_size"}, "logits": {0: "batch_size"}})
    assert result is None
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["features"] and [o.name for o in proto.graph.output] == ["logits"]
    assert _dims(proto.graph.input[0]) == ["batch_size", 4] and _dims(proto.graph.output[0]) == ["batch_size", 3]
    assert "LayerNormalization" in {n.op_type for n in proto.graph.node}
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    (got,) = _session(path).run(None, {"features": x})
    np.testing.assert_allclose(got, _eval(model, x), rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_without_dynamic_axes_every_dimension_is_fixed_as_in_pytorch(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    cr.onnx.export(model, cr.randn(2, 3), tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert _dims(proto.graph.input[0]) == [2, 3] and _dims(proto.graph.output[0]) == [2, 2]
    reference = torch.nn.Sequential(torch.nn.Linear(3, 2))
    buffer = io.BytesIO()
    torch.onnx.export(reference, (torch.randn(2, 3),), buffer, dynamo=False)
    theirs = onnx.load_from_string(buffer.getvalue())
    assert _dims(theirs.graph.input[0]) == [2, 3]  # PyTorch fixes them too


def test_export_writes_to_a_binary_file_object():
    cr.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    buffer = io.BytesIO()
    cr.onnx.export(model, cr.randn(1, 3), buffer, dynamic_axes={"input": [0], "output": [0]})
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    (got,) = _session(buffer.getvalue()).run(None, {"input": x})
    np.testing.assert_allclose(got, _eval(model, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("affine, bias", [(True, True), (True, False), (False, False)])
def test_layer_norm_over_several_dimensions_matches_onnxruntime(affine, bias, tmp_path):
    cr.manual_seed(2)
    norm = nn.LayerNorm((3, 4), elementwise_affine=affine, bias=bias)
    if affine:
        norm.weight._data[...] = np.random.default_rng(2).standard_normal((3, 4))
    if bias:
        norm.bias._data[...] = 0.5
    model = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1), norm, nn.Flatten(), nn.Linear(12, 2))
    cr.onnx.export(model, cr.randn(1, 2, 4), tmp_path / "m.onnx", dynamic_axes={"input": {0: "n"}, "output": {0: "n"}})
    x = np.random.default_rng(3).standard_normal((3, 2, 4)).astype(np.float32) * 4
    (got,) = _session(tmp_path / "m.onnx").run(None, {"input": x})
    np.testing.assert_allclose(got, _eval(model, x), rtol=1e-4, atol=1e-5)


def test_embedding_reads_int64_indices_in_onnxruntime(tmp_path):
    cr.manual_seed(3)
    model = nn.Sequential(nn.Embedding(20, 4, padding_idx=0), nn.Flatten(), nn.Linear(24, 3))
    idx = np.random.default_rng(4).integers(0, 20, size=(1, 6))
    cr.onnx.export(model, cr.tensor(idx), tmp_path / "m.onnx", input_names=["tokens"],
                   dynamic_axes={"tokens": {0: "batch"}, "output": {0: "batch"}})
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    batch = np.random.default_rng(5).integers(0, 20, size=(4, 6)).astype(np.int64)
    (got,) = _session(tmp_path / "m.onnx").run(None, {"tokens": batch})
    np.testing.assert_allclose(got, _eval(model, batch), rtol=1e-5, atol=1e-6)


def test_what_the_exporter_cannot_write_is_refused_clearly(tmp_path):
    model = nn.Sequential(nn.Linear(3, 2))
    x = cr.randn(1, 3)
    with pytest.raises(ValueError, match=r"axis 1 of 'input' cannot be dynamic"):
        cr.onnx.export(model, x, tmp_path / "m.onnx", dynamic_axes={"input": {0: "b", 1: "n"}})
    with pytest.raises(ValueError, match="one input tensor; args holds 2"):
        cr.onnx.export(model, (x, x), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="input_names must be a list of one name"):
        cr.onnx.export(model, x, tmp_path / "m.onnx", input_names=["a", "b"])
    with pytest.raises(ValueError, match="neither the input 'input' nor the output 'output'"):
        cr.onnx.export(model, x, tmp_path / "m.onnx", dynamic_axes={"x": {0: "b"}})
    with pytest.raises(ValueError, match="export_params=False"):
        cr.onnx.export(model, x, tmp_path / "m.onnx", export_params=False)
    with pytest.raises(TypeError, match="unexpected keyword argument.*'colour'"):
        cr.onnx.export(model, x, tmp_path / "m.onnx", colour="red")
    with pytest.raises(ValueError, match="LayerNormalization, which is in opset 17"):
        cr.onnx.export(nn.Sequential(nn.LayerNorm(3)), x, tmp_path / "m.onnx", opset_version=16)
    with pytest.raises(TypeError, match="layer LSTM.*is not supported"):
        cr.onnx.export(nn.LSTM(3, 2), cr.randn(1, 2, 3), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="max_norm=1.0"):
        cr.onnx.export(nn.Sequential(nn.Embedding(4, 2, max_norm=1.0)), cr.tensor([[1, 2]]), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
