"""Training: the fit loop, History, callbacks and metrics."""

from .callbacks import (
    Callback,
    EarlyStopping,
    LambdaCallback,
    LearningRateScheduler,
    ModelCheckpoint,
    TerminateOnNaN,
)
from .fit import Trainer, TrainingError, evaluate, fit, get_loss, get_optimizer, predict
from .history import History
from .metrics import accuracy, mean_absolute_error, mean_squared_error, zero_one_loss
