"""The computational graph behind a Tensor, as data: value nodes, op nodes and edges.

Value nodes are tensors (leaves: parameters, inputs, constants; and the result of every op); op nodes
are the ``Function`` objects that produced them. Gradients of the output with respect to *every*
value, intermediate ones included, come from one extra ``cr.grad`` pass over the graph, which leaves
``.grad`` untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import autograd
from ..tensor import Tensor
from . import _format
from .modules import module_of

# Symbols for the arithmetic ops, as drawn in the lecture; other ops show their name.
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "neg": "neg", "matmul": "@"}


def op_kind(fn) -> str:
    """The op's name, keeping the Python-number forms apart (``mulscalar`` for ``x * 2``)."""
    name = type(fn).__name__.lower()
    return name if name.endswith("scalar") else fn.op_name()


# How an op with a Python-number constant c reads, around its tensor input a.
_SCALAR_FORMS = {"addscalar": "{a}+{c}", "rsubscalar": "{c}-{a}", "mulscalar": "{a}*{c}", "divscalar": "{a}/{c}",
                 "powscalar": "{a}**{c}", "rpowscalar": "{c}**{a}"}


def scalar_constant(fn):
    """The Python number of a ``...Scalar`` op (None for other ops)."""
    for attr in ("c", "p"):
        if hasattr(type(fn), "__slots__") and attr in getattr(type(fn), "__slots__", ()):
            return getattr(fn, attr, None)
    return None


def op_label(fn) -> str:
    """The text of an op node: ``+``, ``*``, ``*2``, ``**2``, ``sigmoid``, ``linear`` ..."""
    kind = op_kind(fn)
    form = _SCALAR_FORMS.get(kind)
    if form is not None:
        return form.format(a="", c=_format.number(scalar_constant(fn)))
    return _SYMBOLS.get(kind, kind)


@dataclass(eq=False)
class ValueNode:
    """A tensor in the graph."""

    key: str
    tensor: Tensor
    name: str | None
    kind: str  # 'param', 'input' (a named leaf or one that requires grad), 'const', 'op' (an op's result)
    grad: np.ndarray | None = None
    producer: OpNode | None = None
    consumers: list = field(default_factory=list)
    auto: bool = False  # the name was made up from the op (``x+y``), not given

    @property
    def shape(self) -> tuple:
        return self.tensor.shape

    @property
    def value(self) -> np.ndarray:
        return self.tensor._data

    def lines(self, values: bool = True, grads: bool = True, label: str | None = None) -> list:
        """The label, one string per line: name (or ``label``), shape (arrays only), value, grad."""
        out = []
        if label or self.name:
            out.append(label or self.name)
        if self.tensor.ndim:
            out.append(f"shape {_format.shape(self.shape)}")
        if values:
            out.append(f"value {_format.array(self.value)}")
        if grads and self.grad is not None:
            out.append(f"grad {_format.array(self.grad)}")
        return out or ["(value)"]


@dataclass(eq=False)
class OpNode:
    """An op (a ``Function``) of the graph; ``group`` is set for a collapsed module box."""

    key: str
    fn: object
    inputs: list  # ValueNodes
    output: ValueNode
    module: object = None  # ModuleCall from trace_modules, or a Module found through its parameters

    @property
    def label(self) -> str:
        return op_label(self.fn)


@dataclass
class Graph:
    """The nodes reachable from ``outputs``: ``values`` and ``ops`` in topological order (inputs
    first), plus how many nodes were left out by ``max_nodes``."""

    values: list
    ops: list
    outputs: list
    omitted: int = 0
    truncated: list = field(default_factory=list)  # ValueNodes whose history was cut by max_nodes


def _names(params, model) -> dict:
    names = {}
    if model is not None:
        for n, p in model.named_parameters():
            names[id(p)] = n
        for n, b in model.named_buffers():
            names.setdefault(id(b), n)
    if params:
        for n, p in dict(params).items():
            names[id(p)] = n
    return names


def _param_owners(model) -> dict:
    """id(parameter) -> (module path, module) for the module that holds it directly."""
    owners = {}
    if model is None:
        return owners
    for path, m in model.named_modules():
        for p in m._parameters.values():
            if p is not None:
                owners[id(p)] = (path, m)
    return owners


def build_graph(output, params=None, model=None, grads: bool = True, max_nodes: int | None = None,
                auto_names: bool = True) -> Graph:
    """Collect the graph that produced ``output`` (a Tensor or a list of Tensors).

    ``params`` (a dict name -> tensor, e.g. ``dict(model.named_parameters())``) or ``model`` name the
    parameters; other tensors are named by ``Tensor.name``. With ``grads`` every value that requires
    grad gets ``d(output)/d(value)`` (of the sum of the output when it is not a scalar).
    ``max_nodes`` keeps the nodes nearest to the output (value and op nodes counted together).
    """
    outputs = [output] if isinstance(output, Tensor) else list(output) if isinstance(output, (list, tuple)) else [output]
    for o in outputs:
        if not isinstance(o, Tensor):
            raise TypeError(f"draw_graph: expected a Tensor (the output of a computation), got {type(o).__name__}")
    names = _names(params, model)
    limit = max_nodes if max_nodes is not None else float("inf")
    if limit < 1:
        raise ValueError(f"draw_graph: max_nodes must be at least 1, got {max_nodes}")

    values: dict = {}  # id(tensor) -> ValueNode
    ops: dict = {}  # fn -> the ValueNode of its output
    truncated = []
    count = 0
    cut: set = set()  # ops left out by max_nodes
    # Breadth-first from the outputs, so that max_nodes keeps what is nearest to them.
    queue = list(outputs)
    head = 0
    while head < len(queue):
        t = queue[head]
        head += 1
        if id(t) in values:
            continue
        fn = t._node
        if count >= limit:
            if fn is not None:
                cut.add(fn)
            continue
        if id(t) in names:
            kind = "param"
        elif fn is not None:
            kind = "op"
        elif t.requires_grad or t.name:
            kind = "input"
        else:
            kind = "const"
        v = ValueNode(f"v{len(values)}", t, names.get(id(t), t.name), kind)
        values[id(t)] = v
        count += 1
        if fn is None or fn in ops:
            continue
        if count >= limit:
            truncated.append(v)
            cut.add(fn)
            continue
        count += 1
        ops[fn] = v
        queue.extend(fn.inputs)

    op_nodes = {}
    for fn, out_v in ops.items():
        inputs = [values[id(t)] for t in fn.inputs if id(t) in values]
        node = OpNode(f"op{len(op_nodes)}", fn, inputs, out_v, module_of(fn))
        op_nodes[fn] = node
        out_v.producer = node
        for v in inputs:
            v.consumers.append(node)
    omitted = len([f for f in _reachable(cut) if f not in op_nodes]) if cut else 0

    order = _topological(op_nodes)
    value_order = _value_order(values, order)
    graph = Graph(value_order, order, [values[id(o)] for o in outputs], omitted, truncated)
    if auto_names:
        _auto_name(graph)
    if grads:
        _fill_grads(graph, outputs)
    return graph


def _reachable(fns) -> set:
    seen = set(fns)
    stack = list(fns)
    while stack:
        fn = stack.pop()
        for t in fn.inputs:
            p = t._node
            if p is not None and p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def _topological(op_nodes: dict) -> list:
    order = []
    done = set()
    for start in op_nodes.values():
        if start in done:
            continue
        stack = [(start, 0)]
        done.add(start)
        while stack:
            node, i = stack[-1]
            if i < len(node.inputs):
                stack[-1] = (node, i + 1)
                p = node.inputs[i].producer
                if p is not None and p not in done:
                    done.add(p)
                    stack.append((p, 0))
            else:
                stack.pop()
                order.append(node)
    return order


def _value_order(values: dict, ops: list) -> list:
    order, seen = [], set()
    for op in ops:
        for v in op.inputs + [op.output]:
            if id(v) not in seen:
                seen.add(id(v))
                order.append(v)
    for v in values.values():
        if id(v) not in seen:
            order.append(v)
    return order


def _auto_name(graph: Graph) -> None:
    """Unnamed op results get a short expression (``x+y``) when the inputs are named and simple."""
    for op in graph.ops:
        v = op.output
        if v.name:
            continue
        ins = [i.name if i.name else (_format.number(i.value.item()) if i.value.size == 1 and i.kind == "const"
                                      else None) for i in op.inputs]
        if any(n is None for n in ins) or not ins:
            continue
        kind = op_kind(op.fn)
        sym = _SYMBOLS.get(kind)
        if sym and sym != "neg" and len(ins) == 2:
            a, b = (f"({n})" if _compound(n) else n for n in ins)
            text = f"{a}{sym}{b}"
        elif kind in _SCALAR_FORMS and len(ins) == 1:
            a = f"({ins[0]})" if _compound(ins[0]) else ins[0]
            text = _SCALAR_FORMS[kind].format(a=a, c=_format.number(scalar_constant(op.fn)))
        else:
            text = f"{op.label}({', '.join(ins)})"
        if len(text) <= 24:
            v.name = text
            v.auto = True
    _fallback_names(graph)


def _fallback_names(graph: Graph) -> None:
    """What is still unnamed gets the names ``explain`` uses: ``f`` for the output, ``t1``, ``t2`` ...
    for the rest in order (a number constant shows its value instead)."""
    used = {v.name for v in graph.values if v.name}
    for v in graph.outputs:
        if not v.name:
            v.name = "f" if "f" not in used else "out"
            v.auto = True
            used.add(v.name)
    k = 0
    for v in graph.values:
        if v.name or (v.kind == "const" and v.value.size == 1):
            continue
        k += 1
        while f"t{k}" in used:
            k += 1
        v.name, v.auto = f"t{k}", True
        used.add(v.name)


def _compound(text: str) -> bool:
    """Whether ``text`` has an operator outside parentheses (and so needs them as an operand)."""
    if _is_number(text):
        return False
    depth = 0
    for c in text:
        depth += c == "("
        depth -= c == ")"
        if depth == 0 and c in "+-*/@ ":
            return True
    return False


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _fill_grads(graph: Graph, outputs: list) -> None:
    targets = [v for v in graph.values if v.tensor.requires_grad]
    outs = [o for o in outputs if o.requires_grad]
    if not targets or not outs:
        return
    seeds = [Tensor._wrap(np.ones(o.shape, dtype=o.dtype)) for o in outs]
    with autograd.no_grad():
        grads = autograd.grad(outs, [v.tensor for v in targets], grad_outputs=seeds, allow_unused=True,
                              retain_graph=True, _released_ok=True)  # the graph as the user left it
    for v, g in zip(targets, grads):
        if g is not None:
            v.grad = g._data
    # An output that feeds nothing else still has d(output)/d(output) = 1.
    for o, s in zip(outs, seeds):
        for v in graph.outputs:
            if v.tensor is o and v.grad is None:
                v.grad = s._data


def module_groups(graph: Graph, model=None) -> dict:
    """Op nodes grouped by the module call that produced them: ``{group: [OpNode, ...]}``.

    Tags from :func:`trace_modules` win; without them an op that reads a parameter is given to the
    module that owns that parameter (enough for Linear and Conv layers, not for parameter-free ones).
    """
    owners = _param_owners(model)
    groups: dict = {}
    for op in graph.ops:
        key = op.module
        if key is None and owners:
            for v in op.inputs:
                if id(v.tensor) in owners:
                    key = owners[id(v.tensor)]
                    break
        if key is not None:
            groups.setdefault(id(key), (key, []))[1].append(op)
    return {k: ops for k, ops in groups.values()}


def group_label(key) -> str:
    if isinstance(key, tuple):  # (path, module) from parameter ownership
        path, m = key
        head = repr(m).split("\n", 1)[0]
        return f"{path}: {head}" if path else head
    return key.label
