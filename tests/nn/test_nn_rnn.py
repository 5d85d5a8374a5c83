"""Recurrent layers RNN/LSTM/GRU and their cells against PyTorch (values, states, gradients, state-dict
keys) on a grid of configurations; gradcheck through time over inputs and every parameter; packed
sequences; errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from layer_gradcheck import gradcheck_layer

import chainrule as cr
from chainrule.nn import rnn as rnn_module

MODES = {  # name -> (chainrule class, torch class, extra kwargs)
    "rnn_tanh": (cr.nn.RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (cr.nn.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (cr.nn.LSTM, torch.nn.LSTM, {}),
    "gru": (cr.nn.GRU, torch.nn.GRU, {}),
}


def _pair(mode: str, **kwargs):
    """The same layer in both frameworks, float64, with torch's weights copied into chainrule's."""
    ours, theirs, extra = MODES[mode]
    reference = theirs(**extra, **kwargs).double()
    layer = ours(**extra, **kwargs).double()
    result = layer.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    return layer, reference


def _states(mode: str, state):
    return list(state) if mode == "lstm" else [state]


GRID = list(itertools.product(MODES, (1, 2), (False, True), (False, True), (True, False), (False, True)))


@pytest.mark.parametrize("mode, num_layers, bidirectional, batch_first, bias, with_h0", GRID)
def test_values_states_and_gradients_match_pytorch(mode, num_layers, bidirectional, batch_first, bias, with_h0):
    hidden, size, steps, batch = 4, 3, 5, 2
    layer, reference = _pair(mode, input_size=size, hidden_size=hidden, num_layers=num_layers, bias=bias,
                             batch_first=batch_first, bidirectional=bidirectional)
    assert list(layer.state_dict()) == list(reference.state_dict())
    rng = np.random.default_rng(7)
    x = rng.standard_normal((batch, steps, size) if batch_first else (steps, batch, size))
    d = 2 if bidirectional else 1
    h0 = [rng.standard_normal((d * num_layers, batch, hidden)) for _ in range(2 if mode == "lstm" else 1)]
    tx = torch.tensor(x, requires_grad=True)
    th0 = [torch.tensor(h, requires_grad=True) for h in h0]
    cx = cr.tensor(x, requires_grad=True)
    ch0 = [cr.tensor(h, requires_grad=True) for h in h0]
    if with_h0:
        t_out, t_state = reference(tx, tuple(th0) if mode == "lstm" else th0[0])
        c_out, c_state = layer(cx, tuple(ch0) if mode == "lstm" else ch0[0])
    else:
        t_out, t_state = reference(tx)
        c_out, c_state = layer(cx)
    assert c_out.shape == tuple(t_out.shape)
    np.testing.assert_allclose(c_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    t_states, c_states = _states(mode, t_state), _states(mode, c_state)
    for c, t in zip(c_states, t_states):
        assert c.shape == tuple(t.shape)
        np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)
    # a random weighting of every output, so each entry's gradient is checked
    weights = [rng.standard_normal(tuple(t.shape)) for t in [t_out, *t_states]]
    sum(((t * torch.tensor(w)).sum() for t, w in zip([t_out, *t_states], weights)), torch.tensor(0.0)).backward()
    total = None
    for c, w in zip([c_out, *c_states], weights):
        term = (c * cr.tensor(w)).sum()
        total = term if total is None else total + term
    total.backward()
    np.testing.assert_allclose(cx.grad.detach().numpy(), tx.grad.detach().numpy(), rtol=1e-9, atol=1e-11)
    if with_h0:
        for c, t in zip(ch0, th0):
            np.testing.assert_allclose(c.grad.detach().numpy(), t.grad.detach().numpy(), rtol=1e-9, atol=1e-11)
    theirs = dict(reference.named_parameters())
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad.detach().numpy(), theirs[name].grad.detach().numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("mode", MODES)
def test_unbatched_input_matches_pytorch(mode):
    layer, reference = _pair(mode, input_size=3, hidden_size=2, num_layers=2, bidirectional=True)
    x = np.random.default_rng(1).standard_normal((4, 3))
    t_out, t_state = reference(torch.tensor(x))
    c_out, c_state = layer(cr.tensor(x))
    np.testing.assert_allclose(c_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-10)
    for c, t in zip(_states(mode, c_state), _states(mode, t_state)):
        assert c.shape == tuple(t.shape) == (4, 2)
        np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), rtol=1e-10)


def test_state_dict_keys_and_shapes_are_pytorchs():
    for mode in MODES:
        layer, reference = _pair(mode, input_size=3, hidden_size=5, num_layers=3, bidirectional=True)
        ours = {k: tuple(v.shape) for k, v in layer.state_dict().items()}
        theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
        assert list(ours) == list(theirs) and ours == theirs
    keys = list(cr.nn.LSTM(3, 5, bidirectional=True).state_dict())
    assert keys == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse",
                    "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse"]
    assert cr.nn.LSTM(3, 5).weight_ih_l0.shape == (20, 3)
    assert cr.nn.GRU(3, 5, num_layers=2, bidirectional=True).weight_ih_l1.shape == (15, 10)


@pytest.mark.parametrize("cls", [cr.nn.RNN, cr.nn.LSTM, cr.nn.GRU, cr.nn.RNNCell, cr.nn.LSTMCell, cr.nn.GRUCell])
def test_default_init_is_uniform_within_one_over_sqrt_hidden(cls):
    cr.manual_seed(5)
    layer = cls(30, 64) if "Cell" in cls.__name__ else cls(30, 64, num_layers=2)
    bound = 1 / np.sqrt(64)
    for name, p in layer.named_parameters():
        w = p.detach().numpy()
        assert np.abs(w).max() <= bound, name
        assert np.abs(w).max() > 0.95 * bound, name
        if w.size > 1000:
            assert abs(w.var() - bound**2 / 3) < 0.1 * bound**2 / 3, name


# ---- cells ------------------------------------------------------------------------------------------------
CELLS = {
    "rnn_tanh": (cr.nn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (cr.nn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (cr.nn.LSTMCell, torch.nn.LSTMCell, {}),
    "gru": (cr.nn.GRUCell, torch.nn.GRUCell, {}),
}


@pytest.mark.parametrize("mode, bias, batched, with_h0", list(itertools.product(CELLS, (True, False), (True, False),
                                                                                  (True, False))))
def test_cells_match_pytorch(mode, bias, batched, with_h0):
    ours, theirs, extra = CELLS[mode]
    reference = theirs(3, 4, bias=bias, **extra).double()
    cell = ours(3, 4, bias=bias, **extra).double()
    cell.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    assert list(cell.state_dict()) == list(reference.state_dict())
    rng = np.random.default_rng(3)
    lead = (2,) if batched else ()
    x = rng.standard_normal(lead + (3,))
    hs = [rng.standard_normal(lead + (4,)) for _ in range(2 if mode == "lstm" else 1)]
    tx, cx = torch.tensor(x, requires_grad=True), cr.tensor(x, requires_grad=True)
    th = [torch.tensor(h, requires_grad=True) for h in hs]
    ch = [cr.tensor(h, requires_grad=True) for h in hs]
    args_t = () if not with_h0 else ((tuple(th),) if mode == "lstm" else (th[0],))
    args_c = () if not with_h0 else ((tuple(ch),) if mode == "lstm" else (ch[0],))
    t_out, c_out = reference(tx, *args_t), cell(cx, *args_c)
    t_outs, c_outs = _states(mode, t_out), _states(mode, c_out)
    weights = [rng.standard_normal(tuple(t.shape)) for t in t_outs]
    for c, t in zip(c_outs, t_outs):
        assert c.shape == tuple(t.shape)
        np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)
    sum((t * torch.tensor(w)).sum() for t, w in zip(t_outs, weights)).backward()
    sum(((c * cr.tensor(w)).sum() for c, w in zip(c_outs, weights)), cr.tensor(0.0, dtype=cr.float64)).backward()
    np.testing.assert_allclose(cx.grad.detach().numpy(), tx.grad.detach().numpy(), rtol=1e-9, atol=1e-11)
    theirs_params = dict(reference.named_parameters())
    for name, p in cell.named_parameters():
        np.testing.assert_allclose(p.grad.detach().numpy(), theirs_params[name].grad.detach().numpy(), rtol=1e-9, atol=1e-11)


# ---- gradcheck through time, over the inputs and every parameter ------------------------------------------
def _sequence_run(mode):
    def run(layer, x, *state):
        if not state:
            out, s = layer(x)
        else:
            out, s = layer(x, tuple(state) if mode == "lstm" else state[0])
        return (out, *_states(mode, s))
    return run


@pytest.mark.parametrize("mode, batch_first", [(m, bf) for m in MODES for bf in (False, True)])
def test_recurrent_layers_pass_gradcheck_through_time(mode, batch_first):
    ours, _, extra = MODES[mode]
    layer = ours(2, 2, num_layers=2, bidirectional=True, batch_first=batch_first, **extra).double()
    shape = (2, 3, 2) if batch_first else (3, 2, 2)
    x = cr.randn(*shape, dtype=cr.float64, requires_grad=True)
    states = [cr.randn(4, 2, 2, dtype=cr.float64, requires_grad=True) for _ in range(2 if mode == "lstm" else 1)]
    gradcheck_layer(layer, [x, *states], _sequence_run(mode))


@pytest.mark.parametrize("mode", ["rnn_tanh", "lstm", "gru"])
def test_recurrent_layers_have_second_derivatives(mode):
    ours, _, extra = MODES[mode]
    layer = ours(2, 2, **extra).double()
    x = cr.randn(3, 1, 2, dtype=cr.float64, requires_grad=True)
    gradcheck_layer(layer, [x], _sequence_run(mode), second_order=True)


@pytest.mark.parametrize("mode", CELLS)
def test_cells_pass_gradcheck(mode):
    ours, _, extra = CELLS[mode]
    cell = ours(3, 2, **extra).double()
    x = cr.randn(2, 3, dtype=cr.float64, requires_grad=True)
    hs = [cr.randn(2, 2, dtype=cr.float64, requires_grad=True) for _ in range(2 if mode == "lstm" else 1)]

    def run(cell, x, *state):
        return cell(x, tuple(state) if mode == "lstm" else state[0])

    gradcheck_layer(cell, [x, *hs], run)


class _Skewed(cr.Function):
    """The identity with a gradient 1% too large: a planted bug for the gradcheck helper to find."""

    def forward(self, a):
        return a.copy()

    def backward(self, grad):
        return (grad * 1.01,)


@pytest.mark.parametrize("target", ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hh_l1_reverse",
                                    "bias_ih_l1_reverse"])
def test_gradcheck_helper_catches_a_wrong_gradient_on_any_parameter(target, monkeypatch):
    layer = cr.nn.LSTM(2, 2, num_layers=2, bidirectional=True).double()
    real_linear = rnn_module.linear

    def planted(x, weight, bias=None):
        current = layer._parameters[target]
        weight = _Skewed().apply(weight) if weight is current else weight
        bias = _Skewed().apply(bias) if bias is not None and bias is current else bias
        return real_linear(x, weight, bias)

    monkeypatch.setattr(rnn_module, "linear", planted)
    x = cr.randn(3, 2, 2, dtype=cr.float64, requires_grad=True)
    with pytest.raises(cr.GradcheckError, match=f"input {1 + list(layer.state_dict()).index(target)} "):
        gradcheck_layer(layer, [x], _sequence_run("lstm"))


# ---- packed sequences -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode, bidirectional, enforce_sorted, batch_first",
                         list(itertools.product(["rnn_tanh", "lstm", "gru"], (False, True), (True, False),
                                                (False, True))))
def test_packed_sequences_match_pytorch(mode, bidirectional, enforce_sorted, batch_first):
    from torch.nn.utils import rnn as trnn

    layer, reference = _pair(mode, input_size=3, hidden_size=4, num_layers=2, bidirectional=bidirectional,
                             batch_first=batch_first)
    lengths = [5, 3, 3, 1] if enforce_sorted else [3, 5, 1, 4]
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 5, 3) if batch_first else (5, 4, 3))
    tx, cx = torch.tensor(x, requires_grad=True), cr.tensor(x, requires_grad=True)
    t_packed = trnn.pack_padded_sequence(tx, lengths, batch_first=batch_first, enforce_sorted=enforce_sorted)
    c_packed = cr.nn.utils.rnn.pack_padded_sequence(cx, lengths, batch_first=batch_first,
                                                    enforce_sorted=enforce_sorted)
    np.testing.assert_array_equal(c_packed.batch_sizes.detach().numpy(), t_packed.batch_sizes.detach().numpy())
    np.testing.assert_allclose(c_packed.data.detach().numpy(), t_packed.data.detach().numpy())
    if enforce_sorted:
        assert c_packed.sorted_indices is None and c_packed.unsorted_indices is None
    else:
        np.testing.assert_array_equal(c_packed.sorted_indices.detach().numpy(), t_packed.sorted_indices.detach().numpy())
        np.testing.assert_array_equal(c_packed.unsorted_indices.detach().numpy(), t_packed.unsorted_indices.detach().numpy())
    t_out, t_state = reference(t_packed)
    c_out, c_state = layer(c_packed)
    np.testing.assert_allclose(c_out.data.detach().numpy(), t_out.data.detach().numpy(), rtol=1e-10, atol=1e-12)
    t_pad, t_len = trnn.pad_packed_sequence(t_out, batch_first=batch_first, padding_value=-1.0, total_length=6)
    c_pad, c_len = cr.nn.utils.rnn.pad_packed_sequence(c_out, batch_first=batch_first, padding_value=-1.0,
                                                       total_length=6)
    np.testing.assert_array_equal(c_len.detach().numpy(), t_len.detach().numpy())
    np.testing.assert_allclose(c_pad.detach().numpy(), t_pad.detach().numpy(), rtol=1e-10, atol=1e-12)
    for c, t in zip(_states(mode, c_state), _states(mode, t_state)):
        np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rng.standard_normal(tuple(t_pad.shape))
    ws = [rng.standard_normal(tuple(t.shape)) for t in _states(mode, t_state)]
    ((t_pad * torch.tensor(w)).sum() + sum((t * torch.tensor(v)).sum() for t, v in
                                           zip(_states(mode, t_state), ws))).backward()
    total = (c_pad * cr.tensor(w)).sum()
    for c, v in zip(_states(mode, c_state), ws):
        total = total + (c * cr.tensor(v)).sum()
    total.backward()
    np.testing.assert_allclose(cx.grad.detach().numpy(), tx.grad.detach().numpy(), rtol=1e-9, atol=1e-11)
    theirs = dict(reference.named_parameters())
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad.detach().numpy(), theirs[name].grad.detach().numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


@pytest.mark.parametrize("batch_first, padding_side", list(itertools.product((False, True), ("right", "left"))))
def test_pad_sequence_and_pack_sequence_match_pytorch(batch_first, padding_side):
    from torch.nn.utils import rnn as trnn

    rng = np.random.default_rng(2)
    seqs = [rng.standard_normal((n, 2)) for n in (4, 1, 3)]
    ours = cr.nn.utils.rnn.pad_sequence([cr.tensor(s) for s in seqs], batch_first=batch_first, padding_value=9.0,
                                        padding_side=padding_side)
    theirs = trnn.pad_sequence([torch.tensor(s) for s in seqs], batch_first=batch_first, padding_value=9.0,
                               padding_side=padding_side)
    np.testing.assert_array_equal(ours.detach().numpy(), theirs.detach().numpy())
    c_packed = cr.nn.utils.rnn.pack_sequence([cr.tensor(s) for s in seqs], enforce_sorted=False)
    t_packed = trnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=False)
    np.testing.assert_array_equal(c_packed.data.detach().numpy(), t_packed.data.detach().numpy())
    np.testing.assert_array_equal(c_packed.batch_sizes.detach().numpy(), t_packed.batch_sizes.detach().numpy())


def test_packing_errors_are_clear():
    pack = cr.nn.utils.rnn.pack_padded_sequence
    x = cr.randn(4, 3, 2)
    with pytest.raises(RuntimeError, match=r"lengths \[2, 4, 1\] are not in decreasing order.*enforce_sorted=False"):
        pack(x, [2, 4, 1])
    with pytest.raises(ValueError, match="between 1 and the padded length 4, got"):
        pack(x, [5, 2, 1])
    with pytest.raises(ValueError, match="got 2 lengths for a batch of 3 sequences"):
        pack(x, [4, 2])
    with pytest.raises(ValueError, match="shorter than the longest sequence"):
        cr.nn.utils.rnn.pad_packed_sequence(pack(x, [4, 2, 1]), total_length=3)
    with pytest.raises(ValueError, match=r"sequence 1 has shape \(2, 3\)"):
        cr.nn.utils.rnn.pad_sequence([cr.ones(2, 2), cr.ones(2, 3)])


# ---- dropout between layers, modes, errors ------------------------------------------------------------------
def test_dropout_acts_between_layers_in_training_only():
    layer = cr.nn.LSTM(3, 8, num_layers=2, dropout=0.5).double()
    plain = cr.nn.LSTM(3, 8, num_layers=2).double()
    plain.load_state_dict(layer.state_dict())
    x = cr.randn(6, 4, 3, dtype=cr.float64)
    layer.eval()
    np.testing.assert_array_equal(layer(x)[0].detach().numpy(), plain(x)[0].detach().numpy())
    layer.train()
    a, b = layer(x)[0].detach().numpy(), layer(x)[0].detach().numpy()
    assert not np.allclose(a, plain(x)[0].detach().numpy()) and not np.allclose(a, b)
    # the first layer's state is untouched by dropout (it acts on its output, the next layer's input)
    _, (h, _) = layer(x)
    _, (h_plain, _) = plain(x)
    np.testing.assert_allclose(h.detach().numpy()[0], h_plain.detach().numpy()[0])
    assert not np.allclose(h.detach().numpy()[1], h_plain.detach().numpy()[1])


def test_dropout_with_one_layer_warns_like_pytorch():
    with pytest.warns(UserWarning, match="num_layers=1"):
        cr.nn.GRU(3, 4, dropout=0.2)
    with pytest.warns(UserWarning):
        torch.nn.GRU(3, 4, dropout=0.2)


def test_reprs_match_pytorch():
    assert repr(cr.nn.LSTM(10, 20, num_layers=2, batch_first=True, bidirectional=True, dropout=0.1)) == \
        repr(torch.nn.LSTM(10, 20, num_layers=2, batch_first=True, bidirectional=True, dropout=0.1))
    assert repr(cr.nn.RNN(3, 4, nonlinearity="relu", bias=False)) == \
        repr(torch.nn.RNN(3, 4, nonlinearity="relu", bias=False))
    assert repr(cr.nn.GRUCell(3, 4)) == repr(torch.nn.GRUCell(3, 4))
    assert repr(cr.nn.RNNCell(3, 4, nonlinearity="relu")) == repr(torch.nn.RNNCell(3, 4, nonlinearity="relu"))


def test_recurrent_layers_rebuild_from_config():
    layer = cr.nn.GRU(3, 4, num_layers=2, batch_first=True, bidirectional=True)
    rebuilt = cr.nn.from_config(layer.get_config())
    assert repr(rebuilt) == repr(layer)
    assert list(rebuilt.state_dict()) == list(layer.state_dict())


def test_wrong_shapes_name_the_layer_and_the_shapes():
    lstm = cr.nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"LSTM layer: expected input of shape \(L, N, H_in\) or \(L, H_in\) with "
                                         r"H_in = input_size = 3, got \(5, 2, 7\)"):
        lstm(cr.randn(5, 2, 7))
    with pytest.raises(ValueError, match=r"expected h_0 of shape \(2, 2, 4\).*got \(1, 2, 4\)"):
        lstm(cr.randn(5, 2, 3), (cr.zeros(1, 2, 4), cr.zeros(2, 2, 4)))
    with pytest.raises(TypeError, match=r"initial state must be a pair \(h_0, c_0\)"):
        lstm(cr.randn(5, 2, 3), cr.zeros(2, 2, 4))
    with pytest.raises(TypeError, match="must be one tensor h_0"):
        cr.nn.GRU(3, 4)(cr.randn(5, 2, 3), (cr.zeros(1, 2, 4), cr.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match=r"GRUCell layer: expected hx of shape \(2, 4\)"):
        cr.nn.GRUCell(3, 4)(cr.randn(2, 3), cr.zeros(3, 4))
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        cr.nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="proj_size=2.*not supported"):
        cr.nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="dropout must be a number between 0 and 1"):
        cr.nn.LSTM(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        cr.nn.RNN(3, 0)


def test_an_lstm_learns_to_remember_the_first_input():
    """Training works end to end: recall the sign of step 0 after 6 distracting steps."""
    cr.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 64, 1))
    y = (x[0, :, 0] > 0).astype(np.int64)
    model = cr.nn.LSTM(1, 8)
    head = cr.nn.Linear(8, 2)
    opt = cr.optim.Adam(list(model.parameters()) + list(head.parameters()), lr=0.05)
    for _ in range(150):
        out, (h, _) = model(cr.tensor(x, dtype=cr.float32))
        loss = cr.nn.functional.cross_entropy(head(h[0]), cr.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    accuracy = (head(model(cr.tensor(x, dtype=cr.float32))[1][0][0]).detach().numpy().argmax(1) == y).mean()
    assert accuracy > 0.95, accuracy


def test_pytorch_script_habits_work():
    from chainrule.nn.utils.rnn import pack_padded_sequence, pad_sequence  # importable as a module path

    assert pack_padded_sequence is cr.nn.utils.rnn.pack_padded_sequence and callable(pad_sequence)
    lstm = cr.nn.LSTM(3, 4, num_layers=2)
    lstm.flatten_parameters()  # a no-op, as on the CPU in PyTorch
    assert len(lstm.all_weights) == 2 and [p.shape for p in lstm.all_weights[1]] == [(16, 4), (16, 4), (16,), (16,)]


def test_float32_layers_match_pytorch_in_float32():
    reference = torch.nn.LSTM(5, 6, num_layers=2, bidirectional=True)
    layer = cr.nn.LSTM(5, 6, num_layers=2, bidirectional=True)
    layer.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    x = np.random.default_rng(9).standard_normal((12, 3, 5)).astype(np.float32)
    out, (h, c) = layer(cr.tensor(x))
    assert out.dtype == np.float32 and h.dtype == np.float32
    t_out, (t_h, t_c) = reference(torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.detach().numpy(), t_c.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_a_saved_lstm_is_rebuilt_by_load_model(tmp_path):
    layer = cr.nn.LSTM(3, 4, num_layers=2, batch_first=True, bidirectional=True)
    cr.save(layer, tmp_path / "lstm.safetensors")
    rebuilt = cr.load_model(tmp_path / "lstm.safetensors")
    x = cr.randn(2, 5, 3)
    np.testing.assert_array_equal(rebuilt(x)[0].detach().numpy(), layer(x)[0].detach().numpy())


@pytest.mark.parametrize("mode", ["lstm", "gru"])
def test_packed_unsorted_batch_with_initial_states_in_the_callers_order_matches_pytorch(mode):
    from torch.nn.utils import rnn as trnn

    layer, reference = _pair(mode, input_size=2, hidden_size=3, bidirectional=True)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 3, 2))
    states = [rng.standard_normal((2, 3, 3)) for _ in range(2 if mode == "lstm" else 1)]
    lengths = [2, 4, 3]
    t_in = trnn.pack_padded_sequence(torch.tensor(x), lengths, enforce_sorted=False)
    c_in = cr.nn.utils.rnn.pack_padded_sequence(cr.tensor(x), lengths, enforce_sorted=False)
    t_state0 = tuple(torch.tensor(s) for s in states) if mode == "lstm" else torch.tensor(states[0])
    c_state0 = tuple(cr.tensor(s) for s in states) if mode == "lstm" else cr.tensor(states[0])
    t_out, t_state = reference(t_in, t_state0)
    c_out, c_state = layer(c_in, c_state0)
    np.testing.assert_allclose(c_out.data.detach().numpy(), t_out.data.detach().numpy(), rtol=1e-10, atol=1e-12)
    for c, t in zip(_states(mode, c_state), _states(mode, t_state)):
        np.testing.assert_allclose(c.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)
