"""A chaos client: one thread, one operation at a time, the raw framed protocol.

Writes carry (client_id, sequence) and are retried with the same pair on
NOT_LEADER / UNAVAILABLE / TIMEOUT / a lost connection until the operation's
deadline. The outcome is classified for the history:

  "ok"       an attempt returned OK (the response is returned too);
  "refused"  every attempt was refused before the command could enter the log
             (NOT_LEADER, UNAVAILABLE, a connect that failed): definitely not applied;
  "unknown"  some attempt may have reached a leader (TIMEOUT, the connection
             broke after the request was sent) and none returned OK;
  "error"    BAD_REQUEST / BACKEND_ERROR: a harness or server bug, reported.

Reads are retried the same way (no sequence: a read has no effect, so a read
that never returned OK is simply "failed").

Where an attempt goes (`target`):
  "leader"  the node the last NOT_LEADER named, else the client's home node;
  "home"    the home node (a follower forwards), other nodes only when it fails;
  "rr"      round robin over all nodes, one step per attempt (patient clients).
"""
from __future__ import annotations

import socket
import time

from synod_harness import Conn, protos


class Client:
    def __init__(self, cluster, index: int, client_id: int, home: int,
                 attempt_timeout_s: float = 1.0):
        self.cluster = cluster
        self.index = index
        self.client_id = client_id
        self.home = home
        self.leader_guess: int | None = None
        self.attempt_timeout_s = attempt_timeout_s
        self.conns: dict[int, Conn] = {}
        self.sequence = 0
        self.rr = index
        self.patient = False  # set by the runner: long attempts, round robin
        self.pb, self.kv = protos()

    # ------------------------------------------------------------ connections

    def _conn(self, node_id: int) -> Conn:
        c = self.conns.get(node_id)
        if c is None:
            node = self.cluster.node(node_id)
            c = Conn(node.port, self.cluster.name, timeout=self.attempt_timeout_s)
            self.conns[node_id] = c
        return c

    def _drop(self, node_id: int):
        c = self.conns.pop(node_id, None)
        if c is not None:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        for nid in list(self.conns):
            self._drop(nid)

    def _pick(self, target: str) -> int:
        ids = self.cluster.ids
        if target == "rr":
            self.rr += 1
            return ids[self.rr % len(ids)]
        if target == "leader" and self.leader_guess is not None:
            return self.leader_guess
        return self.home

    def _next(self, node_id: int) -> int:
        ids = self.cluster.ids
        return ids[(ids.index(node_id) + 1) % len(ids)]

    # ------------------------------------------------------------ requests

    def _attempt(self, node_id: int, fill, deadline: float, cap_s: float | None = None):
        """One request. Returns (response | None, sent): `sent` is False only when
        the request surely never left (the connection could not be made)."""
        remaining = deadline - time.monotonic()
        t = min(cap_s or self.attempt_timeout_s, remaining)
        if t < 0.05:
            return None, False
        try:
            c = self._conn(node_id)
        except OSError:
            return None, False
        try:
            c.sock.settimeout(t + 0.3)
            return c.request(fill, timeout_ms=max(1, int(t * 1000))), True
        except (OSError, ConnectionError, AssertionError):
            # socket.timeout, reset, closed, a garbled frame: this connection is done.
            self._drop(node_id)
            return None, True

    def _run(self, fill, deadline: float, target: str, may_apply: bool):
        pb = self.pb
        node = self._pick(target)
        ambiguous = False
        last = None
        bounces = 0
        while time.monotonic() < deadline:
            resp, sent = self._attempt(node, fill, deadline)
            if resp is None:
                ambiguous = ambiguous or sent
                if self.leader_guess == node:
                    self.leader_guess = None
                node = self._next(node) if target != "rr" else self._pick(target)
                time.sleep(0.02)
                continue
            last = resp
            code = resp.code
            if code == pb.ClientResponse.OK:
                return "ok", resp
            if code == pb.ClientResponse.NOT_LEADER:
                bounces += 1
                if resp.leader_hint and resp.leader_hint in self.cluster.ids:
                    self.leader_guess = resp.leader_hint
                    node = resp.leader_hint if target != "rr" else self._pick(target)
                else:
                    node = self._next(node)
                if bounces > 2:
                    time.sleep(0.02 * min(bounces, 10))
                continue
            if code == pb.ClientResponse.UNAVAILABLE:
                time.sleep(0.05)
                node = self._next(node) if target != "home" else node
                if target == "rr":
                    node = self._pick(target)
                continue
            if code == pb.ClientResponse.TIMEOUT:
                ambiguous = True
                node = self._next(node) if target != "rr" else self._pick(target)
                continue
            return "error", resp  # BAD_REQUEST, BACKEND_ERROR
        return ("unknown" if ambiguous and may_apply else "refused"), last

    def write(self, payload: bytes, deadline: float, target: str = "leader", backend="kv"):
        """A new command with the next sequence; retried with the same one."""
        self.sequence += 1
        seq = self.sequence

        def fill(req):
            req.write.client_id = self.client_id
            req.write.sequence = seq
            req.write.backend = backend
            req.write.payload = payload
        return self._run(fill, deadline, target, may_apply=True)

    def read(self, payload: bytes, deadline: float, target: str = "leader",
             linearizable: bool = True, backend="kv"):
        pb = self.pb

        def fill(req):
            req.read.backend = backend
            req.read.payload = payload
            req.read.consistency = pb.LINEARIZABLE if linearizable else pb.LOCAL
        status, resp = self._run(fill, deadline, target, may_apply=False)
        return ("ok" if status == "ok" else ("error" if status == "error" else "failed")), resp

    def read_local(self, node_id: int, payload: bytes, timeout_s=3.0, backend="kv"):
        """A LOCAL read of exactly this node (no retries elsewhere)."""
        pb = self.pb

        def fill(req):
            req.read.backend = backend
            req.read.payload = payload
            req.read.consistency = pb.LOCAL
            req.read.no_forward = True
        resp, _ = self._attempt(node_id, fill, time.monotonic() + timeout_s, cap_s=timeout_s)
        return resp


def kv_result(resp):
    _, kv = protos()
    r = kv.KvResult()
    r.ParseFromString(resp.result)
    return r


__all__ = ["Client", "kv_result", "socket"]
