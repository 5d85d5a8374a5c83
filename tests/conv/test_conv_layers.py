"""Layer behaviour that needs no oracle: configs, state dict names, dropout2d masks, shapes, dtypes."""

import json

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F

LAYERS = [
    lambda: cr.nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=2, groups=2, bias=False),
    lambda: cr.nn.Conv2d(1, 3, 3, padding="same"),
    lambda: cr.nn.Conv1d(3, 6, 4, stride=2, groups=3),
    lambda: cr.nn.MaxPool2d(3, 2, 1, ceil_mode=True),
    lambda: cr.nn.MaxPool1d(2),
    lambda: cr.nn.AvgPool2d((2, 3), padding=1, count_include_pad=False),
    lambda: cr.nn.AvgPool1d(3, 1, 1),
    lambda: cr.nn.AdaptiveAvgPool2d((2, None)),
    lambda: cr.nn.AdaptiveAvgPool1d(3),
    lambda: cr.nn.BatchNorm2d(4, momentum=None, affine=False),
    lambda: cr.nn.BatchNorm1d(4, eps=1e-3, track_running_stats=False),
    lambda: cr.nn.Dropout2d(0.25),
    lambda: cr.nn.LeNet(in_channels=3, num_classes=7, image_size=(32, 24)),
    lambda: cr.nn.LeNet(image_size=8),
    lambda: cr.nn.LeNet(image_size=8, channels=(16, 32), hidden=(64, 32)),
]


@pytest.mark.parametrize("make", LAYERS)
def test_config_round_trip_rebuilds_the_same_layer(make):
    layer = make()
    config = json.loads(json.dumps(layer.get_config()))  # JSON-able
    rebuilt = cr.nn.from_config(config)
    assert type(rebuilt) is type(layer)
    assert rebuilt.get_config() == config
    assert repr(rebuilt) == repr(layer)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in layer.state_dict().items()}


def test_lenet_state_dict_names_and_shapes():
    net = cr.nn.LeNet()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == {
        "conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,), "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
        "fc1.weight": (120, 256), "fc1.bias": (120,), "fc2.weight": (84, 120), "fc2.bias": (84,),
        "fc3.weight": (10, 84), "fc3.bias": (10,),
    }


@pytest.mark.parametrize("image_size, padding, features", [(28, 0, 256), (32, 0, 400), (8, 2, 64), (12, 2, 144)])
def test_lenet_padding_choice_keeps_small_images_working(image_size, padding, features):
    net = cr.nn.LeNet(image_size=image_size)
    assert net.padding == padding and net.fc1.in_features == features
    out = net(cr.randn(5, 1, image_size, image_size))
    assert out.shape == (5, 10) and out.dtype == np.float32


def test_lenet_width_options():
    net = cr.nn.LeNet(image_size=8, channels=(16, 32), hidden=(64, 32), num_classes=3)
    assert net.conv2.weight.shape == (32, 16, 5, 5)
    assert net.fc1.weight.shape == (64, 32 * 2 * 2) and net.fc3.weight.shape == (3, 32)
    with pytest.raises(ValueError, match=r"LeNet: channels must be a pair of positive ints, got \(6,\)"):
        cr.nn.LeNet(channels=(6,))


def test_lenet_rejects_images_too_small_for_its_padding():
    with pytest.raises(ValueError, match=r"LeNet: images of size \(8, 8\) are too small .* padding=0"):
        cr.nn.LeNet(image_size=8, padding=0)


def test_lenet_learns_a_tiny_problem():
    """A few SGD steps on two fixed images must drive the loss down (the whole backward is wired)."""
    cr.manual_seed(0)
    net = cr.nn.LeNet(image_size=8)
    x = cr.randn(8, 1, 8, 8)
    y = cr.tensor(np.arange(8) % 2)
    losses = []
    for _ in range(60):
        loss = F.cross_entropy(net(x), y)
        net.zero_grad()
        loss.backward()
        with cr.no_grad():
            for p in net.parameters():
                p._data -= 0.1 * p.grad._data
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_dropout2d_zeroes_whole_channels_and_rescales():
    cr.manual_seed(3)
    x = cr.ones(50, 8, 3, 3)
    y = F.dropout2d(x, 0.25).numpy()
    per_channel = y.reshape(50, 8, 9)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # each channel all-zero or all-kept
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert 0.15 < (per_channel[..., 0] == 0).mean() < 0.35
    layer = cr.nn.Dropout2d(0.5).eval()
    assert layer(x) is x or np.array_equal(layer(x).numpy(), x.numpy())


def test_dropout2d_gradient_is_the_mask():
    cr.manual_seed(4)
    x = cr.ones(4, 6, 2, 2, requires_grad=True)
    y = F.dropout2d(x, 0.5)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.detach().numpy())


def test_conv_output_size_formula():
    conv = cr.nn.Conv2d(1, 1, (3, 5), stride=(2, 3), padding=(1, 2), dilation=(2, 1))
    h, w = 11, 14
    out = conv(cr.zeros(1, 1, h, w))
    expected = ((h + 2 - 2 * 2 - 1) // 2 + 1, (w + 4 - 4 - 1) // 3 + 1)
    assert out.shape[2:] == expected


def test_same_padding_keeps_the_size_with_even_kernels_and_dilation():
    for k, d in [(2, 1), (4, 1), (3, 2), (2, 3)]:
        assert cr.nn.Conv2d(2, 3, k, padding="same", dilation=d)(cr.zeros(1, 2, 7, 6)).shape == (1, 3, 7, 6)


def test_conv_on_integer_input_casts_to_the_weight_dtype():
    conv = cr.nn.Conv2d(1, 2, 3)
    out = conv(cr.tensor(np.ones((1, 1, 4, 4), dtype=np.uint8)))
    assert out.dtype == np.float32


def test_in_place_change_of_the_input_after_conv_is_detected():
    x = cr.randn(1, 1, 5, 5, requires_grad=True)
    h = x * 1.0
    y = cr.nn.Conv2d(1, 2, 3)(h)
    h.add_(1.0)
    with pytest.raises(RuntimeError):
        y.sum().backward()


def test_frozen_conv_weights_still_pass_the_input_gradient():
    conv = cr.nn.Conv2d(2, 3, 3, padding=1)
    x = cr.randn(2, 2, 5, 5, requires_grad=True)
    conv(x).square().sum().backward()
    expected = x.grad.numpy().copy()
    x.grad = None
    conv.requires_grad_(False)
    conv(x).square().sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)
    assert conv.weight.grad is not None  # from the first pass only; the frozen pass added nothing
