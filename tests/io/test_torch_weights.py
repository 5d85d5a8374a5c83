"""Weights move both ways between PyTorch and chainrule through safetensors files: a state dict saved by
``safetensors.torch.save_file`` loads into the same chainrule architecture and gives the same outputs,
and a chainrule checkpoint loads into PyTorch with ``safetensors.torch.load_file``. An MLP, a CNN (with
batch norm buffers) and an embedding + LSTM model; errors for mismatched keys and shapes."""

from __future__ import annotations

import numpy as np
import pytest
import safetensors.torch
import torch

import chainrule as cr


def _mlp(nn):
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


def _cnn(nn):
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 2 * 2, 5))


def _recurrent(nn):
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(12, 5, padding_idx=0)
            self.lstm = nn.LSTM(5, 7, num_layers=2, batch_first=True, bidirectional=True)
            self.norm = nn.LayerNorm(14)
            self.head = nn.Linear(14, 3)

        def forward(self, idx):
            out, (h, c) = self.lstm(self.embed(idx))
            return self.head(self.norm(out)) + h.sum() + c.sum()

    return Tagger()


def _example(kind: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if kind == "mlp":
        return rng.standard_normal((6, 4)).astype(np.float32)
    if kind == "cnn":
        return rng.standard_normal((3, 1, 8, 8)).astype(np.float32)
    return rng.integers(0, 12, size=(3, 6))


BUILDERS = {"mlp": _mlp, "cnn": _cnn, "lstm": _recurrent}


def _train_torch_a_little(model, x):
    """Move the weights (and batch norm statistics) away from their initial values."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        loss = model(x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("kind", BUILDERS)
def test_a_pytorch_state_dict_saved_with_safetensors_loads_into_chainrule(kind, tmp_path):
    torch_model = BUILDERS[kind](torch.nn)
    x = _example(kind)
    tx = torch.tensor(x)
    _train_torch_a_little(torch_model, tx)
    torch_model.eval()
    path = tmp_path / f"{kind}.safetensors"
    safetensors.torch.save_file(torch_model.state_dict(), str(path))

    model = BUILDERS[kind](cr.nn)
    result = model.load_state_dict(cr.load(path))
    assert result.missing_keys == [] and result.unexpected_keys == []
    model.eval()
    with torch.no_grad():
        expected = torch_model(tx).numpy()
    np.testing.assert_allclose(model(cr.tensor(x)).detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    for key, value in torch_model.state_dict().items():  # buffers too: running stats, num_batches_tracked
        np.testing.assert_array_equal(model.state_dict()[key].numpy(), value.numpy(), err_msg=key)


@pytest.mark.parametrize("kind", BUILDERS)
@pytest.mark.parametrize("save", ["module", "state_dict"])
def test_a_chainrule_checkpoint_loads_into_pytorch_with_safetensors(kind, save, tmp_path):
    cr.manual_seed(3)
    model = BUILDERS[kind](cr.nn)
    x = _example(kind)
    opt = cr.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):  # move weights and batch norm statistics
        loss = model(cr.tensor(x)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    path = tmp_path / f"{kind}.safetensors"
    cr.save(model if save == "module" else model.state_dict(), path)

    torch_model = BUILDERS[kind](torch.nn)
    state = safetensors.torch.load_file(str(path))
    assert set(state) == set(torch_model.state_dict())
    torch_model.load_state_dict(state)  # strict: same keys, same shapes
    torch_model.eval()
    with torch.no_grad():
        got = torch_model(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, model(cr.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_mismatched_keys_from_a_pytorch_file_are_named(tmp_path):
    path = tmp_path / "mlp.safetensors"
    state = _mlp(torch.nn).state_dict()
    state["extra.weight"] = torch.zeros(2)
    del state["4.bias"]
    safetensors.torch.save_file(state, str(path))
    model = _mlp(cr.nn)
    with pytest.raises(KeyError, match=r"missing keys \['4.bias'\]; unexpected keys \['extra.weight'\]"):
        model.load_state_dict(cr.load(path))
    result = model.load_state_dict(cr.load(path), strict=False)
    assert result.missing_keys == ["4.bias"] and result.unexpected_keys == ["extra.weight"]


def test_a_shape_mismatch_from_a_pytorch_file_names_the_key_and_both_shapes(tmp_path):
    path = tmp_path / "lstm.safetensors"
    safetensors.torch.save_file(torch.nn.LSTM(5, 8).state_dict(), str(path))
    with pytest.raises(ValueError, match=r"size mismatch for 'weight_ih_l0': the checkpoint has shape \(32, 5\), "
                                         r"the model has \(28, 5\)"):
        cr.nn.LSTM(5, 7).load_state_dict(cr.load(path))
