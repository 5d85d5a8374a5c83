import json
import math
from collections import OrderedDict

import numpy as np
import pytest

import chainrule as cr
from chainrule.io import CheckpointError, read_safetensors


@cr.nn.register_config
class Scale(cr.nn.Module):
    """A tiny user layer that can describe itself: y = a * x + b, per feature."""

    def __init__(self, features: int, offset: bool = True):
        super().__init__()
        self.features, self.offset = features, offset
        self.a = cr.nn.Parameter(cr.ones(features))
        self.b = cr.nn.Parameter(cr.zeros(features)) if offset else None
        self.register_buffer("count", cr.zeros(1))

    def forward(self, x):
        y = x * self.a
        return y + self.b if self.offset else y

    def get_config(self):
        return {"class": "Scale", "args": {"features": self.features, "offset": self.offset}}


class NoConfig(cr.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = cr.nn.Parameter(cr.ones(2))


def _same_state(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]._data), np.asarray(b[k]._data))
        assert a[k].dtype == b[k].dtype


def test_nested_structure_round_trips(tmp_path):
    obj = {
        "weights": cr.randn(3, 2),
        "array": np.arange(5, dtype=np.int16),
        "numbers": [1, 2.5, True, None, "text", math.inf],
        "pair": (cr.tensor([1, 2]), "b"),
        "int_keys": {0: {"m": cr.zeros(2)}, 7: "seven"},
        "nested": {"deeper": {"x": np.float32(1.5), "y": np.int64(4)}},
        "__tensor__": "a user key that looks like ours",
        "dtype": np.float32,
    }
    path = tmp_path / "a.safetensors"
    cr.save(obj, path)
    back = cr.load(path)
    assert set(back) == set(obj)
    assert isinstance(back["weights"], cr.Tensor) and not back["weights"].requires_grad
    np.testing.assert_array_equal(back["weights"].numpy(), obj["weights"].numpy())
    assert isinstance(back["array"], np.ndarray) and back["array"].dtype == np.int16
    assert back["numbers"] == [1, 2.5, True, None, "text", math.inf]
    assert isinstance(back["pair"], tuple) and back["pair"][1] == "b"
    np.testing.assert_array_equal(back["pair"][0].numpy(), [1, 2])
    assert set(back["int_keys"]) == {0, 7} and back["int_keys"][7] == "seven"
    assert back["nested"]["deeper"] == {"x": 1.5, "y": 4}
    assert back["__tensor__"] == obj["__tensor__"]
    assert back["dtype"] == "float32"


def test_nan_is_kept(tmp_path):
    cr.save({"loss": float("nan")}, tmp_path / "n.safetensors")
    assert math.isnan(cr.load(tmp_path / "n.safetensors")["loss"])


def test_module_saves_as_plain_state_dict_with_its_names(tmp_path):
    model = cr.nn.MLP([4, 8, 3])
    path = tmp_path / "m.safetensors"
    cr.save(model, path)
    tensors, metadata = read_safetensors(path)
    assert set(tensors) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    state = cr.load(path)
    assert isinstance(state, OrderedDict)
    _same_state(state, model.state_dict())
    other = cr.nn.MLP([4, 8, 3])
    other.load_state_dict(cr.load(path))
    _same_state(other.state_dict(), model.state_dict())


def test_state_dict_saved_alone_loads_back(tmp_path):
    model = cr.nn.MLP([2, 5, 1])
    cr.save(model.state_dict(), tmp_path / "s.safetensors")
    _same_state(cr.load(tmp_path / "s.safetensors"), model.state_dict())


def test_load_model_rebuilds_an_mlp_without_code(tmp_path):
    model = cr.nn.MLP([4, 16, 3], activation="tanh")
    path = tmp_path / "mlp.safetensors"
    cr.save(model, path)
    rebuilt = cr.load_model(path)
    assert type(rebuilt) is type(model)
    assert rebuilt.get_config() == model.get_config()
    x = cr.randn(6, 4)
    with cr.no_grad():
        np.testing.assert_array_equal(rebuilt(x).numpy(), model(x).numpy())


def test_load_model_keeps_float64(tmp_path):
    model = cr.nn.MLP([3, 4, 2]).double()
    cr.save(model, tmp_path / "d.safetensors")
    rebuilt = cr.load_model(tmp_path / "d.safetensors")
    assert all(p.dtype == np.float64 for p in rebuilt.parameters())
    _same_state(rebuilt.state_dict(), model.state_dict())


def test_load_model_from_a_bundle_and_a_user_layer(tmp_path):
    layer = Scale(3)
    layer.a.data = cr.tensor([1.0, 2.0, 3.0])
    layer.count._data[...] = 5
    path = tmp_path / "bundle.safetensors"
    cr.save({"model": layer, "epoch": 4}, path)
    rebuilt = cr.load_model(path)
    assert isinstance(rebuilt, Scale) and rebuilt.features == 3
    np.testing.assert_array_equal(rebuilt.a.numpy() if not rebuilt.a.requires_grad else rebuilt.a.detach().numpy(), [1, 2, 3])
    assert rebuilt.count.item() == 5
    assert cr.load(path)["epoch"] == 4


def test_load_model_needs_key_with_several_models(tmp_path):
    path = tmp_path / "two.safetensors"
    cr.save({"generator": Scale(2), "critic": Scale(3, offset=False)}, path)
    with pytest.raises(ValueError, match=r"several models \('generator', 'critic'\); pass key="):
        cr.load_model(path)
    critic = cr.load_model(path, key="critic")
    assert critic.features == 3 and critic.b is None


def test_load_model_without_architecture_is_refused(tmp_path):
    cr.save(cr.nn.MLP([2, 2]).state_dict(), tmp_path / "sd.safetensors")
    with pytest.raises(CheckpointError, match="holds no saved model.*state dict has no architecture"):
        cr.load_model(tmp_path / "sd.safetensors")
    cr.save({"model": NoConfig()}, tmp_path / "nc.safetensors")
    with pytest.raises(CheckpointError, match=r"saved NoConfig could not describe its architecture.*load_state_dict\(cr.load\(path\)\['model'\]\)"):
        cr.load_model(tmp_path / "nc.safetensors")
    # the weights themselves still load
    assert list(cr.load(tmp_path / "nc.safetensors")["model"]) == ["w"]


def test_unknown_class_in_a_file_is_not_code(tmp_path):
    """A crafted file naming some class: from_config only knows registered layers."""
    path = tmp_path / "evil.safetensors"
    cr.save(Scale(2), path)
    tensors, metadata = read_safetensors(path)
    structure = json.loads(metadata["chainrule"])
    structure["__module__"]["config"] = {"class": "os.system", "args": {"command": "echo hi"}}
    from chainrule.io.safetensors import write_safetensors

    write_safetensors(path, tensors, {**metadata, "chainrule": json.dumps(structure)})
    with pytest.raises(ValueError, match="unknown module class 'os.system'"):
        cr.load_model(path)


def test_shape_mismatch_names_key_and_both_shapes(tmp_path):
    cr.save(cr.nn.MLP([4, 8, 3]), tmp_path / "m.safetensors")
    smaller = cr.nn.MLP([4, 6, 3])
    with pytest.raises(ValueError, match=r"'0.weight'.*\(8, 4\).*\(6, 4\)"):
        smaller.load_state_dict(cr.load(tmp_path / "m.safetensors"))


def test_missing_keys_are_reported(tmp_path):
    cr.save(cr.nn.MLP([4, 3]), tmp_path / "m.safetensors")
    with pytest.raises(KeyError, match="missing keys"):
        cr.nn.MLP([4, 5, 3]).load_state_dict(cr.load(tmp_path / "m.safetensors"))


def test_optimizer_state_round_trips_and_continues_identically(tmp_path):
    def build():
        cr.manual_seed(1)
        model = cr.nn.MLP([3, 5, 2])
        return model, cr.optim.Adam(model.parameters(), lr=0.01, betas=(0.8, 0.9))

    def step(model, opt, x):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()

    x = cr.randn(8, 3)
    model, opt = build()
    for _ in range(3):
        step(model, opt, x)
    path = tmp_path / "ckpt.safetensors"
    cr.save({"model": model, "optimizer": opt}, path)
    ckpt = cr.load(path)
    assert ckpt["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.9)
    model2, opt2 = build()
    model2.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["optimizer"])
    step(model, opt, x)
    step(model2, opt2, x)
    _same_state(model2.state_dict(), model.state_dict())


def test_tied_arrays_are_stored_once(tmp_path):
    w = cr.randn(3, 3)
    cr.save({"encoder": w, "decoder": w}, tmp_path / "tied.safetensors")
    tensors, _ = read_safetensors(tmp_path / "tied.safetensors")
    assert len(tensors) == 1
    back = cr.load(tmp_path / "tied.safetensors")
    assert back["encoder"] is back["decoder"]


def test_parameters_and_requires_grad_are_kept(tmp_path):
    p = cr.nn.Parameter(cr.ones(2))
    t = cr.zeros(2, requires_grad=True)
    cr.save([p, t], tmp_path / "p.safetensors")
    p2, t2 = cr.load(tmp_path / "p.safetensors")
    assert isinstance(p2, cr.nn.Parameter) and p2.requires_grad
    assert not isinstance(t2, cr.nn.Parameter) and t2.requires_grad


def test_standardizer_state_round_trips(tmp_path):
    X = np.random.default_rng(0).normal(3, 2, size=(50, 4)).astype(np.float32)
    scaler = cr.data.Standardizer().fit(X)
    cr.save({"scaler": scaler}, tmp_path / "s.safetensors")
    restored = cr.data.Standardizer().load_state_dict(cr.load(tmp_path / "s.safetensors")["scaler"])
    np.testing.assert_allclose(restored.transform(X), scaler.transform(X), rtol=1e-6)


def test_unsupported_objects_are_refused_with_their_place(tmp_path):
    with pytest.raises(TypeError, match=r"cannot store a set at 'extra.tags'"):
        cr.save({"extra": {"tags": {1, 2}}}, tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="path must be a str"):
        cr.save({}, 3)


def test_foreign_safetensors_file_loads_as_tensors(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    st.save_file({"layer.weight": np.ones((2, 2), np.float32)}, str(tmp_path / "f.safetensors"))
    back = cr.load(tmp_path / "f.safetensors")
    assert list(back) == ["layer.weight"] and isinstance(back["layer.weight"], cr.Tensor)
    with pytest.raises(CheckpointError, match="not written by cr.save"):
        cr.load_model(tmp_path / "f.safetensors")


def test_weights_move_to_pytorch_through_the_file(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    model = cr.nn.MLP([4, 8, 3])
    cr.save(model, tmp_path / "m.safetensors")
    ref = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    ref.load_state_dict(st.load_file(str(tmp_path / "m.safetensors")))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    with cr.no_grad():
        ours = model(cr.tensor(x)).numpy()
    np.testing.assert_allclose(ref(torch.from_numpy(x)).detach().numpy(), ours, rtol=1e-5, atol=1e-6)


def test_truncated_checkpoint_is_refused_by_load(tmp_path):
    path = tmp_path / "t.safetensors"
    cr.save(cr.nn.MLP([10, 20, 5]), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"t\.safetensors is truncated"):
        cr.load(path)
    with pytest.raises(CheckpointError, match=r"t\.safetensors is truncated"):
        cr.load_model(path)


def test_rng_state_round_trips_through_a_checkpoint(tmp_path):
    cr.manual_seed(3)
    cr.rand(5)
    cr.save({"rng": cr.io.get_rng_state()}, tmp_path / "r.safetensors")
    expected = cr.rand(4).numpy()
    cr.manual_seed(99)
    cr.io.set_rng_state(cr.load(tmp_path / "r.safetensors")["rng"])
    np.testing.assert_array_equal(cr.rand(4).numpy(), expected)
    with pytest.raises(ValueError, match="set_rng_state: expected a PCG64 state"):
        cr.io.set_rng_state({"bit_generator": "MT19937"})


@cr.nn.register_config
class Window(cr.nn.Module):
    """A user layer whose config holds a tuple and a dict with int keys: both must come back as such."""

    def __init__(self, size: tuple, table: dict):
        super().__init__()
        if not isinstance(size, tuple) or not all(isinstance(k, int) for k in table):
            raise TypeError(f"Window: got size {size!r} and table keys {list(table)!r}")
        self.size, self.table = size, table
        self.w = cr.nn.Parameter(cr.zeros(*size))

    def get_config(self):
        return {"class": "Window", "args": {"size": self.size, "table": self.table}}


def test_config_values_keep_their_python_types(tmp_path):
    cr.save(Window((2, 3), {1: "a", 2: "b"}), tmp_path / "w.safetensors")
    rebuilt = cr.load_model(tmp_path / "w.safetensors")
    assert rebuilt.size == (2, 3) and rebuilt.table == {1: "a", 2: "b"}


class OddConfig(cr.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = cr.nn.Parameter(cr.ones(2))

    def get_config(self):
        return {"class": "OddConfig", "args": {"activation": cr.nn.ReLU}}


def test_unstorable_config_warns_and_keeps_the_weights(tmp_path):
    with pytest.warns(UserWarning, match=r"OddConfig.get_config\(\) cannot be stored"):
        cr.save(OddConfig(), tmp_path / "o.safetensors")
    assert list(cr.load(tmp_path / "o.safetensors")) == ["w"]
    with pytest.raises(CheckpointError, match="could not describe its architecture"):
        cr.load_model(tmp_path / "o.safetensors")
