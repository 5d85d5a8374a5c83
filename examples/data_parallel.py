"""Data parallelism: the same MLP on every rank, each rank a share of every batch, gradients averaged.

    mpiexec -n 2 python examples/data_parallel.py     # (pip install -e '.[mpi]' brings mpiexec)
    python examples/data_parallel.py                  # a world of one: the same code, one process

Every rank starts from rank 0's weights (DistributedDataParallel broadcasts them), reads its own share
of the moons set (DistributedSampler, reshuffled each epoch), and backward() averages the gradients
over the ranks, so all ranks take the same step and keep the same weights. Rank 0 alone prints.
"""

from __future__ import annotations

import chainrule as cr
from chainrule.data import DataLoader, DistributedSampler, datasets


def main() -> None:
    group = cr.distributed.init()
    cr.manual_seed(group.rank)  # different initial weights on each rank: the broadcast fixes them
    train = datasets.moons(800, noise=0.15, seed=0)
    model = cr.nn.parallel.DistributedDataParallel(cr.nn.MLP([2, 32, 32, 2]))
    opt = cr.optim.Adam(model.parameters(), lr=0.01)
    sampler = DistributedSampler(train, seed=0)
    loader = DataLoader(train, batch_size=32, sampler=sampler)
    for epoch in range(20):
        sampler.set_epoch(epoch)
        total = cr.zeros(2, dtype=cr.float64)
        for x, y in loader:
            opt.zero_grad()
            loss = cr.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            total += cr.tensor([loss.item() * len(y), len(y)], dtype=cr.float64)
        cr.distributed.all_reduce(total)  # the loss of the epoch over all ranks' samples
        if group.rank == 0 and epoch % 5 == 4:
            print(f"epoch {epoch + 1}: loss {total[0].item() / total[1].item():.4f} on {group.size} rank(s)")
    with cr.no_grad():
        accuracy = (model(cr.tensor(train.features)).argmax(1) == cr.tensor(train.targets)).float().mean().item()
    if group.rank == 0:
        print(f"training accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
