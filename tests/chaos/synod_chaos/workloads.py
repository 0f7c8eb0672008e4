"""Workloads: what the chaos clients do, and how the history is checked.

A workload is a class registered with `register`:

    class MyWorkload(Workload):
        name = "mine"
        def generate(self, client, rng) -> Op         # the next op of this client (f, key, value...)
        def execute(self, client, op, deadline)       # run it: set op.ok / op.value / op.result
        def setup(self, run)                          # optional: before the clients and faults
        def final(self, run) -> dict                  # optional: after the faults healed
        def check(self, ops, final) -> Check          # judge the history

The runner stamps invoke/complete times, appends every op to the history when
it is invoked (an op still running at the end stays unknown), and saves the
history. `execute` classifies outcomes with Client: "ok" -> ok=True, "refused"
-> ok=False (never entered the log), "unknown" -> ok=None.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field

from checker import bankcheck, history, linearizability, setcheck
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
    summary: str = ""            # one line of the checker's numbers, printed with every run


class Workload:
    name = "base"
    backends: tuple = ()  # backends the nodes load besides kv (e.g. "sqlite")
    node_args: tuple = ()  # more synod flags for every node (e.g. --lock-tick-ms)

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

    def setup(self, run):
        """Before the clients start and the faults begin (the cluster is up)."""

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


def _sql(payload) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


@register
class BankWorkload(Workload):
    """SQL through the sqlite backend: `accounts` rows of `initial` each, and
    transfers between them, each one command (one transaction) that appends to a
    ledger and moves the amount; `CHECK (balance >= 0)` makes an overdraft fail
    and roll back the whole command. Clients write through their home node (a
    follower forwards) or round robin; reads of every balance are LOCAL on one
    node (round robin over all nodes, possibly stale) or LINEARIZABLE. Checked
    by checker.bankcheck: every read and every node's final state shows the
    total N * initial and no negative balance; the nodes end identical (rows,
    ledger and the content checksum at one log position); the ledger holds
    every acknowledged transfer once and no failed one; reads show committed
    states, linearizable ones not stale."""
    name = "bank"
    backends = ("sqlite",)
    BACKEND = "sqlite"
    INITIAL = 100
    READ = ["SELECT id, balance FROM accounts ORDER BY id"]
    LEDGER = "SELECT seq, op, src, dst, amount FROM ledger ORDER BY seq"

    def __init__(self, opts):
        super().__init__(opts)
        self.accounts = max(2, getattr(opts, "accounts", 8))
        self.counter = itertools.count(1)
        self.local_rr = itertools.count()

    def target(self, client):
        # Every client writes through its own node (followers forward); the
        # patient ones go round robin and wait out paused nodes.
        if self.opts.target != "mixed":
            return self.opts.target
        return "rr" if getattr(client, "patient", False) else "home"

    def setup_command(self):
        rows = ",".join(f"({i}, {self.INITIAL})" for i in range(1, self.accounts + 1))
        return [
            "CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY, "
            "balance INTEGER NOT NULL CHECK (balance >= 0))",
            "CREATE TABLE IF NOT EXISTS ledger (seq INTEGER PRIMARY KEY, op TEXT NOT NULL, "
            "src INTEGER NOT NULL, dst INTEGER NOT NULL, amount INTEGER NOT NULL)",
            f"INSERT OR IGNORE INTO accounts (id, balance) VALUES {rows}",
        ]

    def setup(self, run):
        """Before the clients and the faults: the tables and the accounts (the
        command is idempotent), applied on every node."""
        deadline = time.monotonic() + 30
        while True:
            status, resp = run.admin.write(_sql(self.setup_command()), min(deadline, time.monotonic() + 5),
                                           "leader", backend=self.BACKEND)
            if status == "ok":
                break
            if status == "error" or time.monotonic() > deadline:
                raise RuntimeError(f"bank setup failed: {status} {resp}")
        res = json.loads(resp.result)
        if res.get("rolled_back") or any("error" in r for r in res.get("results", [])):
            raise RuntimeError(f"bank setup failed: {res}")
        for node in run.cluster.nodes:
            run.cluster.wait_applied(node, resp.slot, timeout=20)
        run.note(f"bank: {self.accounts} accounts of {self.INITIAL} at slot {resp.slot}")

    def generate(self, client, rng):
        if rng.random() < self.opts.read_fraction:
            if rng.random() < 0.5:
                return Op(client=client.index, f=history.READ_BALANCES, key=bankcheck.LINEARIZABLE)
            ids = client.cluster.ids
            return Op(client=client.index, f=history.READ_BALANCES,
                      key=f"node {ids[next(self.local_rr) % len(ids)]}")
        src, dst = rng.sample(range(1, self.accounts + 1), 2)
        # Mostly small amounts; one in ten is large enough to overdraw often.
        amount = rng.randint(1, 30) if rng.random() < 0.9 else rng.randint(60, 150)
        return Op(client=client.index, f=history.TRANSFER, key="",
                  value={"op": f"{client.index}.{next(self.counter)}", "from": src, "to": dst,
                         "amount": amount})

    def execute(self, client, op, deadline):
        if op.f == history.READ_BALANCES:
            return self._read(client, op, deadline)
        v = op.value
        cmd = [["INSERT INTO ledger (op, src, dst, amount) VALUES (:op, :src, :dst, :amt)",
                {"op": v["op"], "src": v["from"], "dst": v["to"], "amt": v["amount"]}],
               ["UPDATE accounts SET balance = balance - :amt WHERE id = :src",
                {"amt": v["amount"], "src": v["from"]}],
               ["UPDATE accounts SET balance = balance + :amt WHERE id = :dst",
                {"amt": v["amount"], "dst": v["to"]}]]
        status, resp = client.write(_sql(cmd), deadline, self.target(client), backend=self.BACKEND)
        if status == "error":
            raise RuntimeError(f"server refused a well-formed transfer: {resp}")
        if status == "unknown":
            op.ok = None
            return
        if status == "refused":
            op.ok = False
            op.result = "refused"
            return
        if resp.error:  # "applied; the result was lost in a restart": committed or rolled back?
            op.ok = None
            op.result = "result lost"
            return
        res = json.loads(resp.result)
        results = res.get("results", [])
        errors = [r["error"] for r in results if "error" in r]
        if res.get("rolled_back") or errors:
            if errors and "CHECK constraint failed" in errors[0]:
                op.ok = False
                op.result = "overdraft"
                return
            raise RuntimeError(f"transfer {v} failed unexpectedly: {res}")
        if len(results) != 3 or any(r.get("rows_affected") != 1 for r in results):
            raise RuntimeError(f"transfer {v}: unexpected result {res}")
        op.ok = True

    def _read(self, client, op, deadline):
        payload = _sql(self.READ)
        if op.key == bankcheck.LINEARIZABLE:
            status, resp = client.read(payload, deadline, self.target(client), linearizable=True,
                                       backend=self.BACKEND)
            if status == "error":
                raise RuntimeError(f"server refused a read: {resp}")
            if status != "ok":
                op.ok = False
                return
        else:  # LOCAL, of exactly this node, one attempt
            node_id = int(op.key.split()[1])
            resp = client.read_local(node_id, payload, timeout_s=max(0.05, min(
                client.attempt_timeout_s, deadline - time.monotonic())), backend=self.BACKEND)
            if resp is None or resp.code != client.pb.ClientResponse.OK:
                op.ok = False
                return
        res = json.loads(resp.result)
        first = (res.get("results") or [{}])[0]
        op.ok = True
        op.result = first.get("values", []) if "error" not in first else {"error": first["error"]}

    def final(self, run):
        """After every node applied the barrier: a checksum command through the
        log, every node's checksum at its position, and every node's balances
        and ledger (LOCAL reads), re-read if they differ while a straggler applies."""
        out = {"nodes": {}, "checksum_position": None, "checksums": {}}
        nodes = [n for n in run.cluster.nodes if n.id in run.converged]
        for n in run.cluster.nodes:
            if n.id not in run.converged:
                out["nodes"][f"node {n.id}"] = {"balances": None, "ledger": None}
        status, resp = run.admin.write(_sql({"checksum": True}), time.monotonic() + 15, "leader",
                                       backend=self.BACKEND)
        position = None  # the command's position (numbered per command, not per slot)
        slot = run.barrier_slot  # the Paxos slot it was chosen in (what status.applied counts)
        if status == "ok" and not resp.error:
            r = json.loads(resp.result)
            position = r.get("position")
            slot = max(slot, resp.slot)
            out["checksum_position"] = position
            if position is None:
                run.result.problems.append(f"bank: the checksum command answered {r}")
        else:
            run.result.problems.append(f"bank: the checksum command did not commit: {status} "
                                       f"{getattr(resp, 'error', '')}")
        for attempt in range(3):
            target = slot
            if attempt:
                leader = run.cluster.find_leader()
                s = run.cluster.status_of(leader) if leader else None
                if s is not None:
                    target = max(target, s.commit)
                time.sleep(0.5)
            states = {}
            for n in nodes:
                name = f"node {n.id}"
                d = {"balances": None, "ledger": None}
                try:
                    run.cluster.wait_applied(n, target, timeout=10)
                except AssertionError as e:
                    run.note(f"bank: final read of {name}: {str(e).splitlines()[0]}")
                    states[name] = d
                    continue
                resp = run.admin.read_local(n.id, _sql([self.READ[0], self.LEDGER]), timeout_s=10,
                                            backend=self.BACKEND)
                if resp is not None and resp.code == run.pb.ClientResponse.OK:
                    rs = json.loads(resp.result).get("results", [])
                    if len(rs) == 2 and "error" not in rs[0] and "error" not in rs[1]:
                        d = {"balances": rs[0].get("values", []), "ledger": rs[1].get("values", [])}
                    else:
                        d = {"balances": rs[0] if rs else {"error": "no result"}, "ledger": None}
                states[name] = d
            if len({json.dumps(d, sort_keys=True) for d in states.values()}) <= 1:
                break
            run.note(f"bank: final reads differ (attempt {attempt + 1}); reading again")
        out["nodes"].update(states)
        unread = [k for k, v in out["nodes"].items() if v["balances"] is None]
        if unread:
            run.result.problems.append(f"bank: final read failed on {', '.join(unread)}")
        if position is not None:
            for n in nodes:
                name = f"node {n.id}"
                out["checksums"][name] = None
                try:
                    run.cluster.wait_applied(n, slot, timeout=10)
                except AssertionError:
                    continue
                resp = run.admin.read_local(n.id, _sql({"checksum_at": position}), timeout_s=10,
                                            backend=self.BACKEND)
                if resp is not None and resp.code == run.pb.ClientResponse.OK:
                    r = json.loads(resp.result)
                    out["checksums"][name] = r.get("checksum")
                    if "checksum" not in r:
                        run.result.problems.append(f"bank: checksum_at {position} on {name}: {r}")
                else:
                    run.result.problems.append(f"bank: checksum_at {position} on {name} failed: "
                                               f"{getattr(resp, 'error', 'no answer')}")
        return out

    def check(self, ops, final):
        t = time.monotonic()
        res = bankcheck.check([o for o in ops if o.f in (history.TRANSFER, history.READ_BALANCES)],
                              final, accounts=self.accounts, initial=self.INITIAL)
        return Check(res.outcome, res.explanation, list(res.bad_ops), time.monotonic() - t, res,
                     summary=res.summary())


# The lock workload (issue #7) lives in its own module; importing it registers "lock".
from .lock_workload import LockWorkload  # noqa: E402,F401
