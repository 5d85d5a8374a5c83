"""Optimizers: the update rules, each exactly PyTorch's, updating parameters in place."""

from .optimizer import Optimizer
