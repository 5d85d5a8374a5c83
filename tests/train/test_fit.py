import json
import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.data import datasets
from chainrule.train import TrainingError


def _moons(n=600, seed=0):
    X, y = datasets.moons(n, noise=0.1, seed=seed, return_X_y=True)
    return X.astype(np.float32), y


def test_fit_reaches_97_percent_on_moons_with_a_small_mlp():
    X, y = _moons()
    cut = int(0.8 * len(X))
    model = cr.nn.MLP([2, 16, 16, 2], activation="tanh")
    history = cr.fit(model, (X[:cut], y[:cut]), loss="cross_entropy", optimizer="adam", lr=0.01,
                     epochs=40, batch_size=32, val_data=(X[cut:], y[cut:]), verbose=0)
    scores = cr.evaluate(model, (X[cut:], y[cut:]))
    assert scores["accuracy"] >= 0.97
    assert history["val_accuracy"][-1] == pytest.approx(scores["accuracy"])
    assert history["loss"][-1] < 0.2 * history["loss"][0]


def test_history_records_every_iteration_and_every_epoch():
    X, y = _moons(100)
    model = cr.nn.MLP([2, 4, 2])
    h = cr.fit(model, (X, y), optimizer="sgd", lr=0.1, epochs=3, batch_size=32, val_data=(X, y), verbose=0)
    assert len(h.iterations) == 3 * math.ceil(100 / 32)
    assert [e["epoch"] for e in h.epochs] == [1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
        assert len(h[key]) == 3
    assert h["lr"] == [0.1, 0.1, 0.1]
    assert all(s > 0 for s in h["seconds"])
    # the epoch's train loss is the size-weighted mean of its iterations
    sizes = [32, 32, 32, 4]
    assert h["loss"][0] == pytest.approx(np.average(h.iterations[:4], weights=sizes))
    again = cr.History.from_dict(json.loads(h.to_json()))
    assert again.epochs == h.epochs
    assert h.to_csv().splitlines()[0].split(",")[:3] == ["epoch", "loss", "accuracy"]


def test_fit_matches_the_hand_written_loop_step_for_step():
    X, y = _moons(64)
    cr.manual_seed(1)
    a = cr.nn.MLP([2, 5, 2]).double()
    b = cr.nn.MLP([2, 5, 2]).double()
    b.load_state_dict(a.state_dict())
    cr.fit(a, (X.astype(np.float64), y), optimizer=cr.optim.SGD(a.parameters(), lr=0.3, momentum=0.9),
           epochs=2, batch_size=16, shuffle=False, verbose=0)
    opt = cr.optim.SGD(b.parameters(), lr=0.3, momentum=0.9)
    loss_fn = cr.nn.CrossEntropyLoss()
    for _ in range(2):
        for start in range(0, 64, 16):
            xb, yb = cr.tensor(X[start:start + 16].astype(np.float64)), cr.tensor(y[start:start + 16])
            opt.zero_grad()
            loss_fn(b(xb), yb).backward()
            opt.step()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_allclose(pa.detach().numpy(), pb.detach().numpy(), rtol=1e-12, err_msg=name)


def test_xor_is_learned_by_a_2_2_1_sigmoid_network():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([[0], [1], [1], [0]], np.float32)
    cr.manual_seed(3)
    model = cr.nn.MLP([2, 2, 1], activation="sigmoid", output_activation="sigmoid")
    cr.fit(model, (X, y), loss="bce", optimizer="adam", lr=0.1, epochs=500, batch_size=4, metrics=(),
           verbose=0)
    out = cr.predict(model, X).numpy()[:, 0]
    assert np.all((out > 0.5) == (y[:, 0] > 0.5)), out


def test_gradient_descent_on_the_lecture_table_converges_to_least_squares():
    x, y = (a.astype(np.float64) for a in datasets.lecture_table(return_X_y=True))
    model = cr.nn.Linear(1, 1, bias=False).double()
    with cr.no_grad():
        model.weight.zero_()
    cr.fit(model, (x, y), loss="mse", optimizer="gd", lr=0.005,
           epochs=200, batch_size=4, metrics=(), shuffle=False, verbose=0)
    w_ls = float((x * y).sum() / (x * x).sum())
    assert model.weight.item() == pytest.approx(w_ls, rel=1e-9)


def test_nan_loss_stops_training_naming_epoch_and_step():
    X, y = _moons(64)
    X[40] = np.nan  # in the second batch of 32
    model = cr.nn.MLP([2, 4, 2])
    with pytest.raises(TrainingError, match=r"loss became nan at epoch 1, step 2"):
        cr.fit(model, (X, y), epochs=2, batch_size=32, shuffle=False, verbose=0)


def test_early_stopping_restores_the_best_weights():
    X, y = _moons(200)
    model = cr.nn.MLP([2, 8, 2])
    seen = {}

    def remember(epoch, logs):
        seen[epoch] = ({k: v.numpy().copy() for k, v in model.state_dict().items()}, logs["val_loss"])

    stop = cr.EarlyStopping(monitor="val_loss", patience=2)
    # a huge learning rate makes validation loss jump around, so stopping kicks in
    cr.fit(model, (X, y), optimizer="sgd", lr=5.0, epochs=50, val_data=(X, y), verbose=0,
           callbacks=[stop, cr.train.LambdaCallback(on_epoch_end=remember)])
    assert stop.stopped_epoch is not None and stop.stopped_epoch < 50
    best_epoch = min(seen, key=lambda e: seen[e][1])
    assert stop.best_epoch == best_epoch
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), seen[best_epoch][0][k])


def test_learning_rate_scheduler_and_model_checkpoint(tmp_path):
    X, y = _moons(64)
    model = cr.nn.MLP([2, 4, 2])
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    sched = cr.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    path = str(tmp_path / "ckpt-{epoch}.safetensors")
    h = cr.fit(model, (X, y), optimizer=opt, epochs=5, verbose=0,
               callbacks=[cr.train.LearningRateScheduler(sched), cr.ModelCheckpoint(path, save_best_only=False)])
    assert h["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    restored = cr.load_model(str(tmp_path / "ckpt-5.safetensors"), key="model")
    for (k, v), (k2, v2) in zip(model.state_dict().items(), restored.state_dict().items()):
        assert k == k2
        np.testing.assert_array_equal(v.numpy(), v2.numpy())


def test_predict_and_evaluate_leave_the_model_in_its_mode_and_record_no_graph():
    X, y = _moons(50)
    model = cr.nn.MLP([2, 4, 2], dropout=0.5)
    model.train()
    out = cr.predict(model, X, batch_size=16)
    assert out.shape == (50, 2) and not out.requires_grad
    assert model.training
    np.testing.assert_allclose(out.numpy(), cr.predict(model, X).numpy(), rtol=1e-6)  # eval: no dropout
    scores = cr.evaluate(model, (X, y), metrics=("accuracy", "zero_one_loss"))
    assert scores["accuracy"] + scores["zero_one_loss"] == pytest.approx(1.0)


def test_fit_rejects_bad_arguments_clearly():
    X, y = _moons(20)
    model = cr.nn.MLP([2, 3, 2])
    with pytest.raises(ValueError, match="unknown loss 'nope'"):
        cr.fit(model, (X, y), loss="nope", verbose=0)
    with pytest.raises(ValueError, match="unknown optimizer 'nope'"):
        cr.fit(model, (X, y), optimizer="nope", verbose=0)
    with pytest.raises(ValueError, match="20 inputs but 19 targets"):
        cr.fit(model, (X, y[:19]), verbose=0)
    with pytest.raises(ValueError, match="unknown metric"):
        cr.fit(model, (X, y), metrics=("f1-ish",), verbose=0)


def test_metrics_accuracy_and_zero_one_loss():
    from chainrule.train.metrics import accuracy, zero_one_loss

    logits = cr.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    target = cr.tensor([0, 0, 0])
    assert accuracy(logits, target) == pytest.approx(2 / 3)
    assert zero_one_loss(logits, target, normalize=False) == 1
    probs = cr.tensor([[0.9], [0.2], [0.6]])
    assert accuracy(probs, cr.tensor([[1.0], [0.0], [0.0]])) == pytest.approx(2 / 3)
