"""cr.distributed outside mpiexec (a world of one), DDP's bookkeeping and DistributedSampler."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.utils.data

import chainrule as cr
import chainrule.distributed as dist
from chainrule.distributed import process_group
from chainrule.distributed.reducer import plan_buckets


@pytest.fixture
def fresh_group(monkeypatch):
    for key in process_group._MPI_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(process_group, "_group", None)


def test_outside_mpiexec_the_world_is_one_process(fresh_group):
    assert not dist.is_initialized()
    group = dist.init(timeout=5)
    assert dist.is_initialized() and dist.init() is group
    assert (dist.get_rank(), dist.get_world_size(), group.timeout) == (0, 1, 5.0)
    t = cr.tensor([1.0, -2.0])
    for op in ("sum", "mean", "max", "min"):
        assert dist.all_reduce(t, op=op) is t and t.tolist() == [1.0, -2.0]
    assert dist.broadcast(t, src=0).tolist() == [1.0, -2.0]
    assert [g.tolist() for g in dist.all_gather(None, t)] == [[1.0, -2.0]]
    dist.barrier()


def test_collective_arguments_are_checked(fresh_group):
    with pytest.raises(ValueError, match="all_reduce: op must be one of sum, mean, max, min, got 'prod'"):
        dist.all_reduce(cr.ones(2), op="prod")
    with pytest.raises(TypeError, match="op='mean' needs a floating-point tensor, got int64"):
        dist.all_reduce(cr.arange(3), op="mean")
    with pytest.raises(ValueError, match=r"broadcast: rank 0 of 1: src must be a rank in 0..0, got 3"):
        dist.broadcast(cr.ones(2), src=3)
    with pytest.raises(TypeError, match="all_reduce: expected a Tensor, got list"):
        dist.all_reduce([1.0])


def test_timeout_comes_from_the_environment_and_is_validated(fresh_group, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DIST_TIMEOUT", "7.5")
    assert dist.init().timeout == 7.5
    monkeypatch.setattr(process_group, "_group", None)
    monkeypatch.setenv("CHAINRULE_DIST_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="CHAINRULE_DIST_TIMEOUT must be a number of seconds, got 'soon'"):
        dist.init()
    monkeypatch.delenv("CHAINRULE_DIST_TIMEOUT")
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds, got 0"):
        dist.init(timeout=0)


def test_under_mpiexec_without_mpi4py_the_error_says_how_to_install_it(fresh_group, monkeypatch):
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import fails as if it were not installed
    with pytest.raises(ImportError, match=r"needs mpi4py under mpiexec; install it with: pip install 'chainrule\[mpi\]'"):
        dist.init()
    assert not dist.is_initialized()


def _mlp():
    cr.manual_seed(3)
    return cr.nn.MLP([4, 8, 3])


def test_ddp_in_a_world_of_one_is_the_bare_model(fresh_group):
    bare, wrapped = _mlp(), cr.nn.parallel.DistributedDataParallel(_mlp())
    x, y = cr.randn(6, 4), cr.tensor([0, 1, 2, 0, 1, 2])
    for model in (bare, wrapped):
        cr.nn.functional.cross_entropy(model(x), y).backward()
    for p, q in zip(bare.parameters(), wrapped.module.parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    assert list(wrapped.state_dict()) == list(bare.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    with wrapped.no_sync():
        assert not wrapped.reducer.enabled
    assert wrapped.reducer.enabled


def test_ddp_state_dict_loads_into_the_bare_model_and_takes_the_module_prefix(fresh_group):
    wrapped, bare = cr.nn.parallel.DistributedDataParallel(_mlp()), cr.nn.MLP([4, 8, 3])
    bare.load_state_dict(wrapped.state_dict())
    for p, q in zip(bare.parameters(), wrapped.module.parameters()):
        np.testing.assert_array_equal(p._data, q._data)
    fresh = cr.nn.parallel.DistributedDataParallel(cr.nn.MLP([4, 8, 3]))
    fresh.load_state_dict({f"module.{k}": v for k, v in bare.state_dict().items()})  # as PyTorch's DDP saves
    np.testing.assert_array_equal(fresh.module[0].weight._data, bare[0].weight._data)


def test_ddp_arguments_are_checked(fresh_group):
    with pytest.raises(TypeError, match="DistributedDataParallel: expected a Module, got function"):
        cr.nn.parallel.DistributedDataParallel(lambda x: x)
    with pytest.raises(ValueError, match="bucket_cap_mb must be positive, got 0"):
        cr.nn.parallel.DistributedDataParallel(_mlp(), bucket_cap_mb=0)


def test_buckets_hold_the_parameters_last_first_within_the_cap_and_one_dtype_each():
    a, b, c = cr.zeros(100), cr.zeros(100), cr.zeros(300)  # 400, 400, 1200 bytes of float32
    d = cr.zeros(10, dtype=cr.float64)
    buckets = plan_buckets([c, b, a], cap_bytes=1000)
    assert [[id(p) for p in bucket] for bucket in buckets] == [[id(c)], [id(b), id(a)]]
    buckets = plan_buckets([a, d, b], cap_bytes=1000)
    assert [[id(p) for p in bucket] for bucket in buckets] == [[id(a), id(b)], [id(d)]]
    model = cr.nn.parallel.DistributedDataParallel(_mlp(), bucket_cap_mb=80 / 2**20)  # 80 bytes a bucket
    flat = [b.flat.dtype for b in model.reducer.buckets]
    assert flat == [np.dtype(np.float32)] * len(flat) and len(flat) == 4  # 2.bias is last, so first


@pytest.mark.parametrize("n", [10, 11, 3, 1])
@pytest.mark.parametrize("replicas", [2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_distributed_sampler_deals_indices_as_pytorch(n, replicas, drop_last):
    for rank in range(replicas):
        ours = cr.data.DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False,
                                          drop_last=drop_last)
        theirs = torch.utils.data.DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False,
                                                     drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_distributed_sampler_shuffles_the_same_way_on_every_rank_per_epoch():
    def shares(epoch):
        out = []
        for rank in range(3):
            s = cr.data.DistributedSampler(range(20), num_replicas=3, rank=rank, seed=5)
            s.set_epoch(epoch)
            out.append(list(s))
        return out

    first, again, other = shares(0), shares(0), shares(1)
    assert first == again and first != other
    for share in (first, other):
        flat = sum(share, [])
        assert len(flat) == 21 and set(flat) == set(range(20))  # padded by one repeated index


def test_distributed_sampler_arguments_are_checked():
    with pytest.raises(ValueError, match=r"rank must be in \[0, 1\], got 2"):
        cr.data.DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be at least 1, got 0"):
        cr.data.DistributedSampler(range(4), num_replicas=0, rank=0)
    with pytest.raises(TypeError, match="seed must be an integer, got 1.5"):
        cr.data.DistributedSampler(range(4), num_replicas=1, rank=0, seed=1.5)


def test_dataloader_reads_in_the_sampler_order():
    ds = cr.data.TensorDataset(cr.arange(10).float(), cr.arange(10))
    sampler = cr.data.DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False)
    loader = cr.data.DataLoader(ds, batch_size=2, sampler=sampler)
    assert len(loader) == 3
    assert [yb.tolist() for _, yb in loader] == [[1, 3], [5, 7], [9]]
    with pytest.raises(ValueError, match="pass either sampler= or shuffle=True, not both"):
        cr.data.DataLoader(ds, sampler=sampler, shuffle=True)


def test_convert_sync_batchnorm_shares_parameters_and_in_a_world_of_one_is_batchnorm(fresh_group):
    cr.manual_seed(2)
    model = cr.nn.Sequential(cr.nn.Conv2d(2, 3, 3), cr.nn.BatchNorm2d(3), cr.nn.Flatten(), cr.nn.Linear(12, 4),
                             cr.nn.BatchNorm1d(4))
    x = cr.randn(5, 2, 4, 4)
    cr.manual_seed(2)
    plain = cr.nn.Sequential(cr.nn.Conv2d(2, 3, 3), cr.nn.BatchNorm2d(3), cr.nn.Flatten(), cr.nn.Linear(12, 4),
                             cr.nn.BatchNorm1d(4))
    weight = model[1].weight
    converted = cr.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model and type(model[1]) is cr.nn.SyncBatchNorm and model[1].weight is weight
    assert type(model[4]) is cr.nn.SyncBatchNorm and list(model.state_dict()) == list(plain.state_dict())
    np.testing.assert_allclose(model(x).detach().numpy(), plain(x).detach().numpy(), atol=1e-6)
    model.eval()
    plain.eval()
    np.testing.assert_allclose(model(x).detach().numpy(), plain(x).detach().numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="expected input with 3 channels"):
        model[1](cr.randn(2, 5, 4, 4))
