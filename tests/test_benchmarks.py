"""Smoke test of benchmarks/run.py --quick, and the harness's bookkeeping (no timing thresholds)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))  # run.py imports its helpers by their bare names

import _harness as h  # noqa: E402
import _workloads as wl  # noqa: E402

# run.py under a name no other test module could mean
_spec = importlib.util.spec_from_file_location("chainrule_benchmarks_run", BENCH / "run.py")
run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run)


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--libs", "chainrule",
         "--workloads", "W-small,W-scalar", "--json", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, json.loads(out.read_text())


def test_quick_run_prints_a_table_per_workload_and_the_targets(quick_results):
    stdout, _ = quick_results
    assert "W-small (epochs=1): s/epoch, lower is better" in stdout
    assert "W-scalar (steps=3, micrograd_steps=1): ms/step, lower is better" in stdout
    assert "| chainrule |" in stdout
    assert "W-small epoch time <= 0.5x PyTorch's" in stdout  # the targets table, unmeasured peers included


def test_quick_run_records_metrics_load_and_blas(quick_results):
    _, data = quick_results
    assert data["meta"]["quick"] is True and data["meta"]["runs"] == 1
    (small,) = data["workloads"]["W-small"]["libs"]["chainrule"]
    assert "error" not in small
    assert small["metrics"]["epoch_s"] > 0 and len(small["metrics"]["epoch_times"]) == 1
    assert 0.3 < small["metrics"]["test_acc"] <= 1.0  # one epoch of Adam on digits learns something
    assert small["meter"]["other_cpu_s"] is None or small["meter"]["other_cpu_s"] >= 0
    assert small["notes"] == ["cr.nn.MLP"]
    assert any(b["user_api"] == "blas" for b in small["blas"])
    targets = {t["target"]: t for t in data["targets"]}
    assert targets["W-small epoch time <= 0.5x PyTorch's"]["met"] is None  # no torch in this run


def test_chainrule_follows_the_hand_written_numpy_step_exactly(quick_results):
    """Same data, same initial weights, same update rule: W-scalar's loss after 5 steps agrees."""
    _, data = quick_results
    (scalar,) = data["workloads"]["W-scalar"]["libs"]["chainrule"]
    reference = wl.w_scalar("numpy", wl.WORKLOADS["W-scalar"]["quick"])
    assert scalar["metrics"]["final_loss"] == pytest.approx(reference["metrics"]["final_loss"], rel=1e-4)


def test_numpy_reference_mlp_gradient_matches_finite_differences():
    rng = np.random.default_rng(0)
    params = [p.astype(np.float64) for p in wl.init_params(wl.mlp_spec([3, 4, 2]))]
    x, y = rng.standard_normal((5, 3)), np.array([0, 1, 1, 0, 1])
    net = wl.NumpyMLP(params)

    def loss(ps):
        net.params = ps
        logits = net.forward(x)[-1]
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -logp[np.arange(5), y].mean()

    net.params = params
    acts = net.forward(x)
    net.backward(acts, net.cross_entropy_grad(acts[-1], y))
    analytic = [g.copy() for g in net.grads]
    eps = 1e-6
    for k, p in enumerate(params):
        for idx in np.ndindex(p.shape):
            plus = [q.copy() for q in params]
            minus = [q.copy() for q in params]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            numeric = (loss(plus) - loss(minus)) / (2 * eps)
            assert analytic[k][idx] == pytest.approx(numeric, abs=1e-6)


def test_meter_charges_other_processes_not_itself():
    with h.Meter() as m:
        sum(i * i for i in range(200_000))  # own CPU only
    assert m.wall_s > 0 and m.own_cpu_s >= 0
    assert m.other_cpu_s is None or m.other_cpu_s >= 0
    combined = h.combine_meters([m, m])
    assert combined["wall_s"] == pytest.approx(2 * m.wall_s)


def test_summary_ratios_and_target_verdicts():
    def rec(value, acc):
        return {"metrics": {"epoch_s": value, "test_acc": acc}, "meter": {"load": 0.1}}

    entry = {"config": {"epochs": 10}, "libs": {
        "chainrule": [rec(1.0, 0.96), rec(3.0, 0.96), rec(2.0, 0.96)],
        "torch": [rec(5.0, 0.98), rec(4.0, 0.98), rec(6.0, 0.98)],
        "sklearn": [{"error": "worker failed"}],
    }}
    run._summarize("W-small", entry)
    assert entry["summary"]["chainrule"]["epoch_s"] == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert entry["ratios"] == {"torch": pytest.approx(2.5)}  # time 5 vs 2: chainrule 2.5x the throughput
    targets = {t["target"]: t for t in run.evaluate_targets({"W-small": entry})}
    assert targets["W-small epoch time <= 0.5x PyTorch's"]["met"] is True
    gap = targets["W-small test accuracy within 1 point of PyTorch's"]
    assert gap["value"] == pytest.approx(0.02) and gap["met"] is False
    assert targets["W-small epoch time <= 0.65x scikit-learn's"]["met"] is None
    table = run.render_workload("W-small", entry)
    assert "2.00 [1.00-3.00]" in table and "2.50x" in table and "error: worker failed" in table
    summary = run.render_summary({"W-small": entry})
    row = [cell.strip() for cell in summary.splitlines()[-1].strip("|").split("|")]
    assert row == ["W-small (s/epoch, test accuracy)", "2.00 (96.0%)", "5.00 (98.0%)", "-", "2.50x"]


def test_fmt_keeps_significant_figures():
    assert h.fmt(0.0004567) == "0.000457"
    assert h.fmt(12.345) == "12.3"
    assert h.fmt(123456.0) == "123,456"
    assert h.fmt(None) == "-"



def test_sklearn_peer_starts_from_the_shared_initial_weights():
    pytest.importorskip("sklearn")
    params = wl.init_params(wl.mlp_spec(wl.SMALL_SIZES))
    clf = wl._sklearn_mlp(wl.SMALL_SIZES, params, solver="sgd", learning_rate_init=1e-12, batch_size=32,
                          momentum=0.0)
    Xtr, ytr, _, _ = wl.digits_split()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one tiny step "does not converge"
        clf.partial_fit(Xtr[:32], ytr[:32], classes=np.arange(10))
    for coef, weight in zip(clf.coefs_, params[0::2]):
        np.testing.assert_allclose(coef, weight.T, atol=1e-6)  # sklearn keeps (in, out); PyTorch (out, in)
    assert clf.coefs_[0].dtype == np.float32
