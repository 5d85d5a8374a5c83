"""Two "hosts": two Linux network namespaces joined by a veth pair, one MPI rank in each, TCP between.

mpiexec (hydra) starts in namespace A; for host B it runs its proxy through a launcher script that
does what ssh would, `ip netns exec B ...`. UCX (MPICH's netmod here) would otherwise move the data
through shared memory, which network namespaces do not separate (same kernel, same /dev/shm, the
peer's memory readable with process_vm_readv): UCX_TLS=tcp and UCX_NET_DEVICES make it use TCP on
the veth, and the veth's byte counter proves the gradients crossed it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from test_mpi_ranks import LIMIT, MPIEXEC, WORKER, _env, ok, ranks_npz, reference

IFACE = "crveth"
HOSTS = ("10.214.0.1", "10.214.0.2")


def _root_and_ip() -> str | None:
    if os.geteuid() != 0:
        return "needs root (it creates network namespaces)"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    return None


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=30)


@pytest.fixture
def namespaces(tmp_path):
    reason = _root_and_ip()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the two-host test must run in CI: it {reason}")
        pytest.skip(reason)
    tag = f"cr{os.getpid() % 100000}"
    names = (f"{tag}a", f"{tag}b")
    try:
        for ns in names:
            _sh("ip", "netns", "add", ns)
        _sh("ip", "link", "add", f"{tag}va", "type", "veth", "peer", "name", f"{tag}vb")
        for ns, end, host in zip(names, ("va", "vb"), HOSTS):
            _sh("ip", "link", "set", f"{tag}{end}", "netns", ns)
            _sh("ip", "-n", ns, "link", "set", f"{tag}{end}", "name", IFACE)
            _sh("ip", "-n", ns, "addr", "add", f"{host}/24", "dev", IFACE)
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
            _sh("ip", "-n", ns, "link", "set", IFACE, "up")
        launcher = tmp_path / "netns-ssh"
        launcher.write_text(
            "#!/bin/sh\n# what ssh HOST COMMAND would do, for the two namespaces of this test\n"
            'while [ "${1#-}" != "$1" ]; do shift; done\n'
            'host="$1"; shift\n'
            f'case "$host" in {HOSTS[0]}) ns={names[0]} ;; {HOSTS[1]}) ns={names[1]} ;; '
            '*) echo "netns-ssh: unknown host $host" >&2; exit 1 ;; esac\n'
            'exec ip netns exec "$ns" sh -c "$*"\n'
        )
        launcher.chmod(0o755)
        yield names, launcher
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def _tx_bytes(ns: str) -> int:
    out = subprocess.run(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{IFACE}/statistics/tx_bytes"],
                         capture_output=True, text=True, timeout=30, check=True)
    return int(out.stdout)


def test_two_ranks_in_two_network_namespaces_over_tcp_train_as_one_process(namespaces, tmp_path):
    (ns_a, ns_b), launcher = namespaces
    out, single_dir = tmp_path / "two", tmp_path / "one"
    out.mkdir()
    single_dir.mkdir()
    before = _tx_bytes(ns_a), _tx_bytes(ns_b)
    env = {**_env(), "UCX_TLS": "tcp", "UCX_NET_DEVICES": IFACE}
    cmd = ["ip", "netns", "exec", ns_a, str(MPIEXEC), "-launcher", "ssh", "-launcher-exec", str(launcher),
           "-hosts", ",".join(HOSTS), "-n", "2", "-ppn", "1", "-iface", IFACE,
           sys.executable, str(WORKER), "train", str(out)]
    ok(subprocess.run(cmd, capture_output=True, text=True, timeout=LIMIT, env=env))
    sent = _tx_bytes(ns_a) - before[0], _tx_bytes(ns_b) - before[1]
    # 4 runs x 20 steps of float64 gradients (355 and 378 numbers) each way: about 230 kB
    assert min(sent) > 150_000, f"bytes sent over the veth: {sent}; the ranks talked some other way"
    ok(reference(single_dir))
    (r0, r1), single = ranks_npz(out), ranks_npz(single_dir, 1)[0]
    for k in single:
        if k.endswith("digests"):
            assert r0[k].tolist() == r1[k].tolist(), k
            continue
        np.testing.assert_allclose(r0[k], single[k], rtol=0, atol=1e-6, err_msg=k)
        assert np.array_equal(r0[k], r1[k]), k


def test_two_ranks_over_tcp_on_one_machine(tmp_path):
    # Without namespaces: UCX restricted to TCP on this machine's own address (the kernel routes it
    # through loopback; UCX refuses the lo device itself, "Destination is unreachable").
    env = {**_env(), "UCX_TLS": "tcp"}
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, str(WORKER), "collectives", str(tmp_path)]
    ok(subprocess.run(cmd, capture_output=True, text=True, timeout=LIMIT, env=env))
    r0, r1 = ranks_npz(tmp_path)
    base = np.array([[1.0, -2.0], [3.0, 0.5]])
    for r in (r0, r1):
        np.testing.assert_array_equal(r["sum"], base * 3)
        np.testing.assert_array_equal(r["all_gather"], [[0.0] * 3, [1.0] * 3])
