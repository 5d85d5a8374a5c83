"""The chain rule written out: every step of backprop with its numbers.

For each op, from the output back to the inputs (reverse topological order), and for each of its
inputs: the **upstream** gradient (of the output f with respect to the op's result), the **local**
derivative (of the op's result with respect to that input), and their **product**, which is the
input's gradient along that edge. Where a value feeds several ops, its gradient is the sum of the
products (the multivariate chain rule).

    f = q * z,  q = x + y:   df/dx = df/dq * dq/dx = 4 * 1 = 4
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .. import autograd
from ..tensor import Tensor
from . import _format
from .graph import Graph, OpNode, ValueNode, _compound, build_graph, op_kind, scalar_constant

# op name -> one (text, latex) pair per input, with {a} {b} {c} standing for the input labels and
# {p} for the op's constant. Ops missing here show their Jacobian by name.
_LOCAL = {
    "add": [("1", "1"), ("1", "1")],
    "sub": [("1", "1"), ("-1", "-1")],
    "mul": [("{b}", "{b}"), ("{a}", "{a}")],
    "div": [("1/{b}", r"\frac{{1}}{{{b}}}"), ("-{a}/{b}^2", r"-\frac{{{a}}}{{{b}^2}}")],
    "neg": [("-1", "-1")],
    "addscalar": [("1", "1")],
    "rsubscalar": [("-1", "-1")],
    "mulscalar": [("{p}", "{p}")],
    "divscalar": [("1/{p}", r"\frac{{1}}{{{p}}}")],
    "powscalar": [("{p}*{a}^{q}", "{p}\\,{a}^{{{q}}}")],
    "rpowscalar": [("{p}^{a}*ln({p})", "{p}^{{{a}}}\\ln {p}")],
    "pow": [("{b}*{a}^({b}-1)", "{b}\\,{a}^{{{b}-1}}"), ("{a}^{b}*ln({a})", "{a}^{{{b}}}\\ln {a}")],
    "exp": [("exp({a})", "e^{{{a}}}")],
    "log": [("1/{a}", r"\frac{{1}}{{{a}}}")],
    "sqrt": [("1/(2*sqrt({a}))", r"\frac{{1}}{{2\sqrt{{{a}}}}}")],
    "abs": [("sign({a})", r"\operatorname{{sign}}({a})")],
    "sin": [("cos({a})", r"\cos({a})")],
    "cos": [("-sin({a})", r"-\sin({a})")],
    "tanh": [("1 - tanh({a})^2", r"1-\tanh^2({a})")],
    "sigmoid": [("sigmoid({a})*(1 - sigmoid({a}))", r"\sigma({a})\,(1-\sigma({a}))")],
    "relu": [("[{a} > 0]", r"\mathbb{{1}}[{a}>0]")],
    "sum": [("1", "1")],
    "mean": [("1/n", r"\frac{{1}}{{n}}")],
    "cast": [("1", "1")],
    "clone": [("1", "1")],
    "matmul": [("upstream @ {b}^T", r"\text{{upstream}}\cdot {b}^\top"),
               ("{a}^T @ upstream", r"{a}^\top\cdot\text{{upstream}}")],
    "linear": [("upstream @ {b}", r"\text{{upstream}}\cdot {b}"),
               ("upstream^T @ {a}", r"\text{{upstream}}^\top\cdot {a}"),
               ("sum of upstream over the batch", r"\textstyle\sum_\text{{batch}} \text{{upstream}}")],
}

_ELEMENTWISE = {"add", "sub", "mul", "div", "neg", "powscalar", "rpowscalar", "addscalar", "rsubscalar",
                "mulscalar", "divscalar", "pow", "exp", "log", "sqrt", "abs",
                "sin", "cos", "tanh", "sigmoid", "relu", "cast", "clone", "clamp", "maximum", "minimum", "where"}


@dataclass
class ChainStep:
    """One edge of the backward pass: ``product = upstream * local`` (for arrays, the op's
    vector-Jacobian product; ``local`` is then the elementwise derivative, or None for a Jacobian)."""

    index: int
    output: str  # label of the op's result
    op: str
    input: str  # label of the input this step differentiates
    upstream: np.ndarray
    local: np.ndarray | None
    local_formula: str
    local_latex: str
    product: np.ndarray
    first: bool = True  # the first step of its op (tables print the op once)


@dataclass
class Explanation:
    """What :func:`explain` found: ``steps`` in backprop order, ``gradients`` (label -> total
    gradient of the output) and ``output`` (the output's label). Print with ``to_text()``; in a
    notebook it shows as Markdown with LaTeX (``to_markdown()``)."""

    output: str
    value: np.ndarray
    steps: list = field(default_factory=list)
    gradients: dict = field(default_factory=dict)
    sums: dict = field(default_factory=dict)  # label -> [products] for values that feed several ops

    def step(self, output: str, input: str) -> ChainStep:  # noqa: A002
        for s in self.steps:
            if s.output == output and s.input == input:
                return s
        raise KeyError(f"explain: no step from {output!r} to {input!r}")

    def to_text(self) -> str:
        f = self.output
        rows = [("#", "node", "op", "input", f"upstream d{f}/d(node)", "local d(node)/d(input)",
                 f"product d{f}/d(input)")]
        for s in self.steps:
            local = _local_text(s)
            rows.append((str(s.index), s.output if s.first else "", s.op if s.first else "", s.input,
                         _format.array(s.upstream), local, _format.array(s.product)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"Chain rule for {f} = {_format.array(self.value)}, from the output back "
                 "(upstream x local = product):"]
        for k, r in enumerate(rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        for label, parts in self.sums.items():
            total = " + ".join(_format.array(p) for p in parts)
            lines.append(f"{label} is used {len(parts)} times: d{f}/d{label} = {total} = "
                         f"{_format.array(self.gradients[label])}")
        grads = ", ".join(f"d{f}/d{k} = {_format.array(v)}" for k, v in self.gradients.items())
        lines.append(f"Gradients: {grads}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        f = _tex(self.output)
        lines = [f"**Chain rule** for ${f} = {_tex_num(self.value)}$, from the output back:", "",
                 "| # | node | op | input | upstream | local | product | chain rule |",
                 "|---|---|---|---|---|---|---|---|"]
        for s in self.steps:
            o, i = _tex(s.output), _tex(s.input)
            local_num = _tex_num(s.local) if s.local is not None else r"\text{(Jacobian)}"
            rule = (rf"$\frac{{\partial {f}}}{{\partial {i}}} = \frac{{\partial {f}}}{{\partial {o}}}"
                    rf"\cdot\frac{{\partial {o}}}{{\partial {i}}} = {_tex_num(s.upstream)} \cdot {_paren(local_num)}"
                    rf" = {_tex_num(s.product)}$") if s.local is not None else (
                rf"$\frac{{\partial {f}}}{{\partial {i}}} = \frac{{\partial {f}}}{{\partial {o}}}"
                rf"\,\frac{{\partial {o}}}{{\partial {i}}} = {_tex_num(s.product)}$")
            local = f"${s.local_latex}" + (f" = {local_num}$" if s.local is not None and
                                            s.local_latex != local_num else "$")
            lines.append(f"| {s.index} | ${o}$ | `{s.op}` | ${i}$ | ${_tex_num(s.upstream)}$ | {local} | "
                         f"${_tex_num(s.product)}$ | {rule} |")
        lines.append("")
        for label, parts in self.sums.items():
            lines.append(rf"${_tex(label)}$ is used {len(parts)} times: $\frac{{\partial {f}}}{{\partial {_tex(label)}}}"
                         rf" = {' + '.join(_tex_num(p) for p in parts)} = {_tex_num(self.gradients[label])}$")
            lines.append("")
        grads = ", ".join(rf"$\frac{{\partial {f}}}{{\partial {_tex(k)}}} = {_tex_num(v)}$"
                          for k, v in self.gradients.items())
        lines.append(f"Gradients: {grads}")
        return "\n".join(lines) + "\n"

    __str__ = to_text

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _local_text(s: ChainStep) -> str:
    if s.local is None:
        return f"{s.local_formula} (Jacobian)"
    num = _format.array(s.local)
    return num if s.local_formula == num else f"{s.local_formula} = {num}"


def _tex(label: str) -> str:
    if re.fullmatch(r"[A-Za-z]", label):
        return label
    if re.fullmatch(r"[A-Za-z][0-9]+", label):
        return f"{label[0]}_{{{label[1:]}}}"
    if re.fullmatch(r"[A-Za-z0-9.+\-*/() ]+", label) and not re.search(r"[A-Za-z]{2}", label):
        return "(" + label.replace("*", r"\cdot ") + ")"
    return r"\text{" + label.replace("\\", "").replace("_", r"\_").replace("{", "").replace("}", "") + "}"


def _paren(text: str) -> str:
    return f"({text})" if text.startswith("-") else text


def _tex_num(a) -> str:
    text = _format.array(a)
    if text.startswith("mean"):  # a summary of a larger array: words, not maths
        return r"\text{" + text + "}"
    return text.replace("e-", r"\mathrm{e}{-}").replace("e+", r"\mathrm{e}{+}")


def _labels(graph: Graph) -> dict:
    labels, used, k = {}, set(), 0
    for v in graph.values:
        if v.name and not (v.auto and v in graph.outputs):
            labels[id(v)] = v.name
            used.add(v.name)
    for v in graph.outputs:
        if id(v) not in labels:
            name = "f" if "f" not in used else "out"
            labels[id(v)] = name
            used.add(name)
    for v in graph.values:
        if id(v) not in labels and v.kind == "const" and v.value.size == 1:
            labels[id(v)] = _format.number(v.value.item())
    for v in graph.values:
        if id(v) not in labels:
            k += 1
            while f"t{k}" in used:
                k += 1
            labels[id(v)] = f"t{k}"
    return labels


def _formula(op: OpNode, i: int, labels: dict) -> tuple:
    name = op_kind(op.fn)
    table = _LOCAL.get(name)
    ins = [labels[id(v)] for v in op.inputs]
    if table is None or i >= len(table):
        return f"d{name}/d{ins[i] if i < len(ins) else '?'}", rf"\frac{{\partial\,\mathrm{{{name}}}}}{{\partial x}}"
    keys = {"a": ins[0] if ins else "", "b": ins[1] if len(ins) > 1 else "", "c": ins[2] if len(ins) > 2 else ""}
    c = scalar_constant(op.fn)
    if c is not None:
        keys.update(p=_format.number(c), q=_format.number(c - 1))
    text, latex = table[i]
    tkeys = {k: (_tex(v) if k in "abc" else v) for k, v in keys.items()}
    if text not in ("{a}", "{b}", "{c}"):  # inside a formula, a compound input needs parentheses
        keys = {k: (f"({v})" if k in "abc" and _compound(v) else v) for k, v in keys.items()}
    return text.format(**keys), latex.format(**tkeys)


def explain(output: Tensor, params=None, model=None) -> Explanation:
    """Backprop from ``output`` written out step by step, with numbers (see :class:`Explanation`).

    >>> x, y, z = cr.tensor(1., requires_grad=True, name="x"), ...
    >>> print(cr.viz.explain((x + y) * z).to_text())
    """
    if not isinstance(output, Tensor):
        raise TypeError(f"explain: expected a Tensor, got {type(output).__name__}")
    if not output.requires_grad:
        raise ValueError("explain: the output has no graph (create the inputs with requires_grad=True)")
    graph = build_graph(output, params=params, model=model, grads=True)
    labels = _labels(graph)
    out_v = graph.outputs[0]
    result = Explanation(labels[id(out_v)], out_v.value.copy())
    contributions: dict = {}
    index = 0
    with autograd.no_grad():
        for op in reversed(graph.ops):
            upstream = op.output.grad
            if upstream is None:
                continue
            g = Tensor._wrap(np.asarray(upstream, dtype=op.output.tensor.dtype))
            products = op.fn.backward(g)
            locals_ = _local_values(op)
            first = True
            for i, (t, p) in enumerate(zip(op.fn.inputs, products)):
                if p is None or not t.requires_grad:
                    continue
                v = _value_of(op, t)
                if v is None:
                    continue
                index += 1
                text, latex = _formula(op, i, labels)
                result.steps.append(ChainStep(index, labels[id(op.output)], op.label, labels[id(v)],
                                              np.asarray(upstream), locals_[i], text, latex, p._data.copy(), first))
                first = False
                contributions.setdefault(id(v), (v, []))[1].append(p._data.copy())
    for v in graph.values:
        if v.producer is None and v.tensor.requires_grad and v.grad is not None:
            result.gradients[labels[id(v)]] = v.grad
    for v, parts in contributions.values():
        if len(parts) > 1:
            result.sums[labels[id(v)]] = parts
    return result


def _value_of(op: OpNode, t: Tensor) -> ValueNode | None:
    for v in op.inputs:
        if v.tensor is t:
            return v
    return None


def _local_values(op: OpNode) -> list:
    """d(result)/d(input) as numbers where it is a number per element (scalar results, elementwise ops
    on inputs of the result's shape); None where it is a Jacobian."""
    fn = op.fn
    out = op.output.tensor
    name = op_kind(fn)
    n = len(fn.inputs)
    if out._data.size != 1 and name not in _ELEMENTWISE:
        if name == "sum":
            return [np.ones(fn.inputs[0].shape)]
        return [None] * n
    ones = Tensor._wrap(np.ones(out.shape, dtype=out.dtype))
    try:
        grads = fn.backward(ones)
    except Exception:  # an op whose backward needs more than this: show its Jacobian by name
        return [None] * n
    result = []
    for t, g in zip(fn.inputs, grads):
        if g is None or (out._data.size != 1 and t.shape != out.shape):
            result.append(None)
        else:
            result.append(g._data.copy())
    return result


# ---- deltas of an MLP ------------------------------------------------------------------------------
@dataclass
class LayerDelta:
    """One Linear layer l: ``delta`` = dL/ds_l (s_l = a_{l-1} W_l^T + b_l, the pre-activation) by the
    explicit rule, ``autograd`` the same from backprop, and the weight gradient both ways."""

    name: str
    delta: np.ndarray
    autograd: np.ndarray
    weight_grad: np.ndarray
    autograd_weight_grad: np.ndarray

    @property
    def max_error(self) -> float:
        return float(max(np.abs(self.delta - self.autograd).max(initial=0.0),
                         np.abs(self.weight_grad - self.autograd_weight_grad).max(initial=0.0)))


@dataclass
class Deltas:
    layers: list

    @property
    def max_error(self) -> float:
        return max((layer.max_error for layer in self.layers), default=0.0)

    def __getitem__(self, i) -> LayerDelta:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    def to_text(self) -> str:
        lines = ["Layer deltas: delta_L = dL/ds_L, then delta_{l-1} = f'(s_{l-1}) * (delta_l W_l) "
                 "(per sample), dL/dW_l = delta_l^T a_{l-1}",
                 f"{'layer':<10} {'shape':<12} {'|delta| rule':>13} {'|delta| autograd':>17} {'max diff':>10}"]
        for layer in self.layers:
            lines.append(f"{layer.name:<10} {_format.shape(layer.delta.shape):<12} "
                         f"{np.linalg.norm(layer.delta):>13.6g} {np.linalg.norm(layer.autograd):>17.6g} "
                         f"{layer.max_error:>10.2e}")
        return "\n".join(lines)

    __str__ = to_text


def _activation_derivative(module, s: Tensor, a: Tensor) -> np.ndarray:
    """f'(s) for an elementwise activation: by formula for the lecture's three, otherwise by the
    activation's own local derivative (one backward through it alone)."""
    kind = type(module).__name__
    if kind == "Sigmoid":
        return a._data * (1.0 - a._data)
    if kind == "Tanh":
        return 1.0 - a._data * a._data
    if kind == "ReLU":
        return (s._data > 0).astype(s._data.dtype)
    if kind == "Identity":
        return np.ones_like(s._data)
    s2 = Tensor._wrap(s._data.copy()).requires_grad_(True)
    with autograd.enable_grad():
        out = module(s2)
    (g,) = autograd.grad(out, s2, grad_outputs=Tensor._wrap(np.ones(out.shape, dtype=out.dtype)))
    return g._data


def deltas(model, x, y, loss) -> Deltas:
    """Each Linear layer's delta by the explicit backprop rule, side by side with autograd.

    ``model`` is a Sequential (or MLP) of Linear layers with elementwise activations between them;
    ``loss`` is a loss module or function ``loss(output, y)``. With s_l the pre-activation of layer l
    and a_l = f(s_l)::

        delta_L     = dL/ds_L                         (from the loss, by autograd)
        delta_{l-1} = f'(s_{l-1}) * (delta_l W_l)     (the rule: backprop through W_l, then f)
        dL/dW_l     = delta_l^T a_{l-1},  dL/db_l = sum of delta_l over the batch

    Returns :class:`Deltas`; ``max_error`` is the largest difference from autograd.
    """
    from ..nn.linear import Linear

    layers = list(model.children()) if hasattr(model, "children") else list(model)
    if not layers or not isinstance(layers[0], Linear):
        raise ValueError(f"deltas: expected a Sequential starting with a Linear layer, got {type(model).__name__}")
    x = x if isinstance(x, Tensor) else Tensor(np.asarray(x))
    # forward, keeping each layer's input, pre-activation s and activation a
    records = []  # [name, linear, a_prev, s, [(activation, s_in, a_out)...]]
    h = x
    for i, layer in enumerate(layers):
        if isinstance(layer, Linear):
            a_prev = h
            h = layer(h)
            records.append([str(i), layer, a_prev, h, []])
        else:
            if not records:
                raise ValueError("deltas: the first layer must be Linear")
            kind = type(layer).__name__
            if kind in ("Dropout",) and layer.training:
                raise ValueError("deltas: put the model in eval mode (Dropout changes the delta rule)")
            if kind in ("Softmax", "LogSoftmax", "BatchNorm1d", "Maxout"):
                raise ValueError(f"deltas: {kind} is not an elementwise activation; the delta rule needs one")
            s_in = h
            h = layer(h)
            records[-1][4].append((layer, s_in, h))
    out = h
    value = loss(out, y)
    wanted = [r[3] for r in records] + [r[1].weight for r in records]
    got = autograd.grad(value, wanted, allow_unused=True, retain_graph=True)  # walked again below
    auto_deltas = [g._data if g is not None else np.zeros(r[3].shape) for g, r in zip(got[: len(records)], records)]
    auto_wgrads = [g._data if g is not None else np.zeros(r[1].weight.shape)
                   for g, r in zip(got[len(records):], records)]
    # delta of the last layer: dL/d(out) by autograd, then back through its trailing activations
    (g_out,) = autograd.grad(value, out)
    upstream = g_out._data
    n = len(records)
    rule = [None] * n
    with autograd.no_grad():
        for li in range(n - 1, -1, -1):
            name, lin, a_prev, s, acts = records[li]
            for act, s_in, a_out in reversed(acts):
                upstream = _activation_derivative(act, s_in, a_out) * upstream
            rule[li] = upstream
            upstream = upstream @ lin.weight._data  # W_l^T delta_l, one row per sample
    result = []
    for li, (name, _lin, a_prev, _s, _) in enumerate(records):
        d = rule[li]
        d2 = d.reshape(-1, d.shape[-1])
        wgrad = d2.T @ a_prev._data.reshape(-1, a_prev.shape[-1])
        result.append(LayerDelta(name, d, auto_deltas[li], wgrad, auto_wgrads[li]))
    return Deltas(result)
