"""Bad input to conv, pooling and batch norm gets one clear sentence: who, what was expected, what came."""

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F


class _Net(cr.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = cr.nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return self.conv1(x)


def test_wrong_channel_count_names_the_layer_and_both_counts():
    with pytest.raises(ValueError, match=r"Conv2d layer 'conv1' \(3, 8, .*expected input with 3 channels, "
                                         r"got 1 channels \(input of shape \(2, 1, 8, 8\)\)"):
        _Net()(cr.zeros(2, 1, 8, 8))


def test_wrong_channel_count_in_the_functional_form():
    with pytest.raises(ValueError, match=r"conv2d: expected input with 4 channels, got 3"):
        F.conv2d(cr.zeros(1, 3, 5, 5), cr.zeros(6, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"conv1d: expected input with 2 channels, got 5"):
        F.conv1d(cr.zeros(1, 5, 9), cr.zeros(4, 2, 3))


def test_three_d_input_to_conv2d_says_what_shape_was_expected():
    with pytest.raises(ValueError, match=r"Conv2d.*expected a 4-D input \(N, C, H, W\), got a 3-D input of "
                                         r"shape \(64, 28, 28\); .*x.unsqueeze\(1\)"):
        cr.nn.Conv2d(1, 6, 5)(cr.zeros(64, 28, 28))
    with pytest.raises(ValueError, match=r"Conv1d.*expected a 3-D input \(N, C, L\), got a 4-D input"):
        cr.nn.Conv1d(1, 6, 5)(cr.zeros(2, 1, 8, 8))


@pytest.mark.parametrize("layer, shape, message", [
    (cr.nn.Conv2d(1, 2, 5), (1, 1, 4, 6),
     r"input of size \(4, 6\) \(padded to \(4, 6\)\) is smaller than the kernel, which spans \(5, 5\)"),
    (cr.nn.Conv2d(1, 2, 3, padding=1, dilation=3), (1, 1, 4, 4),
     r"padded to \(6, 6\)\) is smaller than the kernel, which spans \(7, 7\) \(kernel_size=\(3, 3\), dilation=\(3, 3\)\)"),
    (cr.nn.Conv1d(1, 2, 4), (1, 1, 3), r"input of size 3 \(padded to 3\) is smaller than the kernel"),
])
def test_input_smaller_than_the_kernel_after_padding(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer(cr.zeros(*shape))


def test_pooling_input_smaller_than_the_window():
    with pytest.raises(ValueError, match=r"MaxPool2d layer: input of size \(1, 1\) .*smaller than the window"):
        cr.nn.MaxPool2d(2)(cr.zeros(1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"avg_pool1d: input of size 2 .*smaller than the window"):
        F.avg_pool1d(cr.zeros(1, 1, 2), 3)


@pytest.mark.parametrize("make, message", [
    (lambda: cr.nn.Conv2d(3, 4, 3, groups=2), r"Conv2d: in_channels \(3\) and out_channels \(4\) must both be "
                                              r"divisible by groups \(2\)"),
    (lambda: cr.nn.Conv2d(1, 4, 3, stride=2, padding="same"), r"padding='same' is not supported for strided"),
    (lambda: cr.nn.Conv2d(1, 4, 3, padding="full"), r"padding must be an int, a tuple, 'same' or 'valid'"),
    (lambda: cr.nn.Conv2d(1, 4, 3, padding=-1), r"padding must be non-negative"),
    (lambda: cr.nn.Conv2d(1, 4, 0), r"Conv2d: kernel_size must be positive, got \(0, 0\)"),
    (lambda: cr.nn.Conv2d(1, 4, 3, padding_mode="reflect"), r"padding_mode must be 'zeros'"),
    (lambda: cr.nn.Conv1d(0, 4, 3), r"Conv1d: in_channels must be a positive integer, got 0"),
    (lambda: cr.nn.BatchNorm2d(0), r"BatchNorm2d: num_features must be a positive integer"),
    (lambda: cr.nn.BatchNorm1d(3, momentum=2.0), r"momentum must be between 0 and 1"),
    (lambda: cr.nn.Dropout2d(1.5), r"Dropout2d: probability p must be between 0 and 1"),
])
def test_bad_constructor_arguments(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_bad_kernel_size_type():
    with pytest.raises(TypeError, match=r"Conv2d: kernel_size must be an int or a tuple of 2 ints, got \(3, 3, 3\)"):
        cr.nn.Conv2d(1, 2, (3, 3, 3))


def test_pool_padding_larger_than_half_the_kernel():
    with pytest.raises(ValueError, match=r"max_pool2d: padding must be between 0 and half the kernel size"):
        F.max_pool2d(cr.zeros(1, 1, 6, 6), 2, padding=2)


def test_batch_norm_shape_errors():
    with pytest.raises(ValueError, match=r"BatchNorm2d layer \(3 features\): expected a 4-D input "
                                         r"\(N, C, H, W\), got a 3-D input of shape \(3, 5, 5\)"):
        cr.nn.BatchNorm2d(3)(cr.zeros(3, 5, 5))
    with pytest.raises(ValueError, match=r"BatchNorm1d layer: expected input with 4 channels \(features\), got 3"):
        cr.nn.BatchNorm1d(4)(cr.zeros(5, 3))
    with pytest.raises(ValueError, match=r"expected more than 1 value per channel when training"):
        cr.nn.BatchNorm1d(3)(cr.zeros(1, 3))
    with pytest.raises(ValueError, match=r"batch_norm: running_mean has shape \(2,\), expected \(3,\)"):
        F.batch_norm(cr.zeros(4, 3), cr.zeros(2), cr.ones(3))


def test_single_sample_in_eval_mode_is_fine():
    bn = cr.nn.BatchNorm1d(3).eval()
    np.testing.assert_allclose(bn(cr.ones(1, 3)).detach().numpy(), np.ones((1, 3)) / np.sqrt(1 + 1e-5), rtol=1e-6)
