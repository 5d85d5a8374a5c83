"""Real MPI ranks: ``mpiexec -n 2`` (from the mpich wheel of chainrule[mpi]) runs mpi_worker.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("mpi_worker.py")
MPIEXEC = Path(sys.executable).with_name("mpiexec")
LIMIT = 90  # seconds for one launch; a hang is a failure, never a stuck CI


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_", "HYDI_"))}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def launch(scenario: str, outdir: Path, ranks: int = 2, **env) -> subprocess.CompletedProcess:
    assert MPIEXEC.exists(), f"{MPIEXEC} is missing: pip install -e '.[test]' brings the mpich wheel"
    cmd = [str(MPIEXEC), "-n", str(ranks), sys.executable, str(WORKER), scenario, str(outdir)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=LIMIT, env={**_env(), **env})


def reference(outdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(WORKER), "reference", str(outdir)], capture_output=True,
                          text=True, timeout=LIMIT, env=_env())


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def ranks_text(outdir: Path, ranks: int = 2) -> list[str]:
    return [(outdir / f"rank{r}.txt").read_text() if (outdir / f"rank{r}.txt").exists() else "" for r in range(ranks)]


def ranks_npz(outdir: Path, ranks: int = 2) -> list:
    return [dict(np.load(outdir / f"rank{r}.npz")) for r in range(ranks)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    two, one = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("one")
    ok(launch("train", two))
    ok(reference(one))
    return ranks_npz(two), ranks_npz(one, 1)[0]


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_two_ranks_of_batch_b_equal_one_process_of_batch_2b(trained, kind, opt):
    (rank0, rank1), single = trained
    keys = [k for k in single if k.startswith(f"{kind}/{opt}/") and not k.endswith("digests")]
    assert len(keys) == 6
    for k in keys:
        assert single[k].dtype == np.float64
        np.testing.assert_allclose(rank0[k], single[k], rtol=0, atol=1e-6, err_msg=k)
        # the trajectory moved: 20 steps changed the weights (a no-op run would also "agree")
        assert not np.allclose(single[k], ranks_npz_initial()[k], atol=1e-3) or k.endswith("bias"), k


def ranks_npz_initial() -> dict:
    sys.path.insert(0, str(WORKER.parent))
    try:
        import mpi_worker
    finally:
        sys.path.pop(0)
    out = {}
    for kind in ("mlp", "cnn"):
        model = mpi_worker.build(kind)
        for opt in ("sgd", "adam"):
            for name, p in model.state_dict().items():
                out[f"{kind}/{opt}/{name}"] = p.numpy()
    return out


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_ranks_hold_bit_identical_parameters_after_every_step(trained, kind, opt):
    (rank0, rank1), _ = trained
    for k in rank0:
        if k.startswith(f"{kind}/{opt}/"):
            assert np.array_equal(rank0[k], rank1[k]), k
    digests = rank0[f"{kind}/{opt}/digests"]
    assert len(set(digests.tolist())) == len(digests) == 20  # every step changed the parameters


def test_parameters_are_broadcast_from_rank_0_at_construction(tmp_path):
    ok(launch("broadcast_at_construction", tmp_path))
    r0, r1 = ranks_npz(tmp_path)
    import chainrule as cr

    cr.manual_seed(100)
    expected = cr.nn.Linear(5, 3)
    np.testing.assert_array_equal(r0["weight"], expected.weight._data)
    np.testing.assert_array_equal(r1["weight"], r0["weight"])
    np.testing.assert_array_equal(r1["bias"], r0["bias"])


def test_no_sync_keeps_local_gradients_and_the_next_backward_averages_their_sum(tmp_path):
    ok(launch("no_sync", tmp_path))
    r0, r1 = ranks_npz(tmp_path)
    import chainrule as cr

    sys.path.insert(0, str(WORKER.parent))
    import mpi_worker

    sys.path.pop(0)
    B = mpi_worker.B
    x, y = mpi_worker.samples("mlp", 4 * B)
    loss_fn = cr.nn.CrossEntropyLoss()

    def grads(rows):
        model = mpi_worker.build("mlp")
        loss_fn(model(cr.tensor(x[rows])), cr.tensor(y[rows])).backward()
        return {n: p.grad.numpy() for n, p in model.named_parameters()}

    local0, local1 = grads(slice(0, B)), grads(slice(B, 2 * B))
    second0, second1 = grads(slice(2 * B, 3 * B)), grads(slice(3 * B, 4 * B))
    for n in local0:
        np.testing.assert_allclose(r0[f"local/{n}"], local0[n], atol=1e-6)
        np.testing.assert_allclose(r1[f"local/{n}"], local1[n], atol=1e-6)
        want = (local0[n] + second0[n] + local1[n] + second1[n]) / 2
        np.testing.assert_allclose(r0[f"synced/{n}"], want, atol=1e-6)
        np.testing.assert_array_equal(r1[f"synced/{n}"], r0[f"synced/{n}"])
    assert bool(r0["state_dict_loads"]) and bool(r1["state_dict_loads"])
    assert r0["keys"].tolist()[0] == "0.weight"  # the bare model's names, no "module." prefix


def test_collectives_on_two_ranks(tmp_path):
    ok(launch("collectives", tmp_path))
    r0, r1 = ranks_npz(tmp_path)
    base = np.array([[1.0, -2.0], [3.0, 0.5]])
    for r in (r0, r1):
        np.testing.assert_array_equal(r["sum"], base * 3)
        np.testing.assert_array_equal(r["mean"], base * 1.5)
        np.testing.assert_array_equal(r["max"], np.maximum(base, base * 2))
        np.testing.assert_array_equal(r["min"], np.minimum(base, base * 2))
        np.testing.assert_array_equal(r["broadcast"], [1.0, 11.0])
        np.testing.assert_array_equal(r["all_gather"], [[0.0] * 3, [1.0] * 3])
        assert int(r["world"]) == 2 and bool(r["initialized"])
    assert (int(r0["my_rank"]), int(r1["my_rank"])) == (0, 1)
    # the two ranks' sampler shares are disjoint, padded to equal length, and cover the dataset
    s0, s1 = r0["sampler"].tolist(), r1["sampler"].tolist()
    assert len(s0) == len(s1) == 6 and sorted(set(s0 + s1)) == list(range(11))


def test_a_model_of_another_shape_on_one_rank_is_an_error_naming_the_parameter(tmp_path):
    ok(launch("mismatch_model", tmp_path))
    r0, r1 = ranks_text(tmp_path)
    for text in (r0, r1):
        assert text.startswith("ERROR") and "the model differs across ranks" in text and "'2.weight'" in text
    assert "rank 0 of 2" in r0 and "rank 1's entry 2 has shape (5, 8)" in r0 and "(3, 8)" in r0, r0
    assert "rank 1 of 2" in r1 and "'2.weight' has shape (5, 8) float32 on rank 1" in r1, r1


def test_mismatched_shapes_in_a_collective_are_an_error_on_every_rank(tmp_path):
    ok(launch("mismatch_collective", tmp_path))
    for r, text in enumerate(ranks_text(tmp_path)):
        error, after = text.splitlines()
        assert error.startswith(f"ERROR all_reduce: rank {r} of 2: the ranks passed tensors of different shapes"), text
        assert "rank 0: (4, 2) float32; rank 1: (4, 3) float32" in error, text
        assert after == "AFTER [2.0, 2.0]", text  # the group still works after the refused collective


def test_a_hung_rank_stops_the_others_with_an_error_naming_it(tmp_path):
    result = launch("hang", tmp_path, WORKER_TIMEOUT="2")
    assert result.returncode != 0
    r0, r1 = ranks_text(tmp_path)
    assert "rank 0 of 2: not complete after 2 s; rank 1 did not answer (died or hung)" in r0, r0 + result.stderr
    assert "FINISHED" not in r0 + r1
    assert "aborting the MPI job" in result.stderr


def test_a_rank_that_raises_ends_the_job_naming_itself(tmp_path):
    # timeout 600 s: if the job waited it out instead of aborting, the launch limit fails the test
    result = launch("raise", tmp_path, WORKER_TIMEOUT="600")
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "ValueError: rank 1 failed on purpose" in text, text
    assert "rank 1 of 2 stopped on an uncaught ValueError; aborting the MPI job" in text, text
    assert "FINISHED" not in "".join(ranks_text(tmp_path))


def test_a_killed_rank_ends_the_job(tmp_path):
    # SIGKILL: mpiexec (hydra) sees the death and ends the other ranks itself
    result = launch("kill", tmp_path, WORKER_TIMEOUT="600")
    assert result.returncode != 0
    text = result.stdout + result.stderr
    assert "Killed (signal 9)" in text, text
    assert "FINISHED" not in "".join(ranks_text(tmp_path))


def test_fit_on_two_ranks_trains_as_one_process_with_the_global_batch(tmp_path):
    ok(launch("fit", tmp_path))
    r0, r1 = ranks_npz(tmp_path)
    assert int(r0["steps"]) == int(r1["steps"]) == 3 * 6  # 64 samples: 5 global batches of 12, one of 4
    np.testing.assert_array_equal(r0["weight"], r1["weight"])
    np.testing.assert_array_equal(r0["logs"], r1["logs"])  # the same averaged figures on every rank
    sys.path.insert(0, str(WORKER.parent))
    import mpi_worker

    sys.path.pop(0)
    model, history = mpi_worker.fit_run(world=1)  # one process, batch 12, the same shuffles
    np.testing.assert_allclose(r0["weight"], model[0].weight._data, rtol=0, atol=1e-6)
    assert not np.allclose(r0["weight"], mpi_worker.build("mlp")[0].weight._data, atol=1e-2)
    single = np.array([[e["loss"], e["accuracy"]] for e in history.epochs])
    np.testing.assert_allclose(r0["logs"], single, rtol=1e-9)
    # ModelCheckpoint: rank 0 alone writes, and the file holds the bare model (it loads without DDP)
    assert (int(r0["saves"]), int(r1["saves"])) == (3, 0)
    import chainrule as cr

    bundle = cr.load(str(tmp_path / "ckpt-3.safetensors"))
    bare = mpi_worker.build("mlp")
    bare.load_state_dict(bundle["model"])  # keys of the bare model: no "module." prefix
    np.testing.assert_array_equal(bare[0].weight._data, r0["weight"])
    assert bundle["epoch"] == 3


def test_sync_batchnorm_on_two_ranks_trains_as_batchnorm_on_the_global_batch(tmp_path_factory):
    two, one = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("one")
    ok(launch("syncbn", two))
    ok(subprocess.run([sys.executable, str(WORKER), "syncbn_reference", str(one)], capture_output=True, text=True,
                      timeout=LIMIT, env=_env()))
    (r0, r1), single = ranks_npz(two), ranks_npz(one, 1)[0]
    assert r0["kinds"].tolist().count("SyncBatchNorm") == 2 and "SyncBatchNorm" not in single["kinds"].tolist()
    names = [k for k in single if k not in ("digests", "kinds")]
    assert "1.running_var" in names and "6.running_mean" in names
    for k in names:
        np.testing.assert_allclose(r0[k], single[k], rtol=0, atol=1e-6, err_msg=k)
        assert np.array_equal(r0[k], r1[k]), k
    assert r0["digests"].tolist() == r1["digests"].tolist()
