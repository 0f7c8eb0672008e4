"""A fault-injecting TCP proxy for Synod's peer links, run in the harness process.

Node i's --peers names, for every other node j, the address of a `Link` i->j
here; the link forwards to j's real address. Synod's peer links are one-way
(i sends its messages to j on a connection i opened), so link i->j carries
exactly i's messages to j, plus requests i forwards to j as the leader (and
their answers, which come back on the same connection).

The proxy is frame-aware (20-byte header + length, src/net/frame.h): it moves
whole frames, so it can drop or delay single messages without breaking a
stream. Per link:

  mode "pass"    frames flow (after `delay_ms` + up to `jitter_ms`, order kept)
       "drop"    frames are silently discarded, connections stay open (a
                 black hole: like a cable cut while TCP still thinks it is up)
       "refuse"  open connections are closed and new ones closed at once (like
                 a RST from a firewall)
  loss           probability of dropping each frame while passing

Everything listens on 127.0.0.1 only. One asyncio loop runs in a daemon thread;
the public methods are thread-safe and return when the change is in effect.
"""
from __future__ import annotations

import asyncio
import random
import struct
import threading

HEADER = struct.Struct(">IBBHQI")
MAGIC = 0x53594E44
MAX_FRAME = 64 << 20


class Link:
    def __init__(self, src: int, dst: int, target_port: int):
        self.src = src
        self.dst = dst
        self.target_port = target_port
        self.port = 0
        self.mode = "pass"
        self.delay_ms = 0.0
        self.jitter_ms = 0.0
        self.loss = 0.0
        self.server: asyncio.base_events.Server | None = None
        self.conns: set[_Conn] = set()
        self.frames = 0
        self.dropped = 0
        self.refused = 0

    def __repr__(self):
        return (f"Link({self.src}->{self.dst} :{self.port}->:{self.target_port} {self.mode}"
                f" delay={self.delay_ms:.0f}ms)")


class _Conn:
    def __init__(self, link: Link, cr, cw, tr, tw):
        self.link = link
        self.cr, self.cw, self.tr, self.tw = cr, cw, tr, tw
        self.tasks: list[asyncio.Task] = []
        self.closed = False

    def close(self):
        if self.closed:
            return
        self.closed = True
        self.link.conns.discard(self)
        for w in (self.cw, self.tw):
            try:
                w.transport.abort()
            except Exception:
                pass
        for t in self.tasks:
            t.cancel()


class ProxyNet:
    """All links of one cluster. Node ids are 1..n."""

    def __init__(self, seed: int = 0):
        self.links: dict[tuple[int, int], Link] = {}
        self.rng = random.Random(seed ^ 0x5EED)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="chaos-proxy", daemon=True)
        self.thread.start()
        self._closed = False

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _call(self, coro_or_fn, timeout=10.0):
        if asyncio.iscoroutine(coro_or_fn):
            fut = asyncio.run_coroutine_threadsafe(coro_or_fn, self.loop)
        else:
            async def wrap():
                return coro_or_fn()
            fut = asyncio.run_coroutine_threadsafe(wrap(), self.loop)
        return fut.result(timeout)

    # ------------------------------------------------------------ setup

    def add_link(self, src: int, dst: int, target_port: int) -> int:
        """Starts the proxy src->dst in front of 127.0.0.1:target_port; returns its port."""
        link = Link(src, dst, target_port)

        async def start():
            link.server = await asyncio.start_server(
                lambda r, w: self._accept(link, r, w), host="127.0.0.1", port=0)
            link.port = link.server.sockets[0].getsockname()[1]
        self._call(start())
        self.links[(src, dst)] = link
        return link.port

    def close(self):
        if self._closed:
            return
        self._closed = True

        async def stop():
            for link in self.links.values():
                if link.server:
                    link.server.close()
                for c in list(link.conns):
                    c.close()
        try:
            self._call(stop(), timeout=5)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    # ------------------------------------------------------------ faults

    def set_link(self, src: int, dst: int, mode: str | None = None, delay_ms: float | None = None,
                 jitter_ms: float | None = None, loss: float | None = None):
        link = self.links[(src, dst)]

        def apply():
            if delay_ms is not None:
                link.delay_ms = delay_ms
            if jitter_ms is not None:
                link.jitter_ms = jitter_ms
            if loss is not None:
                link.loss = loss
            if mode is not None:
                assert mode in ("pass", "drop", "refuse"), mode
                link.mode = mode
                if mode == "refuse":
                    for c in list(link.conns):
                        c.close()
        self._call(apply)

    def apply(self, state: dict[tuple[int, int], dict]):
        """Sets every link at once: state[(src, dst)] = {mode, delay_ms, jitter_ms, loss}."""
        def go():
            for key, link in self.links.items():
                s = state.get(key, {})
                link.mode = s.get("mode", "pass")
                link.delay_ms = s.get("delay_ms", 0.0)
                link.jitter_ms = s.get("jitter_ms", 0.0)
                link.loss = s.get("loss", 0.0)
                if link.mode == "refuse":
                    for c in list(link.conns):
                        c.close()
        self._call(go)

    def stats(self) -> dict:
        return {f"{s}->{d}": (l.frames, l.dropped, l.refused) for (s, d), l in self.links.items()}

    # ------------------------------------------------------------ data path

    async def _accept(self, link: Link, cr: asyncio.StreamReader, cw: asyncio.StreamWriter):
        if link.mode == "refuse":
            link.refused += 1
            cw.transport.abort()
            return
        try:
            tr, tw = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", link.target_port), timeout=3.0)
        except (OSError, asyncio.TimeoutError):
            cw.transport.abort()  # the node behind is down: so is the link
            return
        if link.mode == "refuse":  # changed while connecting
            tw.transport.abort()
            cw.transport.abort()
            return
        conn = _Conn(link, cr, cw, tr, tw)
        link.conns.add(conn)
        conn.tasks = [asyncio.ensure_future(self._pump(conn, cr, tw)),
                      asyncio.ensure_future(self._pump(conn, tr, cw))]

    async def _pump(self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        """Moves frames reader -> writer, applying the link's faults. The queue between
        the reading and the writing half holds frames waiting out their delay; it is
        bounded, so a stalled receiver (SIGSTOP) stalls the sender as TCP would."""
        link = conn.link
        queue: asyncio.Queue = asyncio.Queue(maxsize=2048)
        sender = asyncio.ensure_future(self._send(conn, queue, writer))
        conn.tasks.append(sender)
        last_due = 0.0
        try:
            while True:
                header = await reader.readexactly(HEADER.size)
                magic, _, _, _, _, n = HEADER.unpack(header)
                if magic != MAGIC or n > MAX_FRAME:
                    # Not a Synod stream: pass the rest through untouched (the node
                    # will refuse it itself); frame-level faults no longer apply.
                    await queue.put((0.0, header))
                    while True:
                        data = await reader.read(65536)
                        if not data:
                            break
                        await queue.put((0.0, data))
                    break
                payload = await reader.readexactly(n) if n else b""
                link.frames += 1
                if link.mode != "pass" or (link.loss and self.rng.random() < link.loss):
                    link.dropped += 1
                    continue
                due = 0.0
                if link.delay_ms or link.jitter_ms:
                    d = link.delay_ms + (self.rng.random() * link.jitter_ms if link.jitter_ms else 0)
                    due = max(self.loop.time() + d / 1000.0, last_due)
                    last_due = due
                await queue.put((due, header + payload))
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            raise
        await queue.put(None)

    async def _send(self, conn: _Conn, queue: asyncio.Queue, writer: asyncio.StreamWriter):
        link = conn.link
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                due, data = item
                if due:
                    wait = due - self.loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                if link.mode != "pass":
                    link.dropped += 1  # cut while it waited out its delay
                    continue
                writer.write(data)
                if writer.transport.get_write_buffer_size() > (1 << 20):
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            raise
        conn.close()
