"""The playground's server through Starlette's ASGI test client: sessions, settings, training, the
graph it sends (checked against cr.viz on a model rebuilt from the exported checkpoint), and the
clear errors for bad requests."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

import chainrule as cr
from chainrule.playground import Session, TrainingStopped
from chainrule.playground import app as pg_app
from chainrule.playground import data as D
from chainrule.playground.session import build_model, check_settings

SPIRAL = {"dataset": "spiral", "layers": [8, 8], "activation": "tanh", "optimizer": "adam", "lr": 0.03,
          "features": ["x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2"]}


@pytest.fixture
def client():
    with TestClient(pg_app.create_app(max_sessions=4)) as c:
        yield c


def new_session(client, settings=None) -> str:
    r = client.post("/api/session", json=settings or {})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def test_create_change_step_and_read_back(client):
    sid = new_session(client, {"dataset": "xor", "layers": [3]})
    r = client.post(f"/api/session/{sid}/config", json={"layers": [5, 4, 2], "activation": "relu"})
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["config"]["layers"] == [5, 4, 2] and state["epoch"] == 0
    assert [len(layer["weights"]) for layer in state["network"]["layers"]] == [5, 4, 2, 2]
    state = client.post(f"/api/session/{sid}/step").json()
    assert state["epoch"] == 1
    assert state["steps"] == 25  # 250 training points in batches of 10: one epoch
    again = client.get(f"/api/session/{sid}").json()
    assert again["epoch"] == 1 and again["config"]["activation"] == "relu"
    assert again["loss_train"] == pytest.approx(state["loss_train"])
    assert len(again["points"]["train"]) == 250 and len(again["points"]["test"]) == 250
    # the heat maps: one per unit (2 inputs, then 5, 4, 2 neurons), and the output's
    assert [len(u) for u in again["heatmaps"]["neurons"]] == [2, 5, 4, 2]


def test_graph_values_equal_cr_viz_for_the_same_weights_and_sample(client, tmp_path):
    sid = new_session(client, SPIRAL)
    client.post(f"/api/session/{sid}/step")
    graph = client.post(f"/api/session/{sid}/sample", json={"index": 7}).json()
    # the same weights, rebuilt from the exported checkpoint, and the same example, made independently
    path = tmp_path / "model.safetensors"
    path.write_bytes(client.get(f"/api/session/{sid}/export/checkpoint").content)
    model = cr.load_model(path)
    X, y = D.make_dataset("spiral", 500, 0, 0, 2)
    train, _ = D.split(500, 50, 0)
    x = cr.tensor(D.features(X[train][7:8], SPIRAL["features"]), name="x")
    t = cr.tensor(y[train][7:8], name="y")
    loss = cr.nn.CrossEntropyLoss()(model(x), t)
    expected = cr.viz.build_graph(loss, model=model)
    assert graph["loss"] == pytest.approx(loss.item(), rel=1e-12)
    assert len(graph["nodes"]) == len(expected.values) == 13
    for node, v in zip(graph["nodes"], expected.values):
        assert node["shape"] == list(v.shape)
        np.testing.assert_allclose(node["value"], v.value.reshape(-1), rtol=1e-12, atol=1e-15)
        if v.grad is None:
            assert node["grad"] is None
        else:
            np.testing.assert_allclose(node["grad"], v.grad.reshape(-1), rtol=1e-10, atol=1e-15)
    assert [op["kind"] for op in graph["ops"]] == [op.fn.op_name() if not type(op.fn).__name__.lower().endswith("scalar")
                                                   else type(op.fn).__name__.lower() for op in expected.ops]
    # the chain rule steps: upstream x local = product, and the products into a value sum to its grad
    steps = cr.viz.explain(loss, model=model).steps
    assert len(graph["steps"]) == len(steps)
    for mine, theirs in zip(graph["steps"], steps):
        assert (mine["output"], mine["input"]) == (theirs.output, theirs.input)
        np.testing.assert_allclose(mine["product"], theirs.product.reshape(-1), rtol=1e-10, atol=1e-15)


def test_bad_requests_get_clear_errors(client):
    sid = new_session(client)
    cases = [
        ("/api/session", {"dataset": "moons"}, "dataset: unknown value 'moons'"),
        (f"/api/session/{sid}/config", {"layers": [4] * 9}, "at most 6 hidden layers, got 9"),
        (f"/api/session/{sid}/config", {"layers": [9]}, "1 to 8 neurons, got 9"),
        (f"/api/session/{sid}/config", {"lr": "0.1"}, "lr: expected a number"),
        (f"/api/session/{sid}/config", {"activation": "__import__('os')"}, "activation: unknown value"),
        (f"/api/session/{sid}/config", {"colour": 1}, "unknown setting 'colour'"),
        (f"/api/session/{sid}/config", {"dataset": "plane"}, "regression set; set problem to regression"),
        (f"/api/session/{sid}/config", {"loss": "bce", "dataset": "spiral", "classes": 3}, "bce is for two classes"),
        (f"/api/session/{sid}/config", {"features": []}, "non-empty list"),
        (f"/api/session/{sid}/weight", {"layer": 7, "to": 0, "from": 0, "value": 1}, "layer must be 0..2"),
    ]
    for path, body, message in cases:
        r = client.post(path, json=body)
        assert r.status_code == 400, (path, body, r.text)
        assert message in r.json()["error"], (body, r.json())
    r = client.post(f"/api/session/{sid}/config", content=b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = client.post(f"/api/session/{sid}/config", content=b"[1, 2]")
    assert r.status_code == 400 and "JSON object" in r.json()["error"]
    r = client.post("/api/session/nosuchsession/step")
    assert r.status_code == 404 and "reload the page" in r.json()["error"]
    # the session is unchanged by all of that
    assert client.get(f"/api/session/{sid}").json()["config"] == check_settings({})


@pytest.mark.parametrize("text, message", [
    (b"x1,x2,label\n1,2\n", "line 2: expected 3 values"),
    (b"1,2,0\n3,4,1\nfive,6,0\n7,8,1\n", "line 3: 'five,6,0' is not three numbers"),
    (b"1,2,0\n3,4,1\n", "2 data rows; at least 4"),
    (b"1,2,0\n3,4,0\n5,6,0\n7,8,0\n", "every label is 0"),
    (b"1,2,0\n3,4,2\n5,6,0\n7,8,2\n", "no row has label 1"),
    (b"1,2,nan\n3,4,1\n5,6,0\n7,8,1\n", "must be finite"),
    (b"\xff\xfe\x00\x01", "not a text file"),
    (b"", "empty"),
    (b"1,2,0\n" * 10_001, "more than 10,000 rows"),
    (b"1,2,0\n" + b" " * 1_000_001, "limit is 1,000,000 bytes"),
])
def test_a_malformed_csv_is_refused_with_the_line_at_fault(client, text, message):
    sid = new_session(client)
    r = client.post(f"/api/session/{sid}/csv", content=text, headers={"X-Filename": "points.csv"})
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    assert client.get(f"/api/session/{sid}").json()["config"]["dataset"] == "circle"


def test_a_csv_of_three_classes_and_one_of_targets(client):
    sid = new_session(client, {"loss": "bce"})
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    rows = "\n".join(f"{a:.4f},{b:.4f},{k % 3}" for k, (a, b) in enumerate(X))
    state = client.post(f"/api/session/{sid}/csv", content=("x1,x2,label\n" + rows).encode(),
                        headers={"X-Filename": "mine.csv"}).json()
    assert state["config"]["dataset"] == "csv" and state["config"]["classes"] == 3
    assert state["config"]["loss"] == "cross_entropy"  # bce cannot take three classes
    assert state["csv_name"] == "mine.csv"
    assert len(state["points"]["train"]) + len(state["points"]["test"]) == 60
    assert state["heatmaps"]["output"]["kind"] == "multiclass"
    assert client.post(f"/api/session/{sid}/step").json()["epoch"] == 1
    rows = "\n".join(f"{a:.4f},{b:.4f},{a * 0.3 + 0.05:.4f}" for a, b in X)
    state = client.post(f"/api/session/{sid}/csv", content=rows.encode()).json()
    assert state["config"]["problem"] == "regression" and state["config"]["loss"] == "mse"


def test_two_sessions_are_independent(client):
    a, b = new_session(client), new_session(client)
    assert a != b
    client.post(f"/api/session/{a}/config", json={"activation": "relu", "layers": [2]})
    client.post(f"/api/session/{a}/step")
    sa, sb = client.get(f"/api/session/{a}").json(), client.get(f"/api/session/{b}").json()
    assert (sa["epoch"], sa["config"]["activation"]) == (1, "relu")
    assert (sb["epoch"], sb["config"]["activation"], sb["config"]["layers"]) == (0, "tanh", [4, 2])


def test_the_websocket_streams_while_playing(client):
    sid = new_session(client, {"dataset": "gauss"})
    with client.websocket_connect(f"/api/session/{sid}/ws") as ws:
        first = ws.receive_json()
        assert first["epoch"] == 0 and "points" in first and "graph" in first
        client.post(f"/api/session/{sid}/play")
        epochs = [ws.receive_json()["epoch"] for _ in range(6)]
        client.post(f"/api/session/{sid}/pause")
    assert epochs == sorted(epochs) and epochs[-1] > epochs[0]  # each message a newer state
    # a page that already has the state (from the HTTP answer) is sent only what changes after it
    state = client.get(f"/api/session/{sid}").json()
    with client.websocket_connect(f"/api/session/{sid}/ws?version={state['version']}&data={state['data_version']}") as ws:
        client.post(f"/api/session/{sid}/step")
        update = ws.receive_json()
    assert update["epoch"] == state["epoch"] + 1 and "points" not in update
    assert pg_app.UPDATES_PER_SECOND >= 10


def test_sessions_are_bounded_and_idle_ones_dropped():
    sessions = pg_app.Sessions(max_sessions=2, idle_seconds=1000)
    a = sessions.create({})
    b = sessions.create({})
    a.clients = 1  # a tab is watching a
    c = sessions.create({})  # full: the idle one (b) goes
    with pytest.raises(KeyError, match="reload the page"):
        sessions.get(b.id)
    assert sessions.get(a.id) is a and sessions.get(c.id) is c
    c.clients = 1
    with pytest.raises(pg_app.SessionLimit, match="2 open sessions"):
        sessions.create({})
    sessions.idle_seconds = 0.0
    a.clients = c.clients = 0
    assert sessions.reap() == 2 and len(sessions) == 0


def test_nan_stops_training_and_names_the_step_and_op(client):
    sid = new_session(client, {"dataset": "multigauss", "problem": "regression", "loss": "mse",
                               "activation": "linear", "layers": [8, 8, 8], "optimizer": "momentum", "lr": 10})
    r = client.post(f"/api/session/{sid}/step")
    assert r.status_code == 409
    info = r.json()["stopped"]
    # measured: the loss overflows at step 4, in the square of the MSE; allow a BLAS kernel to shift it
    assert 2 <= info["step"] <= 10 and info["where"].startswith("op ") and " in " in info["where"]
    assert f"Training stopped at step {info['step']}" in r.json()["error"]
    state = client.get(f"/api/session/{sid}").json()
    assert state["error"]["step"] == info["step"] and state["playing"] is False
    assert client.post(f"/api/session/{sid}/play").status_code == 409  # stays stopped until rewind
    assert client.post(f"/api/session/{sid}/rewind").json()["error"] is None


def test_nan_in_the_weights_names_the_layer():
    s = Session({"dataset": "xor", "layers": [4]})
    with cr.no_grad():
        s.model[0].weight.detach().numpy()[0, 0] = np.inf
    with pytest.raises(TrainingStopped, match=r"step 1 .*hidden layer 1 \(Linear\) \(0.weight\)"):
        s.train_step()


def test_rewind_restores_the_initial_weights_and_reset_draws_new_ones(client):
    sid = new_session(client)
    first = client.get(f"/api/session/{sid}").json()["network"]
    client.post(f"/api/session/{sid}/step")
    assert client.get(f"/api/session/{sid}").json()["network"] != first
    rewound = client.post(f"/api/session/{sid}/rewind").json()
    assert rewound["network"] == first and rewound["epoch"] == 0
    reset = client.post(f"/api/session/{sid}/reset").json()
    assert reset["network"] != first and reset["epoch"] == 0


def test_a_weight_edited_on_the_page(client):
    sid = new_session(client)
    state = client.post(f"/api/session/{sid}/weight", json={"layer": 1, "to": 1, "from": 3, "value": -2.5}).json()
    assert state["network"]["layers"][1]["weights"][1][3] == -2.5
    state = client.post(f"/api/session/{sid}/weight", json={"layer": 0, "to": 0, "from": -1, "value": 0.75}).json()
    assert state["network"]["layers"][0]["bias"][0] == 0.75


def test_gradient_check_per_layer_passes_and_catches_a_planted_bug(client, monkeypatch):
    sid = new_session(client, {"layers": [3, 3], "activation": "sigmoid"})
    report = client.post(f"/api/session/{sid}/gradcheck").json()
    assert report["ok"] and [layer["name"] for layer in report["layers"]] == [
        "hidden layer 1 (Linear)", "hidden layer 2 (Linear)", "output layer (Linear)"]
    # plant a wrong derivative in sigmoid's backward (both paths): the check must fail
    from chainrule.ops.elementwise import Sigmoid

    monkeypatch.setattr(Sigmoid, "backward", lambda self, grad: (grad * self.output * (1.0 - self.output) * 1.5,))
    monkeypatch.setattr(Sigmoid, "backward_array",
                        lambda self, grad: (grad * self.output._data * (1.0 - self.output._data) * 1.5,))
    report = client.post(f"/api/session/{sid}/gradcheck").json()
    assert not report["ok"]
    assert [layer["ok"] for layer in report["layers"]] == [False, False, True]  # the output layer has no sigmoid after it


def test_every_activation_loss_and_optimizer_trains_an_epoch():
    for activation in ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "maxout", "elu", "linear"):
        s = Session({"dataset": "gauss", "layers": [3, 2], "activation": activation})
        s.step()
        assert np.isfinite(s.loss_train) and s.epoch == 1, activation
        assert len(s.snapshot()["heatmaps"]["neurons"]) == 3
    for loss in ("cross_entropy", "bce", "mse", "l1", "hinge"):
        s = Session({"dataset": "xor", "loss": loss})
        before = s.loss_train
        for _ in range(3):
            s.step()
        assert s.loss_train < before, loss
    for optimizer in ("sgd", "gd", "momentum", "adam", "lbfgs"):
        s = Session({"dataset": "gauss", "optimizer": optimizer, "lr": 0.1, "regularization": "l2", "reg_rate": 0.01})
        before = s.loss_train
        for _ in range(3):
            s.step()
        assert s.loss_train < before, optimizer
    s = Session({"dataset": "spiral", "classes": 4, "regularization": "l1", "reg_rate": 0.001})
    s.step()
    assert s.snapshot()["heatmaps"]["output"]["kind"] == "multiclass"
    s = Session({"dataset": "plane", "problem": "regression", "loss": "l1"})
    s.step()
    assert s.snapshot()["heatmaps"]["output"]["kind"] == "regression"


def test_the_gradient_norms_per_layer_show_vanishing_gradients():
    deep = {"dataset": "circle", "layers": [8] * 6, "optimizer": "sgd", "lr": 0.03}
    norms = {}
    for activation in ("sigmoid", "relu"):
        s = Session({**deep, "activation": activation})
        for _ in range(2):
            s.step()
        layers = s.snapshot()["diagnostics"]["layers"]
        norms[activation] = layers[0]["grad_norm"][-1] / layers[-1]["grad_norm"][-1]
    # dead and saturated units, per neuron
    s = Session({"dataset": "xor", "layers": [3], "activation": "relu"})
    with cr.no_grad():
        s.model[0].bias.detach().numpy()[1] = -100.0  # neuron 2 never fires
        s.model[0].weight.detach().numpy()[2] = 50.0
    s2 = Session({"dataset": "xor", "layers": [2], "activation": "tanh"})
    with cr.no_grad():
        s2.model[0].weight.detach().numpy()[0] = 50.0  # neuron 1 sits at +-1 almost everywhere
    assert s.unit_health() == [[None, "dead", None]]
    assert s2.unit_health() == [["saturated", None]]
    # sigmoid: the first layer's gradient is orders of magnitude below the output layer's
    # (measured: 4e-6 for sigmoid, 0.06 for ReLU)
    assert norms["sigmoid"] < 1e-2 < norms["relu"]


def test_the_exported_script_retrains_the_same_weights(client, tmp_path):
    sid = new_session(client, {**SPIRAL, "optimizer": "momentum", "regularization": "l2", "reg_rate": 0.003,
                               "batch_size": 25})
    client.post(f"/api/session/{sid}/step")
    client.post(f"/api/session/{sid}/step")
    (tmp_path / "model.safetensors").write_bytes(client.get(f"/api/session/{sid}/export/checkpoint").content)
    script = client.get(f"/api/session/{sid}/export/code").text
    assert "EPOCHS = 2" in script
    (tmp_path / "script.py").write_text(script)
    proc = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 2: train loss" in proc.stdout
    ours = cr.load_model(tmp_path / "model.safetensors").state_dict()
    theirs = cr.load_model(tmp_path / "playground_model.safetensors").state_dict()
    for key in ours:
        np.testing.assert_allclose(theirs[key].numpy(), ours[key].numpy(), rtol=1e-10, atol=1e-12)


def test_initial_weights_follow_the_seed_and_leave_the_package_generator_alone():
    cr.manual_seed(123)
    expected = cr.rand(3).numpy()
    cr.manual_seed(123)
    config = check_settings({})
    a, b = build_model(config, 5), build_model(config, 5)
    assert cr.rand(3).numpy().tolist() == expected.tolist()
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_the_page_and_its_files_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and 'data-testid="graph"' in page.text
    for testid in ("play", "step", "reset", "dataset", "activation", "learning-rate", "add-layer", "remove-layer",
                   "epoch", "loss-train", "loss-test", "graph", "upload-csv", "export-code", "export-checkpoint", "error"):
        assert f'data-testid="{testid}"' in page.text, testid
    for name in ("playground.js", "playground.css", "favicon.svg"):
        assert client.get(f"/static/{name}").status_code == 200
    # nothing on the page is fetched from elsewhere
    for name in ("/", "/static/playground.js", "/static/playground.css"):
        text = client.get(name).text
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "https://" not in text


def test_serving_beyond_loopback_warns(monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pg_app.serve(host="127.0.0.1", port=1234)
    with pytest.warns(UserWarning, match="anyone who can reach this port"):
        pg_app.serve(host="0.0.0.0", port=1234)
    assert [c["host"] for c in calls] == ["127.0.0.1", "0.0.0.0"]


def test_the_command_line(capsys, monkeypatch):
    from chainrule import cli

    calls = []
    monkeypatch.setattr(pg_app, "serve", lambda **kw: calls.append(kw))
    assert cli.main(["playground", "--no-browser", "--port", "9000"]) == 0
    assert calls == [{"host": "127.0.0.1", "port": 9000, "open_browser": False}]
    assert "http://127.0.0.1:9000/" in capsys.readouterr().out
    assert cli.main(["playground", "--host", "0.0.0.0", "--no-browser"]) == 0
    assert "anyone who can reach this port" in capsys.readouterr().err
    assert cli.main(["playground", "--port", "70000"]) == 1
    assert "--port must be between 0 and 65535" in capsys.readouterr().err


def test_the_example_runs_and_writes_its_exports(tmp_path):
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, str(root / "examples" / "playground_session.py"), "--out", str(tmp_path),
                           "--epochs", "3"], capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 3 (75 steps)" in proc.stdout and "gradient check, output layer (Linear): ok" in proc.stdout
    model = cr.load_model(tmp_path / "playground_model.safetensors")
    assert [type(m).__name__ for m in model.children()] == ["Linear", "Tanh", "Linear", "Tanh", "Linear"]
    assert "EPOCHS = 3" in (tmp_path / "playground_model.py").read_text()
