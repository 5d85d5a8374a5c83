"""The errors chainrule raises for bad input, and how the ``chainrule`` command reports them.

Every error a user can cause is a :class:`ChainruleError` whose message is one sentence naming the
option, file, layer or key, what was expected and what was found. The subclasses also derive from
the built-in exception a Python user would expect (``ValueError``, ``TypeError``, ``RuntimeError``),
so ``except ValueError`` keeps working.

>>> try:
...     raise DataError("read_csv: data.csv: the labels are not whole numbers (row 2: 0.5)")
... except ValueError as e:
...     print(e)
read_csv: data.csv: the labels are not whole numbers (row 2: 0.5)
"""

from __future__ import annotations

import linecache
import os
import sys
import traceback


class ChainruleError(Exception):
    """Base class of chainrule's errors about the user's input (never a bug in chainrule)."""


class InvalidArgumentError(ChainruleError, ValueError):
    """An option or argument outside what it accepts (``--batch-size 0``, ``--hidden abc``)."""


class DataError(ChainruleError, ValueError):
    """Data that cannot be trained on or predicted: empty splits, one class, labels that are not
    class indices, NaN or infinite features."""


class LossTargetError(ChainruleError, ValueError):
    """A loss that does not fit the targets or the model's output (``mse`` on class indices ...)."""


class ResourceError(ChainruleError, ValueError):
    """A request that cannot fit in this machine's memory, refused before anything is allocated."""


class ChainruleTypeError(ChainruleError, TypeError):
    """An argument of the wrong kind (a string where a number is needed ...)."""


# ---- reporting (the command's top-level handler) ----------------------------------------------------
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
#: The exit status of an unexpected internal error (sysexits' EX_SOFTWARE).
EXIT_BUG = 70
_LEGACY = (ValueError, TypeError, KeyError, RuntimeError, ImportError, IndexError)


def traceback_requested(flag: bool = False) -> bool:
    """True when ``--traceback`` was given or ``CHAINRULE_TRACEBACK`` is set to something true."""
    return flag or os.environ.get("CHAINRULE_TRACEBACK", "").strip().lower() in ("1", "true", "yes", "on")


def _raised_on_purpose(error: BaseException) -> bool:
    """True when the innermost frame is chainrule's own ``raise`` statement: a deliberate error with
    a message written for the user (the library's older plain ``ValueError``s), as opposed to an error
    that escaped from NumPy or Python inside chainrule (a bug)."""
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
    if not filename.startswith(_PACKAGE_DIR + os.sep):
        return False
    return linecache.getline(filename, tb.tb_lineno).strip().startswith("raise")


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` is the user's (bad input, a missing file) rather than a bug in chainrule."""
    if isinstance(error, (ChainruleError, OSError)):
        return True
    return isinstance(error, _LEGACY) and _raised_on_purpose(error)


def message(error: BaseException) -> str:
    """The error's text on one line (a KeyError's key without quotes, an OSError with its file)."""
    if isinstance(error, KeyError) and error.args:
        text = str(error.args[0])
    elif isinstance(error, OSError) and error.filename is not None and error.strerror and \
            str(error).startswith("["):
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def report(error: BaseException, command: str | None, show_traceback: bool = False, file=None) -> int:
    """Print ``error`` as the command does and return the exit status: 1 for a user error (one
    line), :data:`EXIT_BUG` for anything else (said to be a bug, with how to see the traceback)."""
    file = file or sys.stderr
    who = f"chainrule {command}" if command else "chainrule"
    if show_traceback:
        traceback.print_exception(type(error), error, error.__traceback__, file=file)
    if isinstance(error, MemoryError):
        print(f"{who}: error: out of memory; try a smaller model, batch or dataset", file=file)
        return 1
    if is_user_error(error):
        print(f"{who}: error: {message(error)}", file=file)
        return 1
    hint = "" if show_traceback else "; run again with --traceback (or CHAINRULE_TRACEBACK=1) to see where"
    print(f"{who}: internal error, a bug in chainrule: {type(error).__name__}: {message(error)}"
          f"{hint}, and please report it", file=file)
    return EXIT_BUG
