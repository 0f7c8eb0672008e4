"""The Redis (RESP2) front end on three real nodes (issue #5): redis-cli,
redis-benchmark and a raw pipelining client talk to `synod --redis-listen`."""
import os
import shutil
import socket
import subprocess
import time

import pytest

from synod_harness import Cluster, free_port

REDIS_CLI = shutil.which("redis-cli")
REDIS_BENCHMARK = shutil.which("redis-benchmark")
pytestmark = pytest.mark.skipif(REDIS_CLI is None, reason="redis-tools is not installed "
                                "(scripts/install-deps installs it)")


class RedisCluster(Cluster):
    def __init__(self, n=3, extra_args=()):
        super().__init__(n, extra_args=extra_args)
        for node in self.nodes:
            node.redis_port = free_port()

    def start(self):
        for n in self.nodes:
            self.start_node(n)
        leader = self.wait_for_leader()
        for n in self.nodes:
            wait_port(n.redis_port)
        return leader

    def start_node(self, n, extra=()):
        n.start(extra=["--redis-listen", f"127.0.0.1:{n.redis_port}", *extra])


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def cli(node, *args, stdin=None):
    r = subprocess.run([REDIS_CLI, "-p", str(node.redis_port), *args], capture_output=True,
                       text=True, timeout=30, input=stdin)
    assert r.returncode == 0, r.stderr
    return r.stdout.rstrip("\n")


@pytest.fixture
def rc():
    c = RedisCluster(3)
    c.start()
    yield c
    c.stop()


def test_commands_through_redis_cli_on_every_node(rc):
    leader = rc.wait_for_leader()
    follower = rc.followers(leader)[0]
    assert cli(leader, "PING") == "PONG"
    assert cli(follower, "ECHO", "hi there") == "hi there"
    # A write on a follower is forwarded to the leader and answered after it is chosen.
    assert cli(follower, "SET", "greeting", "hello") == "OK"
    for n in rc.nodes:  # reads are linearizable by default: a follower forwards them
        assert cli(n, "GET", "greeting") == "hello"
    assert cli(leader, "GET", "missing") == ""
    assert cli(leader, "SET", "greeting", "x", "NX") == ""  # nil: NX did not hold
    assert cli(leader, "SET", "fresh", "1", "NX") == "OK"
    assert cli(leader, "SET", "absent", "1", "XX") == ""
    assert cli(leader, "SET", "fresh", "2", "XX") == "OK"
    assert cli(leader, "SETNX", "fresh", "3") == "0"
    assert cli(follower, "INCR", "counter") == "1"
    assert cli(follower, "INCRBY", "counter", "41") == "42"
    assert cli(leader, "DECR", "counter") == "41"
    assert cli(leader, "DECRBY", "counter", "40") == "1"
    assert cli(leader, "INCR", "greeting") == "ERR value is not an integer or out of range"
    assert cli(leader, "MSET", "a", "1", "b", "2", "c", "3") == "OK"
    assert cli(leader, "MGET", "a", "nope", "c").split("\n") == ["1", "", "3"]
    assert cli(leader, "EXISTS", "a", "b", "nope", "a") == "3"
    assert cli(leader, "STRLEN", "greeting") == "5"
    assert sorted(cli(leader, "KEYS", "*").split("\n")) == \
        ["a", "b", "c", "counter", "fresh", "greeting"]
    assert sorted(cli(leader, "KEYS", "[ab]").split("\n")) == ["a", "b"]
    assert cli(leader, "DBSIZE") == "6"
    assert cli(leader, "DEL", "a", "b", "nope", "a") == "2"
    assert cli(leader, "DBSIZE") == "4"
    # Refused clearly, with nothing changed.
    assert "not supported" in cli(leader, "SET", "k", "v", "EX", "10")
    assert cli(leader, "GET", "k") == ""
    assert cli(leader, "FLUSHALL").startswith("ERR unknown command 'FLUSHALL'")
    assert cli(leader, "GET").startswith("ERR wrong number of arguments")
    assert cli(leader, "CONFIG", "GET", "appendonly").split("\n") == ["appendonly", "yes"]
    # Every node applied the same writes: local reads agree once caught up.
    slot = leader.status().commit
    for n in rc.nodes:
        rc.wait_applied(n, slot)
        assert rc.ctl("get", "counter", "--consistency", "local",
                      cluster=n.addr).stdout.strip() == "1"


def recv_replies(sock, count, timeout=20.0):
    """Reads `count` RESP replies (simple, error, integer, bulk) as a list."""
    sock.settimeout(timeout)
    buf = b""
    out = []
    while len(out) < count:
        chunk = sock.recv(1 << 16)
        assert chunk, f"connection closed after {len(out)} replies"
        buf += chunk
        while len(out) < count:
            end = buf.find(b"\r\n")
            if end < 0:
                break
            kind, line = buf[:1], buf[1:end]
            if kind == b"$":
                n = int(line)
                if n < 0:
                    out.append(None)
                    buf = buf[end + 2:]
                    continue
                if len(buf) < end + 2 + n + 2:
                    break
                out.append(buf[end + 2:end + 2 + n])
                buf = buf[end + 2 + n + 2:]
            else:
                out.append((kind + line).decode())
                buf = buf[end + 2:]
    return out


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def test_pipelined_commands_are_answered_in_order_and_batched(rc):
    leader = rc.wait_for_leader()
    n = 2000
    with socket.create_connection(("127.0.0.1", leader.redis_port)) as s:
        # Interleaved: each GET must see the SET just before it on this
        # connection (as in Redis), and the INCRs count up in order.
        s.sendall(b"".join(resp("SET", f"p{i}", f"v{i}") + resp("GET", f"p{i}") +
                           resp("INCR", "pc") for i in range(200)))
        replies = recv_replies(s, 3 * 200)
        for i in range(200):
            assert replies[3 * i] == "+OK", (i, replies[3 * i])
            assert replies[3 * i + 1] == f"v{i}".encode(), (i, replies[3 * i + 1])
            assert replies[3 * i + 2] == f":{i + 1}", (i, replies[3 * i + 2])
        # A run of writes in one pipeline shares slots: far fewer slots than writes.
        before = leader.status().commit
        s.sendall(b"".join(resp("SET", f"q{i}", f"w{i}") for i in range(n)) +
                  b"".join(resp("GET", f"q{i}") for i in range(n)))
        replies = recv_replies(s, 2 * n)
        used = leader.status().commit - before
    assert replies[:n] == ["+OK"] * n
    assert replies[n:] == [f"w{i}".encode() for i in range(n)]
    assert 0 < used <= n // 4, used


def test_binary_safe_values_and_big_values(rc):
    leader = rc.wait_for_leader()
    value = bytes(range(256)) * 400  # 100 KiB with every byte value, CR and LF included
    with socket.create_connection(("127.0.0.1", leader.redis_port)) as s:
        s.sendall(resp("SET", b"bin\r\nkey", value) + resp("GET", b"bin\r\nkey"))
        assert recv_replies(s, 2) == ["+OK", value]


def test_protocol_error_closes_only_that_connection(rc):
    leader = rc.wait_for_leader()
    with socket.create_connection(("127.0.0.1", leader.redis_port)) as bad:
        bad.sendall(b"*1\r\n+PING\r\n")
        r = recv_replies(bad, 1)
        assert r[0].startswith("-ERR Protocol error"), r
        bad.settimeout(5)
        assert bad.recv(1) == b""  # closed by the server
    with socket.create_connection(("127.0.0.1", leader.redis_port)) as bad:
        bad.sendall(b"*1\r\n$999999999999\r\n")  # a bulk beyond the limit
        assert recv_replies(bad, 1)[0].startswith("-ERR Protocol error: invalid bulk length")
    assert cli(leader, "PING") == "PONG"
    assert leader.alive()


def test_acknowledged_writes_survive_the_leader(rc):
    leader = rc.wait_for_leader()
    for i in range(50):
        assert cli(leader, "SET", f"d{i}", str(i)) == "OK"
    leader.kill9()
    new = rc.wait_for_leader(among=rc.followers(leader))
    wait_port(new.redis_port)
    deadline = time.time() + 10
    while True:  # the new leader answers once its lease is in place
        got = cli(new, "GET", "d49")
        if got == "49" or time.time() > deadline:
            break
        time.sleep(0.1)
    assert got == "49"
    assert cli(new, "MGET", *[f"d{i}" for i in range(50)]).split("\n") == \
        [str(i) for i in range(50)]
    # The old leader comes back and catches up.
    rc.start_node(leader)
    wait_port(leader.redis_port)
    slot = new.status().commit
    rc.wait_applied(leader, slot)
    assert rc.ctl("get", "d7", "--consistency", "local",
                  cluster=leader.addr).stdout.strip() == "7"


def test_local_reads_setting():
    c = RedisCluster(3)
    try:
        for n in c.nodes:
            c.start_node(n, extra=["--redis-reads", "local"])
        leader = c.wait_for_leader()
        follower = c.followers(leader)[0]
        wait_port(follower.redis_port)
        assert cli(leader, "SET", "k", "v") == "OK"
        c.wait_applied(follower, leader.status().commit)
        assert cli(follower, "GET", "k") == "v"
        assert "local reads" in follower.log_text()
    finally:
        c.stop()


def test_bad_redis_flags_are_refused():
    d = os.path.join("/tmp", f"synod_redis_flags_{os.getpid()}")
    try:
        base = [os.environ["SYNOD_BIN"], "--id", "1", "--data-dir", d, "--listen",
                "127.0.0.1:1", "--peers", "1=127.0.0.1:1"]
        r = subprocess.run(base + ["--redis-listen", "127.0.0.1:2", "--redis-backend", "nope"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 2 and "--redis-backend 'nope' is not a loaded --backend" in r.stderr
        r = subprocess.run(base + ["--redis-reads", "sometimes"], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2 and "--redis-reads" in r.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(REDIS_BENCHMARK is None, reason="redis-benchmark is not installed")
def test_redis_benchmark_runs_against_synod(rc):
    """Not a speed test: redis-benchmark's own commands (including its CONFIG
    GET at start-up and MSET) must all succeed."""
    leader = rc.wait_for_leader()
    for extra in ([], ["-P", "16"]):
        r = subprocess.run([REDIS_BENCHMARK, "-p", str(leader.redis_port), "-t",
                            "set,get,incr,mset", "-n", "2000", "-c", "8", "-d", "100", "-q",
                            *extra], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        out = r.stdout + r.stderr
        assert "ERROR" not in out and "Error" not in out, out
        for test in ("SET", "GET", "INCR", "MSET"):
            assert f"{test}:" in out or f"{test} (" in out, out
    # Without -r every INCR hits one key: each was applied exactly once.
    assert cli(leader, "GET", "counter:__rand_int__") == "4000"


def test_a_follower_retries_for_redis_clients_across_a_leader_change(rc):
    """Redis clients cannot follow a leader hint: while a new leader is being
    elected the node retries for them instead of answering TRYAGAIN."""
    leader = rc.wait_for_leader()
    follower = rc.followers(leader)[0]
    assert cli(follower, "SET", "before", "1") == "OK"
    leader.kill9()
    start = time.time()
    with socket.create_connection(("127.0.0.1", follower.redis_port)) as s:
        s.sendall(resp("SET", "during", "2") + resp("INCR", "n") + resp("GET", "during"))
        replies = recv_replies(s, 3)
    assert replies == ["+OK", ":1", b"2"], replies
    assert time.time() - start < 5.0
    assert cli(follower, "GET", "before") == "1"
