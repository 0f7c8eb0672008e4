"""Starts real `synod` processes on loopback and talks to them.

Used by the cluster tests (test_*.py here, run by CTest through pytest) and
meant to grow into the fault-injection harness (issue #4). Everything runs on
127.0.0.1 with ports picked free at run time and data in a temp directory.

Environment (set by tests/cluster/CMakeLists.txt):
  SYNOD_BIN, SYNODCTL_BIN   the binaries under test
  SYNOD_PROTO_DIR           proto/ (compiled to Python here with protoc)
  SYNOD_PLUGIN_DIR          where libsynod_backend_*.so live
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

_pb = None


def protos():
    """The Python protobuf modules for proto/*.proto, compiled once per run."""
    global _pb
    if _pb is None:
        out = tempfile.mkdtemp(prefix="synod_pb_")
        proto_dir = os.environ["SYNOD_PROTO_DIR"]
        subprocess.run(["protoc", f"-I{proto_dir}", f"--python_out={out}",
                        "synod.proto", "kv.proto"], check=True, cwd=proto_dir)
        sys.path.insert(0, out)
        import synod_pb2  # noqa: E402
        import kv_pb2  # noqa: E402
        _pb = (synod_pb2, kv_pb2)
    return _pb


MAGIC = 0x53594E44
HEADER = struct.Struct(">IBBHQI")


def cluster_id_of(name: str) -> int:
    h = 1469598103934665603
    for c in name.encode():
        h ^= c
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h or 1


def frame(cluster_id: int, payload: bytes, version: int = 1) -> bytes:
    return HEADER.pack(MAGIC, version, 0, 0, cluster_id, len(payload)) + payload


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Conn:
    """A raw client connection speaking the framed protocol."""

    def __init__(self, port: int, cluster: str = "synod", hello_id: int = 0, timeout=5.0):
        self.cluster_id = cluster_id_of(cluster)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.next_id = 1
        pb, _ = protos()
        env = pb.Envelope()
        env.hello.node_id = hello_id
        self.send_envelope(env)

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def send_envelope(self, env):
        self.sock.sendall(frame(self.cluster_id, env.SerializeToString()))

    def recv_envelope(self):
        pb, _ = protos()
        while True:
            if len(self.buf) >= HEADER.size:
                magic, version, _, _, cid, n = HEADER.unpack_from(self.buf)
                assert magic == MAGIC and version == 1 and cid == self.cluster_id
                if len(self.buf) >= HEADER.size + n:
                    env = pb.Envelope()
                    env.ParseFromString(self.buf[HEADER.size:HEADER.size + n])
                    self.buf = self.buf[HEADER.size + n:]
                    return env
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by the server")
            self.buf += data

    def request(self, fill, timeout_ms=3000):
        """fill(req) sets the operation; returns the ClientResponse."""
        pb, _ = protos()
        env = pb.Envelope()
        req = env.request
        req.request_id = self.next_id
        req.timeout_ms = timeout_ms
        self.next_id += 1
        fill(req)
        self.send_envelope(env)
        while True:
            r = self.recv_envelope()
            if r.HasField("response") and r.response.request_id == req.request_id:
                return r.response

    def is_closed(self, wait=2.0) -> bool:
        self.sock.settimeout(wait)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class Node:
    def __init__(self, cluster, node_id: int, port: int):
        self.cluster = cluster
        self.id = node_id
        self.port = port
        self.addr = f"127.0.0.1:{port}"
        self.data_dir = os.path.join(cluster.dir, f"node{node_id}")
        self.proc = None
        self.log_path = os.path.join(cluster.dir, f"node{node_id}.log")

    def start(self, extra=()):
        peers = self.cluster.peers_arg(self)
        args = [os.environ["SYNOD_BIN"], "--id", str(self.id), "--data-dir", self.data_dir,
                "--listen", self.addr, "--peers", peers, "--backend", "kv",
                "--cluster", self.cluster.name, *self.cluster.extra_args, *extra]
        plugin_dir = os.environ.get("SYNOD_PLUGIN_DIR")
        if plugin_dir:
            args += ["--plugin-dir", plugin_dir]
        if getattr(self, "log", None) is not None:
            self.log.close()  # the previous run's handle (a restart)
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     **self.cluster.popen_kwargs(self))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def terminate(self, timeout=10) -> int:
        if not self.alive():
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def status(self, timeout=1.0):
        try:
            c = Conn(self.port, self.cluster.name, timeout=timeout)
            try:
                return c.request(lambda r: r.status.SetInParent()).status
            finally:
                c.close()
        except OSError:
            return None

    def log_text(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


class Cluster:
    def __init__(self, n=3, name="synod", extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="synod_cluster_")
        self.name = name
        self.extra_args = list(extra_args)
        self.nodes = []
        for i in range(1, n + 1):
            self.nodes.append(Node(self, i, free_port()))

    @property
    def addrs(self) -> str:
        return ",".join(n.addr for n in self.nodes)

    # Hooks a subclass overrides (tests/chaos routes peer links through proxies
    # and starts nodes under libfaketime).
    def peers_arg(self, node) -> str:
        """The --peers value for `node`: every member's address as `node` sees it."""
        return ",".join(f"{n.id}={n.addr}" for n in self.nodes)

    def popen_kwargs(self, node) -> dict:
        """Extra subprocess.Popen arguments for starting `node` (e.g. env)."""
        return {}

    def start(self):
        for n in self.nodes:
            n.start()
        return self.wait_for_leader()

    def stop(self):
        for n in self.nodes:
            n.kill9()
            if getattr(n, "log", None) is not None:
                n.log.close()
        # Each node's RocksDB log preallocates tens of MB: leaving the data behind
        # filled a 250 GB disk over a few hundred runs. Keep it only on request.
        if not os.environ.get("SYNOD_KEEP_DATA"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def node(self, node_id: int) -> Node:
        return self.nodes[node_id - 1]

    def wait_for_leader(self, timeout=15.0, among=None) -> Node:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for n in (among or self.nodes):
                if not n.alive():
                    continue
                s = n.status()
                if s is not None and s.role == "leader":
                    return n
            time.sleep(0.05)
        logs = "\n".join(f"--- node {n.id}\n{n.log_text()[-3000:]}" for n in self.nodes)
        raise AssertionError(f"no leader within {timeout}s\n{logs}")

    def followers(self, leader):
        return [n for n in self.nodes if n.id != leader.id]

    def wait_applied(self, node: Node, slot: int, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = node.status()
            if s is not None and s.applied >= slot and not s.catching_up:
                return s
            time.sleep(0.05)
        raise AssertionError(f"node {node.id} did not apply slot {slot} within {timeout}s")

    def ctl(self, *args, cluster=None, timeout=30, stdin=None):
        cmd = [os.environ["SYNODCTL_BIN"], "--cluster", cluster or self.addrs, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin)


def kv_write(conn: Conn, cmd, client_id=0, sequence=0, backend="kv", timeout_ms=3000):
    def fill(req):
        req.write.client_id = client_id
        req.write.sequence = sequence
        req.write.backend = backend
        req.write.payload = cmd.SerializeToString()
    return conn.request(fill, timeout_ms)


def kv_read(conn: Conn, cmd, consistency=0):
    def fill(req):
        req.read.backend = "kv"
        req.read.payload = cmd.SerializeToString()
        req.read.consistency = consistency
    return conn.request(fill)
