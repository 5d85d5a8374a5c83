import numpy as np
import pytest

import chainrule as cr


def xor_data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    return cr.tensor(x), cr.tensor(y)


def deep_mlp(activation, depth=10, width=32):
    model = cr.nn.MLP([2] + [width] * depth + [2], activation=activation)
    if activation == "relu":  # He init keeps the signal's scale through ReLU layers
        for m in model.modules():
            if isinstance(m, cr.nn.Linear):
                cr.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                cr.nn.init.zeros_(m.bias)
    return model


def train(activation, epochs=2):
    cr.manual_seed(1)
    model = deep_mlp(activation)
    diag = cr.viz.Diagnostics()
    cr.fit(model, xor_data(), loss="cross_entropy", optimizer="sgd", lr=0.05, epochs=epochs, batch_size=64,
           callbacks=[diag], verbose=0)
    return model, diag


def test_vanishing_gradients_sigmoid_vs_relu():
    _, sig = train("sigmoid")
    _, relu = train("relu")
    assert list(sig.history) == [str(2 * i) for i in range(11)]  # 10 hidden Linear layers + the output layer
    first_sig = np.array(sig.history["0"]["grad_norm"])
    first_relu = np.array(relu.history["0"]["grad_norm"])
    assert len(first_sig) == 2
    assert np.all(first_relu >= 100 * first_sig)
    # in the sigmoid net the gradient shrinks layer after layer towards the input
    sig_norms = [rows["grad_norm"][0] for rows in sig.history.values()]
    assert all(a < b for a, b in zip(sig_norms, sig_norms[1:]))


def test_records_every_metric_per_epoch():
    model, diag = train("relu", epochs=3)
    assert diag.epochs == [1, 2, 3]
    rows = diag.history["0"]
    for key in ("grad_norm", "weight_norm", "update_ratio", "act_mean", "act_std", "dead"):
        assert len(rows[key]) == 3 and np.isfinite(rows[key]).all(), key
    assert 0 <= rows["dead"][0] <= 1
    assert np.isnan(rows["saturated"][0])  # ReLU does not saturate
    np.testing.assert_allclose(rows["weight_norm"][-1], np.linalg.norm(model[0].weight._data), rtol=0.05)
    assert 1e-6 < rows["update_ratio"][0] < 1
    assert "grad_norm" in diag.to_text()


def test_hooks_are_removed_after_training():
    model, _ = train("relu", epochs=1)
    assert all(not m.__dict__.get("_forward_hooks") for m in model.modules())


def test_saturated_sigmoid_and_dead_relu_are_counted():
    x = cr.tensor(np.array([[10.0, 0.0], [-10.0, 0.0]], dtype=np.float32))
    sig = cr.nn.Sequential(cr.nn.Linear(2, 2), cr.nn.Sigmoid())
    with cr.no_grad():
        sig[0].weight.copy_(cr.tensor([[1.0, 0.0], [0.0, 1.0]]))
        sig[0].bias.zero_()
    diag = cr.viz.Diagnostics()
    diag.on_train_begin(sig)  # driven by hand, as in a manual training loop
    sig(x).sum().backward()
    diag.on_after_backward(1)
    diag.on_batch_end(1)
    diag.on_epoch_end(1)
    assert diag.history["0"]["saturated"] == [0.5]  # the first unit is at 1 and 0, the second at 0.5

    relu = cr.nn.Sequential(cr.nn.Linear(2, 3), cr.nn.ReLU())
    with cr.no_grad():
        relu[0].weight.copy_(cr.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        relu[0].bias.copy_(cr.tensor([0.0, 0.0, -1.0]))
    diag = cr.viz.Diagnostics()
    diag.on_train_begin(relu)
    relu(x).sum().backward()
    diag.on_after_backward(1)
    diag.on_batch_end(1)
    diag.on_epoch_end(1)
    diag.on_train_end()
    assert diag.history["0"]["dead"] == [pytest.approx(2 / 3)]  # units 2 and 3 output 0 for both examples


def test_diagnostics_needs_layers_with_parameters():
    with pytest.raises(ValueError, match="no layers with parameters"):
        cr.viz.Diagnostics().on_train_begin(cr.nn.ReLU())


def test_gradient_norm_plot(tmp_path):
    from PIL import Image

    _, diag = train("sigmoid", epochs=2)
    path = tmp_path / "g.png"
    diag.plot_gradient_norms(path)
    img = np.asarray(Image.open(path).convert("L"), dtype=float)
    assert img.shape[0] > 100 and img.std() > 10
    diag.plot(tmp_path / "d.png")
    assert (tmp_path / "d.png").stat().st_size > 5000
