"""Embedding: a lookup table of vectors, one row of ``weight`` per index (PyTorch's ``nn.Embedding``).

``embedding(idx)`` is ``weight[idx]``: the backward adds each upstream row into the row it was read
from (rows read twice get both gradients), so it is the indexing op and differentiable twice for free.
The row ``padding_idx`` is read but gets no gradient, as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from .. import autograd, backend
from ..ops.elementwise import where
from ..tensor import Tensor
from . import init
from .config import make_config, register_config
from .module import Module
from .parameter import Parameter


def _indices(input, op: str, num_embeddings: int) -> np.ndarray:
    idx = input._data if isinstance(input, Tensor) else np.asarray(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers (int64 or int32), got {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= num_embeddings):
        bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
        raise IndexError(f"{op}: index {bad} is out of range for a table of {num_embeddings} embeddings")
    return idx.astype(np.int64, copy=False)


def _renorm_(weight: Tensor, idx: np.ndarray, max_norm: float, norm_type: float) -> None:
    """Scale the rows that ``idx`` reads down to norm ``max_norm``, in place and outside the graph."""
    rows = np.unique(idx)
    with autograd.no_grad():
        table = weight._data
        norms = np.linalg.norm(table[rows], ord=norm_type, axis=1)
        big = norms > max_norm
        if np.any(big):
            table[rows[big]] *= (max_norm / (norms[big] + 1e-7))[:, None].astype(table.dtype)
            weight._version[0] += 1


def embedding(input, weight: Tensor, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) at the integer ``input``: output shape input.shape + (dim,).

    >>> import chainrule.nn.functional as F
    >>> F.embedding(cr.tensor([[0, 2]]), cr.eye(3)).tolist()
    [[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]
    """
    if sparse:
        raise ValueError("embedding: sparse=True (sparse gradients) is not supported by chainrule; use sparse=False")
    if scale_grad_by_freq:
        raise ValueError("embedding: scale_grad_by_freq=True is not supported by chainrule")
    if not isinstance(weight, Tensor) or weight.ndim != 2:
        raise ValueError(f"embedding: weight must be a 2-D tensor (num_embeddings, embedding_dim), got "
                         f"{getattr(weight, 'shape', type(weight).__name__)}")
    idx = _indices(input, "embedding", weight.shape[0])
    if max_norm is not None:
        _renorm_(weight, idx, float(max_norm), float(norm_type))
    out = weight[idx]
    if padding_idx is None or not weight.requires_grad:
        return out
    # the padding row's value comes from outside the graph, so its gradient is zero
    keep = (idx != padding_idx)[..., None]
    return where(keep, out, Tensor._wrap(weight._data[idx]))


def _padding_index(padding_idx, num_embeddings: int) -> int | None:
    if padding_idx is None:
        return None
    if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) or not (
            -num_embeddings <= padding_idx < num_embeddings):
        raise ValueError(f"Embedding: padding_idx must be an index into the {num_embeddings} embeddings, got "
                         f"{padding_idx!r}")
    return int(padding_idx) % num_embeddings


@register_config
class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``; ``weight`` starts as N(0, 1), the
    row ``padding_idx`` (if given) as zeros, and that row is never trained.

    ``max_norm``: rows read in a forward are first scaled in place to norm at most ``max_norm``.
    ``sparse=True`` (sparse gradients) is not supported.

    >>> emb = cr.nn.Embedding(10, 3, padding_idx=0)
    >>> emb(cr.tensor([[1, 2, 0]])).shape
    chainrule.Size([1, 3, 3])
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight=None, _freeze: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Embedding: {name} must be a positive integer, got {value!r}")
        if sparse:
            raise ValueError("Embedding: sparse=True (sparse gradients) is not supported by chainrule; use "
                             "sparse=False (the default)")
        if scale_grad_by_freq:
            raise ValueError("Embedding: scale_grad_by_freq=True is not supported by chainrule")
        if device not in (None, "cpu") and str(device) != "cpu":
            raise RuntimeError(f"Embedding: device {device!r} is not available; chainrule runs on the CPU")
        if max_norm is not None and not max_norm > 0:
            raise ValueError(f"Embedding: max_norm must be positive, got {max_norm!r}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        self.padding_idx = _padding_index(padding_idx, self.num_embeddings)
        self.max_norm = None if max_norm is None else float(max_norm)
        self.norm_type, self.scale_grad_by_freq, self.sparse = float(norm_type), False, False
        dtype = backend.as_dtype(dtype) or backend.get_default_dtype()
        if _weight is None:
            self.weight = Parameter(np.empty((self.num_embeddings, self.embedding_dim), dtype=dtype))
            self.reset_parameters()
        else:
            arr = _weight._data if isinstance(_weight, Tensor) else np.asarray(_weight)
            if arr.shape != (self.num_embeddings, self.embedding_dim):
                raise ValueError(f"Embedding: _weight has shape {arr.shape}, expected "
                                 f"{(self.num_embeddings, self.embedding_dim)}")
            self.weight = Parameter(Tensor._wrap(arr.copy()), requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            with autograd.no_grad():
                self.weight._data[self.padding_idx] = 0
            self.weight._version[0] += 1

    def forward(self, input) -> Tensor:
        return embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type)

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """An Embedding whose table is a copy of ``embeddings`` (2-D); ``freeze`` keeps it from training.

        >>> emb = cr.nn.Embedding.from_pretrained(cr.eye(4))
        >>> emb(cr.tensor([3])).tolist(), emb.weight.requires_grad
        ([[0.0, 0.0, 0.0, 1.0]], False)
        """
        arr = embeddings._data if isinstance(embeddings, Tensor) else np.asarray(embeddings)
        if arr.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D (num_embeddings, embedding_dim), "
                             f"got shape {arr.shape}")
        if arr.dtype.kind != "f":
            raise TypeError(f"Embedding.from_pretrained: embeddings must be floating point, got {arr.dtype}")
        return cls(arr.shape[0], arr.shape[1], padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=arr, _freeze=freeze, dtype=arr.dtype)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2.0:
            text += f", norm_type={self.norm_type}"
        return text

    def get_config(self) -> dict:
        return make_config(self, num_embeddings=self.num_embeddings, embedding_dim=self.embedding_dim,
                           padding_idx=self.padding_idx, max_norm=self.max_norm, norm_type=self.norm_type)
