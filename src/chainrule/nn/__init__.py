"""Neural-network building blocks: Module, Parameter, layers, activations, losses, init."""

from . import functional, init, utils
from .activation import (
    ELU,
    GELU,
    SELU,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    PReLU,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
    activation_class,
)
from .config import from_config, register_config, registered_classes
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv1d, Conv2d, Dropout2d
from .linear import Dropout, Flatten, Identity, Linear, Maxout, Unflatten
from .loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    MultiMarginLoss,
    NLLLoss,
    SmoothL1Loss,
)
from .mlp import MLP
from .models import LeNet
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d
from .parameter import Parameter
from .pooling import AdaptiveAvgPool1d, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from .summary import summary

# isort: split
# Sequence layers, embeddings and per-sample normalization (PyTorch's names); data parallelism over MPI
# ranks (cr.nn.parallel.DistributedDataParallel, SyncBatchNorm).
from . import parallel  # noqa: E402
from .normalization import GroupNorm, LayerNorm
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell
from .sparse import Embedding
from .sync_batchnorm import SyncBatchNorm  # noqa: E402
