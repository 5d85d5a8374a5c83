"""Layers and containers: Linear, Maxout, Flatten, Dropout, Sequential/ModuleList/ModuleDict, MLP;
state dicts to and from PyTorch, configs, repr, summary, hooks, and XOR learned with plain SGD."""

from __future__ import annotations

import json
from collections import OrderedDict

import numpy as np
import pytest
from conftest import gradcheck_layer, requires_torch

import chainrule as cr


def _to_torch_state(module):
    import torch

    return OrderedDict((k, torch.from_numpy(v.numpy().copy())) for k, v in module.state_dict().items())


# ---- Linear -----------------------------------------------------------------------------------------
def test_linear_shapes_and_names_follow_pytorch():
    layer = cr.nn.Linear(3, 2)
    assert layer.weight.shape == (2, 3) and layer.bias.shape == (2,)
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert layer(cr.ones(4, 3)).shape == (4, 2)
    assert layer(cr.ones(5, 4, 3)).shape == (5, 4, 2)
    assert cr.nn.Linear(3, 2, bias=False).bias is None
    assert repr(cr.nn.Linear(3, 2, bias=False)) == "Linear(in_features=3, out_features=2, bias=False)"


def test_linear_passes_gradcheck_and_second_derivatives():
    layer = cr.nn.Linear(4, 3).double()
    x = cr.randn(5, 4, dtype=cr.float64, requires_grad=True)
    gradcheck_layer(layer, x)
    gradcheck_layer(layer, x, second_order=True, output=cr.Tensor.tanh)
    x3 = cr.randn(2, 3, 4, dtype=cr.float64, requires_grad=True)
    gradcheck_layer(layer, x3)
    gradcheck_layer(cr.nn.Linear(4, 3, bias=False).double(), x)


def test_linear_wrong_input_width_names_the_layer_and_both_shapes():
    model = cr.nn.Sequential(cr.nn.Linear(4, 3), cr.nn.ReLU(), cr.nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"Linear layer '2' \(in_features=5, out_features=2, bias=True\): got "
                                         r"input of shape \(7, 3\), expected shape \(\.\.\., 5\)"):
        model(cr.ones(7, 4))
    with pytest.raises(ValueError, match=r"got input of shape \(2, 3\), expected shape \(\.\.\., 4\) to match its "
                                         r"weight of shape \(3, 4\)"):
        cr.nn.Linear(4, 3)(cr.ones(2, 3))


def test_linear_default_init_is_uniform_within_one_over_sqrt_fan_in():
    cr.manual_seed(3)
    layer = cr.nn.Linear(400, 300)
    w = layer.weight.detach().numpy()
    bound = 1 / np.sqrt(400)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound
    assert abs(w.var() - bound**2 / 3) < 0.03 * bound**2 / 3  # U(-b, b) has variance b^2/3
    assert np.abs(layer.bias.detach().numpy()).max() <= bound
    before = w.copy()
    layer.reset_parameters()
    assert not np.allclose(before, layer.weight.detach().numpy())


def test_linear_init_is_reproducible_with_manual_seed():
    cr.manual_seed(11)
    a = cr.nn.Linear(5, 4).weight.detach().numpy().copy()
    cr.manual_seed(11)
    b = cr.nn.Linear(5, 4).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)


@requires_torch
def test_linear_and_mlp_state_dicts_move_both_ways_between_chainrule_and_torch():
    import torch

    model = cr.nn.MLP([4, 8, 8, 3], activation="tanh").double()
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.Tanh(),
                                 torch.nn.Linear(8, 3)).double()
    assert list(model.state_dict()) == list(tmodel.state_dict())
    # torch -> chainrule
    model.load_state_dict(tmodel.state_dict())
    x = np.random.default_rng(0).standard_normal((6, 4))
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    target = np.array([0, 2, 1, 1, 0, 2])
    loss = cr.nn.CrossEntropyLoss()(model(xc), cr.tensor(target))
    tloss = torch.nn.CrossEntropyLoss()(tmodel(xt), torch.tensor(target))
    assert loss.item() == pytest.approx(tloss.item(), rel=1e-12)
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-14)
    for (name, p), (tname, tp) in zip(model.named_parameters(), tmodel.named_parameters()):
        assert name == tname
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-10, atol=1e-14)
    # chainrule -> torch
    fresh = cr.nn.MLP([4, 8, 8, 3], activation="tanh").double()
    tmodel.load_state_dict(_to_torch_state(fresh))
    np.testing.assert_allclose(tmodel(torch.tensor(x)).detach().numpy(), fresh(cr.tensor(x)).detach().numpy(), rtol=1e-12)


@requires_torch
def test_linear_float32_matches_torch():
    import torch

    layer = cr.nn.Linear(6, 3)
    tlayer = torch.nn.Linear(6, 3)
    tlayer.load_state_dict(_to_torch_state(layer))
    x = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_allclose(layer(cr.tensor(x)).detach().numpy(), tlayer(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-6)


def test_load_state_dict_with_other_shapes_names_the_key_and_both_shapes():
    model = cr.nn.MLP([4, 8, 3])
    other = cr.nn.MLP([4, 9, 3])
    with pytest.raises(ValueError, match=r"size mismatch for '0.weight': the checkpoint has shape \(9, 4\), "
                                         r"the model has \(8, 4\)"):
        model.load_state_dict(other.state_dict())


# ---- shape layers and dropout ------------------------------------------------------------------------
def test_identity_flatten_unflatten():
    x = cr.randn(2, 3, 4, 5)
    assert cr.nn.Identity(54, unused=True)(x) is x
    assert cr.nn.Flatten()(x).shape == (2, 60)
    assert cr.nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert cr.nn.Unflatten(1, (3, 20))(cr.nn.Flatten()(x)).shape == (2, 3, 20)
    assert cr.nn.Unflatten(-1, (2, -1))(cr.ones(3, 8)).shape == (3, 2, 4)
    with pytest.raises(ValueError, match=r"cannot split dimension 1 of an input of shape \(2, 60\) into \(7, 9\)"):
        cr.nn.Unflatten(1, (7, 9))(cr.ones(2, 60))
    x = cr.randn(2, 3, 4, dtype=cr.float64, requires_grad=True)
    cr.gradcheck(lambda x: cr.nn.Unflatten(1, (4, 3))(cr.nn.Flatten()(x)) ** 2, [x])


def test_dropout_zeroes_a_fraction_p_and_scales_the_rest():
    cr.manual_seed(0)
    layer = cr.nn.Dropout(0.3)
    out = layer(cr.ones(200, 100)).numpy()
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.7, rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.02  # inverted scaling keeps the expectation


def test_dropout_is_identity_in_eval_and_seeded_in_training():
    layer = cr.nn.Dropout(0.5)
    x = cr.randn(10, 10)
    assert layer.eval()(x) is x
    layer.train()
    cr.manual_seed(5)
    a = layer(x).numpy().copy()
    cr.manual_seed(5)
    np.testing.assert_array_equal(a, layer(x).numpy())
    assert not np.array_equal(a, layer(x).numpy())
    assert (cr.nn.Dropout(1.0)(x).numpy() == 0).all()
    with pytest.raises(ValueError, match="probability p must be between 0 and 1, got 1.5"):
        cr.nn.Dropout(1.5)


def test_dropout_gradient_flows_through_kept_units_only():
    cr.manual_seed(2)
    x = cr.randn(4, 5, dtype=cr.float64, requires_grad=True)
    out = cr.nn.Dropout(0.4)(x)
    out.sum().backward()
    mask = out.detach().numpy() != 0
    np.testing.assert_allclose(x.grad.numpy(), mask / 0.6)


# ---- containers --------------------------------------------------------------------------------------
def test_sequential_indexing_len_append_and_slicing():
    seq = cr.nn.Sequential(cr.nn.Linear(2, 3), cr.nn.ReLU())
    assert len(seq) == 2 and isinstance(seq[0], cr.nn.Linear) and isinstance(seq[-1], cr.nn.ReLU)
    seq.append(cr.nn.Linear(3, 1))
    assert len(seq) == 3 and list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    head = seq[:2]
    assert isinstance(head, cr.nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    assert seq(cr.ones(4, 2)).shape == (4, 1)
    del seq[1]
    assert [type(m).__name__ for m in seq] == ["Linear", "Linear"] and list(seq._modules) == ["0", "1"]
    seq.insert(1, cr.nn.Tanh())
    assert isinstance(seq[1], cr.nn.Tanh)
    with pytest.raises(IndexError, match="index 5 is out of range for 3 modules"):
        seq[5]
    with pytest.raises(TypeError, match="expected a Module, got int"):
        seq.append(3)
    named = cr.nn.Sequential(OrderedDict(fc=cr.nn.Linear(2, 2), act=cr.nn.ReLU()))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"]


def test_module_list_and_dict_register_their_parameters():
    layers = cr.nn.ModuleList([cr.nn.Linear(2, 2) for _ in range(3)])
    layers.append(cr.nn.Linear(2, 1))
    assert len(layers) == 4 and layers.num_parameters() == 3 * 6 + 3
    assert list(layers.state_dict())[:2] == ["0.weight", "0.bias"]
    assert len(layers[1:]) == 3
    heads = cr.nn.ModuleDict({"a": cr.nn.Linear(2, 1), "b": cr.nn.Linear(2, 3)})
    heads["c"] = cr.nn.Identity()
    assert list(heads.keys()) == ["a", "b", "c"] and "b" in heads
    assert list(heads.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    with pytest.raises(KeyError, match="no module named 'z'"):
        heads["z"]

    class Net(cr.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = layers

    assert Net().num_parameters() == layers.num_parameters()


# ---- MLP, configs, repr, summary -----------------------------------------------------------------------
def test_mlp_layout_and_activation_specs():
    model = cr.nn.MLP([3, 5, 4, 2], activation="leaky_relu", output_activation="softmax", dropout=0.2)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "LeakyReLU", "Dropout", "Linear", "LeakyReLU", "Dropout", "Linear", "Softmax"]
    assert model.num_parameters() == (3 * 5 + 5) + (5 * 4 + 4) + (4 * 2 + 2)
    assert type(cr.nn.MLP([2, 3, 1], activation=cr.nn.GELU)[1]) is cr.nn.GELU
    leaky = cr.nn.MLP([2, 3, 3, 1], activation=cr.nn.LeakyReLU(0.1))
    assert leaky[1].negative_slope == 0.1 and leaky[1] is not leaky[3]
    assert len(cr.nn.MLP([2, 3, 1], activation="identity")) == 2
    with pytest.raises(ValueError, match="at least two positive layer widths"):
        cr.nn.MLP([4])
    with pytest.raises(ValueError, match="unknown activation 'rleu'"):
        cr.nn.MLP([2, 3, 1], activation="rleu")


@pytest.mark.parametrize("model", [
    cr.nn.MLP([3, 5, 2], activation=cr.nn.LeakyReLU(0.1), output_activation="log_softmax", dropout=0.1),
    cr.nn.MLP([3, 4, 4, 1], activation=cr.nn.Tanh, output_activation=cr.nn.Sigmoid),
    cr.nn.Sequential(cr.nn.Flatten(), cr.nn.Linear(12, 4), cr.nn.PReLU(), cr.nn.Maxout(4, 2, k=3), cr.nn.Softplus(2.0)),
    cr.nn.Sequential(OrderedDict(fc=cr.nn.Linear(3, 3), act=cr.nn.GELU("tanh"), drop=cr.nn.Dropout(0.3))),
])
def test_config_is_json_and_rebuilds_the_same_architecture(model):
    config = json.loads(json.dumps(model.get_config()))
    rebuilt = cr.nn.from_config(config)
    assert type(rebuilt) is type(model)
    assert repr(rebuilt) == repr(model)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    rebuilt.load_state_dict(model.state_dict())
    x = cr.randn(2, 3, 4) if isinstance(model[0], cr.nn.Flatten) else cr.randn(2, 3)
    model.eval()
    rebuilt.eval()
    np.testing.assert_array_equal(model(x).detach().numpy(), rebuilt(x).detach().numpy())


def test_from_config_refuses_unknown_classes_and_unconfigurable_modules():
    with pytest.raises(ValueError, match="unknown module class 'os.system'"):
        cr.nn.from_config({"class": "os.system", "args": {}})
    with pytest.raises(ValueError, match="cannot build Linear"):
        cr.nn.from_config({"class": "Linear", "args": {"in_features": 2, "bogus": 1}})

    class Custom(cr.nn.Module):
        pass

    with pytest.raises(TypeError, match="Custom cannot describe itself as a config"):
        cr.nn.Sequential(Custom()).get_config()


def test_repr_lists_layers_as_pytorch_does_and_counts_stay_in_summary():
    import torch

    text = repr(cr.nn.MLP([2, 2, 1], activation="sigmoid"))
    assert text == (
        "MLP(\n"
        "  (0): Linear(in_features=2, out_features=2, bias=True)\n"
        "  (1): Sigmoid()\n"
        "  (2): Linear(in_features=2, out_features=1, bias=True)\n"
        ")"
    )
    pairs = [
        (cr.nn.Sequential(cr.nn.Linear(3, 4), cr.nn.ReLU(), cr.nn.Sequential(cr.nn.Linear(4, 1), cr.nn.Tanh())),
         torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
                             torch.nn.Sequential(torch.nn.Linear(4, 1), torch.nn.Tanh()))),
        (cr.nn.Conv2d(1, 6, 5), torch.nn.Conv2d(1, 6, 5)),
        (cr.nn.Dropout(0.25), torch.nn.Dropout(0.25)),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
    assert "parameters" in str(cr.nn.summary(cr.nn.MLP([2, 2, 1]), (1, 2)))


def test_summary_tabulates_shapes_weights_and_biases_without_printing(capsys):
    model = cr.nn.MLP([64, 32, 10])
    table = cr.nn.summary(model, (1, 64))
    assert capsys.readouterr().out == ""
    assert [(r.name, r.output_shape, r.weights, r.biases) for r in table.rows] == [
        ("0", (1, 32), 64 * 32, 32), ("1", (1, 32), 0, 0), ("2", (1, 10), 320, 10)]
    assert table.total_parameters == model.num_parameters() == 64 * 32 + 32 + 330
    text = str(table)
    assert "Output shape" in text and "2,048" in text and "2,410" in text
    assert model.training  # summary restores the mode


def test_forward_hooks_see_outputs_and_can_be_removed():
    layer = cr.nn.Linear(2, 3)
    seen = []
    handle = layer.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    layer(cr.ones(4, 2))
    handle.remove()
    layer(cr.ones(4, 2))
    assert seen == [(4, 3)]
    with layer.register_forward_pre_hook(lambda m, args: (args[0] * 0,)):
        np.testing.assert_allclose(layer(cr.ones(1, 2)).detach().numpy()[0], layer.bias.detach().numpy())


def test_double_and_float_cast_every_layer():
    model = cr.nn.Sequential(cr.nn.Linear(2, 3), cr.nn.PReLU(), cr.nn.Maxout(3, 2))
    assert {p.dtype for p in model.double().parameters()} == {np.dtype("float64")}
    assert model(cr.ones(1, 2)).dtype == np.float64
    assert {p.dtype for p in model.float().parameters()} == {np.dtype("float32")}


# ---- the lecture's XOR ---------------------------------------------------------------------------------
def test_two_two_one_sigmoid_network_learns_xor_with_hand_written_sgd():
    cr.manual_seed(0)
    model = cr.nn.Sequential(cr.nn.Linear(2, 2), cr.nn.Sigmoid(), cr.nn.Linear(2, 1), cr.nn.Sigmoid())
    x = cr.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = cr.tensor([[0.0], [1.0], [1.0], [0.0]])
    criterion = cr.nn.MSELoss()
    lr = 2.0
    for _ in range(4000):
        loss = criterion(model(x), y)
        model.zero_grad()
        loss.backward()
        with cr.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
    out = model(x).detach().numpy().ravel()
    assert (out[[1, 2]] > 0.5).all() and (out[[0, 3]] < 0.5).all(), out
    assert loss.item() < 0.05


def test_dropout_passes_gradcheck_with_a_fixed_mask():
    layer = cr.nn.Dropout(0.3)
    x = cr.randn(4, 5, dtype=cr.float64, requires_grad=True)

    def fn(x):
        cr.manual_seed(9)  # the same mask on every evaluation
        return layer(x)

    cr.gradcheck(fn, [x])
    cr.gradgradcheck(lambda x: fn(x) * fn(x), [x])


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "leaky_relu", "elu", "silu", "softplus", "prelu"])
def test_mlp_passes_gradcheck_for_every_parameter(activation):
    model = cr.nn.MLP([3, 4, 2], activation=activation, output_activation="log_softmax").double()
    x = cr.randn(5, 3, dtype=cr.float64, requires_grad=True)
    assert len(list(model.parameters())) == 4 + (activation == "prelu")
    gradcheck_layer(model, x, second_order=activation in ("tanh", "gelu", "silu", "softplus"))
