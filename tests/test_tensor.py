"""Tensor: construction, attributes, creation functions, seeding, repr, and the conversions and protocol
methods PyTorch users rely on (compared with PyTorch where it is installed)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

try:
    import torch
except ImportError:
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch (test oracle) is not installed")


def _dtype_name(t) -> str:
    return str(t.dtype).replace("torch.", "")


# ---- construction and attributes ---------------------------------------------------------------
def test_tensor_attributes():
    x = cr.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.shape == (2, 3) and x.ndim == 2 and x.dtype == cr.float32
    assert x.numel() == 6 and x.dim() == 2 and x.device == "cpu"
    assert not x.requires_grad and x.grad is None and x.is_leaf
    assert x.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert x.is_floating_point() and not cr.tensor([1]).is_floating_point()


def test_tensor_copies_its_input_and_from_numpy_shares_memory():
    a = np.array([1.0, 2.0])
    t = cr.tensor(a)
    a[0] = 10.0
    assert t.tolist() == [1.0, 2.0]
    assert t.dtype == cr.float64  # a NumPy array keeps its dtype, as torch.tensor does
    s = cr.from_numpy(a)
    a[1] = 20.0
    assert s.tolist() == [10.0, 20.0]
    with pytest.raises(TypeError, match="from_numpy: expected an ndarray, got list"):
        cr.from_numpy([1.0])


def test_tensor_from_nested_tensors_and_scalars():
    t = cr.tensor([cr.tensor(1.0), cr.tensor(2.0)])
    assert t.tolist() == [1.0, 2.0] and t.dtype == cr.float32
    assert cr.tensor(3).dtype == cr.int64 and cr.tensor(3).shape == ()
    assert cr.tensor(2.5, dtype=cr.float64).dtype == cr.float64


def test_requires_grad_and_detach():
    x = cr.tensor([1.0, 2.0])
    assert x.requires_grad_() is x and x.requires_grad
    y = x * 2
    assert not y.is_leaf and y.grad_fn is not None
    d = y.detach()
    assert d.is_leaf and not d.requires_grad
    d._data[0] = 100.0  # shares memory
    assert y.detach().numpy()[0] == 100.0
    with pytest.raises(RuntimeError, match="requires_grad_\\(False\\): this tensor is the output of an op"):
        y.requires_grad_(False)


@requires_torch
def test_repr_looks_like_torch():
    assert repr(cr.tensor([1.0, 2.5])) == repr(torch.tensor([1.0, 2.5]))
    assert repr(cr.tensor([[1.0, 2.0], [3.0, 4.5]])) == repr(torch.tensor([[1.0, 2.0], [3.0, 4.5]]))
    assert repr(cr.tensor([1.0, 2.0])) == repr(torch.tensor([1.0, 2.0]))
    assert repr(cr.tensor([1, 2])) == repr(torch.tensor([1, 2]))
    assert repr(cr.tensor([1.0], requires_grad=True)) == repr(torch.tensor([1.0], requires_grad=True))
    assert repr(cr.tensor([1.0], dtype=cr.float64)) == "tensor([1.], dtype=chainrule.float64)"
    assert "grad_fn=<MulBackward0>" in repr(cr.tensor([1.0], requires_grad=True) * 2)


# ---- creation ----------------------------------------------------------------------------------
@requires_torch
@pytest.mark.parametrize("name,args,kwargs", [
    ("zeros", (2, 3), {}),
    ("ones", ((2, 3),), {}),
    ("full", ((2, 2), 1.5), {}),
    ("full", ((2,), 4), {}),
    ("eye", (3,), {}),
    ("eye", (2, 3), {}),
    ("arange", (5,), {}),
    ("arange", (1, 2, 0.25), {}),
    ("arange", (10, 0, -3), {}),
    ("linspace", (-1, 1, 5), {}),
    ("zeros", (2,), {"dtype": "float64"}),
])
def test_creation_matches_torch(name, args, kwargs):
    tk = {k: getattr(torch, v) for k, v in kwargs.items()}
    ck = {k: getattr(cr, v) for k, v in kwargs.items()}
    ours, theirs = getattr(cr, name)(*args, **ck), getattr(torch, name)(*args, **tk)
    assert ours.shape == tuple(theirs.shape) and str(ours.dtype) == _dtype_name(theirs)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_like_creators_keep_shape_and_dtype():
    x = cr.ones(2, 3, dtype=cr.float64)
    for fn in (cr.zeros_like, cr.ones_like, cr.randn_like, cr.rand_like):
        y = fn(x)
        assert y.shape == (2, 3) and y.dtype == cr.float64
    assert cr.zeros_like(x).numpy().sum() == 0 and cr.ones_like(x).numpy().sum() == 6
    assert cr.zeros_like(x, requires_grad=True).requires_grad


def test_random_draws_are_reproducible_with_manual_seed():
    cr.manual_seed(42)
    a = (cr.rand(3), cr.randn(2, 2), cr.randint(0, 10, (4,)), cr.randperm(5))
    cr.manual_seed(42)
    b = (cr.rand(3), cr.randn(2, 2), cr.randint(0, 10, (4,)), cr.randperm(5))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())
    assert a[0].dtype == cr.float32 and a[2].dtype == cr.int64
    assert ((a[0].numpy() >= 0) & (a[0].numpy() < 1)).all()
    assert ((a[2].numpy() >= 0) & (a[2].numpy() < 10)).all()
    cr.manual_seed(43)
    assert not np.array_equal(cr.rand(3).numpy(), a[0].numpy())


def test_randn_statistics():
    cr.manual_seed(0)
    x = cr.randn(20000).numpy()
    assert abs(x.mean()) < 0.03 and abs(x.std() - 1.0) < 0.03


def test_creation_rejects_bad_sizes():
    with pytest.raises(ValueError, match="zeros: sizes must be non-negative integers"):
        cr.zeros(-1)
    with pytest.raises(ValueError, match="arange: step must be nonzero"):
        cr.arange(0, 1, 0)


# ---- conversions and protocol methods (issue 8) -------------------------------------------------
@requires_torch
@pytest.mark.parametrize("data", [[2.75], [[-3.5]], 7.0, [0.0]])
def test_python_scalar_conversions_match_torch(data):
    t, tt = cr.tensor(data), torch.tensor(data)
    assert float(t) == float(tt)
    assert int(t) == int(tt)
    assert bool(t) == bool(tt)
    assert t.item() == tt.item()


@requires_torch
def test_python_scalar_conversions_of_many_elements_fail_like_torch():
    for fn, error in ((float, ValueError), (int, ValueError), (bool, RuntimeError), (lambda t: t.item(), RuntimeError)):
        with pytest.raises(error):
            fn(torch.ones(2))
        with pytest.raises(error, match="only one-element tensors|ambiguous"):
            fn(cr.ones(2))


@requires_torch
def test_len_iter_and_array_protocol_match_torch():
    data = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    t, tt = cr.tensor(data), torch.tensor(data)
    assert len(t) == len(tt) == 3
    rows, trows = list(t), list(tt)
    assert len(rows) == 3
    for r, tr in zip(rows, trows):
        assert isinstance(r, cr.Tensor) and r.shape == tuple(tr.shape)
        np.testing.assert_array_equal(r.numpy(), tr.numpy())
    a = np.asarray(t)
    np.testing.assert_array_equal(a, np.asarray(tt))
    assert a.dtype == np.float32
    assert np.asarray(t, dtype=np.float64).dtype == np.float64
    assert np.array(t).tolist() == data
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(cr.tensor(1.0))


def test_iteration_keeps_the_graph():
    x = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    total = sum(row.sum() * (i + 1) for i, row in enumerate(x))
    total.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1.0, 1.0], [2.0, 2.0]])


@requires_torch
def test_size_and_numel_match_torch():
    t, tt = cr.zeros(2, 3, 4), torch.zeros(2, 3, 4)
    assert t.size() == tuple(tt.size())
    for d in (0, 1, 2, -1, -3):
        assert t.size(d) == tt.size(d)
    assert t.numel() == tt.numel() == 24
    with pytest.raises(IndexError, match="size: dimension 3 is out of range"):
        t.size(3)


@requires_torch
@pytest.mark.parametrize("method", ["float", "double", "long", "int", "bool", "half"])
def test_dtype_conversion_methods_match_torch(method):
    data = [[1.7, -2.2], [0.0, 3.9]]
    t, tt = getattr(cr.tensor(data), method)(), getattr(torch.tensor(data), method)()
    assert str(t.dtype) == _dtype_name(tt)
    np.testing.assert_allclose(t.numpy().astype(np.float64), tt.numpy().astype(np.float64), rtol=1e-3)


@requires_torch
def test_to_matches_torch():
    t, tt = cr.tensor([1.5, 2.5]), torch.tensor([1.5, 2.5])
    assert t.to(cr.float64).dtype == cr.float64 and tt.to(torch.float64).dtype == torch.float64
    assert t.to("cpu") is t and tt.to("cpu") is tt
    assert t.to(cr.float32) is t and tt.to(torch.float32) is tt  # no-op conversions return self
    assert t.to(cr.int64).tolist() == tt.to(torch.int64).tolist()
    assert t.to(cr.zeros(1, dtype=cr.float64)).dtype == cr.float64
    assert t.to(dtype=cr.float64).dtype == cr.float64
    c = t.to(cr.float32, copy=True)
    assert c is not t and c.tolist() == t.tolist()


def test_to_float64_keeps_the_graph():
    x = cr.tensor([1.5, 2.5], requires_grad=True)
    y = x.double()
    assert y.dtype == cr.float64 and y.requires_grad
    (y * y).sum().backward()
    assert x.grad.dtype == cr.float32
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 5.0])


@requires_torch
def test_clone_and_contiguous_match_torch():
    x, tx = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True), torch.tensor([[1.0, 2.0], [3.0, 4.0]],
                                                                                      requires_grad=True)
    c, tc = x.clone(), tx.clone()
    assert c.grad_fn is not None and not c.is_leaf
    assert c._data is not x._data and not np.shares_memory(c._data, x._data)
    xt, txt = x.T, tx.T
    assert xt.is_contiguous() == txt.is_contiguous() is False
    ct, tct = xt.contiguous(), txt.contiguous()
    assert ct.is_contiguous() and tct.is_contiguous()
    np.testing.assert_array_equal(ct.detach().numpy(), tct.detach().numpy())
    assert x.contiguous() is x and tx.contiguous() is tx
    ((c * 2).sum() + (ct * ct).sum()).backward()
    ((tc * 2).sum() + (tct * tct).sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


@requires_torch
@pytest.mark.parametrize("shape_args", [
    ((-1,),), ((3, -1),), (3, -1), (2, 6), (-1, 2, 3), ((4, 3),), ([2, 2, 3],), (12,),
])
def test_reshape_and_view_accept_minus_one_and_positional_sizes_like_torch(shape_args):
    data = np.arange(12.0).reshape(2, 6)
    t, tt = cr.tensor(data), torch.tensor(data)
    for method in ("reshape", "view"):
        ours, theirs = getattr(t, method)(*shape_args), getattr(tt, method)(*shape_args)
        assert ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


@requires_torch
@pytest.mark.parametrize("args", [(), (1,), (0, 1), (1, 2), (-2, -1), (0, -1), (2, 2)])
def test_flatten_start_end_dim_like_torch(args):
    t, tt = cr.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4, 5)
    assert t.flatten(*args).shape == tuple(tt.flatten(*args).shape)
    assert cr.flatten(t, *args).shape == tuple(torch.flatten(tt, *args).shape)
    assert cr.tensor(3.0).flatten().shape == tuple(torch.tensor(3.0).flatten().shape)


def test_view_shares_memory_and_version_counter():
    t = cr.zeros(2, 3)
    v = t.view(-1)
    v._data[0] = 5.0
    assert t.numpy()[0, 0] == 5.0
    assert v._version is t._version


def test_index_returns_python_int_via_dunder_index():
    assert [10, 20, 30][cr.tensor(1)] == 20
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        [1, 2][cr.tensor(1.0)]


def test_numpy_operands_and_reflected_operators():
    x = cr.tensor([1.0, 2.0])
    y = np.array([3.0, 4.0], dtype=np.float32) + x  # NumPy defers to the Tensor
    assert isinstance(y, cr.Tensor) and y.tolist() == [4.0, 6.0]
    assert (2.0 - x).tolist() == [1.0, 0.0]
    assert (2.0 / x).tolist() == [2.0, 1.0]
    assert (2.0**x).tolist() == [2.0, 4.0]
    assert (x > 1.5).tolist() == [False, True]
    assert (x == cr.tensor([1.0, 0.0])).tolist() == [True, False]


CORE_OPS = [
    "add", "sub", "mul", "div", "neg", "pow", "matmul", "abs", "exp", "log", "sqrt", "sin", "cos", "tanh",
    "sigmoid", "relu", "clamp", "maximum", "minimum", "where", "sum", "mean", "var", "std", "max", "min",
    "norm", "logsumexp", "softmax", "log_softmax", "argmax", "argmin", "reshape", "view", "flatten",
    "squeeze", "unsqueeze", "transpose", "permute", "expand", "cat", "stack", "split", "chunk", "gather",
    "index_select", "eq", "ne", "lt", "le", "gt", "ge", "zeros_like", "ones_like", "randn_like",
]


@requires_torch
@pytest.mark.parametrize("name", CORE_OPS)
def test_each_op_exists_as_function_and_method_where_torch_has_both(name):
    if hasattr(torch, name):
        assert callable(getattr(cr, name)), f"cr.{name} is missing"
    if hasattr(torch.Tensor, name):
        assert callable(getattr(cr.Tensor, name)), f"Tensor.{name} is missing"


def test_comparisons_give_bool_tensors_without_gradient():
    x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    for out in (x > 0, x >= 1.0, x < x * 2, x <= 0, x == 1.0, x != 3.0):
        assert out.dtype == cr.bool and not out.requires_grad and out.grad_fn is None
    assert (x > 0).tolist() == [True, False, True]


def test_where_method_takes_the_condition_first():
    x, y = cr.tensor([1.0, 2.0]), cr.tensor([10.0, 20.0])
    assert x.where(cr.tensor([True, False]), y).tolist() == [1.0, 20.0]


def test_malloc_tuning_can_be_turned_off():
    import os
    import subprocess
    import sys

    code = "import chainrule.backend as b; print(b.tune_malloc())"
    env = dict(os.environ, CHAINRULE_MALLOC_TUNING="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    env.pop("CHAINRULE_MALLOC_TUNING")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ("True" if sys.platform.startswith("linux") else "False")


def test_importing_chainrule_calls_no_mallopt():
    """Importing the library changes nothing in the host process: no allocator tuning (opt-in)."""
    import subprocess
    import sys

    code = (
        "import ctypes, numpy\n"
        "loaded = []\n"
        "real = ctypes.CDLL\n"
        "class Spy(real):\n"
        "    def __init__(self, name, *a, **k):\n"
        "        loaded.append(str(name)); super().__init__(name, *a, **k)\n"
        "ctypes.CDLL = Spy\n"
        "import chainrule, chainrule.nn, chainrule.optim, chainrule.train\n"
        "import chainrule.backend as b\n"
        "print(b._malloc_tuned, [n for n in loaded if 'libc' in n])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False []"
