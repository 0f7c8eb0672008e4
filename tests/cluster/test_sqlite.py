"""The SQLite backend on three real nodes (issue #6, first part): statements go
through the log from any node and every node's own database ends the same."""
import json
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
    # A write is refused as a query, and a refused statement is an error result.
    q = ok_result(sql_read(conns[0], ["DELETE FROM t"]))
    assert "not a read" in q["results"][0]["error"]
    res = ok_result(sql_write(conns[0], ["PRAGMA journal_mode=DELETE"]))
    assert "PRAGMA" in res["results"][0]["error"]


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
