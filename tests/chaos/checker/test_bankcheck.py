"""The bank checker alone (no cluster): a correct history passes, and each kind
of planted bug — a wrong total, a negative balance, a torn or stale read, a lost,
duplicated or resurrected transfer, nodes that disagree — is flagged."""
import copy

from checker import bankcheck
from checker.history import Op, dumps, loads

N, INITIAL = 4, 100


def rows(bal):
    return [[i, bal[i]] for i in sorted(bal)]


def transfer(client, n, src, dst, amount, t, ok=True, dur=0.01, result=None):
    return Op(client=client, f="transfer", key="",
              value={"op": f"{client}.{n}", "from": src, "to": dst, "amount": amount},
              ok=ok, invoke=t, complete=(t + dur) if ok is not None else None, result=result)


def read(client, key, bal, t, dur=0.01):
    return Op(client=client, f="read_balances", key=key, ok=True, invoke=t, complete=t + dur,
              result=rows(bal))


def correct_run():
    """A bank that works: transfers applied in order, reads of committed states,
    one overdraft (rolled back), one unknown that committed, one that did not."""
    bal = {i: INITIAL for i in range(1, N + 1)}
    ops, ledger = [], []
    states = [dict(bal)]
    plan = [(1, 2, 30), (2, 3, 50), (3, 4, 200), (4, 1, 10), (1, 3, 70), (2, 4, 5), (3, 1, 20)]
    t = 0.0
    for n, (src, dst, amt) in enumerate(plan):
        if n == 2:  # overdraft: rolled back, not in the ledger
            ops.append(transfer(1, n, src, dst, amt, t, ok=False, result="overdraft"))
        elif n == 5:  # unknown, never applied
            ops.append(transfer(2, n, src, dst, amt, t, ok=None))
        else:
            ok = None if n == 4 else True  # n == 4: unknown, but applied
            ops.append(transfer(1 + n % 2, n, src, dst, amt, t, ok=ok))
            bal[src] -= amt
            bal[dst] += amt
            ledger.append([len(ledger) + 1, f"{1 + n % 2}.{n}", src, dst, amt])
            states.append(dict(bal))
        t += 0.02
        ops.append(read(3, "linearizable", bal, t))
        ops.append(read(4, f"node {1 + n % 3}", states[max(0, len(states) - 2)], t))  # stale is fine
        t += 0.02
    final = {"nodes": {f"node {i}": {"balances": rows(bal), "ledger": copy.deepcopy(ledger)}
                       for i in (1, 2, 3)},
             "checksum_position": 99, "checksums": {f"node {i}": "ab" * 32 for i in (1, 2, 3)}}
    return ops, final


def check(ops, final):
    return bankcheck.check(ops, final, accounts=N, initial=INITIAL)


def test_a_correct_history_passes():
    ops, final = correct_run()
    r = check(ops, final)
    assert r.outcome == "ok", r.explanation
    assert r.reads_checked == 14 and r.linearizable_reads == 7 and r.local_reads == 7
    assert r.transfers == {"ok": 4, "failed": 1, "overdraft": 1, "unknown": 2}
    assert r.ledger_len == 5 and r.nodes_compared == 3
    # The history survives its JSON lines form.
    assert check(loads(dumps(ops)), final).outcome == "ok"


def test_a_read_with_a_wrong_total_is_flagged():
    ops, final = correct_run()
    r = next(o for o in ops if o.f == "read_balances" and o.key == "linearizable")
    r.result[0][1] -= 30  # half a transfer: the debit without the credit
    res = check(ops, final)
    assert res.outcome == "violation"
    assert "total 370 != 400" in res.explanation
    assert r in res.bad_ops


def test_a_negative_balance_is_flagged_even_with_the_right_total():
    ops, final = correct_run()
    r = next(o for o in ops if o.f == "read_balances" and o.key.startswith("node"))
    r.result = [[1, -10], [2, 110], [3, 200], [4, 100]]
    res = check(ops, final)
    assert res.outcome == "violation"
    assert "negative" in res.explanation and "{1: -10}" in res.explanation


def test_missing_accounts_and_read_errors_are_flagged():
    ops, final = correct_run()
    reads = [o for o in ops if o.f == "read_balances"]
    reads[0].result = reads[0].result[:3]
    reads[1].result = {"error": "no such table: accounts"}
    res = check(ops, final)
    assert res.outcome == "violation"
    assert "accounts [1, 2, 3] (want 1..4)" in res.explanation
    assert "no such table" in res.explanation


def test_a_torn_read_with_the_right_total_is_flagged():
    """Balances that sum right but that no committed state ever had."""
    ops, final = correct_run()
    r = next(o for o in ops if o.f == "read_balances" and o.key == "linearizable")
    r.result = [[1, 101], [2, 99], [3, 100], [4, 100]]
    res = check(ops, final)
    assert res.outcome == "violation"
    assert "no prefix of the ledger" in res.explanation


def test_a_stale_linearizable_read_is_flagged():
    ops, final = correct_run()
    # The last linearizable read shows the initial state, after four acknowledged transfers.
    r = [o for o in ops if o.f == "read_balances" and o.key == "linearizable"][-1]
    r.result = rows({i: INITIAL for i in range(1, N + 1)})
    res = check(ops, final)
    assert res.outcome == "violation"
    assert "stale linearizable read" in res.explanation and "acknowledged before" in res.explanation


def test_a_linearizable_read_from_the_future_is_flagged():
    ops, final = correct_run()
    first = [o for o in ops if o.f == "read_balances" and o.key == "linearizable"][0]
    last = [o for o in ops if o.f == "read_balances" and o.key == "linearizable"][-1]
    first.result = copy.deepcopy(last.result)
    res = check(ops, final)
    assert res.outcome == "violation"
    assert "invoked after the read ended" in res.explanation


def test_a_node_going_back_in_time_is_flagged():
    ops, final = correct_run()
    final_bal = final["nodes"]["node 1"]["balances"]
    t = max(o.invoke for o in ops) + 1
    ops.append(read(5, "node 2", {i: b for i, b in final_bal}, t))
    ops.append(read(5, "node 2", {i: INITIAL for i in range(1, N + 1)}, t + 0.1))
    res = check(ops, final)
    assert res.outcome == "violation"
    assert "node 2 went back in time" in res.explanation


def test_final_states_that_differ_between_nodes_are_flagged():
    ops, final = correct_run()
    final["nodes"]["node 3"]["balances"] = rows({1: 100, 2: 100, 3: 100, 4: 100})
    final["nodes"]["node 3"]["ledger"] = []
    res = check(ops, final)
    assert res.outcome == "violation"
    assert "final balances differ" in res.explanation
    assert "final ledgers differ" in res.explanation


def test_different_checksums_are_flagged():
    ops, final = correct_run()
    final["checksums"]["node 2"] = "cd" * 32
    res = check(ops, final)
    assert res.outcome == "violation" and "checksums at position 99 differ" in res.explanation


def test_a_lost_acknowledged_transfer_is_flagged():
    ops, final = correct_run()
    for d in final["nodes"].values():  # the first (acknowledged) transfer vanished everywhere
        d["ledger"] = d["ledger"][1:]
    res = check(ops, final)
    assert res.outcome == "violation"
    assert "acknowledged transfer 1.0 is not in the ledger (lost)" in res.explanation


def test_a_transfer_applied_twice_is_flagged():
    ops, final = correct_run()
    for d in final["nodes"].values():
        d["ledger"].append([len(d["ledger"]) + 1] + d["ledger"][0][1:])
    res = check(ops, final)
    assert res.outcome == "violation"
    assert "transfer 1.0 applied 2 times" in res.explanation


def test_an_overdraft_in_the_ledger_is_flagged():
    ops, final = correct_run()
    for d in final["nodes"].values():  # the rolled-back overdraft (3 -> 4, 200) committed after all
        led = d["ledger"][:2] + [[0, "1.2", 3, 4, 200]] + d["ledger"][2:]
        d["ledger"] = [[i + 1] + row[1:] for i, row in enumerate(led)]
    res = check(ops, final)
    assert res.outcome == "violation"
    assert "definitely failed (overdraft) but is in the ledger" in res.explanation
    assert "account 3 goes negative (-50) at row 2" in res.explanation


def test_final_balances_that_are_not_the_ledger_replay_are_flagged():
    ops, final = correct_run()
    for d in final["nodes"].values():
        d["balances"][0][1] += 5
        d["balances"][1][1] -= 5
    res = check(ops, final)
    assert res.outcome == "violation"
    assert "are not the ledger's replay" in res.explanation


def test_no_final_read_is_unknown_but_reads_are_still_checked():
    ops, _ = correct_run()
    assert check(ops, {}).outcome == "unknown"
    ops[1].result[0][1] += 1
    assert check(ops, {}).outcome == "violation"
