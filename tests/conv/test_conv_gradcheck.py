"""Convolution, pooling and batch norm against finite differences (float64): first and second order.

One table of cases feeds gradcheck; the conv and pooling tables also feed gradgradcheck, since their
backward passes are ops of their own (conv_transpose / weight grad, scatter / gather).
"""

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F


def _t(rng, *shape):
    return cr.tensor(rng.standard_normal(shape), requires_grad=True)


# (input shape, weight shape, keyword options)
CONV2D_CASES = [
    ((2, 3, 5, 5), (4, 3, 3, 3), {}),
    ((1, 2, 6, 7), (3, 2, 3, 2), {"stride": 2}),
    ((1, 2, 6, 7), (3, 2, 3, 3), {"stride": (2, 1), "padding": (1, 2)}),
    ((1, 2, 7, 7), (2, 2, 3, 3), {"dilation": 2, "padding": 1}),
    ((1, 2, 7, 6), (2, 2, 2, 3), {"dilation": (1, 2), "stride": (1, 2)}),
    ((1, 4, 5, 5), (6, 2, 3, 3), {"groups": 2, "padding": 1}),
    ((1, 3, 5, 5), (3, 1, 3, 3), {"groups": 3, "stride": 2, "padding": 1}),  # depthwise
    ((1, 2, 5, 6), (3, 2, 2, 4), {"padding": "same"}),  # even kernels: the odd pad goes after
    ((1, 2, 5, 5), (3, 2, 3, 3), {"padding": "same", "dilation": 2}),
    ((1, 2, 4, 4), (3, 2, 3, 3), {"padding": "valid"}),
    ((1, 2, 6, 6), (4, 2, 3, 3), {"stride": 3, "padding": 2, "dilation": 2}),  # rows the stride skips
]


@pytest.mark.parametrize("x_shape, w_shape, options", CONV2D_CASES)
def test_conv2d_gradcheck(x_shape, w_shape, options):
    rng = np.random.default_rng(1)
    x, w, b = _t(rng, *x_shape), _t(rng, *w_shape), _t(rng, w_shape[0])
    assert cr.gradcheck(lambda x, w, b: F.conv2d(x, w, b, **options), [x, w, b]).ok
    assert cr.gradcheck(lambda x, w: F.conv2d(x, w, None, **options), [x, w]).ok


@pytest.mark.parametrize("x_shape, w_shape, options", CONV2D_CASES[::2])
def test_conv2d_gradgradcheck(x_shape, w_shape, options):
    rng = np.random.default_rng(2)
    x, w, b = _t(rng, *x_shape), _t(rng, *w_shape), _t(rng, w_shape[0])
    assert cr.gradgradcheck(lambda x, w, b: F.conv2d(x, w, b, **options), [x, w, b]).ok


@pytest.mark.parametrize("options", [
    {}, {"stride": 2, "padding": 1}, {"dilation": 2, "padding": "same"}, {"groups": 2, "stride": 2},
])
def test_conv1d_gradcheck_and_gradgradcheck(options):
    rng = np.random.default_rng(3)
    x, w, b = _t(rng, 2, 4, 9), _t(rng, 6, 4 // options.get("groups", 1), 3), _t(rng, 6)
    fn = lambda x, w, b: F.conv1d(x, w, b, **options)  # noqa: E731
    assert cr.gradcheck(fn, [x, w, b]).ok
    assert cr.gradgradcheck(fn, [x, w, b]).ok


def test_second_derivative_of_conv_mixes_input_and_weight():
    """d/dw of <v, d/dx sum(conv(x, w)^2)> is non-zero: the double backward really uses both adjoints."""
    rng = np.random.default_rng(4)
    x, w = _t(rng, 1, 2, 5, 5), _t(rng, 3, 2, 3, 3)
    (gx,) = cr.grad((F.conv2d(x, w, padding=1) ** 2).sum(), [x], create_graph=True)
    (gw,) = cr.grad(gx.sum(), [w])
    assert np.abs(gw.numpy()).max() > 1e-3
    assert cr.gradgradcheck(lambda x, w: (F.conv2d(x, w, padding=1) ** 2).sum(), [x, w]).ok


POOL_CASES = [
    (F.max_pool2d, (2, 2, 6, 6), dict(kernel_size=2)),
    (F.max_pool2d, (1, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1)),
    (F.max_pool2d, (1, 2, 7, 8), dict(kernel_size=(2, 3), stride=(1, 2), dilation=(2, 1))),
    (F.max_pool2d, (1, 2, 7, 7), dict(kernel_size=3, stride=2, ceil_mode=True)),
    (F.max_pool2d, (2, 5, 5), dict(kernel_size=2)),  # unbatched (C, H, W)
    (F.max_pool1d, (2, 3, 9), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (F.avg_pool2d, (2, 2, 6, 6), dict(kernel_size=2)),
    (F.avg_pool2d, (1, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1)),
    (F.avg_pool2d, (1, 2, 7, 6), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (F.avg_pool2d, (1, 2, 7, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    (F.avg_pool2d, (1, 2, 6, 6), dict(kernel_size=2, divisor_override=3)),
    (F.avg_pool1d, (2, 3, 9), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    (F.adaptive_avg_pool2d, (1, 2, 7, 5), dict(output_size=(3, 2))),
    (F.adaptive_avg_pool2d, (1, 2, 6, 4), dict(output_size=(3, None))),
    (F.adaptive_avg_pool2d, (2, 3, 4, 4), dict(output_size=1)),
    (F.adaptive_avg_pool1d, (2, 3, 7), dict(output_size=3)),
]


@pytest.mark.parametrize("fn, shape, options", POOL_CASES)
def test_pooling_gradcheck_and_gradgradcheck(fn, shape, options):
    rng = np.random.default_rng(5)
    x = _t(rng, *shape)
    assert cr.gradcheck(lambda x: fn(x, **options), [x]).ok
    assert cr.gradgradcheck(lambda x: fn(x, **options), [x]).ok


@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 5), (3, 2, 3, 4)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_gradcheck_and_gradgradcheck(shape, affine):
    rng = np.random.default_rng(6)
    x = cr.tensor(rng.standard_normal(shape) * 2 + 1, requires_grad=True)
    if affine:
        w, b = _t(rng, shape[1]), _t(rng, shape[1])
        fn = lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)  # noqa: E731
        inputs = [x, w, b]
    else:
        fn = lambda x: F.batch_norm(x, None, None, training=True)  # noqa: E731
        inputs = [x]
    assert cr.gradcheck(fn, inputs).ok
    assert cr.gradgradcheck(fn, inputs).ok


def test_batch_norm_eval_gradcheck():
    rng = np.random.default_rng(7)
    x, w, b = _t(rng, 3, 2, 3, 3), _t(rng, 2), _t(rng, 2)
    mean, var = cr.tensor([0.5, -1.0]), cr.tensor([2.0, 0.3])
    fn = lambda x, w, b: F.batch_norm(x, mean, var, w, b, training=False)  # noqa: E731
    assert cr.gradcheck(fn, [x, w, b]).ok
    assert cr.gradgradcheck(fn, [x, w, b]).ok


@pytest.mark.parametrize("make, shape", [
    (lambda: cr.nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2), (2, 2, 6, 5)),
    (lambda: cr.nn.Conv1d(3, 2, 2, dilation=2), (2, 3, 7)),
    (lambda: cr.nn.BatchNorm2d(3), (4, 3, 2, 2)),
    (lambda: cr.nn.BatchNorm1d(3), (6, 3)),
    (lambda: cr.nn.MaxPool2d(3, stride=2, padding=1), (1, 2, 6, 6)),
    (lambda: cr.nn.AvgPool2d(2, count_include_pad=False, padding=1), (1, 2, 5, 5)),
    (lambda: cr.nn.AdaptiveAvgPool2d((2, 3)), (1, 2, 5, 7)),
])
def test_layers_gradcheck_through_their_parameters(make, shape):
    """The layers' gradients w.r.t. input (gradcheck) and parameters (central differences)."""
    layer = make().double()
    rng = np.random.default_rng(8)
    params = list(layer.parameters())
    x = _t(rng, *shape)
    assert cr.gradcheck(lambda x: layer(x), [x]).ok
    y = layer(x)
    v = cr.tensor(rng.standard_normal(y.shape))
    grads = cr.grad((y * v).sum(), params) if params else []
    eps = 1e-6
    with cr.no_grad():
        for g, p in zip(grads, params):
            flat = p._data.reshape(-1)
            for i in range(flat.size):
                old = flat[i]
                flat[i] = old + eps
                up = (layer(x) * v).sum().item()
                flat[i] = old - eps
                down = (layer(x) * v).sum().item()
                flat[i] = old
                assert g.numpy().reshape(-1)[i] == pytest.approx((up - down) / (2 * eps), abs=1e-5)
