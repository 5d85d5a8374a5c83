"""``draw_graph``: the computational graph with each node's value and gradient, as SVG, PNG or DOT."""

from __future__ import annotations

import os
import warnings

from . import _render
from .graph import Graph, build_graph, group_label, module_groups, op_kind


class GraphDrawing:
    """A drawn graph: ``.source`` (DOT text), ``.save(path)`` (.svg, .png or .dot), ``.pipe(fmt)``
    (bytes), and inline display in Jupyter (``_repr_svg_``). ``.graph`` holds the nodes as data."""

    def __init__(self, graph: Graph, drawing: _render.Drawing):
        self.graph = graph
        self.drawing = drawing

    @property
    def source(self) -> str:
        return _render.to_dot(self.drawing)

    @property
    def engine(self) -> str:
        """What renders SVG and PNG here: a dot program's path, or ``'matplotlib'``."""
        return _render.find_engine()

    def pipe(self, format: str = "svg", engine: str | None = None) -> bytes:  # noqa: A002
        return _render.render(self.drawing, format, engine)

    def save(self, path, format: str | None = None, engine: str | None = None) -> str:  # noqa: A002
        """Write the drawing; the format comes from the extension unless given."""
        path = os.fspath(path)
        fmt = (format or os.path.splitext(path)[1].lstrip(".")).lower()
        if fmt not in ("svg", "png", "dot", "gv"):
            raise ValueError(f"draw_graph: can't save {path!r}; use a .svg, .png or .dot file name")
        data = self.pipe("dot" if fmt == "gv" else fmt, engine)
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def _repr_svg_(self) -> str:
        return self.pipe("svg").decode()

    def __repr__(self) -> str:
        return f"<GraphDrawing: {len(self.graph.values)} values, {len(self.graph.ops)} ops>"


def draw_graph(output, values: bool = True, grads: bool = True, group_modules: bool = False,
               max_nodes: int | None = 300, params=None, model=None, title: str | None = None,
               rankdir: str = "auto") -> GraphDrawing:
    """Draw the graph that computed ``output``: value nodes (name, shape, value, gradient) and op nodes.

    - ``params``: a dict name -> tensor (``dict(model.named_parameters())``), or ``model=``, names the
      parameters; other tensors are shown by ``Tensor.name`` (unnamed results of an op on named inputs
      get a short expression such as ``x+y``).
    - ``grads``: each value's ``d(output)/d(value)`` (for a non-scalar output, of its sum), computed
      for intermediate values too by one extra pass of ``cr.grad``; ``.grad`` is not touched.
    - ``group_modules``: collapse the ops of each layer into one box labelled with the layer (run the
      forward inside ``cr.viz.trace_modules(model)``; without it ops are matched to layers through
      the parameters of ``model``).
    - ``max_nodes``: draw at most this many nodes, the ones nearest the output (None: no limit).
    - ``rankdir``: ``"LR"`` (inputs on the left), ``"TB"`` (inputs at the top) or ``"auto"`` (LR, TB
      for long chains).

    >>> x, y, z = (cr.tensor(v, requires_grad=True, name=n) for v, n in ((1., "x"), (-3., "y"), (4., "z")))
    >>> cr.viz.draw_graph((x + y) * z).save("graph.svg")
    """
    graph = build_graph(output, params=params, model=model, grads=grads, max_nodes=max_nodes)
    groups = module_groups(graph, model) if group_modules else {}
    if group_modules and not groups:
        warnings.warn("draw_graph: no module information for group_modules=True; run the forward inside "
                      "`with cr.viz.trace_modules(model):` or pass model=", stacklevel=2)
    if rankdir not in ("auto", "LR", "TB"):
        raise ValueError(f"draw_graph: rankdir must be 'auto', 'LR' or 'TB', got {rankdir!r}")
    drawing = _drawing(graph, values, grads, groups, title)
    if rankdir == "auto":
        rankdir = "TB" if _render.depth(drawing) > 12 else "LR"
    drawing.rankdir = rankdir
    return GraphDrawing(graph, drawing)


def _drawing(graph: Graph, values: bool, grads: bool, groups: dict, title) -> _render.Drawing:
    outputs = {id(v) for v in graph.outputs}
    group_of = {}
    for i, (key, ops) in enumerate(groups.items()):
        for op in ops:
            group_of[id(op)] = (f"g{i}", key, ops)
    hidden = set()
    for v in graph.values:
        p = v.producer
        if p is None or id(p) not in group_of or id(v) in outputs:
            continue
        g = group_of[id(p)][0]
        if v.consumers and all(group_of.get(id(c), ("",))[0] == g for c in v.consumers):
            hidden.add(id(v))

    nodes, edges, seen_edges = [], [], set()
    edge_labels, ordered = {}, []

    def edge(a, b):
        if (a, b) not in seen_edges:
            seen_edges.add((a, b))
            edges.append((a, b))

    for v in graph.values:
        if id(v) in hidden:
            continue
        kind = "output" if id(v) in outputs else v.kind
        nodes.append(_render.DrawNode(v.key, v.lines(values, grads), kind))
    drawn_groups = set()
    for op in graph.ops:
        g = group_of.get(id(op))
        if g is None:
            nodes.append(_render.DrawNode(op.key, [op.label], "function"))
            target = op.key
        else:
            target, key, ops = g
            if target not in drawn_groups:
                drawn_groups.add(target)
                labels = list(dict.fromkeys(o.label for o in ops))
                summary = ", ".join(labels[:4]) + (", ..." if len(labels) > 4 else "")
                label = group_label(key)
                label = label if len(label) <= 48 else label[:45] + "..."
                nodes.append(_render.DrawNode(target, [label, f"ops: {summary}"], "module"))
        for v in op.inputs:
            if id(v) not in hidden:
                edge(v.key, target)
        roles = _OPERAND_ROLES.get(op_kind(op.fn)) if g is None else None
        if roles and len(op.inputs) == len(roles) and op.inputs[0] is not op.inputs[1]:
            ordered.append([v.key for v in op.inputs])
            for v, role in zip(op.inputs, roles):
                edge_labels[(v.key, target)] = role
        if id(op.output) not in hidden:
            edge(target, op.output.key)
    for i, v in enumerate(graph.truncated):
        key = f"more{i}"
        nodes.append(_render.DrawNode(key, ["...", "(history not drawn:", "max_nodes)"], "more"))
        edge(key, v.key)
    if graph.omitted and not graph.truncated:
        nodes.append(_render.DrawNode("more", [f"... {graph.omitted} more ops not drawn"], "more"))
    return _render.Drawing(nodes, edges, title, edge_labels=edge_labels, ordered=ordered)


# Ops whose operands are not interchangeable: their edges say which is which.
_OPERAND_ROLES = {"div": ("numerator", "denominator"), "sub": ("minuend", "subtrahend"), "pow": ("base", "exponent")}
