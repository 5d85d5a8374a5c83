"""ONNX export: onnxruntime, fed the exported file, gives the model's own eval-mode outputs."""

import sys

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn as nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _expected(model, x):
    model.eval()
    with cr.no_grad():
        return model(cr.tensor(x)).numpy()


def _check_export(model, shape, tmp_path, seed=0, opset=17, batches=(1, 5), dtype=np.float32):
    """Export with a batch of 1 and compare onnxruntime with the model at each batch size."""
    rng = np.random.default_rng(seed)
    path = tmp_path / "model.onnx"
    cr.export_onnx(model, rng.standard_normal((1,) + shape).astype(dtype), path, opset=opset)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    session = _session(path)
    for n in batches:
        x = rng.standard_normal((n,) + shape).astype(dtype)
        (got,) = session.run(None, {"input": x})
        expected = _expected(model, x)
        assert got.shape == expected.shape
        assert got.dtype == expected.dtype
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    return path


def _train_batch_norm(model, shape, steps=3):
    """A few training-mode passes so the running statistics are not the initial 0 and 1."""
    model.train()
    for _ in range(steps):
        model(cr.randn(8, *shape) * 3.0 + 1.0)


ACTIVATIONS = ["relu", "leaky_relu", cr.nn.LeakyReLU(0.2), "prelu", cr.nn.PReLU(), "elu", cr.nn.ELU(0.5),
               "selu", "gelu", cr.nn.GELU("tanh"), "silu", "sigmoid", "tanh", "softplus",
               cr.nn.Softplus(beta=2.0, threshold=1.0), "softmax", "logsoftmax", "logsigmoid",
               cr.nn.Hardtanh(-0.5, 0.5)]


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a if isinstance(a, str) else repr(a))
def test_mlp_with_each_activation_matches_onnxruntime(activation, tmp_path):
    cr.manual_seed(0)
    model = nn.MLP([6, 16, 12, 3], activation=activation, dropout=0.2)
    if isinstance(activation, nn.PReLU):  # distinct, trained-looking slopes
        for layer in model:
            if isinstance(layer, nn.PReLU):
                layer.weight._data[...] = -0.3
    _check_export(model, (6,), tmp_path)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("opset", [17, 20])
def test_gelu_as_erf_formula_and_as_the_opset_20_op(approximate, opset, tmp_path):
    cr.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 9), nn.GELU(approximate), nn.Linear(9, 2))
    path = _check_export(model, (5,), tmp_path, opset=opset)
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert ("Gelu" in ops) == (opset >= 20)


def test_per_channel_prelu_and_output_softmax_over_channels(tmp_path):
    cr.manual_seed(2)
    prelu = nn.PReLU(4)
    prelu.weight._data[:] = [0.1, -0.2, 0.5, 2.0]
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), prelu, nn.Softmax(dim=1))
    _check_export(model, (2, 6, 6), tmp_path)


def test_sequential_with_conv_pool_batchnorm_flatten_linear(tmp_path):
    cr.manual_seed(3)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding="same", dilation=2), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout2d(0.3),
        nn.MaxPool2d(2, ceil_mode=True),  # 13 x 11 -> 7 x 6: a last, partial window
        nn.Conv2d(8, 8, 3, stride=1, padding=(1, 0), groups=4, bias=False), nn.ELU(),
        nn.AvgPool2d(2, padding=1, ceil_mode=True),  # 7 x 4 -> 5 x 3
        nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.BatchNorm1d(8), nn.Linear(8, 5), nn.Identity(),
    )
    _train_batch_norm(model, (3, 13, 11))
    _check_export(model, (3, 13, 11), tmp_path)


def test_one_dimensional_layers_and_shape_layers(tmp_path):
    cr.manual_seed(4)
    model = nn.Sequential(
        nn.Unflatten(1, (2, 15)), nn.Conv1d(2, 6, 4, padding="same"), nn.BatchNorm1d(6), nn.Tanh(),
        nn.MaxPool1d(2, ceil_mode=True),  # 15 -> 8
        nn.AvgPool1d(3, stride=2, padding=1, ceil_mode=True),  # 8 -> 5, the last window partial
        nn.MaxPool1d(2, stride=1, dilation=2), nn.AdaptiveAvgPool1d(1), nn.Flatten(1), nn.Linear(6, 4), nn.LogSoftmax(dim=1),
    )
    _train_batch_norm(model, (30,))
    _check_export(model, (30,), tmp_path)


def test_avg_pool_divisor_override_and_even_adaptive_pooling(tmp_path):
    cr.manual_seed(5)
    model = nn.Sequential(nn.AvgPool2d(3, stride=2, padding=1, divisor_override=4),
                          nn.AdaptiveAvgPool2d((2, 3)), nn.Flatten(2, 3), nn.Softplus())
    _check_export(model, (2, 8, 12), tmp_path)


def test_linear_on_three_dimensional_input(tmp_path):
    cr.manual_seed(6)
    model = nn.Sequential(nn.Linear(4, 7), nn.SiLU(), nn.Linear(7, 3, bias=False))
    _check_export(model, (5, 4), tmp_path)


def test_lenet_on_28x28_images(tmp_path):
    cr.manual_seed(7)
    path = _check_export(nn.LeNet(), (1, 28, 28), tmp_path)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert ops == ["Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten",
                   "Gemm", "Relu", "Gemm", "Relu", "Gemm"]


def test_lenet_8x8_with_batch_norm_and_dropout(tmp_path):
    cr.manual_seed(8)
    net = nn.LeNet(1, 10, 8, channels=(16, 32), batch_norm=True, dropout=0.3)
    _train_batch_norm(net, (1, 8, 8))
    net.train()
    running_mean = net.bn1.running_mean.numpy().copy()
    path = tmp_path / "lenet.onnx"
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32)
    cr.export_onnx(net, x, path)
    assert net.training and net.bn1.training and net.drop.training  # modes restored
    np.testing.assert_array_equal(net.bn1.running_mean.numpy(), running_mean)  # stats untouched
    assert not np.allclose(running_mean, 0)
    _check_export(net, (1, 8, 8), tmp_path)


def test_custom_module_whose_forward_is_a_chain(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU())
            self.pool = nn.MaxPool2d(2)
            self.head = nn.Linear(4 * 3 * 3, 2)
            self.flat = nn.Flatten()

        def forward(self, x):
            x = self.pool(self.features(x))
            return self.head(self.flat(x))

    cr.manual_seed(9)
    _check_export(nn.Sequential(Net(), nn.Sigmoid()), (1, 8, 8), tmp_path)


def test_unsupported_layer_raises_a_type_error_naming_it(tmp_path):
    model = nn.Sequential(nn.Linear(4, 6), nn.Maxout(6, 3), nn.ReLU())
    with pytest.raises(TypeError, match=r"layer Maxout \('1'\) is not supported"):
        cr.export_onnx(model, np.zeros((1, 4), np.float32), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()

    class Scale(nn.Module):
        def forward(self, x):
            return x * 2.0

    with pytest.raises(TypeError, match=r"layer Scale \('0.1'\) is not supported"):
        cr.export_onnx(nn.Sequential(nn.Sequential(nn.Linear(4, 4), Scale())), np.zeros((1, 4), np.float32),
                       tmp_path / "m.onnx")


def test_custom_forward_that_is_not_a_chain_is_refused(tmp_path):
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.fc(x)) + x

    class Between(Residual):
        def forward(self, x):
            return self.act(self.fc(x) * 3.0)

    x = np.zeros((1, 4), np.float32)
    with pytest.raises(TypeError, match=r"forward of Residual is not a plain chain of layers"):
        cr.export_onnx(Residual(), x, tmp_path / "m.onnx")
    with pytest.raises(TypeError, match=r"'act' \(ReLU\) does not take the previous layer's output"):
        cr.export_onnx(Between(), x, tmp_path / "m.onnx")

    class ReluLeNet(nn.LeNet):  # an overridden forward is traced, not assumed
        def forward(self, input):
            return super().forward(input)

    with pytest.raises(TypeError, match=r"not a plain chain"):
        cr.export_onnx(ReluLeNet(), np.zeros((1, 1, 28, 28), np.float32), tmp_path / "m.onnx")


def test_layers_that_cannot_be_exported_say_why(tmp_path):
    x = np.zeros((1, 2, 7, 7), np.float32)
    with pytest.raises(ValueError, match=r"pools an input of size \(7, 7\) to \(3, 3\)"):
        cr.export_onnx(nn.AdaptiveAvgPool2d(3), x, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"no running statistics"):
        cr.export_onnx(nn.BatchNorm2d(2, track_running_stats=False), x, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"merges the batch dimension"):
        cr.export_onnx(nn.Flatten(0), x, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match=r"opset must be an int from 13"):
        cr.export_onnx(nn.ReLU(), x, tmp_path / "m.onnx", opset=11)
    with pytest.raises(ValueError, match=r"input_name and output_name must be different"):
        cr.export_onnx(nn.ReLU(), x, tmp_path / "m.onnx", input_name="x", output_name="x")


def test_file_loads_and_declares_names_batch_and_initializers(tmp_path):
    cr.manual_seed(10)
    model = nn.MLP([3, 5, 2])
    path = tmp_path / "mlp.onnx"
    proto = cr.io.export_onnx(model, cr.zeros(4, 3), path, input_name="features", output_name="logits")
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded == proto
    (inp,), (out,) = loaded.graph.input, loaded.graph.output
    assert (inp.name, out.name) == ("features", "logits")
    assert inp.type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [d.dim_value for d in out.type.tensor_type.shape.dim[1:]] == [2]
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in loaded.graph.initializer}
    np.testing.assert_array_equal(weights["0.weight"], model[0].weight.detach().numpy())
    assert {t.data_type for t in loaded.graph.initializer} == {onnx.TensorProto.FLOAT}
    assert [p.name for p in tmp_path.iterdir()] == ["mlp.onnx"]  # no temporary file left behind

    fixed = cr.export_onnx(model, cr.zeros(4, 3), path, dynamic_batch=False)
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4


def test_float64_model_exports_double(tmp_path):
    cr.manual_seed(11)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    path = _check_export(model, (3,), tmp_path, dtype=np.float64)
    assert {t.data_type for t in onnx.load(str(path)).graph.initializer} == {onnx.TensorProto.DOUBLE}


def test_only_dropped_layers_give_an_identity_graph(tmp_path):
    _check_export(nn.Sequential(nn.Dropout(0.5), nn.Identity()), (3,), tmp_path)


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "onnx" or m.startswith("onnx.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'chainrule\[onnx\]'"):
        cr.export_onnx(nn.ReLU(), np.zeros((1, 2), np.float32), tmp_path / "m.onnx")
