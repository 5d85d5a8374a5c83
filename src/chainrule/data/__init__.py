"""Data: datasets, batching and preprocessing, with PyTorch's names.

>>> ds = cr.data.datasets.moons(500, noise=0.1, seed=0)
>>> train, test = cr.data.random_split(ds, [0.8, 0.2], generator=0)
>>> for x, y in cr.data.DataLoader(train, batch_size=32, shuffle=True):
...     ...
"""

from . import datasets, transforms
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .datasets import read_csv, read_idx
from .loader import DataLoader, default_collate
from .preprocessing import Standardizer, one_hot
from .sampler import DistributedSampler

__all__ = [
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "Standardizer",
    "Subset",
    "TensorDataset",
    "datasets",
    "default_collate",
    "one_hot",
    "random_split",
    "read_csv",
    "read_idx",
    "transforms",
]
