"""A safe parser for small math expressions like ``(x + y) * z`` or ``sigmoid(w * x + b)``.

The text is parsed with Python's :mod:`ast` and only a whitelist of node kinds is accepted: numbers,
names, ``+ - * / **``, unary minus and plus, parentheses and calls of the library's math functions by
name. Nothing is ever passed to ``eval``: evaluation walks the checked tree and calls chainrule ops,
so the result is a Tensor with its graph, ready for ``backward``, ``cr.viz.draw_graph`` or
``cr.viz.explain``.

>>> e = parse("(x + y) * z")
>>> e.names
('x', 'y', 'z')
>>> out, inputs = e.evaluate(x=1.0, y=-3.0, z=4.0)
>>> out.item()
-8.0
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping

import numpy as np

from . import backend, ops
from .errors import ChainruleError
from .tensor import Tensor

MAX_LENGTH = 2000
MAX_NODES = 500

#: The functions an expression may call, by name.
FUNCTIONS = {
    "exp": ops.exp,
    "log": ops.log,
    "sqrt": ops.sqrt,
    "sin": ops.sin,
    "cos": ops.cos,
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
    "relu": ops.relu,
    "abs": ops.abs,
    "square": ops.square,
    "sum": ops.sum,
    "mean": ops.mean,
    "max": ops.maximum,
    "min": ops.minimum,
}

_BINARY = {ast.Add: ops.add, ast.Sub: ops.sub, ast.Mult: ops.mul, ast.Div: ops.div, ast.Pow: ops.pow}
_BINARY_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_ALLOWED = "numbers, names, + - * / **, parentheses and the functions " + ", ".join(sorted(FUNCTIONS))


class ExpressionError(ChainruleError, ValueError):
    """An expression that uses something outside the whitelist, or is malformed."""


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__} ({_OP_SYMBOLS.get(type(node.op), '?')})"
    if isinstance(node, ast.UnaryOp):
        return f"the unary operator {type(node.op).__name__}"
    if isinstance(node, ast.Attribute):
        return f"attribute access '.{node.attr}'"
    if isinstance(node, ast.Constant):
        return f"the constant {node.value!r}"
    if isinstance(node, ast.Call):
        return "a call of something that is not a function name"
    return f"{type(node).__name__.lower()} syntax"


_OP_SYMBOLS = {
    ast.MatMult: "@",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
}


def _number_text(value) -> str:
    digits = str(value) if isinstance(value, int) else repr(value)
    return digits if len(digits) <= 20 else f"{digits[:12]}... ({len(digits.lstrip('-'))} digits)"


def _as_float(value, what: str) -> float:
    """``value`` (a Python int or float) as a finite float, or an ExpressionError naming ``what``."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ExpressionError(f"{what}: the number {_number_text(value)} is too large for a float "
                              f"(at most about 1.8e308)")
    return number


def _refuse(node: ast.AST, text: str) -> ExpressionError:
    where = f" at column {node.col_offset + 1}" if hasattr(node, "col_offset") else ""
    return ExpressionError(f"expression {text!r}: {_describe(node)}{where} is not allowed; use {_ALLOWED}")


class Expression:
    """A checked expression: ``names`` (its variables, in order of first appearance) and
    :meth:`evaluate`."""

    def __init__(self, text: str, tree: ast.Expression, names: tuple):
        self.text = text
        self._tree = tree
        self.names = names

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def evaluate(self, values: Mapping | None = None, requires_grad: bool = True, dtype=None,
                 finite: bool = True, **kwargs):
        """Compute the expression with Tensors for its variables.

        ``values`` (or keyword arguments) map each name to a number, a list or an array. Returns
        ``(output, inputs)`` where ``inputs`` maps each name to the leaf Tensor created for it (named,
        and requiring grad when ``requires_grad``), so ``output.backward()`` fills their ``.grad``.
        With ``finite`` (the default) a part that evaluates to inf or NaN at these values raises an
        :class:`ExpressionError` naming that part (``log(x) is -inf at x=0``).
        """
        values = {**(values or {}), **kwargs}
        missing = [n for n in self.names if n not in values]
        if missing:
            raise ExpressionError(
                f"expression {self.text!r}: no value for {', '.join(missing)} (set it, e.g. {missing[0]}=1)"
            )
        unknown = [n for n in values if n not in self.names]
        if unknown:
            raise ExpressionError(
                f"expression {self.text!r}: {', '.join(unknown)} not used (its variables are "
                f"{', '.join(self.names) or 'none'})"
            )
        inputs = {}
        for name in self.names:
            v = values[name]
            arr = v._data if isinstance(v, Tensor) else np.asarray(v)
            if arr.dtype.kind not in "fiu" and arr.dtype.kind != "b":
                raise ExpressionError(f"expression: value of {name} must be numeric, got {arr.dtype}")
            target = dtype or (arr.dtype if arr.dtype.kind == "f" else backend.get_default_dtype())
            arr = arr.astype(target)
            inputs[name] = Tensor(arr, requires_grad=requires_grad, name=name)
        with np.errstate(all="ignore"):  # a non-finite part is reported by name below, not as a warning
            out = self._eval(self._tree.body, inputs, finite)
        if not isinstance(out, Tensor):
            out = Tensor(np.asarray(out, dtype=dtype or np.float64))
        return out, inputs

    def _eval(self, node: ast.AST, env: dict, finite: bool = False):
        out = self._eval_node(node, env, finite)
        if finite and isinstance(out, Tensor) and not np.isfinite(out._data).all():
            bad = out._data[~np.isfinite(out._data)].reshape(-1)[0]
            part = ast.get_source_segment(self.text.strip(), node) or ast.unparse(node)
            where = ", ".join(f"{k}={_format_value(v._data)}" for k, v in env.items())
            raise ExpressionError(f"expression {self.text.strip()!r}: {part} is {bad}"
                                  + (f" at {where}; choose values where every part is finite" if where else ""))
        return out

    def _eval_node(self, node: ast.AST, env: dict, finite: bool):
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            return env[node.id]
        if isinstance(node, ast.UnaryOp):
            operand = self._eval(node.operand, env, finite)
            if isinstance(node.op, ast.UAdd):
                return operand
            return -operand
        if isinstance(node, ast.BinOp):
            a, b = self._eval(node.left, env, finite), self._eval(node.right, env, finite)
            if not isinstance(a, Tensor) and not isinstance(b, Tensor):
                a = Tensor(np.asarray(a))
            return _BINARY[type(node.op)](a, b)
        if isinstance(node, ast.Call):
            args = [self._eval(a, env, finite) for a in node.args]
            args = [a if isinstance(a, Tensor) else Tensor(np.asarray(a)) for a in args]
            return FUNCTIONS[node.func.id](*args)
        raise _refuse(node, self.text)  # unreachable: the tree was checked


def _format_value(a: np.ndarray) -> str:
    if a.ndim == 0:
        return f"{float(a):g}"
    return np.array2string(a, precision=4, threshold=6, separator=", ")


def _check(node: ast.AST, text: str, names: list) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise _refuse(node, text)
        _as_float(node.value, f"expression {_short(text)} at column {node.col_offset + 1}")
        return
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise ExpressionError(f"expression {text!r}: {node.id} is a function; call it as {node.id}(...)")
        if node.id.startswith("_"):
            raise _refuse(node, text)
        if node.id not in names:
            names.append(node.id)
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        _check(node.operand, text, names)
        return
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, text, names)
        _check(node.right, text, names)
        return
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        fname = node.func.id
        if fname not in FUNCTIONS:
            raise ExpressionError(
                f"expression {text!r}: unknown function {fname!r}; the functions are "
                + ", ".join(sorted(FUNCTIONS))
            )
        if node.keywords:
            raise ExpressionError(f"expression {text!r}: {fname}() takes no keyword arguments")
        want = 2 if fname in ("max", "min") else 1
        if len(node.args) != want:
            raise ExpressionError(
                f"expression {text!r}: {fname}() takes {want} argument{'s' if want > 1 else ''}, "
                f"got {len(node.args)}"
            )
        for a in node.args:
            _check(a, text, names)
        return
    raise _refuse(node, text)


def parse(text: str) -> Expression:
    """Check ``text`` against the whitelist and return an :class:`Expression`.

    Raises :class:`ExpressionError` (a ValueError) naming what is not allowed and where.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse: expected the expression as a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression: too long ({len(text)} characters, at most {MAX_LENGTH})")
    if not text.strip():
        raise ExpressionError("expression: empty; write something like (x + y) * z")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        col = f" at column {e.offset}" if e.offset else ""
        raise ExpressionError(f"expression {text!r}: not valid syntax{col} ({e.msg})") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ExpressionError(f"expression: too large (more than {MAX_NODES} parts)")
    names: list = []
    _check(tree.body, text, names)
    return Expression(text, tree, tuple(names))


def evaluate(text: str, values: Mapping | None = None, requires_grad: bool = True, dtype=None,
             finite: bool = True, **kwargs):
    """Parse and evaluate in one step: returns ``(output, inputs)`` (see :meth:`Expression.evaluate`)."""
    return parse(text).evaluate(values, requires_grad=requires_grad, dtype=dtype, finite=finite, **kwargs)


def _short(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:30] + "...")


def parse_value(text: str) -> np.ndarray:
    """A value for ``--set name=VALUE``: a number or a (nested) list of numbers, e.g. ``[1, 2.5]``."""
    if len(text) > 100_000:
        raise ExpressionError(f"value {_short(text)}: too long ({len(text)} characters)")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        if "Exceeds the limit" in str(e.msg):
            raise ExpressionError(f"value {_short(text)}: the number is too large for a float "
                                  "(at most about 1.8e308)") from None
        raise ExpressionError(f"value {_short(text)}: expected a number or a list of numbers like [1, 2]") from None

    def build(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(
            node.value, bool
        ):
            return _as_float(node.value, f"value {_short(text)}")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = build(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, (ast.List, ast.Tuple)):
            return [build(e) for e in node.elts]
        raise ExpressionError(f"value {text!r}: expected a number or a list of numbers like [1, 2]")

    try:
        return np.asarray(build(tree.body), dtype=np.float64)
    except ValueError as e:
        if isinstance(e, ExpressionError):
            raise
        raise ExpressionError(f"value {text!r}: a list of lists must be rectangular") from None


def parse_assignments(items) -> dict:
    """``['x=1', 'y=-3']`` -> ``{'x': array(1.), 'y': array(-3.)}`` (the CLI's ``--set``)."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise ExpressionError(f"--set {item!r}: expected NAME=VALUE, e.g. x=1 or w=[0.5, -1]")
        out[name] = parse_value(value)
    return out
