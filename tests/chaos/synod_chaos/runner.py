"""One chaos run: a cluster, concurrent clients, a seeded fault schedule, a history,
and the workload's checker.

    cfg = RunConfig(seed=17, nodes=3, nemeses=["kill", "pause", "partition"],
                    workload="register", duration=30)
    result = run(cfg)          # never leaves a process or a proxy behind
    print(result.summary())

Phases: start the cluster and wait for a leader; clients run for `duration`
seconds while the schedule's faults start and stop; then every fault is healed
(nodes restarted, resumed, links whole) and the clients go on for `heal`
seconds; then a barrier write must succeed (liveness); then the workload's final
step (e.g. reading every node's set) and its checker. Nodes that exit without
being killed are reported as crashes.
"""
from __future__ import annotations

import json
import os
import random
import shlex
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field

from checker import history
from checker.history import Op
from synod_harness import protos

from .client import Client
from .cluster import ChaosCluster, non_loopback_listeners
from .nemesis import NEMESES, SkewNemesis, make_schedule
from .workloads import WORKLOADS

DEFAULT_OUT = os.environ.get("SYNOD_CHAOS_OUT", "/tmp/synod-chaos")


@dataclass
class RunConfig:
    seed: int = 1
    nodes: int = 3
    nemeses: list = field(default_factory=lambda: ["kill", "pause", "partition"])
    workload: str = "register"
    duration: float = 30.0
    clients: int = 8
    heal: float = 3.0               # seconds of fault-free load after healing
    op_timeout: float = 4.0         # an op's deadline: retries stop, outcome unknown
    attempt_timeout: float = 1.0    # one request's timeout (server side too)
    think_ms: float = 5.0           # mean pause between a client's ops
    keys: int = 4                   # register: keys in use at a time
    ops_per_key: int = 1000         # register: ops on a key before it is retired
    read_fraction: float = 0.5      # register, bank
    accounts: int = 8               # bank: accounts of 100 each
    target: str = "mixed"           # where writes go: leader | home | rr | mixed
    read_target: str = ""           # register reads: "" = like writes, or leader | home | rr
    unsafe_follower_reads: bool = False
    check_timeout: float = 60.0
    out_dir: str = DEFAULT_OUT
    keep: bool = False              # keep data dirs and logs even when the run passes
    quiet: bool = False

    def replay_command(self) -> str:
        d = RunConfig()
        cmd = ["python3", "tests/chaos/run_chaos.py", "--seed", str(self.seed),
               "--nodes", str(self.nodes), "--nemesis", ",".join(self.nemeses) or "none",
               "--workload", self.workload, "--duration", f"{self.duration:g}"]
        for name, flag in (("clients", "--clients"), ("heal", "--heal"),
                           ("op_timeout", "--op-timeout"), ("keys", "--keys"),
                           ("ops_per_key", "--ops-per-key"), ("target", "--target"),
                           ("read_target", "--read-target"), ("think_ms", "--think-ms"),
                           ("read_fraction", "--read-fraction"), ("accounts", "--accounts")):
            v = getattr(self, name)
            if v != getattr(d, name):
                cmd += [flag, str(v)]
        if self.unsafe_follower_reads:
            cmd.append("--unsafe-follower-reads")
        return " ".join(shlex.quote(c) for c in cmd)


@dataclass
class RunResult:
    config: RunConfig
    outcome: str = "unknown"        # ok | violation | unknown | crash | stuck | error
    ops: int = 0
    ok: int = 0
    failed: int = 0
    unknown: int = 0
    by_f: dict = field(default_factory=dict)       # f -> {"ok": n, "failed": n, "unknown": n}
    proxy: str = ""
    faults: dict = field(default_factory=dict)
    check_outcome: str = ""
    check_s: float = 0.0
    check_summary: str = ""         # the checker's numbers (e.g. the bank's reads checked)
    explanation: str = ""
    sub_history: list = field(default_factory=list)
    problems: list = field(default_factory=list)   # crashes, liveness, errors
    history_path: str = ""
    run_dir: str = ""
    wall_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.outcome == "ok"

    def summary(self) -> str:
        c = self.config
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        lines = [
            f"[{c.workload} seed {c.seed}, {c.nodes} nodes, nemesis {','.join(c.nemeses) or 'none'}, "
            f"{c.duration:g}s{' UNSAFE-FOLLOWER-READS' if c.unsafe_follower_reads else ''}] "
            f"{self.outcome.upper()}",
            f"  ops {self.ops}: ok {self.ok}, failed {self.failed}, unknown {self.unknown} "
            f"({'; '.join(f'{k} {sum(v.values())}: ' + '/'.join(str(v[x]) for x in ('ok', 'failed', 'unknown')) for k, v in sorted(self.by_f.items()))})",
            f"  faults injected: {faults}; proxy: {self.proxy or '-'}",
            f"  checker: {self.check_outcome or '-'} in {self.check_s:.2f}s; run took {self.wall_s:.1f}s",
        ]
        if self.check_summary:
            lines.append(f"  {self.check_summary}")
        for p in self.problems:
            lines.append(f"  PROBLEM: {p}")
        if self.outcome != "ok":
            if self.explanation:
                lines.append("  " + self.explanation.replace("\n", "\n  "))
            if self.history_path:
                lines.append(f"  history: {self.history_path}")
            if self.run_dir:
                lines.append(f"  logs, faults, run.json: {self.run_dir}")
            lines.append(f"  seed {c.seed}; replay: {c.replay_command()}")
        return "\n".join(lines)


class Run:
    def __init__(self, cfg: RunConfig):
        if cfg.workload not in WORKLOADS:
            raise ValueError(f"unknown workload {cfg.workload!r}; known: {', '.join(sorted(WORKLOADS))}")
        self.cfg = cfg
        self.pb, self.kv = protos()
        self.result = RunResult(cfg)
        self.schedule = make_schedule(cfg.seed, cfg.nemeses, cfg.duration, cfg.nodes)
        self.workload = WORKLOADS[cfg.workload](cfg)
        self.history: list[Op] = []
        self.hist_lock = threading.Lock()
        self.events: list[str] = []
        self.stop_clients = threading.Event()
        self.threads: list[threading.Thread] = []
        self.client_errors: list[str] = []
        self.cluster: ChaosCluster | None = None
        self.barrier_slot = 0
        self.converged: list[int] = []
        self.final: dict = {}
        self.t0 = time.monotonic()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.run_dir = os.path.join(cfg.out_dir, f"{stamp}-{cfg.workload}-seed{cfg.seed}-n{cfg.nodes}"
                                    f"-{os.getpid()}")

    # ------------------------------------------------------------ logging

    def note(self, msg: str):
        line = f"{time.monotonic() - self.t0:8.3f}s {msg}"
        self.events.append(line)
        if not self.cfg.quiet:
            print("  " + line, flush=True)

    # ------------------------------------------------------------ clients

    def _client_loop(self, client: Client, rng: random.Random):
        try:
            while not self.stop_clients.is_set():
                op = self.workload.generate(client, rng)
                op.invoke = time.monotonic()
                with self.hist_lock:
                    self.history.append(op)
                self.workload.execute(client, op, op.invoke + self.cfg.op_timeout)
                if op.ok is not None:
                    op.complete = time.monotonic()
                if self.cfg.think_ms:
                    time.sleep(rng.expovariate(1000.0 / self.cfg.think_ms))
        except Exception:
            self.client_errors.append(f"client {client.index}: {traceback.format_exc()}")
            self.stop_clients.set()
        finally:
            client.close()

    def _start_clients(self):
        id_rng = random.Random(f"clients/{self.cfg.seed}")
        base = id_rng.getrandbits(40) << 16
        for i in range(self.cfg.clients):
            home = self.cluster.ids[i % self.cfg.nodes]
            # Every other client is patient: one attempt may wait most of the op's
            # deadline (so it sees what a paused node answers when it wakes up).
            patient = i % 2 == 1
            attempt = self.cfg.attempt_timeout if not patient else max(
                self.cfg.attempt_timeout, self.cfg.op_timeout * 0.8)
            c = Client(self.cluster, i, base | (i + 1), home, attempt)
            c.patient = patient
            rng = random.Random(f"client/{self.cfg.seed}/{i}")
            t = threading.Thread(target=self._client_loop, args=(c, rng), name=f"chaos-client-{i}",
                                 daemon=True)
            self.threads.append(t)
            t.start()

    def _stop_clients(self):
        self.stop_clients.set()
        limit = time.monotonic() + self.cfg.op_timeout + 5
        for t in self.threads:
            t.join(max(0.1, limit - time.monotonic()))
        stuck = [t.name for t in self.threads if t.is_alive()]
        if stuck:
            self.result.problems.append(f"client threads did not finish: {stuck}")

    # ------------------------------------------------------------ faults

    def _check_crashes(self):
        for n in self.cluster.unexpected_exits():
            rc = n.proc.returncode
            tail = n.log_text()[-1500:]
            self.result.problems.append(f"node {n.id} exited by itself (exit code {rc}); log tail:\n{tail}")
            self.note(f"CRASH: node {n.id} exited with {rc}; restarting it")
            n.expect_down = True
            self.cluster.start_node(n)

    def _run_schedule(self, nemeses: dict):
        events = []
        for i, f in enumerate(self.schedule):
            events.append((f.at, 0, i, "start"))
            events.append((f.at + f.duration, 1, i, "stop"))
        events.sort()
        start = self.t_load
        for at, _, i, kind in events:
            while True:
                now = time.monotonic() - start
                if now >= at or self.stop_clients.is_set():
                    break
                time.sleep(min(0.25, at - now))
                self._check_crashes()
            if self.stop_clients.is_set():
                break
            f = self.schedule[i]
            nem = nemeses[f.nemesis]
            if kind == "start":
                f.started = nem.start(f.params)
                f.t_start = time.monotonic() - start
                nem.active = f.duration > 0  # an instant fault (skew's restart) has nothing to heal
                nem.injected += 1
                self.note(f"fault  {f.started}")
            else:
                if nem.active:
                    f.stopped = nem.stop()
                    nem.active = False
                    f.t_stop = time.monotonic() - start
                    self.note(f"heal   {f.stopped}")
        while time.monotonic() - start < self.cfg.duration and not self.stop_clients.is_set():
            time.sleep(0.25)
            self._check_crashes()

    def _heal_all(self, nemeses: dict):
        for nem in nemeses.values():
            if nem.active:
                try:
                    self.note(f"heal   {nem.stop()}")
                except Exception as e:
                    self.note(f"heal of {nem.name} failed: {e}")
                nem.active = False
        self.cluster.clear_all_net_faults()
        for n in self.cluster.nodes:
            if n.paused:
                self.cluster.resume_node(n)
            if not n.alive():
                self.cluster.start_node(n)

    # ------------------------------------------------------------ liveness

    def _barrier(self, timeout=30.0) -> bool:
        """A write through the leader after healing: it must commit, and every
        slot below it is chosen, so nodes that applied it have everything."""
        admin = self.admin
        kv = self.kv
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            cmd = kv.KvCommand(op=kv.KvCommand.PUT, key=b"chaos/barrier", value=b"1")
            status, resp = admin.write(cmd.SerializeToString(), min(deadline, time.monotonic() + 5),
                                       target="leader")
            if status == "ok":
                self.barrier_slot = resp.slot
                return True
        return False

    def _converge(self, timeout=30.0):
        """Liveness after healing: every node applies the barrier slot (it catches
        up) within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        self.converged = []
        for n in self.cluster.nodes:
            try:
                self.cluster.wait_applied(n, self.barrier_slot, timeout=max(0.5, deadline - time.monotonic()))
                self.converged.append(n.id)
            except AssertionError:
                msg = (f"node {n.id} did not apply slot {self.barrier_slot} within {timeout:g}s after "
                       f"healing; status: {self.describe_status(n)}")
                self.note("STUCK: " + msg)
                self.result.problems.append("liveness: " + msg)
        if len(self.converged) == len(self.cluster.nodes):
            self.note(f"every node applied slot {self.barrier_slot}")

    def describe_status(self, node) -> str:
        s = self.cluster.status_of(node, timeout=1.0)
        if s is None:
            return "no answer"
        peers = ", ".join(f"{p.id}:{'up' if p.connected else 'down'}" for p in s.peers)
        return (f"role {s.role}, ballot {s.ballot.round}.{s.ballot.node}, leader {s.leader}, "
                f"commit {s.commit}, applied {s.applied}, known_commit {s.known_commit}, "
                f"catching_up {s.catching_up}, peers [{peers}]"
                + (f", apply_error {s.apply_error!r}" if s.apply_error else ""))

    # ------------------------------------------------------------ the run

    def run(self) -> RunResult:
        cfg = self.cfg
        res = self.result
        wall = time.monotonic()
        nemeses = {}
        extra = ["--request-timeout-ms", str(int(cfg.attempt_timeout * 1000))]
        if cfg.unsafe_follower_reads:
            extra.append("--unsafe-follower-reads")
        for b in self.workload.backends:  # kv is always loaded (the barrier writes there)
            extra += ["--backend", b]
        extra += list(self.workload.node_args)  # e.g. the lock backend's options and ticks
        failed = True
        try:
            self.cluster = ChaosCluster(cfg.nodes, seed=cfg.seed, extra_args=extra)
            if "skew" in cfg.nemeses:
                rates = SkewNemesis.initial_rates(random.Random(f"skew/{cfg.seed}"), cfg.nodes)
                for n, r in zip(self.cluster.nodes, rates):
                    n.clock_rate = r
                self.note(f"clock rates: {', '.join(f'node {n.id} x{n.clock_rate}' for n in self.cluster.nodes)}")
            for name in cfg.nemeses:
                nemeses[name] = NEMESES[name](self.cluster, self.note)
            for n in self.cluster.nodes:
                self.cluster.start_node(n)
            self.cluster.wait_for_leader(timeout=20)
            self.admin = Client(self.cluster, -1, (random.Random(cfg.seed).getrandbits(40) << 16) | 0xFFFF,
                                self.cluster.ids[0], attempt_timeout_s=2.0)
            self.note(f"cluster up: {cfg.nodes} nodes in {self.cluster.dir}; "
                      f"{len(self.schedule)} faults scheduled")
            pids = [os.getpid()] + [n.proc.pid for n in self.cluster.nodes]
            exposed = non_loopback_listeners(pids)
            if exposed:
                res.problems.append(f"sockets listening beyond loopback: {exposed}")
            self.workload.setup(self)
            self.t_load = time.monotonic()
            self._start_clients()
            self._run_schedule(nemeses)
            self._heal_all(nemeses)
            self.note("all faults healed")
            time.sleep(cfg.heal)
            self._stop_clients()
            self._check_crashes()
            if self.client_errors:
                res.problems.extend(self.client_errors)
            if not self._barrier():
                res.problems.append("liveness: no write committed within 30s after every fault healed; "
                                    + "; ".join(f"node {n.id}: {self.describe_status(n)}"
                                                for n in self.cluster.nodes))
                self.note("STUCK: the barrier write did not commit")
            else:
                self.note(f"barrier write committed at slot {self.barrier_slot}")
                self._converge()
            final = self.workload.final(self) if self.barrier_slot else {}
            self.final = final
            self._check_crashes()
            self.admin.close()
            ops = list(self.history)
            self._count(ops)
            self.note(f"checking {len(ops)} ops")
            chk = self.workload.check(ops, final)
            res.check_outcome = chk.outcome
            res.check_s = chk.elapsed_s
            res.check_summary = chk.summary
            res.explanation = chk.explanation if chk.outcome != "ok" else ""
            res.sub_history = chk.sub_history
            if chk.outcome == "violation":
                res.outcome = "violation"
            elif any(p.startswith("node ") and "exited by itself" in p for p in res.problems):
                res.outcome = "crash"
            elif any(p.startswith("liveness") for p in res.problems):
                res.outcome = "stuck"
            elif res.problems:
                res.outcome = "error"
            else:
                res.outcome = chk.outcome  # ok | unknown
            failed = res.outcome != "ok"
        except BaseException as e:
            res.outcome = "error"
            res.problems.append(f"harness error: {traceback.format_exc()}")
            if isinstance(e, KeyboardInterrupt):
                self.stop_clients.set()
                raise
        finally:
            self.stop_clients.set()
            res.faults = {name: nem.injected for name, nem in nemeses.items()}
            if self.cluster is not None:
                st = self.cluster.net.stats().values()
                res.proxy = (f"{sum(x[0] for x in st)} frames, {sum(x[1] for x in st)} dropped, "
                             f"{sum(x[2] for x in st)} connections refused")
            res.wall_s = time.monotonic() - wall
            if self.cluster is not None:
                try:
                    if failed or cfg.keep:
                        self._save(res)
                finally:
                    self.cluster.cleanup(remove_dir=not cfg.keep)
        return res

    def _count(self, ops):
        r = self.result
        r.ops = len(ops)
        r.ok = sum(1 for o in ops if o.ok is True)
        r.failed = sum(1 for o in ops if o.ok is False)
        r.unknown = sum(1 for o in ops if o.ok is None)
        by = {}
        for o in ops:
            d = by.setdefault(o.f, {"ok": 0, "failed": 0, "unknown": 0})
            d[{True: "ok", False: "failed", None: "unknown"}[o.ok]] += 1
        r.by_f = by

    def _save(self, res: RunResult):
        os.makedirs(self.run_dir, exist_ok=True)
        res.run_dir = self.run_dir
        ops = list(self.history)
        for o in ops:  # relative times are easier to read; the checker only compares
            o.invoke -= self.t0
            if o.complete is not None:
                o.complete -= self.t0
        res.history_path = os.path.join(self.run_dir, "history.jsonl")
        history.dump(ops, res.history_path)
        if res.sub_history:
            history.dump(res.sub_history, os.path.join(self.run_dir, "minimal.jsonl"))
        with open(os.path.join(self.run_dir, "events.txt"), "w") as f:
            f.write("schedule:\n" + "".join(x.describe() + "\n" for x in self.schedule))
            f.write("\nevents:\n" + "".join(e + "\n" for e in self.events))
        if self.final:
            try:
                with open(os.path.join(self.run_dir, "final.json"), "w") as f:
                    json.dump(history._encode(self.final), f, default=repr)
            except (TypeError, ValueError):
                pass
        with open(os.path.join(self.run_dir, "run.json"), "w") as f:
            json.dump({"config": asdict(self.cfg), "replay": self.cfg.replay_command(),
                       "outcome": res.outcome, "problems": res.problems, "faults": res.faults,
                       "ops": res.ops, "ok": res.ok, "failed": res.failed, "unknown": res.unknown,
                       "explanation": res.explanation}, f, indent=2)
        self.cluster.collect_logs(self.run_dir)


def run(cfg: RunConfig) -> RunResult:
    return Run(cfg).run()
