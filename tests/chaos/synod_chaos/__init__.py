"""Fault-injection ("chaos") testing of real synod processes (issue #4).

  cluster    ChaosCluster: real nodes whose peer links go through the proxy
  proxy      ProxyNet: the fault-injecting, frame-aware TCP proxy
  nemesis    the faults and the seeded schedule (kill, pause, partition, delay, skew)
  client     Client: one op at a time over the raw protocol, retries, outcome classes
  workloads  register (linearizability), set (acknowledged adds survive) and bank
             (SQL through the sqlite backend: totals, ledger, identical nodes);
             lock_workload: lock (one lock, dying holders, a fenced register)
  runner     RunConfig / run(): one run, its history and its check

Importing this package puts tests/cluster (synod_harness) and tests/chaos
(checker) on sys.path and, when the environment does not name them, points
SYNOD_BIN & co. at the `default` preset's build.
"""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
CHAOS_DIR = os.path.dirname(_here)
REPO = os.path.dirname(os.path.dirname(CHAOS_DIR))
for _p in (CHAOS_DIR, os.path.join(REPO, "tests", "cluster")):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def default_env(build_dir=None):
    build = build_dir or os.path.join(REPO, "build", "default")
    os.environ.setdefault("SYNOD_BIN", os.path.join(build, "tools", "synod"))
    os.environ.setdefault("SYNODCTL_BIN", os.path.join(build, "tools", "synodctl"))
    os.environ.setdefault("SYNOD_PROTO_DIR", os.path.join(REPO, "proto"))
    os.environ.setdefault("SYNOD_PLUGIN_DIR", os.path.join(build, "lib", "synod"))
    fix = os.path.join(build, "tests", "chaos", "libsynod_faketime_fix.so")
    if os.path.exists(fix):
        os.environ.setdefault("SYNOD_FAKETIME_FIX", fix)


default_env()
