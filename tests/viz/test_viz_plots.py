import numpy as np
import pytest
from PIL import Image

import chainrule as cr
from chainrule.viz import plots


def assert_image(path, min_side=100):
    img = Image.open(path)
    arr = np.asarray(img.convert("L"), dtype=float)
    assert min(arr.shape) >= min_side
    assert arr.std() > 5, "blank image"
    return img


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, 1.5, -1.5)
    return cr.tensor(x.astype(np.float32)), cr.tensor(y)


def test_training_curves_from_history(tmp_path):
    h = cr.History()
    h.iterations = list(np.linspace(2, 0.1, 100))
    h.epochs = [{"epoch": e, "loss": 1 / e, "val_loss": 1.2 / e, "accuracy": 1 - 0.5 / e, "val_accuracy": 0.9 - 0.5 / e}
                for e in range(1, 6)]
    fig = plots.training_curves(h, tmp_path / "c.png")
    assert_image(tmp_path / "c.png")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss per iteration", "loss per epoch", "accuracy per epoch"]
    assert [line.get_label() for line in fig.axes[1].lines] == ["train", "validation"]
    np.testing.assert_allclose(fig.axes[1].lines[1].get_ydata(), [1.2 / e for e in range(1, 6)])


def test_training_curves_from_a_dict(tmp_path):
    fig = plots.training_curves({"loss": [3, 2, 1], "val_loss": [3.5, 2.5, 2]}, tmp_path / "c.png")
    assert len(fig.axes[1].lines) == 2


def test_decision_boundary_and_gif(tmp_path):
    x, y = blobs()
    cr.manual_seed(0)
    model = cr.nn.MLP([2, 8, 2], activation="tanh")
    rec = cr.viz.DecisionBoundaryRecorder(x, y, resolution=40)
    cr.fit(model, (x, y), epochs=3, lr=0.05, callbacks=[rec], verbose=0)
    assert [e for e, _ in rec.frames] == [0, 1, 2, 3]
    gif = rec.save_gif(tmp_path / "b.gif")
    img = Image.open(gif)
    assert img.n_frames == 4 and img.format == "GIF"
    fig = plots.decision_boundary(model, x, y, tmp_path / "b.png")
    assert_image(tmp_path / "b.png")
    assert "accuracy" in fig.axes[0].get_title()
    # the regions are the model's own predictions
    xx, yy, regions = plots.decision_regions(model, x, 30)
    pts = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float32)
    expected = cr.predict(model, cr.tensor(pts))._data.argmax(1)
    np.testing.assert_array_equal(regions.ravel(), expected)


def test_decision_boundary_needs_2d_inputs():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plots.decision_boundary(cr.nn.Linear(3, 2), cr.randn(5, 3), cr.zeros(5))


def test_first_layer_weights_and_conv_filters(tmp_path):
    model = cr.nn.MLP([64, 10, 3])
    fig = plots.first_layer_weights(model, path=tmp_path / "w.png")
    assert_image(tmp_path / "w.png")
    shown = fig.axes[0].images[0].get_array()
    np.testing.assert_allclose(shown, model[0].weight._data[0].reshape(8, 8))
    with pytest.raises(ValueError, match="square"):
        plots.first_layer_weights(cr.nn.MLP([10, 3]))
    cnn = cr.nn.Sequential(cr.nn.Conv2d(1, 6, 5), cr.nn.ReLU(), cr.nn.Flatten(), cr.nn.Linear(6 * 4 * 4, 2))
    fig = plots.conv_filters(cnn, tmp_path / "f.png")
    assert_image(tmp_path / "f.png")
    assert sum(1 for ax in fig.axes if ax.images) == 6


def test_hidden_pca(tmp_path):
    x, y = blobs()
    model = cr.nn.MLP([2, 8, 5, 2])
    h = plots.hidden_activations(model, x)
    assert h.shape == (120, 5)  # the activation after the second Linear
    fig = plots.hidden_pca(model, x, y, path=tmp_path / "p.png")
    assert_image(tmp_path / "p.png")
    proj, ratio = plots.pca(h, 2)
    np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets(), proj, rtol=1e-5, atol=1e-6)
    assert 0 < ratio.sum() <= 1 + 1e-9


def test_pca_matches_the_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 3)) @ np.diag([5.0, 1.0, 0.1])
    proj, ratio = plots.pca(a, 2)
    assert ratio[0] > 0.9
    assert np.var(proj[:, 0]) > np.var(proj[:, 1])


def test_write_all(tmp_path):
    x, y = blobs()
    model = cr.nn.MLP([2, 8, 2])
    diag = cr.viz.Diagnostics()
    recorder = cr.viz.DecisionBoundaryRecorder(x, y, resolution=30)
    history = cr.fit(model, (x, y), epochs=2, callbacks=[diag, recorder], verbose=0)
    written = plots.write_all(tmp_path, history=history, model=model, data=(x, y), diagnostics=diag,
                              recorder=recorder)
    names = sorted(p.split("/")[-1] for p in written)
    assert names == ["decision_boundary.gif", "decision_boundary.png", "diagnostics.png", "gradient_norms.png",
                     "hidden_pca.png", "training_curves.png"]
    for p in written:
        assert_image(p)
