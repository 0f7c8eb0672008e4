"""The lock backend on three real nodes (issue #7), through raw native-protocol
writes to backend "lock": time only from the log (the leader's --lock-tick-ms
ticks), expiry after the TTL, the lock-delay, and a holder that keeps its lock
across the leader's kill -9 while it keeps its session alive."""
import json
import time

import pytest

from synod_harness import Cluster, Conn, protos

LOCK_DELAY_MS = 3000
TICK_MS = 200


class Locks:
    """Commands and queries to backend "lock" through whichever node answers."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.conns = {}

    def _conn(self, node):
        if node.id not in self.conns:
            self.conns[node.id] = Conn(node.port, timeout=2.0)
        return self.conns[node.id]

    def _drop(self, node):
        c = self.conns.pop(node.id, None)
        if c is not None:
            c.close()

    def _request(self, fill, timeout=10.0):
        pb, _ = protos()
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            for node in self.cluster.nodes:
                if not node.alive():
                    self._drop(node)
                    continue
                try:
                    r = self._conn(node).request(fill, timeout_ms=1000)
                except OSError as e:  # a killed node, a reset connection
                    self._drop(node)
                    last = repr(e)
                    continue
                if r.code == pb.ClientResponse.OK:
                    return json.loads(r.result)
                last = (r.code, r.error)
                # NOT_LEADER / UNAVAILABLE: never entered the log; TIMEOUT: the
                # outcome is unknown, and these tests only retry idempotent
                # commands (keepalive, acquire, release, tick) or don't mind.
                assert r.code in (pb.ClientResponse.NOT_LEADER, pb.ClientResponse.UNAVAILABLE,
                                  pb.ClientResponse.TIMEOUT), last
            time.sleep(0.05)
        raise AssertionError(f"no node answered within {timeout}s: {last}")

    def write(self, cmd):
        def fill(req):
            req.write.backend = "lock"
            req.write.payload = json.dumps(cmd).encode()
        return self._request(fill)

    def read(self, req_json, linearizable=True):
        pb, _ = protos()

        def fill(req):
            req.read.backend = "lock"
            req.read.payload = json.dumps(req_json).encode()
            req.read.consistency = pb.LINEARIZABLE if linearizable else pb.LOCAL
        return self._request(fill)

    def read_on(self, node, req_json):
        """A LOCAL read of one node's own state."""
        def fill(req):
            req.read.backend = "lock"
            req.read.payload = json.dumps(req_json).encode()
        c = Conn(node.port, timeout=2.0)  # fresh: the node may have been restarted
        try:
            return json.loads(c.request(fill).result)
        finally:
            c.close()

    def close(self):
        for c in self.conns.values():
            c.close()


@pytest.fixture
def lc():
    c = Cluster(3, extra_args=["--backend", "lock", "--lock-tick-ms", str(TICK_MS)])
    c.start()
    locks = Locks(c)
    yield c, locks
    locks.close()
    c.stop()


def now_ms():
    # The nodes stamp commands with this machine's wall clock: the test's clock
    # and the log's are the same one.
    return int(time.time() * 1000)


def test_a_silent_session_expires_after_its_ttl_and_its_lock_waits_out_the_lock_delay(lc):
    cluster, locks = lc
    a = locks.write({"op": "open", "ttl_ms": 2000, "lock_delay_ms": LOCK_DELAY_MS})["session"]
    b = locks.write({"op": "open", "ttl_ms": 30000, "lock_delay_ms": LOCK_DELAY_MS})["session"]
    ga = locks.write({"op": "acquire", "session": a, "lock": "job"})
    assert ga["granted"] is True and ga["token"] > a, ga
    token_a = ga["token"]
    assert locks.write({"op": "acquire", "session": b, "lock": "job"}) == \
        {"granted": False, "waiting": True, "position": 1}
    # a's last sign of life: its session ends 2 s of log time after this.
    expires_a = locks.write({"op": "keepalive", "session": a})["expires_ms"]
    assert abs(expires_a - (now_ms() + 2000)) < 1000
    # From now on only b keeps its session alive; nobody else writes, so only
    # the leader's ticks move the log's clock.
    granted = None
    next_keepalive = 0
    seen_delay = None
    while now_ms() < expires_a + LOCK_DELAY_MS + 10000:
        t = now_ms()
        if t >= next_keepalive:
            locks.write({"op": "keepalive", "session": b})
            next_keepalive = t + 1000
        st = locks.read({"op": "status", "session": b, "lock": "job"})
        if st.get("held"):
            granted = (now_ms(), st)
            break
        assert st == {"held": False, "waiting": True, "position": 1, "req": 0}, st
        shown = locks.read({"op": "show", "lock": "job"})
        if not shown["holders"]:
            seen_delay = shown["unavailable_until_ms"]
        else:
            assert [h["session"] for h in shown["holders"]] == [a]
            assert now_ms() <= expires_a + 5 * TICK_MS + 2000, "a outlived its TTL by far"
        time.sleep(0.05)
    assert granted is not None, "b never got the lock"
    at, st = granted
    # Not before the TTL and the lock-delay, by the log's clock and by ours...
    assert seen_delay is not None and seen_delay >= expires_a + 1 + LOCK_DELAY_MS, seen_delay
    shown = locks.read({"op": "show", "lock": "job"})
    since = shown["holders"][0]["since_ms"]
    assert shown["holders"][0]["session"] == b
    assert since >= seen_delay, (since, seen_delay)
    assert at >= expires_a + LOCK_DELAY_MS
    # ...and not much after (ticks every TICK_MS; slack for a loaded machine).
    assert since <= expires_a + LOCK_DELAY_MS + 10 * TICK_MS + 1500, since - expires_a
    print(f"expiry+delay: delay ends {seen_delay - expires_a} ms after a's expiry time, "
          f"b granted at +{since - expires_a} ms (log), seen at +{at - expires_a} ms (wall)")
    token_b = st["token"]
    assert token_b > token_a
    assert locks.read({"op": "check", "lock": "job", "token": token_a}) == \
        {"current": False, "newest_token": token_b}
    assert locks.read({"op": "check", "lock": "job", "token": token_b})["current"] is True
    k = locks.write({"op": "keepalive", "session": a})
    assert k.get("expired") is True, k
    # Every node reached the same state (compared at the same applied slot:
    # the ticks keep moving now_ms, so only what the grant decided).
    leader = cluster.wait_for_leader()
    slot = leader.status().commit
    for n in cluster.nodes:
        cluster.wait_applied(n, slot)
        s = locks.read_on(n, {"op": "show", "lock": "job"})
        assert s["holders"] == shown["holders"] and s["last_token"] == token_b, (n.id, s)


def test_a_holder_that_keeps_its_session_alive_keeps_its_lock_across_a_leader_kill(lc):
    cluster, locks = lc
    h = locks.write({"op": "open", "ttl_ms": 5000, "lock_delay_ms": LOCK_DELAY_MS})["session"]
    w = locks.write({"op": "open", "ttl_ms": 30000, "lock_delay_ms": LOCK_DELAY_MS})["session"]
    g = locks.write({"op": "acquire", "session": h, "lock": "db"})
    assert g["granted"] is True
    token = g["token"]
    assert locks.write({"op": "acquire", "session": w, "lock": "db"})["waiting"] is True
    leader = cluster.wait_for_leader()
    leader.kill9()
    killed_at = time.time()
    # Both keep their sessions alive, every 500 ms, through whichever node
    # answers while a new leader takes over.
    first_after_kill = None
    while time.time() < killed_at + 7:  # past h's TTL
        for s in (h, w):
            r = locks.write({"op": "keepalive", "session": s})
            assert "error" not in r, r
            if first_after_kill is None:
                first_after_kill = time.time() - killed_at
        time.sleep(0.5)
    print(f"leader kill: first keepalive applied {first_after_kill * 1000:.0f} ms after it")
    new_leader = cluster.wait_for_leader()
    assert new_leader.id != leader.id
    assert locks.read({"op": "status", "session": h, "lock": "db"}) == \
        {"held": True, "token": token, "mode": "exclusive", "req": 0}
    shown = locks.read({"op": "show", "lock": "db"})
    assert [x["session"] for x in shown["holders"]] == [h]
    assert [x["session"] for x in shown["waiters"]] == [w]
    assert shown["last_token"] == token
    assert locks.read({"op": "check", "lock": "db", "token": token})["current"] is True
    # The acquire is idempotent across the failover: the same token again.
    again = locks.write({"op": "acquire", "session": h, "lock": "db"})
    assert again["granted"] is True and again["token"] == token
    # The killed node comes back and replays to the same state.
    leader.start()
    slot = new_leader.status().commit
    cluster.wait_applied(leader, slot, timeout=20)
    assert locks.read_on(leader, {"op": "show", "lock": "db"})["holders"] == shown["holders"]
    # A release hands it to the waiter at once, with a newer token.
    assert locks.write({"op": "release", "session": h, "lock": "db"}) == {"released": True}
    st = locks.read({"op": "status", "session": w, "lock": "db"})
    assert st["held"] is True and st["token"] > token, st


def assert_log_stays_put(leader):
    """The leader's commit slot settles (what was in flight, e.g. a new
    leader's first slot or a last tick, lands) and then stays put for 5 ticks."""
    deadline = time.time() + 5
    slot = leader.status().commit
    while time.time() < deadline:
        time.sleep(2 * TICK_MS / 1000)
        now = leader.status().commit
        if now == slot:
            time.sleep(5 * TICK_MS / 1000)
            assert leader.status().commit == slot, "the log grew with no lock session"
            return
        slot = now
    raise AssertionError("the leader kept committing slots with no lock session")


def test_the_leaders_ticks_expire_sessions_without_any_client_command(lc):
    cluster, locks = lc
    leader = cluster.wait_for_leader()
    # No session: nothing to expire, no ticks (an idle cluster's log stays put).
    assert_log_stays_put(leader)
    s = locks.write({"op": "open", "ttl_ms": 1000, "lock_delay_ms": LOCK_DELAY_MS})["session"]
    locks.write({"op": "acquire", "session": s, "lock": "t"})
    before = locks.read({"op": "list"})
    assert [x["session"] for x in before["sessions"]] == [s]
    # Only reads from here: they never move the log's clock; the ticks do.
    deadline = time.time() + 1.0 + 10 * TICK_MS / 1000 + 3
    while time.time() < deadline:
        listed = locks.read({"op": "list"})
        if not listed["sessions"]:
            break
        time.sleep(0.05)
    assert listed["sessions"] == [], listed
    assert listed["now_ms"] > before["now_ms"] + 1000
    shown = locks.read({"op": "show", "lock": "t"})
    # Released by the expiry, so in its lock-delay (not by a release: none).
    assert shown["holders"] == []
    assert shown["unavailable_until_ms"] >= listed["now_ms"] + LOCK_DELAY_MS - 1000, shown
    # Idle again: the ticks stop.
    assert_log_stays_put(leader)


def test_a_node_lock_delay_option_is_refused_it_is_per_session():
    """The lock-delay is in each session's open command, not a node option: a
    node option could differ between nodes and so would their states."""
    c = Cluster(1)
    n = c.node(1)
    n.start(extra=["--backend", "lock", "--backend-option", "lock.lock_delay_ms=1000"])
    try:
        assert n.proc.wait(timeout=10) != 0
        assert "lock_delay_ms" in n.log_text() and "per session" in n.log_text()
    finally:
        c.stop()
