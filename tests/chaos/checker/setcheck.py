"""Checker for the set workload: clients add unique elements, and after the faults
stop the harness reads the whole set from every node.

Rules, for the final read of every node:
  * lost      an element with an acknowledged add (ok=True) is missing;
  * invented  an element is present that no add ever tried;
  * failed    an element is present whose every add definitely did not happen
              (ok=False: refused before it entered the log).
Any of these is a violation. Elements whose adds are unknown (ok=None) may be
present or not. Nodes whose final read did not succeed (ok is not True) are not
checked and are listed in `unread_nodes`; if no node could be read the outcome is
"unknown". Nodes that disagree only on unknown adds are reported in `divergent`
(a warning, since a read of local state may race the last commits).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from .history import ADD, READ_SET, Op, describe, format_history

OK = "ok"
VIOLATION = "violation"
UNKNOWN = "unknown"


def _freeze(v):
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    return v


def _sorted(xs):
    xs = list(xs)
    try:
        return sorted(xs)
    except TypeError:
        return sorted(xs, key=repr)


@dataclass
class Result:
    outcome: str                                   # "ok" | "violation" | "unknown"
    # element -> (acknowledged add Op, [nodes missing it])
    lost: dict = field(default_factory=dict)
    # element -> [nodes that read it]
    invented: dict = field(default_factory=dict)
    # element -> ([its add Ops, all ok=False], [nodes that read it])
    failed_present: dict = field(default_factory=dict)
    # element with only unknown adds -> [nodes missing it while others have it]
    divergent: dict = field(default_factory=dict)
    unread_nodes: list = field(default_factory=list)  # nodes whose final read did not succeed
    acknowledged: int = 0                          # distinct elements with an ok add
    unknown_adds: int = 0                          # distinct elements with only unknown/failed adds
    unknown_present: int = 0                       # of those, present on some node
    explanation: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    def __str__(self) -> str:
        return self.explanation or self.outcome


def _final_reads(final_reads) -> list[tuple[str, Op | None, set | None]]:
    """(node name, read op or None, elements or None if the read did not succeed)."""
    out = []
    if isinstance(final_reads, Mapping):
        items = list(final_reads.items())
    else:
        items = [(None, r) for r in final_reads]
    for n, (name, r) in enumerate(items):
        if isinstance(r, Op):
            if r.f != READ_SET:
                raise ValueError(f"final read is not a read_set: {r}")
            label = str(name) if name is not None else f"read #{n} (client {r.client})"
            elems = {_freeze(x) for x in (r.result or ())} if r.ok is True else None
            out.append((label, r, elems))
        else:
            label = str(name) if name is not None else f"read #{n}"
            out.append((label, None, None if r is None else {_freeze(x) for x in r}))
    return out


def check(adds: Iterable[Op], final_reads) -> Result:
    """`adds`: the add ops of the history (other ops are ignored). `final_reads`:
    the final read of each node, as a list of read_set Ops (result = the set), or a
    mapping node name -> read_set Op or -> iterable of elements (None: unreadable)."""
    adds = list(adds)
    t0 = min((o.invoke for o in adds), default=0.0)
    by_elem: dict[object, list[Op]] = {}
    for op in adds:
        if op.f != ADD:
            continue
        by_elem.setdefault(_freeze(op.value), []).append(op)
    reads = _final_reads(final_reads)

    res = Result(OK)
    acked = {e: next(o for o in ops if o.ok is True)
             for e, ops in by_elem.items() if any(o.ok is True for o in ops)}
    failed = {e for e, ops in by_elem.items() if all(o.ok is False for o in ops)}
    res.acknowledged = len(acked)
    res.unknown_adds = len(by_elem) - len(acked)

    readable = [(name, elems) for name, _, elems in reads if elems is not None]
    res.unread_nodes = [name for name, _, elems in reads if elems is None]
    if not readable:
        res.outcome = UNKNOWN
        res.explanation = "unknown: no node's final read succeeded."
        return res

    for e, op in acked.items():
        missing = [name for name, elems in readable if e not in elems]
        if missing:
            res.lost[e] = (op, missing)
    present_anywhere = set().union(*(elems for _, elems in readable))
    for e in present_anywhere:
        if e not in by_elem:
            res.invented[e] = [name for name, elems in readable if e in elems]
        elif e in failed:
            res.failed_present[e] = (by_elem[e], [name for name, elems in readable if e in elems])
        elif e not in acked:
            res.unknown_present += 1
            missing = [name for name, elems in readable if e not in elems]
            if missing:
                res.divergent[e] = missing

    lines = []
    if res.lost:
        lines.append(f"LOST: {len(res.lost)} acknowledged add(s) missing from a final read:")
        for e in _sorted(res.lost)[:50]:
            op, missing = res.lost[e]
            lines.append(f"  {e!r}: missing on {', '.join(missing)}; acknowledged add:")
            lines.append("  " + format_history([op], t0=t0).strip())
    if res.invented:
        lines.append(f"INVENTED: {len(res.invented)} element(s) read that no add tried:")
        for e in _sorted(res.invented)[:50]:
            lines.append(f"  {e!r}: read on {', '.join(res.invented[e])}")
    if res.failed_present:
        lines.append(f"FAILED ADD PRESENT: {len(res.failed_present)} element(s) whose adds all "
                     f"definitely failed are present:")
        for e in _sorted(res.failed_present)[:50]:
            ops, nodes = res.failed_present[e]
            lines.append(f"  {e!r}: read on {', '.join(nodes)}; adds: "
                         + "; ".join(describe(o) for o in ops))
    if lines:
        res.outcome = VIOLATION
    summary = (f"{res.acknowledged} acknowledged adds, {res.unknown_adds} unknown "
               f"({res.unknown_present} of them present), {len(readable)} node(s) read")
    if res.unread_nodes:
        summary += f", unreadable: {', '.join(res.unread_nodes)}"
    if res.divergent:
        summary += (f"; warning: nodes disagree on {len(res.divergent)} element(s) with "
                    f"unknown adds")
    res.explanation = "\n".join([f"{res.outcome}: {summary}."] + lines)
    return res
