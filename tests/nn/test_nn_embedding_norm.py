"""Embedding, LayerNorm and GroupNorm against PyTorch (values, gradients, keys, reprs), gradchecked over
inputs and parameters; their errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from layer_gradcheck import gradcheck_layer

import chainrule as cr


def _copy_from(layer, reference):
    layer.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    assert list(layer.state_dict()) == list(reference.state_dict())


# ---- Embedding -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("padding_idx", [None, 0, 3, -1])
def test_embedding_values_and_gradients_match_pytorch(padding_idx):
    reference = torch.nn.Embedding(6, 4, padding_idx=padding_idx).double()
    layer = cr.nn.Embedding(6, 4, padding_idx=padding_idx).double()
    _copy_from(layer, reference)
    idx = np.array([[0, 3, 3, 5], [1, 0, 5, 5], [2, 2, 2, 4]])  # repeats: their gradients add up
    ours, theirs = layer(cr.tensor(idx)), reference(torch.tensor(idx))
    assert ours.shape == tuple(theirs.shape) == (3, 4, 4)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    w = np.random.default_rng(0).standard_normal((3, 4, 4))
    (ours * cr.tensor(w)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), reference.weight.grad.numpy(), rtol=1e-12)
    if padding_idx is not None:
        assert layer.padding_idx == reference.padding_idx
        assert not layer.weight.grad.numpy()[padding_idx].any()


def test_embedding_starts_standard_normal_with_a_zero_padding_row():
    cr.manual_seed(1)
    layer = cr.nn.Embedding(2000, 50, padding_idx=7)
    w = layer.weight.detach().numpy()
    assert not w[7].any()
    rest = np.delete(w, 7, axis=0)
    assert abs(rest.mean()) < 0.01 and abs(rest.std() - 1) < 0.01


def test_embedding_padding_row_set_by_hand_is_read_but_not_trained():
    layer = cr.nn.Embedding(4, 2, padding_idx=1)
    with cr.no_grad():
        layer.weight[1] = cr.tensor([5.0, -5.0])
    out = layer(cr.tensor([1, 2, 1]))
    assert out.detach().numpy()[0].tolist() == [5.0, -5.0]
    out.sum().backward()
    assert layer.weight.grad.numpy()[1].tolist() == [0.0, 0.0]
    assert layer.weight.grad.numpy()[2].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("norm_type", [2.0, 1.0])
def test_embedding_max_norm_renormalises_the_rows_read_like_pytorch(norm_type):
    reference = torch.nn.Embedding(5, 3, max_norm=1.0, norm_type=norm_type).double()
    layer = cr.nn.Embedding(5, 3, max_norm=1.0, norm_type=norm_type).double()
    _copy_from(layer, reference)
    idx = np.array([0, 2, 2, 4])
    ours, theirs = layer(cr.tensor(idx)), reference(torch.tensor(idx))
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    # the rows read were rescaled in place, the others are untouched (as in PyTorch)
    np.testing.assert_allclose(layer.weight.detach().numpy(), reference.weight.detach().numpy(), rtol=1e-12)
    norms = np.linalg.norm(layer.weight.detach().numpy(), ord=norm_type, axis=1)
    assert np.all(norms[idx] <= 1.0 + 1e-9) and np.any(norms[[1, 3]] > 1.0)
    ours.sum().backward()
    theirs.sum().backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), reference.weight.grad.numpy(), rtol=1e-12)


def test_embedding_from_pretrained_copies_and_freezes_like_pytorch():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    frozen = cr.nn.Embedding.from_pretrained(cr.tensor(table))
    theirs = torch.nn.Embedding.from_pretrained(torch.tensor(table))
    assert frozen.weight.requires_grad is theirs.weight.requires_grad is False
    np.testing.assert_array_equal(frozen(cr.tensor([3, 0])).numpy(), theirs(torch.tensor([3, 0])).numpy())
    table[0, 0] = 100.0  # a copy: the caller's array does not change the layer
    assert frozen.weight.detach().numpy()[0, 0] == 0.0
    trainable = cr.nn.Embedding.from_pretrained(table, freeze=False, padding_idx=2)
    assert trainable.weight.requires_grad and trainable.padding_idx == 2
    assert repr(trainable) == repr(torch.nn.Embedding.from_pretrained(torch.tensor(table), freeze=False,
                                                                      padding_idx=2))


def test_embedding_passes_gradcheck_over_its_table():
    # (no padding_idx: its row's gradient is zero by design, which finite differences do not see)
    layer = cr.nn.Embedding(5, 3).double()
    idx = cr.tensor([[0, 2, 4], [4, 4, 1]])
    gradcheck_layer(layer, [], lambda m: m(idx).tanh())
    gradcheck_layer(layer, [], lambda m: m(idx).tanh(), second_order=True)


def test_embedding_reprs_and_state_dict_match_pytorch():
    for kwargs in ({}, {"padding_idx": 0}, {"max_norm": 2.0}, {"max_norm": 1.5, "norm_type": 1.0}):
        assert repr(cr.nn.Embedding(10, 3, **kwargs)) == repr(torch.nn.Embedding(10, 3, **kwargs))
    assert list(cr.nn.Embedding(3, 2).state_dict()) == ["weight"]


def test_embedding_errors_are_clear():
    layer = cr.nn.Embedding(4, 2)
    with pytest.raises(ValueError, match=r"sparse=True \(sparse gradients\) is not supported"):
        cr.nn.Embedding(4, 2, sparse=True)
    with pytest.raises(IndexError, match="index 4 is out of range for a table of 4 embeddings"):
        layer(cr.tensor([0, 4]))
    with pytest.raises(IndexError, match="index -1 is out of range"):
        layer(cr.tensor([-1]))
    with pytest.raises(TypeError, match="indices must be integers"):
        layer(cr.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="padding_idx must be an index into the 4 embeddings, got 4"):
        cr.nn.Embedding(4, 2, padding_idx=4)
    with pytest.raises(ValueError, match="embeddings must be 2-D"):
        cr.nn.Embedding.from_pretrained(cr.ones(3))


def test_embedding_feeds_an_lstm_classifier_end_to_end():
    class Tagger(cr.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = cr.nn.Embedding(10, 4, padding_idx=0)
            self.lstm = cr.nn.LSTM(4, 6, batch_first=True)
            self.out = cr.nn.Linear(6, 3)

        def forward(self, idx):
            h, _ = self.lstm(self.embed(idx))
            return self.out(h)

    model = Tagger()
    logits = model(cr.tensor([[1, 2, 3, 0], [4, 5, 0, 0]]))
    assert logits.shape == (2, 4, 3)
    logits.sum().backward()
    assert model.embed.weight.grad.numpy()[0].tolist() == [0.0] * 4
    assert np.abs(model.embed.weight.grad.numpy()[1:6]).sum() > 0


# ---- LayerNorm ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("normalized_shape, affine, bias", list(itertools.product([4, (4,), (3, 4)], (True, False),
                                                                                  (True, False))))
def test_layer_norm_values_and_gradients_match_pytorch(normalized_shape, affine, bias):
    reference = torch.nn.LayerNorm(normalized_shape, elementwise_affine=affine, bias=bias).double()
    layer = cr.nn.LayerNorm(normalized_shape, elementwise_affine=affine, bias=bias).double()
    rng = np.random.default_rng(4)
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape))))
    _copy_from(layer, reference)
    x = rng.standard_normal((2, 5, 3, 4)) * 3 + 1
    tx, cx = torch.tensor(x, requires_grad=True), cr.tensor(x, requires_grad=True)
    ours, theirs = layer(cx), reference(tx)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(x.shape)
    (ours * cr.tensor(w)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    theirs_params = dict(reference.named_parameters())
    assert set(theirs_params) == {n for n, _ in layer.named_parameters()}
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(), rtol=1e-9, atol=1e-11)


def test_layer_norm_passes_gradcheck_and_second_derivatives():
    layer = cr.nn.LayerNorm((2, 3)).double()
    with cr.no_grad():
        layer.weight.copy_(cr.randn(2, 3, dtype=cr.float64))
        layer.bias.copy_(cr.randn(2, 3, dtype=cr.float64))
    x = cr.randn(2, 2, 3, dtype=cr.float64, requires_grad=True)
    gradcheck_layer(layer, [x], lambda m, x: m(x))
    gradcheck_layer(layer, [x], lambda m, x: m(x), second_order=True)


def test_layer_norm_repr_and_errors():
    assert repr(cr.nn.LayerNorm(8)) == repr(torch.nn.LayerNorm(8))
    assert repr(cr.nn.LayerNorm((2, 3), eps=1e-6, elementwise_affine=False)) == \
        repr(torch.nn.LayerNorm((2, 3), eps=1e-6, elementwise_affine=False))
    assert cr.nn.LayerNorm(4, bias=False).bias is None
    assert repr(cr.nn.LayerNorm(4, bias=False)) == repr(torch.nn.LayerNorm(4, bias=False))
    with pytest.raises(ValueError, match=r"LayerNorm layer \(\(4,\), eps=1e-05, elementwise_affine=True, bias=True\): expected "
                                         r"input of shape \(\*, 4\), got \(2, 3\)"):
        cr.nn.LayerNorm(4)(cr.ones(2, 3))
    with pytest.raises(ValueError, match="normalized_shape must be a positive integer"):
        cr.nn.LayerNorm(0)


# ---- GroupNorm ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("groups, shape, affine", [(1, (2, 6, 4), True), (3, (2, 6, 4, 5), True), (6, (3, 6), True),
                                                   (2, (2, 6, 3, 3), False), (3, (2, 6, 2), "no bias")])
def test_group_norm_values_and_gradients_match_pytorch(groups, shape, affine):
    kwargs = {"affine": bool(affine), "bias": affine is True}
    reference = torch.nn.GroupNorm(groups, 6, **kwargs).double()
    layer = cr.nn.GroupNorm(groups, 6, **kwargs).double()
    rng = np.random.default_rng(5)
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape))))
    _copy_from(layer, reference)
    x = rng.standard_normal(shape) * 2 - 1
    tx, cx = torch.tensor(x, requires_grad=True), cr.tensor(x, requires_grad=True)
    ours, theirs = layer(cx), reference(tx)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(x.shape)
    (ours * cr.tensor(w)).sum().backward()
    (theirs * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-11)
    theirs_params = dict(reference.named_parameters())
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(), rtol=1e-9, atol=1e-11)


def test_group_norm_passes_gradcheck_and_second_derivatives():
    layer = cr.nn.GroupNorm(2, 4).double()
    with cr.no_grad():
        layer.weight.copy_(cr.randn(4, dtype=cr.float64))
        layer.bias.copy_(cr.randn(4, dtype=cr.float64))
    x = cr.randn(2, 4, 3, dtype=cr.float64, requires_grad=True)
    gradcheck_layer(layer, [x], lambda m, x: m(x))
    gradcheck_layer(layer, [x], lambda m, x: m(x), second_order=True)


def test_group_norm_repr_and_errors():
    for kwargs in ({}, {"affine": False}, {"bias": False}, {"eps": 1e-3}):
        assert repr(cr.nn.GroupNorm(2, 4, **kwargs)) == repr(torch.nn.GroupNorm(2, 4, **kwargs))
    with pytest.raises(ValueError, match=r"num_channels \(6\) must be divisible by num_groups \(4\)"):
        cr.nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4, \*\), got \(2, 3, 5\)"):
        cr.nn.GroupNorm(2, 4)(cr.ones(2, 3, 5))


def test_new_layers_rebuild_from_config():
    for layer in (cr.nn.Embedding(5, 3, padding_idx=1), cr.nn.LayerNorm((2, 3), bias=False), cr.nn.GroupNorm(2, 4),
                  cr.nn.LSTMCell(3, 4, bias=False)):
        rebuilt = cr.nn.from_config(layer.get_config())
        assert repr(rebuilt) == repr(layer)
        assert {k: v.shape for k, v in rebuilt.state_dict().items()} == \
            {k: v.shape for k, v in layer.state_dict().items()}


@pytest.mark.parametrize("name", ["chainrule.nn.rnn", "chainrule.nn.rnn_utils", "chainrule.nn.sparse",
                                  "chainrule.nn.normalization"])
def test_docstring_examples_of_the_new_layers_run(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), extraglobs={"cr": cr},
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
