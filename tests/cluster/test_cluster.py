"""Three real synod processes on loopback (issue #3, item 10)."""
import os
import socket
import struct
import subprocess
import time

from synod_harness import Conn, Cluster, HEADER, MAGIC, cluster_id_of, frame, kv_read, kv_write, protos


def put(c, key, value, **kw):
    r = c.ctl("put", key, value, **kw)
    assert r.returncode == 0, r.stderr
    return r


def get_local(c, node, key):
    return c.ctl("get", key, "--consistency", "local", cluster=node.addr)


def test_write_on_leader_read_on_every_node(cluster):
    leader = cluster.wait_for_leader()
    put(cluster, "greeting", "hello", cluster=leader.addr)
    slot = leader.status().commit
    for n in cluster.nodes:
        cluster.wait_applied(n, slot)
        r = get_local(cluster, n, "greeting")
        assert r.returncode == 0 and r.stdout.strip() == "hello", (n.id, r.stdout, r.stderr)
    r = cluster.ctl("get", "greeting", "--consistency", "linearizable")
    assert r.returncode == 0 and r.stdout.strip() == "hello"


def test_write_through_a_follower_is_forwarded(cluster):
    pb, kv = protos()
    leader = cluster.wait_for_leader()
    follower = cluster.followers(leader)[0]
    # A raw connection to the follower only (the client library would find the
    # leader by itself): the follower forwards the write and relays the answer.
    c = Conn(follower.port)
    r = kv_write(c, kv.KvCommand(op=kv.KvCommand.PUT, key=b"via", value=b"follower"),
                 client_id=77, sequence=1)
    assert r.code == pb.ClientResponse.OK, r
    assert r.slot > 0
    # A linearizable read through the follower is forwarded too.
    r = kv_read(c, kv.KvCommand(op=kv.KvCommand.GET, key=b"via"), consistency=1)
    res = kv.KvResult()
    res.ParseFromString(r.result)
    assert r.code == pb.ClientResponse.OK and res.value == b"follower", (r, res)
    # With no_forward the follower names the leader instead.
    def fill(req):
        req.write.client_id = 77
        req.write.sequence = 2
        req.write.backend = "kv"
        req.write.no_forward = True
        req.write.payload = kv.KvCommand(op=kv.KvCommand.PUT, key=b"x", value=b"y").SerializeToString()
    r = c.request(fill)
    assert r.code == pb.ClientResponse.NOT_LEADER, r
    assert r.leader_hint == leader.id and r.leader_address == leader.addr
    c.close()
    r = cluster.ctl("get", "via", "--consistency", "linearizable", cluster=leader.addr)
    assert r.stdout.strip() == "follower", r.stderr


def test_missing_key_and_failed_cas_exit_1(cluster):
    r = cluster.ctl("get", "nope")
    assert r.returncode == 1 and "not found" in r.stderr
    put(cluster, "k", "v1")
    r = cluster.ctl("cas", "k", "wrong", "v2")
    assert r.returncode == 1
    r = cluster.ctl("cas", "k", "v1", "v2")
    assert r.returncode == 0, r.stderr
    assert cluster.ctl("get", "k").stdout.strip() == "v2"


def test_leader_killed_new_leader_no_acknowledged_write_lost(cluster):
    leader = cluster.wait_for_leader()
    acked = []
    for i in range(20):
        put(cluster, f"k{i}", f"v{i}")
        acked.append(i)
    leader.kill9()
    others = cluster.followers(leader)
    new_leader = cluster.wait_for_leader(among=others)
    assert new_leader.id != leader.id
    live = ",".join(n.addr for n in others)
    for i in range(20, 30):
        put(cluster, f"k{i}", f"v{i}", cluster=live)
        acked.append(i)
    for i in acked:
        r = cluster.ctl("get", f"k{i}", "--consistency", "linearizable", cluster=live)
        assert r.stdout.strip() == f"v{i}", (i, r.stderr)
    # The old leader comes back, catches up, and its local reads are current.
    leader.start()
    slot = new_leader.status().commit
    cluster.wait_applied(leader, slot, timeout=15)
    for i in acked:
        r = get_local(cluster, leader, f"k{i}")
        assert r.stdout.strip() == f"v{i}", (i, r.stderr)


def test_majority_down_fails_fast_then_recovers(cluster):
    leader = cluster.wait_for_leader()
    put(cluster, "before", "1")
    survivors = [cluster.node(1)]
    for n in cluster.nodes[1:]:
        n.kill9()
    t0 = time.time()
    r = cluster.ctl("put", "during", "x", "--timeout", "2000", cluster=survivors[0].addr)
    elapsed = time.time() - t0
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.strip(), "a clear message on stderr"
    assert elapsed < 10, f"took {elapsed:.1f}s: hung instead of failing"
    for n in cluster.nodes[1:]:
        n.start()
    cluster.wait_for_leader()
    assert cluster.ctl("get", "before", "--consistency", "linearizable").stdout.strip() == "1"


def test_retried_command_is_applied_once(cluster):
    _, kv = protos()
    leader = cluster.wait_for_leader()
    c = Conn(leader.port)
    cmd = kv.KvCommand(op=kv.KvCommand.INCREMENT, key=b"counter", delta=5)
    first = kv_write(c, cmd, client_id=424242, sequence=1)
    again = kv_write(c, cmd, client_id=424242, sequence=1)  # as after a lost reply
    assert first.code == 0 and again.code == 0, (first, again)
    r1, r2 = kv.KvResult(), kv.KvResult()
    r1.ParseFromString(first.result)
    r2.ParseFromString(again.result)
    assert r1.number == 5 and r2.number == 5
    nxt = kv_write(c, cmd, client_id=424242, sequence=2)
    r3 = kv.KvResult()
    r3.ParseFromString(nxt.result)
    assert r3.number == 10
    c.close()


def test_bad_input_gets_a_clear_error_and_the_node_keeps_serving(cluster):
    pb, kv = protos()
    leader = cluster.wait_for_leader()
    # Garbage bytes (an HTTP request), an oversized frame, another cluster's id,
    # a peer id nobody configured: each connection is closed...
    for send in (
        lambda s: s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
        lambda s: s.sendall(HEADER.pack(MAGIC, 1, 0, 0, cluster_id_of("synod"), 1 << 31)),
        lambda s: s.sendall(frame(cluster_id_of("other"), b"")),
    ):
        s = socket.create_connection(("127.0.0.1", leader.port), timeout=5)
        send(s)
        s.settimeout(5)
        try:
            assert s.recv(1) == b""
        except ConnectionResetError:
            pass
        s.close()
    stranger = Conn(leader.port, hello_id=99)
    assert stranger.is_closed()
    # ...an unknown backend is refused with a reason...
    c = Conn(leader.port)
    r = kv_write(c, kv.KvCommand(op=kv.KvCommand.PUT, key=b"a", value=b"b"), backend="nope")
    assert r.code == pb.ClientResponse.BAD_REQUEST and "nope" in r.error
    # ...and the node still serves everyone else.
    put(cluster, "still", "here", cluster=leader.addr)
    assert cluster.ctl("get", "still").stdout.strip() == "here"
    log = leader.log_text()
    assert "magic" in log and "cluster" in log, log[-2000:]


def test_unknown_backend_at_startup_is_a_clear_error(tmp_path):
    c = Cluster(1)
    n = c.node(1)
    n.start(extra=["--backend", "doesnotexist"])
    try:
        rc = n.proc.wait(timeout=10)
        assert rc != 0
        assert "doesnotexist" in n.log_text()
    finally:
        c.stop()


def test_sigterm_is_a_clean_shutdown(cluster):
    leader = cluster.wait_for_leader()
    put(cluster, "x", "1")
    for n in cluster.nodes:
        assert n.terminate() == 0
    for n in cluster.nodes:
        n.start()
    cluster.wait_for_leader()
    assert cluster.ctl("get", "x", "--consistency", "linearizable").stdout.strip() == "1"


def test_c_api(cluster):
    binary = os.environ.get("SYNOD_C_API_TEST")
    if not binary:
        import pytest
        pytest.skip("C API test binary not built")
    env = dict(os.environ, SYNOD_TEST_CLUSTER=cluster.addrs)
    r = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_increments_across_a_leader_crash_are_applied_exactly_once(cluster):
    leader = cluster.wait_for_leader()
    n = 1000
    p = subprocess.Popen([os.environ["SYNODCTL_BIN"], "--cluster", cluster.addrs,
                          "--timeout", "15000", "-"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    p.stdin.write("incr counter\n" * n)
    p.stdin.close()
    time.sleep(0.3)  # mid-stream: some increments done, others in flight
    leader.kill9()
    out = p.stdout.read()
    p.wait(timeout=120)
    values = [int(line) for line in out.split() if line.lstrip("-").isdigit()]
    assert len(values) > 0
    # The client retries in-flight increments with the same sequence at the new
    # leader: none may be applied twice, so every acknowledged value is distinct
    # and the counter is exactly the number applied.
    assert len(values) == len(set(values)), "an increment was applied twice"
    others = ",".join(x.addr for x in cluster.followers(leader))
    final = int(cluster.ctl("get", "counter", "--consistency", "linearizable",
                            cluster=others).stdout.strip())
    assert len(values) <= final <= n
    assert max(values) == final or len(values) < n
    if len(values) == n:
        assert final == n


def test_idle_sessions_expire_through_the_log_on_every_node():
    pb, kv = protos()
    c = Cluster(3, extra_args=["--session-ttl-ms", "1"])
    try:
        leader = c.start()
        conn = Conn(leader.port)
        cmd = kv.KvCommand(op=kv.KvCommand.INCREMENT, key=b"n", delta=1)
        assert kv_write(conn, cmd, client_id=5, sequence=1).code == 0
        assert kv_write(conn, cmd, client_id=5, sequence=1).code == 0  # deduplicated
        # Expiry runs every 1024 commands, by log time: push more than that through.
        lines = "".join(f"put filler{i} x\n" for i in range(1100))
        r = c.ctl("-", stdin=lines, timeout=120)
        assert r.returncode == 0, r.stderr[-500:]
        # Session 5 expired on every node: the same (client, sequence) applies again.
        again = kv_write(conn, cmd, client_id=5, sequence=1)
        res = kv.KvResult()
        res.ParseFromString(again.result)
        assert again.code == 0 and res.number == 2, (again, res)
        slot = leader.status().commit
        for n in c.nodes:
            c.wait_applied(n, slot)
            got = c.ctl("get", "n", "--consistency", "local", cluster=n.addr)
            assert got.stdout.strip() == "2", (n.id, got.stdout, got.stderr)
        conn.close()
    finally:
        c.stop()


def test_retry_of_a_write_replayed_after_a_crash_says_its_result_was_lost():
    """A write its backend had already applied when the node replayed it after a
    crash has no result to give back. A retry of it (answered from the session
    table, at once or through the log) says so, also after a later clean
    restart (the flag is stored with the session), instead of answering OK
    with an empty result."""
    pb, kv = protos()
    lost = "applied; the result was lost in a restart"
    # One node; the kv backend fsyncs every apply, so a write survives kill -9
    # even when the node has not recorded its session yet (that happens at most
    # every 100 ms: the window this test aims for).
    c = Cluster(1, extra_args=["--backend-option", "kv.sync=true"])
    try:
        node = c.start()
        for attempt in range(10):
            client = 7000 + attempt
            incr = kv.KvCommand(op=kv.KvCommand.INCREMENT, key=b"n%d" % attempt, delta=1)
            filler = kv.KvCommand(op=kv.KvCommand.PUT, key=b"filler", value=b"x")
            conn = Conn(node.port)
            time.sleep(0.15)  # the filler's apply records the applied point...
            assert kv_write(conn, filler).code == 0
            first = kv_write(conn, incr, client_id=client, sequence=1)  # ...this one not yet
            node.kill9()
            conn.close()
            assert first.code == 0 and not first.error, first
            node.start()
            c.wait_for_leader()
            conn = Conn(node.port)
            again = kv_write(conn, incr, client_id=client, sequence=1, timeout_ms=5000)
            if again.result:  # the session was recorded before the kill: try again
                res = kv.KvResult()
                res.ParseFromString(again.result)
                assert again.code == 0 and not again.error and res.number == 1, (again, res)
                conn.close()
                continue
            assert again.code == 0 and again.error == lost, again
            # The flag is stored: the same answer after a clean restart.
            conn.close()
            assert node.terminate() == 0
            node.start()
            c.wait_for_leader()
            conn = Conn(node.port)
            again = kv_write(conn, incr, client_id=client, sequence=1, timeout_ms=5000)
            assert again.code == 0 and again.result == b"" and again.error == lost, again
            # Applied once: the client's next command sees 1 + 1.
            nxt = kv_write(conn, incr, client_id=client, sequence=2)
            res = kv.KvResult()
            res.ParseFromString(nxt.result)
            assert nxt.code == 0 and not nxt.error and res.number == 2, (nxt, res)
            conn.close()
            return
        import pytest
        pytest.skip("every session was recorded before the kill; the window was never hit")
    finally:
        c.stop()
