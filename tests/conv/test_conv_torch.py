"""Conv, pooling and batch norm layers against PyTorch: values, gradients and state dicts.

Weights go from chainrule to PyTorch through ``state_dict`` (same names, same shapes), then both
run the same input and the same upstream gradient.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import chainrule as cr

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def _to_torch_state(module) -> dict:
    return {k: torch.from_numpy(np.array(v.numpy())) for k, v in module.state_dict().items()}


def _run_both(ours, theirs, x: np.ndarray, seed: int = 0, atol: float = 1e-10):
    """Forward and backward through both; compare output, input grad and every parameter grad."""
    theirs.load_state_dict(_to_torch_state(ours))
    cx = cr.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    cy, ty = ours(cx), theirs(tx)
    assert cy.shape == tuple(ty.shape)
    np.testing.assert_allclose(cy.detach().numpy(), ty.detach().numpy(), atol=atol, rtol=1e-6)
    g = np.random.default_rng(seed).standard_normal(cy.shape)
    cy.backward(cr.tensor(g))
    ty.backward(torch.tensor(g, dtype=ty.dtype))
    np.testing.assert_allclose(cx.grad.numpy(), tx.grad.numpy(), atol=atol, rtol=1e-6)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(), atol=atol,
                                   rtol=1e-6, err_msg=name)


CONV2D_GRID = [
    # (in, out, kernel, options, input (N, H, W))
    (1, 6, 5, {}, (3, 12, 12)),
    (3, 4, 3, {"padding": 1}, (2, 7, 9)),
    (3, 4, (3, 2), {"stride": (2, 1), "padding": (1, 0)}, (2, 8, 7)),
    (2, 5, 3, {"dilation": 2, "padding": 2, "bias": False}, (2, 9, 8)),
    (4, 6, 3, {"groups": 2, "stride": 2}, (2, 9, 9)),
    (4, 4, 3, {"groups": 4, "padding": "same"}, (2, 6, 5)),
    (2, 3, (2, 4), {"padding": "same", "dilation": (2, 1)}, (2, 7, 8)),
    (2, 3, 3, {"padding": "valid", "stride": 3}, (1, 10, 11)),
    (6, 4, 1, {}, (2, 4, 4)),
]


@pytest.mark.parametrize("cin, cout, k, options, shape", CONV2D_GRID)
def test_conv2d_matches_torch(cin, cout, k, options, shape):
    ours = cr.nn.Conv2d(cin, cout, k, **options).double()
    theirs = torch.nn.Conv2d(cin, cout, k, **options).double()
    x = np.random.default_rng(1).standard_normal((shape[0], cin) + shape[1:])
    _run_both(ours, theirs, x)


@pytest.mark.parametrize("cin, cout, k, options, length", [
    (2, 3, 3, {}, 9), (2, 4, 3, {"stride": 2, "padding": 1}, 10), (4, 4, 2, {"groups": 2, "dilation": 3}, 9),
    (3, 2, 4, {"padding": "same"}, 7), (3, 2, 3, {"padding": "valid", "bias": False}, 5),
])
def test_conv1d_matches_torch(cin, cout, k, options, length):
    ours = cr.nn.Conv1d(cin, cout, k, **options).double()
    theirs = torch.nn.Conv1d(cin, cout, k, **options).double()
    _run_both(ours, theirs, np.random.default_rng(2).standard_normal((2, cin, length)))


@settings(max_examples=25, deadline=None)
@given(
    groups=st.sampled_from([1, 2]), cin_per_group=st.integers(1, 3), cout_per_group=st.integers(1, 3),
    kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
    ph=st.integers(0, 2), pw=st.integers(0, 2), dh=st.integers(1, 2), dw=st.integers(1, 2),
    extra_h=st.integers(0, 5), extra_w=st.integers(0, 5), batch=st.integers(1, 3),
)
def test_conv2d_random_geometry_matches_torch(groups, cin_per_group, cout_per_group, kh, kw, sh, sw, ph,
                                              pw, dh, dw, extra_h, extra_w, batch):
    cin, cout = cin_per_group * groups, cout_per_group * groups
    h = max(dh * (kh - 1) + 1 - 2 * ph, 1) + extra_h
    w = max(dw * (kw - 1) + 1 - 2 * pw, 1) + extra_w
    options = dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)
    ours = cr.nn.Conv2d(cin, cout, (kh, kw), **options).double()
    theirs = torch.nn.Conv2d(cin, cout, (kh, kw), **options).double()
    _run_both(ours, theirs, np.random.default_rng(3).standard_normal((batch, cin, h, w)))


def test_conv2d_float32_stays_float32_and_matches_torch():
    ours = cr.nn.Conv2d(3, 8, 3, padding=1)
    assert ours.weight.dtype == np.float32
    theirs = torch.nn.Conv2d(3, 8, 3, padding=1)
    theirs.load_state_dict(_to_torch_state(ours))
    x = np.random.default_rng(4).standard_normal((4, 3, 10, 10)).astype(np.float32)
    cx = cr.tensor(x, requires_grad=True)
    y = ours(cx)
    assert y.dtype == np.float32
    y.sum().backward()
    assert cx.grad.dtype == np.float32 and ours.weight.grad.dtype == np.float32
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs(tx)
    ty.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-3)


def test_torch_state_dict_loads_into_chainrule_conv():
    theirs = torch.nn.Conv2d(3, 5, (3, 2), groups=1, dilation=(1, 2))
    ours = cr.nn.Conv2d(3, 5, (3, 2), dilation=(1, 2))
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((2, 3, 6, 7)).astype(np.float32)
    np.testing.assert_allclose(ours(cr.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               atol=1e-5)


def test_default_init_has_torch_bounds():
    cr.manual_seed(0)
    conv = cr.nn.Conv2d(4, 64, (3, 5), groups=2)
    fan_in = 2 * 3 * 5
    bound = 1 / np.sqrt(fan_in)
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound  # uniform on [-a, a] has std a / sqrt(3)


POOL_GRID = [
    (cr.nn.MaxPool2d, torch.nn.MaxPool2d, dict(kernel_size=2), (2, 3, 8, 8)),
    (cr.nn.MaxPool2d, torch.nn.MaxPool2d, dict(kernel_size=3, stride=2, padding=1), (2, 3, 9, 8)),
    (cr.nn.MaxPool2d, torch.nn.MaxPool2d, dict(kernel_size=(3, 2), stride=1, dilation=(1, 2)), (1, 2, 6, 7)),
    (cr.nn.MaxPool2d, torch.nn.MaxPool2d, dict(kernel_size=3, stride=2, ceil_mode=True, padding=1), (2, 2, 8, 10)),
    (cr.nn.MaxPool2d, torch.nn.MaxPool2d, dict(kernel_size=2), (3, 7, 7)),
    (cr.nn.MaxPool1d, torch.nn.MaxPool1d, dict(kernel_size=3, stride=2, ceil_mode=True), (2, 3, 10)),
    (cr.nn.MaxPool1d, torch.nn.MaxPool1d, dict(kernel_size=2, dilation=2, padding=1), (2, 3, 9)),
    (cr.nn.AvgPool2d, torch.nn.AvgPool2d, dict(kernel_size=2), (2, 3, 8, 8)),
    (cr.nn.AvgPool2d, torch.nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1), (2, 3, 9, 8)),
    (cr.nn.AvgPool2d, torch.nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
     (2, 3, 9, 8)),
    (cr.nn.AvgPool2d, torch.nn.AvgPool2d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (1, 2, 8, 8)),
    (cr.nn.AvgPool2d, torch.nn.AvgPool2d,
     dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (1, 2, 8, 8)),
    (cr.nn.AvgPool2d, torch.nn.AvgPool2d, dict(kernel_size=(2, 3), divisor_override=4), (1, 2, 6, 7)),
    (cr.nn.AvgPool1d, torch.nn.AvgPool1d, dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), (2, 3, 10)),
    (cr.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool2d, dict(output_size=(3, 4)), (2, 3, 7, 9)),
    (cr.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool2d, dict(output_size=(None, 3)), (2, 3, 5, 8)),
    (cr.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool2d, dict(output_size=2), (2, 3, 6, 8)),
    (cr.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool2d, dict(output_size=1), (2, 3, 5, 5)),
    (cr.nn.AdaptiveAvgPool2d, torch.nn.AdaptiveAvgPool2d, dict(output_size=5), (2, 3, 3, 4)),  # bins overlap
    (cr.nn.AdaptiveAvgPool1d, torch.nn.AdaptiveAvgPool1d, dict(output_size=4), (2, 3, 11)),
]


@pytest.mark.parametrize("ours, theirs, options, shape", POOL_GRID)
def test_pooling_matches_torch(ours, theirs, options, shape):
    _run_both(ours(**options), theirs(**options), np.random.default_rng(6).standard_normal(shape))


def test_max_pool_float32_and_gradient_goes_to_the_first_maximum():
    x = cr.tensor([[[[1.0, 3.0], [3.0, 0.0]]]], dtype=cr.float32, requires_grad=True)
    y = cr.nn.MaxPool2d(2)(x)
    assert y.dtype == np.float32 and y.item() == 3.0
    y.backward()
    tx = torch.tensor([[[[1.0, 3.0], [3.0, 0.0]]]], requires_grad=True)
    torch.nn.functional.max_pool2d(tx, 2).backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("make_ours, make_theirs, shape", [
    (cr.nn.BatchNorm2d, torch.nn.BatchNorm2d, (4, 3, 5, 5)),
    (cr.nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 3)),
    (cr.nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 7)),
])
def test_batch_norm_running_statistics_match_torch(momentum, make_ours, make_theirs, shape):
    """Train several steps (weights changing, batches shifting), then evaluate: same outputs, grads
    and buffers (running_mean, running_var, num_batches_tracked) as PyTorch."""
    ours = make_ours(3, momentum=momentum).double()
    theirs = make_theirs(3, momentum=momentum).double()
    rng = np.random.default_rng(7)
    with cr.no_grad():
        ours.weight._data[...] = rng.uniform(0.5, 1.5, 3)
        ours.bias._data[...] = rng.standard_normal(3)
    theirs.load_state_dict(_to_torch_state(ours))
    for step in range(4):
        x = rng.standard_normal(shape) * (step + 1) + step
        _run_both(ours, theirs, x, seed=step)
        ours.load_state_dict(_to_torch_state(ours))  # keep both in step: no optimizer here
    state_ours, state_theirs = ours.state_dict(), theirs.state_dict()
    assert list(state_ours) == list(state_theirs)
    for key in state_ours:
        np.testing.assert_allclose(state_ours[key].numpy(), state_theirs[key].numpy(), rtol=1e-10, err_msg=key)
    assert int(ours.num_batches_tracked.item()) == 4
    ours.eval()
    theirs.eval()
    _run_both(ours, theirs, rng.standard_normal(shape) * 3 - 1)
    np.testing.assert_allclose(ours.running_mean.numpy(), theirs.running_mean.numpy(), rtol=1e-10)


@pytest.mark.parametrize("affine, track", [(False, True), (True, False), (False, False)])
def test_batch_norm_options_match_torch(affine, track):
    ours = cr.nn.BatchNorm2d(2, affine=affine, track_running_stats=track, eps=1e-3).double()
    theirs = torch.nn.BatchNorm2d(2, affine=affine, track_running_stats=track, eps=1e-3).double()
    rng = np.random.default_rng(8)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    for mode in ("train", "eval", "train"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        if mode == "eval" or not track:
            x = rng.standard_normal((3, 2, 4, 4)) + 2
        else:
            x = rng.standard_normal((3, 2, 4, 4)) - 1
        cx, tx = cr.tensor(x), torch.tensor(x)
        np.testing.assert_allclose(ours(cx).detach().numpy(), theirs(tx).detach().numpy(), atol=1e-10)


def test_batch_norm_float32_buffers_stay_float32():
    bn = cr.nn.BatchNorm2d(4)
    y = bn(cr.randn(8, 4, 3, 3))
    assert y.dtype == np.float32
    assert bn.running_mean.dtype == np.float32 and bn.running_var.dtype == np.float32
    assert bn.num_batches_tracked.dtype == np.int64


class _TorchLeNet(torch.nn.Module):
    def __init__(self, padding=0, features=256):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 6, 5, padding=padding)
        self.conv2 = torch.nn.Conv2d(6, 16, 5, padding=padding)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc1 = torch.nn.Linear(features, 120)
        self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc3(torch.relu(self.fc2(x)))


@pytest.mark.parametrize("image_size, padding, features", [(28, 0, 256), (8, 2, 64)])
def test_lenet_matches_the_same_network_in_torch(image_size, padding, features):
    ours = cr.nn.LeNet(image_size=image_size).double()
    theirs = _TorchLeNet(padding, features).double()
    x = np.random.default_rng(9).standard_normal((3, 1, image_size, image_size))
    _run_both(ours, theirs, x)


def _every_window_sees_the_input(size, k, s, p, d, ceil_mode) -> bool:
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return all(any(0 <= o * s - p + d * j < size for j in range(k)) for o in range(out))


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(["max", "avg", "avg_exclude_pad"]), kh=st.integers(1, 4), kw=st.integers(1, 4),
    sh=st.integers(1, 3), sw=st.integers(1, 3), ph=st.integers(0, 2), pw=st.integers(0, 2),
    dh=st.integers(1, 2), ceil_mode=st.booleans(), extra_h=st.integers(0, 5), extra_w=st.integers(0, 5),
)
def test_pool2d_random_geometry_matches_torch(kind, kh, kw, sh, sw, ph, pw, dh, ceil_mode, extra_h, extra_w):
    ph, pw = min(ph, kh // 2), min(pw, kw // 2)
    if kind != "max":
        dh = 1  # average pooling has no dilation
    h = max(dh * (kh - 1) + 1 - 2 * ph, 1) + extra_h
    w = max(kw - 2 * pw, 1) + extra_w
    options = dict(kernel_size=(kh, kw), stride=(sh, sw), padding=(ph, pw), ceil_mode=ceil_mode)
    # A max window whose taps all fall in the padding outputs -inf; PyTorch then sends the gradient to
    # an arbitrary input, chainrule to none. Such geometries are degenerate and left out.
    assume(kind != "max" or _every_window_sees_the_input(h, kh, sh, ph, dh, ceil_mode))
    if kind == "max":
        ours = cr.nn.MaxPool2d(dilation=(dh, 1), **options)
        theirs = torch.nn.MaxPool2d(dilation=(dh, 1), **options)
    else:
        options["count_include_pad"] = kind == "avg"
        ours, theirs = cr.nn.AvgPool2d(**options), torch.nn.AvgPool2d(**options)
    _run_both(ours, theirs, np.random.default_rng(10).standard_normal((2, 2, h, w)))


@pytest.mark.parametrize("kernel_size, stride, padding", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (1, 1, 0), (5, 3, 2)])
def test_max_pool_ties_send_the_gradient_where_torch_does(kernel_size, stride, padding):
    """ReLU outputs are full of equal zeros: the first maximum in each window gets the gradient."""
    x = np.maximum(np.random.default_rng(11).standard_normal((4, 3, 9, 9)), 0).round(1)
    ours = cr.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    cr.nn.functional.max_pool2d(ours, kernel_size, stride, padding).sum().backward()
    torch.nn.functional.max_pool2d(theirs, kernel_size, stride, padding).sum().backward()
    np.testing.assert_array_equal(ours.grad.numpy(), theirs.grad.numpy())
