"""The lock service's client side on three real nodes (issue #7): synodctl lock
acquire/release/show/list, `-- COMMAND` like flock(1), fencing tokens that
only go up, a killed holder released after its TTL plus the lock-delay and not
before, a paused holder told that its session was lost, and the C API."""
import json
import os
import signal
import subprocess
import time

import pytest

from synod_harness import Cluster

LOCK_DELAY_MS = 2000


@pytest.fixture
def lc():
    c = Cluster(3, extra_args=["--backend", "lock"])
    c.start()
    yield c
    c.stop()


def ctl_cmd(cluster, *args):
    return [os.environ["SYNODCTL_BIN"], "--cluster", cluster.addrs, *args]


def show(cluster, name):
    r = cluster.ctl("--json", "lock", "show", name, "--consistency", "linearizable")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def wait_until(what, timeout=15.0, every=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = what()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"not within {timeout}s")


def test_contenders_run_one_after_the_other_with_increasing_tokens(lc, tmp_path):
    log = tmp_path / "log"
    script = (f'echo "start $SYNOD_LOCK_TOKEN" >> {log}; sleep 0.7; '
              f'echo "end $SYNOD_LOCK_TOKEN" >> {log}; exit $CODE')
    procs = []
    for i in range(3):
        env = dict(os.environ, CODE=str(10 + i))
        procs.append(subprocess.Popen(
            ctl_cmd(lc, "lock", "acquire", "res", "--ttl", "5s", "--", "sh", "-c", script),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    # While one holds it, the others wait in the queue.
    info = wait_until(lambda: (lambda s: s if s["holders"] and s["waiters"] else None)(
        show(lc, "res")))
    assert len(info["holders"]) == 1 and info["holders"][0]["mode"] == "exclusive"
    codes = sorted(p.wait(timeout=60) for p in procs)
    for p in procs:
        assert p.stderr.read() == ""
    # Each exits with its command's exit code.
    assert codes == [10, 11, 12]
    lines = log.read_text().split()
    events = list(zip(lines[0::2], lines[1::2]))
    assert [e for e, _ in events] == ["start", "end"] * 3, events
    tokens = [int(t) for _, t in events]
    for k in range(3):  # never overlapping: each start is followed by its own end
        assert tokens[2 * k] == tokens[2 * k + 1]
    assert tokens[0] < tokens[2] < tokens[4], tokens
    info = show(lc, "res")
    assert info["holders"] == [] and info["waiters"] == []
    assert info["last_token"] == tokens[4]


def test_show_list_try_wait_release_and_signals(lc):
    holder = subprocess.Popen(ctl_cmd(lc, "lock", "acquire", "db", "--ttl", "3s"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    token = int(holder.stdout.readline())
    info = show(lc, "db")
    assert [h["token"] for h in info["holders"]] == [token]
    session = info["holders"][0]["session"]
    r = lc.ctl("lock", "show", "db")
    assert r.returncode == 0, r.stderr
    assert "state       held\n" in r.stdout
    assert f"session {session}  token {token}  exclusive  since " in r.stdout
    assert f"last token  {token}\n" in r.stdout
    r = lc.ctl("lock", "list")
    assert r.returncode == 0, r.stderr
    assert f"db    held   {session}        0        {token}\n" in r.stdout, r.stdout
    assert f"\n{session}        3.0s" in r.stdout, r.stdout
    listing = json.loads(lc.ctl("--json", "lock", "list").stdout)
    assert [s["session"] for s in listing["sessions"]] == [session]

    # Held for longer than its TTL: the session is kept alive.
    time.sleep(4)
    assert [h["session"] for h in show(lc, "db")["holders"]] == [session]

    # A try fails at once (exit 1) naming the holder; a bounded wait runs out.
    r = lc.ctl("lock", "acquire", "db", "--wait", "0")
    assert r.returncode == 1 and f"held by session {session}" in r.stderr, r
    r = lc.ctl("--json", "lock", "acquire", "db", "--wait", "0")
    assert r.returncode == 1 and json.loads(r.stdout)["holder_session"] == session
    start = time.time()
    r = lc.ctl("lock", "acquire", "db", "--wait", "1s")
    assert r.returncode == 1 and "not granted within 1000 ms" in r.stderr, r
    assert 1.0 <= time.time() - start < 6
    # The cancelled wait left the queue.
    assert show(lc, "db")["waiters"] == []

    # A shared request queues behind the exclusive holder.
    reader = subprocess.Popen(ctl_cmd(lc, "lock", "acquire", "db", "--shared", "--", "true"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: show(lc, "db")["waiters"])
    assert show(lc, "db")["waiters"][0]["mode"] == "shared"

    # SIGTERM: the holder releases and exits 0; the reader gets it next.
    holder.send_signal(signal.SIGTERM)
    assert holder.wait(timeout=15) == 0
    assert reader.wait(timeout=15) == 0, reader.stderr.read()
    info = show(lc, "db")
    assert info["holders"] == [] and info["last_token"] > token

    # A signal to synodctl reaches its command; the command's exit code is synodctl's.
    runner = subprocess.Popen(
        ctl_cmd(lc, "lock", "acquire", "db", "--", "sh", "-c",
                'trap "exit 7" HUP; while true; do sleep 0.1; done'),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: show(lc, "db")["holders"])
    time.sleep(0.3)  # the command has set its trap
    runner.send_signal(signal.SIGHUP)
    assert runner.wait(timeout=15) == 7, runner.stderr.read()
    assert show(lc, "db")["holders"] == []

    # Releasing a lock nobody holds, or for a session that does not hold it.
    r = lc.ctl("lock", "release", "db")
    assert r.returncode == 1 and "not held" in r.stderr, r
    r = lc.ctl("lock", "release", "db", "--session", str(session))
    assert r.returncode == 1, r


def test_release_breaks_the_lock_of_a_holder_elsewhere(lc):
    holder = subprocess.Popen(ctl_cmd(lc, "lock", "acquire", "jobs"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    token = int(holder.stdout.readline())
    session = show(lc, "jobs")["holders"][0]["session"]
    r = lc.ctl("lock", "release", "jobs")  # its only holder, whoever it is
    assert r.returncode == 0 and r.stdout == "OK\n", r
    assert show(lc, "jobs")["holders"] == []
    # The next grant's token is newer, and a check says the old one is stale.
    r = lc.ctl("lock", "acquire", "jobs", "--wait", "5s", "--", "sh", "-c",
               'echo "$SYNOD_LOCK_TOKEN"')
    assert r.returncode == 0, r
    assert int(r.stdout) > token
    holder.send_signal(signal.SIGINT)
    # Its own release finds nothing to release: it says so, and still exits 0.
    assert holder.wait(timeout=15) == 0
    assert "not held" in holder.stderr.read()
    r = lc.ctl("lock", "release", "jobs", "--session", str(session))
    assert r.returncode == 1 and "closed" in r.stderr, r  # a closed session holds nothing
    # stdin mode: one line per command on stdout, whatever the outcome.
    r = lc.ctl("-", stdin="lock show jobs\nlock release jobs\nlock list\nlock acquire jobs\n")
    assert r.stderr == "" and r.returncode == 2, r
    lines = r.stdout.splitlines()
    assert len(lines) == 4, lines
    assert json.loads(lines[0])["lock"] == "jobs" and "not held" in lines[1]
    assert "locks" in json.loads(lines[2]) and "stdin mode" in lines[3]


def test_a_killed_holder_is_released_after_ttl_plus_lock_delay_not_before(lc):
    ttl_ms = 3000
    holder = subprocess.Popen(
        ctl_cmd(lc, "lock", "acquire", "batch", "--ttl", f"{ttl_ms}ms",
                "--lock-delay", f"{LOCK_DELAY_MS}ms", "--", "sleep", "60"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    info = wait_until(lambda: (lambda s: s if s["holders"] else None)(show(lc, "batch")))
    old = info["holders"][0]
    time.sleep(1.2)  # some keep-alives
    killed = time.time()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    out = {}

    def contend():
        p = subprocess.run(
            ctl_cmd(lc, "lock", "acquire", "batch", "--wait", "30s", "--", "sh", "-c",
                    'echo "$SYNOD_LOCK_TOKEN"'),
            capture_output=True, text=True, timeout=60)
        out["granted"] = time.time()
        out["r"] = p

    import threading
    t = threading.Thread(target=contend)
    t.start()
    # Its last keep-alive was at most TTL/3 before the kill: until TTL*2/3 plus
    # the lock-delay after the kill, nobody else may have it.
    not_before = killed + (ttl_ms * 2 / 3 + LOCK_DELAY_MS) / 1000
    while time.time() < not_before - 0.3:
        info = show(lc, "batch")
        assert [h["session"] for h in info["holders"]] in ([old["session"]], []), info
        time.sleep(0.1)
    t.join(timeout=60)
    r = out["r"]
    assert r.returncode == 0, r
    assert out["granted"] >= not_before - 0.1
    assert out["granted"] <= killed + (ttl_ms + LOCK_DELAY_MS) / 1000 + 5
    assert int(r.stdout) > old["token"]
    # The log says so too: the new grant came after the expiry plus the delay.
    assert show(lc, "batch")["unavailable_until_ms"] >= old["since_ms"] + ttl_ms + LOCK_DELAY_MS


def test_a_paused_holder_learns_its_session_was_lost_and_stops_its_command(lc, tmp_path):
    marker = tmp_path / "term"
    script = f'trap "echo term > {marker}; exit 0" TERM; while true; do sleep 0.1; done'
    holder = subprocess.Popen(
        ctl_cmd(lc, "lock", "acquire", "p", "--ttl", "1s", "--", "sh", "-c", script),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: show(lc, "p")["holders"])
    os.kill(holder.pid, signal.SIGSTOP)  # synodctl only: its command runs on
    time.sleep(2.5)
    # Someone else takes it meanwhile (after the expiry and the lock-delay).
    r = lc.ctl("lock", "acquire", "p", "--wait", "10s", "--", "true")
    assert r.returncode == 0, r
    os.kill(holder.pid, signal.SIGCONT)
    assert holder.wait(timeout=15) == 2
    assert "lost" in holder.stderr.read()
    assert marker.read_text().strip() == "term"


def test_c_api_locks(lc):
    binary = os.environ.get("SYNOD_C_API_TEST")
    if not binary:
        pytest.skip("C API test binary not built")
    env = dict(os.environ, SYNOD_TEST_CLUSTER=lc.addrs, SYNOD_TEST_LOCKS="1")
    r = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_cpp_lock_session_and_guard(lc):
    binary = os.environ.get("SYNOD_LOCK_CLIENT_TEST")
    if not binary:
        pytest.skip("lock_client_test not built")
    env = dict(os.environ, SYNOD_TEST_CLUSTER=lc.addrs,
               SYNOD_TEST_PIDS=",".join(f"{n.addr}={n.proc.pid}" for n in lc.nodes))
    r = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SKIPPED" not in r.stdout, r.stdout


def test_holder_and_waiter_ride_out_a_leader_crash(lc, tmp_path):
    log = tmp_path / "log"
    hold = (f'echo "start $SYNOD_LOCK_TOKEN" >> {log}; sleep 4; '
            f'echo "end $SYNOD_LOCK_TOKEN" >> {log}')
    holder = subprocess.Popen(
        ctl_cmd(lc, "lock", "acquire", "ha", "--ttl", "6s", "--", "sh", "-c", hold),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    info = wait_until(lambda: (lambda s: s if s["holders"] else None)(show(lc, "ha")))
    token = info["holders"][0]["token"]
    waiter = subprocess.Popen(
        ctl_cmd(lc, "lock", "acquire", "ha", "--ttl", "6s", "--", "sh", "-c", hold),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: show(lc, "ha")["waiters"])
    leader = lc.wait_for_leader()
    leader.kill9()
    lc.wait_for_leader(among=lc.followers(leader))
    # The holder keeps its lock (same token) through the failover...
    assert [h["token"] for h in show(lc, "ha")["holders"]] == [token]
    leader.start()
    # ...and both finish in turn, each with its own command's exit code.
    assert holder.wait(timeout=60) == 0, holder.stderr.read()
    assert waiter.wait(timeout=60) == 0, waiter.stderr.read()
    lines = log.read_text().split()
    assert lines[0::2] == ["start", "end", "start", "end"], lines
    assert int(lines[1]) == int(lines[3]) == token < int(lines[5]) == int(lines[7])


def test_lock_bench_runs_and_reports(lc):
    """The lock benchmark program works (a run, not a measurement)."""
    binary = os.environ.get("SYNOD_LOCK_BENCH")
    if not binary:
        pytest.skip("lock_bench not built")
    for mode in ("own", "one"):
        r = subprocess.run([binary, "--cluster", lc.addrs, "--clients", "2", "--duration", "0.5",
                            "--mode", mode], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "acquire+release per second" in r.stdout and "failures" not in r.stdout, r.stdout
