"""A small blocking client of ``text/event-stream`` over a raw socket, for the held-stream tests: it sees
exactly what a phone gets (the head, the frames, heartbeat comments, the end of the stream)."""

from __future__ import annotations

import json
import socket
import time


class SSE:
    def __init__(self, port: int, path: str, headers: dict[str, str] | None = None, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        self.eof = False
        while b"\r\n\r\n" not in self.buf:
            if not self._recv(10):
                raise AssertionError(f"no response head: {self.buf!r}")
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        first, *rest = raw.decode("latin-1").split("\r\n")
        self.status = int(first.split()[1])
        self.headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in rest)}
        self.held = "content-length" not in self.headers
        self.ids: list[int] = []  # every id: line seen (the client's Last-Event-ID is the last)
        self.comments: list[str] = []

    def _recv(self, wait: float) -> bool:
        self.sock.settimeout(max(0.01, wait))
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        except OSError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def body(self) -> str:
        """A response that is not held: all of it."""
        n = int(self.headers.get("content-length", "0"))
        while len(self.buf) < n and self._recv(5):
            pass
        return self.buf.decode()

    def _frames(self) -> list[dict]:
        out = []
        while b"\n\n" in self.buf:
            chunk, self.buf = self.buf.split(b"\n\n", 1)
            f: dict = {}
            for line in chunk.decode().split("\n"):
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(": ")
                f[name] = value
            if "id" in f:
                self.ids.append(int(f["id"]))
            if "data" in f:
                out.append({"id": int(f["id"]), "event": f.get("event"), **json.loads(f["data"])})
        return out

    def events(self, wait: float = 2.0, until: int | None = None) -> list[dict]:
        """Events arriving within ``wait`` seconds (or as soon as ``until`` of them have come)."""
        got = self._frames()
        deadline = time.monotonic() + wait
        while (until is None or len(got) < until) and not self.eof:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self._recv(min(left, 0.2)):
                got += self._frames()
        return got + self._frames()

    def wait_closed(self, wait: float) -> bool:
        deadline = time.monotonic() + wait
        while not self.eof and time.monotonic() < deadline:
            self._recv(min(0.2, deadline - time.monotonic()))
            self._frames()
        return self.eof

    @property
    def last_id(self) -> int:
        self._frames()
        return self.ids[-1]

    def close(self) -> None:
        self.sock.close()
