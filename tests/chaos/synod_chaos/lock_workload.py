"""The lock workload (issue #7): clients contend for ONE exclusive lock of the
lock backend while the nemeses kill, pause and partition nodes; some holders
die (stop their keepalives) and their sessions expire; every holder uses a
fenced resource. Checked by checker.lockcheck.

Each client thread (native protocol, JSON commands to backend "lock", through
the client's own node as the other workloads do) runs one session at a time:

  open (TTL `TTL_MS`) -> acquire (wait: queued, FIFO) -> poll status
  (LINEARIZABLE) until held -> show (its own grant, since_ms) -> 1-4 uses of
  the resource -> release -> acquire again ...

A second connection per client keeps the session alive (keepalive every TTL/3,
like the client library); the session counts as lost when the backend says it
expired, or when no keepalive succeeded for a whole TTL after it was sent
(then the holder stops using the resource, records `session_lost`, and opens a
new session). A waiter never cancels (so queue snapshots pin the FIFO order).

Dying clients: a holder decides (1 in `DYING_EVERY` grants, one at a time) to
die: it stops its keepalive thread, sends one last keepalive (its expires_ms is
the bound the checker uses), and from then on sends the lock service nothing;
it keeps "using" the resource as a zombie until TTL + lock-delay + 1 s have
passed, then forgets the session. Its writes are accepted until the next holder
writes with a higher token, then refused.

The resource: a register in the kv backend (key `lock/fence`) that holds
"<token>/<client>/<n>" of the last accepted write. A use reads it (LINEARIZABLE),
refuses itself when the stored token is higher ("stale"), else compare-and-sets
it from what it read to its own value: accept-only-if-token >= highest, atomically.

A poller thread takes snapshots of the backend's own view, LINEARIZABLE, about
10 a second each: {"op":"list"} (every session, and the lock's holders,
waiters, lock-delay, last_token and now_ms while it is held, waited for or in
its lock-delay) and {"op":"show"} (the lock, also when free). Sessions open with
lock_delay_ms `LOCK_DELAY_MS`; the nodes run with --lock-tick-ms `TICK_MS`.
"""
from __future__ import annotations

import itertools
import json
import threading
import time

from checker import lockcheck
from checker.history import Op

from .client import Client, kv_result
from .workloads import Check, Workload, register

LOCK = "chaos"
FENCE_KEY = b"lock/fence"
TTL_MS = 3000
LOCK_DELAY_MS = 1000
TICK_MS = 200
DYING_EVERY = 8


def _j(x) -> bytes:
    return json.dumps(x, separators=(",", ":")).encode()


class _Session:
    def __init__(self, sid: int, ttl_ms: int, sent: float):
        self.id = sid
        self.ttl_s = ttl_ms / 1000.0
        self.last_ok_sent = sent     # send time of the last successful command (monotonic)
        self.lost = False
        self.stop_ka = threading.Event()
        self.ka_thread: threading.Thread | None = None


class _State:
    def __init__(self):
        self.phase = "open"
        self.session: _Session | None = None
        self.wait = None          # id of the current wait ("<client>.<n>")
        self.waits = itertools.count(1)
        self.token = None
        self.uses_left = 0
        self.dying_until = 0.0
        self.releases_tried = 0
        self.writes = itertools.count(1)
        self.ka_client: Client | None = None
        self.ka_thread: threading.Thread | None = None


@register
class LockWorkload(Workload):
    name = "lock"
    backends = ("lock",)
    node_args = ("--lock-tick-ms", str(TICK_MS))

    # The lock-delay each session opens with (the checker expects LOCK_DELAY_MS;
    # test_chaos.py plants 0 here and the checker must notice).
    OPEN_LOCK_DELAY_MS = LOCK_DELAY_MS

    # TEST ONLY (test_chaos.py): False makes the resource forget to check tokens,
    # so a zombie's writes land after a newer holder's and the checker must say so.
    FENCED = True

    def __init__(self, opts):
        super().__init__(opts)
        self.states: dict[int, _State] = {}
        self.run = None
        self.dying_now = 0
        self.grants = 0
        self.poller: threading.Thread | None = None
        self.wall_offset = time.time() - time.monotonic()
        self.threads: list[threading.Thread] = []

    # ------------------------------------------------------------ history

    def _record(self, client_index, f, value, fn):
        """An op of a helper thread (keepalives, the poller): stamped and
        appended like the runner's own."""
        o = Op(client=client_index, f=f, key=LOCK, value=value)
        o.invoke = time.monotonic()
        with self.run.hist_lock:
            self.run.history.append(o)
        fn(o)
        if o.ok is not None:
            o.complete = time.monotonic()
        return o

    def _event(self, client_index, f, value):
        t = time.monotonic()
        o = Op(client=client_index, f=f, key=LOCK, value=value, ok=True, invoke=t, complete=t)
        with self.run.hist_lock:
            self.run.history.append(o)

    @staticmethod
    def _lock_write(client, payload, deadline, target):
        status, resp = client.write(_j(payload), deadline, target, backend="lock")
        if status == "error":
            raise RuntimeError(f"server refused a well-formed lock command {payload}: {resp}")
        if status == "ok" and resp.error:  # applied, the result lost in a restart
            return "unknown", None
        return status, (json.loads(resp.result) if status == "ok" else None)

    @staticmethod
    def _lock_read(client, payload, deadline, target):
        status, resp = client.read(_j(payload), deadline, target, linearizable=True, backend="lock")
        if status == "error":
            raise RuntimeError(f"server refused a lock query {payload}: {resp}")
        return status, (json.loads(resp.result) if status == "ok" else None)

    def target(self, client):
        # Every client through its own node (followers forward), the patient
        # ones round robin, as the bank does.
        if self.opts.target != "mixed":
            return self.opts.target
        return "rr" if getattr(client, "patient", False) else "home"

    # ------------------------------------------------------------ setup / threads

    def setup(self, run):
        self.run = run
        self.wall_offset = time.time() - time.monotonic()
        self.poller = threading.Thread(target=self._poll, name="chaos-lock-poller", daemon=True)
        self.poller.start()
        self.threads.append(self.poller)
        run.note(f"lock: one lock {LOCK!r}, TTL {TTL_MS} ms, lock-delay {LOCK_DELAY_MS} ms, "
                 f"ticks every {TICK_MS} ms; a dying holder in 1 of {DYING_EVERY} grants")

    def _poll(self):
        run = self.run
        c = Client(run.cluster, -2, run.admin.client_id ^ 0x4000, run.cluster.ids[0], 1.0)
        try:
            while not run.stop_clients.is_set():
                for f, q in ((lockcheck.LIST, {"op": "list"}), (lockcheck.SHOW, {"op": "show", "lock": LOCK})):
                    def do(o, q=q):
                        status, r = self._lock_read(c, q, time.monotonic() + 2, "leader")
                        o.ok = status == "ok"
                        o.result = r
                    self._record(-2, f, None, do)
                time.sleep(0.1)
        except Exception as e:  # reported with the clients' errors
            run.client_errors.append(f"lock poller: {e!r}")
        finally:
            c.close()

    def _keepalive_loop(self, client: Client, st: _State, sess: _Session):
        run = self.run
        ka = st.ka_client  # one per client (its sequence numbers go on); one thread at a time
        period = sess.ttl_s / 3
        try:
            while not run.stop_clients.is_set() and not sess.stop_ka.wait(period):
                if sess.stop_ka.is_set():
                    break
                box = {}

                def do(o):
                    sent = time.monotonic()
                    status, r = self._lock_write(ka, {"op": "keepalive", "session": sess.id},
                                                 sent + min(self.opts.op_timeout, sess.ttl_s / 2),
                                                 "home")
                    o.ok = {"ok": True, "refused": False, "unknown": None}[status]
                    o.result = r
                    box["r"], box["sent"] = r, sent
                self._record(client.index, lockcheck.KEEPALIVE, {"session": sess.id, "final": False}, do)
                r = box.get("r")
                if isinstance(r, dict) and "expires_ms" in r and "error" not in r:
                    sess.last_ok_sent = max(sess.last_ok_sent, box["sent"])
                elif isinstance(r, dict) and "error" in r:
                    self._lose(client, sess, f"keepalive: {r['error']}")
                    return
                if time.monotonic() > sess.last_ok_sent + sess.ttl_s:
                    self._lose(client, sess, "no keepalive succeeded for a TTL")
                    return
        except Exception as e:
            run.client_errors.append(f"keepalive of client {client.index}: {e!r}")
            run.stop_clients.set()

    def _lose(self, client, sess: _Session, why: str):
        if not sess.lost:
            sess.lost = True
            self._event(client.index, lockcheck.LOST, {"session": sess.id, "reason": why})

    def _end_session(self, st: _State):
        if st.session is not None:
            st.session.stop_ka.set()
        st.session = None
        st.phase = "open"
        st.token = None
        st.wait = None

    # ------------------------------------------------------------ client steps

    def generate(self, client, rng):
        st = self.states.setdefault(client.index, _State())
        s = st.session
        if s is not None and st.phase not in ("zombie", "final_keepalive"):
            valid = not s.lost and time.monotonic() < s.last_ok_sent + s.ttl_s
            if not valid:
                self._lose(client, s, "no keepalive succeeded for a TTL" if not s.lost else "lost")
                self._end_session(st)
        if st.phase == "zombie" and time.monotonic() > st.dying_until:
            with self.lock:
                self.dying_now -= 1
            self._end_session(st)
        ph = st.phase
        sid = st.session.id if st.session else None
        if ph == "open":
            return Op(client=client.index, f=lockcheck.OPEN, key=LOCK, value={"ttl_ms": TTL_MS})
        if ph == "acquire":
            return Op(client=client.index, f=lockcheck.ACQUIRE, key=LOCK,
                      value={"session": sid, "wait": st.wait})
        if ph == "waiting":
            time.sleep(0.05)
            return Op(client=client.index, f=lockcheck.STATUS, key=LOCK,
                      value={"session": sid, "wait": st.wait})
        if ph == "show":
            return Op(client=client.index, f=lockcheck.SHOW, key=LOCK,
                      value={"session": sid, "token": st.token})
        if ph in ("holding", "zombie"):
            time.sleep(rng.uniform(0.02, 0.08) if ph == "holding" else rng.uniform(0.05, 0.2))
            return Op(client=client.index, f=lockcheck.FENCE, key=LOCK,
                      value={"session": sid, "token": st.token,
                             "val": f"{st.token}/{client.index}/{next(st.writes)}", "prev": None})
        if ph == "final_keepalive":
            return Op(client=client.index, f=lockcheck.KEEPALIVE, key=LOCK,
                      value={"session": sid, "final": True})
        if ph == "release":
            return Op(client=client.index, f=lockcheck.RELEASE, key=LOCK,
                      value={"session": sid, "token": st.token})
        raise AssertionError(ph)

    def execute(self, client, op, deadline):
        st = self.states[client.index]
        rng_think = (hash((client.index, op.invoke)) % 300) / 1000.0
        f = op.f
        if f == lockcheck.OPEN:
            status, r = self._lock_write(client, {"op": "open", "ttl_ms": TTL_MS,
                                                  "lock_delay_ms": self.OPEN_LOCK_DELAY_MS},
                                         deadline, self.target(client))
            op.ok, op.result = self._outcome(status, r)
            if op.ok and "session" in r:
                sess = _Session(r["session"], TTL_MS, op.invoke)
                if st.ka_thread is not None:  # the previous session's: told to stop
                    st.ka_thread.join(self.opts.op_timeout + 2)
                if st.ka_client is None:
                    st.ka_client = Client(client.cluster, client.index, client.client_id ^ 0x8000,
                                          client.home, 1.0)
                st.session = sess
                st.phase = "acquire"
                st.wait = f"{client.index}.{next(st.waits)}"
                sess.ka_thread = threading.Thread(target=self._keepalive_loop, args=(client, st, sess),
                                                  name=f"chaos-lock-ka-{client.index}", daemon=True)
                sess.ka_thread.start()
                st.ka_thread = sess.ka_thread
                self.threads.append(sess.ka_thread)
            return
        sess = st.session
        if f == lockcheck.ACQUIRE:
            status, r = self._lock_write(client, {"op": "acquire", "session": sess.id, "lock": LOCK,
                                                  "mode": "exclusive", "wait": True},
                                         deadline, self.target(client))
            op.ok, op.result = self._outcome(status, r)
            if op.ok is not True:
                return  # ask again (idempotent)
            if r.get("granted"):
                self._granted(st, r["token"])
            elif r.get("waiting"):
                st.phase = "waiting"
            else:  # the session is gone
                self._lose(client, sess, f"acquire: {r.get('error', r)}")
                self._end_session(st)
            return
        if f == lockcheck.STATUS:
            status, r = self._lock_read(client, {"op": "status", "session": sess.id, "lock": LOCK},
                                        deadline, self.target(client))
            op.ok, op.result = (True, r) if status == "ok" else (False, None)
            if status != "ok":
                return
            if r.get("held"):
                self._granted(st, r["token"])
            elif "error" in r:
                self._lose(client, sess, f"status: {r['error']}")
                self._end_session(st)
            elif not r.get("waiting"):
                st.phase = "acquire"  # not queued (should not happen): ask again
            return
        if f == lockcheck.SHOW:
            status, r = self._lock_read(client, {"op": "show", "lock": LOCK}, deadline,
                                        self.target(client))
            op.ok, op.result = (True, r) if status == "ok" else (False, None)
            with self.lock:
                self.grants += 1
                die = self.dying_now == 0 and self.grants % DYING_EVERY == DYING_EVERY // 2
                if die:
                    self.dying_now += 1
            if die:
                sess.stop_ka.set()  # the keepalive thread stops...
                if sess.ka_thread is not None:
                    sess.ka_thread.join(self.opts.op_timeout + 2)  # ...and sends nothing more
                st.phase = "final_keepalive"
            else:
                st.phase = "holding"
            return
        if f == lockcheck.KEEPALIVE:  # the final one of a dying client
            status, r = self._lock_write(client, {"op": "keepalive", "session": sess.id},
                                         deadline, self.target(client))
            op.ok, op.result = self._outcome(status, r)
            st.phase = "zombie"
            st.dying_until = time.monotonic() + sess.ttl_s + LOCK_DELAY_MS / 1000.0 + 1.0
            return
        if f == lockcheck.FENCE:
            self._use(client, op, deadline)
            if st.phase == "holding":
                st.uses_left -= 1
                if st.uses_left <= 0:
                    st.phase = "release"
                    st.releases_tried = 0
            return
        if f == lockcheck.RELEASE:
            st.releases_tried += 1
            status, r = self._lock_write(client, {"op": "release", "session": sess.id, "lock": LOCK},
                                         deadline, self.target(client))
            op.ok, op.result = self._outcome(status, r)
            if op.ok is True and r.get("released") or (op.ok is True and r.get("error") == "not held"
                                                       and st.releases_tried > 1):
                st.phase = "acquire"
                st.token = None
                st.wait = f"{client.index}.{next(st.waits)}"
                time.sleep(rng_think)
            elif op.ok is True and "error" in r:
                # Gone (expired), or "not held" at the first try: the session
                # lost the lock behind our back (it expired meanwhile).
                self._lose(client, sess, f"release: {r['error']}")
                self._end_session(st)
            elif st.releases_tried >= 4:
                self._lose(client, sess, "release never answered")
                self._end_session(st)
            return
        raise AssertionError(f)

    @staticmethod
    def _outcome(status, r):
        return {"ok": True, "refused": False, "unknown": None}[status], r

    def _granted(self, st: _State, token):
        st.token = token
        st.phase = "show"
        st.uses_left = 1 + (token % 4)

    def _use(self, client, op, deadline):
        """One use of the fenced register: read it, refuse a stale token, else
        compare-and-set from what was read."""
        kv = client.kv
        v = op.value
        status, resp = client.read(kv.KvCommand(op=kv.KvCommand.GET, key=FENCE_KEY).SerializeToString(),
                                   deadline, self.target(client))
        if status == "error":
            raise RuntimeError(f"server refused a fence read: {resp}")
        if status != "ok":
            op.ok, op.result = False, "read failed"
            return
        r = kv_result(resp)
        prev = r.value.decode() if r.found else None
        v["prev"] = prev
        if self.FENCED and prev is not None and int(prev.split("/", 1)[0]) > v["token"]:
            op.ok, op.result = False, "stale"
            return
        cmd = kv.KvCommand(op=kv.KvCommand.CAS, key=FENCE_KEY, value=v["val"].encode())
        if prev is None:
            cmd.expect_absent = True
        else:
            cmd.expected = prev.encode()
        status, resp = client.write(cmd.SerializeToString(), deadline, self.target(client))
        if status == "error":
            raise RuntimeError(f"server refused a fence write: {resp}")
        if status == "unknown" or (status == "ok" and resp.error):
            op.ok = None
            return
        if status == "refused":
            op.ok, op.result = False, "refused"
            return
        rr = kv_result(resp)
        if rr.code == kv.KvResult.CAS_FAILED:
            op.ok, op.result = False, "cas_failed"
            return
        op.ok = True

    # ------------------------------------------------------------ end

    def params(self) -> dict:
        skew = "skew" in getattr(self.run.cfg, "nemeses", []) if self.run else False
        # The nodes' clocks are this machine's (log time = the leader's wall clock);
        # under the skew nemesis a node runs at x0.95-1.05 from its (re)start.
        slack = 300 + (int(0.06 * (self.opts.duration + 60) * 1000) if skew else 0)
        # t0: the saved history's times are relative to the run's start (runner._save).
        return {"ttl_ms": TTL_MS, "lock_delay_ms": LOCK_DELAY_MS, "slack_ms": slack,
                "wall_offset": self.wall_offset, "t0": self.run.t0 if self.run else 0.0}

    def final(self, run):
        """The register's last value and the backend's list, after healing (saved
        in final.json with the checker's parameters: `python3 -m checker.lockcheck
        history.jsonl final.json` checks a saved run again)."""
        out = {"fence": "missing", "list": None, "params": self.params()}
        kv = run.kv
        status, resp = run.admin.read(kv.KvCommand(op=kv.KvCommand.GET, key=FENCE_KEY).SerializeToString(),
                                      time.monotonic() + 15, "leader")
        if status == "ok":
            r = kv_result(resp)
            out["fence"] = r.value.decode() if r.found else None
        else:
            run.result.problems.append(f"lock: the final read of the fence failed: {status}")
        status, r = self._lock_read(run.admin, {"op": "list"}, time.monotonic() + 15, "leader")
        out["list"] = r if status == "ok" else None
        return out

    def check(self, ops, final):
        t = time.monotonic()
        for th in self.threads:  # the runner stopped the clients; ours watch the same flag
            th.join(self.opts.op_timeout + 3)
        for st in self.states.values():
            if st.ka_client is not None:
                st.ka_client.close()
        final = dict(final or {})
        final.setdefault("params", self.params())
        if "fence" not in final:
            final["fence"] = "missing"
        res = lockcheck.check(ops, final, lock=LOCK)
        return Check(res.outcome, res.explanation, list(res.bad_ops), time.monotonic() - t, res,
                     summary=res.summary())
