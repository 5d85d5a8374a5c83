import importlib
import os

import numpy as np
import pytest
from hypothesis import settings

import chainrule as cr

_IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The test oracles. Under CI=true one that fails to import fails the run instead of skipping tests.
ORACLES = ("torch", "sklearn", "onnx", "onnxruntime", "safetensors", "hypothesis")
if _IN_CI:
    for _name in ORACLES:
        try:
            importlib.import_module(_name)
        except Exception as e:  # noqa: BLE001 - any failure to import is the same failure here
            raise pytest.UsageError(
                f"CI=true: the test oracle {_name!r} failed to import ({type(e).__name__}: {e}); "
                "the README's test command installs it (pip install -e '.[test]' torch==2.13.0)"
            ) from e

# Property tests draw the same examples on every run and machine (a failure reproduces), and keep no
# example database between runs.
settings.register_profile("chainrule", derandomize=True, database=None, print_blob=True)
settings.load_profile("chainrule")

try:
    import torch
except ImportError:  # PyTorch is an optional test oracle
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch (test oracle) is not installed")


def gradcheck_layer(layer, *inputs, second_order: bool = False, output=None) -> None:
    """gradcheck (and optionally gradgradcheck) of ``layer`` over its inputs AND every parameter.

    gradcheck perturbs float64 copies of what it is given, so the parameters go through the layer by
    ``functional_call``: a wrong gradient of any parameter fails the check. ``output`` post-processes
    the layer's output (e.g. ``tanh`` to make a linear layer's second derivatives non-zero).
    """
    names = [n for n, _ in layer.named_parameters()]
    params = [p for _, p in layer.named_parameters()]
    assert names or inputs, "nothing to check"
    k = len(inputs)

    def fn(*args):
        out = cr.nn.utils.functional_call(layer, dict(zip(names, args[k:])), args[:k])
        return out if output is None else output(out)

    cr.gradcheck(fn, [*inputs, *params])
    if second_order:
        cr.gradgradcheck(fn, [*inputs, *params])


@pytest.fixture(autouse=True)
def _seed():
    cr.manual_seed(0)
    np.random.seed(0)
    if torch is not None:
        torch.manual_seed(0)
    yield


def pytest_sessionfinish(session, exitstatus):
    """Under CI=true a skipped test fails the run: a check that did not run is not a pass."""
    if not _IN_CI or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter is not None else 0
    xfailed = len(reporter.stats.get("xfailed", [])) if reporter is not None else 0
    if skipped or xfailed:
        reporter.write_line(f"CI=true: {skipped} skipped and {xfailed} xfailed tests; every test must run",
                            red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
