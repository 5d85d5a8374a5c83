import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F

torch = pytest.importorskip("torch")

GEOMETRIES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=1, dilation=2),
    dict(kernel_size=2, stride=2, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1)),
]


@pytest.mark.parametrize("options", GEOMETRIES)
def test_max_pool2d_indices_match_torch(options):
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 9)).astype(np.float32)
    out, idx = F.max_pool2d(cr.tensor(x), return_indices=True, **options)
    t_out, t_idx = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **options)
    np.testing.assert_array_equal(out.numpy(), t_out.numpy())
    np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())
    assert idx.dtype == cr.int64


def test_max_pool1d_and_module_return_indices():
    x = np.random.default_rng(1).standard_normal((2, 4, 11)).astype(np.float32)
    out, idx = cr.nn.MaxPool1d(3, stride=2, padding=1, return_indices=True)(cr.tensor(x))
    t_out, t_idx = torch.nn.MaxPool1d(3, stride=2, padding=1, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(out.numpy(), t_out.numpy())
    np.testing.assert_array_equal(idx.numpy(), t_idx.numpy())


def test_pool_indices_point_at_the_maxima_and_keep_the_gradient():
    x = cr.randn(1, 2, 6, 6, requires_grad=True)
    out, idx = F.max_pool2d(x, 2, return_indices=True)
    flat = x.detach().numpy().reshape(1, 2, 36)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.numpy().reshape(1, 2, -1), 2),
                                  out.detach().numpy().reshape(1, 2, -1))
    out.sum().backward()
    assert x.grad.sum().item() == 18.0  # one winner per window
