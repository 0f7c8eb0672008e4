"""The operation history the chaos harness records and the checkers read.

One `Op` per client operation. The harness appends an Op when a client invokes an
operation and fills in `ok`, `complete` and the result when (if) it returns.

Meaning of `ok`:
  True   completed and acknowledged.
  False  definitely did not take effect. For a compare-and-set this is a failed
         comparison: the linearizability checker treats it as a read that saw a
         value != expected (it happened, as a no-op). A cas the server refused
         before it entered the log (not leader, overloaded) must either be left out
         of the history or recorded with ok=False and result="refused"; then it is
         ignored.
  None   unknown (timed out, connection lost): may have taken effect at any time
         after `invoke`, or never. `complete` is None.

Times are `time.monotonic()` seconds from one clock for the whole run.

Write unique values (a counter for the run) in writes and in the new value of a
cas: the linearizability checker then pins every read to the one write it saw,
which keeps its search near-linear (see linearizability.py).

The history is saved as JSON lines (`dump` / `load`) so a failing run can be
checked again offline: `python3 -m checker.linearizability history.jsonl`.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Iterable

# Values of Op.f.
READ = "read"
WRITE = "write"
CAS = "cas"
ADD = "add"
READ_SET = "read_set"
TRANSFER = "transfer"            # bank workload (checker.bankcheck)
READ_BALANCES = "read_balances"  # bank workload

# Op.result of a cas with ok=False that never entered the log (see module doc).
REFUSED = "refused"


@dataclass
class Op:
    client: int            # who issued it (one op at a time per client)
    f: str                 # "read" | "write" | "cas" | "add" | "read_set" | "transfer" | "read_balances"
    key: str               # register key ("" for set ops)
    value: object = None   # write: the value; cas: the new value; add: the element; read: the value returned (None = absent) when ok
    expected: object = None  # cas: the expected value (None = must be absent)
    ok: bool | None = None   # True: completed OK; False: definitely did not happen (e.g. cas failed, or a refusal that never entered the log); None: unknown (timed out / connection lost) — may have taken effect at any time after invoke, or never
    invoke: float = 0.0      # monotonic seconds
    complete: float | None = None  # None when ok is None (never returned)
    result: object = None    # read_set: the set of elements read


# --- JSON lines -------------------------------------------------------------------

_SET_TAG = "$set"


def _encode(v):
    """JSON-safe form of a value: sets become {"$set": [...]}, tuples lists."""
    if isinstance(v, (set, frozenset)):
        items = [_encode(x) for x in v]
        try:
            items.sort()
        except TypeError:
            items.sort(key=repr)
        return {_SET_TAG: items}
    if isinstance(v, (list, tuple)):
        return [_encode(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _encode(x) for k, x in v.items()}
    return v


def _decode(v):
    if isinstance(v, dict):
        if set(v) == {_SET_TAG}:
            return {_hashable(x) for x in (_decode(y) for y in v[_SET_TAG])}
        return {k: _decode(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


def op_to_json(op: Op) -> str:
    return json.dumps({f.name: _encode(getattr(op, f.name)) for f in dataclasses.fields(Op)},
                      sort_keys=False)


def op_from_json(line: str) -> Op:
    d = json.loads(line)
    return Op(**{k: _decode(v) for k, v in d.items()})


def dumps(ops: Iterable[Op]) -> str:
    return "".join(op_to_json(op) + "\n" for op in ops)


def loads(text: str) -> list[Op]:
    return [op_from_json(line) for line in text.splitlines() if line.strip()]


def dump(ops: Iterable[Op], path) -> None:
    """Writes `ops` to `path` as JSON lines, one Op per line."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(dumps(ops))


def load(path) -> list[Op]:
    """Reads a history written by `dump`."""
    with open(path, encoding="utf-8") as f:
        return loads(f.read())


# --- pretty printing --------------------------------------------------------------

def describe(op: Op) -> str:
    """One op as a call and its outcome, e.g. `cas(k, 1 -> 2) fail`."""
    def r(v):
        return "absent" if v is None else repr(v)

    if op.f == READ:
        call = f"read({op.key})"
        out = "-> " + r(op.value) if op.ok else ("?" if op.ok is None else "failed")
    elif op.f == WRITE:
        call = f"write({op.key}, {r(op.value)})"
        out = {True: "ok", False: "failed", None: "?"}[op.ok]
    elif op.f == CAS:
        call = f"cas({op.key}, {r(op.expected)} -> {r(op.value)})"
        if op.ok is False and op.result == REFUSED:
            out = "refused"
        else:
            out = {True: "ok", False: "fail (value != expected)", None: "?"}[op.ok]
    elif op.f == ADD:
        call = f"add({r(op.value)})"
        out = {True: "ok", False: "failed", None: "?"}[op.ok]
    elif op.f == READ_SET:
        call = "read_set()"
        if op.ok:
            elems = op.result or ()
            try:
                elems = sorted(elems)
            except TypeError:
                elems = sorted(elems, key=repr)
            shown = ", ".join(map(repr, elems[:20])) + (", ..." if len(elems) > 20 else "")
            out = f"-> {len(elems)} elements {{{shown}}}"
        else:
            out = "?" if op.ok is None else "failed"
    elif op.f == TRANSFER and isinstance(op.value, dict):
        v = op.value
        call = f"transfer({v.get('op')}: {v.get('amount')} from {v.get('from')} to {v.get('to')})"
        out = {True: "ok", False: f"failed ({op.result or 'refused'})", None: "?"}[op.ok]
    elif op.f == READ_BALANCES:
        call = f"read_balances({op.key})"
        if op.ok and isinstance(op.result, list):
            try:
                total = sum(b for _, b in op.result)
            except (TypeError, ValueError):
                total = "?"
            out = f"-> {[b for _, b in op.result] if len(op.result) <= 16 else '...'} total {total}"
        elif op.ok:
            out = f"-> {op.result!r}"
        else:
            out = "?" if op.ok is None else "failed"
    else:
        call = f"{op.f}({op.key}, {r(op.value)})"
        out = repr(op.ok)
    return f"{call} {out}"


def format_history(ops: Iterable[Op], t0: float | None = None) -> str:
    """One line per op, sorted by invoke, times in seconds relative to `t0`
    (default: the first invoke). An op that never returned shows `?` as its end."""
    ops = sorted(ops, key=lambda o: (o.invoke, o.client))
    if not ops:
        return "  (empty history)"
    if t0 is None:
        t0 = ops[0].invoke
    lines = []
    for op in ops:
        end = "       ?" if op.complete is None else f"{op.complete - t0:+8.4f}"
        lines.append(f"  [{op.invoke - t0:+8.4f} .. {end}]  client {op.client:<3} {describe(op)}")
    return "\n".join(lines)


def explain(head: str, label: str, violations: list, bad_ops: list, t0: float | None,
            is_violation: bool, shown: int = 40) -> str:
    """A checker's explanation: `head`, then (for a violation) "LABEL: N
    violation(s):", the first `shown` violations, and the ops involved."""
    lines = [head]
    if is_violation:
        lines.append(f"{label}: {len(violations)} violation(s):")
    for v in violations[:shown]:
        lines.append("  " + v)
    if len(violations) > shown:
        lines.append(f"  ... and {len(violations) - shown} more")
    if bad_ops:
        lines.append("ops involved:")
        lines.append(format_history(bad_ops[:shown], t0=t0))
    return "\n".join(lines)

