"""PyTorch's everyday API on chainrule, each behaviour compared with PyTorch (the test oracle)."""

import math

import numpy as np
import pytest
import torch

import chainrule as cr


# ---- devices -----------------------------------------------------------------------------------
def test_device_objects_print_and_compare_as_pytorch():
    for spec in ("cpu", "cuda", "cuda:1", "mps"):
        assert repr(cr.device(spec)) == repr(torch.device(spec))
        assert str(cr.device(spec)) == str(torch.device(spec))
    assert cr.device("cpu") == "cpu" and cr.device("cpu").type == "cpu"
    assert cr.device("cuda:1").index == 1 and cr.device("cuda:1") != cr.device("cuda:0")
    assert cr.ones(2).device == cr.device("cpu") and cr.ones(2).device.type == torch.ones(2).device.type
    with pytest.raises(RuntimeError, match="device type"):
        cr.device("tpu")


FACTORIES = [
    lambda m, d: m.zeros(2, 3, device=d), lambda m, d: m.ones(2, device=d), lambda m, d: m.empty(2, device=d),
    lambda m, d: m.full((2,), 1.5, device=d), lambda m, d: m.eye(3, device=d),
    lambda m, d: m.arange(5, device=d), lambda m, d: m.linspace(0, 1, 5, device=d),
    lambda m, d: m.rand(2, device=d), lambda m, d: m.randn(2, device=d), lambda m, d: m.randint(3, (2,), device=d),
    lambda m, d: m.randperm(4, device=d), lambda m, d: m.tensor([1.0], device=d),
    lambda m, d: m.zeros_like(m.ones(2), device=d), lambda m, d: m.randn_like(m.ones(2), device=d),
]


@pytest.mark.parametrize("factory", FACTORIES)
def test_factories_take_device_cpu_and_refuse_cuda_clearly(factory):
    for d in ("cpu", cr.device("cpu"), None):
        ours = factory(cr, d)
        theirs = factory(torch, d if not isinstance(d, cr.device) else "cpu")
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
    with pytest.raises(RuntimeError, match="chainrule runs on the CPU only"):
        factory(cr, "cuda")


def test_to_cpu_cuda_and_is_available():
    x = cr.ones(2)
    assert x.to("cpu") is x and x.cpu() is x and x.to(cr.device("cpu")) is x
    assert x.to("cpu", cr.float64).dtype == cr.float64 and x.to(device="cpu", dtype=cr.float64).dtype == cr.float64
    assert cr.cuda.is_available() is torch.cuda.is_available() is False
    assert cr.cuda.device_count() == 0
    for call in (lambda: x.cuda(), lambda: x.to("cuda"), lambda: x.to(cr.device("cuda:0")),
                 lambda: cr.nn.Linear(2, 2).to("cuda"), lambda: cr.nn.Linear(2, 2).cuda()):
        with pytest.raises(RuntimeError, match="chainrule runs on the CPU"):
            call()
    model = cr.nn.Linear(2, 2)
    assert model.to(cr.device("cpu")) is model


# ---- Size, reprs, __format__ ---------------------------------------------------------------------
def test_size_is_a_tuple_with_pytorchs_methods():
    s, t = cr.zeros(2, 3).shape, torch.zeros(2, 3).shape
    assert s == t == (2, 3) and isinstance(s, tuple) and isinstance(s, cr.Size)
    assert s.numel() == t.numel() and s[1:] == t[1:] and isinstance(s[1:], cr.Size)
    assert cr.zeros(2, 3).size() == torch.zeros(2, 3).size() and cr.zeros(2, 3).size(1) == 3
    assert repr(s) == "chainrule.Size([2, 3])" and repr(t) == "torch.Size([2, 3])"
    assert str(s) == "(2, 3)"  # chainrule's own messages keep the short form


def test_tensor_reprs_match_pytorch():
    pairs = [
        (lambda m: m.tensor([1.0, 2.5], requires_grad=True)),
        (lambda m: m.tensor([1.0], requires_grad=True) * 2),
        (lambda m: m.tensor([1.0, 2.0], requires_grad=True).sum()),
        (lambda m: m.tensor([[1.0, 2.0]], requires_grad=True).exp()),
        (lambda m: m.tensor([1, 2])),
    ]
    for build in pairs:
        assert repr(build(cr)) == repr(build(torch))
    assert repr(cr.tensor([1.0], dtype=cr.float64)) == "tensor([1.], dtype=chainrule.float64)"


def test_format_of_a_0d_tensor_formats_its_value():
    for spec in (".4f", ".2e", "", ">10.3f"):
        assert format(cr.tensor(3.14159), spec) == format(torch.tensor(3.14159), spec)
    assert f"{cr.tensor(7):d}" == f"{torch.tensor(7):d}"
    with pytest.raises(TypeError):
        format(cr.tensor([1.0, 2.0]), ".2f")
    with pytest.raises(TypeError):
        format(torch.tensor([1.0, 2.0]), ".2f")


# ---- random draws ----------------------------------------------------------------------------------
def test_normal_overloads_give_pytorchs_shapes_and_dtypes():
    cases = [
        lambda m: m.normal(m.zeros(3, 2), m.ones(3, 2)),
        lambda m: m.normal(m.zeros(4), 2.0),
        lambda m: m.normal(1.0, m.ones(5)),
        lambda m: m.normal(0.0, 1.0, (2, 3)),
        lambda m: m.normal(2, 3, size=(4,)),
        lambda m: m.normal(m.zeros(3, dtype=m.float64), 1.0),
    ]
    for case in cases:
        ours, theirs = case(cr), case(torch)
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")


def test_normal_with_tensor_mean_and_std_has_those_moments():
    cr.manual_seed(0)
    mean, std = cr.full((200_000,), 3.0), cr.full((200_000,), 0.5)
    x = cr.normal(mean, std).numpy()
    assert abs(x.mean() - 3.0) < 0.01 and abs(x.std() - 0.5) < 0.01  # 10 standard errors


def test_randint_overloads_and_ranges():
    for case in (lambda m: m.randint(5, (3, 2)), lambda m: m.randint(2, 7, (100,)), lambda m: m.randint(3, 4, size=(2,))):
        ours, theirs = case(cr), case(torch)
        assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype == cr.int64
    x = cr.randint(2, 7, (1000,)).numpy()
    assert x.min() == 2 and x.max() == 6
    assert sorted(cr.randperm(6).tolist()) == list(range(6))
    assert cr.randint_like(cr.zeros(2, 2), 10).shape == (2, 2)
    assert cr.rand_like(cr.zeros(2, dtype=cr.float64)).dtype == cr.float64


def test_in_place_random_fills():
    cr.manual_seed(0)
    x = cr.empty(10_000)
    assert x.uniform_(-2, 3) is x and -2 <= x.numpy().min() and x.numpy().max() < 3
    x.normal_(1.0, 0.1)
    assert abs(x.numpy().mean() - 1.0) < 0.01
    x.bernoulli_(0.3)
    assert set(np.unique(x.numpy())) <= {0.0, 1.0} and abs(x.numpy().mean() - 0.3) < 0.03
    x.random_(5)
    assert set(np.unique(x.numpy())) == {0, 1, 2, 3, 4}
    x.random_(3, 6)
    assert set(np.unique(x.numpy())) == {3, 4, 5}
    w = cr.zeros(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        w.uniform_()
    with cr.no_grad():
        w.uniform_()
    assert torch.zeros(3).random_(5).dtype == torch.float32  # as PyTorch: the dtype stays


def test_manual_seed_and_generators_reproduce_draws():
    cr.manual_seed(3)
    a = cr.randn(4)
    cr.manual_seed(3)
    assert cr.randn(4).tolist() == a.tolist()
    g1, g2 = cr.Generator().manual_seed(7), cr.Generator().manual_seed(7)
    assert cr.rand(3, generator=g1).tolist() == cr.rand(3, generator=g2).tolist()
    assert g1.initial_seed() == 7
    assert cr.randperm(5, generator=cr.Generator().manual_seed(1)).tolist() == \
        cr.randperm(5, generator=cr.Generator().manual_seed(1)).tolist()


# ---- legacy constructors, .type(), Variable ---------------------------------------------------------------
def test_legacy_typed_constructors_and_type():
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "ByteTensor", "BoolTensor"):
        ours, theirs = getattr(cr, name)([1, 0]), getattr(torch, name)([1, 0])
        assert ours.tolist() == theirs.tolist() and str(ours.dtype) == str(theirs.dtype).removeprefix("torch.")
        assert ours.type() == theirs.type().replace("torch.", "chainrule.")
    assert cr.FloatTensor(2, 3).shape == torch.FloatTensor(2, 3).shape
    x = cr.tensor([1.7, 2.2])
    assert x.type(cr.LongTensor).tolist() == torch.tensor([1.7, 2.2]).type(torch.LongTensor).tolist()
    assert x.type("torch.DoubleTensor").dtype == cr.float64 and x.type(cr.float64).dtype == cr.float64
    assert isinstance(cr.ones(2), cr.FloatTensor) and not isinstance(cr.ones(2), cr.LongTensor)


def test_variable_is_a_tensor():
    v = cr.autograd.Variable(cr.ones(2), requires_grad=True)
    assert isinstance(v, cr.Tensor) and v.requires_grad
    (v * 3).sum().backward()
    assert v.grad.tolist() == [3.0, 3.0]
    assert cr.autograd.Variable(cr.ones(2)).requires_grad is False


# ---- axis / keepdims / out= ----------------------------------------------------------------------
ALIAS_CASES = [
    lambda m, x: m.sum(x, axis=1), lambda m, x: x.sum(axis=0, keepdims=True), lambda m, x: x.mean(axis=1),
    lambda m, x: x.amax(axis=1), lambda m, x: x.argmax(axis=1), lambda m, x: m.cat([x, x], axis=1),
    lambda m, x: x.std(axis=0), lambda m, x: x.softmax(axis=1), lambda m, x: m.stack([x, x], axis=0),
    lambda m, x: x.prod(axis=1, keepdims=True),
]


@pytest.mark.parametrize("case", ALIAS_CASES)
def test_axis_and_keepdims_aliases_match_pytorch(case):
    data = np.arange(6, dtype=np.float32).reshape(2, 3) / 3
    np.testing.assert_allclose(case(cr, cr.tensor(data)).numpy(), case(torch, torch.tensor(data)).numpy(), rtol=1e-6)


def test_out_writes_into_the_given_tensor():
    a, b = cr.tensor([[1.0, 2.0]]), cr.tensor([[3.0], [4.0]])
    out = cr.empty(1, 1)
    assert cr.matmul(a, b, out=out) is out and out.tolist() == torch.matmul(
        torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0], [4.0]])).tolist()
    out = cr.empty(2)
    cr.add(cr.ones(2), cr.ones(2), out=out)
    assert out.tolist() == [2.0, 2.0]
    out = cr.zeros(3)
    cr.randn(3, out=out)
    assert out.numpy().std() > 0
    cr.sum(cr.ones(2, 3), dim=1, out=out)  # resized, as PyTorch does
    assert out.tolist() == [3.0, 3.0]
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        cr.mul(cr.ones(2, requires_grad=True), 2, out=cr.empty(2))


# ---- grad_fn, hooks, retain_grad ------------------------------------------------------------------------
def test_grad_fn_names_and_next_functions_follow_pytorch():
    def build(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = m.tensor([3.0, 4.0])
        return x, (x * y).exp().sum()

    (x, out), (_, tout) = build(cr), build(torch)
    assert out.grad_fn.name() == tout.grad_fn.name() == "SumBackward0"
    step = out.grad_fn.next_functions[0][0]
    tstep = tout.grad_fn.next_functions[0][0]
    assert step.name() == tstep.name() == "ExpBackward0"
    mul, tmul = step.next_functions[0][0], tstep.next_functions[0][0]
    assert mul.name() == tmul.name() == "MulBackward0"
    assert [type(f).__name__ if f is not None else None for f, _ in mul.next_functions] == \
        [type(f).__name__ if f is not None else None for f, _ in tmul.next_functions]
    assert mul.next_functions[0][0].variable is x
    assert repr(out.grad_fn).startswith("<SumBackward0 object at 0x")


def test_tensor_hooks_see_and_replace_gradients_as_in_pytorch():
    def run(m):
        seen = []
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x * x
        y.register_hook(lambda g: seen.append(g.tolist()))
        h = x.register_hook(lambda g: g * 10)
        (y * 3).sum().backward()
        first = x.grad.tolist()
        h.remove()
        x.grad = None
        (x * x).sum().backward()
        return seen, first, x.grad.tolist()

    assert run(cr) == run(torch)


def test_retain_grad_keeps_a_non_leaf_gradient():
    def run(m):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        y = x * 3
        y.retain_grad()
        z = (y * y).sum()
        z.backward(retain_graph=True)
        z.backward()  # accumulates, as a leaf's .grad would
        return y.grad.tolist(), y.retains_grad, x.grad.tolist()

    assert run(cr) == run(torch)


def test_module_hooks_match_pytorch():
    def run(m):
        m.manual_seed(0)
        layer = m.nn.Linear(3, 2)
        with m.no_grad():
            layer.weight.copy_(m.tensor([[1.0, -1.0, 0.5], [0.0, 2.0, 1.0]]))
            layer.bias.fill_(0.25)
        log = []
        layer.register_forward_pre_hook(lambda mod, args: log.append(("pre", tuple(args[0].shape))))
        layer.register_forward_hook(lambda mod, args, out: log.append(("fwd", out.tolist())))
        layer.register_full_backward_hook(
            lambda mod, gin, gout: log.append(("bwd", [g.tolist() if g is not None else None for g in gin],
                                                [g.tolist() for g in gout])))
        x = m.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
        (layer(x) ** 2).sum().backward()
        return log, x.grad.tolist()

    ours, theirs = run(cr), run(torch)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-6)
    assert [e[0] for e in ours[0]] == [e[0] for e in theirs[0]] == ["pre", "fwd", "bwd"]
    np.testing.assert_allclose(ours[0][1][1], theirs[0][1][1], rtol=1e-6)
    np.testing.assert_allclose(ours[0][2][1], theirs[0][2][1], rtol=1e-6)
    np.testing.assert_allclose(ours[0][2][2], theirs[0][2][2], rtol=1e-6)


def test_full_backward_hook_can_replace_grad_input():
    def run(m):
        layer = m.nn.Tanh()
        layer.register_full_backward_hook(lambda mod, gin, gout: (gin[0] * 0 + 1,))
        x = m.tensor([0.5, -1.0], requires_grad=True)
        layer(x).sum().backward()
        return x.grad.tolist()

    assert run(cr) == run(torch) == [1.0, 1.0]


# ---- torch.autograd.Function with ctx ------------------------------------------------------------------
def _legendre(m):
    class P3(m.autograd.Function):
        @staticmethod
        def forward(ctx, x, scale):
            ctx.save_for_backward(x)
            ctx.scale = scale
            ctx.flags = ctx.needs_input_grad
            return scale * 0.5 * (5 * x ** 3 - 3 * x)

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output * ctx.scale * 1.5 * (5 * x ** 2 - 1), None

    return P3


def test_ctx_function_matches_pytorch_first_and_second_order():
    def run(m):
        x = m.tensor([0.3, -0.7, 1.2], dtype=m.float64, requires_grad=True)
        y = _legendre(m).apply(x, 2.0)
        (g,) = m.autograd.grad(y.sum(), x, create_graph=True)
        (gg,) = m.autograd.grad(g.sum(), x)
        return y.tolist(), g.tolist(), gg.tolist(), y.grad_fn.name()

    ours, theirs = run(cr), run(torch)
    for a, b in zip(ours[:3], theirs[:3]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert ours[3] == theirs[3] == "P3Backward"


def test_ctx_function_passes_gradcheck_and_gradgradcheck():
    P3 = _legendre(cr)
    x = cr.tensor([0.3, -0.7, 1.2], dtype=cr.float64, requires_grad=True)
    cr.gradcheck(lambda t: P3.apply(t, 1.5), [x])
    cr.gradgradcheck(lambda t: P3.apply(t, 1.5), [x])


def test_needs_input_grad_and_mark_non_differentiable():
    seen = {}

    class Scale(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            seen["flags"] = ctx.needs_input_grad
            return x * w

        @staticmethod
        def backward(ctx, g):
            return None, g

    x, w = cr.ones(2), cr.ones(2, requires_grad=True)
    Scale.apply(x, w).sum().backward()
    assert seen["flags"] == (False, True) and w.grad.tolist() == [1.0, 1.0]

    class ArgSort(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            idx = cr.tensor(np.argsort(x.numpy() if not x.requires_grad else x.detach().numpy()))
            ctx.mark_non_differentiable(idx)
            return x * 2, idx

        @staticmethod
        def backward(ctx, g, g_idx):
            assert g_idx is None
            return g * 2

    x = cr.tensor([3.0, 1.0], requires_grad=True)
    y, idx = ArgSort.apply(x)
    assert not idx.requires_grad and y.requires_grad
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_setup_context_style():
    def run(m):
        class Mul(m.autograd.Function):
            @staticmethod
            def forward(x, y):
                return x * y

            @staticmethod
            def setup_context(ctx, inputs, output):
                ctx.save_for_backward(*inputs)

            @staticmethod
            def backward(ctx, g):
                x, y = ctx.saved_tensors
                return g * y, g * x

        x = m.tensor([2.0, 3.0], requires_grad=True)
        y = m.tensor([5.0, 7.0], requires_grad=True)
        Mul.apply(x, y).sum().backward()
        return x.grad.tolist(), y.grad.tolist()

    assert run(cr) == run(torch)


def test_once_differentiable_refuses_a_second_derivative():
    def make(m, once):
        class Square(m.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            @once
            def backward(ctx, g):
                (x,) = ctx.saved_tensors
                return 2 * x * g

        return Square

    for m, once in ((cr, cr.autograd.once_differentiable), (torch, torch.autograd.function.once_differentiable)):
        x = m.tensor([1.5], requires_grad=True)
        v = m.tensor([1.0], requires_grad=True)
        (g,) = m.autograd.grad(make(m, once).apply(x), x, grad_outputs=v, create_graph=True)
        assert g.tolist() == [3.0]
        with pytest.raises(RuntimeError, match="once_differentiable"):
            g.sum().backward()
        (g,) = m.autograd.grad(make(m, once).apply(x).sum(), x, create_graph=True)
        assert g.tolist() == [3.0] and not g.requires_grad


def test_ctx_function_errors_are_clear():
    class Bad(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x + y

        @staticmethod
        def backward(ctx, g):
            return g  # one gradient for two arguments

    x = cr.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="Bad.backward: returned 1 gradients, expected 2"):
        Bad.apply(x, x).sum().backward()

    class Saves(cr.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * 2

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g

    a = cr.ones(2, requires_grad=True)
    b = a * 1
    out = Saves.apply(b)
    with cr.no_grad():
        b.add_(1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        out.sum().backward()
    assert not math.isnan(0.0)
