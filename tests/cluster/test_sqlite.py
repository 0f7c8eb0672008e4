"""The SQLite backend on three real nodes (issue #6, first part): statements go
through the log from any node and every node's own database ends the same."""
import json
import os
import time

import pytest

from synod_harness import Cluster, Conn, protos


def sql_write(conn, statements, timeout_ms=5000):
    def fill(req):
        req.write.backend = "sqlite"
        req.write.payload = json.dumps(statements).encode()
    return conn.request(fill, timeout_ms)


def sql_read(conn, statements, consistency=0):
    def fill(req):
        req.read.backend = "sqlite"
        req.read.payload = json.dumps(statements).encode()
        req.read.consistency = consistency
    return conn.request(fill)


@pytest.fixture
def sc():
    c = Cluster(3, extra_args=["--backend", "sqlite"])
    c.start()
    yield c
    c.stop()


def ok_result(r):
    pb, _ = protos()
    assert r.code == pb.ClientResponse.OK, (r.code, r.error)
    return json.loads(r.result)


def test_writes_from_every_node_end_identical_everywhere(sc):
    pb, _ = protos()
    leader = sc.wait_for_leader()
    conns = [Conn(n.port) for n in sc.nodes]
    res = ok_result(sql_write(conns[0], [
        "CREATE TABLE t (id INTEGER PRIMARY KEY, node INTEGER, n INTEGER, r INTEGER, "
        "at TEXT DEFAULT CURRENT_TIMESTAMP)"]))
    assert "error" not in res["results"][0], res
    # Writes through every node (followers forward), with random() and the
    # current time in them: every node must still store the same rows.
    for i in range(30):
        c = conns[i % 3]
        res = ok_result(sql_write(c, [["INSERT INTO t(node, n, r) VALUES(?, ?, random())",
                                       i % 3 + 1, i]]))
        assert res["results"][0]["rows_affected"] == 1, res
    # A failing command is rolled back on every node, and says so.
    res = ok_result(sql_write(conns[1], ["INSERT INTO t(node, n) VALUES(9, 999)",
                                         "INSERT INTO nope VALUES(1)"]))
    assert res.get("rolled_back") is True and "no such table" in res["results"][1]["error"]
    slot = leader.status().commit
    dumps = []
    for n, c in zip(sc.nodes, conns):
        sc.wait_applied(n, slot)
        q = ok_result(sql_read(c, ["SELECT id, node, n, r, at FROM t ORDER BY id"]))
        dumps.append(q["results"][0]["values"])
    assert len(dumps[0]) == 30
    assert dumps[0] == dumps[1] == dumps[2]
    # Linearizable read through a follower.
    follower = sc.followers(leader)[0]
    q = ok_result(sql_read(Conn(follower.port), ["SELECT count(*) FROM t"],
                           consistency=pb.LINEARIZABLE))
    assert q["results"][0]["values"] == [[30]]
    # A write is refused as a query; a refused statement never enters the log.
    q = ok_result(sql_read(conns[0], ["DELETE FROM t"]))
    assert "not a read" in q["results"][0]["error"]
    r = sql_write(conns[0], ["PRAGMA journal_mode=DELETE"])
    assert r.code == pb.ClientResponse.BAD_REQUEST and "PRAGMA" in r.error, (r.code, r.error)


def test_a_killed_node_restarts_and_converges_with_no_command_applied_twice(sc):
    leader = sc.wait_for_leader()
    follower = sc.followers(leader)[0]
    c = Conn(leader.port)
    ok_result(sql_write(c, ["CREATE TABLE c (k INTEGER PRIMARY KEY, v INTEGER)",
                            "INSERT INTO c VALUES(1, 0)"]))
    for i in range(20):
        ok_result(sql_write(c, ["UPDATE c SET v = v + 1 WHERE k = 1"]))
        if i == 7:
            follower.kill9()
    follower.start()
    slot = leader.status().commit
    sc.wait_applied(follower, slot, timeout=20)
    q = ok_result(sql_read(Conn(follower.port), ["SELECT v FROM c"]))
    assert q["results"][0]["values"] == [[20]]  # every increment exactly once


def test_synodctl_sql_exec_and_query(sc):
    leader = sc.wait_for_leader()
    follower = sc.followers(leader)[0]
    r = sc.ctl("sql", "exec", "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, age INT)")
    assert r.returncode == 0, r.stderr
    r = sc.ctl("sql", "exec", "INSERT INTO people(name, age) VALUES(?, ?)", "fiona", "42",
               cluster=follower.addr)
    assert r.returncode == 0 and r.stdout.strip() == "1 row(s) affected, last insert id 1", \
        (r.stdout, r.stderr)
    r = sc.ctl("sql", "query", "SELECT name, age FROM people", "--consistency", "linearizable")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["name  | age", "fiona | 42", "(1 row)"], r.stdout
    r = sc.ctl("sql", "query", "SELECT name FROM people WHERE age > ?", "40", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["result"]["results"][0]["values"] == [["fiona"]]
    # An SQL error exits 1 and says what went wrong; nothing changed.
    r = sc.ctl("sql", "exec", "INSERT INTO nowhere VALUES(1)")
    assert r.returncode == 1 and "no such table: nowhere" in r.stderr, (r.returncode, r.stderr)
    r = sc.ctl("sql", "query", "DELETE FROM people")
    assert r.returncode == 1 and "not a read" in r.stderr


def test_sql_checksum_compares_every_node_at_one_position_and_names_a_diverged_one(sc):
    import sqlite3
    leader = sc.wait_for_leader()
    r = sc.ctl("sql", "exec", "CREATE TABLE acct (id INTEGER PRIMARY KEY, balance INTEGER)")
    assert r.returncode == 0, r.stderr
    for i in range(5):
        assert sc.ctl("sql", "exec", "INSERT INTO acct(balance) VALUES(?)", str(100 + i)).returncode == 0
    r = sc.ctl("sql", "checksum")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "all 3 nodes identical" in r.stdout, r.stdout
    sums = {line.split()[-1] for line in r.stdout.splitlines() if line.startswith("node ")}
    assert len(sums) == 1 and len(sums.pop()) == 64
    # Change one follower's database behind Synod's back: the next checksum names it.
    bad = sc.followers(leader)[0]
    db = sqlite3.connect(os.path.join(bad.data_dir, "backends", "sqlite", "db.sqlite"))
    db.execute("UPDATE acct SET balance = balance + 1 WHERE id = 3")
    db.commit()
    db.close()
    r = sc.ctl("sql", "checksum")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert f"DIVERGED: node {bad.id} (127.0.0.1:{bad.port})" in r.stderr, r.stderr
    r = sc.ctl("sql", "checksum", "--json")
    j = json.loads(r.stdout)
    assert j["consistent"] is False
    assert [n["id"] for n in j["nodes"] if n["differs"]] == [bad.id]


def test_sql_shell_runs_statements_to_their_semicolon(sc):
    sc.wait_for_leader()
    script = "\n".join([
        ".help",
        "CREATE TABLE notes (id INTEGER PRIMARY KEY,",
        "                    body TEXT);",
        "INSERT INTO notes(body) VALUES ('one; two');",
        "INSERT INTO notes(body) VALUES ('three');",
        ".consistency linearizable",
        "SELECT id, body",
        "  FROM notes ORDER BY id;",
        "SELECT * FROM missing;",
        ".checksum",
        ".quit",
        "SELECT 'never runs';",
    ]) + "\n"
    r = sc.ctl("sql", "shell", stdin=script)
    out = r.stdout
    assert ".consistency [local|linearizable]" in out
    assert "1 row(s) affected, last insert id 1" in out
    assert "1 row(s) affected, last insert id 2" in out
    assert "id | body\n1  | one; two\n2  | three\n(2 rows)" in out, out
    assert "no such table: missing" in r.stderr
    assert "all 3 nodes identical" in out
    assert "never runs" not in out
    assert r.returncode == 1  # the failed SELECT
    # A statement left without its ';' is not run, and says so.
    r = sc.ctl("sql", "shell", stdin="INSERT INTO notes(body) VALUES ('four')\n")
    assert r.returncode == 2 and "no ';'" in r.stderr
    r = sc.ctl("sql", "query", "SELECT count(*) FROM notes")
    assert r.stdout.splitlines()[1] == "2"


# ---------------------------------------------------------------- the HTTP API

import urllib.error  # noqa: E402
import urllib.request  # noqa: E402

from synod_harness import free_port  # noqa: E402


def http(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture
def hc():
    c = Cluster(3, extra_args=["--backend", "sqlite"])
    for n in c.nodes:
        n.http_port = free_port()
        n.start(extra=["--http-listen", f"127.0.0.1:{n.http_port}"])
    c.wait_for_leader()
    deadline = time.time() + 10
    for n in c.nodes:
        while time.time() < deadline:
            try:
                http(n.http_port, "GET", "/db/query?q=SELECT%201&level=none")
                break
            except OSError:
                time.sleep(0.05)
    yield c
    c.stop()


def test_rqlite_http_api_as_its_documentation_says(hc):
    leader = hc.wait_for_leader()
    follower = hc.followers(leader)[0]
    fp = follower.http_port
    # Execute through a follower: forwarded to the leader, replicated everywhere.
    status, r = http(fp, "POST", "/db/execute?transaction",
                     ["CREATE TABLE foo (id INTEGER NOT NULL PRIMARY KEY, name TEXT, age INTEGER)",
                      ["INSERT INTO foo(name, age) VALUES(?, ?)", "fiona", 20],
                      ["INSERT INTO foo(name, age) VALUES(:name, :age)", {"name": "declan", "age": 30}]])
    assert status == 200, r
    assert r["results"][1] == {"last_insert_id": 1, "rows_affected": 1}
    assert r["results"][2] == {"last_insert_id": 2, "rows_affected": 1}
    # Without ?transaction each statement stands alone (rqlite's default).
    status, r = http(fp, "POST", "/db/execute?timings",
                     ["INSERT INTO nope VALUES(1)", "INSERT INTO foo(name) VALUES('eve')"])
    assert status == 200 and "no such table" in r["results"][0]["error"], r
    assert r["results"][1]["rows_affected"] == 1 and r["time"] >= 0
    # Queries: GET with q=, POST with statements, levels, associative.
    status, r = http(fp, "GET", "/db/query?q=SELECT%20name%2C%20age%20FROM%20foo%20ORDER%20BY%20id"
                                "&level=linearizable")
    assert status == 200, r
    assert r["results"][0]["columns"] == ["name", "age"]
    assert r["results"][0]["types"] == ["text", "integer"]
    assert r["results"][0]["values"] == [["fiona", 20], ["declan", 30], ["eve", None]]
    status, r = http(leader.http_port, "POST", "/db/query?associative",
                     [["SELECT name FROM foo WHERE age > ?", 25]])
    assert r["results"][0]["rows"] == [{"name": "declan"}] and r["results"][0]["types"] == {
        "name": "text"}
    slot = leader.status().commit
    for n in hc.nodes:
        hc.wait_applied(n, slot)
        status, r = http(n.http_port, "GET", "/db/query?q=SELECT%20count(*)%20FROM%20foo&level=none")
        assert r["results"][0]["values"] == [[3]], (n.id, r)
    # Errors, rqlite-style.
    assert http(fp, "GET", "/db/execute")[0] == 405
    assert http(fp, "POST", "/db/execute", "not an array")[0] == 400
    status, r = http(fp, "GET", "/db/query?q=DELETE%20FROM%20foo")
    assert status == 200 and "not a read" in r["results"][0]["error"]
    status, r = http(fp, "GET", "/nothing")
    assert status == 404 and "error" in r
    assert http(fp, "GET", "/db/query?q=SELECT%201&level=none&freshness=1s")[0] == 200
    assert http(fp, "GET", "/db/query?q=SELECT%201&level=none&freshness=soon")[0] == 400


def http_text(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_http_status_nodes_readyz_and_freshness(hc):
    import signal
    leader = hc.wait_for_leader()
    follower, other = hc.followers(leader)
    status, r = http(follower.http_port, "GET", "/status")
    assert status == 200, r
    assert r["node"]["id"] == follower.id and r["node"]["role"] == "follower"
    assert r["node"]["leader"] == leader.id and 0 <= r["node"]["leader_contact_ms"] < 5000
    assert r["node"]["backends"] == ["kv", "sqlite"] or "sqlite" in r["node"]["backends"]
    status, r = http(leader.http_port, "GET", "/nodes")
    assert status == 200 and sorted(r) == ["1", "2", "3"], r
    assert r[str(leader.id)]["leader"] is True and r[str(follower.id)]["leader"] is False
    assert all(n["reachable"] for n in r.values()), r
    assert http_text(follower.http_port, "/readyz") == (200, "[+]node ok\n[+]leader ok\n[+]store ok\n")
    assert http(follower.http_port, "POST", "/status", [])[0] == 405
    # Freshness: with the two other nodes paused, the follower stops hearing
    # from a leader; a bounded local read is refused as stale, an unbounded
    # one is still served, and /readyz stays ready only with ?noleader.
    leader.proc.send_signal(signal.SIGSTOP)
    other.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(1.0)
        q = "/db/query?q=SELECT%201&level=none"
        status, r = http(follower.http_port, "GET", q + "&freshness=300ms")
        assert status == 503 and "stale read" in r["error"], (status, r)
        status, r = http(follower.http_port, "GET", q)
        assert status == 200 and r["results"][0]["values"] == [[1]], r
        deadline = time.time() + 10
        while time.time() < deadline:  # the follower gives up on the old leader
            status, text = http_text(follower.http_port, "/readyz")
            if status == 503:
                break
            time.sleep(0.2)
        assert status == 503 and "[-]leader not ok" in text, text
        assert http_text(follower.http_port, "/readyz?noleader")[0] == 200
    finally:
        leader.proc.send_signal(signal.SIGCONT)
        other.proc.send_signal(signal.SIGCONT)
    hc.wait_for_leader()
    deadline = time.time() + 10
    while time.time() < deadline:
        status, r = http(follower.http_port, "GET", "/db/query?q=SELECT%201&level=none&freshness=2s")
        if status == 200:
            break
        time.sleep(0.1)
    assert status == 200, r
