"""Neural-network building blocks: Module, Parameter, layers, activations, losses, init."""

from .module import Module
from .parameter import Parameter
