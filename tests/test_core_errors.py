"""Bad input gets a clear error in the user's terms: the op, what was expected and what was given."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def test_matmul_shape_mismatch_names_op_and_both_shapes():
    with pytest.raises(ValueError, match=r"matmul: \(3, 4\) @ \(5, 2\): inner dimensions 4 and 5 differ"):
        cr.ones(3, 4) @ cr.ones(5, 2)
    with pytest.raises(ValueError, match=r"matmul: \(3,\) @ \(4,\): inner dimensions 3 and 4 differ"):
        cr.matmul(cr.ones(3), cr.ones(4))
    with pytest.raises(ValueError, match=r"matmul: .*batch dimensions \(2,\) and \(3,\) cannot be broadcast"):
        cr.ones(2, 3, 4) @ cr.ones(3, 4, 5)
    with pytest.raises(ValueError, match="matmul: both arguments must have at least 1 dimension"):
        cr.tensor(2.0) @ cr.ones(2)


def test_backward_on_non_scalar_without_gradient():
    y = cr.ones(3, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"grad can be implicitly created only for scalar outputs.*shape \(3,\)"):
        y.backward()


def test_backward_gradient_of_the_wrong_shape():
    y = cr.ones(2, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"gradient has shape \(3,\) but the output has shape \(2,\)"):
        y.backward(cr.ones(3))


def test_backward_through_a_tensor_that_does_not_require_grad():
    with pytest.raises(RuntimeError, match="backward: the tensor does not require grad and has no graph"):
        cr.ones(3).sum().backward()
    x = cr.ones(3, requires_grad=True)
    with cr.no_grad():
        y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_integer_tensor_cannot_require_grad():
    with pytest.raises(RuntimeError, match="only floating-point tensors can require gradients, got int64"):
        cr.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="got bool"):
        cr.tensor([True]).requires_grad_()


def test_grad_of_an_unused_input_without_allow_unused():
    x = cr.ones(2, requires_grad=True)
    unused = cr.ones(4, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"grad: input 1 \(shape \(4,\)\) was not used to compute the outputs; "
                                           "pass allow_unused=True"):
        cr.grad((x * 2).sum(), [x, unused])


def test_grad_of_an_input_that_does_not_require_grad():
    x = cr.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="grad: input 0 does not require grad"):
        cr.grad((x * 2).sum(), [cr.ones(2)])
    with pytest.raises(RuntimeError, match="grad: output 0 does not require grad"):
        cr.grad(cr.ones(2).sum(), [x])


def test_broadcast_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"add: shapes \(3,\) and \(4,\) cannot be broadcast together"):
        cr.ones(3) + cr.ones(4)
    with pytest.raises(ValueError, match=r"mul: shapes \(2, 3\) and \(2,\) cannot be broadcast together"):
        cr.ones(2, 3) * cr.ones(2)
    with pytest.raises(ValueError, match=r"gt: shapes \(2,\) and \(3,\) cannot be broadcast together"):
        _ = cr.ones(2) > cr.ones(3)
    with pytest.raises(ValueError, match=r"where: condition \(2,\), input \(3,\) and other \(3,\) cannot be broadcast"):
        cr.where(cr.tensor([True, False]), cr.ones(3), cr.zeros(3))


def test_shape_op_errors():
    with pytest.raises(ValueError, match=r"reshape: cannot view a tensor of shape \(2, 3\) \(6 elements\) as \(4, 2\)"):
        cr.ones(2, 3).reshape(4, 2)
    with pytest.raises(ValueError, match=r"reshape: .* as \(-1, -1\)"):
        cr.ones(3).view(-1, -1)
    with pytest.raises(ValueError, match=r"cat: tensor 1 has shape \(3, 2\), which does not match \(2, 3\)"):
        cr.cat([cr.ones(2, 3), cr.ones(3, 2)])
    with pytest.raises(ValueError, match=r"stack: tensor 1 has shape \(3,\), expected \(2,\)"):
        cr.stack([cr.ones(2), cr.ones(3)])
    with pytest.raises(ValueError, match=r"permute: \(0, 0\) is not a permutation"):
        cr.ones(2, 3).permute(0, 0)
    with pytest.raises(ValueError, match=r"expand: the size 2 of dimension 0 of \(2, 3\) can't become 4"):
        cr.ones(2, 3).expand(4, 3)
    with pytest.raises(ValueError, match=r"split: sizes \[1, 1\] do not add up to 3"):
        cr.ones(3).split([1, 1])
    with pytest.raises(ValueError, match="pad: expected an even number of values"):
        cr.pad(cr.ones(2, 3), (1, 2, 3))
    with pytest.raises(ValueError, match="pad: unknown mode 'mirror'"):
        cr.pad(cr.ones(2, 3), (1, 1), mode="mirror")
    with pytest.raises(ValueError, match="flatten: start_dim 1 comes after end_dim 0"):
        cr.ones(2, 3).flatten(1, 0)


def test_dimension_out_of_range():
    with pytest.raises(IndexError, match=r"sum: dimension 2 is out of range for a tensor with 2 dimensions"):
        cr.ones(2, 3).sum(dim=2)
    with pytest.raises(IndexError, match="softmax: dimension -3 is out of range"):
        cr.ones(2, 3).softmax(dim=-3)
    with pytest.raises(IndexError, match="unsqueeze: dimension 3 is out of range"):
        cr.ones(2).unsqueeze(3)
    with pytest.raises(IndexError, match="transpose: dimension 2 is out of range"):
        cr.ones(2, 3).transpose(0, 2)
    with pytest.raises(ValueError, match=r"mean: dimension \(0, 0\) appears more than once"):
        cr.ones(2, 3).mean(dim=(0, 0))


def test_indexing_errors():
    with pytest.raises(IndexError, match=r"index 5 is out of bounds for dimension 0 with size 2 \(tensor of shape \(2, 3\)\)"):
        cr.ones(2, 3)[5]
    with pytest.raises(IndexError, match="indices must be integers"):
        cr.ones(3)[1.5]
    with pytest.raises(IndexError, match="tensors used as indices must be integer or bool, got float32"):
        cr.ones(3)[cr.ones(2)]
    with pytest.raises(IndexError, match="gather: index 5 is out of range for dimension 1 of size 3"):
        cr.ones(2, 3).gather(1, cr.tensor([[5]]))
    with pytest.raises(ValueError, match="gather: index has 1 dimensions but input has 2"):
        cr.ones(2, 3).gather(1, cr.tensor([0]))
    with pytest.raises(TypeError, match="gather: index must be an integer tensor, got float32"):
        cr.ones(2, 3).gather(1, cr.ones(2, 1))
    with pytest.raises(IndexError, match="index_select: index 3 is out of range for dimension 0 of size 2"):
        cr.ones(2, 3).index_select(0, cr.tensor([0, 3]))


def test_conversion_errors():
    with pytest.raises(ValueError, match=r"float\(\): only one-element tensors can be converted.*shape \(2,\)"):
        float(cr.ones(2))
    with pytest.raises(RuntimeError, match=r"item\(\): only one-element tensors"):
        cr.ones(2, 2).item()
    with pytest.raises(RuntimeError, match="the truth value of a tensor with 3 elements is ambiguous"):
        bool(cr.ones(3))
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(cr.tensor(1.0))
    with pytest.raises(RuntimeError, match="can't call numpy\\(\\) on a tensor that requires grad"):
        cr.ones(2, requires_grad=True).numpy()
    with pytest.raises(TypeError, match=r"tensor\(\): can't convert data of dtype <U1"):
        cr.tensor(["a"])
    with pytest.raises(RuntimeError, match="to\\(\\): device 'cuda' is not available"):
        cr.ones(2).to("cuda")


def test_dtype_errors():
    with pytest.raises(TypeError, match="mean: input dtype must be floating point, got int64"):
        cr.tensor([1, 2]).mean()
    with pytest.raises(ValueError, match="pow: integers to negative integer powers are not allowed"):
        cr.tensor([1, 2]) ** -1
    with pytest.raises(TypeError, match="where: condition must be a bool tensor, got float32"):
        cr.where(cr.ones(2), cr.ones(2), cr.zeros(2))
    with pytest.raises(ValueError, match="clamp: at least one of min and max must be given"):
        cr.ones(2).clamp()
    with pytest.raises(TypeError, match="expected a Tensor or a real number, got str"):
        cr.ones(2) + "a"


def test_reduction_of_empty_tensor():
    with pytest.raises(ValueError, match="amax: cannot reduce an empty tensor"):
        cr.zeros(0).max()


def test_nan_and_inf_never_crash():
    with np.errstate(all="ignore"):
        x = cr.tensor([np.nan, np.inf, -np.inf, 0.0], requires_grad=True)
        y = (x * 2).exp().sqrt() / x
        y.sum().backward()
    assert x.grad.shape == (4,)
    assert np.isnan(cr.tensor([np.nan]).max().item())
