"""chainrule against PyTorch: the op table's values and gradients, broadcasting and reduction
properties, random composite expressions, and the dtype promotion rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_ops_gradcheck import IDS, OPS, SMOOTH, make_inputs

import chainrule as cr

torch = pytest.importorskip("torch")
F = torch.nn.functional


class _TorchNamespace:
    """``torch`` under the names the op table uses (``pad`` and ``linear`` live in torch.nn.functional)."""

    pad = staticmethod(F.pad)
    linear = staticmethod(F.linear)

    def __getattr__(self, name):
        return getattr(torch, name)


tm = _TorchNamespace()


def _outputs(out) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _to_torch(xs) -> list:
    return [torch.tensor(x.detach().numpy(), requires_grad=True) for x in xs]


def _upstream(outs, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(o.shape) for o in outs]


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_values_and_gradients_match_torch(op):
    xs = make_inputs(op)
    txs = _to_torch(xs)
    outs, touts = _outputs(op.fn(cr, *xs)), _outputs(op.fn(tm, *txs))
    assert len(outs) == len(touts)
    for o, t in zip(outs, touts):
        assert o.shape == tuple(t.shape)
        assert o.dtype == cr.float64
        np.testing.assert_allclose(o.detach().numpy(), t.detach().numpy(), rtol=1e-10, atol=1e-12)
    ups = _upstream(outs, seed=3)
    grads = cr.grad(outs, xs, grad_outputs=[cr.tensor(u) for u in ups])
    tgrads = torch.autograd.grad(touts, txs, grad_outputs=[torch.tensor(u) for u in ups])
    for g, tg in zip(grads, tgrads):
        np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("op", SMOOTH, ids=[op.name for op in SMOOTH])
def test_second_derivatives_match_torch(op):
    """The gradient of <upstream, J v>: a Hessian-vector product, compared with PyTorch's."""
    xs = make_inputs(op, seed=2)
    txs = _to_torch(xs)
    outs, touts = _outputs(op.fn(cr, *xs)), _outputs(op.fn(tm, *txs))
    ups = _upstream(outs, seed=4)
    rng = np.random.default_rng(5)
    dirs = [rng.standard_normal(x.shape) for x in xs]
    grads = cr.grad(outs, xs, grad_outputs=[cr.tensor(u) for u in ups], create_graph=True)
    tgrads = torch.autograd.grad(touts, txs, grad_outputs=[torch.tensor(u) for u in ups], create_graph=True)
    s = sum((g * cr.tensor(d)).sum() for g, d in zip(grads, dirs))
    ts = sum((g * torch.tensor(d)).sum() for g, d in zip(tgrads, dirs))
    # For linear ops the second derivative is zero and either side may have no graph left.
    hv = cr.grad(s, xs, allow_unused=True) if s.requires_grad else [None] * len(xs)
    thv = torch.autograd.grad(ts, txs, allow_unused=True) if ts.requires_grad else [None] * len(xs)
    for x, h, th in zip(xs, hv, thv):
        h = np.zeros(x.shape) if h is None else h.numpy()
        th = np.zeros(x.shape) if th is None else th.numpy()
        np.testing.assert_allclose(h, th, rtol=1e-8, atol=1e-10)


# ---- broadcasting and reductions: hypothesis properties ------------------------------------------
@st.composite
def broadcastable_pair(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4))
    a_shape, b_shape = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, base_shape=shape, max_side=4)).input_shapes
    elements = st.floats(-3, 3, allow_nan=False, width=64)
    a = draw(hnp.arrays(np.float64, a_shape, elements=elements))
    b = draw(hnp.arrays(np.float64, b_shape, elements=st.floats(0.5, 3, width=64)))
    return a, b


@settings(max_examples=40, deadline=None, derandomize=True)
@given(pair=broadcastable_pair(), op=st.sampled_from(["add", "sub", "mul", "div", "maximum"]))
def test_broadcast_binary_ops_match_torch(pair, op):
    a, b = pair
    x, y = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out, tout = getattr(cr, op)(x, y), getattr(torch, op)(tx, ty)
    assert out.shape == tuple(tout.shape) == np.broadcast_shapes(a.shape, b.shape)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-12)
    up = np.random.default_rng(0).standard_normal(out.shape)
    (out * cr.tensor(up)).sum().backward()
    (tout * torch.tensor(up)).sum().backward()
    assert x.grad.shape == a.shape and y.grad.shape == b.shape
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-10, atol=1e-12)


# Values whose squares underflow (|v| < 1e-154) are left out: norm squares, as NumPy does.
_VALUES = st.floats(-3, 3, allow_nan=False, width=64).filter(lambda v: v == 0 or abs(v) > 1e-100)


@st.composite
def array_and_dims(draw):
    a = draw(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=4),
                        elements=_VALUES))
    nd = a.ndim
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        dim = None
    elif kind == "int":
        dim = draw(st.integers(-nd, nd - 1))
    else:
        dim = tuple(draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True)))
    return a, dim, draw(st.booleans())


def _reduce(lib, name, x, dim, keepdim):
    fn = getattr(lib, name)
    if lib is torch and name == "norm":
        fn = torch.linalg.vector_norm  # torch.norm reads a 3-tuple dim as a matrix norm
    all_dims = tuple(range(x.ndim))
    if dim is None and (keepdim or name in ("logsumexp", "amax")):
        return fn(x, dim=all_dims, keepdim=keepdim)
    if dim is None:
        return fn(x)
    return fn(x, dim=dim, keepdim=keepdim)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(case=array_and_dims(), name=st.sampled_from(["sum", "mean", "var", "std", "logsumexp", "amax", "norm"]))
def test_reductions_match_torch(case, name):
    a, dim, keepdim = case
    if name in ("var", "std"):  # unbiased: needs at least two elements reduced
        n = a.size if dim is None else int(np.prod([a.shape[d] for d in np.atleast_1d(dim)]))
        assume(n >= 2)
    x, tx = cr.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    out, tout = _reduce(cr, name, x, dim, keepdim), _reduce(torch, name, tx, dim, keepdim)
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    up = np.random.default_rng(1).standard_normal(out.shape)
    (out * cr.tensor(up)).sum().backward()
    (tout * torch.tensor(up)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-10)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(case=array_and_dims(), largest=st.booleans())
def test_max_min_with_dim_give_values_and_indices_like_torch(case, largest):
    a, dim, keepdim = case
    dim = 0 if not isinstance(dim, int) else dim
    a = a + np.arange(a.size).reshape(a.shape) * 1e-3  # no ties: indices are then unique
    fn = "max" if largest else "min"
    values, indices = getattr(cr, fn)(cr.tensor(a), dim, keepdim)
    tvalues, tindices = getattr(torch, fn)(torch.tensor(a), dim, keepdim)
    np.testing.assert_array_equal(values.numpy(), tvalues.numpy())
    np.testing.assert_array_equal(indices.numpy(), tindices.numpy())
    assert indices.dtype == cr.int64
    np.testing.assert_array_equal(cr.argmax(cr.tensor(a), dim, keepdim).numpy(),
                                  torch.argmax(torch.tensor(a), dim, keepdim).numpy())
    np.testing.assert_array_equal(cr.argmin(cr.tensor(a), dim).numpy(), torch.argmin(torch.tensor(a), dim).numpy())


# ---- random composite expressions --------------------------------------------------------------
UNARY = [
    lambda m, a: m.tanh(a),
    lambda m, a: m.sigmoid(a),
    lambda m, a: m.exp(a * 0.3),
    lambda m, a: m.log(a * a + 1.0),
    lambda m, a: m.sqrt(a * a + 0.5),
    lambda m, a: m.sin(a),
    lambda m, a: a.softmax(dim=-1),
    lambda m, a: a - a.mean(dim=0, keepdim=True),
    lambda m, a: a / (a.norm(dim=-1, keepdim=True) + 1.0),
    lambda m, a: a.T.reshape(a.shape),
    lambda m, a: a**2 * 0.5,
]
BINARY = [
    lambda m, a, b: a + b,
    lambda m, a, b: a * b,
    lambda m, a, b: a - 2.0 * b,
    lambda m, a, b: a / (b * b + 1.0),
    lambda m, a, b: a @ b.T @ b * 0.1,
    lambda m, a, b: m.where(a > b, a, b * 0.5),
    lambda m, a, b: m.cat([a, b], dim=1)[:, 1:5],
]


def _random_expression(seed: int):
    """A random program over two 4x4 inputs: a list of steps reusing earlier values (a DAG)."""
    rng = np.random.default_rng(seed)
    steps = []
    for _ in range(int(rng.integers(4, 12))):
        if rng.random() < 0.5:
            steps.append(("u", int(rng.integers(len(UNARY))), int(rng.integers(1 << 30))))
        else:
            steps.append(("b", int(rng.integers(len(BINARY))), int(rng.integers(1 << 30)), int(rng.integers(1 << 30))))

    def run(m, x, y):
        values = [x, y]
        for step in steps:
            if step[0] == "u":
                values.append(UNARY[step[1]](m, values[step[2] % len(values)]))
            else:
                a, b = values[step[2] % len(values)], values[step[3] % len(values)]
                values.append(BINARY[step[1]](m, a, b))
        return (values[-1] * values[-1]).sum() + values[-2].sum()

    return run


@pytest.mark.parametrize("seed", range(25))
def test_random_composite_expressions_match_torch(seed):
    run = _random_expression(seed)
    rng = np.random.default_rng(seed + 100)
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    x, y = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out, tout = run(cr, x, y), run(torch, tx, ty)
    np.testing.assert_allclose(out.item(), tout.item(), rtol=1e-9)
    out.backward()
    tout.backward()
    for t, tt in ((x, tx), (y, ty)):
        if tt.grad is None:  # the expression happened not to use this input
            assert t.grad is None
        else:
            np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-8, atol=1e-10)


# ---- dtype promotion ---------------------------------------------------------------------------
def _pair(data, dtype):
    return cr.tensor(data, dtype=getattr(cr, dtype)), torch.tensor(data, dtype=getattr(torch, dtype))


PROMOTION_CASES = [
    ("float32 * python float", lambda a, b: a * 2.5, "float32", None),
    ("python float * float32", lambda a, b: 2.5 * a, "float32", None),
    ("float32 + python int", lambda a, b: a + 3, "float32", None),
    ("int64 * python float", lambda a, b: a * 2.5, "int64", None),
    ("int64 + python int", lambda a, b: a + 1, "int64", None),
    ("int64 / int64", lambda a, b: a / b, "int64", "int64"),
    ("int64 / python int", lambda a, b: a / 2, "int64", None),
    ("int32 + int64", lambda a, b: a + b, "int32", "int64"),
    ("float32 * float64", lambda a, b: a * b, "float32", "float64"),
    ("int64 * float32", lambda a, b: a * b, "int64", "float32"),
    ("bool + bool", lambda a, b: a + b, "bool", "bool"),
    ("bool * python float", lambda a, b: a * 1.5, "bool", None),
    ("int64 ** python float", lambda a, b: a**0.5, "int64", None),
    ("float32 ** int64", lambda a, b: a**b, "float32", "int64"),
    ("exp(int64)", lambda a, b: a.exp(), "int64", None),
    ("sum(int32)", lambda a, b: a.sum(), "int32", None),
    ("sum(bool)", lambda a, b: a.sum(), "bool", None),
    ("float32 > python float", lambda a, b: a > 0.5, "float32", None),
    ("float16 * python float", lambda a, b: a * 2.5, "float16", None),
]


@pytest.mark.parametrize("case", PROMOTION_CASES, ids=[c[0] for c in PROMOTION_CASES])
def test_dtype_promotion_matches_torch(case):
    _, fn, da, db = case
    a, ta = _pair([1, 2, 3], da)
    b, tb = _pair([2, 1, 2], db) if db else (None, None)
    out, tout = fn(a, b), fn(ta, tb)
    assert str(out.dtype) == str(tout.dtype).replace("torch.", "")
    np.testing.assert_allclose(out.numpy().astype(np.float64), tout.numpy().astype(np.float64), rtol=1e-3)


def test_zero_dim_tensor_does_not_promote_a_higher_dim_tensor_of_the_same_category():
    a, ta = _pair([1.0, 2.0], "float32")
    s, ts = cr.tensor(3.0, dtype=cr.float64), torch.tensor(3.0, dtype=torch.float64)
    assert (a * s).dtype == cr.float32 and (ta * ts).dtype == torch.float32
    i, ti = _pair([1, 2], "int32")
    assert str((i * s).dtype) == str((ti * ts).dtype).replace("torch.", "") == "float64"


def test_arange_and_creation_dtypes_match_torch():
    assert cr.arange(5).dtype == cr.int64 and torch.arange(5).dtype == torch.int64
    assert cr.arange(0, 1, 0.25).dtype == cr.float32
    np.testing.assert_array_equal(cr.arange(0, 1, 0.25).numpy(), torch.arange(0, 1, 0.25).numpy())
    np.testing.assert_array_equal(cr.arange(2, 11, 3).numpy(), torch.arange(2, 11, 3).numpy())
    assert cr.tensor([1.0, 2.0]).dtype == cr.float32
    assert cr.tensor([1, 2]).dtype == cr.int64
    assert cr.tensor([True]).dtype == cr.bool
    assert cr.full((2,), 7).dtype == cr.int64 and cr.full((2,), 7.0).dtype == cr.float32
    assert cr.zeros(2, 3).dtype == cr.float32
    np.testing.assert_allclose(cr.linspace(0, 1, 5).numpy(), torch.linspace(0, 1, 5).numpy())


def test_var_and_std_are_unbiased_by_default_like_torch():
    data = [[1.0, 2.0, 4.0], [0.5, -1.0, 3.0]]
    x, tx = cr.tensor(data), torch.tensor(data)
    np.testing.assert_allclose(x.var().item(), tx.var().item(), rtol=1e-6)
    np.testing.assert_allclose(x.std(dim=1).numpy(), tx.std(dim=1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.var(unbiased=False).item(), tx.var(unbiased=False).item(), rtol=1e-6)
    np.testing.assert_allclose(cr.var(x, dim=0, correction=0).numpy(),
                               torch.var(tx, dim=0, correction=0).numpy(), rtol=1e-6)
    assert x.var().item() == pytest.approx(np.var(data, ddof=1), rel=1e-6)


KINKS = [
    ("relu", lambda m, a: m.relu(a)),
    ("abs", lambda m, a: m.abs(a)),
    ("clamp", lambda m, a: m.clamp(a, min=0.0, max=1.0)),
    ("maximum_ties", lambda m, a: m.maximum(a, m.ones_like(a))),
    ("minimum_ties", lambda m, a: m.minimum(a, m.zeros_like(a))),
    ("max_ties", lambda m, a: a.max()),
    ("amax_ties", lambda m, a: m.amax(a.reshape(2, 3), dim=1)),
    ("max_dim_ties", lambda m, a: a.reshape(2, 3).max(dim=1)[0]),
    ("norm_zero", lambda m, a: (a * 0.0).norm()),
    ("std_constant", lambda m, a: (a * 0.0 + 2.0).std()),
    ("where_nan_free", lambda m, a: m.where(a > 0, a, a * 2.0)),
]


@pytest.mark.parametrize("case", KINKS, ids=[k[0] for k in KINKS])
def test_subgradients_at_kinks_and_ties_match_torch(case):
    """At 0 and at ties the derivative is a convention: the same one as PyTorch's."""
    _, fn = case
    data = [0.0, 1.0, 1.0, -1.0, 0.0, 0.5]
    x, tx = cr.tensor(data, dtype=cr.float64, requires_grad=True), torch.tensor(data, dtype=torch.float64,
                                                                                requires_grad=True)
    fn(cr, x).sum().backward()
    fn(torch, tx).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


@st.composite
def matmul_operands(draw):
    n, k, m = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    batch = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    ba, bb = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, base_shape=batch, max_side=3)).input_shapes
    a_shape = (k,) if draw(st.booleans()) and not ba else ba + (n, k)
    b_shape = (k,) if draw(st.booleans()) and not bb else bb + (k, m)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return rng.standard_normal(a_shape), rng.standard_normal(b_shape)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(operands=matmul_operands())
def test_matmul_with_vectors_and_broadcast_batches_matches_torch(operands):
    a, b = operands
    x, y = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out, tout = x @ y, tx @ ty
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    up = np.random.default_rng(0).standard_normal(out.shape)
    (out * cr.tensor(up)).sum().backward()
    (tout * torch.tensor(up)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), ty.grad.numpy(), rtol=1e-10, atol=1e-12)
