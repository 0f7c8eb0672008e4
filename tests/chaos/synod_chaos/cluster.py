"""A cluster of real `synod` processes whose peer links go through the proxy.

ChaosCluster extends tests/cluster/synod_harness.Cluster:
  * node i's --peers names its own real address and, for every other node j,
    the proxy i->j (ProxyNet); clients connect to the nodes directly;
  * nodes may run under libfaketime at a clock rate (Node.clock_rate);
  * network faults are layered by owner (each nemesis sets its own and clears
    only its own), merged onto the links: refuse > drop > pass, delays add up
    as the largest, loss as the largest;
  * every process dies with the harness (PR_SET_PDEATHSIG) and cleanup() kills
    them and closes the proxies, also after an exception or ^C.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import threading
import time

from synod_harness import Cluster, Conn

from .proxy import ProxyNet

FAKETIME_LIB = os.environ.get(
    "SYNOD_FAKETIME_LIB", "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")

_MODE_RANK = {"pass": 0, "drop": 1, "refuse": 2}
_fix_path = None


def faketime_fix() -> str:
    """tests/chaos/faketime_fix: built by CMake (SYNOD_FAKETIME_FIX), else compiled
    here once per process with cc."""
    global _fix_path
    if _fix_path:
        return _fix_path
    p = os.environ.get("SYNOD_FAKETIME_FIX")
    if p and os.path.exists(p):
        _fix_path = p
        return p
    import subprocess
    import tempfile
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "faketime_fix", "faketime_fix.c")
    out = os.path.join(tempfile.mkdtemp(prefix="synod_faketime_fix_"), "libsynod_faketime_fix.so")
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", src, "-o", out, "-ldl"], check=True)
    _fix_path = out
    return out


def _die_with_parent():
    # Runs in the child between fork and exec: the node gets SIGKILL when the
    # harness thread that started it exits (nodes are only started from the
    # harness's main thread, so: when the harness exits, however it exits).
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class ChaosCluster(Cluster):
    def __init__(self, n=3, seed=0, extra_args=(), name=None):
        super().__init__(n, name=name or f"chaos-{seed}", extra_args=extra_args)
        self.net = ProxyNet(seed)
        self.proxy_port: dict[tuple[int, int], int] = {}
        self._faults: dict[str, dict[tuple[int, int], dict]] = {}
        self._lock = threading.Lock()
        self._main_thread = threading.current_thread()
        for node in self.nodes:
            node.clock_rate = 1.0
            node.paused = False
            node.expect_down = True  # until started
        for a in self.nodes:
            for b in self.nodes:
                if a.id != b.id:
                    self.proxy_port[(a.id, b.id)] = self.net.add_link(a.id, b.id, b.port)

    @property
    def ids(self) -> list[int]:
        return [n.id for n in self.nodes]

    # ------------------------------------------------------------ harness hooks

    def peers_arg(self, node) -> str:
        parts = []
        for other in self.nodes:
            if other.id == node.id:
                parts.append(f"{other.id}={other.addr}")
            else:
                parts.append(f"{other.id}=127.0.0.1:{self.proxy_port[(node.id, other.id)]}")
        return ",".join(parts)

    def popen_kwargs(self, node) -> dict:
        assert threading.current_thread() is self._main_thread, \
            "start nodes from the harness's main thread (PR_SET_PDEATHSIG is per thread)"
        env = dict(os.environ)
        rate = getattr(node, "clock_rate", 1.0)
        if abs(rate - 1.0) > 1e-9:
            env["LD_PRELOAD"] = f"{faketime_fix()} {FAKETIME_LIB}"
            env["FAKETIME"] = f"+0 x{rate:.4f}"
            env["FAKETIME_NO_CACHE"] = "1"
            # An ASan build wants its runtime first; the preload is deliberate.
            env["ASAN_OPTIONS"] = ":".join(
                x for x in (env.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0") if x)
        return {"env": env, "preexec_fn": _die_with_parent}

    # ------------------------------------------------------------ processes

    def start_node(self, node):
        if node.alive():
            return
        node.paused = False
        node.start()
        node.expect_down = False

    def kill_node(self, node):
        node.expect_down = True
        node.kill9()
        node.paused = False

    def pause_node(self, node) -> bool:
        if not node.alive() or node.paused:
            return False
        node.proc.send_signal(signal.SIGSTOP)
        node.paused = True
        return True

    def resume_node(self, node):
        if node.alive():
            node.proc.send_signal(signal.SIGCONT)
        node.paused = False

    def restart_node(self, node, graceful=True):
        """Stops (SIGTERM, or SIGKILL if paused or too slow) and starts `node` again."""
        node.expect_down = True
        if node.alive():
            if graceful and not node.paused:
                try:
                    node.terminate(timeout=5)
                except Exception:
                    node.kill9()
            else:
                node.kill9()
        node.paused = False
        self.start_node(node)

    def unexpected_exits(self) -> list:
        """Nodes that died although nobody killed them (a crash, a failed check)."""
        out = []
        for n in self.nodes:
            if not n.expect_down and n.proc is not None and n.proc.poll() is not None:
                out.append(n)
        return out

    def status_of(self, node, timeout=0.5):
        if not node.alive() or node.paused:
            return None
        return node.status(timeout=timeout)

    def find_leader(self, timeout=0.5):
        """The live, unpaused node that says it leads (highest ballot wins), or None."""
        best, best_ballot = None, None
        for n in self.nodes:
            s = self.status_of(n, timeout)
            if s is not None and s.role == "leader":
                b = (s.ballot.round, s.ballot.node)
                if best is None or b > best_ballot:
                    best, best_ballot = n, b
        return best

    # ------------------------------------------------------------ network faults

    def set_net_fault(self, owner: str, links: dict[tuple[int, int], dict]):
        with self._lock:
            self._faults[owner] = links
            self._apply()

    def clear_net_fault(self, owner: str):
        with self._lock:
            if self._faults.pop(owner, None) is not None:
                self._apply()

    def clear_all_net_faults(self):
        with self._lock:
            self._faults.clear()
            self._apply()

    def _apply(self):
        merged: dict[tuple[int, int], dict] = {}
        for links in self._faults.values():
            for key, f in links.items():
                m = merged.setdefault(key, {"mode": "pass", "delay_ms": 0.0, "jitter_ms": 0.0,
                                            "loss": 0.0})
                if _MODE_RANK[f.get("mode", "pass")] > _MODE_RANK[m["mode"]]:
                    m["mode"] = f["mode"]
                for k in ("delay_ms", "jitter_ms", "loss"):
                    m[k] = max(m[k], f.get(k, 0.0))
        self.net.apply(merged)

    def cut(self, a: int, b: int, mode="drop") -> dict:
        """Both directions between a and b."""
        return {(a, b): {"mode": mode}, (b, a): {"mode": mode}}

    # ------------------------------------------------------------ end of run

    def collect_logs(self, dest_dir: str):
        os.makedirs(dest_dir, exist_ok=True)
        for n in self.nodes:
            if os.path.exists(n.log_path):
                shutil.copy(n.log_path, os.path.join(dest_dir, f"node{n.id}.log"))

    def cleanup(self, remove_dir=True):
        for n in self.nodes:
            n.expect_down = True
            try:
                n.kill9()
            except Exception:
                pass
            if getattr(n, "log", None) is not None:
                try:
                    n.log.close()
                except Exception:
                    pass
        self.net.close()
        if remove_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(pred, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return None


def listening_sockets_of(pids) -> list[tuple[int, str, int]]:
    """(pid, local ip hex, port) of every TCP socket in LISTEN state owned by `pids`."""
    inodes = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, state, inode = parts[1], parts[3], parts[9]
                    if state == "0A" and inode in inodes:
                        ip, port = local.split(":")
                        out.append((inodes[inode], ip, int(port, 16)))
        except OSError:
            continue
    return out


def non_loopback_listeners(pids) -> list[tuple[int, str, int]]:
    def loopback(ip):
        if len(ip) == 8:
            return ip[-2:] == "7F"  # 127.x.x.x, little-endian hex
        return ip == "00000000000000000000000001000000"  # ::1
    return [s for s in listening_sockets_of(pids) if not loopback(s[1])]


__all__ = ["ChaosCluster", "Conn", "wait_until", "non_loopback_listeners"]
