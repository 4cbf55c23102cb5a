"""The held-stream server (``goldbean events``, and the front of ``goldbean serve``): thousands of open radar
streams on one asyncio loop, while the app's sync workers never hold one.

- **Front**: it listens on the app's address. ``GET /api/v1/events`` and ``GET /radar/events`` are held
  here; every other request is passed byte for byte to the app's gunicorn (a private unix socket under
  ``goldbean serve``), one request per connection, with ``X-Forwarded-For`` appended and forwarded headers
  from untrusted peers dropped (``GOLDBEAN_FORWARDED_ALLOW_IPS``), so the app sees what it saw before.
- **Opening a stream**: the request is run through the same Flask app in a thread (``doors.sse`` with a
  ``HoldTicket``): authentication, refusals (401 JSON on the API path, the sign-in redirect on the page
  path), rate limits and the access log are the app's own. The door answers what the client missed (its
  ``Last-Event-ID``) up to the hub's horizon and names the reader; then the connection stays here.
- **Hub**: one pump per process reads the outbox once per wake-up for all its streams
  (``ledger.radar.live.read_outbox`` and ``Horizon``: ids final in order, never a late commit stepped
  over), decides who receives what in one batch (``live.deliveries``: grants read now) and writes the
  frames. Wake-ups: PostgreSQL ``LISTEN radar_events`` (the use cases NOTIFY on commit, so every server on
  one database hears every commit), in-process commits, and a poll (SQLite, other processes: 0.5 s; behind
  LISTEN: 5 s as a safety net; 0.1 s while a fence waits). Every ``heartbeat_s`` each stream gets a comment
  line (and its cursor), expired tokens, ended sessions and disabled users have their streams closed.
- **Limits**: at ``max_streams`` (from the file-descriptor limit) a stream request is answered like the
  short poll and ends (retry 5-10 s); a client that does not read (1 MB unsent) is dropped and resumes
  from its ``Last-Event-ID``.

docs/radar.md says why this shape; docs/operations.md how to run it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ipaddress
import logging
import os
import resource
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from doors.sse import HOLD_KEY, HoldTicket, StreamGrant, frame
from ledger.access import web_sessions
from ledger.access.tokens import LEEWAY_S
from ledger.radar import live

log = logging.getLogger("goldbean.events")

EVENT_PATHS = frozenset({"/api/v1/events", "/radar/events"})
# a request head gunicorn could accept (request line 8,190, 128 fields of 16,384 bytes) always gets through to
# it, so the app's (lower) limits and answers stand; a larger head is refused here with a plain 431
HEAD_LIMIT = 8192 + 130 * 16386
HEAD_TIMEOUT_S = 60.0
MAX_UNSENT = 1024 * 1024  # bytes waiting for a client that does not read: drop it, it resumes later
RING = 4096  # final rows kept for streams that join a little behind the horizon
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "upgrade"})
FORWARDED = frozenset({"x-forwarded-for", "x-forwarded-proto", "x-forwarded-protocol", "x-forwarded-ssl",
                       "forwarded"})


def _env_float(name: str, default: float | None) -> float | None:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


def fd_limit() -> int:
    """Raise the soft limit on open files to the hard one; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


@dataclass
class Options:
    heartbeat_s: float = 15.0
    poll_s: float | None = None  # None: 0.5 s on SQLite, 5 s behind PostgreSQL's LISTEN
    max_streams: int | None = None  # None: the open-file limit less a reserve
    app_threads: int = 8  # threads running the opening requests through the app
    trusted: tuple[str, ...] = ("127.0.0.1",)  # peers whose X-Forwarded-* headers are believed
    proxy_hops: int = 0  # reverse proxies in front of this server (X-Forwarded-For entries to skip)
    listen_url: str | None = None  # PostgreSQL for LISTEN when the database URL goes through PgBouncer

    @classmethod
    def from_env(cls) -> Options:
        return cls(
            heartbeat_s=_env_float("GOLDBEAN_EVENTS_HEARTBEAT_S", 15.0) or 15.0,
            poll_s=_env_float("GOLDBEAN_EVENTS_POLL_S", None),
            max_streams=int(_env_float("GOLDBEAN_EVENTS_MAX_STREAMS", 0) or 0) or None,
            app_threads=int(_env_float("GOLDBEAN_EVENTS_THREADS", 8) or 8),
            trusted=tuple(x.strip() for x in os.environ.get("GOLDBEAN_FORWARDED_ALLOW_IPS", "127.0.0.1").split(",")
                          if x.strip()),
            proxy_hops=int(_env_float("GOLDBEAN_PROXY_HOPS", 0) or 0),
            listen_url=os.environ.get("GOLDBEAN_EVENTS_LISTEN_URL") or None)


class Stream:
    """One held connection: whom it serves, what it has been told, what ends it."""

    __slots__ = ("writer", "user_id", "cursor", "told", "session_digest", "expires", "done")

    def __init__(self, writer: asyncio.StreamWriter, grant: StreamGrant) -> None:
        self.writer = writer
        self.user_id = grant.user_id
        self.cursor = grant.cursor  # every event up to here has been decided for this stream
        self.told = grant.cursor  # the last id the client has seen (its Last-Event-ID)
        self.session_digest = grant.session_digest
        self.expires = grant.expires
        self.done = False

    def send(self, data: bytes) -> None:
        transport = self.writer.transport
        if self.done or transport.is_closing():
            self.close()
            return
        if transport.get_write_buffer_size() > MAX_UNSENT:
            self.close()
            return
        self.writer.write(data)

    def close(self) -> None:
        if not self.done:
            self.done = True
            self.writer.close()


class Hub:
    """Every held stream of this process and the one pump that feeds them."""

    def __init__(self, books: Any, options: Options) -> None:
        self.books = books
        self.options = options
        self.streams: set[Stream] = set()
        self.horizon = live.Horizon(0)
        self.ring: deque[live.EventRow] = deque()
        self.ring_floor = 0  # every final row above this id is in the ring
        self.max_streams = options.max_streams or max(100, fd_limit() - 256)
        self.listening = False
        self.cycles = 0
        self.waiting_since = 0.0
        self._wake = asyncio.Event()
        self._db = ThreadPoolExecutor(1, thread_name_prefix="events-hub")
        self._tasks: list[asyncio.Task] = []
        self._stop_local: Callable[[], None] | None = None

    @property
    def full(self) -> bool:
        return len(self.streams) >= self.max_streams

    async def _db_call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.horizon = live.Horizon(await self._db_call(live.latest_event_id, self.books))
        self.ring_floor = self.horizon.at
        self._stop_local = live.on_commit(lambda: loop.call_soon_threadsafe(self._wake.set))
        self._tasks = [asyncio.create_task(self._pump(), name="events-pump"),
                       asyncio.create_task(self._heartbeats(), name="events-heartbeats")]
        if self.books.dialect == "postgresql":
            self._tasks.append(asyncio.create_task(self._listen(), name="events-listen"))

    async def stop(self) -> None:
        if self._stop_local:
            self._stop_local()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for stream in list(self.streams):
            stream.close()
        self._db.shutdown(wait=False, cancel_futures=True)

    def kick(self) -> None:
        self._wake.set()

    def attach(self, stream: Stream) -> None:
        self.streams.add(stream)
        if stream.cursor < self.horizon.at:
            self.kick()  # it joined a little behind: the next cycle brings it up

    def detach(self, stream: Stream) -> None:
        self.streams.discard(stream)

    def _poll_s(self) -> float:
        if self.horizon.waiting:
            return 0.1
        if self.options.poll_s:
            return self.options.poll_s
        return 5.0 if self.listening else 0.5

    async def _pump(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_s())
            self._wake.clear()
            try:
                await self._cycle()
            except Exception:
                log.exception("events: reading the outbox failed; trying again")
                await asyncio.sleep(1.0)

    async def _cycle(self) -> None:
        started = time.perf_counter()
        read = await self._db_call(live.read_outbox, self.books, self.horizon.at)
        self.cycles += 1
        fresh = self.horizon.advance(read)
        if self.horizon.waiting:
            self.waiting_since = self.waiting_since or time.monotonic()
            if time.monotonic() - self.waiting_since > 30 and self.cycles % 300 == 0:
                log.warning("events: a transaction writing radar_events has been open for %.0f s; events after "
                            "it wait (pg_stat_activity shows it)", time.monotonic() - self.waiting_since)
        else:
            self.waiting_since = 0.0
        if read.full:
            self.kick()  # more after this batch
        self.ring.extend(fresh)
        while len(self.ring) > RING:
            self.ring_floor = self.ring.popleft().id
        behind = [s for s in self.streams if s.cursor < self.horizon.at and not s.done]
        for s in behind:
            if s.cursor < self.ring_floor:
                s.close()  # too far behind for the ring: it reconnects and catches up through the app
        behind = [s for s in behind if not s.done]
        if not behind:
            return
        low = min(s.cursor for s in behind)
        rows = [r for r in self.ring if r.id > low]
        at = self.horizon.at
        read_at = time.perf_counter()
        got, gone = await self._db_call(live.deliveries, self.books, {s.user_id for s in behind}, rows)
        decided_at = time.perf_counter()
        frames: dict[int, bytes] = {}  # an event reads the same for every reader it goes to: encode it once
        for s in behind:
            if s.user_id in gone:
                s.close()
                continue
            events = [e for e in got.get(s.user_id, ()) if s.cursor < e["id"] <= at]
            s.cursor = max(s.cursor, at)
            if events:
                s.told = events[-1]["id"]
                s.send(b"".join(frames.get(e["id"]) or frames.setdefault(e["id"], frame(e).encode())
                                for e in events))
        sent = sum(1 for s in behind if s.told > low)
        log.info("events: %d rows up to %d for %d streams, %d sent: read %.0f ms, decided %.0f ms, written %.0f ms",
                 len(rows), at, len(behind), sent, (read_at - started) * 1000, (decided_at - read_at) * 1000,
                 (time.perf_counter() - decided_at) * 1000)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.options.heartbeat_s)
            now = self.books.now().timestamp()
            for s in list(self.streams):
                if s.expires is not None and now > s.expires + LEEWAY_S:
                    s.close()  # the token ended: the client comes back with a new one (or is refused)
                    continue
                line = ": hb\n\n" if s.told >= s.cursor else f": hb\nid: {s.cursor}\n\n"
                s.told = s.cursor
                s.send(line.encode())
            try:
                await self._recheck()
            except Exception:
                log.exception("events: checking the streams' sessions failed")

    async def _recheck(self) -> None:
        """Sessions signed out or idle, users disabled: their streams end (one batch for all)."""
        streams = [s for s in self.streams if not s.done]
        digests = {s.session_digest for s in streams if s.session_digest}
        alive = await self._db_call(web_sessions.sessions_alive, self.books, digests) if digests else set()
        gone = await self._db_call(live.readers_gone, self.books, {s.user_id for s in streams}) if streams else set()
        for s in streams:
            if s.user_id in gone or (s.session_digest and s.session_digest not in alive):
                s.close()

    async def _listen(self) -> None:
        import psycopg

        url = self.options.listen_url or self.books.engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False)
        url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        backoff = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {live.CHANNEL}")
                    self.listening, backoff = True, 0.5
                    self.kick()  # whatever committed while nobody listened
                    async for _ in conn.notifies():
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("events: LISTEN connection lost (%s); polling meanwhile", type(exc).__name__)
            self.listening = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)


# --- HTTP ------------------------------------------------------------------------------------------------

@dataclass
class Head:
    method: str
    target: str
    version: str
    request_line: bytes
    headers: list[tuple[str, str, bytes]] = field(default_factory=list)  # (lower name, value, raw line)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def get(self, name: str) -> str | None:
        return next((v for n, v, _ in self.headers if n == name), None)


def parse_head(data: bytes) -> Head | None:
    lines = data[:-4].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or not parts[0].isalpha():
        return None
    head = Head(*(p.decode("latin-1") for p in parts), request_line=lines[0])
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep or not name or name.strip() != name:
            return None
        head.headers.append((name.decode("latin-1").lower(), value.strip().decode("latin-1"), line))
    return head


def _trusted(ip: str, trusted: tuple[str, ...]) -> bool:
    if "*" in trusted:
        return True
    if not ip:  # a unix socket: only this machine's users reach it
        return True
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for entry in trusted:
        with contextlib.suppress(ValueError):
            if addr in ipaddress.ip_network(entry, strict=False):
                return True
    return False


def forward_head(head: Head, ip: str, trusted: bool) -> bytes:
    """The head passed to the app: one request per connection, the client's address appended to
    ``X-Forwarded-For`` (the app counts one more proxy hop), forwarded headers kept from trusted peers only."""
    lines = [head.request_line]
    chain: list[str] = []
    for name, value, raw in head.headers:
        if name in HOP_BY_HOP:
            continue
        if name == "x-forwarded-for":
            if trusted:
                chain.append(value)
            continue
        if name in FORWARDED and not trusted:
            continue
        lines.append(raw)
    chain.append(ip or "127.0.0.1")
    lines.append(b"X-Forwarded-For: " + ", ".join(chain).encode("latin-1"))
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def call_wsgi(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    captured: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
        captured["status"], captured["headers"] = status, list(headers)
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return captured["status"], captured["headers"], b"".join(chunks)


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError, asyncio.IncompleteReadError):
        while True:
            data = await src.read(65536)
            if not data:
                return
            dst.write(data)
            await dst.drain()


def _plain(status: str, text: str) -> bytes:
    body = text.encode()
    return (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


class Front:
    """The listening side: route by path, hold the streams, pass the rest to the app."""

    def __init__(self, app: Any, hub: Hub, options: Options, upstream: str | None) -> None:
        self.app = app
        if options.proxy_hops > 0:
            from werkzeug.middleware.proxy_fix import ProxyFix

            self.app = ProxyFix(app, x_for=options.proxy_hops, x_proto=options.proxy_hops)
        self.hub = hub
        self.options = options
        self.upstream = upstream
        self.pool = ThreadPoolExecutor(options.app_threads, thread_name_prefix="events-app")
        self.opening = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        ip = peer[0] if isinstance(peer, tuple) else ""
        try:
            data = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        except (asyncio.LimitOverrunError, ValueError):
            writer.write(_plain("431 Request Header Fields Too Large", "request head too large"))
            await self._close(writer)
            return
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, OSError):
            await self._close(writer)
            return
        head = parse_head(data)
        try:
            if head is None:
                writer.write(_plain("400 Bad Request", "bad request"))
            elif head.method == "GET" and head.path in EVENT_PATHS:
                await self._stream(head, reader, writer, ip, peer)
            elif self.upstream:
                await self._proxy(head, reader, writer, ip)
            else:
                writer.write(_plain("404 Not Found", "this server holds the event streams only"))
        except (ConnectionError, OSError):
            pass
        except Exception:
            log.exception("events: request failed")
        await self._close(writer)

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await writer.drain()
        writer.close()

    def _environ(self, head: Head, ip: str, peer: Any, ticket: HoldTicket) -> dict[str, Any]:
        secure = _trusted(ip, self.options.trusted) and (
            head.get("x-forwarded-proto") == "https" or head.get("x-forwarded-ssl") == "on"
            or head.get("x-forwarded-protocol") == "ssl")
        host = head.get("host") or "localhost"
        env: dict[str, Any] = {
            "REQUEST_METHOD": head.method, "SCRIPT_NAME": "", "PATH_INFO": head.path, "QUERY_STRING": head.query,
            "RAW_URI": head.target, "REQUEST_URI": head.target, "SERVER_PROTOCOL": head.version,
            "SERVER_NAME": host.rsplit(":", 1)[0], "SERVER_PORT": host.rsplit(":", 1)[1] if ":" in host else "80",
            "REMOTE_ADDR": ip or "127.0.0.1", "REMOTE_PORT": str(peer[1]) if isinstance(peer, tuple) else "0",
            "wsgi.version": (1, 0), "wsgi.url_scheme": "https" if secure else "http", "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
            HOLD_KEY: ticket,
        }
        for name, value, _ in head.headers:
            if "_" in name:
                continue  # as gunicorn: X-Foo_Bar could pose as X-Foo-Bar
            key = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}.get(
                name, "HTTP_" + name.upper().replace("-", "_"))
            env[key] = f"{env[key]},{value}" if key in env else value
        return env

    async def _stream(self, head: Head, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ip: str,
                      peer: Any) -> None:
        ticket = HoldTicket(horizon=self.hub.horizon.at, room=not self.hub.full)
        environ = self._environ(head, ip, peer, ticket)
        self.opening += 1
        try:
            status, headers, body = await asyncio.get_running_loop().run_in_executor(
                self.pool, call_wsgi, self.app, environ)
        finally:
            self.opening -= 1
        held = ticket.grant is not None and status.startswith("200")
        lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers if k.lower() not in (
            "content-length", "connection", "transfer-encoding", "keep-alive")]
        if not held:
            lines.append(f"Content-Length: {len(body)}")
        lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        if not held:
            return
        stream = Stream(writer, ticket.grant)
        self.hub.attach(stream)
        try:
            while await reader.read(4096):
                pass  # a client says nothing more; the end of its input is the end of the stream
        finally:
            self.hub.detach(stream)
            stream.close()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        assert self.upstream is not None
        if self.upstream.startswith("unix:"):
            return await asyncio.open_unix_connection(self.upstream[5:])
        host, _, port = self.upstream.rpartition(":")
        return await asyncio.open_connection(host.strip("[]"), int(port))

    async def _proxy(self, head: Head, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ip: str) -> None:
        try:
            up_reader, up_writer = await self._open_upstream()
        except OSError:
            writer.write(_plain("502 Bad Gateway", "the app server is not answering"))
            return
        up_writer.write(forward_head(head, ip, _trusted(ip, self.options.trusted)))
        bodyless = head.get("content-length") in (None, "0") and head.get("transfer-encoding") is None
        to_app = None if bodyless else asyncio.create_task(_pipe(reader, up_writer))
        try:
            await _pipe(up_reader, writer)  # until the app closes: one request per connection
        finally:
            if to_app is not None:
                to_app.cancel()
            up_writer.close()


# --- running it ------------------------------------------------------------------------------------------

def _binds(spec: str) -> list[str]:
    return [b.strip() for b in spec.split(",") if b.strip()]


async def _listen_on(front: Front, bind: str) -> asyncio.Server:
    if bind.startswith("unix:"):
        return await asyncio.start_unix_server(front.handle, bind[5:], limit=HEAD_LIMIT, backlog=4096)
    host, _, port = bind.rpartition(":")
    return await asyncio.start_server(front.handle, host.strip("[]") or "127.0.0.1", int(port), limit=HEAD_LIMIT,
                                      backlog=4096, reuse_address=True)


class EventsServer:
    """A hub and a front, started on the running loop."""

    def __init__(self, app: Any, *, bind: str, upstream: str | None = None, options: Options | None = None) -> None:
        from doors import books_of

        self.options = options or Options.from_env()
        self.hub = Hub(books_of(app), self.options)
        self.front = Front(app, self.hub, self.options, upstream)
        self.bind = bind
        self.servers: list[asyncio.Server] = []

    @property
    def ports(self) -> list[int]:
        return [s.sockets[0].getsockname()[1] for s in self.servers if s.sockets and isinstance(
            s.sockets[0].getsockname(), tuple)]

    async def start(self) -> None:
        await self.hub.start()
        for bind in _binds(self.bind):
            self.servers.append(await _listen_on(self.front, bind))
        log.info("events: holding streams on %s (at most %d), app %s", self.bind, self.hub.max_streams,
                 self.front.upstream or "none")

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
        await self.hub.stop()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        self.front.pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class Running:
    """An events server on a loop of its own thread (tests, benches)."""

    server: EventsServer
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def port(self) -> int:
        return self.server.ports[0]

    def call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def start_in_thread(app: Any, *, bind: str = "127.0.0.1:0", upstream: str | None = None,
                    options: Options | None = None) -> Running:
    loop = asyncio.new_event_loop()
    server = EventsServer(app, bind=bind, upstream=upstream, options=options or Options())
    ready = threading.Event()
    failure: list[BaseException] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=main, name="events-server", daemon=True)
    thread.start()
    ready.wait(30)
    if failure:
        raise failure[0]
    return Running(server, loop, thread)


def run(app: Any, *, bind: str, upstream: str | None = None, stop_when: Callable[[], bool] | None = None,
        on_hup: Callable[[], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT (or ``stop_when()`` turns true, checked each second); SIGHUP calls
    ``on_hup`` (``goldbean serve``: gunicorn reloads its workers) and is otherwise ignored."""
    import signal

    async def main() -> None:
        server = EventsServer(app, bind=bind, upstream=upstream)
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, on_hup or (lambda: None))
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if stop_when is not None and stop_when():
                break
        log.info("events: stopping (%d streams open)", len(server.hub.streams))
        await server.stop()

    asyncio.run(main())
