"""Optimizers: the update rules, each exactly PyTorch's, updating parameters in place."""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .cg import ConjugateGradient
from .lbfgs import LBFGS
from .newton import Newton, hessian
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD
