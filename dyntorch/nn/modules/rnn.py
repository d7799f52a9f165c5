"""Recurrent layers: RNN (tanh/relu), LSTM, GRU and their single-step cells (torch's API).

Speed: each layer and direction projects the whole input sequence with one ``linear``; each
time step then runs only the hidden matmul and one fused cell op (``ops/rnn.py``), so a step
is about four nodes in the graph. Packed sequences run padded with per-step masks that freeze
finished sequences, which gives torch's final states for every length.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ... import _backend as B
from ..._tensor import Tensor, _make
from ...ops.creation import empty, zeros
from ...ops.layer import linear
from ...ops.rnn import _gru_cell, _gru_seq, _lstm_cell, _lstm_seq, _put_rows, _take_rows
from ...ops.shape import cat, stack
from ..module import Module
from ..parameter import Parameter
from ..utils.rnn import PackedSequence

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _uniform(shape, bound, dtype, device) -> Parameter:
    t = empty(*shape, dtype=dtype, device=device)
    t.uniform_(-bound, bound)
    return Parameter(t)


class RNNBase(Module):
    """Shared parameters and the time loop of RNN, LSTM and GRU."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None,
                 dtype=None) -> None:
        super().__init__()
        if proj_size:
            raise NotImplementedError("LSTM(proj_size>0) is not supported yet")
        if not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError("hidden_size and num_layers must be positive integers")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"dropout option adds dropout after all but last recurrent layer, so "
                          f"non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        dt = B.to_dtype(dtype) if dtype is not None else B.get_default_dtype()
        gh = _GATES[mode] * hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        D = 2 if bidirectional else 1
        self._flat_weights_names = []
        for layer in range(num_layers):
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                isz = input_size if layer == 0 else hidden_size * D
                names = [("weight_ih" + sfx, (gh, isz)), ("weight_hh" + sfx, (gh, hidden_size))]
                if bias:
                    names += [("bias_ih" + sfx, (gh,)), ("bias_hh" + sfx, (gh,))]
                for name, shape in names:
                    setattr(self, name, _uniform(shape, bound, dt, device))
                    self._flat_weights_names.append(name)

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        from ...autograd import no_grad

        with no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound)

    def flatten_parameters(self) -> None:
        """No-op (cuDNN weight layout does not apply here)."""

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list:
        D = 2 if self.bidirectional else 1
        per = 4 if self.bias else 2
        w = self._flat_weights
        return [w[i * per:(i + 1) * per] for i in range(self.num_layers * D)]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    # ------------------------------------------------------------------ the time loop
    def _params(self, layer: int, d: int):
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        g = self.__getattr__
        if self.bias:
            return g("weight_ih" + sfx), g("weight_hh" + sfx), g("bias_ih" + sfx), \
                g("bias_hh" + sfx)
        return g("weight_ih" + sfx), g("weight_hh" + sfx), None, None

    def _run_direction(self, x: Tensor, state: Tensor, layer: int, d: int, masks,
                       mask_array=None):
        """Run one layer in one direction over x (T, B, I); returns (outputs (T,B,H), state)."""
        w_ih, w_hh, b_ih, b_hh = self._params(layer, d)
        H = self.hidden_size
        mode = self.mode
        if mode == "LSTM":  # the whole sequence as one fused node
            xg = linear(x, w_ih, b_ih)
            Y = _lstm_seq(xg, w_hh, b_hh, state, mask_array, reverse=bool(d))[0]
            return Y.narrow(-1, 0, H), Y[0 if d else Y.shape[0] - 1]
        if mode == "GRU":
            xg = linear(x, w_ih, b_ih)
            Y = _gru_seq(xg, w_hh, b_hh, state, mask_array, reverse=bool(d))[0]
            return Y, Y[0 if d else Y.shape[0] - 1]
        xg = linear(x, w_ih, b_ih).unbind(0)
        T = len(xg)
        steps = range(T - 1, -1, -1) if d else range(T)
        outs = [None] * T
        lstm = mode == "LSTM"
        h = state.narrow(-1, 0, H) if lstm else state
        for t in steps:
            hh = linear(h, w_hh, b_hh)
            if lstm:
                new = _lstm_cell(xg[t], hh, state)
            elif mode == "RNN_TANH":
                new = (xg[t] + hh).tanh()
            else:
                new = (xg[t] + hh).relu()
            if masks is not None and masks[t] is not None:
                new = _where(masks[t], new, state)
            state = new
            h = state.narrow(-1, 0, H) if lstm else state
            outs[t] = h
        return stack(outs, 0), state

    def forward(self, input, hx=None):
        packed = isinstance(input, PackedSequence)
        masks = mask_array = None
        if packed:
            data, bs_t, sorted_t, unsorted_t = input
            bs = np.asarray(B.to_numpy(bs_t._data), dtype=np.int64)
            T, Bn = bs.size, int(bs[0])
            lens = np.array([(bs > b).sum() for b in range(Bn)], dtype=np.int64)
            ts = np.repeat(np.arange(T), bs)
            bi = np.concatenate([np.arange(b) for b in bs])
            flat_idx = ts * Bn + bi
            xp = B.xp_of(data._data)
            x = _put_rows(data, xp.asarray(flat_idx), n=T * Bn, axis=0)
            x = x.reshape((T, Bn) + tuple(data.shape[1:]))
            masks = [None if bs[t] == Bn else
                     _make(xp.asarray((lens > t).reshape(Bn, 1))) for t in range(T)]
            mask_array = xp.asarray(
                (lens[None, :] > np.arange(T)[:, None]).reshape(T, Bn, 1))
            unbatched = False
        else:
            unbatched = input.ndim == 2
            x = input.unsqueeze(1) if unbatched else (
                input.transpose(0, 1) if self.batch_first else input)
            if x.ndim != 3:
                raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got "
                                 f"{input.ndim}D instead")
            Bn = x.shape[1]
            sorted_t = unsorted_t = None
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"{type(self).__name__}: input.size(-1) must be equal to "
                               f"input_size. Expected {self.input_size}, got {x.shape[-1]}")
        D = 2 if self.bidirectional else 1
        H = self.hidden_size
        L = self.num_layers
        lstm = self.mode == "LSTM"
        if hx is None:
            z = zeros(L * D, Bn, H, dtype=x.dtype, device=x.device)
            h0, c0 = z, (z if lstm else None)
        else:
            if lstm:
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise RuntimeError("LSTM: hx must be a tuple (h_0, c_0)")
                h0, c0 = hx
            else:
                h0, c0 = hx, None
            if unbatched:
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
            if tuple(h0.shape) != (L * D, Bn, H):
                raise RuntimeError(f"Expected hidden size {(L * D, Bn, H)}, got "
                                   f"{list(h0.shape)}")
            if sorted_t is not None:
                idx = sorted_t._data
                h0 = _take_rows(h0, B.xp_of(h0._data).asarray(idx), axis=1)
                c0 = _take_rows(c0, B.xp_of(c0._data).asarray(idx), axis=1) \
                    if c0 is not None else None
        hs, cs = [], []
        layer_in = x
        for layer in range(L):
            outs = []
            for d in range(D):
                k = layer * D + d
                st = cat([h0[k], c0[k]], -1) if lstm else h0[k]
                out, st = self._run_direction(layer_in, st, layer, d, masks, mask_array)
                outs.append(out)
                if lstm:
                    hs.append(st.narrow(-1, 0, H))
                    cs.append(st.narrow(-1, H, H))
                else:
                    hs.append(st)
            layer_in = outs[0] if D == 1 else cat(outs, -1)
            if self.dropout and self.training and layer < L - 1:
                from ...ops.layer import dropout

                layer_in = dropout(layer_in, self.dropout, True)
        h_n = stack(hs, 0)
        c_n = stack(cs, 0) if lstm else None
        out = layer_in
        if packed:
            xp = B.xp_of(out._data)
            flat = out.reshape(T * Bn, out.shape[-1])
            out = PackedSequence(_take_rows(flat, xp.asarray(flat_idx), axis=0), bs_t, sorted_t,
                                 unsorted_t)
            if unsorted_t is not None:
                idx = xp.asarray(unsorted_t._data)
                h_n = _take_rows(h_n, idx, axis=1)
                c_n = _take_rows(c_n, idx, axis=1) if c_n is not None else None
        elif unbatched:
            out = out.squeeze(1)
            h_n = h_n.squeeze(1)
            c_n = c_n.squeeze(1) if c_n is not None else None
        elif self.batch_first:
            out = out.transpose(0, 1)
        return (out, (h_n, c_n)) if lstm else (out, h_n)


def _where(mask, a, b):
    from ...ops.elementwise import where

    return where(mask, a, b)


class RNN(RNNBase):
    """Elman RNN with tanh or relu (``torch.nn.RNN``)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, device, dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory (``torch.nn.LSTM``); returns ``output, (h_n, c_n)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit (``torch.nn.GRU``)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype)


# ----------------------------------------------------------------------------- cells
class _CellBase(Module):
    _mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        dt = B.to_dtype(dtype) if dtype is not None else B.get_default_dtype()
        gh = _GATES[self._mode] * hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = _uniform((gh, input_size), bound, dt, device)
        self.weight_hh = _uniform((gh, hidden_size), bound, dt, device)
        if bias:
            self.bias_ih = _uniform((gh,), bound, dt, device)
            self.bias_hh = _uniform((gh,), bound, dt, device)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")

    def _zeros(self, x: Tensor) -> Tensor:
        shape = (x.shape[0], self.hidden_size) if x.ndim == 2 else (self.hidden_size,)
        return zeros(*shape, dtype=x.dtype, device=x.device)


class RNNCell(_CellBase):
    """One Elman step (``torch.nn.RNNCell``)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        h = self._zeros(input) if hx is None else hx
        pre = linear(input, self.weight_ih, self.bias_ih) + linear(h, self.weight_hh,
                                                                   self.bias_hh)
        return pre.tanh() if self.nonlinearity == "tanh" else pre.relu()


class LSTMCell(_CellBase):
    """One LSTM step (``torch.nn.LSTMCell``); returns ``(h, c)``."""

    _mode = "LSTM"

    def forward(self, input: Tensor, hx=None):
        if hx is None:
            z = self._zeros(input)
            hx = (z, z)
        h, c = hx
        st = _lstm_cell(linear(input, self.weight_ih, self.bias_ih),
                        linear(h, self.weight_hh, self.bias_hh), cat([h, c], -1))
        H = self.hidden_size
        return st.narrow(-1, 0, H), st.narrow(-1, H, H)


class GRUCell(_CellBase):
    """One GRU step (``torch.nn.GRUCell``)."""

    _mode = "GRU"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        h = self._zeros(input) if hx is None else hx
        return _gru_cell(linear(input, self.weight_ih, self.bias_ih),
                         linear(h, self.weight_hh, self.bias_hh), h)
