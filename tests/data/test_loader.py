import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.data import ConcatDataset, DataLoader, Dataset, Subset, TensorDataset, random_split


def _dataset(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return TensorDataset(x, y)


class ListDataset(Dataset):
    """A dataset read sample by sample (the generic, collating path)."""

    def __init__(self, n):
        self.x = np.arange(n * 2, dtype=np.float64).reshape(n, 2)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(i)


def test_tensor_dataset_items_are_rows_of_each_tensor():
    ds = _dataset()
    x, y = ds[3]
    assert isinstance(x, cr.Tensor) and isinstance(y, cr.Tensor)
    np.testing.assert_array_equal(x.numpy(), [9, 10, 11])
    assert y.item() == 3
    assert len(ds) == 10
    np.testing.assert_array_equal(ds.targets, np.arange(10))
    assert ds.features.shape == (10, 3)


def test_tensor_dataset_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match=r"same number of samples.*\[4, 5\]"):
        TensorDataset(np.zeros((4, 2)), np.zeros(5))


def test_tensor_dataset_keeps_array_without_copy():
    x = np.zeros((4, 2), np.float64)
    ds = TensorDataset(x, cr.tensor([0, 1, 2, 3]))
    assert ds.tensors[0]._data is x
    assert ds.tensors[0].dtype == np.float64


@pytest.mark.parametrize("n,batch_size,drop_last,expected", [(10, 3, False, 4), (10, 3, True, 3), (9, 3, True, 3), (2, 5, True, 0), (2, 5, False, 1)])
def test_len_is_iterations_per_epoch(n, batch_size, drop_last, expected):
    loader = DataLoader(_dataset(n), batch_size=batch_size, drop_last=drop_last)
    assert len(loader) == expected
    batches = list(loader)
    assert len(batches) == expected
    sizes = [len(b[1]) for b in batches]
    if drop_last:
        assert all(s == batch_size for s in sizes)
    else:
        assert sum(sizes) == n


def test_unshuffled_batches_are_in_order_and_are_tensors():
    batches = list(DataLoader(_dataset(), batch_size=4))
    assert all(isinstance(t, cr.Tensor) for b in batches for t in b)
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), np.arange(10))
    np.testing.assert_array_equal(batches[0][0].numpy(), np.arange(12).reshape(4, 3))


def test_shuffle_visits_every_sample_once_and_redraws_each_epoch():
    loader = DataLoader(_dataset(50), batch_size=7, shuffle=True, generator=0)
    epoch1 = np.concatenate([y.numpy() for _, y in loader])
    epoch2 = np.concatenate([y.numpy() for _, y in loader])
    assert sorted(epoch1) == list(range(50)) and sorted(epoch2) == list(range(50))
    assert not np.array_equal(epoch1, epoch2)
    assert not np.array_equal(epoch1, np.arange(50))


def test_features_stay_paired_with_targets_when_shuffled():
    for x, y in DataLoader(_dataset(20), batch_size=6, shuffle=True, generator=3):
        np.testing.assert_array_equal(x.numpy()[:, 0], 3 * y.numpy())


def test_shuffle_is_reproducible_from_a_seed():
    def orders(generator):
        loader = DataLoader(_dataset(30), batch_size=8, shuffle=True, generator=generator)
        return [np.concatenate([y.numpy() for _, y in loader]) for _ in range(3)]

    a, b = orders(5), orders(5)
    for ea, eb in zip(a, b):
        np.testing.assert_array_equal(ea, eb)
    c = orders(np.random.default_rng(6))
    assert not np.array_equal(a[0], c[0])


def test_shuffle_without_generator_follows_manual_seed():
    loader = DataLoader(_dataset(30), batch_size=30, shuffle=True)
    cr.manual_seed(11)
    first = next(iter(loader))[1].numpy()
    cr.manual_seed(11)
    again = next(iter(loader))[1].numpy()
    np.testing.assert_array_equal(first, again)


def test_fast_path_does_not_call_getitem_per_sample():
    class Counting(TensorDataset):
        calls = 0

        def __getitem__(self, index):
            Counting.calls += 1
            return super().__getitem__(index)

    ds = Counting(np.zeros((100, 2)), np.zeros(100))
    batches = list(DataLoader(Subset(ds, np.arange(50, 100)), batch_size=10, shuffle=True, generator=0))
    assert len(batches) == 5
    assert Counting.calls == 0


def test_batches_are_copies_not_views_of_the_dataset():
    ds = _dataset()
    x, _ = next(iter(DataLoader(ds, batch_size=4)))
    x._data[...] = -1
    assert ds.features.min() == 0


def test_generic_dataset_is_collated():
    batches = list(DataLoader(ListDataset(5), batch_size=2))
    assert len(batches) == 3
    x, y = batches[0]
    assert isinstance(x, cr.Tensor) and x.shape == (2, 2) and x.dtype == np.float64
    np.testing.assert_array_equal(y.numpy(), [0, 1])
    assert batches[-1][0].shape == (1, 2)


def test_generic_and_fast_paths_give_the_same_batches():
    ds = _dataset(17)

    class Slow(Dataset):
        def __len__(self):
            return len(ds)

        def __getitem__(self, i):
            return ds[i]

    fast = list(DataLoader(ds, batch_size=5, shuffle=True, generator=1))
    slow = list(DataLoader(Slow(), batch_size=5, shuffle=True, generator=1))
    for (xf, yf), (xs, ys) in zip(fast, slow):
        np.testing.assert_array_equal(xf.numpy(), xs.numpy())
        np.testing.assert_array_equal(yf.numpy(), ys.numpy())


def test_collate_dicts():
    class Dicts(Dataset):
        def __len__(self):
            return 3

        def __getitem__(self, i):
            return {"x": np.full(2, i, np.float32), "y": i}

    batch = next(iter(DataLoader(Dicts(), batch_size=3)))
    np.testing.assert_array_equal(batch["y"].numpy(), [0, 1, 2])
    assert batch["x"].shape == (3, 2)


def test_transform_applies_to_inputs_of_each_batch():
    loader = DataLoader(_dataset(), batch_size=5, transform=lambda x: x * 2)
    x, y = next(iter(loader))
    np.testing.assert_array_equal(x.numpy(), 2 * np.arange(15).reshape(5, 3))
    np.testing.assert_array_equal(y.numpy(), np.arange(5))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_batch_size_is_refused(bad):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader(_dataset(), batch_size=bad)


def test_bad_generator_is_refused():
    with pytest.raises(TypeError, match="generator must be"):
        DataLoader(_dataset(), shuffle=True, generator="seed")


def test_random_split_partitions_and_is_seeded():
    ds = _dataset(10)
    a, b = random_split(ds, [7, 3], generator=0)
    assert len(a) == 7 and len(b) == 3
    assert sorted(np.concatenate([a.indices, b.indices])) == list(range(10))
    a2, _ = random_split(ds, [7, 3], generator=0)
    np.testing.assert_array_equal(a.indices, a2.indices)
    np.testing.assert_array_equal(a.targets, ds.targets[a.indices])


def test_random_split_accepts_fractions():
    parts = random_split(_dataset(10), [0.5, 0.3, 0.2], generator=1)
    assert [len(p) for p in parts] == [5, 3, 2]
    parts = random_split(_dataset(11), [0.5, 0.5], generator=1)
    assert [len(p) for p in parts] == [6, 5]


def test_random_split_lengths_must_cover_the_dataset():
    with pytest.raises(ValueError, match=r"sum to 9, but the dataset has 10 samples"):
        random_split(_dataset(10), [6, 3])


def test_subset_of_subset_reads_the_right_rows():
    ds = _dataset(10)
    inner = Subset(ds, [9, 8, 7, 6, 5])
    outer = Subset(inner, [4, 0])
    np.testing.assert_array_equal(outer.targets, [5, 9])
    assert outer[1][1].item() == 9
    (x, y), = list(DataLoader(outer, batch_size=2))
    np.testing.assert_array_equal(y.numpy(), [5, 9])


def test_subset_rejects_out_of_range_indices():
    with pytest.raises(IndexError, match=r"indices must lie in \[-10, 10\)"):
        Subset(_dataset(10), [0, 10])


def test_concat_dataset():
    ds = ConcatDataset([_dataset(3), _dataset(2)])
    assert len(ds) == 5
    assert ds[3][1].item() == 0 and ds[2][1].item() == 2
    ys = np.concatenate([y.numpy() for _, y in DataLoader(ds, batch_size=2)])
    np.testing.assert_array_equal(ys, [0, 1, 2, 0, 1])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), batch_size=st.integers(1, 12), shuffle=st.booleans(), drop_last=st.booleans(), seed=st.integers(0, 3))
def test_batches_cover_the_dataset_as_documented(n, batch_size, shuffle, drop_last, seed):
    loader = DataLoader(_dataset(n), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, generator=seed)
    batches = [y.numpy() for _, y in loader]
    assert len(batches) == len(loader) == (n // batch_size if drop_last else -(-n // batch_size))
    seen = np.concatenate(batches) if batches else np.array([], np.int64)
    assert len(set(seen.tolist())) == len(seen)  # no sample twice in an epoch
    assert len(seen) == (len(batches) * batch_size if drop_last else n)
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(len(seen)))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 60), weights=st.lists(st.integers(1, 5), min_size=1, max_size=4))
def test_random_split_fractions_always_partition(n, weights):
    fractions = [w / sum(weights) for w in weights]
    fractions[-1] = 1.0 - sum(fractions[:-1])
    parts = random_split(_dataset(n), fractions, generator=0)
    assert sum(len(p) for p in parts) == n
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == list(range(n))


def test_loader_generator_state_resumes_the_same_shuffles(tmp_path):
    loader = DataLoader(_dataset(30), batch_size=30, shuffle=True, generator=4)
    next(iter(loader))
    cr.save({"loader": loader}, tmp_path / "l.safetensors")
    expected = [next(iter(loader))[1].numpy() for _ in range(2)]
    fresh = DataLoader(_dataset(30), batch_size=30, shuffle=True, generator=99)
    fresh.load_state_dict(cr.load(tmp_path / "l.safetensors")["loader"])
    for e in expected:
        np.testing.assert_array_equal(next(iter(fresh))[1].numpy(), e)
    assert DataLoader(_dataset(3)).state_dict() == {}


def test_num_workers_is_accepted_with_a_warning():
    with pytest.warns(UserWarning, match="num_workers=2 is ignored"):
        loader = DataLoader(_dataset(4), batch_size=2, num_workers=2)
    assert len(list(loader)) == 2
