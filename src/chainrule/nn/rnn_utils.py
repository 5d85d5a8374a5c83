"""Sequences of different lengths for the recurrent layers (PyTorch's ``torch.nn.utils.rnn``).

A batch of sequences padded to a common length ``L`` wastes the steps past each one's end and, worse,
lets a recurrent layer read the padding. ``pack_padded_sequence`` keeps only the real steps, time-major:
first every sequence's step 0, then step 1 of those that are that long, ... ``batch_sizes[t]`` says how
many sequences are still running at step t. The layers accept the packed batch and stop each
sequence's state at its own last step (a reverse direction starts there too); ``pad_packed_sequence``
turns the packed output back into a padded tensor and the lengths.

All of it is indexing, so gradients flow back to the padded input.

>>> x = cr.randn(4, 2, 3)                        # L=4, N=2
>>> packed = cr.nn.utils.rnn.pack_padded_sequence(x, [4, 2])
>>> packed.batch_sizes.tolist()
[2, 2, 1, 1]
>>> out, lengths = cr.nn.utils.rnn.pad_packed_sequence(packed)
>>> tuple(out.shape), lengths.tolist()
((4, 2, 3), [4, 2])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..ops.shape import cat, stack
from ..tensor import Tensor


class PackedSequence(NamedTuple):
    """``data`` (sum of lengths, *), ``batch_sizes`` (max length,) int64, and the permutation that sorts
    the batch by decreasing length (``sorted_indices``) and its inverse (None when already sorted)."""

    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None = None
    unsorted_indices: Tensor | None = None


def _lengths_array(lengths, op: str) -> np.ndarray:
    arr = lengths._data if isinstance(lengths, Tensor) else np.asarray(lengths)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(f"{op}: lengths must be a 1-D sequence of integers, got {arr.dtype} of shape {arr.shape}")
    return arr.astype(np.int64)


def _positions(batch_sizes: np.ndarray, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of the packed data: its time step and its batch entry (in the caller's order)."""
    times = np.repeat(np.arange(batch_sizes.size), batch_sizes)
    rank = np.concatenate([np.arange(n) for n in batch_sizes]) if batch_sizes.size else np.zeros(0, np.int64)
    return times, order[rank]


def _order(packed: PackedSequence, batch: int) -> np.ndarray:
    if packed.sorted_indices is None:
        return np.arange(batch)
    return packed.sorted_indices._data.astype(np.int64)


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (L, N, *) (or (N, L, *) with ``batch_first``) whose sequence i has
    ``lengths[i]`` real steps. With ``enforce_sorted`` the lengths must be in decreasing order;
    otherwise the batch is sorted here and the permutation kept in the result."""
    x = input if isinstance(input, Tensor) else Tensor(input)
    if x.ndim < 2:
        raise ValueError(f"pack_padded_sequence: expected a padded batch with at least 2 dimensions, got shape "
                         f"{tuple(x.shape)}")
    if batch_first:
        x = x.transpose(0, 1)
    steps, batch = x.shape[0], x.shape[1]
    lens = _lengths_array(lengths, "pack_padded_sequence")
    if lens.size != batch:
        raise ValueError(f"pack_padded_sequence: got {lens.size} lengths for a batch of {batch} sequences")
    if lens.size and (lens.min() < 1 or lens.max() > steps):
        raise ValueError(f"pack_padded_sequence: every length must be between 1 and the padded length {steps}, "
                         f"got {lens.tolist()}")
    if enforce_sorted:
        if np.any(np.diff(lens) > 0):
            raise RuntimeError(f"pack_padded_sequence: lengths {lens.tolist()} are not in decreasing order; sort "
                               f"the batch or pass enforce_sorted=False")
        order, sorted_indices, unsorted_indices = np.arange(batch), None, None
    else:
        order = np.argsort(-lens, kind="stable")
        sorted_indices = Tensor._wrap(order.astype(np.int64))
        unsorted_indices = Tensor._wrap(np.argsort(order).astype(np.int64))
    longest = int(lens.max()) if lens.size else 0
    batch_sizes = np.array([int(np.sum(lens > t)) for t in range(longest)], dtype=np.int64)
    times, entries = _positions(batch_sizes, order)
    return PackedSequence(x[times, entries], Tensor._wrap(batch_sizes), sorted_indices, unsorted_indices)


def _padded_from_packed(packed: PackedSequence, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, np.ndarray]:
    """The padded batch (L, N, *) in the caller's order, and the lengths as an array."""
    if not isinstance(packed, PackedSequence):
        raise TypeError(f"pad_packed_sequence: expected a PackedSequence, got {type(packed).__name__}")
    data = packed.data if isinstance(packed.data, Tensor) else Tensor(packed.data)
    batch_sizes = _lengths_array(packed.batch_sizes, "pad_packed_sequence")
    batch = int(batch_sizes[0]) if batch_sizes.size else 0
    steps = batch_sizes.size
    if total_length is not None:
        if total_length < steps:
            raise ValueError(f"pad_packed_sequence: total_length={total_length} is shorter than the longest "
                             f"sequence ({steps} steps)")
        steps = int(total_length)
    times, entries = _positions(batch_sizes, _order(packed, batch))
    # every padded position reads row S, an extra row of padding_value appended to the data
    index = np.full((steps, batch), data.shape[0], dtype=np.int64)
    index[times, entries] = np.arange(times.size)
    pad = Tensor._wrap(np.full((1,) + tuple(data.shape[1:]), padding_value, dtype=data._data.dtype))
    lengths = np.bincount(entries, minlength=batch).astype(np.int64)
    return cat([data, pad], 0)[index], lengths


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, Tensor]:
    """Undo :func:`pack_padded_sequence`: ``(padded (L, N, *), lengths)``, in the original batch order."""
    padded, lengths = _padded_from_packed(sequence, padding_value, total_length)
    return (padded.transpose(0, 1) if batch_first else padded), Tensor._wrap(lengths)


def _pack_like(padded: Tensor, like: PackedSequence) -> PackedSequence:
    """Pack a padded (L, N, *) output with the same lengths and order as ``like``."""
    batch_sizes = like.batch_sizes._data if isinstance(like.batch_sizes, Tensor) else np.asarray(like.batch_sizes)
    times, entries = _positions(batch_sizes.astype(np.int64), _order(like, padded.shape[1]))
    return PackedSequence(padded[times, entries], like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack tensors of shapes (L_i, *) into one (L, N, *) (or (N, L, *)) padded with ``padding_value``.

    >>> cr.nn.utils.rnn.pad_sequence([cr.ones(3), cr.ones(1)]).tolist()
    [[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]]
    """
    seqs = [s if isinstance(s, Tensor) else Tensor(s) for s in sequences]
    if not seqs:
        raise ValueError("pad_sequence: expected at least one sequence")
    if padding_side not in ("left", "right"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got {padding_side!r}")
    tail = tuple(seqs[0].shape[1:])
    for i, s in enumerate(seqs):
        if s.ndim == 0 or tuple(s.shape[1:]) != tail:
            raise ValueError(f"pad_sequence: sequence {i} has shape {tuple(s.shape)}, expected (L_i, *{tail}) like "
                             f"sequence 0 of shape {tuple(seqs[0].shape)}")
    longest = max(s.shape[0] for s in seqs)
    padded = []
    for s in seqs:
        missing = longest - s.shape[0]
        if missing == 0:
            padded.append(s)
            continue
        fill = Tensor._wrap(np.full((missing,) + tail, padding_value, dtype=s._data.dtype))
        padded.append(cat([s, fill] if padding_side == "right" else [fill, s], 0))
    return stack(padded, 0 if batch_first else 1)


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of tensors (L_i, *) directly: ``pack_padded_sequence(pad_sequence(seqs), lengths)``."""
    seqs = list(sequences)
    lengths = [int(s.shape[0]) for s in seqs]
    return pack_padded_sequence(pad_sequence(seqs), lengths, enforce_sorted=enforce_sorted)


__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence", "pack_sequence"]
