"""The lock checker alone (no cluster): a correct history passes (with unknown
outcomes, a dying client and a zombie write refused by the fence), and each kind
of planted bug is flagged: two holders at once, one token for two sessions, a
token going backwards, an old grant coming back, the fenced register accepting
out of token order or one token from two holders, a lost fenced write, FIFO
broken, a dying client's lock handed on before TTL + lock-delay, a session
expired early or back from the dead, the log's clock going back."""
import copy

from checker import lockcheck
from checker.history import Op, dumps, loads

TTL, DELAY, SLACK, OFF = 2000, 1000, 200, 1000.0
LOCK = "chaos"


def L(t):
    """The log's time (ms) at harness time t: the nodes' clock is the harness's."""
    return int(round((t + OFF) * 1000))


def op(client, f, t, value=None, result=None, ok=True, dur=0.01):
    return Op(client=client, f=f, key=LOCK, value=value, ok=ok, invoke=t,
              complete=(t + dur) if ok is not None else None, result=result)


def show(holders, waiters, last, now, until=0):
    return {"lock": LOCK, "holders": [{"session": s, "token": t, "mode": "exclusive", "since_ms": since}
                                      for s, t, since in holders],
            "waiters": [{"session": s, "mode": "exclusive"} for s in waiters],
            "unavailable_until_ms": until, "last_token": last, "now_ms": now}


def listing(holders, waiters, last, sessions, now, until=0, listed=True):
    locks = [show(holders, waiters, last, now, until)] if listed else []
    return {"locks": locks, "sessions": [{"session": s, "ttl_ms": TTL, "expires_ms": 0} for s in sessions],
            "now_ms": now}


def fence(client, t, session, token, val, prev, ok=True, result=None):
    return op(client, "fence", t, {"session": session, "token": token, "val": val, "prev": prev},
              result, ok)


def ka(client, t, session, final=False, ok=True):
    return op(client, "lock_keepalive", t, {"session": session, "final": final},
              {"session": session, "expires_ms": L(t) + TTL} if ok else None, ok)


def correct_run():
    """Three clients: 1 holds and releases; 2 is granted next (as the head of the
    queue), writes, then dies (its last keepalive at 0.8 s) and keeps writing as a
    zombie; 3 gets the lock after 2's TTL + lock-delay and the fence refuses the
    zombie's next write."""
    ops = [
        op(1, "lock_open", 0.0, {"ttl_ms": TTL}, {"session": 10, "expires_ms": L(0) + TTL}),
        op(2, "lock_open", 0.0, {"ttl_ms": TTL}, {"session": 11, "expires_ms": L(0) + TTL}),
        op(3, "lock_open", 0.0, {"ttl_ms": TTL}, {"session": 12, "expires_ms": L(0) + TTL}),
        op(1, "lock_acquire", 0.1, {"session": 10, "wait": "1.1"},
           {"granted": True, "token": 20, "lock": LOCK, "mode": "exclusive"}),
        op(2, "lock_acquire", 0.12, {"session": 11, "wait": "2.1"},
           {"granted": False, "waiting": True, "position": 1}),
        op(3, "lock_acquire", 0.13, {"session": 12, "wait": "3.1"}, None, ok=None),  # unknown
        op(3, "lock_acquire", 0.14, {"session": 12, "wait": "3.1"},
           {"granted": False, "waiting": True, "position": 2}),
        op(-1, "lock_list", 0.15, None, listing([(10, 20, L(0.1))], [11, 12], 20, [10, 11, 12], L(0.15))),
        fence(1, 0.2, 10, 20, "20/1/1", None),
        fence(1, 0.3, 10, 20, "20/1/x", "20/1/1", ok=None),  # unknown, never landed
        ka(1, 0.5, 10), ka(2, 0.5, 11), ka(3, 0.5, 12),
        op(1, "lock_release", 0.6, {"session": 10, "token": 20}, {"released": True}),
        op(2, "lock_status", 0.65, {"session": 11, "wait": "2.1"}, {"held": True, "token": 25}),
        fence(2, 0.7, 11, 25, "25/2/1", "20/1/1"),
        op(2, "lock_show", 0.75, {"session": 11, "token": 25}, show([(11, 25, L(0.6))], [12], 25, L(0.75))),
        ka(2, 0.8, 11, final=True),     # client 2 goes silent here
        fence(2, 1.0, 11, 25, "25/2/2", "25/2/1"),  # a zombie write, still accepted
        ka(1, 1.0, 10, ok=None),
    ]
    for t in (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0):
        ops.append(ka(3, t, 12))
    ops += [
        ka(1, 1.5, 10), ka(1, 2.5, 10), ka(1, 3.5, 10),
        op(3, "lock_status", 2.0, {"session": 12, "wait": "3.1"}, {"held": False, "waiting": True,
                                                                    "position": 1}),
        # 11 expired at log time L(2.9) > its expiry L(0.8) + TTL; the lock is
        # unavailable until L(3.9).
        op(-1, "lock_list", 3.0, None, listing([], [12], 25, [10, 12], L(3.0), until=L(3.9))),
        op(3, "lock_status", 4.05, {"session": 12, "wait": "3.1"}, {"held": True, "token": 40}),
        fence(3, 4.1, 12, 40, "40/3/1", "25/2/2"),
        fence(2, 4.2, 11, 25, "25/2/3", "40/3/1", ok=False, result="stale"),  # fenced off
        op(-1, "lock_list", 4.3, None, listing([(12, 40, L(4.0))], [], 40, [10, 12], L(4.3))),
        op(3, "lock_release", 4.5, {"session": 12, "token": 40}, {"released": True}),
        op(-1, "lock_list", 4.6, None, listing([], [], None, [10, 12], L(4.6), listed=False)),
    ]
    final = {"params": {"ttl_ms": TTL, "lock_delay_ms": DELAY, "slack_ms": SLACK, "wall_offset": OFF},
             "fence": "40/3/1"}
    return ops, final


def check(ops, final):
    return lockcheck.check(ops, final, lock=LOCK)


def find(ops, f, t):
    return next(o for o in ops if o.f == f and abs(o.invoke - t) < 1e-9)


def test_a_correct_history_passes():
    ops, final = correct_run()
    r = check(ops, final)
    assert r.outcome == "ok", r.explanation
    assert r.sessions == 3 and r.grants == 3 and r.releases == 2
    assert r.expiries == 1 and r.dying == 1 and r.dying_released == [200]
    assert r.fence_chain == 4 and r.fence_accepted == 4 and r.fence_refused == 1
    assert r.keepalive_failures == 1 and r.snapshots == 5
    assert check(loads(dumps(ops)), final).outcome == "ok"
    # Without the final read of the register the chain is rebuilt from its end.
    assert check(ops, {"params": final["params"]}).outcome == "ok"


def flagged(ops, final, *words):
    r = check(ops, final)
    assert r.outcome == "violation", r.explanation
    for w in words:
        assert w in r.explanation, r.explanation
    return r


def test_two_holders_at_once_are_flagged():
    ops, final = correct_run()
    s = find(ops, "lock_list", 4.3)
    s.result["locks"][0]["holders"].append({"session": 10, "token": 40, "mode": "exclusive",
                                            "since_ms": L(4.0)})
    flagged(ops, final, "2 holders of the exclusive lock", "token 40 granted to two sessions")


def test_one_token_for_two_sessions_is_flagged():
    ops, final = correct_run()
    find(ops, "lock_status", 4.05).result["token"] = 25
    flagged(ops, final, "token 25 granted to two sessions, 11 and 12")


def test_a_token_going_backwards_is_flagged():
    ops, final = correct_run()
    # Client 1 starts a new wait after token 25 was seen, and is granted 23.
    ops.append(op(1, "lock_acquire", 4.7, {"session": 10, "wait": "1.2"},
                  {"granted": True, "token": 23, "lock": LOCK, "mode": "exclusive"}))
    flagged(ops, final, "token went backwards: session 10", "after token 40 was granted")


def test_an_old_grant_coming_back_is_flagged():
    ops, final = correct_run()
    ops.append(op(-1, "lock_list", 5.0, None, listing([(10, 20, L(0.1))], [], 20, [10, 12], L(5.0))))
    flagged(ops, final, "holder token 20 (session 10) after an earlier snapshot saw token 40",
            "last_token went back")


def test_fenced_writes_out_of_token_order_are_flagged():
    ops, final = correct_run()
    # Client 1 (token 20) still writes after client 2 (token 25) did, and is accepted.
    ops.append(fence(1, 0.9, 10, 20, "20/1/2", "25/2/1"))
    find(ops, "fence", 1.0).value["prev"] = "20/1/2"
    flagged(ops, final, "accepted token 20 (session 10) after token 25 (session 11)")


def test_one_token_from_two_holders_at_the_resource_is_flagged():
    ops, final = correct_run()
    w = find(ops, "fence", 4.1)
    w.value.update(token=25, val="25/3/1")
    final["fence"] = "25/3/1"
    flagged(ops, final, "token 25 wrote for two sessions (11 and 12)")


def test_a_lost_or_invented_fenced_write_is_flagged():
    ops, final = correct_run()
    ops.append(fence(3, 4.2, 12, 40, "40/3/2", "40/3/1"))  # acknowledged, but final says 40/3/1
    flagged(ops, final, "'40/3/2' at +4.200s is not in the register's chain (lost)")
    ops, final = correct_run()
    final["fence"] = "99/9/9"
    flagged(ops, final, "holds '99/9/9', which no accepted or pending write wrote")
    ops, final = correct_run()
    ops.append(fence(3, 4.2, 12, 40, "40/3/2", "25/2/2"))  # a second CAS from the same value
    flagged(ops, final, "2 compare-and-sets from '25/2/2' all accepted")


def test_fifo_broken_is_flagged():
    ops, final = correct_run()
    find(ops, "lock_list", 0.15).result["locks"][0]["waiters"].reverse()  # 12 queued before 11
    flagged(ops, final, "FIFO: snapshot at +0.150s queued session 12 before 11")


def test_a_dying_clients_lock_handed_on_too_early_is_flagged():
    ops, final = correct_run()
    # 12 granted at L(3.5): 11's last keepalive said it lives until L(0.8) + TTL,
    # so not before L(2.8) + lock-delay = L(3.8).
    find(ops, "lock_list", 4.3).result["locks"][0]["holders"][0]["since_ms"] = L(3.5)
    flagged(ops, final, "lock-delay: session 11 (token 25) never released",
            "lock-delay (harness clock): session 11")


def test_a_session_expired_early_or_back_from_the_dead_is_flagged():
    ops, final = correct_run()
    ops.append(op(-1, "lock_list", 2.0, None, listing([], [12], 25, [10, 12], L(2.0))))
    flagged(ops, final, "session 11 expired early (log time)", "expired early (harness clock)")
    ops, final = correct_run()
    find(ops, "lock_list", 4.3).result["sessions"].append({"session": 11, "ttl_ms": TTL,
                                                           "expires_ms": 0})
    flagged(ops, final, "session 11 is gone from the list at +3.000s and back at +4.300s")


def test_the_logs_clock_going_back_is_flagged():
    ops, final = correct_run()
    find(ops, "lock_list", 4.6).result["now_ms"] = L(4.0)
    flagged(ops, final, "the log's clock went back")


def test_a_waiter_that_is_not_a_session_is_flagged():
    ops, final = correct_run()
    find(ops, "lock_list", 3.0).result["locks"][0]["waiters"].append({"session": 11,
                                                                       "mode": "exclusive"})
    flagged(ops, final, "hold or wait but are not live sessions")


def test_unknown_outcomes_are_allowed():
    ops, final = correct_run()
    # The unknown write landed after all (the register went through it).
    w = find(ops, "fence", 0.7)
    w.value["prev"] = "20/1/x"
    r = check(ops, final)
    assert r.outcome == "ok", r.explanation
    assert r.fence_chain == 5
    ops2 = copy.deepcopy(ops)
    for o in ops2:  # every fenced write unknown: still a chain, nothing to flag
        if o.f == "fence" and o.ok:
            o.ok, o.complete = None, None
    assert check(ops2, final).outcome == "ok"


def test_a_wait_that_vanishes_is_flagged():
    ops, final = correct_run()
    find(ops, "lock_status", 2.0).result = {"held": False, "waiting": False}
    flagged(ops, final, "session 12 was queued (at +0.140s) and never cancelled, but at +2.000s "
                        "it neither waits nor holds")
