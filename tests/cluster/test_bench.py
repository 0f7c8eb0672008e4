"""synod-bench against three real nodes: it runs and reports (issue #5).

Proves the load generator works, never how fast the cluster is: a benchmark is
a program, and CI runs it once briefly. SYNOD_BENCH_BIN names the binary (set
by tests/cluster/CMakeLists.txt for the cluster_bench_tests CTest entry).
"""
import json
import os
import subprocess

import pytest

BENCH = os.environ.get("SYNOD_BENCH_BIN")
pytestmark = pytest.mark.skipif(not BENCH, reason="SYNOD_BENCH_BIN is not set")


def bench(*args, timeout=120):
    return subprocess.run([BENCH, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("workload", ["put", "get"])
def test_bench_runs_and_reports_json(cluster, workload):
    r = bench("--cluster", cluster.addrs, "--workload", workload, "--duration", "1",
              "--warmup", "0.2", "--clients", "4", "--keys", "200", "--json", "--status")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["workload"] == workload
    assert out["clients"] == 4
    assert out["ops"] > 0, out
    assert out["errors"] == {} and out["errors_total"] == 0, out
    lat = out["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"], lat
    assert out["throughput_ops_s"] > 0
    if workload == "put":
        assert out["writes"] == out["ops"] and out["reads"] == 0
        assert out["status"]["leader_syncs"] > 0 and out["status"]["writes_per_sync"] > 0, out
    else:
        assert out["reads"] == out["ops"] and out["writes"] == 0
        assert out["preload"]["written"] == 200, out
    # The progress line went to stderr, the JSON alone to stdout.
    assert "ops/s" in r.stderr


def test_bench_text_report(cluster):
    r = bench("--cluster", cluster.addrs, "--workload", "mixed:0.5", "--duration", "0.5",
              "--warmup", "0", "--clients", "2", "--keys", "50", "--no-progress")
    assert r.returncode == 0, r.stderr
    for word in ("throughput", "p50", "p99.9", "errors        none"):
        assert word in r.stdout, r.stdout
    assert r.stderr == ""


@pytest.mark.parametrize("args", [
    [],                                                   # --cluster is required
    ["--cluster", "127.0.0.1:1", "--workload", "scan"],
    ["--cluster", "127.0.0.1:1", "--workload", "mixed:1.5"],
    ["--cluster", "127.0.0.1:1", "--clients", "0"],
    ["--cluster", "127.0.0.1:1", "--clients", "2", "--connections", "3"],
    ["--cluster", "127.0.0.1:1", "--duration", "soon"],
    ["--cluster", "127.0.0.1:1", "--consistency", "strong"],
    ["--cluster", "not-an-address"],
    ["--cluster", "127.0.0.1:1", "--no-such-flag"],
])
def test_bench_bad_flags_exit_2(args):
    r = bench(*args, timeout=30)
    assert r.returncode == 2, (args, r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), args


def test_bench_unreachable_cluster_exits_1(tmp_path):
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = bench("--cluster", f"127.0.0.1:{port}", "--duration", "0.3", "--warmup", "0",
              "--timeout", "200", "--json", "--no-progress", timeout=30)
    assert r.returncode == 1, (r.stdout, r.stderr)
    out = json.loads(r.stdout)
    assert out["ops"] == 0 and "error" in out
