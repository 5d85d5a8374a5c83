"""One table of ops drives gradcheck (float64), second derivatives and the PyTorch comparison.

Each row is ``Op(name, fn, inputs, smooth)``: ``fn(m, *xs)`` computes the op through the namespace
``m`` (``chainrule`` here, a torch shim in ``test_ops_torch.py``) using names both libraries share;
``inputs(rng)`` draws the float64 arrays that require grad. Adding an op means adding a row.
``smooth`` rows are also checked for second derivatives. Non-smooth ops draw inputs away from
their kinks and ties, where the derivative is well defined.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest

import chainrule as cr


class Op(NamedTuple):
    name: str
    fn: Callable
    inputs: Callable
    smooth: bool = True


def normal(*shapes):
    """Standard normal inputs of the given shapes."""
    return lambda rng: [rng.standard_normal(s) for s in shapes]


def positive(*shapes):
    """Inputs in [0.5, 2]: inside the domain of log, sqrt, x ** 0.5, ..."""
    return lambda rng: [rng.uniform(0.5, 2.0, s) for s in shapes]


def away(*shapes):
    """Nonzero, distinct values at least 0.1 apart: no kinks (|x|, relu) and no ties (max)."""

    def draw(rng):
        sizes = [int(np.prod(s)) for s in shapes]
        total = sum(sizes)
        grid = (rng.permutation(total) - total / 2 + 0.5) * 0.2 + 0.05
        bounds = np.cumsum([0, *sizes])
        return [grid[lo:hi].reshape(s) for lo, hi, s in zip(bounds[:-1], bounds[1:], shapes)]

    return draw


MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, False, True]])
IDX = np.array([2, 0, 2, 1])
GATHER_IDX = np.array([[0, 3], [2, 2], [1, 0]])
GATHER_IDX_DIM0 = np.array([[0, 2, 1, 2], [2, 0, 0, 1]])

OPS = [
    # arithmetic, with broadcasting on either side and Python numbers
    Op("add", lambda m, a, b: a + b, normal((3, 4), (3, 4))),
    Op("add_broadcast", lambda m, a, b: a + b, normal((2, 3, 4), (3, 1))),
    Op("add_scalar", lambda m, a: 2.5 + a, normal((3,))),
    Op("add_alpha", lambda m, a, b: m.add(a, b, alpha=0.5), normal((3, 4), (4,))),
    Op("sub", lambda m, a, b: a - b, normal((3, 4), (3, 4))),
    Op("sub_broadcast", lambda m, a, b: a - b, normal((4,), (3, 1))),
    Op("rsub_scalar", lambda m, a: 1.0 - a, normal((3,))),
    Op("mul", lambda m, a, b: a * b, normal((3, 4), (3, 4))),
    Op("mul_broadcast", lambda m, a, b: a * b, normal((2, 1, 4), (3, 1))),
    Op("mul_scalar", lambda m, a: a * -1.5, normal((3, 2))),
    Op("div", lambda m, a, b: a / b, lambda rng: [rng.standard_normal((3, 4)), rng.uniform(0.5, 2, (3, 4))]),
    Op("div_broadcast", lambda m, a, b: a / b, lambda rng: [rng.standard_normal((3, 4)), rng.uniform(0.5, 2, (4,))]),
    Op("rdiv_scalar", lambda m, a: 2.0 / a, positive((3,))),
    Op("neg", lambda m, a: -a, normal((3, 4))),
    Op("pow_int", lambda m, a: a**3, normal((3, 4))),
    Op("pow_square", lambda m, a: a**2, normal((5,))),
    Op("pow_fraction", lambda m, a: a**0.5, positive((3, 4))),
    Op("pow_negative", lambda m, a: a**-2, positive((4,))),
    Op("rpow_scalar", lambda m, a: 2.0**a, normal((3, 4))),
    Op("pow_tensor", lambda m, a, b: a**b, lambda rng: [rng.uniform(0.5, 2, (3, 4)), rng.standard_normal((4,))]),
    Op("reciprocal", lambda m, a: m.reciprocal(a), positive((3, 4))),
    Op("rsqrt", lambda m, a: m.rsqrt(a), positive((3, 4))),
    Op("square", lambda m, a: m.square(a), normal((3, 4))),
    # matmul: vectors, matrices, batches (broadcast)
    Op("matmul_mm", lambda m, a, b: a @ b, normal((3, 4), (4, 2))),
    Op("matmul_vv", lambda m, a, b: a @ b, normal((4,), (4,))),
    Op("matmul_mv", lambda m, a, b: a @ b, normal((3, 4), (4,))),
    Op("matmul_vm", lambda m, a, b: a @ b, normal((3,), (3, 4))),
    Op("matmul_batched", lambda m, a, b: m.matmul(a, b), normal((2, 3, 4), (2, 4, 2))),
    Op("matmul_batch_broadcast", lambda m, a, b: a @ b, normal((2, 1, 3, 4), (3, 4, 2))),
    Op("matmul_batch_matrix", lambda m, a, b: a @ b, normal((2, 3, 4), (4, 2))),
    Op("matmul_vector_batch", lambda m, a, b: a @ b, normal((4,), (2, 4, 3))),
    # unary math
    Op("abs", lambda m, a: m.abs(a), away((3, 4)), smooth=False),
    Op("exp", lambda m, a: m.exp(a), normal((3, 4))),
    Op("log", lambda m, a: m.log(a), positive((3, 4))),
    Op("sqrt", lambda m, a: m.sqrt(a), positive((3, 4))),
    Op("sin", lambda m, a: m.sin(a), normal((3, 4))),
    Op("cos", lambda m, a: m.cos(a), normal((3, 4))),
    Op("tanh", lambda m, a: m.tanh(a), normal((3, 4))),
    Op("sigmoid", lambda m, a: m.sigmoid(a), normal((3, 4))),
    Op("sigmoid_large", lambda m, a: m.sigmoid(a * 20.0), normal((6,))),
    Op("relu", lambda m, a: m.relu(a), away((3, 4)), smooth=False),
    Op("clamp", lambda m, a: m.clamp(a, min=-0.35, max=0.45), away((3, 4)), smooth=False),
    Op("clamp_min", lambda m, a: a.clamp(min=0.05), away((3, 4)), smooth=False),
    Op("clamp_tensor_bounds", lambda m, a, lo: m.clamp(a, min=lo), away((3, 4), (4,)), smooth=False),
    Op("maximum", lambda m, a, b: m.maximum(a, b), away((3, 4), (3, 4)), smooth=False),
    Op("maximum_broadcast", lambda m, a, b: m.maximum(a, b), away((3, 4), (4,)), smooth=False),
    Op("minimum", lambda m, a, b: m.minimum(a, b), away((3, 4), (3, 1)), smooth=False),
    Op("where", lambda m, a, b: m.where(m.as_tensor(MASK), a, b), normal((3, 4), (4,))),
    Op("where_scalar", lambda m, a: m.where(a > 0, a, 0.0), away((3, 4)), smooth=False),
    # reductions: dim int / tuple / None, keepdim
    Op("sum", lambda m, a: a.sum(), normal((3, 4))),
    Op("sum_dim", lambda m, a: a.sum(dim=1), normal((3, 4))),
    Op("sum_dims_keepdim", lambda m, a: m.sum(a, dim=(0, 2), keepdim=True), normal((2, 3, 4))),
    Op("sum_negative_dim", lambda m, a: a.sum(dim=-1, keepdim=True), normal((2, 3, 4))),
    Op("mean", lambda m, a: a.mean(), normal((3, 4))),
    Op("mean_dim", lambda m, a: m.mean(a, dim=0), normal((3, 4))),
    Op("mean_dims", lambda m, a: a.mean(dim=(1, 2), keepdim=True), normal((2, 3, 4))),
    Op("var", lambda m, a: a.var(), normal((3, 4))),
    Op("var_dim", lambda m, a: m.var(a, dim=1), normal((3, 4))),
    Op("var_biased_keepdim", lambda m, a: a.var(dim=0, unbiased=False, keepdim=True), normal((3, 4))),
    Op("var_correction", lambda m, a: m.var(a, dim=(0, 1), correction=0), normal((3, 4, 2))),
    Op("std", lambda m, a: a.std(), normal((3, 4))),
    Op("std_dim", lambda m, a: m.std(a, dim=-1, keepdim=True), normal((3, 4))),
    Op("max_all", lambda m, a: a.max(), away((3, 4)), smooth=False),
    Op("max_dim", lambda m, a: a.max(dim=1)[0], away((3, 4)), smooth=False),
    Op("max_dim_keepdim", lambda m, a: m.max(a, dim=0, keepdim=True).values, away((3, 4)), smooth=False),
    Op("min_all", lambda m, a: m.min(a), away((3, 4)), smooth=False),
    Op("min_dim", lambda m, a: a.min(dim=-1).values, away((2, 3, 4)), smooth=False),
    Op("amax_dims", lambda m, a: m.amax(a, dim=(0, 2)), away((2, 3, 4)), smooth=False),
    Op("norm", lambda m, a: a.norm(), normal((3, 4))),
    Op("norm_dim", lambda m, a: m.norm(a, dim=1), normal((3, 4))),
    Op("norm_p1", lambda m, a: m.norm(a, p=1, dim=0), away((3, 4)), smooth=False),
    Op("norm_p3", lambda m, a: m.norm(a, p=3), positive((3, 4))),
    Op("logsumexp", lambda m, a: m.logsumexp(a, dim=1), normal((3, 4))),
    Op("logsumexp_dims_keepdim", lambda m, a: a.logsumexp(dim=(0, 1), keepdim=True), normal((3, 4, 2))),
    Op("softmax", lambda m, a: m.softmax(a, dim=1), normal((3, 4))),
    Op("softmax_dim0", lambda m, a: a.softmax(dim=0), normal((3, 4))),
    Op("log_softmax", lambda m, a: m.log_softmax(a, dim=-1), normal((3, 4))),
    Op("log_softmax_3d", lambda m, a: a.log_softmax(dim=1), normal((2, 3, 2))),
    Op("prod", lambda m, a: m.prod(a, dim=1), away((3, 4))),
    Op("cumsum", lambda m, a: m.cumsum(a, dim=1), normal((3, 4))),
    # shape
    Op("reshape", lambda m, a: a.reshape(4, -1), normal((2, 3, 2))),
    Op("view", lambda m, a: a.view(-1), normal((3, 4))),
    Op("flatten", lambda m, a: m.flatten(a, 1), normal((2, 3, 2))),
    Op("flatten_range", lambda m, a: a.flatten(0, 1), normal((2, 3, 2))),
    Op("squeeze", lambda m, a: a.squeeze(), normal((3, 1, 4, 1))),
    Op("squeeze_dim", lambda m, a: m.squeeze(a, 1), normal((3, 1, 4))),
    Op("unsqueeze", lambda m, a: a.unsqueeze(-1), normal((3, 4))),
    Op("transpose", lambda m, a: m.transpose(a, 0, 2), normal((2, 3, 4))),
    Op("permute", lambda m, a: a.permute(2, 0, 1), normal((2, 3, 4))),
    Op("T", lambda m, a: a.T, normal((3, 4))),
    Op("expand", lambda m, a: a.expand(2, 3, 4), normal((3, 1))),
    Op("expand_keep", lambda m, a: a.expand(-1, 4), normal((3, 1))),
    Op("cat", lambda m, a, b: m.cat([a, b], dim=1), normal((3, 2), (3, 4))),
    Op("cat_dim0", lambda m, a, b, c: m.cat([a, b, c]), normal((1, 3), (2, 3), (3, 3))),
    Op("stack", lambda m, a, b: m.stack([a, b], dim=1), normal((3, 4), (3, 4))),
    Op("split", lambda m, a: m.split(a, 2, dim=1), normal((3, 5))),
    Op("split_sizes", lambda m, a: a.split([1, 3], dim=1), normal((3, 4))),
    Op("chunk", lambda m, a: m.chunk(a, 3, dim=0), normal((5, 2))),
    Op("pad_constant", lambda m, a: m.pad(a, (1, 2)), normal((3, 4))),
    Op("pad_two_dims", lambda m, a: m.pad(a, (1, 0, 2, 1), value=0.5), normal((2, 3, 4))),
    Op("pad_reflect", lambda m, a: m.pad(a, (2, 1), mode="reflect"), normal((2, 2, 4))),
    Op("pad_replicate", lambda m, a: m.pad(a, (1, 2), mode="replicate"), normal((2, 2, 4))),
    Op("pad_circular", lambda m, a: m.pad(a, (1, 2), mode="circular"), normal((2, 2, 4))),
    Op("flip", lambda m, a: m.flip(a, (0, 1)), normal((3, 4))),
    Op("repeat", lambda m, a: a.repeat(2, 1, 3), normal((3, 2))),
    Op("unflatten", lambda m, a: m.unflatten(a, 1, (2, 3)), normal((2, 6))),
    Op("movedim", lambda m, a: m.movedim(a, 0, 2), normal((2, 3, 4))),
    Op("narrow", lambda m, a: m.narrow(a, 1, 1, 2), normal((3, 4))),
    Op("select", lambda m, a: m.select(a, 1, -1), normal((3, 4))),
    Op("unbind", lambda m, a: m.unbind(a, 1), normal((3, 4))),
    Op("tile", lambda m, a: m.tile(a, (2,)), normal((3, 2))),
    Op("swapaxes", lambda m, a: m.swapaxes(a, 0, 1), normal((3, 4))),
    Op("t", lambda m, a: m.t(a), normal((3, 4))),
    Op("broadcast_to", lambda m, a: m.broadcast_to(a, (2, 3, 4)), normal((4,))),
    Op("clone", lambda m, a: a.clone() * 2.0, normal((3, 4))),
    # indexing
    Op("index_int", lambda m, a: a[1], normal((3, 4))),
    Op("index_slice", lambda m, a: a[1:, ::2], normal((3, 4))),
    Op("index_negative_step_free", lambda m, a: a[-2:, 1:3], normal((3, 4))),
    Op("index_none_ellipsis", lambda m, a: a[None, ..., 0], normal((2, 3, 4))),
    Op("index_int_array", lambda m, a: a[m.as_tensor(IDX)], normal((3, 4))),
    Op("index_mixed_arrays", lambda m, a: a[m.as_tensor(IDX[:3]), 1:], normal((3, 4))),
    Op("index_bool_mask", lambda m, a: a[m.as_tensor(MASK)], normal((3, 4))),
    Op("index_bool_rows", lambda m, a: a[m.as_tensor(MASK[:, 0])], normal((3, 4))),
    Op("gather", lambda m, a: m.gather(a, 1, m.as_tensor(GATHER_IDX)), normal((3, 4))),
    Op("gather_dim0", lambda m, a: a.gather(0, m.as_tensor(GATHER_IDX_DIM0)), normal((3, 4))),
    Op("index_select", lambda m, a: m.index_select(a, 1, m.as_tensor(IDX)), normal((3, 4))),
    Op("index_select_dim0", lambda m, a: a.index_select(0, m.as_tensor(IDX[:3])), normal((3, 4))),
    Op("masked_fill", lambda m, a: a.masked_fill(m.as_tensor(MASK), -1.5), normal((3, 4))),
    Op("take_along_dim", lambda m, a: m.take_along_dim(a, m.as_tensor(GATHER_IDX), 1), normal((3, 4))),
    # composites used by the layers
    Op("mm", lambda m, a, b: m.mm(a, b), normal((3, 4), (4, 2))),
    Op("bmm", lambda m, a, b: m.bmm(a, b), normal((2, 3, 4), (2, 4, 2))),
    Op("mv", lambda m, a, b: m.mv(a, b), normal((3, 4), (4,))),
    Op("dot", lambda m, a, b: m.dot(a, b), normal((4,), (4,))),
    Op("linear", lambda m, x, w, b: m.linear(x, w, b), normal((5, 3), (2, 3), (2,))),
    Op("linear_batched", lambda m, x, w: m.linear(x, w), normal((2, 4, 3), (2, 3))),
    Op("outer", lambda m, a, b: m.outer(a, b), normal((3,), (4,))),
]

IDS = [op.name for op in OPS]
SMOOTH = [op for op in OPS if op.smooth]


def make_inputs(op: Op, seed: int = 0) -> list:
    """The row's inputs as float64 chainrule tensors that require grad."""
    rng = np.random.default_rng(seed)
    return [cr.tensor(a, dtype=cr.float64, requires_grad=True) for a in op.inputs(rng)]


def run(op: Op, m, xs):
    return op.fn(m, *xs)


def test_table_names_are_unique():
    assert len(set(IDS)) == len(IDS)


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_gradcheck(op):
    xs = make_inputs(op)
    report = cr.gradcheck(lambda *a: run(op, cr, a), xs)
    assert report.ok


@pytest.mark.parametrize("op", SMOOTH, ids=[op.name for op in SMOOTH])
def test_second_derivatives(op):
    xs = make_inputs(op, seed=1)
    report = cr.gradgradcheck(lambda *a: run(op, cr, a), xs)
    assert report.ok


def test_gradcheck_reports_the_worst_mismatch():
    class WrongSquare(cr.Function):
        def forward(self, a):
            return a * a

        def backward(self, grad):
            (a,) = self.inputs
            return (grad * 3.0 * a,)  # should be 2a

    x = cr.tensor([1.0, -2.0, 0.5], dtype=cr.float64, requires_grad=True)
    with pytest.raises(cr.GradcheckError, match=r"gradient mismatch for input 0 at index \(1,\)"):
        cr.gradcheck(lambda a: WrongSquare().apply(a), [x])
    report = cr.gradcheck(lambda a: WrongSquare().apply(a), [x], raise_exception=False)
    assert not report.ok
    assert report.input_index == 0
    assert report.element == (1,)
    assert report.analytic == pytest.approx(1.5 * report.numerical, rel=1e-4)


def test_gradgradcheck_catches_a_wrong_second_derivative():
    class FirstOrderOnlyCube(cr.Function):
        """Right first derivative, but its backward is not differentiable (a constant)."""

        def forward(self, a):
            return a**3

        def backward(self, grad):
            (a,) = self.inputs
            return (grad * cr.tensor(3.0 * a._data**2),)

    x = cr.tensor([0.5, 1.5], dtype=cr.float64, requires_grad=True)
    assert cr.gradcheck(lambda a: FirstOrderOnlyCube().apply(a), [x]).ok
    with pytest.raises(cr.GradcheckError, match="second derivative mismatch"):
        cr.gradgradcheck(lambda a: FirstOrderOnlyCube().apply(a), [x])


def test_gradcheck_leaves_the_inputs_unchanged():
    x = cr.tensor([0.3, 0.7], requires_grad=True)
    before = x.detach().numpy().copy()
    cr.gradcheck(lambda a: (a * a).sum(), [x])
    np.testing.assert_array_equal(x.detach().numpy(), before)
    assert x.grad is None


def test_gradcheck_names_the_worst_input():
    class WrongSecondInput(cr.Function):
        def forward(self, a, b):
            return a * b

        def backward(self, grad):
            a, b = self.inputs
            return grad * b * 1.001, grad * a * 2.0  # input 0 slightly off, input 1 badly off

    a = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    b = cr.tensor([3.0, -4.0], dtype=cr.float64, requires_grad=True)
    report = cr.gradcheck(lambda x, y: WrongSecondInput().apply(x, y), [a, b], raise_exception=False)
    assert not report.ok and report.input_index == 1 and report.element == (1,)


def test_gradcheck_flags_nan_gradients():
    class NanGrad(cr.Function):
        def forward(self, a):
            return a * 2.0

        def backward(self, grad):
            return (grad * float("nan"),)

    x = cr.tensor([1.0], dtype=cr.float64, requires_grad=True)
    assert not cr.gradcheck(lambda t: NanGrad().apply(t), [x], raise_exception=False).ok


def test_gradgradcheck_catches_a_wrong_tensor_backward_behind_a_right_fast_path():
    """create_graph=True runs the Tensor backward; differentiating a wrong rule "consistently" must
    not pass: gradgradcheck checks that gradient itself against finite differences first."""

    class WrongTensorRule(cr.Function):
        def forward(self, a):
            return a * a

        def backward(self, grad):  # the create_graph path: wrong (3a instead of 2a)
            (a,) = self.inputs
            return (grad * 3.0 * a,)

        def backward_array(self, grad):  # the first-order path: right
            (a,) = self.inputs
            return (grad * 2.0 * a._data,)

    x = cr.tensor([0.5, -1.5], dtype=cr.float64, requires_grad=True)
    assert cr.gradcheck(lambda a: WrongTensorRule().apply(a), [x]).ok
    with pytest.raises(cr.GradcheckError, match=r"gradgradcheck: first derivative \(the gradient "
                                                r"create_graph=True builds\) mismatch for input 0"):
        cr.gradgradcheck(lambda a: WrongTensorRule().apply(a), [x])


def test_gradcheck_reports_the_jacobian_entry_not_a_projection():
    """Output j depends on input i only for i == j; a wrong rule on entry (1, 2) is reported as
    d output[1, 2] / d input[1, 2] with the two partial derivatives, 3 * 2 vs 2 * 2."""

    class WrongAt(cr.Function):
        def forward(self, a):
            return a * a

        def backward(self, grad):
            (a,) = self.inputs
            scale = np.full(a.shape, 2.0)
            scale[1, 2] = 3.0
            return (grad * a * cr.tensor(scale),)

    x = cr.tensor(np.arange(6.0).reshape(2, 3) / 2, requires_grad=True)  # x[1, 2] = 2.5
    report = cr.gradcheck(lambda a: WrongAt().apply(a) * 1.0, [x], raise_exception=False)
    assert not report.ok and report.element == (1, 2) and report.output_index == (1, 2)
    assert report.analytic == pytest.approx(3 * 2.5) and report.numerical == pytest.approx(2 * 2.5, rel=1e-6)
    assert "(d output[1, 2] / d input 0[1, 2]): analytic 7.5 vs numerical 5" in report.message


def test_gradcheck_names_which_output_when_there_are_several():
    class WrongSecondOutput(cr.Function):
        def forward(self, a):
            return a * 2.0

        def backward(self, grad):
            return (grad * 5.0,)  # should be 2

    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    report = cr.gradcheck(lambda a: (a * 3.0, WrongSecondOutput().apply(a) * a), [x], raise_exception=False)
    assert not report.ok and report.output == 1 and "d output 1[" in report.message


def test_gradcheck_refuses_an_input_the_output_does_not_use():
    x = cr.tensor([1.0, 2.0], dtype=cr.float64, requires_grad=True)
    w = cr.tensor([3.0], dtype=cr.float64, requires_grad=True)
    with pytest.raises(ValueError, match=r"gradcheck: the output does not depend on input 1 \(shape \(1,\)\), "
                                         r"which requires grad; pass allow_unused=True"):
        cr.gradcheck(lambda a, b: a * 2.0, [x, w])
    assert cr.gradcheck(lambda a, b: a * 2.0, [x, w], allow_unused=True).ok
    with pytest.raises(ValueError, match="does not depend on input 1"):
        cr.gradgradcheck(lambda a, b: a * a, [x, w])
