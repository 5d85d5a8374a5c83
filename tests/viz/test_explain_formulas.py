"""Every formula that ``explain`` prints agrees with the numbers printed beside it.

For each op family that explain has a local-derivative formula for, the printed text table and the
Markdown table are parsed back: the formula (text, and LaTeX) is evaluated at the inputs' values and
compared with the printed local derivative; printed upstream x local is compared with the printed
product; the local derivative (or, for a Jacobian, the product) of the op under test is compared with a
central finite difference of the op itself; the "used k times" sums and the final gradients are
checked against their parts and against autograd.
"""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest

import chainrule as cr

F = cr.nn.functional
explain_module = importlib.import_module("chainrule.viz.explain")  # the module, not the function


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


NAMESPACE = {"exp": np.exp, "ln": np.log, "log": np.log, "sqrt": np.sqrt, "sign": np.sign, "sin": np.sin,
             "cos": np.cos, "tanh": np.tanh, "sigmoid": _sigmoid, "cast": lambda a: a, "__builtins__": {}}

# name -> (op kind under test, fn(*inputs) -> node "u", inputs {label: value})
SCALAR = {"x": 0.7, "y": 1.9}
CASES = {
    "add": ("add", lambda x, y: x + y, SCALAR),
    "sub": ("sub", lambda x, y: x - y, SCALAR),
    "mul": ("mul", lambda x, y: x * y, SCALAR),
    "div": ("div", lambda x, y: x / y, SCALAR),
    "div-negative": ("div", lambda x, y: x / y, {"x": -1.3, "y": 0.6}),
    "div-compound": ("div", lambda x, y: (x + y) / (x * y), SCALAR),
    "neg": ("neg", lambda x: -x, {"x": 0.7}),
    "addscalar": ("addscalar", lambda x: x + 2, {"x": 0.7}),
    "rsubscalar": ("rsubscalar", lambda x: 2 - x, {"x": 0.7}),
    "mulscalar": ("mulscalar", lambda x: x * 3, {"x": 0.7}),
    "divscalar": ("divscalar", lambda x: x / 4, {"x": 0.7}),
    "powscalar": ("powscalar", lambda x: x**3, {"x": 0.7}),
    "powscalar-fractional": ("powscalar", lambda x: x**2.5, {"x": 1.3}),
    "rpowscalar": ("rpowscalar", lambda x: 2**x, {"x": 0.7}),
    "pow": ("pow", lambda x, y: x**y, {"x": 1.3, "y": 2.2}),
    "exp": ("exp", lambda x: x.exp(), {"x": 0.7}),
    "log": ("log", lambda x: x.log(), {"x": 0.7}),
    "sqrt": ("sqrt", lambda x: x.sqrt(), {"x": 0.7}),
    "abs-positive": ("abs", lambda x: x.abs(), {"x": 0.7}),
    "abs-negative": ("abs", lambda x: x.abs(), {"x": -0.7}),
    "sin": ("sin", lambda x: x.sin(), {"x": 0.7}),
    "cos": ("cos", lambda x: x.cos(), {"x": 0.7}),
    "tanh": ("tanh", lambda x: x.tanh(), {"x": 0.7}),
    "sigmoid": ("sigmoid", lambda x: x.sigmoid(), {"x": 0.7}),
    "relu-positive": ("relu", lambda x: x.relu(), {"x": 0.7}),
    "relu-negative": ("relu", lambda x: x.relu(), {"x": -0.7}),
    "sum": ("sum", lambda v: v.sum(), {"v": [0.5, -1.0, 2.0]}),
    "mean": ("mean", lambda v: v.mean(), {"v": [0.5, -1.0, 2.0]}),
    "cast": ("cast", lambda x: x.to(cr.float32), {"x": 0.7}),
    "clone": ("clone", lambda x: x.clone(), {"x": 0.7}),
    "elementwise-on-a-vector": ("tanh", lambda v: v.tanh(), {"v": [0.5, -1.0, 2.0]}),
    "matmul": ("matmul", lambda A, B: A @ B, {"A": [[1.0, 2.0]], "B": [[0.5, -1.0], [2.0, 3.0]]}),
    "linear": ("linear", lambda A, B, b: F.linear(A, B, b),
               {"A": [[1.0, 2.0]], "B": [[0.5, -1.0], [2.0, 3.0]], "b": [0.1, -0.2]}),
}
W = 2.5  # f = u * w, so the upstream of the op under test is not 1


def test_every_op_with_a_formula_has_a_case():
    assert {kind for kind, _, _ in CASES.values()} == set(explain_module._LOCAL)


def _leaves(values):
    return {k: cr.tensor(v, requires_grad=True, name=k, dtype=cr.float64) for k, v in values.items()}


def _build(case):
    kind, fn, values = CASES[case]
    leaves = _leaves(values)
    u = fn(*leaves.values())
    u.name = "u"
    w = cr.tensor(W, requires_grad=True, name="w", dtype=cr.float64)
    out = u * w if u.shape == () else (u * w).sum()
    return kind, fn, values, leaves, u, w, out


def _number(text: str):
    text = text.strip()
    assert not text.startswith("mean"), f"a summary, not numbers: {text!r}"
    if text.startswith("["):
        return np.array([float(t) for t in text[1:-1].split(",")])
    return np.float64(float(text))


def _close(a, b, what):
    """Equal to the printed precision: 4 significant digits each side."""
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    scale = np.maximum(np.abs(a), np.abs(b))
    assert np.all(np.abs(a - b) <= 2e-3 * scale + 1e-9), f"{what}: {a} != {b}"


def _text_rows(text: str, n: int) -> list[dict]:
    """The step rows of ``to_text()`` as dicts, cut at the column positions of the dashes line."""
    lines = text.splitlines()
    header, dashes = lines[1], lines[2]
    spans = [m.span() for m in re.finditer(r"-+", dashes)]
    names = ["index", "node", "op", "input", "upstream", "local", "product"]
    assert [header[a:b].strip().split()[0] for a, b in spans] == ["#", "node", "op", "input", "upstream",
                                                                   "local", "product"]
    rows = []
    for line in lines[3:3 + n]:
        starts = [a for a, _ in spans] + [len(line) + 1]
        rows.append({k: line[starts[i]:starts[i + 1]].strip() for i, k in enumerate(names)})
    return rows


def _python(formula: str) -> str:
    """The printed text formula as a Python expression."""
    if formula == "sum of upstream over the batch":
        return "upstream.sum(0)"
    return formula.replace("^T", ".T").replace("^", "**").replace("[", "(").replace("]", ")")


def _evaluate(expression: str, namespace: dict):
    return np.asarray(eval(expression, dict(NAMESPACE), dict(namespace)), dtype=np.float64)  # noqa: S307


def _namespace(values, u):
    ns = {k: np.asarray(v, np.float64) for k, v in values.items()}
    ns.update(u=u.detach().numpy().astype(np.float64), w=np.float64(W), n=None)
    return ns


def _finite_difference(fn, values, name, upstream=None):
    """d fn / d values[name], elementwise (or, with ``upstream``, d sum(upstream * fn) / d values[name])."""
    base = {k: np.asarray(v, np.float64) for k, v in values.items()}
    x = base[name]
    grad = np.zeros(x.shape)
    h = 1e-3  # central differences: error ~h^2, and big enough for the float32 cast
    for idx in np.ndindex(x.shape or ()):
        parts = []
        for sign in (1, -1):
            moved = dict(base)
            moved[name] = x.copy()
            moved[name][idx] += sign * h
            with cr.no_grad():
                out = fn(*[cr.tensor(v, dtype=cr.float64) for v in moved.values()]).detach().numpy()
            parts.append(np.sum(out * upstream) if upstream is not None else out)
        d = (parts[0] - parts[1]) / (2 * h)
        if upstream is not None or np.ndim(d) == 0:  # a reduction: d u / d x[idx] is the scalar d
            grad[idx] = d
        else:  # elementwise: d u[idx] / d x[idx]
            grad[idx] = np.asarray(d).reshape(np.shape(x))[idx]
    return grad


def _check_local(row, ns, node_shape, product):
    """The formula against its printed number (elementwise), or, for a Jacobian, against the product."""
    local = row["local"]
    upstream = _number(row["upstream"])
    if local.endswith("(Jacobian)"):
        formula = local[: -len("(Jacobian)")].strip()
        ns = {**ns, "upstream": np.asarray(upstream).reshape(node_shape)}
        value = _evaluate(_python(formula), ns)
        if "upstream" not in formula:  # a broadcast input: the product sums upstream * local over it
            value = np.sum(np.asarray(upstream).reshape(node_shape) * value).reshape(np.shape(product))
        _close(value.reshape(-1), np.reshape(product, -1), f"{row['input']}: {formula}")
        return None
    formula, _, number = local.rpartition(" = ")
    shown = _number(number if formula else local)
    if formula:
        _close(_evaluate(_python(formula), ns), shown, f"{row['node']} -> {row['input']}: {formula} = {number}")
    else:  # the formula is the number itself
        _close(_evaluate(_python(local), ns), shown, local)
    _close(np.asarray(upstream) * shown, product, f"{row['input']}: upstream x local = product")
    return shown


@pytest.mark.parametrize("case", CASES)
def test_text_formulas_match_the_numbers_they_show(case):
    kind, fn, values, leaves, u, w, out = _build(case)
    e = cr.viz.explain(out)
    rows = _text_rows(e.to_text(), len(e.steps))
    assert len(rows) == len(e.steps)
    ns = _namespace(values, u)
    node = None
    checked_op = 0
    for row, step in zip(rows, e.steps):
        node = row["node"] or node
        assert node == step.output and row["input"] == step.input
        ns["n"] = np.size(ns.get(row["input"], 1))  # mean's n: the number of entries averaged
        node_shape = u.shape if node == "u" else np.shape(step.upstream)
        product = _number(row["product"])
        shown = _check_local(row, ns, node_shape, product)
        if node != "u":
            continue
        # the op under test, against a finite difference of the op itself
        checked_op += 1
        if shown is not None:
            _close(_finite_difference(fn, values, row["input"]) if row["input"] in values else shown, shown,
                   f"{kind}: local d u/d {row['input']} against finite differences")
        if row["input"] in values:
            fd = _finite_difference(fn, values, row["input"], upstream=_number(row["upstream"]).reshape(u.shape))
            _close(np.reshape(fd, -1), np.reshape(product, -1), f"{kind}: product against finite differences")
    assert checked_op == len(explain_module._LOCAL[kind]) or case == "div-compound"


@pytest.mark.parametrize("case", CASES)
def test_used_several_times_sums_and_gradients_match_autograd(case):
    kind, fn, values, leaves, u, w, out = _build(case)
    e = cr.viz.explain(out)
    text = e.to_text()
    for line in text.splitlines():
        m = re.fullmatch(r"(\S+) is used (\d+) times: df/d\1 = (.+) = (\S+|\[.*\])", line)
        if m:
            parts = [_number(p) for p in m.group(3).split(" + ")]
            assert len(parts) == int(m.group(2))
            _close(sum(parts), _number(m.group(4)), line)
    grads_line = text.splitlines()[-1]
    assert grads_line.startswith("Gradients: ")
    printed = dict(re.findall(r"df/d(\w+) = (\[[^\]]*\]|[^,\s]+)", grads_line))
    out.backward()
    for name, t in {**leaves, "w": w}.items():
        _close(_number(printed[name]), np.reshape(t.grad.numpy(), -1) if t.grad.numpy().size > 1
               else t.grad.numpy(), f"df/d{name}")


# ---- the LaTeX of to_markdown() ------------------------------------------------------------------------

def _brace_group(s: str, i: int) -> tuple[str, int]:
    """The text inside the brace group opening at s[i] == '{', and the index after it."""
    assert s[i] == "{", s[i:]
    depth = 0
    for j in range(i, len(s)):
        depth += {"{": 1, "}": -1}.get(s[j], 0)
        if depth == 0:
            return s[i + 1:j], j + 1
    raise ValueError(f"unbalanced braces in {s!r}")


def _latex_python(tex: str, matrices: bool) -> str:
    """The subset of LaTeX that explain writes, as a Python expression."""
    s = tex.replace(r"\textstyle\sum_\text{batch} \text{upstream}", "upstream.sum(0)")
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)  # \text{upstream}, \text{cast(u)}: labels
    s = s.replace(r"^\top", ".T")
    s = s.replace(r"\cdot", " @ " if matrices else "*").replace(r"\,", "*")
    s = s.replace(r"\operatorname{sign}", "sign").replace(r"\sigma", "sigmoid")
    s = re.sub(r"\\tanh\^2\(([^()]*)\)", r"tanh(\1)**2", s)
    s = re.sub(r"\\ln\s*([A-Za-z0-9.]+)", r"*ln(\1)", s)
    s = re.sub(r"\\mathbb\{1\}\[([^\]]*)\]", r"(\1)", s)
    s = re.sub(r"(?<=[0-9}])\\sqrt", "*sqrt", s)
    s = s.replace("\\", "")
    while "frac{" in s:
        i = s.index("frac{")
        num, j = _brace_group(s, i + 4)
        den, k = _brace_group(s, j)
        s = s[:i] + f"(({num})/({den}))" + s[k:]
    s = re.sub(r"(?<![A-Za-z0-9_.)])e\^\{", "exp{", s)
    s = s.replace("^", "**")
    return s.replace("{", "(").replace("}", ")")


def _markdown_rows(md: str) -> list[list[str]]:
    rows = []
    for line in md.splitlines():
        if re.match(r"\| \d+ \|", line):
            rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def _dollars(cell: str) -> str:
    assert cell.startswith("$") and cell.endswith("$"), cell
    return cell[1:-1]


def _tex_number(text: str):
    return _number(text.replace(r"\mathrm{e}{-}", "e-").replace(r"\mathrm{e}{+}", "e+"))


@pytest.mark.parametrize("case", CASES)
def test_latex_formulas_match_the_numbers_they_show(case):
    kind, fn, values, leaves, u, w, out = _build(case)
    e = cr.viz.explain(out)
    rows = _markdown_rows(e.to_markdown())
    assert len(rows) == len(e.steps)
    ns = _namespace(values, u)
    for cells, step in zip(rows, e.steps):
        index, node, op, input_, upstream, local, product, rule = cells
        ns["n"] = np.size(ns.get(step.input, 1))
        upstream, product = _tex_number(_dollars(upstream)), _tex_number(_dollars(product))
        tex, _, number = _dollars(local).rpartition(" = ")
        if step.local is None:  # a Jacobian: the formula applied to upstream gives the product
            tex = _dollars(local)
            node_shape = u.shape if step.output == "u" else np.shape(step.upstream)
            value = _evaluate(_latex_python(tex, matrices=True),
                              {**ns, "upstream": np.asarray(upstream).reshape(node_shape)})
            if "upstream" not in tex:
                value = np.sum(np.asarray(upstream).reshape(node_shape) * value)
            _close(value.reshape(-1), np.reshape(product, -1), f"{step.input}: ${tex}$")
            assert rule.endswith(f"= {_dollars(cells[6])}$")
            continue
        shown = _tex_number(number) if tex else _tex_number(_dollars(local))
        formula = tex or _dollars(local)
        _close(_evaluate(_latex_python(formula, matrices=False), ns), shown, f"${formula}$ = {number}")
        _close(np.asarray(upstream) * shown, product, "upstream x local = product")
        # the chain-rule cell: "... = upstream \cdot local = product"
        m = re.search(r"= ([^=]+) \\cdot \(?([^=]+?)\)? = ([^=]+)\$$", rule)
        assert m, rule
        _close(_tex_number(m.group(1)) * _tex_number(m.group(2)), _tex_number(m.group(3)), rule)
        _close(_tex_number(m.group(3)), product, rule)
