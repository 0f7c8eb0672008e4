"""Checker for the bank workload (SQL through the sqlite backend).

The database: `accounts(id, balance CHECK (balance >= 0))` with `accounts`
rows of `initial` each, and `ledger(seq INTEGER PRIMARY KEY, op, src, dst,
amount)`. A transfer is one command, one transaction: it appends its row to the
ledger and moves `amount` from `src` to `dst`; an overdraft fails the CHECK and
rolls back the whole command (ledger row included).

The history (checker.history Ops):
  transfer        value = {"op": "<unique id>", "from": a, "to": b, "amount": x};
                  ok True (committed), False (definitely no effect: refused
                  before the log, or rolled back as an overdraft; result says
                  which), None (unknown).
  read_balances   key "linearizable" or "node <id>" (a LOCAL read of that node);
                  result = [[id, balance], ...] when ok, or {"error": "..."}.

`final` (after the faults healed and every node applied the barrier):
  {"nodes": {name: {"balances": [[id, balance], ...] | None,
                    "ledger": [[seq, op, src, dst, amount], ...] | None}},
   "checksum_position": P | None, "checksums": {name: hex | None}}

Violations:
  * every successful read (local or linearizable) and every node's final state:
    exactly the accounts 1..N, no negative balance, total == N * initial;
  * a read that failed with an SQL error (the table is there on every node
    before the clients start);
  * final: every readable node holds the same balances and the same ledger, and
    the same content checksum at the same log position;
  * the ledger (when the final reads succeeded): every acknowledged transfer
    exactly once, no definitely-failed transfer, no transfer twice, nothing no
    client tried, each row as its transfer asked; replaying it from the initial
    balances never goes negative and ends at the final balances;
  * every read shows a state some prefix of the ledger produces (one committed
    state, not a torn one); a linearizable read shows a prefix that contains
    every transfer acknowledged before the read began and none invoked after it
    ended; successive local reads of one node never go back in the ledger.
Unknown transfers may be in the ledger (once) or not: the invariants are on the
total and on the ledger, not on the outcome.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from .history import Op, explain

OK = "ok"
VIOLATION = "violation"
UNKNOWN = "unknown"

TRANSFER = "transfer"
READ_BALANCES = "read_balances"
LINEARIZABLE = "linearizable"


@dataclass
class Result:
    outcome: str
    explanation: str = ""
    violations: list = field(default_factory=list)   # one line each
    bad_ops: list = field(default_factory=list)      # the ops involved (a failing sub-history)
    transfers: dict = field(default_factory=dict)    # ok / failed (overdraft, refused) / unknown
    reads_checked: int = 0
    linearizable_reads: int = 0
    local_reads: int = 0
    ledger_len: int | None = None
    nodes_compared: int = 0
    checksum: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    def summary(self) -> str:
        t = self.transfers
        s = (f"transfers ok {t.get('ok', 0)}, failed {t.get('failed', 0)} "
             f"(overdraft {t.get('overdraft', 0)}), unknown {t.get('unknown', 0)}; "
             f"reads checked {self.reads_checked} (linearizable {self.linearizable_reads}, "
             f"local {self.local_reads}); final: {self.nodes_compared} node(s) identical")
        if self.ledger_len is not None:
            s += f", ledger {self.ledger_len} transfers"
        if self.checksum:
            s += f", checksum {self.checksum[:12]}"
        return s

    def __str__(self) -> str:
        return self.explanation or self.outcome


def balance_problems(rows, accounts: int, initial: int) -> list[str]:
    """What is wrong with one state of the accounts table ([] if nothing)."""
    if isinstance(rows, dict) and "error" in rows:
        return [f"the read failed: {rows['error']}"]
    try:
        state = {int(r[0]): r[1] for r in rows}
    except (TypeError, ValueError, IndexError):
        return [f"not rows of (id, balance): {rows!r}"]
    out = []
    if len(state) != len(rows) or sorted(state) != list(range(1, accounts + 1)):
        out.append(f"accounts {sorted(state)} (want 1..{accounts})")
    neg = {k: v for k, v in state.items() if not isinstance(v, int) or v < 0}
    if neg:
        out.append(f"negative or non-integer balance(s) {neg}")
    try:
        total = sum(state.values())
    except TypeError:
        total = None
    if total != accounts * initial:
        out.append(f"total {total} != {accounts * initial}")
    return out


def _state(rows) -> tuple | None:
    try:
        return tuple(sorted((int(r[0]), r[1]) for r in rows))
    except (TypeError, ValueError, IndexError):
        return None


def check(ops: list[Op], final: dict, accounts: int = 8, initial: int = 100) -> Result:
    res = Result(OK)
    ops = list(ops)
    t0 = min((o.invoke for o in ops), default=0.0)
    bad: list[Op] = []

    def violation(msg: str, *involved: Op):
        res.violations.append(msg)
        for o in involved:
            if o is not None and all(o is not b for b in bad):
                bad.append(o)

    transfers = [o for o in ops if o.f == TRANSFER]
    reads = [o for o in ops if o.f == READ_BALANCES]
    res.transfers = {
        "ok": sum(1 for o in transfers if o.ok is True),
        "failed": sum(1 for o in transfers if o.ok is False),
        "overdraft": sum(1 for o in transfers if o.ok is False and o.result == "overdraft"),
        "unknown": sum(1 for o in transfers if o.ok is None),
    }

    # 1. Every read: the invariant.
    good_reads = []
    for r in reads:
        if r.ok is not True:
            continue
        res.reads_checked += 1
        if r.key == LINEARIZABLE:
            res.linearizable_reads += 1
        else:
            res.local_reads += 1
        probs = balance_problems(r.result, accounts, initial)
        if probs:
            violation(f"read ({r.key}) at {r.invoke - t0:+.3f}s: " + "; ".join(probs), r)
        else:
            good_reads.append(r)

    # 2. The final state of every node.
    nodes = (final or {}).get("nodes", {})
    finals = {}
    ledgers = {}
    for name, d in sorted(nodes.items()):
        bal = d.get("balances")
        if bal is not None:
            probs = balance_problems(bal, accounts, initial)
            if probs:
                violation(f"final balances of {name}: " + "; ".join(probs))
            finals[name] = _state(bal)
        if d.get("ledger") is not None:
            ledgers[name] = [tuple(x) for x in d["ledger"]]
    if len({v for v in finals.values()}) > 1:
        violation("final balances differ between nodes: "
                  + "; ".join(f"{n}: {list(v) if v else v}" for n, v in finals.items()))
    if len({tuple(v) for v in ledgers.values()}) > 1:
        lens = ", ".join(f"{n}: {len(v)} rows" for n, v in ledgers.items())
        first = None
        ref = next(iter(ledgers.values()))
        for n, v in ledgers.items():
            for i, (a, b) in enumerate(zip(ref, v)):
                if a != b:
                    first = f"first difference at row {i}: {a} vs {b} ({n})"
                    break
            if first:
                break
        violation(f"final ledgers differ between nodes ({lens}){'; ' + first if first else ''}")
    sums = (final or {}).get("checksums") or {}
    got = {n: c for n, c in sums.items() if c}
    if len(set(got.values())) > 1:
        violation(f"content checksums at position {final.get('checksum_position')} differ: "
                  + ", ".join(f"{n}: {c[:16]}" for n, c in sorted(got.items())))
    elif got:
        res.checksum = next(iter(got.values()))
    res.nodes_compared = len(finals)

    # 3. The ledger against the history, and every read against its prefixes.
    if ledgers and len({tuple(v) for v in ledgers.values()}) == 1:
        ledger = next(iter(ledgers.values()))
        res.ledger_len = len(ledger)
        _check_ledger(ledger, transfers, good_reads, finals, accounts, initial, t0, violation)

    if res.violations:
        res.outcome = VIOLATION
    elif not finals:
        res.outcome = UNKNOWN
        res.violations.append("no node's final read succeeded (only the reads were checked)")
    res.bad_ops = sorted(bad, key=lambda o: (o.invoke, o.client))
    res.explanation = explain(f"{res.outcome}: {res.summary()}.", "BANK", res.violations,
                              res.bad_ops, t0, res.outcome == VIOLATION)
    return res


def _check_ledger(ledger, transfers, reads, finals, accounts, initial, t0, violation):
    by_id: dict[str, list[Op]] = {}
    for o in transfers:
        if isinstance(o.value, dict) and "op" in o.value:
            by_id.setdefault(str(o.value["op"]), []).append(o)
    seen: dict[str, int] = {}
    pos_of: dict[str, int] = {}  # op id -> ledger index (the first)
    for i, row in enumerate(ledger):
        if len(row) != 5:
            violation(f"ledger row {i} is not (seq, op, src, dst, amount): {row}")
            continue
        _, op_id, src, dst, amount = row
        op_id = str(op_id)
        seen[op_id] = seen.get(op_id, 0) + 1
        pos_of.setdefault(op_id, i)
        tried = by_id.get(op_id)
        if not tried:
            violation(f"ledger row {i} {row}: no client tried transfer {op_id!r}")
            continue
        o = tried[0]
        want = (o.value.get("from"), o.value.get("to"), o.value.get("amount"))
        if (src, dst, amount) != want:
            violation(f"ledger row {i} {row} is not what transfer {op_id} asked "
                      f"(from {want[0]} to {want[1]}, amount {want[2]})", o)
        if all(x.ok is False for x in tried):
            why = tried[0].result or "failed"
            violation(f"transfer {op_id} definitely failed ({why}) but is in the ledger "
                      f"(row {i})", *tried)
    for op_id, n in seen.items():
        if n > 1:
            violation(f"transfer {op_id} applied {n} times (ledger rows "
                      f"{[i for i, r in enumerate(ledger) if str(r[1]) == op_id]})",
                      *by_id.get(op_id, []))
    for op_id, tried in by_id.items():
        acked = [o for o in tried if o.ok is True]
        if acked and op_id not in seen:
            violation(f"acknowledged transfer {op_id} is not in the ledger (lost)", acked[0])

    # Replay: the balances after every prefix of the ledger.
    bal = {i: initial for i in range(1, accounts + 1)}
    states = [tuple(sorted(bal.items()))]
    went_negative = False
    for i, row in enumerate(ledger):
        if len(row) != 5:
            states.append(states[-1])
            continue
        _, _, src, dst, amount = row
        if src in bal and dst in bal and isinstance(amount, int):
            bal[src] -= amount
            bal[dst] += amount
            if bal[src] < 0 and not went_negative:
                went_negative = True
                violation(f"replaying the ledger, account {src} goes negative ({bal[src]}) at row {i} "
                          f"{row}: the overdraft check did not hold")
        states.append(tuple(sorted(bal.items())))
    for name, st in finals.items():
        if st is not None and st != states[-1]:
            violation(f"final balances of {name} {list(st)} are not the ledger's replay "
                      f"{list(states[-1])}")
    prefixes: dict[tuple, list[int]] = {}
    for k, st in enumerate(states):
        prefixes.setdefault(st, []).append(k)  # ascending

    # Linearizable reads: bounds from real time.
    acked = sorted(((o.complete, pos_of[str(o.value["op"])] + 1, o) for o in transfers
                    if o.ok is True and o.complete is not None and str(o.value["op"]) in pos_of),
                   key=lambda x: x[0])
    acked_t = [a[0] for a in acked]
    lo_max = []
    best = (0, None)
    for t, k, o in acked:
        if k > best[0]:
            best = (k, o)
        lo_max.append(best)
    in_ledger = sorted(((by_id[op_id][0].invoke, i, by_id[op_id][0]) for op_id, i in pos_of.items()
                        if op_id in by_id), key=lambda x: x[0])
    inv_t = [x[0] for x in in_ledger]
    hi_min = [None] * len(in_ledger)
    cur = (len(ledger), None)
    for j in range(len(in_ledger) - 1, -1, -1):
        if in_ledger[j][1] < cur[0]:
            cur = (in_ledger[j][1], in_ledger[j][2])
        hi_min[j] = cur

    local_by_node: dict[str, list[tuple[Op, int, int]]] = {}
    for r in reads:
        ks = prefixes.get(_state(r.result))
        if not ks:
            violation(f"read ({r.key}) at {r.invoke - t0:+.3f}s saw balances no prefix of the "
                      f"ledger produces (a state that never committed): {r.result}", r)
            continue
        if r.key == LINEARIZABLE and r.complete is not None:
            j = bisect.bisect_left(acked_t, r.invoke)  # acked strictly before the read began
            lo, lo_op = lo_max[j - 1] if j > 0 else (0, None)
            j = bisect.bisect_right(inv_t, r.complete)  # invoked strictly after it ended
            hi, hi_op = hi_min[j] if j < len(hi_min) else (len(ledger), None)
            x = bisect.bisect_left(ks, lo)
            if x >= len(ks) or ks[x] > hi:
                what = (f"a stale linearizable read at {r.invoke - t0:+.3f}s: it shows the state after "
                        f"ledger prefix(es) {ks[:8]}{'...' if len(ks) > 8 else ''}, but it must be "
                        f"within [{lo}, {hi}]")
                if lo_op is not None and (not ks or ks[-1] < lo):
                    what += f" (it misses transfer {lo_op.value['op']}, acknowledged before the read began)"
                elif hi_op is not None:
                    what += f" (it includes transfer {hi_op.value['op']}, invoked after the read ended)"
                violation(what, r, lo_op, hi_op)
        elif r.key != LINEARIZABLE:
            local_by_node.setdefault(r.key, []).append((r, ks[0], ks[-1]))

    # A node's own state never goes back: a local read that ended before another
    # local read of the same node began cannot show a later prefix.
    for node, rs in local_by_node.items():
        rs = [x for x in rs if x[0].complete is not None]
        by_end = sorted(rs, key=lambda x: x[0].complete)
        ends = [x[0].complete for x in by_end]
        run_max = []
        best = (-1, None)
        for r, kmin, _ in by_end:
            if kmin > best[0]:
                best = (kmin, r)
            run_max.append(best)
        for r, _, kmax in rs:
            j = bisect.bisect_left(ends, r.invoke)
            if j > 0 and run_max[j - 1][0] > kmax:
                earlier = run_max[j - 1][1]
                violation(f"{node} went back in time: a local read at {r.invoke - t0:+.3f}s shows "
                          f"at most ledger prefix {kmax}, an earlier one (ended "
                          f"{earlier.complete - t0:+.3f}s) showed prefix {run_max[j - 1][0]}",
                          earlier, r)
