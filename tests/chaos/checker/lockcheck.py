"""Checker for the lock workload (issue #7): one exclusive lock, many sessions,
dying clients, and a fenced register that accepts only tokens >= the highest seen.

The history (checker.history Ops; key = the lock's name; value["session"] = S):

  lock_open       result {"session": S, "expires_ms": E} | {"error": ...}
  lock_acquire    value {"session", "wait": id}; result {"granted": true, "token": T, ...}
                  | {"granted": false, "waiting": true, "position": k} | {"error": ...}
  lock_status     value {"session", "wait": id}; result {"held": true, "token": T} | ...
  lock_keepalive  value {"session", "final": bool}; result {"expires_ms": E} | {"error": ...}
                  ("final": the last command of a dying client, which then goes silent)
  lock_release    value {"session", "token"}; result {"released": true} | {"error": ...}
  session_lost    value {"session", "reason"}: the client gave the session up (an instant)
  lock_show       result = the backend's show object (a holder reading its own grant)
  lock_list       result = the backend's list object (the poller; every session and lock)
  fence           value {"session", "token", "val", "prev"}: one use of the protected
                  resource: read the register (linearizable), refuse if its token is
                  higher than ours (ok False, result "stale"), else compare-and-set it from
                  prev to val ("<token>/<client>/<n>"): ok True accepted, False
                  ("cas_failed": someone wrote in between), None unknown.

Every show/list is a LINEARIZABLE read: a snapshot of the backend's own view at
some point between invoke and complete, with the log's clock `now_ms`.

`final`: {"params": {"ttl_ms", "lock_delay_ms", "slack_ms", "wall_offset"}, "fence": value
or None (read after healing), "list": the final list object or None}. wall_offset =
time.time() - time.monotonic() of the harness, to put op times on the nodes' clock
(they run on this machine: the log's time is the leader's wall clock).

Violations (a grant is (session, token); grants are seen in acquire and status
results and as holders in snapshots):

  * snapshot: more than one holder of the exclusive lock, a shared holder, a
    holder whose token is not the lock's last_token, a waiter twice or also the
    holder, a holder or waiter whose session the same list does not have;
  * one token granted to two sessions, one grant with two since_ms;
  * order (real time between snapshots: R1 ended before R2 began): the log's
    clock, last_token and the holder's token never go back; a session gone from
    a list never shows up again;
  * tokens never go backwards: a grant observed before another session began
    waiting has a lower token than that session's grant;
  * FIFO: sessions queued in a snapshot are granted (their next grants) in
    queue order; a queued session (the clients never cancel) is, while its
    session lives, still queued or holding (status never says neither);
  * the fenced register: the accepted writes form one chain (each compare-and-set
    from the previous value) whose tokens never decrease, and writes with one
    token come from one session: the resource never takes two holders' writes
    out of token order; the final value ends that chain;
  * no early expiry (log time): a session missing from a list at log time N
    had every keepalive's expires_ms < N (the backend expires S only when
    last_seen + ttl < now); by the harness's clock: not before TTL - slack after
    its last successful command was sent;
  * lock-delay: when a holder never released (a dying client, or a session
    lost to faults), the next grant's since_ms > its last known expiry + the
    lock-delay (log time), and >= its last command's send time + TTL +
    lock-delay - slack (harness clock).

slack_ms covers the nodes' clocks against the harness's (the same machine
clock unless the skew nemesis runs nodes at x0.95-1.05: then a leader's clock
drifts by up to 5 % of its uptime) and the log-time rounding; the log-time
checks need no slack. Unknown outcomes are allowed everywhere: an unknown
acquire may have granted (the client asks again; acquire is idempotent), an
unknown keepalive may have extended the session (it only makes the checks
weaker, never wrong), an unknown fence write may be in the chain.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from .history import Op, explain

OK = "ok"
VIOLATION = "violation"
UNKNOWN = "unknown"

OPEN, ACQUIRE, STATUS, KEEPALIVE, RELEASE = (
    "lock_open", "lock_acquire", "lock_status", "lock_keepalive", "lock_release")
LOST, SHOW, LIST, FENCE = "session_lost", "lock_show", "lock_list", "fence"
FS = (OPEN, ACQUIRE, STATUS, KEEPALIVE, RELEASE, LOST, SHOW, LIST, FENCE)


@dataclass
class Result:
    outcome: str
    explanation: str = ""
    violations: list = field(default_factory=list)
    bad_ops: list = field(default_factory=list)
    sessions: int = 0
    grants: int = 0
    releases: int = 0
    expiries: int = 0            # sessions seen expired (gone from a list, or "expired" errors)
    keepalive_failures: int = 0
    lost: int = 0                # sessions the clients gave up
    dying: int = 0               # clients that went silent holding the lock
    dying_released: list = field(default_factory=list)  # ms after TTL + lock-delay (log time)
    snapshots: int = 0
    fence_accepted: int = 0
    fence_refused: int = 0       # stale token: the resource said no
    fence_chain: int = 0         # writes in the register's chain (accepted + unknown that landed)

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    def summary(self) -> str:
        s = (f"lock: {self.sessions} sessions, {self.grants} grants, {self.releases} releases, "
             f"{self.expiries} expiries seen, {self.keepalive_failures} keepalive failures, "
             f"{self.lost} sessions given up; {self.dying} dying clients")
        if self.dying_released:
            s += (f" (next grant {min(self.dying_released)}..{max(self.dying_released)} ms after "
                  f"TTL + lock-delay)")
        s += (f"; {self.snapshots} snapshots; fenced writes: {self.fence_chain} in the chain "
              f"({self.fence_accepted} acknowledged), {self.fence_refused} refused as stale")
        return s

    def __str__(self):
        return self.explanation or self.outcome


def _err(r) -> bool:
    return not isinstance(r, dict) or "error" in r


def _lock_view(op: Op, name: str):
    """(show object or None, sessions set or None, now_ms) of a snapshot op."""
    r = op.result
    if not isinstance(r, dict) or "error" in r:
        return None
    if op.f == SHOW:
        return r, None, r.get("now_ms")
    view = next((x for x in r.get("locks", []) if x.get("lock") == name), None)
    if view is None:  # free, nobody waiting, not in its lock-delay: not listed
        view = {"lock": name, "holders": [], "waiters": [], "last_token": None}
    return view, {s["session"] for s in r.get("sessions", [])}, r.get("now_ms")


def check(ops: list[Op], final: dict | None = None, lock: str = "chaos") -> Result:
    final = final or {}
    p = final.get("params", {})
    ttl = p.get("ttl_ms")
    delay = p.get("lock_delay_ms", 0)
    slack = p.get("slack_ms", 500)
    off = p.get("wall_offset", 0.0)
    res = Result(OK)
    ops = [o for o in ops if o.f in FS]
    t0 = min((o.invoke for o in ops), default=0.0)
    bad: list[Op] = []

    def violation(msg, *involved):
        res.violations.append(msg)
        for o in involved:
            if o is not None and all(o is not b for b in bad):
                bad.append(o)

    def wall_ms(t):
        return (t + off) * 1000.0

    def at(o):
        return f"{o.invoke - t0:+.3f}s"

    # ---- sessions: opened, last known expiry, last command sent
    opened: dict[int, Op] = {}
    ttl_of: dict[int, int] = {}
    e_max: dict[int, tuple[int, Op]] = {}
    last_cmd: dict[int, float] = {}   # invoke (monotonic) of its last successful command
    expired_seen: set[int] = set()
    released: set[tuple[int, int]] = set()  # (session, token) a release was sent for
    for o in ops:
        v = o.value if isinstance(o.value, dict) else {}
        r = o.result
        s = v.get("session")
        if o.f == OPEN and o.ok and not _err(r):
            s = r["session"]
            opened[s] = o
            ttl_of[s] = v.get("ttl_ms", ttl)
        if o.f in (OPEN, KEEPALIVE) and o.ok and not _err(r) and "expires_ms" in r:
            s = r.get("session", s)
            if s not in e_max or r["expires_ms"] > e_max[s][0]:
                e_max[s] = (r["expires_ms"], o)
        if o.f in (OPEN, KEEPALIVE, ACQUIRE, RELEASE) and o.ok and not _err(r):
            s = r.get("session", s) if o.f == OPEN else s
            last_cmd[s] = max(last_cmd.get(s, o.invoke), o.invoke)
        if o.f in (KEEPALIVE, ACQUIRE, STATUS, RELEASE) and o.ok and isinstance(r, dict) and r.get("expired"):
            expired_seen.add(s)
        if o.f == KEEPALIVE and (o.ok is not True or _err(r)):
            res.keepalive_failures += 1
        if o.f == RELEASE:
            released.add((s, v.get("token")))
            if o.ok and isinstance(r, dict) and r.get("released"):
                res.releases += 1
        if o.f == LOST:
            res.lost += 1
        if o.f == KEEPALIVE and v.get("final") and o.ok and not _err(r):
            res.dying += 1
    res.sessions = len(opened)

    # ---- grants: (session, token) -> first observation's completion, since_ms
    grants: dict[tuple[int, int], dict] = {}
    session_of: dict[int, tuple[int, Op]] = {}
    wait_start: dict[object, float] = {}
    for o in ops:
        if o.f in (ACQUIRE, STATUS) and isinstance(o.value, dict) and "wait" in o.value:
            w = o.value["wait"]
            wait_start[w] = min(wait_start.get(w, o.invoke), o.invoke)

    def saw_grant(s, t, o, since=None, wait=None):
        if s is None or t is None or o.complete is None:
            return
        prev = session_of.get(t)
        if prev is not None and prev[0] != s:
            violation(f"token {t} granted to two sessions, {prev[0]} and {s}: a resource "
                      f"would accept both", prev[1], o)
        else:
            session_of.setdefault(t, (s, o))
        g = grants.setdefault((s, t), {"seen": o.complete, "op": o, "since": None, "wait": None})
        if o.complete < g["seen"]:
            g["seen"], g["op"] = o.complete, o
        if since is not None:
            if g["since"] is not None and g["since"][0] != since:
                violation(f"grant of token {t} to session {s} shown with since_ms {g['since'][0]} "
                          f"and {since}", g["since"][1], o)
            elif g["since"] is None:
                g["since"] = (since, o)
        if wait is not None and g["wait"] is None:
            g["wait"] = wait

    snaps = []
    for o in ops:
        r = o.result
        if o.f == ACQUIRE and o.ok and isinstance(r, dict) and r.get("granted"):
            saw_grant(o.value.get("session"), r.get("token"), o, wait=o.value.get("wait"))
        elif o.f == STATUS and o.ok and isinstance(r, dict) and r.get("held"):
            saw_grant(o.value.get("session"), r.get("token"), o, wait=o.value.get("wait"))
        elif o.f in (SHOW, LIST) and o.ok and o.complete is not None:
            lv = _lock_view(o, lock)
            if lv is None:
                continue
            view, sessions, now = lv
            snaps.append((o, view, sessions, now))
            holders = view.get("holders", [])
            waiters = [w.get("session") for w in view.get("waiters", [])]
            for h in holders:
                saw_grant(h.get("session"), h.get("token"), o, since=h.get("since_ms"))
            if len(holders) > 1:
                violation(f"snapshot at {at(o)}: {len(holders)} holders of the exclusive lock "
                          f"{[(h.get('session'), h.get('token')) for h in holders]}", o)
            for h in holders:
                if h.get("mode") != "exclusive":
                    violation(f"snapshot at {at(o)}: a {h.get('mode')} holder {h}", o)
                if view.get("last_token") is not None and h.get("token") != view["last_token"]:
                    violation(f"snapshot at {at(o)}: holder token {h.get('token')} is not the "
                              f"lock's last_token {view['last_token']}", o)
                if now is not None and h.get("since_ms", 0) > now:
                    violation(f"snapshot at {at(o)}: holder since_ms {h.get('since_ms')} is after "
                              f"the log's now_ms {now}", o)
            if len(set(waiters)) != len(waiters):
                violation(f"snapshot at {at(o)}: a session queued twice: {waiters}", o)
            hs = {h.get("session") for h in holders}
            if hs & set(waiters):
                violation(f"snapshot at {at(o)}: session(s) {sorted(hs & set(waiters))} both hold "
                          f"and wait", o)
            if sessions is not None:
                gone = (hs | set(waiters)) - sessions
                if gone:
                    violation(f"snapshot at {at(o)}: session(s) {sorted(gone)} hold or wait but "
                              f"are not live sessions", o)
    res.snapshots = len(snaps)
    res.grants = len(grants)

    # ---- snapshots in real-time order: clock, last_token, holders never go back
    by_end = sorted(snaps, key=lambda x: x[0].complete)
    ends = [x[0].complete for x in by_end]
    run = []  # prefix maxima: (now, now_op), (last_token, op), (holder token, op)
    cur = [(-1, None), (-1, None), (-1, None)]
    for o, view, _, now in by_end:
        vals = [now, view.get("last_token"), max((h.get("token", -1) for h in view.get("holders", [])),
                                                 default=None)]
        for i, x in enumerate(vals):
            if x is not None and x > cur[i][0]:
                cur[i] = (x, o)
        run.append(list(cur))
    for o, view, _, now in snaps:
        j = bisect.bisect_left(ends, o.invoke)
        if j == 0:
            continue
        (pn, pno), (pl, plo), (ph, pho) = run[j - 1]
        if now is not None and now < pn:
            violation(f"snapshot at {at(o)}: the log's clock went back ({now} < {pn} in an "
                      f"earlier snapshot)", pno, o)
        lt = view.get("last_token")
        if lt is not None and lt < pl:
            violation(f"snapshot at {at(o)}: last_token went back ({lt} < {pl})", plo, o)
        for h in view.get("holders", []):
            t = h.get("token", -1)
            if t < max(pl, ph):
                violation(f"snapshot at {at(o)}: holder token {t} (session {h.get('session')}) after "
                          f"an earlier snapshot saw token {max(pl, ph)}: an older grant came back",
                          plo if pl >= ph else pho, o)
    # A session missing from a list never comes back.
    lists = [x for x in snaps if x[2] is not None]
    gone_at: dict[int, tuple[float, Op, int]] = {}  # session -> first list without it (by end)
    opens = sorted((op_open.complete, s) for s, op_open in opened.items()
                   if op_open.complete is not None)
    k, live = 0, set()  # sessions opened before the snapshot began and not yet seen gone
    for o, view, sessions, now in sorted(lists, key=lambda x: x[0].invoke):
        while k < len(opens) and opens[k][0] < o.invoke:
            live.add(opens[k][1])
            k += 1
        for s in live - sessions:
            if s not in gone_at or o.complete < gone_at[s][0]:
                gone_at[s] = (o.complete, o, now)
        live &= sessions
    for o, view, sessions, now in lists:
        for s in sessions:
            g = gone_at.get(s)
            if g is not None and g[0] < o.invoke:
                violation(f"session {s} is gone from the list at {at(g[1])} and back at {at(o)}",
                          g[1], o)
    res.expiries = len(set(gone_at) | expired_seen)

    # ---- no early expiry
    for s, (end, o, now) in gone_at.items():
        if s in e_max and now is not None and e_max[s][0] >= now:
            violation(f"session {s} expired early (log time): gone from the list at now_ms {now}, "
                      f"but a keepalive said it expires at {e_max[s][0]} (>= now)", e_max[s][1], o)
        if s in last_cmd:
            ttl_s = ttl_of.get(s, ttl)
            if ttl_s is not None and wall_ms(end) < wall_ms(last_cmd[s]) + ttl_s - slack:
                violation(f"session {s} expired early (harness clock): gone from the list that "
                          f"ended {wall_ms(end) - wall_ms(last_cmd[s]):.0f} ms after its last "
                          f"successful command was sent (TTL {ttl_s} ms, slack {slack} ms)", o)

    # ---- tokens never go backwards (client-observed and snapshot grants)
    obs = sorted(((g["seen"], t, g["op"]) for (s, t), g in grants.items()), key=lambda x: x[0])
    seen_t = [x[0] for x in obs]
    pmax, best = [], (-1, None)
    for _, t, o in obs:
        if t > best[0]:
            best = (t, o)
        pmax.append(best)
    for (s, t), g in grants.items():
        w = g["wait"]
        if w is None or w not in wait_start:
            continue
        j = bisect.bisect_left(seen_t, wait_start[w])
        if j and pmax[j - 1][0] >= t:
            violation(f"token went backwards: session {s} began waiting at "
                      f"{wait_start[w] - t0:+.3f}s, after token {pmax[j - 1][0]} was granted, and "
                      f"got token {t}", pmax[j - 1][1], g["op"])

    # ---- FIFO: queued sessions are granted in queue order
    by_session: dict[int, list[int]] = {}
    for (s, t) in grants:
        by_session.setdefault(s, []).append(t)
    for v in by_session.values():
        v.sort()
    for o, view, _, now in snaps:
        lt = view.get("last_token")
        if lt is None:
            lt = max((h.get("token", 0) for h in view.get("holders", [])), default=0)
        nxt = []
        for w in view.get("waiters", []):
            ts = by_session.get(w.get("session"), [])
            k = bisect.bisect_right(ts, lt)
            nxt.append((w.get("session"), ts[k] if k < len(ts) else None))
        granted = [(s, t) for s, t in nxt if t is not None]
        for (s1, t1), (s2, t2) in zip(granted, granted[1:]):
            if t1 >= t2:
                violation(f"FIFO: snapshot at {at(o)} queued session {s1} before {s2}, but {s2} "
                          f"was granted first (token {t2} <= {t1})", o, grants[(s2, t2)]["op"],
                          grants[(s1, t1)]["op"])

    # ---- a wait never vanishes: a live session that was queued (and never
    # cancels) is queued or holds the lock until its session ends
    queued_at: dict[object, tuple[float, Op]] = {}
    for o in ops:
        if o.f == ACQUIRE and o.ok and isinstance(o.result, dict) and o.result.get("waiting") \
                and isinstance(o.value, dict) and o.complete is not None:
            w = o.value.get("wait")
            if w not in queued_at or o.complete < queued_at[w][0]:
                queued_at[w] = (o.complete, o)
    for o in ops:
        r = o.result
        if o.f == STATUS and o.ok and isinstance(r, dict) and "error" not in r \
                and not r.get("held") and not r.get("waiting"):
            q = queued_at.get(o.value.get("wait"))
            if q is not None and q[0] < o.invoke:
                violation(f"session {o.value.get('session')} was queued (at {at(q[1])}) and never "
                          f"cancelled, but at {at(o)} it neither waits nor holds the lock, its "
                          f"session alive", q[1], o)

    # ---- the lock-delay after a holder that never released
    ordered = sorted(grants.items(), key=lambda x: x[0][1])
    final_kas = {o.value.get("session"): o for o in ops
                 if o.f == KEEPALIVE and o.value.get("final") and o.ok and not _err(o.result)}
    for i, ((s, t), g) in enumerate(ordered):
        if (s, t) in released:
            continue
        later = next((((s2, t2), g2) for (s2, t2), g2 in ordered[i + 1:] if g2["since"] is not None),
                     None)
        if later is None:
            continue
        (s2, t2), g2 = later
        since, since_op = g2["since"]
        final_ka = final_kas.get(s)
        if s in e_max:
            e = e_max[s][0]
            if since <= e + delay:
                violation(f"lock-delay: session {s} (token {t}) never released; its session was "
                          f"alive until at least {e} (log ms), yet token {t2} was granted to "
                          f"session {s2} at {since}, {since - e} ms later (it must wait for the "
                          f"expiry and then the lock-delay, {delay} ms)", e_max[s][1], since_op)
            elif final_ka is not None and e_max[s][1] is final_ka:
                res.dying_released.append(since - e - delay)
        if s in last_cmd and ttl_of.get(s, ttl) is not None:
            need = wall_ms(last_cmd[s]) + ttl_of.get(s, ttl) + delay - slack
            if since < need:
                violation(f"lock-delay (harness clock): session {s} (token {t}) never released; "
                          f"token {t2} was granted at {since}, {need + slack - since:.0f} ms before "
                          f"its last command's send time + TTL + lock-delay (slack {slack} ms)",
                          since_op)

    # ---- the fenced register
    _check_fence(ops, final, res, violation, at)

    if res.violations:
        res.outcome = VIOLATION
    res.bad_ops = sorted(bad, key=lambda o: (o.invoke, o.client))
    res.explanation = explain(f"{res.outcome}: {res.summary()}.", "LOCK", res.violations,
                              res.bad_ops, t0, res.outcome == VIOLATION)
    return res


def _token_of(val):
    try:
        return int(str(val).split("/", 1)[0])
    except ValueError:
        return None


def _check_fence(ops, final, res, violation, at):
    writes = [o for o in ops if o.f == FENCE and isinstance(o.value, dict) and "val" in o.value]
    res.fence_accepted = sum(1 for o in writes if o.ok is True)
    res.fence_refused = sum(1 for o in writes if o.ok is False and o.result == "stale")
    tried = {}
    for o in writes:
        if o.ok is not False:  # accepted or unknown: may be in the register
            tried[o.value["val"]] = o
    acked = [o for o in writes if o.ok is True]
    by_prev: dict[object, list[Op]] = {}
    for o in acked:
        by_prev.setdefault(o.value.get("prev"), []).append(o)
    for prev, os_ in by_prev.items():
        if len(os_) > 1:
            violation(f"fence: {len(os_)} compare-and-sets from {prev!r} all accepted", *os_)
    # The chain: back from the final value (or from the acknowledged write nobody built on).
    end = final.get("fence", "missing") if final else "missing"
    if end == "missing":
        heads = [o for o in acked if o.value["val"] not in by_prev]
        if len(heads) > 1:
            violation(f"fence: the accepted writes fork ({len(heads)} ends)", *heads)
            return
        end = heads[0].value["val"] if heads else None
    chain = []
    v = end
    seen = set()
    while v is not None:
        o = tried.get(v)
        if o is None or v in seen:
            violation(f"fence: the register holds {v!r}, which no accepted or pending write wrote")
            return
        seen.add(v)
        chain.append(o)
        v = o.value.get("prev")
    chain.reverse()
    res.fence_chain = len(chain)
    for o in acked:
        if o.value["val"] not in seen:
            violation(f"fence: the accepted write {o.value['val']!r} at {at(o)} is not in the "
                      f"register's chain (lost)", o)
    holder: dict[int, int] = {}
    for a, b in zip(chain, chain[1:]):
        ta, tb = a.value["token"], b.value["token"]
        if tb < ta:
            violation(f"fence: the resource accepted token {tb} (session {b.value['session']}) after "
                      f"token {ta} (session {a.value['session']}): out of token order", a, b)
    for o in chain:
        t, s = o.value["token"], o.value["session"]
        if _token_of(o.value["val"]) != t:
            violation(f"fence: write {o.value['val']!r} does not carry its token {t}", o)
        if holder.setdefault(t, s) != s:
            violation(f"fence: token {t} wrote for two sessions ({holder[t]} and {s}): two "
                      f"holders the resource both accepted", o)


def main(argv=None) -> int:
    """python3 -m checker.lockcheck history.jsonl [final.json]: check a saved run again."""
    import json
    import os
    import sys

    from .history import load
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python3 -m checker.lockcheck history.jsonl [final.json]", file=sys.stderr)
        return 2
    ops = load(args[0])
    path = args[1] if len(args) > 1 else os.path.join(os.path.dirname(args[0]), "final.json")
    final = {}
    if os.path.exists(path):
        with open(path) as f:
            final = json.load(f)
    p = final.setdefault("params", {})
    p["wall_offset"] = p.get("wall_offset", 0.0) + p.get("t0", 0.0)  # saved times are relative
    res = check(ops, final)
    print(res.explanation)
    return 0 if res.outcome == OK else 1


if __name__ == "__main__":
    raise SystemExit(main())
