import numpy as np
import pytest

import chainrule as cr
from chainrule.data import DataLoader, TensorDataset, transforms


def _images(n=6, c=2, h=5, w=7):
    return np.arange(n * c * h * w, dtype=np.float32).reshape(n, c, h, w) + 1


def _reference_crop(x, top, left, size, padding, fill):
    """Per-sample loop, the obvious way: the vectorized version must agree."""
    n, c, h, w = x.shape
    padded = np.full((n, c, h + 2 * padding, w + 2 * padding), fill, x.dtype)
    padded[:, :, padding : padding + h, padding : padding + w] = x
    return np.stack([padded[i, :, top[i] : top[i] + size[0], left[i] : left[i] + size[1]] for i in range(n)])


def test_random_crop_matches_a_per_sample_loop():
    x = _images()
    out = transforms.random_crop(x, (4, 6), padding=2, fill=-1.0, generator=0)
    rng = np.random.default_rng(0)
    top = rng.integers(0, 5 + 4 - 4 + 1, size=6)
    left = rng.integers(0, 7 + 4 - 6 + 1, size=6)
    np.testing.assert_array_equal(out, _reference_crop(x, top, left, (4, 6), 2, -1.0))


def test_random_shift_keeps_size_and_moves_content():
    x = np.zeros((50, 1, 9, 9), np.float32)
    x[:, 0, 4, 4] = 1.0
    out = transforms.random_shift(x, 2, generator=1)
    assert out.shape == x.shape
    assert np.all(out.sum(axis=(1, 2, 3)) == 1.0)  # a shift of 2 keeps the centre pixel inside
    rows, cols = np.nonzero(out[:, 0])[1:]
    assert rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6
    assert len(set(zip(rows, cols))) > 5  # the shifts differ from image to image


def test_shift_is_seeded_and_tensors_stay_tensors():
    x = cr.tensor(_images())
    a = transforms.RandomShift(1, generator=3)(x)
    b = transforms.RandomShift(1, generator=3)(x)
    assert isinstance(a, cr.Tensor)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    shift = transforms.RandomShift(1, generator=3)
    assert not np.array_equal(shift(x).numpy(), shift(x).numpy())  # successive batches differ


def test_horizontal_flip():
    x = _images()
    np.testing.assert_array_equal(transforms.horizontal_flip(x), x[..., ::-1])
    out = transforms.random_horizontal_flip(x, p=0.5, generator=0)
    flipped = np.random.default_rng(0).random(6) < 0.5
    for i in range(6):
        np.testing.assert_array_equal(out[i], x[i, ..., ::-1] if flipped[i] else x[i])
    np.testing.assert_array_equal(transforms.random_horizontal_flip(x, p=0.0), x)


def test_single_image_and_compose():
    img = _images(1)[0]
    pipeline = transforms.Compose([transforms.RandomCrop((5, 7), padding=0), transforms.Normalize([1.0, 2.0], [2.0, 4.0])])
    out = pipeline(img)
    assert out.shape == img.shape
    np.testing.assert_allclose(out[1], (img[1] - 2.0) / 4.0)


def test_loader_applies_augmentation_per_batch():
    x = np.zeros((8, 1, 6, 6), np.float32)
    x[:, :, 2:4, 2:4] = 1
    loader = DataLoader(TensorDataset(x, np.arange(8)), batch_size=4, transform=transforms.RandomShift(2, generator=0))
    batches = list(loader)
    assert all(b[0].shape == (4, 1, 6, 6) for b in batches)
    stacked = np.concatenate([b[0].numpy() for b in batches])
    assert not np.array_equal(stacked, x)


def test_errors():
    with pytest.raises(ValueError, match=r"expected images N x C x H x W.*got shape \(3, 4\)"):
        transforms.random_shift(np.zeros((3, 4)), 1)
    with pytest.raises(ValueError, match="crop size .* is larger than the padded image"):
        transforms.random_crop(np.zeros((1, 1, 4, 4)), 6, padding=0)
    with pytest.raises(ValueError, match="p must be a probability"):
        transforms.random_horizontal_flip(np.zeros((1, 1, 2, 2)), p=2)
    with pytest.raises(ValueError, match="expected 2 channels, got 3"):
        transforms.Normalize([0, 0], [1, 1])(np.zeros((1, 3, 2, 2)))
