"""Tests of the chaos checkers: they accept what is linearizable and, above all,
reject what is not (a checker that cannot fail proves nothing).

Run: cd tests/chaos && /usr/bin/python3 -m pytest -q checker/
"""
import itertools
import random
import time

import pytest

from checker import history, linearizability, setcheck
from checker.history import Op

# --- building histories by hand ---------------------------------------------------


def W(c, key, v, t0, t1, ok=True):
    return Op(c, "write", key, value=v, ok=ok, invoke=t0, complete=None if ok is None else t1)


def R(c, key, v, t0, t1, ok=True):
    return Op(c, "read", key, value=v, ok=ok, invoke=t0, complete=None if ok is None else t1)


def CAS(c, key, exp, new, t0, t1, ok=True, result=None):
    return Op(c, "cas", key, value=new, expected=exp, ok=ok, invoke=t0,
              complete=None if ok is None else t1, result=result)


def lin(ops, **kw):
    return linearizability.check(ops, timeout_s=kw.pop("timeout_s", 5.0), **kw)


def assert_violation(ops, key="x", max_sub=None):
    r = lin(ops)
    assert r.outcome == "violation", r.explanation
    assert r.key == key
    assert r.sub_history, r.explanation
    # The sub-history is a sub-history, and it fails on its own.
    assert all(any(s is o for o in ops) for s in r.sub_history)
    assert lin(r.sub_history).outcome == "violation"
    if max_sub is not None:
        assert len(r.sub_history) <= max_sub, r.explanation
    assert repr(key) in r.explanation
    return r


def assert_ok(ops):
    r = lin(ops)
    assert r.outcome == "ok", r.explanation
    return r


# --- known non-linearizable histories are rejected ----------------------------------


def test_stale_read_is_rejected():
    # write 1 completes, then a read invoked later returns the old value 0.
    r = assert_violation([W(1, "x", 0, 0, 1), W(1, "x", 1, 2, 3), R(2, "x", 0, 4, 5)], max_sub=3)
    assert len(r.sub_history) == 3
    assert "it would overwrite 0, which client 2 read(x) -> 0" in r.explanation


def test_stale_read_of_initial_absent_value_is_rejected():
    r = assert_violation([W(1, "x", 1, 0, 1), R(2, "x", None, 2, 3)], max_sub=2)
    assert len(r.sub_history) == 2


def test_lost_write_is_rejected():
    # write 2 acknowledged; later reads never see it and see the older value 1.
    assert_violation([W(1, "x", 1, 0, 1), W(1, "x", 2, 2, 3),
                      R(2, "x", 1, 4, 5), R(3, "x", 1, 6, 7), R(2, "x", 1, 8, 9)], max_sub=3)


def test_read_of_value_never_written_is_rejected():
    r = assert_violation([W(1, "x", 1, 0, 1), R(2, "x", 7, 2, 3), R(2, "x", 1, 4, 5)], max_sub=1)
    assert r.sub_history[0].value == 7
    assert "no op writes 7" in r.explanation
    assert "nothing in the key's history does" in r.explanation


def test_read_from_the_future_is_rejected():
    # 5 is written, but only after the read returned: the search (not the
    # never-written shortcut) must reject it.
    assert_violation([R(2, "x", 5, 0, 1), W(1, "x", 5, 2, 3)], max_sub=2)


def test_cas_succeeding_against_a_value_that_was_not_current_is_rejected():
    assert_violation([W(1, "x", 1, 0, 1), W(1, "x", 2, 2, 3), CAS(2, "x", 1, 3, 4, 5)], max_sub=3)


def test_cas_on_absent_key_after_a_write_is_rejected():
    assert_violation([W(1, "x", 1, 0, 1), CAS(2, "x", None, 2, 2, 3)], max_sub=2)


def test_failed_cas_when_the_value_matched_is_rejected():
    # ok=False cas = the comparison failed: it saw a value != 1, but only 1 was there.
    assert_violation([W(1, "x", 1, 0, 1), CAS(2, "x", 1, 2, 2, 3, ok=False)], max_sub=2)


def test_refused_cas_is_ignored():
    assert_ok([W(1, "x", 1, 0, 1), CAS(2, "x", 1, 2, 2, 3, ok=False, result="refused"),
               R(1, "x", 1, 4, 5)])


def test_concurrent_writes_observed_in_inconsistent_orders_are_rejected():
    # Writes of 1 and 2 overlap. Client 3 sees 1 then 2; client 4 sees 2 then 1.
    # Each write takes effect once, so at most one of the two orders can be real.
    r = assert_violation([W(1, "x", 1, 0, 10), W(2, "x", 2, 0, 10),
                          R(3, "x", 1, 1, 2), R(3, "x", 2, 3, 4),
                          R(4, "x", 2, 1, 2), R(4, "x", 1, 3, 4)])
    assert len(r.sub_history) <= 6


def test_value_settles_after_concurrent_writes():
    # After both writes complete, two reads must not flip between the values.
    assert_violation([W(1, "x", 1, 0, 10), W(2, "x", 2, 0, 10),
                      R(3, "x", 1, 11, 12), R(3, "x", 2, 13, 14), R(3, "x", 1, 15, 16)])


def test_unknown_write_read_before_it_was_invoked_is_rejected():
    r = assert_violation([R(2, "x", 9, 0, 1), W(1, "x", 9, 2, None, ok=None)], max_sub=2)
    assert "every op that could write it began later" in r.explanation


def test_unknown_write_takes_effect_at_most_once():
    assert_violation([W(1, "x", 1, 0, None, ok=None), W(2, "x", 2, 1, 2),
                      R(3, "x", 1, 3, 4), R(3, "x", 2, 5, 6), R(3, "x", 1, 7, 8)])


def test_violation_on_one_key_among_many_is_found():
    ops = []
    for k in range(20):
        ops += [W(1, f"k{k}", k, 10 * k, 10 * k + 1), R(2, f"k{k}", k, 10 * k + 2, 10 * k + 3)]
    ops.append(R(3, "k7", None, 500, 501))
    assert_violation(ops, key="k7", max_sub=2)


# --- linearizable histories are accepted --------------------------------------------


def test_sequential_history_is_accepted():
    assert_ok([R(1, "x", None, 0, 1), W(1, "x", 1, 2, 3), R(2, "x", 1, 4, 5),
               CAS(2, "x", 1, 2, 6, 7), R(1, "x", 2, 8, 9), CAS(1, "x", 1, 3, 10, 11, ok=False),
               R(2, "x", 2, 12, 13)])


def test_read_concurrent_with_write_may_see_old_or_new():
    for seen in (None, 1):
        assert_ok([W(1, "x", 1, 0, 10), R(2, "x", seen, 2, 3)])


def test_concurrent_overlapping_ops_in_a_non_invocation_order():
    # Invoked in order 1, 2, 3 but linearized 3, 2, 1: all overlap.
    assert_ok([W(1, "x", 1, 0, 10), W(2, "x", 2, 1, 10), W(3, "x", 3, 2, 10),
               R(4, "x", 3, 3, 4), R(4, "x", 2, 5, 6), R(4, "x", 1, 7, 8), R(4, "x", 1, 11, 12)])


def test_touching_ops_count_as_concurrent():
    # The write returns at exactly the time the read is invoked: concurrent, so the
    # read may still see the old value.
    assert_ok([W(1, "x", 1, 0, 5), R(2, "x", None, 5, 6)])


def test_unknown_ops_that_happened_or_did_not():
    # Unknown write of 1 happened (seen much later); unknown write of 2 did not.
    assert_ok([W(1, "x", 1, 0, None, ok=None), W(2, "x", 2, 0.5, None, ok=None),
               R(3, "x", None, 1, 2), R(3, "x", 1, 100, 101), R(3, "x", 1, 102, 103)])
    # Unknown cas that happened, unknown read (no constraint), failed write dropped.
    assert_ok([W(1, "x", 1, 0, 1), CAS(2, "x", 1, 5, 2, None, ok=None),
               R(3, "x", None, 2, None, ok=None),
               W(4, "x", 99, 3, 4, ok=False), R(3, "x", 5, 10, 11)])


def test_unknown_write_may_take_effect_after_later_ops():
    # Unknown write of 1, invoked at 0, lands after the write of 2 completed.
    assert_ok([W(1, "x", 1, 0, None, ok=None), W(2, "x", 2, 1, 2), R(3, "x", 2, 3, 4),
               R(3, "x", 1, 5, 6)])


def test_unknown_write_saved_for_later_is_found():
    # The unknown write of 1 must be used late (after the read of 2), not early:
    # unknown write 2, read 2, unknown write 1, cas 1->1, failed cas, cas 1->2.
    # (Found by random search against a search that wrongly let a configuration
    # with more unknown ops used stand in for one with fewer.)
    assert_ok([CAS(0, "a", 1, 2, 11, 12), CAS(1, "a", None, 1, 7, 12, ok=False),
               R(2, "a", 2, 5, 10), CAS(3, "a", 1, 1, 4, 9), CAS(4, "a", 3, 2, 7, None, ok=None),
               W(5, "a", 2, 5, None, ok=None), W(6, "a", 1, 4, None, ok=None)])


def test_many_keys_are_checked_independently():
    ops = []
    t = 0.0
    for k in range(50):
        for v in range(5):
            ops.append(W(k % 7, f"k{k}", v, t, t + 3))
            ops.append(R(7 + k % 3, f"k{k}", v, t + 3.5, t + 4))
            t += 5
    r = assert_ok(ops)
    assert r.keys == 50 and r.ops == 500


def test_rejects_non_register_ops():
    with pytest.raises(ValueError):
        lin([Op(1, "add", "", value=1, ok=True, invoke=0, complete=1)])


# --- generated histories: a real sequential execution seen through overlapping clients


def generate(rng, n_ops, keys=3, clients=5, p_unknown=0.05, values=None, p_refused=0.02):
    """A history of `n_ops` register ops from a real execution: every op gets a
    linearization point inside [invoke, complete], ops are applied to a dict in that
    order, and results are what that execution returned. Unknown ops happened with
    probability 1/2. Values are unique unless `values` (a small domain) is given."""
    counter = itertools.count(1)
    busy = [0.0] * clients
    client_id = list(range(clients))
    next_id = clients
    planned = []
    recent = {f"k{i}": [None] for i in range(keys)}
    for _ in range(n_ops):
        s = min(range(clients), key=lambda i: busy[i])
        key = f"k{rng.randrange(keys)}"
        inv = busy[s] + rng.expovariate(20.0)
        lp = inv + rng.uniform(0, 0.05) * rng.choice((0.1, 1, 4))
        ret = lp + rng.uniform(0, 0.05) * rng.choice((0.1, 1, 4))
        busy[s] = ret
        x = rng.random()
        newv = rng.choice(values) if values else next(counter)
        if x < 0.4:
            op = Op(client_id[s], "read", key, invoke=inv, complete=ret)
        elif x < 0.75:
            op = Op(client_id[s], "write", key, value=newv, invoke=inv, complete=ret)
            recent[key].append(newv)
        else:
            exp = rng.choice(recent[key][-3:]) if rng.random() < 0.8 else -1
            op = Op(client_id[s], "cas", key, value=newv, expected=exp, invoke=inv, complete=ret)
            recent[key].append(newv)
        unknown = rng.random() < p_unknown
        refused = op.f == "cas" and not unknown and rng.random() < p_refused
        happens = not refused and (not unknown or rng.random() < 0.5)
        planned.append((lp, op, unknown, refused, happens))
        if unknown:  # the client is stuck; the harness carries on with a new client id
            client_id[s] = next_id
            next_id += 1
    state = {}
    for lp, op, unknown, refused, happens in sorted(planned, key=lambda p: p[0]):
        cur = state.get(op.key)
        if op.f == "read":
            op.value = cur
        elif op.f == "write":
            if happens:
                state[op.key] = op.value
        else:
            if refused:
                op.ok, op.result = False, "refused"
                continue
            applies = happens and cur == op.expected
            if applies:
                state[op.key] = op.value
            if not unknown:
                op.ok = applies
        if unknown:
            op.ok, op.complete = None, None
            if op.f == "read":
                op.value = None
        elif op.ok is None:
            op.ok = True
    return [p[1] for p in planned]


def corrupt_stale(rng, ops):
    """Turns one OK read into a read of a value that was overwritten before the
    read began (unique values: provably not linearizable). Returns the read."""
    by_key = {}
    for o in ops:
        by_key.setdefault(o.key, []).append(o)
    cands = []
    for key, kops in by_key.items():
        writers = [o for o in kops if o.ok is True and o.f in ("write", "cas")]
        writes = [o for o in kops if o.ok is True and o.f == "write"]
        for r in (o for o in kops if o.f == "read" and o.ok is True):
            for w2 in writers:
                if w2.complete < r.invoke:
                    olds = [w for w in writes if w.complete < w2.invoke and w.value != r.value]
                    if olds:
                        cands.append((r, rng.choice(olds)))
                        break
    if not cands:
        return None
    r, w = rng.choice(cands)
    r.value = w.value
    return r


@pytest.mark.parametrize("seed", range(40))
def test_generated_histories_pass_and_one_corrupted_read_fails(seed):
    rng = random.Random(seed)
    ops = generate(rng, rng.randrange(50, 400), keys=rng.randrange(1, 5),
                   clients=rng.randrange(2, 9))
    r = lin(ops)
    assert r.outcome == "ok", r.explanation
    bad = corrupt_stale(rng, ops)
    assert bad is not None
    r = lin(ops)
    assert r.outcome == "violation", "corrupted read not caught:\n" + history.format_history([bad])
    assert r.key == bad.key
    assert lin(r.sub_history).outcome == "violation"


@pytest.mark.parametrize("seed", range(10))
def test_generated_histories_with_repeated_values_pass(seed):
    rng = random.Random(1000 + seed)
    ops = generate(rng, 300, keys=2, clients=6, p_unknown=0.1, values=[1, 2, 3])
    assert_ok(ops)


def brute_force(ops, initial=None):
    """Linearizability by trying every order (tiny histories only), written apart
    from the checker, with the same model (see linearizability.py)."""
    by_key = {}
    for o in ops:
        by_key.setdefault(o.key, []).append(o)
    inf = float("inf")
    for kops in by_key.values():
        items = []  # (call, ret, required, fn(state) -> (ok, new state))
        for o in kops:
            if o.f == "read" and o.ok is True:
                items.append((o.invoke, o.complete, True, lambda s, v=o.value: (s == v, s)))
            elif o.f == "write" and o.ok is not False:
                items.append((o.invoke, o.complete if o.ok else inf, bool(o.ok),
                              lambda s, v=o.value: (True, v)))
            elif o.f == "cas" and o.ok is not False:
                items.append((o.invoke, o.complete if o.ok else inf, bool(o.ok),
                              lambda s, e=o.expected, v=o.value: (s == e, v)))
            elif o.f == "cas" and o.ok is False and o.result != "refused":
                items.append((o.invoke, o.complete, True, lambda s, e=o.expected: (s != e, s)))

        def rec(rest, state):
            req = [items[i] for i in rest if items[i][2]]
            if not req:
                return True
            min_ret = min(it[1] for it in req)
            for i in rest:
                call, _, _, fn = items[i]
                if call > min_ret:
                    continue
                ok, ns = fn(state)
                if ok and rec(rest - {i}, ns):
                    return True
            return False

        if not rec(frozenset(range(len(items))), initial):
            return False
    return True


def random_tiny_history(rng):
    """Up to 11 ops on mostly one key, with a random mix of unknown and failed ops,
    small or unique values, and coarse times (many ties)."""
    ops = []
    dom = list(range(1, rng.randrange(2, 8)))
    p_unknown = rng.random() * 0.6
    p_failed = rng.random() * 0.5
    span = rng.choice((5, 10, 30))
    fresh = itertools.count(100)
    for c in range(rng.randrange(1, 12)):
        t0 = rng.randrange(0, span)
        t1 = t0 + rng.randrange(0, 8)
        ok = None if rng.random() < p_unknown else (rng.random() >= p_failed)
        f = rng.choice(("read", "write", "cas", "cas", "write"))
        if f == "read":
            v = rng.choice([None] + dom)
        else:
            v = next(fresh) if rng.random() < 0.3 else rng.choice(dom)
        ops.append(Op(c, f, "b" if rng.random() < 0.2 else "a", value=v,
                      expected=rng.choice([None, -1] + dom), ok=ok, invoke=float(t0),
                      complete=None if ok is None else float(t1),
                      result=("refused" if f == "cas" and ok is False and rng.random() < 0.2
                              else None)))
    return ops


def test_agrees_with_brute_force_on_random_tiny_histories():
    # Every shortcut of the search (forced reads, unknown ops tried last with
    # subsumption, setters, merged values, pinned unknown writes) must keep the
    # verdict exact: compare with trying every order. And every witness must fail
    # on its own.
    rng = random.Random(7)
    verdicts = {True: 0, False: 0}
    for _ in range(5000):
        ops = random_tiny_history(rng)
        want = brute_force(ops)
        got = lin(ops)
        assert got.outcome == ("ok" if want else "violation"), \
            history.format_history(ops) + "\n" + got.explanation
        if not want:
            assert not brute_force(got.sub_history), got.explanation
        verdicts[want] += 1
    assert verdicts[True] > 1000 and verdicts[False] > 1000  # both sides exercised


def test_shrinking_moves_keep_linearizable_histories_linearizable():
    # The shrinker only drops reads / failed cas, makes writes unknown and cuts
    # the history at a time T, so that its small failing history proves the whole
    # history fails. Check those moves on linearizable histories: they must stay
    # linearizable.
    L = linearizability
    rng = random.Random(11)
    for _ in range(60):
        ops = generate(rng, rng.randrange(20, 150), keys=1, clients=rng.randrange(2, 7),
                       p_unknown=0.1, values=rng.choice((None, [1, 2, 3])))
        mops = L._model_ops(ops)
        assert L._linearizable(mops, None, time.monotonic() + 5)
        reduced = [L._reduce(m) if rng.random() < 0.4 else m for m in mops]
        reduced = [m for m in reduced if m is not None]
        assert L._linearizable(reduced, None, time.monotonic() + 5)
        t = rng.uniform(min(m.call for m in mops), max(m.call for m in mops))
        cut = [L._reduce(m) if m.ret > t else m for m in mops if m.call <= t]
        assert L._linearizable([m for m in cut if m is not None], None, time.monotonic() + 5)


def test_minimal_sub_history_of_a_stale_read_among_200_valid_ops():
    rng = random.Random(42)
    ops = generate(rng, 200, keys=1, clients=5, p_unknown=0.05)
    assert_ok(ops)
    t = max(o.complete or o.invoke for o in ops) + 1
    last_write = max((o for o in ops if o.f == "write" and o.ok), key=lambda o: o.complete)
    ops.append(W(50, "k0", "new", t, t + 0.01))
    stale = R(51, "k0", last_write.value, t + 0.02, t + 0.03)
    ops.append(stale)
    rng.shuffle(ops)
    r = assert_violation(ops, key="k0", max_sub=3)
    assert any(o is stale for o in r.sub_history)
    assert "None of the ops above can be left out" in r.explanation


def test_planted_violation_in_the_middle_of_a_long_history_is_small():
    rng = random.Random(3)
    ops = generate(rng, 1000, keys=1, clients=8, p_unknown=0.02)
    bad = corrupt_stale(rng, ops)
    r = assert_violation(ops, key="k0", max_sub=4)
    assert any(o is bad for o in r.sub_history)


# --- time limit -----------------------------------------------------------------------


def test_time_limit_returns_unknown_promptly_on_an_exponential_history():
    # 24 mutually concurrent writes, then a read of 1 followed by a read of 2: not
    # linearizable, but the search must try ~24 * 2^23 (set of writes, last write)
    # configurations to see it; the cache cannot help.
    n = 24
    ops = [W(i, "x", i + 1, 0.0, 10.0) for i in range(n)]
    ops += [R(n, "x", 1, 11, 12), R(n, "x", 2, 13, 14)]
    start = time.monotonic()
    r = linearizability.check(ops, timeout_s=0.5)
    elapsed = time.monotonic() - start
    assert r.outcome == "unknown", r.explanation
    assert r.unknown_keys == ["x"]
    assert elapsed < 1.5
    # Another key's violation is still reported when one key times out.
    r = linearizability.check(ops + [W(1, "y", 1, 0, 1), R(2, "y", None, 2, 3)], timeout_s=0.5)
    assert r.outcome == "violation" and r.key == "y"


# --- performance ------------------------------------------------------------------------


def test_5000_ops_10_keys_10_clients_check_in_seconds():
    rng = random.Random(5)
    ops = generate(rng, 5000, keys=10, clients=10, p_unknown=0.03)
    start = time.monotonic()
    r = linearizability.check(ops, timeout_s=30)
    elapsed = time.monotonic() - start
    assert r.outcome == "ok", r.explanation
    assert elapsed < 5, f"took {elapsed:.2f}s"
    bad = corrupt_stale(rng, ops)
    start = time.monotonic()
    r = linearizability.check(ops, timeout_s=30)
    elapsed = time.monotonic() - start
    assert r.outcome == "violation" and r.key == bad.key
    assert len(r.sub_history) <= 4 and any(o is bad for o in r.sub_history), r.explanation
    assert elapsed < 10, f"took {elapsed:.2f}s"


def test_many_unknown_ops_on_one_key_check_in_seconds():
    # A partition makes many ops time out: 20% unknown, one hot key, 8 clients.
    rng = random.Random(8)
    ops = generate(rng, 2000, keys=1, clients=8, p_unknown=0.2)
    start = time.monotonic()
    r = linearizability.check(ops, timeout_s=30)
    assert r.outcome == "ok", r.explanation
    bad = corrupt_stale(rng, ops)
    r = linearizability.check(ops, timeout_s=30)
    assert r.outcome == "violation" and any(o is bad for o in r.sub_history)
    assert time.monotonic() - start < 10


def test_highly_concurrent_single_key_checks_in_seconds():
    # Stretch every op around its midpoint: the history stays linearizable (each
    # linearization point stays inside its op) but each op now overlaps dozens of
    # others, as when an election stalls every client at once.
    rng = random.Random(9)
    ops = generate(rng, 1500, keys=1, clients=10, p_unknown=0.05)
    for o in ops:
        if o.complete is not None:
            mid, half = (o.invoke + o.complete) / 2, (o.complete - o.invoke) * 4
            o.invoke, o.complete = mid - half, mid + half
    start = time.monotonic()
    r = linearizability.check(ops, timeout_s=30)
    assert r.outcome == "ok", r.explanation
    bad = corrupt_stale(rng, ops)
    r = linearizability.check(ops, timeout_s=30)
    assert r.outcome == "violation" and any(o is bad for o in r.sub_history), r.explanation
    assert time.monotonic() - start < 10


# --- history format ---------------------------------------------------------------------


def test_dump_load_round_trip(tmp_path):
    ops = [W(1, "x", 1, 0.5, 1.25), W(2, "x", [1, "a"], 0.75, None, ok=None),
           CAS(3, "x", 1, 2, 2, 3, ok=False), CAS(3, "x", 1, 2, 4, 5, ok=False, result="refused"),
           R(1, "x", None, 4, 5), Op(4, "add", "", value="e1", ok=True, invoke=6, complete=7),
           Op(5, "read_set", "", ok=True, invoke=8, complete=9, result={"e1", "e2", 3})]
    path = tmp_path / "h.jsonl"
    history.dump(ops, path)
    back = history.load(path)
    assert len(path.read_text().splitlines()) == len(ops)
    assert back[:1] == ops[:1] and back[2:] == ops[2:]
    assert back[1].value == [1, "a"] and back[1].ok is None and back[1].complete is None
    assert isinstance(back[6].result, set)
    # A saved failing history fails again when replayed.
    bad = [W(1, "x", 1, 0, 1), R(2, "x", None, 2, 3)]
    history.dump(bad, path)
    assert lin(history.load(path)).outcome == "violation"
    assert linearizability.main([str(path), "--timeout", "2"]) == 1


def test_format_history_is_relative_and_one_line_per_op():
    text = history.format_history([R(2, "x", 1, 101.0, 101.5), W(1, "x", 1, 100.0, None, ok=None),
                                   CAS(3, "x", None, 4, 102, 103, ok=False)])
    lines = text.splitlines()
    assert len(lines) == 3
    assert "+0.0000" in lines[0] and "write(x, 1) ?" in lines[0]
    assert "+1.0000" in lines[1] and "read(x) -> 1" in lines[1]
    assert "cas(x, absent -> 4) fail" in lines[2]


# --- set checker ----------------------------------------------------------------------


def ADD(c, e, t, ok=True):
    return Op(c, "add", "", value=e, ok=ok, invoke=t, complete=None if ok is None else t + 0.5)


def READ_SET(c, elems, t=100, ok=True):
    return Op(c, "read_set", "", ok=ok, invoke=t, complete=None if ok is None else t + 1,
              result=set(elems) if ok else None)


def test_set_all_acknowledged_present_is_ok():
    adds = [ADD(1, i, i) for i in range(10)]
    r = setcheck.check(adds, [READ_SET(n, range(10)) for n in range(3)])
    assert r.outcome == "ok", r.explanation
    assert r.acknowledged == 10


def test_set_lost_add_is_reported_with_its_op():
    adds = [ADD(1, i, i) for i in range(10)]
    r = setcheck.check(adds, {"n0": READ_SET(0, range(10)), "n1": READ_SET(1, set(range(10)) - {4}),
                              "n2": set(range(10))})
    assert r.outcome == "violation"
    assert list(r.lost) == [4]
    op, nodes = r.lost[4]
    assert op is adds[4] and nodes == ["n1"]
    assert "LOST" in r.explanation and "add(4) ok" in r.explanation


def test_set_invented_element_is_a_violation():
    r = setcheck.check([ADD(1, "a", 0)], [READ_SET(0, {"a", "zz"})])
    assert r.outcome == "violation"
    assert r.invented == {"zz": ["read #0 (client 0)"]}


def test_set_failed_add_present_is_a_violation():
    r = setcheck.check([ADD(1, "a", 0), ADD(2, "b", 1, ok=False)], [READ_SET(0, {"a", "b"})])
    assert r.outcome == "violation" and "b" in r.failed_present


def test_set_unknown_adds_may_or_may_not_be_present():
    adds = [ADD(1, "a", 0), ADD(2, "b", 1, ok=None), ADD(3, "c", 2, ok=None),
            ADD(4, "d", 3, ok=False)]
    r = setcheck.check(adds, [READ_SET(0, {"a", "b"}), READ_SET(1, {"a", "b"})])
    assert r.outcome == "ok", r.explanation
    assert r.unknown_adds == 3 and r.unknown_present == 1
    # A retried add: one attempt unknown, one acknowledged -> must be present.
    r = setcheck.check(adds + [ADD(5, "c", 4)], [READ_SET(0, {"a", "b"})])
    assert r.outcome == "violation" and list(r.lost) == ["c"]


def test_set_unreadable_nodes():
    adds = [ADD(1, "a", 0)]
    r = setcheck.check(adds, [READ_SET(0, {"a"}), READ_SET(1, (), ok=None)])
    assert r.outcome == "ok" and r.unread_nodes == ["read #1 (client 1)"]
    assert setcheck.check(adds, [READ_SET(1, (), ok=None)]).outcome == "unknown"
