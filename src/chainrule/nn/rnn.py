"""Recurrent layers: RNN, LSTM, GRU and their one-step cells, with PyTorch's names, shapes and maths.

Each step is composed from differentiable ops (``linear``, ``sigmoid``, ``tanh``, slicing, ``stack``),
so backprop through time is the ordinary graph walk and second derivatives come for free. The input
projection ``x W_ih^T + b_ih`` of a whole sequence is one matrix product; only ``h W_hh^T`` runs per step.

With gates stacked in the rows of ``weight_ih`` / ``weight_hh`` in PyTorch's order:

    RNN:   h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)            (or relu)
    LSTM:  i, f, g, o = sigma(.), sigma(.), tanh(.), sigma(.)       of x W_ih^T + b_ih + h W_hh^T + b_hh
           c' = f * c + i * g,   h' = o * tanh(c')
    GRU:   r = sigma(x_r + h_r),  z = sigma(x_z + h_z),  n = tanh(x_n + r * h_n)
           h' = (1 - z) * n + z * h                                 (x_* = x W_i*^T + b_i*, h_* = h W_h*^T + b_h*)

Every weight and bias starts as U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as in PyTorch.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from .. import backend
from ..ops.elementwise import relu, sigmoid, tanh, where
from ..ops.linalg import linear
from ..ops.shape import cat, stack
from ..tensor import Tensor
from . import functional as F
from . import init
from .config import make_config, register_config
from .module import Module
from .parameter import Parameter
from .rnn_utils import PackedSequence, _pack_like, _padded_from_packed

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _positive(value, name: str, layer: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "a positive" if minimum == 1 else "a non-negative"
        raise ValueError(f"{layer}: {name} must be {kind} integer, got {value!r}")
    return int(value)


# ---- one step of each kind, on the input already projected (xw = x W_ih^T + b_ih) ---------------------
def _rnn_tanh_step(xw, state, w_hh, b_hh):
    return tanh(xw + linear(state, w_hh, b_hh))


def _rnn_relu_step(xw, state, w_hh, b_hh):
    return relu(xw + linear(state, w_hh, b_hh))


def _lstm_step(xw, state, w_hh, b_hh):
    h, c = state
    gates = xw + linear(h, w_hh, b_hh)
    n = gates.shape[-1] // 4
    i = sigmoid(gates[..., :n])
    f = sigmoid(gates[..., n:2 * n])
    g = tanh(gates[..., 2 * n:3 * n])
    o = sigmoid(gates[..., 3 * n:])
    c = f * c + i * g
    return o * tanh(c), c


def _gru_step(xw, h, w_hh, b_hh):
    hw = linear(h, w_hh, b_hh)
    n = hw.shape[-1] // 3
    r = sigmoid(xw[..., :n] + hw[..., :n])
    z = sigmoid(xw[..., n:2 * n] + hw[..., n:2 * n])
    candidate = tanh(xw[..., 2 * n:] + r * hw[..., 2 * n:])
    return (1.0 - z) * candidate + z * h


_STEPS = {"RNN_TANH": _rnn_tanh_step, "RNN_RELU": _rnn_relu_step, "LSTM": _lstm_step, "GRU": _gru_step}


def _keep(mask: np.ndarray | None, new, old):
    """Where a sequence has ended (mask False), the state stays as it was."""
    if mask is None:
        return new
    if isinstance(new, tuple):
        return tuple(where(mask, n, o) for n, o in zip(new, old))
    return where(mask, new, old)


# ---- the cells ------------------------------------------------------------------------------------------
class _CellBase(Module):
    _mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None,
                 mode: str | None = None) -> None:
        super().__init__()
        layer = type(self).__name__
        if mode is not None:
            self._mode = mode
        self.input_size = _positive(input_size, "input_size", layer, minimum=0)
        self.hidden_size = _positive(hidden_size, "hidden_size", layer)
        self.bias = bool(bias)
        if device not in (None, "cpu") and str(device) != "cpu":
            raise RuntimeError(f"{layer}: device {device!r} is not available; chainrule runs on the CPU")
        dtype = backend.as_dtype(dtype) or backend.get_default_dtype()
        rows = _GATES[self._mode] * self.hidden_size
        self.weight_ih = Parameter(np.empty((rows, self.input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((rows, self.hidden_size), dtype=dtype))
        if self.bias:
            self.bias_ih = Parameter(np.empty(rows, dtype=dtype))
            self.bias_hh = Parameter(np.empty(rows, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _check(self, x: Tensor, hx, name: str) -> tuple[Tensor, bool]:
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{self.layer_name}: expected input of shape (N, {self.input_size}) or "
                             f"({self.input_size},), got {tuple(x.shape)}")
        batched = x.ndim == 2
        return (x if batched else x.unsqueeze(0)), batched

    def _state(self, hx, x: Tensor, batched: bool, what: str) -> Tensor:
        shape = (x.shape[0], self.hidden_size)
        if hx is None:
            return Tensor._wrap(np.zeros(shape, dtype=x._data.dtype))
        hx = _as_tensor(hx)
        want = shape if batched else (self.hidden_size,)
        if tuple(hx.shape) != want:
            raise ValueError(f"{self.layer_name}: expected {what} of shape {want} for an input of shape "
                             f"{tuple(x.shape) if batched else (self.input_size,)}, got {tuple(hx.shape)}")
        return hx if batched else hx.unsqueeze(0)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            text += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            text += f", nonlinearity={self.nonlinearity}"
        return text

    def _config_args(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "bias": self.bias}

    def get_config(self) -> dict:
        return make_config(self, **self._config_args())


@register_config
class RNNCell(_CellBase):
    """One step of an Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu).

    >>> cell = cr.nn.RNNCell(3, 5)
    >>> cell(cr.randn(2, 3)).shape
    chainrule.Size([2, 5])
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, bias, device, dtype, mode=mode)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, batched = self._check(_as_tensor(input), hx, "hx")
        h = self._state(hx, x, batched, "hx")
        out = _STEPS[self._mode](linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return out if batched else out.squeeze(0)

    def _config_args(self) -> dict:
        return {**super()._config_args(), "nonlinearity": self.nonlinearity}


@register_config
class LSTMCell(_CellBase):
    """One LSTM step: ``(h', c') = cell(x, (h, c))``, gates i, f, g, o stacked in that order.

    >>> cell = cr.nn.LSTMCell(3, 5)
    >>> h, c = cell(cr.randn(2, 3))
    >>> tuple(h.shape), tuple(c.shape)
    ((2, 5), (2, 5))
    """

    _mode = "LSTM"

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple[Tensor, Tensor]:
        x, batched = self._check(_as_tensor(input), hx, "hx")
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"{self.layer_name}: hx must be a pair (h_0, c_0), got {type(hx).__name__}")
        h = self._state(None if hx is None else hx[0], x, batched, "h_0")
        c = self._state(None if hx is None else hx[1], x, batched, "c_0")
        h, c = _lstm_step(linear(x, self.weight_ih, self.bias_ih), (h, c), self.weight_hh, self.bias_hh)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


@register_config
class GRUCell(_CellBase):
    """One GRU step: h' = (1 - z) * n + z * h, gates r, z, n stacked in that order.

    >>> cr.nn.GRUCell(3, 5)(cr.randn(2, 3)).shape
    chainrule.Size([2, 5])
    """

    _mode = "GRU"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, batched = self._check(_as_tensor(input), hx, "hx")
        h = self._state(hx, x, batched, "hx")
        out = _gru_step(linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return out if batched else out.squeeze(0)


# ---- the sequence layers ----------------------------------------------------------------------------------
class RNNBase(Module):
    """Shared by RNN, LSTM and GRU: ``num_layers`` stacked layers, each one or two directions.

    Parameters per layer k and direction (suffix ``_reverse`` for the backward one), as in PyTorch:
    ``weight_ih_l{k}`` (G*hidden, input or D*hidden), ``weight_hh_l{k}`` (G*hidden, hidden),
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*hidden), with G gates (1, 4 or 3) and D directions.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__()
        layer = type(self).__name__
        self.mode = mode
        self.input_size = _positive(input_size, "input_size", layer, minimum=0)
        self.hidden_size = _positive(hidden_size, "hidden_size", layer)
        self.num_layers = _positive(num_layers, "num_layers", layer)
        if (isinstance(dropout, bool) or not isinstance(dropout, numbers.Number)
                or not 0.0 <= dropout <= 1.0):
            raise ValueError(f"{layer}: dropout must be a number between 0 and 1, got {dropout!r}")
        if proj_size:
            raise ValueError(f"{layer}: proj_size={proj_size!r} (projected LSTM) is not supported by chainrule")
        if device not in (None, "cpu") and str(device) != "cpu":
            raise RuntimeError(f"{layer}: device {device!r} is not available; chainrule runs on the CPU")
        if dropout > 0 and self.num_layers == 1:
            warnings.warn(f"{layer}: dropout={dropout} acts between recurrent layers, so it has no effect "
                          f"with num_layers=1", UserWarning, stacklevel=3)
        self.bias, self.batch_first = bool(bias), bool(batch_first)
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bool(bidirectional), 0
        dtype = backend.as_dtype(dtype) or backend.get_default_dtype()
        rows = _GATES[mode] * self.hidden_size
        directions = 2 if self.bidirectional else 1
        self._flat_weights_names = []
        for k in range(self.num_layers):
            width = self.input_size if k == 0 else self.hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                names = [f"weight_ih_l{k}{suffix}", f"weight_hh_l{k}{suffix}"]
                setattr(self, names[0], Parameter(np.empty((rows, width), dtype=dtype)))
                setattr(self, names[1], Parameter(np.empty((rows, self.hidden_size), dtype=dtype)))
                if self.bias:
                    names += [f"bias_ih_l{k}{suffix}", f"bias_hh_l{k}{suffix}"]
                    setattr(self, names[2], Parameter(np.empty(rows, dtype=dtype)))
                    setattr(self, names[3], Parameter(np.empty(rows, dtype=dtype)))
                self._flat_weights_names += names
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def flatten_parameters(self) -> None:
        """A no-op kept for PyTorch scripts (there it packs the weights into one buffer for cuDNN)."""

    @property
    def all_weights(self) -> list:
        """Per layer and direction, [weight_ih, weight_hh(, bias_ih, bias_hh)]."""
        per = 4 if self.bias else 2
        params = [self._parameters[n] for n in self._flat_weights_names]
        return [params[i:i + per] for i in range(0, len(params), per)]

    # ---- checks ---------------------------------------------------------------------------------
    def _check_input(self, x: Tensor) -> bool:
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            layout = "(N, L, H_in)" if self.batch_first else "(L, N, H_in)"
            raise ValueError(f"{self.layer_name}: expected input of shape {layout} or (L, H_in) with "
                             f"H_in = input_size = {self.input_size}, got {tuple(x.shape)}")
        if x._data.dtype.kind != "f":
            raise TypeError(f"{self.layer_name}: input must be floating point, got {x.dtype}")
        return x.ndim == 3

    def _initial(self, hx, batch: int, batched: bool, dtype, what: str) -> list:
        """The initial state as a list of (N, hidden) tensors, one per layer and direction."""
        count = self.num_layers * (2 if self.bidirectional else 1)
        if hx is None:
            zeros = np.zeros((batch, self.hidden_size), dtype=dtype)
            return [Tensor._wrap(zeros) for _ in range(count)]
        hx = _as_tensor(hx)
        want = (count, batch, self.hidden_size) if batched else (count, self.hidden_size)
        if tuple(hx.shape) != want:
            raise ValueError(f"{self.layer_name}: expected {what} of shape {want} (num_layers * num_directions, "
                             f"{'batch, ' if batched else ''}hidden_size), got {tuple(hx.shape)}")
        if not batched:
            hx = hx.unsqueeze(1)
        return [hx[i] for i in range(count)]

    # ---- the run ---------------------------------------------------------------------------------
    def _run(self, x: Tensor, states: list, lengths: np.ndarray | None):
        """x: (L, N, H_in). states: per layer and direction, a tensor or an (h, c) pair.
        Returns the last layer's outputs (L, N, D*hidden) and the final states in the same layout."""
        step = _STEPS[self.mode]
        steps = x.shape[0]
        directions = 2 if self.bidirectional else 1
        masks = None
        if lengths is not None:  # masks[t]: which sequences are still running at time t, shape (N, 1)
            masks = [(lengths > t)[:, None] for t in range(steps)]
        finals = []
        layer_input = x
        for k in range(self.num_layers):
            outputs = []
            for d in range(directions):
                index = k * directions + d
                w_ih, w_hh, b_ih, b_hh = self._weights(k, d)
                xw = linear(layer_input, w_ih, b_ih)  # the whole sequence's input projection at once
                state = states[index]
                out = [None] * steps
                order = range(steps - 1, -1, -1) if d == 1 else range(steps)
                for t in order:
                    mask = None if masks is None else masks[t]
                    state = _keep(mask, step(xw[t], state, w_hh, b_hh), state)
                    h = state[0] if isinstance(state, tuple) else state
                    out[t] = h if mask is None else where(mask, h, 0.0)  # padding: zeros, as PyTorch
                outputs.append(stack(out, 0))
                finals.append(state)
            layer_input = outputs[0] if directions == 1 else cat(outputs, -1)
            if self.dropout and self.training and k < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        return layer_input, finals

    def _weights(self, k: int, d: int) -> tuple:
        suffix = "_reverse" if d == 1 else ""
        p = self._parameters
        w_ih, w_hh = p[f"weight_ih_l{k}{suffix}"], p[f"weight_hh_l{k}{suffix}"]
        if not self.bias:
            return w_ih, w_hh, None, None
        return w_ih, w_hh, p[f"bias_ih_l{k}{suffix}"], p[f"bias_hh_l{k}{suffix}"]

    def _forward(self, input, hx, is_lstm: bool):
        packed = isinstance(input, PackedSequence)
        lengths = None
        if packed:
            x, lengths = _padded_from_packed(input)  # (L, N, H_in) in the caller's batch order
            batched = True
            if x.shape[-1] != self.input_size:
                raise ValueError(f"{self.layer_name}: expected packed data of shape (*, {self.input_size}), "
                                 f"got {tuple(input.data.shape)}")
        else:
            x = _as_tensor(input)
            batched = self._check_input(x)
            if not batched:
                x = x.unsqueeze(1)
            elif self.batch_first:
                x = x.transpose(0, 1)
        batch, dtype = x.shape[1], x._data.dtype
        if is_lstm:
            if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
                raise TypeError(f"{self.layer_name}: the initial state must be a pair (h_0, c_0), "
                                f"got {type(hx).__name__}")
            h0 = self._initial(None if hx is None else hx[0], batch, batched, dtype, "h_0")
            c0 = self._initial(None if hx is None else hx[1], batch, batched, dtype, "c_0")
            states = list(zip(h0, c0))
        else:
            if isinstance(hx, (tuple, list)):
                raise TypeError(f"{self.layer_name}: the initial state must be one tensor h_0, got a "
                                f"{type(hx).__name__}")
            states = self._initial(hx, batch, batched, dtype, "h_0")
        output, finals = self._run(x, states, lengths)

        def final(parts):
            out = stack(parts, 0)
            return out if batched else out.squeeze(1)

        if is_lstm:
            state = (final([s[0] for s in finals]), final([s[1] for s in finals]))
        else:
            state = final(finals)
        if packed:
            return _pack_like(output, input), state
        if not batched:
            output = output.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, state

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text

    def _config_args(self) -> dict:
        return {"input_size": self.input_size, "hidden_size": self.hidden_size, "num_layers": self.num_layers,
                "bias": self.bias, "batch_first": self.batch_first, "dropout": self.dropout,
                "bidirectional": self.bidirectional}

    def get_config(self) -> dict:
        return make_config(self, **self._config_args())


@register_config
class RNN(RNNBase):
    """An Elman RNN over a sequence: ``output, h_n = rnn(input, h_0)``.

    input (L, N, H_in) (or (N, L, H_in) with ``batch_first``, or unbatched (L, H_in)); output
    (L, N, D * hidden_size); h_0 and h_n (D * num_layers, N, hidden_size), D = 2 if bidirectional.

    >>> rnn = cr.nn.RNN(3, 5, num_layers=2)
    >>> out, h = rnn(cr.randn(7, 2, 3))
    >>> tuple(out.shape), tuple(h.shape)
    ((7, 2, 5), (2, 2, 5))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx: Tensor | None = None):
        return self._forward(input, hx, is_lstm=False)

    def _config_args(self) -> dict:
        return {**super()._config_args(), "nonlinearity": self.nonlinearity}


@register_config
class LSTM(RNNBase):
    """A long short-term memory layer: ``output, (h_n, c_n) = lstm(input, (h_0, c_0))``.

    Shapes as :class:`RNN`; c_0 and c_n have h's shape. Gates i, f, g, o stacked in that order in
    ``weight_ih_l{k}`` / ``weight_hh_l{k}`` (rows 0..H-1 are i, H..2H-1 are f, ...).

    >>> lstm = cr.nn.LSTM(3, 5, batch_first=True, bidirectional=True)
    >>> out, (h, c) = lstm(cr.randn(2, 7, 3))
    >>> tuple(out.shape), tuple(h.shape), tuple(c.shape)
    ((2, 7, 10), (2, 2, 5), (2, 2, 5))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)

    def forward(self, input, hx: tuple | None = None):
        return self._forward(input, hx, is_lstm=True)


@register_config
class GRU(RNNBase):
    """A gated recurrent unit layer: ``output, h_n = gru(input, h_0)``; shapes as :class:`RNN`, gates
    r, z, n stacked in that order.

    >>> out, h = cr.nn.GRU(3, 5)(cr.randn(7, 2, 3))
    >>> tuple(out.shape), tuple(h.shape)
    ((7, 2, 5), (1, 2, 5))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)

    def forward(self, input, hx: Tensor | None = None):
        return self._forward(input, hx, is_lstm=False)
