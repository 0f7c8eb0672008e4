#!/usr/bin/env python3
"""Chaos runs of a real synod cluster: faults from a seeded schedule, a recorded
history, a checker.

  python3 tests/chaos/run_chaos.py --seed 17 --nodes 3 --nemesis kill,pause,partition \\
      --workload register --duration 30

  # many schedules
  python3 tests/chaos/run_chaos.py --seed 100 --seeds 20 --nemesis all --workload register,set
  # a soak run: schedules of --duration each, over every combination given, for 2 hours
  python3 tests/chaos/run_chaos.py --long 2h --nemesis all --workload register,set --nodes 3,5

A failing run prints the minimal failing sub-history, the seed, the command that
replays its schedule, and where the history (checker.history JSON lines), the
node logs and the fault events were saved. Exit code: 0 every run passed, 1 some
run failed (violation, crash, stuck cluster, harness error), 2 only "unknown"
(the checker ran out of time) besides passes.

Uses build/default unless SYNOD_BIN, SYNOD_PLUGIN_DIR, ... are set (or --build-dir).
"""
import argparse
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def parse_span(text: str) -> float:
    m = re.fullmatch(r"\s*([\d.]+)\s*([smhd]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (e.g. 90, 90s, 30m, 2h)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=None, help="first seed (default: from the clock)")
    p.add_argument("--seeds", type=int, default=1, help="number of schedules (seed, seed+1, ...)")
    p.add_argument("--nodes", default="3", help="3 or 5; a comma list cycles")
    p.add_argument("--nemesis", default="kill,pause,partition",
                   help="comma list of kill,pause,partition,delay,skew; 'all' or 'none'")
    p.add_argument("--workload", default="register", help="register, set, bank, lock; a comma list cycles")
    p.add_argument("--duration", type=parse_span, default=30.0, help="seconds of faults per run")
    p.add_argument("--long", type=parse_span, default=None, metavar="SPAN",
                   help="soak: keep running schedules (next seeds) until SPAN has passed, e.g. 2h")
    p.add_argument("--keep-going", action="store_true", help="do not stop at the first failure")
    p.add_argument("--clients", type=int, default=None)
    p.add_argument("--heal", type=float, default=None, help="seconds of load after healing")
    p.add_argument("--op-timeout", type=float, default=None)
    p.add_argument("--keys", type=int, default=None)
    p.add_argument("--ops-per-key", type=int, default=None)
    p.add_argument("--read-fraction", type=float, default=None)
    p.add_argument("--accounts", type=int, default=None, help="bank: accounts of 100 each (8)")
    p.add_argument("--think-ms", type=float, default=None)
    p.add_argument("--target", choices=["leader", "home", "rr", "mixed"], default=None)
    p.add_argument("--read-target", choices=["leader", "home", "rr"], default=None)
    p.add_argument("--unsafe-follower-reads", action="store_true",
                   help="TEST ONLY: start nodes with --unsafe-follower-reads (expect a violation)")
    p.add_argument("--check-timeout", type=float, default=None)
    p.add_argument("--out", default=None, help="where failing runs are saved (default /tmp/synod-chaos)")
    p.add_argument("--keep", action="store_true", help="keep logs and history of passing runs too")
    p.add_argument("--build-dir", default=None, help="the build tree (default build/default)")
    p.add_argument("--quiet", action="store_true", help="no per-fault lines")
    a = p.parse_args(argv)

    if a.build_dir:
        b = os.path.abspath(a.build_dir)
        os.environ["SYNOD_BIN"] = os.path.join(b, "tools", "synod")
        os.environ["SYNODCTL_BIN"] = os.path.join(b, "tools", "synodctl")
        os.environ["SYNOD_PLUGIN_DIR"] = os.path.join(b, "lib", "synod")
        fix = os.path.join(b, "tests", "chaos", "libsynod_faketime_fix.so")
        if os.path.exists(fix):
            os.environ["SYNOD_FAKETIME_FIX"] = fix
    from synod_chaos.nemesis import NEMESES
    from synod_chaos.runner import RunConfig, run
    from synod_chaos.workloads import WORKLOADS

    if a.nemesis == "all":
        nemeses = list(NEMESES)
    elif a.nemesis in ("none", ""):
        nemeses = []
    else:
        nemeses = [x.strip() for x in a.nemesis.split(",") if x.strip()]
        for x in nemeses:
            if x not in NEMESES:
                p.error(f"unknown nemesis {x!r}; known: {', '.join(NEMESES)}")
    workloads = [x.strip() for x in a.workload.split(",") if x.strip()]
    for w in workloads:
        if w not in WORKLOADS:
            p.error(f"unknown workload {w!r}; known: {', '.join(WORKLOADS)}")
    node_counts = [int(x) for x in a.nodes.split(",")]
    for n in node_counts:
        if n < 1 or n > 9:
            p.error("--nodes: 1..9")
    seed = a.seed if a.seed is not None else int(time.time()) % 1_000_000

    # SIGTERM / SIGHUP clean up like ^C does.
    def on_signal(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    overrides = {k: v for k, v in {
        "clients": a.clients, "heal": a.heal, "op_timeout": a.op_timeout, "keys": a.keys,
        "ops_per_key": a.ops_per_key, "read_fraction": a.read_fraction, "accounts": a.accounts, "think_ms": a.think_ms,
        "target": a.target, "read_target": a.read_target, "check_timeout": a.check_timeout,
        "out_dir": a.out}.items() if v is not None}

    started = time.monotonic()
    results = []
    i = 0
    try:
        while True:
            if a.long is not None:
                if time.monotonic() - started >= a.long:
                    break
            elif i >= a.seeds:
                break
            cfg = RunConfig(seed=seed + i, nodes=node_counts[i % len(node_counts)], nemeses=nemeses,
                            workload=workloads[(i // len(node_counts)) % len(workloads)],
                            duration=a.duration, unsafe_follower_reads=a.unsafe_follower_reads,
                            keep=a.keep, quiet=a.quiet, **overrides)
            print(f"=== run {i + 1}: {cfg.replay_command()}", flush=True)
            r = run(cfg)
            results.append(r)
            print(r.summary(), flush=True)
            i += 1
            if not r.passed and r.outcome != "unknown" and not a.keep_going:
                break
    except KeyboardInterrupt as e:
        print(f"interrupted ({e}); every process and proxy was stopped", file=sys.stderr)
        return 130

    total = len(results)
    bad = [r for r in results if not r.passed and r.outcome != "unknown"]
    unknown = [r for r in results if r.outcome == "unknown"]
    ops = sum(r.ops for r in results)
    faults = {}
    for r in results:
        for k, v in r.faults.items():
            faults[k] = faults.get(k, 0) + v
    print(f"\n{total} run(s) in {time.monotonic() - started:.0f}s: {total - len(bad) - len(unknown)} ok, "
          f"{len(unknown)} unknown, {len(bad)} failed; {ops} ops checked "
          f"(ok {sum(r.ok for r in results)}, failed {sum(r.failed for r in results)}, "
          f"unknown {sum(r.unknown for r in results)}); faults: "
          f"{', '.join(f'{k} {v}' for k, v in sorted(faults.items())) or 'none'}")
    for r in bad:
        print(f"  FAILED {r.outcome}: seed {r.config.seed}: {r.config.replay_command()}"
              f"{'  history: ' + r.history_path if r.history_path else ''}")
    return 1 if bad else (2 if unknown else 0)


if __name__ == "__main__":
    sys.exit(main())
