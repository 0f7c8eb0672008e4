"""Workloads: what the chaos clients do, and how the history is checked.

A workload is a class registered with `register`:

    class MyWorkload(Workload):
        name = "mine"
        def generate(self, client, rng) -> Op         # the next op of this client (f, key, value...)
        def execute(self, client, op, deadline)       # run it: set op.ok / op.value / op.result
        def final(self, run) -> dict                  # optional: after the faults healed
        def check(self, ops, final) -> Check          # judge the history

The runner stamps invoke/complete times, appends every op to the history when
it is invoked (an op still running at the end stays unknown), and saves the
history. `execute` classifies outcomes with Client: "ok" -> ok=True, "refused"
-> ok=False (never entered the log), "unknown" -> ok=None.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

from checker import history, linearizability, setcheck
from checker.history import Op

from .client import Client, kv_result

WORKLOADS: dict[str, type] = {}


def register(cls):
    WORKLOADS[cls.name] = cls
    return cls


@dataclass
class Check:
    outcome: str                 # "ok" | "violation" | "unknown"
    explanation: str = ""
    sub_history: list = field(default_factory=list)  # minimal failing sub-history, if any
    elapsed_s: float = 0.0
    raw: object = None           # the checker's own result


class Workload:
    name = "base"

    def __init__(self, opts):
        self.opts = opts  # the RunConfig
        self.lock = threading.Lock()

    def target(self, client: Client) -> str:
        """mixed: patient clients go round robin (and wait out a paused node),
        the others alternate between following leader hints and a home node."""
        if self.opts.target != "mixed":
            return self.opts.target
        if getattr(client, "patient", False):
            return "rr"
        return "leader" if client.index % 4 == 0 else "home"

    def generate(self, client: Client, rng) -> Op:
        raise NotImplementedError

    def execute(self, client: Client, op: Op, deadline: float):
        raise NotImplementedError

    def final(self, run) -> dict:
        return {}

    def check(self, ops: list[Op], final: dict) -> Check:
        raise NotImplementedError

    # shared helpers ---------------------------------------------------
    def _write(self, client: Client, op: Op, cmd, deadline: float):
        status, resp = client.write(cmd.SerializeToString(), deadline, self.target(client))
        if status == "error":
            raise RuntimeError(f"server refused a well-formed write: {resp}")
        return status, resp


@register
class RegisterWorkload(Workload):
    """get / put / cas on a few keys, reads LINEARIZABLE, checked for
    linearizability. Values are unique per write ("<client>.<n>"), so a stale read
    is unambiguous. A key is retired after `ops_per_key` operations and a fresh
    one takes its place, which keeps each key's history small enough to search."""
    name = "register"

    def __init__(self, opts):
        super().__init__(opts)
        self.keys = [f"r{i}" for i in range(opts.keys)]
        self.next_key = itertools.count(opts.keys)
        self.uses = [0] * opts.keys
        self.counter = itertools.count(1)
        self.last_seen: dict[tuple[int, str], object] = {}

    def _key(self, rng) -> str:
        with self.lock:
            i = rng.randrange(len(self.keys))
            self.uses[i] += 1
            if self.uses[i] > self.opts.ops_per_key:
                self.keys[i] = f"r{next(self.next_key)}"
                self.uses[i] = 1
            return self.keys[i]

    def generate(self, client, rng):
        key = self._key(rng)
        x = rng.random()
        if x < self.opts.read_fraction:
            return Op(client=client.index, f="read", key=key)
        value = f"{client.index}.{next(self.counter)}"
        if x < self.opts.read_fraction + (1 - self.opts.read_fraction) * 0.6:
            return Op(client=client.index, f="write", key=key, value=value)
        expected = self.last_seen.get((client.index, key))
        return Op(client=client.index, f="cas", key=key, value=value, expected=expected)

    def execute(self, client, op, deadline):
        _, kv = client.pb, client.kv
        k = op.key.encode()
        if op.f == "read":
            target = self.opts.read_target or self.target(client)
            status, resp = client.read(kv.KvCommand(op=kv.KvCommand.GET, key=k).SerializeToString(),
                                       deadline, target)
            if status == "error":
                raise RuntimeError(f"server refused a read: {resp}")
            if status != "ok":
                op.ok = False
                return
            r = kv_result(resp)
            op.value = r.value.decode() if r.found else None
            op.ok = True
            self.last_seen[(client.index, op.key)] = op.value
            return
        if op.f == "write":
            cmd = kv.KvCommand(op=kv.KvCommand.PUT, key=k, value=op.value.encode())
        else:
            cmd = kv.KvCommand(op=kv.KvCommand.CAS, key=k, value=op.value.encode())
            if op.expected is None:
                cmd.expect_absent = True
            else:
                cmd.expected = op.expected.encode()
        status, resp = self._write(client, op, cmd, deadline)
        if status == "unknown":
            op.ok = None
            return
        if status == "refused":
            op.ok = False
            if op.f == "cas":
                op.result = history.REFUSED
            return
        # ok
        if resp.error:  # "applied; the result was lost in a restart"
            if op.f == "cas":
                op.ok = None  # applied, but did the comparison succeed? unknown
                op.result = "result lost"
                return
        r = kv_result(resp)
        if op.f == "cas" and r.code == kv.KvResult.CAS_FAILED:
            op.ok = False
            op.result = r.value.decode() if r.found else None
            self.last_seen[(client.index, op.key)] = op.result
            return
        if r.code != kv.KvResult.OK and not resp.error:
            raise RuntimeError(f"unexpected kv result for {op}: {r}")
        op.ok = True
        self.last_seen[(client.index, op.key)] = op.value

    def check(self, ops, final):
        t = time.monotonic()
        res = linearizability.check([o for o in ops if o.f in ("read", "write", "cas")],
                                    timeout_s=self.opts.check_timeout)
        return Check(res.outcome, res.explanation, list(res.sub_history), time.monotonic() - t, res)


@register
class SetWorkload(Workload):
    """Adds of distinct elements (kv PUT of "set/<n>"). After the faults heal and
    every node has applied the leader's commit point, each node's set is read
    with a LOCAL LIST of "set/": every acknowledged add must be on every node."""
    name = "set"
    PREFIX = "set/"

    def __init__(self, opts):
        super().__init__(opts)
        self.counter = itertools.count(1)

    def generate(self, client, rng):
        return Op(client=client.index, f="add", key="", value=next(self.counter))

    def execute(self, client, op, deadline):
        kv = client.kv
        cmd = kv.KvCommand(op=kv.KvCommand.PUT, key=f"{self.PREFIX}{op.value}".encode(), value=b"1")
        status, _ = self._write(client, op, cmd, deadline)
        op.ok = {"ok": True, "refused": False, "unknown": None}[status]

    def final(self, run):
        """Every node's set, once it has applied everything the leader committed."""
        kv = run.kv
        reads = {}
        slot = run.barrier_slot
        for node in run.cluster.nodes:
            name = f"node {node.id}"
            op = Op(client=-node.id, f="read_set", key="", invoke=time.monotonic())
            if node.id not in run.converged:  # reported by the runner already
                op.ok = False
                op.complete = time.monotonic()
                reads[name] = op
                continue
            try:
                run.cluster.wait_applied(node, slot, timeout=5)
                cmd = kv.KvCommand(op=kv.KvCommand.LIST, prefix=self.PREFIX.encode())
                resp = run.admin.read_local(node.id, cmd.SerializeToString(), timeout_s=10)
                if resp is not None and resp.code == run.pb.ClientResponse.OK:
                    r = kv_result(resp)
                    op.result = {int(k.decode()[len(self.PREFIX):]) for k in r.keys}
                    op.ok = True
                else:
                    op.ok = False
                    op.result = None
                    run.note(f"final read of {name} failed: {resp}")
                    run.result.problems.append(f"final read of {name} failed: {resp}")
            except AssertionError as e:
                op.ok = False
                msg = f"final read of {name}: {str(e).splitlines()[0]}; status: {run.describe_status(node)}"
                run.note(msg)
                run.result.problems.append(msg)
            op.complete = time.monotonic()
            reads[name] = op
        return {"reads": reads}

    def check(self, ops, final):
        t = time.monotonic()
        reads = final.get("reads", {})
        res = setcheck.check([o for o in ops if o.f == "add"], reads)
        return Check(res.outcome, res.explanation, [], time.monotonic() - t, res)
