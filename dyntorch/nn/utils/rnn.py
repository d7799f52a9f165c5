"""Packed variable-length sequences (``torch.nn.utils.rnn``).

A :class:`PackedSequence` holds the valid time steps of a batch, time-major: step ``t`` has
``batch_sizes[t]`` rows, sequences sorted by decreasing length. Packing and unpacking are one
row gather / scatter each, so gradients flow through them.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ... import _backend as B
from ..._tensor import Tensor, _make
from ...ops.rnn import _put_rows, _take_rows

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
           "pack_sequence", "unpad_sequence", "unpack_sequence"]


class PackedSequence(NamedTuple):
    """Data and batch sizes of a packed batch of sequences (``torch.nn.utils.rnn.PackedSequence``).

    Attributes
    ----------
    data : Tensor
        (sum of lengths, *) rows, time-major.
    batch_sizes : Tensor
        int64 (T,), rows at each step.
    sorted_indices, unsorted_indices : Tensor or None
        The permutation that sorted the batch by length, and its inverse.
    """

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None

    def to(self, *args, **kwargs) -> PackedSequence:
        return self._replace(data=self.data.to(*args, **kwargs))

    def cpu(self) -> PackedSequence:
        return self._replace(data=self.data.cpu())

    def cuda(self, *args, **kwargs) -> PackedSequence:
        return self._replace(data=self.data.cuda(*args, **kwargs))

    def double(self) -> PackedSequence:
        return self._replace(data=self.data.double())

    def float(self) -> PackedSequence:
        return self._replace(data=self.data.float())

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return False


def _lengths_np(lengths) -> np.ndarray:
    if isinstance(lengths, Tensor):
        if lengths.is_cuda:
            raise RuntimeError("pack_padded_sequence(): 'lengths' argument should be a 1D CPU "
                               "int64 tensor, but got a cuda tensor; call lengths.cpu() first")
        return np.asarray(B.to_numpy(lengths._data), dtype=np.int64).reshape(-1)
    return np.asarray(list(lengths), dtype=np.int64).reshape(-1)


def _layout(lens_sorted: np.ndarray):
    """batch_sizes and, per packed row, (t, b) in the sorted batch."""
    T = int(lens_sorted[0]) if lens_sorted.size else 0
    bs = np.array([(lens_sorted > t).sum() for t in range(T)], dtype=np.int64)
    ts = np.repeat(np.arange(T), bs)
    bi = np.concatenate([np.arange(b) for b in bs]) if T else np.zeros(0, np.int64)
    return bs, ts, bi


def _idx_tensor(a: np.ndarray) -> Tensor:
    return _make(np.asarray(a, dtype=np.int64))


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) or (B, T, *) given each sequence's length.

    With ``enforce_sorted=False`` the batch is sorted by decreasing length first and the
    permutation is kept in the result so it can be undone.
    """
    lens = _lengths_np(lengths)
    B_ = input.shape[0 if batch_first else 1]
    if lens.size != B_:
        raise ValueError(f"pack_padded_sequence(): expected {B_} lengths (one per sequence in "
                         f"the batch), got {lens.size}")
    if (lens <= 0).any():
        raise RuntimeError("pack_padded_sequence(): Length of all samples has to be greater than "
                           "0, but found an element in 'lengths' that is <= 0")
    if enforce_sorted:
        if (np.diff(lens) > 0).any():
            raise RuntimeError("pack_padded_sequence(): `lengths` array must be sorted in "
                               "decreasing order when `enforce_sorted` is True. You can pass "
                               "`enforce_sorted=False` to pack_padded_sequence and/or "
                               "pack_sequence to sidestep this requirement if you do not need "
                               "ONNX exportability.")
        order = np.arange(B_)
        sorted_t = unsorted_t = None
    else:
        order = np.argsort(-lens, kind="stable")
        sorted_t = _idx_tensor(order)
        unsorted_t = _idx_tensor(np.argsort(order, kind="stable"))
    T = input.shape[1 if batch_first else 0]
    if lens.max() > T:
        raise RuntimeError(f"pack_padded_sequence(): a length ({lens.max()}) exceeds the "
                           f"padded sequence length ({T})")
    bs, ts, bi = _layout(lens[order])
    b_orig = order[bi]
    flat_idx = b_orig * T + ts if batch_first else ts * B_ + b_orig
    rest = tuple(input.shape[2:])
    flat = input.reshape((B_ * T,) + rest)
    xp = B.xp_of(input._data)
    data = _take_rows(flat, xp.asarray(flat_idx), axis=0)
    return PackedSequence(data, _idx_tensor(bs), sorted_t, unsorted_t)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None):
    """Undo :func:`pack_padded_sequence`: (padded (T, B, *) or (B, T, *), lengths int64)."""
    data, bs_t, sorted_t, unsorted_t = sequence
    bs = np.asarray(B.to_numpy(bs_t._data), dtype=np.int64)
    T = bs.size
    Bn = int(bs[0]) if T else 0
    lens_sorted = np.array([(bs > b).sum() for b in range(Bn)], dtype=np.int64)
    order = np.arange(Bn) if sorted_t is None else np.asarray(B.to_numpy(sorted_t._data))
    if total_length is not None:
        if total_length < T:
            raise ValueError(f"Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and max "
                             f"sequence length being {T}")
        T = total_length
    _, ts, bi = _layout(lens_sorted)
    b_orig = order[bi]
    flat_idx = b_orig * T + ts if batch_first else ts * Bn + b_orig
    xp = B.xp_of(data._data)
    rest = tuple(data.shape[1:])
    out = _put_rows(data, xp.asarray(flat_idx), n=T * Bn, axis=0)
    if padding_value != 0.0:
        fill = np.full((T * Bn,) + (1,) * len(rest), padding_value, dtype=data._data.dtype)
        fill[flat_idx] = 0.0
        out = out + _make(xp.asarray(fill))
    out = out.reshape(((Bn, T) if batch_first else (T, Bn)) + rest)
    lengths = np.empty(Bn, dtype=np.int64)
    lengths[order] = lens_sorted
    return out, _idx_tensor(lengths)


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack variable-length (L_i, *) tensors into (T, B, *) or (B, T, *) with padding."""
    from ...ops.shape import cat

    seqs = list(sequences)
    if not seqs:
        raise RuntimeError("pad_sequence(): received an empty list of sequences")
    lens = np.array([s.shape[0] for s in seqs], dtype=np.int64)
    Bn, T = len(seqs), int(lens.max())
    rest = tuple(seqs[0].shape[1:])
    idx = []
    for b, n in enumerate(lens):
        t = np.arange(n) + (T - n if padding_side == "left" else 0)
        idx.append(b * T + t if batch_first else t * Bn + b)
    idx = np.concatenate(idx)
    data = cat(seqs, 0)
    xp = B.xp_of(data._data)
    out = _put_rows(data, xp.asarray(idx), n=T * Bn, axis=0)
    if padding_value != 0.0:
        fill = np.full((T * Bn,) + (1,) * len(rest), padding_value, dtype=data._data.dtype)
        fill[idx] = 0.0
        out = out + _make(xp.asarray(fill))
    return out.reshape(((Bn, T) if batch_first else (T, Bn)) + rest)


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of variable-length tensors (``torch.nn.utils.rnn.pack_sequence``)."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list:
    """Split a padded batch back into a list of tensors of the given lengths."""
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    return [x[i, :int(n)] for i, n in enumerate(_lengths_np(lengths))]


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """Split a packed batch into a list of tensors (``torch.nn.utils.rnn.unpack_sequence``)."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
