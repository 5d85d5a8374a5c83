"""chainrule: a neural-network framework where every computation is a graph and gradients flow back
through it by the chain rule.

>>> import chainrule as cr
>>> x, y, z = (cr.tensor(v, requires_grad=True) for v in (1.0, -3.0, 4.0))
>>> f = (x + y) * z
>>> f.backward()
>>> x.grad.item(), y.grad.item(), z.grad.item()
(4.0, 4.0, -2.0)
"""

from . import backend
from .autograd import backward, enable_grad, grad, is_grad_enabled, no_grad, set_grad_enabled
from .backend import (
    bool_,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    manual_seed,
    set_default_dtype,
    uint8,
)
from .creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    linspace,
    logspace,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .gradcheck import GradcheckError, GradcheckReport, gradcheck, gradgradcheck, numerical_grad
from .ops import *
from .ops import Function
from .tensor import Tensor, result_type

# isort: split
# The layers above the core (they build on it, so they are imported after it).
from . import data, io, models, nn, optim, viz  # noqa: E402
from .io import export_onnx, load, load_model, save  # noqa: E402
from .train import Callback, EarlyStopping, History, ModelCheckpoint, evaluate, fit, predict  # noqa: E402
from .viz.gradcheck import gradcheck_model  # noqa: E402

__version__ = "0.1.0"

# PyTorch's dtype aliases; bound last because they shadow builtins inside this module.
bool = bool_  # noqa: A001
half, float, double = float16, float32, float64  # noqa: A001
short, int, long = int16, int32, int64  # noqa: A001

# isort: split
# Bound after the core: cr.onnx.export (PyTorch's torch.onnx.export signature over cr.io.export_onnx);
# cr.distributed (data-parallel training on MPI, needing chainrule[mpi] only when launched by mpiexec);
# the errors chainrule raises for bad input (ChainruleError and its subclasses); PyTorch's everyday API
# beyond the core (devices, sizes, legacy typed constructors, random draws and in-place random fills),
# which `chainrule run` (chainrule.compat) maps `torch` onto.
from . import creation as _creation  # noqa: E402
from . import distributed, onnx  # noqa: E402
from . import legacy as _legacy  # noqa: E402
from .creation import Generator, bernoulli, multinomial, randint_like  # noqa: E402
from .devices import Size, accelerator, backends, cuda, device, get_default_device, set_default_device  # noqa: E402
from .errors import (  # noqa: E402
    ChainruleError,
    ChainruleTypeError,
    DataError,
    InvalidArgumentError,
    LossTargetError,
    ResourceError,
)
from .legacy import (  # noqa: E402
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
)

for _name in ("uniform_", "normal_", "bernoulli_", "exponential_", "random_"):
    setattr(Tensor, _name, getattr(_creation, _name))
Tensor.bernoulli = _creation.bernoulli
del _name


def is_tensor(obj) -> bool:  # noqa: E302
    """Whether ``obj`` is a chainrule Tensor."""
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    return input.numel()


def seed() -> int:
    """Reseed the package's generator from fresh entropy and return the seed."""
    import numpy as _np

    s = int(_np.random.SeedSequence().entropy % (2 ** 63))
    manual_seed(s)
    return s

from . import _torch_kwargs  # noqa: E402

_torch_kwargs.install(globals())
