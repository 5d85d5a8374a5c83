"""Activations: gradcheck and second derivatives in float64, agreement with torch.nn, stability at
+-1000, and erf's accuracy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from conftest import gradcheck_layer, requires_torch

import chainrule as cr
import chainrule.nn.functional as F

# (name, our module factory, torch module factory name and args, smooth: second derivatives checked)
ACTIVATIONS = [
    ("Sigmoid", lambda: cr.nn.Sigmoid(), ("Sigmoid", {}), True),
    ("Tanh", lambda: cr.nn.Tanh(), ("Tanh", {}), True),
    ("ReLU", lambda: cr.nn.ReLU(), ("ReLU", {}), False),
    ("LeakyReLU", lambda: cr.nn.LeakyReLU(0.1), ("LeakyReLU", {"negative_slope": 0.1}), False),
    ("PReLU", lambda: cr.nn.PReLU(), ("PReLU", {}), False),
    ("PReLU4", lambda: cr.nn.PReLU(4, init=0.3), ("PReLU", {"num_parameters": 4, "init": 0.3}), False),
    ("ELU", lambda: cr.nn.ELU(), ("ELU", {}), False),
    ("ELU2", lambda: cr.nn.ELU(alpha=1.7), ("ELU", {"alpha": 1.7}), False),
    ("GELU", lambda: cr.nn.GELU(), ("GELU", {}), True),
    ("GELUtanh", lambda: cr.nn.GELU("tanh"), ("GELU", {"approximate": "tanh"}), True),
    ("SiLU", lambda: cr.nn.SiLU(), ("SiLU", {}), True),
    ("Softplus", lambda: cr.nn.Softplus(), ("Softplus", {}), True),
    ("Softplus2", lambda: cr.nn.Softplus(beta=2.0, threshold=3.0), ("Softplus", {"beta": 2.0, "threshold": 3.0}),
     False),
    ("Softmax", lambda: cr.nn.Softmax(dim=1), ("Softmax", {"dim": 1}), True),
    ("LogSoftmax", lambda: cr.nn.LogSoftmax(dim=1), ("LogSoftmax", {"dim": 1}), True),
    ("LogSigmoid", lambda: cr.nn.LogSigmoid(), ("LogSigmoid", {}), True),
    ("SELU", lambda: cr.nn.SELU(), ("SELU", {}), False),
    ("Hardtanh", lambda: cr.nn.Hardtanh(-0.5, 0.7), ("Hardtanh", {"min_val": -0.5, "max_val": 0.7}), False),
]
IDS = [a[0] for a in ACTIVATIONS]


def _input(shape=(3, 4), scale=2.0, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * scale
    # keep clear of kinks (0, and the +-0.5/0.7 clamps) where finite differences straddle two branches
    x = np.where(np.abs(x) < 0.05, 0.3, x)
    for kink in (-0.5, 0.7, 1.5):
        x = np.where(np.abs(x - kink) < 0.05, kink + 0.2, x)
    return cr.tensor(x, requires_grad=True)


@pytest.mark.parametrize("name, make, torch_spec, smooth", ACTIVATIONS, ids=IDS)
def test_activation_passes_gradcheck(name, make, torch_spec, smooth):
    layer = make().double()
    x = _input()
    gradcheck_layer(layer, x, second_order=smooth)


@requires_torch
@pytest.mark.parametrize("name, make, torch_spec, smooth", ACTIVATIONS, ids=IDS)
def test_activation_matches_torch(name, make, torch_spec, smooth):
    import torch

    layer = make().double()
    tname, targs = torch_spec
    tlayer = getattr(torch.nn, tname)(**targs).double()
    tlayer.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in layer.state_dict().items()})
    x = _input((5, 4), scale=4.0, seed=3)
    xt = torch.tensor(x.detach().numpy(), requires_grad=True)
    out, tout = layer(x), tlayer(xt)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-12, atol=1e-14)
    g = np.random.default_rng(0).standard_normal(out.shape)
    (out * cr.tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-13)
    for (pname, p), (_, tp) in zip(layer.named_parameters(), tlayer.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=pname)


@pytest.mark.parametrize("dtype", [cr.float32, cr.float64])
@pytest.mark.parametrize("name, make, torch_spec, smooth", ACTIVATIONS, ids=IDS)
def test_activation_is_finite_at_plus_minus_1000(name, make, torch_spec, smooth, dtype):
    layer = make().to(dtype)
    x = cr.tensor(np.array([[-1000.0, -100.0, 100.0, 1000.0]] * 2), dtype=dtype, requires_grad=True)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        out = layer(x)
        out.sum().backward()
    assert np.isfinite(out.detach().numpy()).all()
    assert np.isfinite(x.grad.numpy()).all()


def test_functional_forms_match_the_modules():
    x = _input((4, 3)).double()
    pairs = [
        (F.relu(x), cr.nn.ReLU()(x)), (F.leaky_relu(x, 0.1), cr.nn.LeakyReLU(0.1)(x)),
        (F.elu(x, 0.5), cr.nn.ELU(0.5)(x)), (F.gelu(x), cr.nn.GELU()(x)), (F.silu(x), cr.nn.SiLU()(x)),
        (F.softplus(x, 2.0), cr.nn.Softplus(2.0)(x)), (F.softmax(x, -1), cr.nn.Softmax(-1)(x)),
        (F.log_softmax(x, 1), cr.nn.LogSoftmax(1)(x)), (F.sigmoid(x), cr.nn.Sigmoid()(x)),
        (F.tanh(x), cr.nn.Tanh()(x)),
    ]
    for a, b in pairs:
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


def test_leaky_relu_values_with_the_lecture_slope():
    out = F.leaky_relu(cr.tensor([-2.0, 0.0, 3.0]), 0.1)
    np.testing.assert_allclose(out.numpy(), [-0.2, 0.0, 3.0], rtol=1e-6)


def test_prelu_learns_one_slope_per_channel():
    layer = cr.nn.PReLU(3).double()
    x = cr.tensor(-np.ones((2, 3, 4)))
    layer(x).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), [-8.0, -8.0, -8.0])
    with pytest.raises(ValueError, match="3 slopes but the input of shape \\(2, 5\\) has 5 channels"):
        layer(cr.ones(2, 5))


def test_maxout_takes_the_max_of_k_affine_pieces():
    layer = cr.nn.Maxout(3, 2, k=4).double()
    x = _input((5, 3))
    z = (x.detach().numpy() @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()).reshape(5, 2, 4)
    np.testing.assert_allclose(layer(x).detach().numpy(), z.max(axis=-1))
    gradcheck_layer(layer, x)
    assert layer.num_parameters() == 3 * 8 + 8


def test_erf_is_float64_accurate_and_odd():
    xs = np.concatenate([np.linspace(-6.5, 6.5, 2001), [0.0, 1e-300, 1e-8, 0.999999, 1.0, 3.9999, 4.0, 27.0, 1e300]])
    got = cr.erf(cr.tensor(xs, dtype=cr.float64)).numpy()
    want = np.array([math.erf(v) for v in xs])
    np.testing.assert_allclose(got, want, rtol=4e-15, atol=1e-300)
    np.testing.assert_array_equal(cr.erf(cr.tensor(-xs, dtype=cr.float64)).numpy(), -got)
    tail = np.array([1.5, 3.0, 5.0, 10.0, 20.0, 26.0])
    np.testing.assert_allclose(cr.erfc(cr.tensor(tail, dtype=cr.float64)).numpy(),
                               [math.erfc(v) for v in tail], rtol=2e-14)
    assert np.isnan(cr.erf(cr.tensor([np.nan])).numpy()).all()


def test_erf_gradients():
    x = cr.tensor(np.linspace(-3, 3, 7), requires_grad=True)
    cr.gradcheck(cr.erf, [x])
    cr.gradgradcheck(cr.erf, [x])
    cr.gradcheck(cr.erfc, [x])
    assert x.erf().shape == (7,)


def test_activation_names_resolve_and_unknown_names_are_refused():
    assert cr.nn.activation_class("leaky_relu") is cr.nn.LeakyReLU
    assert cr.nn.activation_class("LeakyReLU") is cr.nn.LeakyReLU
    assert cr.nn.activation_class("identity") is None
    with pytest.raises(ValueError, match="unknown activation 'relux'"):
        cr.nn.activation_class("relux")
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        cr.nn.GELU("fast")


@requires_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name, make, torch_spec, smooth", ACTIVATIONS, ids=IDS)
def test_activation_matches_torch_at_extreme_inputs(name, make, torch_spec, smooth, dtype):
    import torch

    layer = make().to(dtype)
    tname, targs = torch_spec
    tlayer = getattr(torch.nn, tname)(**targs).to(getattr(torch, dtype))
    tlayer.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in layer.state_dict().items()})
    values = np.array([[-1000.0, -100.0, -20.0, -1.0], [0.5, 20.0, 100.0, 1000.0]], dtype=dtype)
    x = cr.tensor(values, requires_grad=True)
    xt = torch.tensor(values, requires_grad=True)
    out, tout = layer(x), tlayer(xt)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), **tol)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), **tol)
