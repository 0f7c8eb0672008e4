"""Linearizability checker for the register workload (read / write / cas per key).

In the manner of Porcupine (github.com/anishathalye/porcupine): the Wing & Gong
search with the improvements of Lowe ("Testing for linearizability", 2017) and
Horn & Kroening ("Faster linearizability checking via P-compositionality", 2015):

  * the history is split per key (P-compositionality: a history of independent
    registers is linearizable iff each key's sub-history is) and each key is
    checked on its own;
  * a key's history becomes a doubly linked list of call and return entries in
    time order (a call before a return at equal times, so touching ops count as
    concurrent: no false alarms from clock granularity);
  * the search walks the list from the head: a call entry whose op the model can
    apply is linearized (both its entries are lifted out of the list, the
    previous state is pushed on a stack) and the walk restarts at the head; a
    return entry means an op that must already have taken effect has not, so the
    search backtracks (pops the last linearized op, puts its entries back, and
    tries the entry after it);
  * a cache of (set of linearized ops as a bitset, model state) already explored
    cuts every branch that reaches a configuration seen before.

Model: one register per key, initially absent (None).
  read  ok=True      takes effect iff the register holds `value` (None = absent).
  write ok=True      sets the register to `value`.
  cas   ok=True      takes effect iff the register holds `expected`; sets `value`.
  cas   ok=False     a failed comparison: a read that saw something != `expected`
                     (it happened, as a no-op, between invoke and complete). With
                     result="refused" it never happened and is ignored.
  write/read ok=False  never happened: ignored.
  read  ok=None      returned nothing, constrains nothing: ignored.
  write/cas ok=None  optional: may take effect once at any time after invoke (its
                     return is at +infinity, so it never forces a backtrack) or
                     never; the search succeeds once every op that did complete is
                     linearized, whatever optional ops are left.

What makes it fast enough for chaos runs (each step keeps the verdict exact; the
brute-force cross-check in test_checker.py compares verdicts on random histories):
  * _simplify rewrites a key's ops first: a read of a value nothing writes fails
    at once; an unknown write whose value a completed op saw, and nothing else
    writes, must have happened before that op returned (it becomes required, so
    it no longer floats to +infinity); values no op compares with merge into one
    token; unknown ops nobody can observe are dropped.
  * A read (or failed cas) that can take effect now is taken without branching:
    any linearization can be reordered to start with it.
  * Unknown ops are tried only after the completed ones at each configuration, and
    a configuration is skipped when one with the same completed ops linearized,
    the same state and a subset of the unknown ops used was seen before.
  * An unknown op whose value only failed cas look at is tried only right before
    a failed cas that needs the register to change.
  * While the register holds a value that a single op writes and a completed
    read of that value is still to come, nothing may change the register: the
    value could never come back. With unique values this pins the order of
    writes to what the reads saw, and the search stays near-linear even with
    dozens of overlapping ops.
Use unique values for writes and cas (a counter per run): then most unknown ops
become required or disappear, and a stale read is pinned to the write it saw.

On a violation the failing key's history is shrunk to a small history that still
fails, using only moves that keep a linearizable history linearizable (drop a
read or failed cas, treat a write or cas as unknown, cut the history at a time
T), so the small history's failure proves the whole history's; and explained
with the longest valid order the search found and the op that cannot follow it.

Time is bounded: `check(ops, timeout_s)` returns outcome "unknown" when the search
of some key runs out of time (and no other key showed a violation). Shrinking has
its own budget of the same length (if it runs out, the sub-history is only partly
shrunk), so a call returns within about 2 * timeout_s.

Command line: python3 -m checker.linearizability HISTORY.jsonl [--timeout S]
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from .history import CAS, READ, REFUSED, WRITE, Op, format_history, describe

OK = "ok"
VIOLATION = "violation"
UNKNOWN = "unknown"

_INF = float("inf")

# Model op kinds.
_K_READ = 0      # a: value read
_K_WRITE = 1     # a: value written
_K_CAS = 2       # a: expected, b: new value
_K_CAS_FAIL = 3  # a: expected (the register held something else)


@dataclass
class Result:
    outcome: str                     # "ok" | "violation" | "unknown"
    key: str | None = None           # violation: the key whose history is not linearizable
    sub_history: list[Op] = field(default_factory=list)  # violation: minimal failing sub-history
    explanation: str = ""            # human-readable; for a violation includes the sub-history
    keys: int = 0                    # keys in the history
    ops: int = 0                     # register ops in the history
    unknown_keys: list[str] = field(default_factory=list)  # keys whose search timed out
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    def __str__(self) -> str:
        return self.explanation or self.outcome


class _Unobserved:
    """The state after a write of a value no op ever compares with: all such values
    are interchangeable, so they are merged into this one token."""

    def __repr__(self):
        return "<a value no op reads>"


_BOT = _Unobserved()


class _Timeout(Exception):
    pass


def _freeze(v):
    """Values must be hashable (cache keys) and compare by content."""
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, set):
        return frozenset(_freeze(x) for x in v)
    return v


@dataclass
class _MOp:
    """An op as the search sees it."""
    kind: int
    a: object
    b: object
    call: float
    ret: float          # +inf for optional ops
    required: bool
    src: Op


def _model_ops(ops: list[Op]) -> list[_MOp]:
    """Turns one key's Ops into model ops: drops what never happened or constrains
    nothing, validates the rest."""
    out = []
    for op in ops:
        if op.ok is not None and op.complete is None:
            raise ValueError(f"op with ok={op.ok} has no completion time: {op}")
        if op.ok is True or (op.ok is False and op.f == CAS and op.result != REFUSED):
            if op.complete < op.invoke:
                raise ValueError(f"op completes before it is invoked: {op}")
        if op.f == READ:
            if op.ok is True:
                out.append(_MOp(_K_READ, _freeze(op.value), None, op.invoke, op.complete, True, op))
        elif op.f == WRITE:
            if op.ok is True:
                out.append(_MOp(_K_WRITE, _freeze(op.value), None, op.invoke, op.complete, True,
                                op))
            elif op.ok is None:
                out.append(_MOp(_K_WRITE, _freeze(op.value), None, op.invoke, _INF, False, op))
        elif op.f == CAS:
            exp, new = _freeze(op.expected), _freeze(op.value)
            if op.ok is True:
                out.append(_MOp(_K_CAS, exp, new, op.invoke, op.complete, True, op))
            elif op.ok is None:
                out.append(_MOp(_K_CAS, exp, new, op.invoke, _INF, False, op))
            elif op.result != REFUSED:
                out.append(_MOp(_K_CAS_FAIL, exp, None, op.invoke, op.complete, True, op))
        else:
            raise ValueError(f"not a register op (read/write/cas): {op}")
    return out


def _simplify(mops: list[_MOp], initial) -> list[_MOp]:
    """Rewrites a key's model ops into an equivalent, easier search problem (the
    result is linearizable iff the input is):

    1. A failed cas whose expected value no op writes (and is not the initial
       value) holds in every state: it constrains nothing and is dropped. An
       unknown cas expecting such a value can never take effect: dropped too.
    2. An optional (unknown) write or cas that is the only source of a value a
       completed op saw (a read of it, a successful cas expecting it) must have
       happened, before every such observer returned: it becomes required, with
       that earliest observer's return as its own. (Optional ops otherwise float
       to +infinity and multiply the search.)
    3. The values that matter, C: those completed reads and cas compare with
       (including the expected values of failed cas), the initial value, and the
       expected value of any optional cas whose new value is in C. Values outside
       C cannot be told apart by any op that matters, so every write or cas of one
       writes the single token _BOT instead; an optional cas that expects a value
       outside C would turn _BOT into _BOT and is dropped.
    4. An optional op whose new value no completed read or cas and no optional
       cas compares with (a "setter": only failed cas may look at its value) is
       of use only to let a failed cas see something other than its expected
       value (the search applies one only right before such a cas: see
       _search). So it is dropped if no failed cas can come after it; and of the
       optional writes of _BOT, which are interchangeable once invoked, only the
       k earliest invoked are kept, k the number of failed cas (each use serves
       a different failed cas).
    """
    writers: dict = {}
    for m in mops:
        if m.kind == _K_WRITE:
            writers[m.a] = writers.get(m.a, 0) + 1
        elif m.kind == _K_CAS:
            writers[m.b] = writers.get(m.b, 0) + 1
    writable = set(writers) | {initial}
    observed_by = {}        # value -> earliest return of a completed op that saw it
    for m in mops:
        if m.required and m.kind in (_K_READ, _K_CAS) and m.ret < observed_by.get(m.a, _INF):
            observed_by[m.a] = m.ret
    out = []
    for m in mops:
        if m.kind == _K_CAS_FAIL and m.a not in writable:
            continue                                                    # 1
        if not m.required and m.kind == _K_CAS and m.a not in writable:
            continue                                                    # 1
        if not m.required:
            new = m.a if m.kind == _K_WRITE else m.b
            if new in observed_by and writers[new] == 1 and new != initial:
                m = _MOp(m.kind, m.a, m.b, m.call, observed_by[new], True, m.src)  # 2
        out.append(m)
    # 3
    matters = {m.a for m in out if m.required and m.kind != _K_WRITE} | {initial}
    feeds: dict = {}        # new value -> expected values of optional cas writing it
    for m in out:
        if not m.required and m.kind == _K_CAS:
            feeds.setdefault(m.b, []).append(m.a)
    work = [v for v in matters if v in feeds]
    while work:
        for e in feeds.pop(work.pop(), ()):
            if e not in matters:
                matters.add(e)
                if e in feeds:
                    work.append(e)
    res = []
    for m in out:
        if m.kind == _K_WRITE and m.a not in matters:
            m = _MOp(m.kind, _BOT, None, m.call, m.ret, m.required, m.src)
        elif m.kind == _K_CAS:
            if not m.required and m.a not in matters:
                continue
            if m.b not in matters:
                m = _MOp(m.kind, m.a, _BOT, m.call, m.ret, m.required, m.src)
        res.append(m)
    # 4
    last_fail_ret = max((m.ret for m in res if m.kind == _K_CAS_FAIL), default=-_INF)
    budget = sum(1 for m in res if m.kind == _K_CAS_FAIL)
    bots = sorted((m.call, n) for n, m in enumerate(res)
                  if not m.required and m.kind == _K_WRITE and m.a is _BOT)
    drop = {n for _, n in bots[budget:]}
    looked = _looked_at(res)
    return [m for n, m in enumerate(res) if n not in drop and not (
        not m.required and _new_value(m) not in looked and last_fail_ret < m.call)]


def _new_value(m: _MOp):
    return m.a if m.kind == _K_WRITE else m.b


def _looked_at(mops: list[_MOp]) -> set:
    """Values that a completed read or cas, or an optional cas, compares with. An
    optional op whose new value is not among them is a setter (see _simplify)."""
    return {m.a for m in mops if m.kind == _K_READ or m.kind == _K_CAS}


def _unwritten_read(mops: list[_MOp], initial) -> _MOp | None:
    """A read of a value that no op in the history could have written."""
    written = {initial}
    for m in mops:
        if m.kind == _K_WRITE:
            written.add(m.a)
        elif m.kind == _K_CAS:
            written.add(m.b)
    for m in mops:
        if m.kind == _K_READ and m.a not in written:
            return m
    return None


@dataclass
class _Trace:
    """The deepest point the search reached: the ops linearized (in order), the
    state after them, and the op whose return forced a backtrack."""
    depth: int = -1
    order: list[int] = field(default_factory=list)
    state: object = None
    blocked: int = -1
    blocked_ret: float = _INF
    want_order: bool = True         # copying the stack costs; the shrinker needs only `blocked_ret`


def _search(mops: list[_MOp], initial, deadline: float, trace: _Trace | None = None) -> bool:
    """True iff the history is linearizable. Raises _Timeout past `deadline`.

    Required ops live in the linked list of call/return entries. Optional ops have
    no return entry; they are kept apart, sorted by call, and at each configuration
    they are tried only after every required op that could go next has failed (as
    the next op, each one whose call precedes the first pending return). Trying
    them last lets the cache subsume them: a configuration is skipped when one with
    the same required ops, the same state and a subset of its optional ops was
    already visited (it had at least as many choices left). Optional writes of
    _BOT are interchangeable once invoked, so only the first unused one is ever
    tried; a setter (see _simplify) is tried only when a failed cas that expects
    the current state can go next; and an optional op that would not change the
    state is skipped. While the register holds a value that only one op writes
    and a completed read of it is still to come, nothing may change the state."""
    req = [i for i, m in enumerate(mops) if m.required]
    opt = sorted((i for i, m in enumerate(mops) if not m.required), key=lambda i: mops[i].call)
    remaining = len(req)
    if remaining == 0:
        return True
    # Entries: (time, 0 = call / 1 = return, required op index); calls first at equal times.
    entries = []
    for r, i in enumerate(req):
        entries.append((mops[i].call, 0, r))
        entries.append((mops[i].ret, 1, r))
    entries.sort()
    ne = len(entries)
    head = ne                       # sentinel
    nxt = list(range(1, ne + 1)) + [0]
    nxt[ne - 1] = -1
    prv = [head] + list(range(0, ne - 1)) + [-1]
    nxt[head] = 0
    etime = [e[0] for e in entries]
    is_ret = [e[1] == 1 for e in entries]
    op_of = [e[2] for e in entries]
    ret_of = [0] * len(req)
    for j, e in enumerate(entries):
        if e[1] == 1:
            ret_of[e[2]] = j
    kinds = [mops[i].kind for i in req]
    aa = [mops[i].a for i in req]
    bb = [mops[i].b for i in req]

    # Values with a single source (one op writes them, or the initial value that no
    # op writes): once the register holds such a value v and a completed read of v
    # (or cas expecting v) is still to come, the register must not change, except
    # by that cas, for v can never come back. pend[v] counts those ops.
    sources: dict = {}
    for m in mops:
        if m.kind in (_K_WRITE, _K_CAS):
            v = _new_value(m)
            sources[v] = sources.get(v, 0) + 1
    single = {v for v, n in sources.items() if n == 1 and v != initial and v is not _BOT}
    if initial not in sources:
        single.add(initial)
    pend: dict = {}
    watch = [False] * len(req)      # required op counted in pend[aa[i]]
    for r, i in enumerate(req):
        if kinds[r] in (_K_READ, _K_CAS) and aa[r] in single:
            pend[aa[r]] = pend.get(aa[r], 0) + 1
            watch[r] = True

    nopt = len(opt)
    ocall = [mops[i].call for i in opt]
    okind = [mops[i].kind for i in opt]
    oa = [mops[i].a for i in opt]
    ob_ = [mops[i].b for i in opt]
    obot = [mops[i].kind == _K_WRITE and mops[i].a is _BOT for i in opt]
    looked = _looked_at(mops)
    osetter = [_new_value(mops[i]) not in looked for i in opt]
    bot_order = [j for j in range(nopt) if obot[j]] + [-1]
    bot_k = 0                       # used _BOT writes: always the first bot_k of bot_order
    plain = [j for j in range(nopt) if not osetter[j]]
    setters = [j for j in range(nopt) if osetter[j] and not obot[j]]
    oused = [False] * nopt

    state = initial
    rbits = 0                       # linearized required ops
    obits = 0                       # linearized optional ops
    cache: dict = {}                # (rbits, state) -> [obits visited]
    # Frames: (optional?, list entry or optional index, state before, forced,
    #          optional candidates, position in them)
    stack = []
    phase_a = True                  # walking the list; else trying optional ops
    entry = nxt[head]
    cands: list = []                # phase B: the optional ops to try here
    pos = 0
    steps = 0
    monotonic = time.monotonic

    def visited(rb, st, ob):
        lst = cache.get((rb, st))
        if lst is None:
            cache[(rb, st)] = [ob]
            return False
        for o in lst:
            if o & ~ob == 0:
                return True
        lst.append(ob)
        return False

    while True:
        if remaining == 0:
            return True
        steps += 1
        if steps & 0xFFF == 0 and monotonic() > deadline:
            raise _Timeout()
        if phase_a:
            if entry == -1:
                # Unreachable: a pending required op's return entry stops every walk.
                raise AssertionError("walked off the end with required ops pending")
            if is_ret[entry]:
                # An op that must have taken effect by now has not: try the optional
                # ops available here, then backtrack.
                if trace is not None and len(stack) > trace.depth:
                    trace.depth = len(stack)
                    if trace.want_order:
                        trace.order = [opt[f[1]] if f[0] else req[op_of[f[1]]] for f in stack]
                    trace.state = state
                    trace.blocked = req[op_of[entry]]
                    trace.blocked_ret = etime[entry]
                phase_a = False
                limit = etime[entry]
                # The optional ops whose call comes before this return. A setter
                # (an optional op whose new value only failed cas look at, see
                # _simplify) is of use only right before a failed cas that expects
                # the current state: in a linearization that uses it, only failed
                # cas can follow it before the next write, so it can move there or
                # be dropped. So setters are tried only when such a failed cas can
                # go next; of the _BOT writes, only the first unused one.
                cands = []
                for j in plain:
                    if ocall[j] > limit:
                        break
                    if not oused[j]:
                        cands.append(j)
                useful = False
                e = nxt[head]
                while e != entry:
                    i = op_of[e]
                    if kinds[i] == _K_CAS_FAIL and aa[i] == state:
                        useful = True
                        break
                    e = nxt[e]
                if useful:
                    for j in setters:
                        if ocall[j] > limit:
                            break
                        if not oused[j]:
                            cands.append(j)
                    j = bot_order[bot_k]
                    if j != -1 and ocall[j] <= limit:
                        cands.append(j)
                pos = 0
                continue
            i = op_of[entry]
            k = kinds[i]
            if k == _K_READ:
                ok = state == aa[i]
                ns = state
            elif k == _K_WRITE:
                ok = pend.get(state, 0) == 0
                ns = aa[i]
            elif k == _K_CAS:
                ok = state == aa[i] and pend.get(state, 0) == (1 if watch[i] else 0)
                ns = bb[i]
            else:
                ok = state != aa[i]
                ns = state
            if not ok:
                entry = nxt[entry]
                continue
            # A read-like op (read, failed cas) that can take effect now is taken
            # without branching: it leaves the state alone and nothing pending has
            # to precede it (its call comes before every pending return), so any
            # linearization from here can be reordered to start with it. If the
            # search fails after it, this configuration fails: backtrack past it.
            forced = k == _K_READ or k == _K_CAS_FAIL
            nb = rbits | (1 << i)
            if not visited(nb, ns, obits):
                stack.append((False, entry, state, forced, None, 0))
                state = ns
                rbits = nb
                remaining -= 1
                if watch[i]:
                    pend[aa[i]] -= 1
                # lift the call entry and its return entry
                p, q = prv[entry], nxt[entry]
                nxt[p] = q
                if q != -1:
                    prv[q] = p
                r = ret_of[i]
                p, q = prv[r], nxt[r]
                nxt[p] = q
                if q != -1:
                    prv[q] = p
                entry = nxt[head]
                continue
            if not forced:
                entry = nxt[entry]
                continue
            # A forced op leads to a configuration already visited: backtrack.
        else:
            pushed = False
            if pend.get(state, 0) > 0:
                pos = len(cands)            # the state must not change yet
            while pos < len(cands):
                j = cands[pos]
                if okind[j] == _K_WRITE:
                    ok = oa[j] != state             # a write of the current value changes nothing
                    ns = oa[j]
                else:                               # optional cas
                    ok = state == oa[j] and ob_[j] != state
                    ns = ob_[j]
                if ok:
                    nb = obits | (1 << j)
                    if not visited(rbits, ns, nb):
                        stack.append((True, j, state, False, cands, pos))
                        oused[j] = True
                        if obot[j]:
                            bot_k += 1
                        obits = nb
                        state = ns
                        pushed = True
                        break
                pos += 1
            if pushed:
                phase_a = True
                entry = nxt[head]
                continue
        # Backtrack: undo the last linearized op (and every forced one on the way)
        # and try the next choice at the configuration before it.
        while True:
            if not stack:
                return False
            is_opt, x, state, forced, c, p = stack.pop()
            if is_opt:
                oused[x] = False
                obits &= ~(1 << x)
                if obot[x]:
                    bot_k -= 1
                phase_a = False
                cands = c
                pos = p + 1
                break
            i = op_of[x]
            rbits &= ~(1 << i)
            remaining += 1
            if watch[i]:
                pend[aa[i]] += 1
            # unlift: return entry first, then the call entry
            r = ret_of[i]
            nxt[prv[r]] = r
            if nxt[r] != -1:
                prv[nxt[r]] = r
            nxt[prv[x]] = x
            if nxt[x] != -1:
                prv[nxt[x]] = x
            if not forced:
                phase_a = True
                entry = nxt[x]
                break


def _linearizable(mops: list[_MOp], initial, deadline: float, trace: _Trace | None = None) -> bool:
    """Simplify + fast refutation + search. Raises _Timeout."""
    mops = _simplify(mops, initial)
    bad = _unwritten_read(mops, initial)
    if bad is not None:
        if trace is not None:
            trace.blocked_ret = bad.ret
        return False
    return _search(mops, initial, deadline, trace)


def _reduce(m: _MOp) -> _MOp | None:
    """The weaker version of a completed op: a read-like op (read, failed cas) is
    dropped, a write or cas becomes unknown (may or may not have happened). If a
    history is linearizable, so is the history with any of its ops reduced; so a
    reduced history that is not linearizable proves the original is not."""
    if not m.required:
        return m
    if m.kind in (_K_READ, _K_CAS_FAIL):
        return None
    return _MOp(m.kind, m.a, m.b, m.call, _INF, False, m.src)


def _compact(cand: list[_MOp], initial) -> list[_MOp]:
    """`cand` without the ops `_simplify` shows to be irrelevant."""
    keep = {id(m.src) for m in _simplify(cand, initial)}
    return [m for m in cand if id(m.src) in keep]


def _shrink(mops: list[_MOp], initial, deadline: float,
            hint: _Trace | None = None, per_check: float = _INF) -> tuple[list[_MOp], bool]:
    """A small history that is still not linearizable and that proves the original
    is not: it is obtained only by moves that keep a linearizable history
    linearizable, so its failure is the original's failure, not an artifact of
    leaving ops out (dropping a write, say, would make a later read of the written
    value fail on its own). The moves:
      * reduce an op (`_reduce`): drop a read or failed cas; make a write or cas unknown;
      * truncate at time T: drop the ops invoked after T and reduce those still
        running at T (the history as it stood at T);
      * drop what `_simplify` shows to be irrelevant (unknown ops nobody observed).
    Steps: truncate where the first search got stuck (`hint`); binary-search the
    latest A such that reducing every op that returned before A still fails, and
    the earliest T to truncate at; then delta debugging (reduce chunks, halving
    their size); then single ops, and giving reduced writes back their real
    outcome where possible, to a fixpoint. If the second result is True, no single op
    can be taken out this way (reduced and then dropped as irrelevant) without the
    result becoming linearizable. Candidates whose search times out count as not
    failing, so the result always fails."""
    def fails(cand):
        if not cand:
            return False
        try:
            return not _linearizable(cand, initial, min(deadline, time.monotonic() + per_check))
        except _Timeout:
            return False

    def tick():
        if time.monotonic() > deadline:
            raise _Timeout()

    def reduced(ms, pred):
        out = []
        for m in ms:
            if pred(m):
                m = _reduce(m)
                if m is None:
                    continue
            out.append(m)
        return _compact(out, initial)

    def truncated(ms, t):
        return reduced([m for m in ms if m.call <= t], lambda m: m.ret > t)

    orig = {id(m.src): m for m in mops}
    cur = _compact(list(mops), initial)
    bad = _unwritten_read(_simplify(cur, initial), initial)
    if bad is not None:
        return [orig[id(bad.src)]], True
    try:
        if hint is not None and hint.blocked_ret < _INF:
            cand = truncated(cur, hint.blocked_ret)
            if len(cand) < len(cur) and fails(cand):
                cur = cand
        # Latest A such that reducing every op that returned before A still fails.
        times = sorted({m.ret for m in cur if m.required})
        lo, hi = 0, len(times)        # reduce ops with ret < times[i] (times[len] = all)
        while lo < hi:
            tick()
            mid = (lo + hi + 1) // 2
            limit = times[mid] if mid < len(times) else _INF
            if fails(reduced(cur, lambda m, a=limit: m.required and m.ret < a)):
                lo = mid
            else:
                hi = mid - 1
        if lo > 0:
            limit = times[lo] if lo < len(times) else _INF
            cur = reduced(cur, lambda m, a=limit: m.required and m.ret < a)
        # Earliest T to truncate at that still fails.
        times = sorted({m.call for m in cur})
        lo, hi = 0, len(times) - 1
        while lo < hi:
            tick()
            mid = (lo + hi) // 2
            if fails(truncated(cur, times[mid])):
                hi = mid
            else:
                lo = mid + 1
        if times and lo < len(times) - 1:
            cur = truncated(cur, times[lo])
        # Delta debugging: reduce chunks of ops, halving the chunk size.
        chunk = len(cur) // 2
        while chunk >= 2:
            i = 0
            while i < len(cur):
                tick()
                part = {id(m) for m in cur[i:i + chunk]}
                cand = reduced(cur, lambda m: id(m) in part)
                if len(cand) < len(cur) and fails(cand):
                    cur = cand
                else:
                    i += chunk
            chunk //= 2
        # Single ops, and giving reduced ops back their real outcome where the
        # result still fails (so the sub-history shows ops as they happened, and
        # what a restored write makes unneeded goes), to a fixpoint.
        while True:
            changed = False
            for i in range(len(cur) - 1, -1, -1):
                tick()
                if i >= len(cur) or not cur[i].required:
                    continue
                target = cur[i]
                cand = reduced(cur, lambda m: m is target)
                if len(cand) < len(cur) and fails(cand):
                    cur = cand
                    changed = True
            for i in range(len(cur)):
                tick()
                real = orig[id(cur[i].src)]
                if real is not cur[i]:
                    cand = cur[:i] + [real] + cur[i + 1:]
                    if fails(cand):
                        cur = cand
                        changed = True
            if not changed:
                break
        minimal = True
    except _Timeout:
        minimal = False
    return cur, minimal


def _show(v) -> str:
    return "absent" if v is None else repr(v)


def _explain(key, mops: list[_MOp], initial, minimal: bool, everything: list[_MOp],
             budget_s: float = 5.0) -> str:
    """Text for a violation on `key`: the sub-history `mops` of the key's ops
    `everything`, and why it cannot be linearized."""
    total = len(everything)
    subs = [m.src for m in mops]
    lines = [f"key {key!r}: not linearizable ({total} ops on this key). "
             + ("Minimal" if minimal else "Partly shrunk (time limit hit)")
             + f" failing sub-history, {len(subs)} op{'' if len(subs) == 1 else 's'}:",
             format_history(subs)]
    weakened = [m.src for m in mops if not m.required and m.src.ok is not None]
    if weakened:
        lines.append("  treated as unknown (whether they took effect does not matter): "
                     + "; ".join(f"client {o.client} {describe(o)}" for o in weakened))
    lines.append("  (every other op on the key was left out by moves that cannot cause a failure: "
                 "dropping reads and failed cas, treating writes as unknown, cutting off ops "
                 "invoked later; so the whole history fails too."
                 + (" None of the ops above can be left out that way." if minimal else "") + ")")
    t0 = min(m.call for m in mops) if mops else 0.0
    simple = _simplify(mops, initial)
    bad = _unwritten_read(simple, initial)
    if bad is not None:
        later = [m for m in everything if m.kind in (_K_WRITE, _K_CAS) and _new_value(m) == bad.a]
        lines.append(f"Why: {describe(bad.src)}, but no op writes {_show(bad.a)} "
                     + ("before it returned (every op that could write it began later)"
                        if later else "(nothing in the key's history does)")
                     + f"; the register starts {_show(initial)}.")
        return "\n".join(lines)
    trace = _Trace()
    try:
        _search(simple, initial, time.monotonic() + budget_s, trace)
    except _Timeout:
        return "\n".join(lines)
    if trace.depth > 0:
        shown = trace.order[-10:]
        order = " ; ".join(f"client {simple[i].src.client} {describe(simple[i].src)}"
                           for i in shown)
        if len(trace.order) > len(shown):
            order = f"... {len(trace.order) - len(shown)} more ; " + order
        lines.append(f"Longest valid order found ({trace.depth} of {len(simple)} ops): {order}")
        held = initial
        for i in trace.order:
            if simple[i].kind in (_K_WRITE, _K_CAS):
                held = _freeze(simple[i].src.value)
        lines.append(f"  after it the register holds {_show(held)}.")
    if trace.blocked >= 0:
        m = simple[trace.blocked]
        why = ""
        if m.kind == _K_READ and m.a != trace.state:
            why = f" (it returned {_show(m.a)})"
        elif m.kind == _K_CAS and m.a != trace.state:
            why = f" (it succeeded, so it saw {_show(m.a)})"
        elif m.kind == _K_CAS_FAIL and m.a == trace.state and trace.state is not _BOT:
            why = f" (it failed, so it saw something other than {_show(m.a)})"
        elif m.kind in (_K_WRITE, _K_CAS) and trace.state is not _BOT:
            done = set(trace.order)
            waiting = [x for n, x in enumerate(simple) if n not in done and n != trace.blocked
                       and x.required and x.kind in (_K_READ, _K_CAS) and x.a == trace.state]
            if waiting:
                w = min(waiting, key=lambda x: x.call)
                why = (f" (it would overwrite {_show(w.a)}, which client {w.src.client} "
                       f"{describe(w.src)}, invoked at {w.call - t0:+.4f}s, must still see, "
                       f"and no other op writes {_show(w.a)})")
        if m.src.ok is True or m.src.ok is False:
            when = f"before it returned at {m.ret - t0:+.4f}s"
        else:
            when = (f"before {m.ret - t0:+.4f}s, when an op that saw its value returned "
                    f"(no other op writes that value)")
        first = "next" if trace.depth > 0 else f"the register starts {_show(initial)}; first"
        lines.append(f"Why: {first}, client {m.src.client} {describe(m.src)} must take effect "
                     f"{when}, but cannot{why}; no other order allowed by real time gets "
                     f"further.")
    return "\n".join(lines)


def check(ops: list[Op], timeout_s: float = 10.0, initial=None) -> Result:
    """Checks that the register history `ops` is linearizable.

    Every key starts as `initial` (None: absent). Returns a Result with outcome
    "ok", "violation" (with key, sub_history, explanation) or "unknown" (the search
    of some key hit the time limit; unknown_keys lists them)."""
    start = time.monotonic()
    deadline = start + timeout_s
    by_key: dict[str, list[Op]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    initial = _freeze(initial)
    res = Result(OK, keys=len(by_key), ops=len(ops))
    # Small keys first, so one hard key does not starve the others.
    model = {k: _model_ops(v) for k, v in by_key.items()}
    for key in sorted(model, key=lambda k: len(model[k])):
        mops = model[key]
        hint = _Trace(want_order=False)
        t = time.monotonic()
        try:
            good = _linearizable(mops, initial, deadline, hint)
        except _Timeout:
            res.unknown_keys.append(key)
            continue
        if not good:
            per_check = max(1.0, 3 * (time.monotonic() - t))
            sub, minimal = _shrink(mops, initial, time.monotonic() + timeout_s, hint, per_check)
            res.outcome = VIOLATION
            res.key = key
            res.sub_history = sorted((m.src for m in sub), key=lambda o: o.invoke)
            res.explanation = _explain(key, sub, initial, minimal, mops, min(5.0, timeout_s))
            res.elapsed_s = time.monotonic() - start
            return res
    res.elapsed_s = time.monotonic() - start
    if res.unknown_keys:
        res.outcome = UNKNOWN
        res.explanation = (f"unknown: the search of {len(res.unknown_keys)} key(s) "
                           f"({', '.join(map(repr, res.unknown_keys[:5]))}) hit the "
                           f"{timeout_s:g}s time limit; no violation on the other keys.")
    else:
        res.explanation = f"ok: {res.ops} ops on {res.keys} keys are linearizable."
    return res


def main(argv=None) -> int:
    import argparse

    from .history import load
    p = argparse.ArgumentParser(description="Check a register history (JSON lines).")
    p.add_argument("history")
    p.add_argument("--timeout", type=float, default=10.0)
    a = p.parse_args(argv)
    r = check(load(a.history), timeout_s=a.timeout)
    print(r.explanation)
    print(f"({r.ops} ops, {r.keys} keys, {r.elapsed_s:.2f}s)")
    return {OK: 0, VIOLATION: 1, UNKNOWN: 2}[r.outcome]


if __name__ == "__main__":
    sys.exit(main())
