"""Nemeses: the faults a chaos run injects, and the seeded schedule of them.

A nemesis is a small class:

    class MyNemesis(Nemesis):
        name = "mine"
        durations = (min_s, max_s)         # how long one fault lasts
        @staticmethod
        def plan(rng, n) -> dict: ...      # its parameters, drawn from the schedule's rng
        def start(self, params) -> str     # inject; returns what it did
        def stop(self) -> str              # heal what start did

and is registered with `register(MyNemesis)`. `plan` runs when the schedule is
made (so a seed fixes which nemesis, when, on which node, how long, with which
parameters); `start`/`stop` run during the run, and may resolve runtime targets
such as "the leader". A nemesis has at most one fault active at a time; faults
of different nemeses overlap. Membership changes and disk faults plug in the same
way.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

NEMESES: dict[str, type] = {}


def register(cls):
    NEMESES[cls.name] = cls
    return cls


class Nemesis:
    name = "base"
    durations = (1.0, 5.0)

    def __init__(self, cluster, log):
        self.cluster = cluster
        self.log = log  # log(str)
        self.active = False
        self.injected = 0

    @staticmethod
    def plan(rng: random.Random, n: int) -> dict:
        return {}

    def start(self, params: dict) -> str:
        raise NotImplementedError

    def stop(self) -> str:
        raise NotImplementedError

    # helpers
    def _leader_or(self, fallback_id: int):
        leader = self.cluster.find_leader()
        return leader if leader is not None else self.cluster.node(fallback_id)


@register
class KillNemesis(Nemesis):
    """kill -9 one node, the leader, a majority, or every node; restart them when
    the fault ends."""
    name = "kill"
    durations = (0.2, 4.0)

    @staticmethod
    def plan(rng, n):
        target = rng.choices(["one", "leader", "majority", "all"], weights=[4, 4, 2, 1])[0]
        ids = list(range(1, n + 1))
        k = {"majority": n // 2 + 1, "all": n}.get(target, 1)
        return {"target": target, "nodes": sorted(rng.sample(ids, k))}

    def start(self, params):
        if params["target"] == "leader":
            nodes = [self._leader_or(params["nodes"][0])]
        else:
            nodes = [self.cluster.node(i) for i in params["nodes"]]
        self.killed = nodes
        for n in nodes:
            self.cluster.kill_node(n)
        return f"kill -9 {params['target']}: node(s) {[n.id for n in nodes]}"

    def stop(self):
        for n in self.killed:
            self.cluster.start_node(n)
        return f"restart node(s) {[n.id for n in self.killed]}"


@register
class PauseNemesis(Nemesis):
    """SIGSTOP one node, the leader, or a majority; SIGCONT when the fault ends.
    Sometimes a paused single node is also cut off (its links drop frames) for the
    pause: a "zombie" that wakes up with requests already in its sockets and no
    word yet from the rest of the cluster."""
    name = "pause"
    durations = (0.2, 4.0)

    @staticmethod
    def plan(rng, n):
        target = rng.choices(["one", "leader", "majority"], weights=[4, 4, 1])[0]
        return {"target": target, "node": rng.randint(1, n),
                "nodes": sorted(rng.sample(range(1, n + 1), n // 2 + 1)),
                "isolate": target != "majority" and rng.random() < 0.35}

    def start(self, params):
        if params["target"] == "majority":
            nodes = [self.cluster.node(i) for i in params.get("nodes", [])]
        elif params["target"] == "leader":
            nodes = [self._leader_or(params["node"])]
        else:
            nodes = [self.cluster.node(params["node"])]
        self.paused = []
        for node in nodes:
            if self.cluster.pause_node(node):
                self.paused.append((node, node.proc))
        skipped = sorted({n.id for n in nodes} - {n.id for n, _ in self.paused})
        self.isolated = bool(params.get("isolate")) and bool(self.paused)
        if self.isolated:
            links = {}
            for node, _ in self.paused:
                for other in self.cluster.ids:
                    if other != node.id:
                        links.update(self.cluster.cut(node.id, other, "drop"))
            self.cluster.set_net_fault(self.name, links)
        return (f"SIGSTOP {params['target']}{' + isolated' if self.isolated else ''}: "
                f"node(s) {[n.id for n, _ in self.paused]}"
                + (f" (down or already paused: {skipped})" if skipped else ""))

    def stop(self):
        # Resume first, heal after: the node handles what waited in its sockets
        # before it hears from its peers again.
        for node, proc in self.paused:
            if node.proc is proc:
                self.cluster.resume_node(node)
        if self.isolated:
            import time
            time.sleep(0.2)
            self.cluster.clear_net_fault(self.name)
        return f"SIGCONT node(s) {[n.id for n, _ in self.paused]}"


@register
class PartitionNemesis(Nemesis):
    """Network partitions through the proxy: a random majority/minority split, the
    leader isolated, one node isolated, a bridge (two halves that both see one
    node in the middle), or a one-way split (the minority's messages to the
    majority are lost, the other direction flows). Links are cut by dropping
    frames (a black hole) or by closing connections and refusing new ones."""
    name = "partition"
    durations = (0.5, 6.0)

    @staticmethod
    def plan(rng, n):
        ids = list(range(1, n + 1))
        rng.shuffle(ids)
        shape = rng.choice(["halves", "leader", "one", "bridge", "oneway"])
        mode = rng.choices(["drop", "refuse"], weights=[7, 3])[0]
        minority = rng.randint(1, (n - 1) // 2)
        return {"shape": shape, "mode": mode, "order": ids, "minority": minority}

    def groups(self, params):
        order = params["order"]
        n = len(order)
        if params["shape"] in ("halves", "oneway"):
            m = params["minority"]
            return [order[:m], order[m:]], []
        if params["shape"] == "one":
            return [order[:1], order[1:]], []
        if params["shape"] == "leader":
            leader = self.cluster.find_leader()
            lid = leader.id if leader is not None else order[0]
            return [[lid], [i for i in order if i != lid]], []
        # bridge: order[mid] sees both halves, the halves do not see each other
        mid = n // 2
        return [order[:mid], order[mid + 1:]], [order[mid]]

    def start(self, params):
        groups, bridge = self.groups(params)
        links = {}
        a, b = groups
        for x in a:
            for y in b:
                if params["shape"] == "oneway":
                    links[(x, y)] = {"mode": params["mode"]}
                else:
                    links.update(self.cluster.cut(x, y, params["mode"]))
        self.cluster.set_net_fault(self.name, links)
        desc = (" -/-> " if params["shape"] == "oneway" else " | ").join(str(sorted(g)) for g in groups)
        if bridge:
            desc += f" (bridge {bridge[0]})"
        return f"partition {params['shape']} ({params['mode']}): {desc}"

    def stop(self):
        self.cluster.clear_net_fault(self.name)
        return "heal partition"


@register
class DelayNemesis(Nemesis):
    """Slow links through the proxy: every frame delayed by D ms plus jitter (order
    kept), on all links, on one node's links, or on the leader's; sometimes with
    random frame loss as well."""
    name = "delay"
    durations = (1.0, 6.0)

    @staticmethod
    def plan(rng, n):
        return {"scope": rng.choice(["all", "one", "leader"]), "node": rng.randint(1, n),
                "delay_ms": round(rng.uniform(5, 120), 1), "jitter_ms": round(rng.uniform(0, 30), 1),
                "loss": round(rng.uniform(0.01, 0.2), 3) if rng.random() < 0.3 else 0.0}

    def start(self, params):
        ids = self.cluster.ids
        if params["scope"] == "all":
            pairs = [(a, b) for a in ids for b in ids if a != b]
            who = "all links"
        else:
            nid = (self._leader_or(params["node"]).id if params["scope"] == "leader"
                   else params["node"])
            pairs = [(a, b) for a in ids for b in ids if a != b and nid in (a, b)]
            who = f"node {nid}'s links ({params['scope']})"
        f = {"delay_ms": params["delay_ms"], "jitter_ms": params["jitter_ms"], "loss": params["loss"]}
        self.cluster.set_net_fault(self.name, {p: dict(f) for p in pairs})
        loss = f", loss {params['loss']:.0%}" if params["loss"] else ""
        return f"delay {params['delay_ms']}ms +{params['jitter_ms']}ms jitter{loss} on {who}"

    def stop(self):
        self.cluster.clear_net_fault(self.name)
        return "delay off"


SKEW_MAX = 0.05  # the lease's drift bound is 1 tick in 8: rates stay within +-5%


@register
class SkewNemesis(Nemesis):
    """Clock skew with libfaketime: restarts one node (SIGTERM, or kill -9) with its
    clocks (monotonic and wall) running at a rate in [0.95, 1.05]. The rate stays
    with the node (kill restarts keep it) until the next skew fault on it. While
    this nemesis is enabled every node also starts with a random rate."""
    name = "skew"
    durations = (0.0, 0.0)

    @staticmethod
    def plan(rng, n):
        return {"node": rng.randint(1, n), "rate": round(rng.uniform(1 - SKEW_MAX, 1 + SKEW_MAX), 4),
                "graceful": rng.random() < 0.5}

    @staticmethod
    def initial_rates(rng, n):
        return [round(rng.uniform(1 - SKEW_MAX, 1 + SKEW_MAX), 4) for _ in range(n)]

    def start(self, params):
        node = self.cluster.node(params["node"])
        node.clock_rate = params["rate"]
        self.cluster.restart_node(node, graceful=params["graceful"])
        how = "SIGTERM" if params["graceful"] else "kill -9"
        return f"skew: node {node.id} restarted ({how}) with clock rate x{params['rate']}"

    def stop(self):
        return "skew stays"


@dataclass
class Fault:
    at: float          # seconds from the start of the run
    nemesis: str
    params: dict
    duration: float
    # filled while running
    started: str = ""
    stopped: str = ""
    t_start: float | None = None
    t_stop: float | None = None
    extra: dict = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.at:7.2f}s +{self.duration:5.2f}s {self.nemesis} {self.params}"


def make_schedule(seed: int, nemeses: list[str], duration: float, n: int) -> list[Fault]:
    """The faults of one run, a pure function of (seed, nemeses, duration, n)."""
    for name in nemeses:
        if name not in NEMESES:
            raise ValueError(f"unknown nemesis {name!r}; known: {', '.join(sorted(NEMESES))}")
    rng = random.Random(f"schedule/{seed}")
    faults: list[Fault] = []
    if not nemeses:
        return faults
    busy_until = {name: 0.0 for name in nemeses}
    t = rng.uniform(1.0, 2.0)
    while True:
        name = rng.choice(nemeses)
        cls = NEMESES[name]
        start = max(t, busy_until[name] + 0.3)
        d = rng.uniform(*cls.durations)
        if start + max(d, 0.1) > duration - 0.5:
            break
        faults.append(Fault(round(start, 3), name, cls.plan(rng, n), round(d, 3)))
        busy_until[name] = start + d
        # The next fault may begin while this one lasts (faults of different
        # nemeses overlap) or after a quiet gap.
        t = start + rng.uniform(0.3, 3.0)
    return faults
