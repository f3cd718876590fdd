"""A tiny scriptable Agora stand-in on loopback, for the client's unit tests.

It answers each request with the next scripted reply (or a plausible success for the path when the
script is empty) and records what it received.  The emulator (``snapshot_resources.testing``) is
the faithful server; this stub exists to pin one HTTP exchange at a time: exact statuses, bodies,
headers, delays and redirects that the emulator has no reason to produce.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from snapshot_resources.http_server import ConnectionTrackingServer


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: dict[str, Any] | str | None = None  # None: the default success body for the path
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Builds the body from the request instead (a server that echoes what it received).
    echo: Callable[[Received], dict[str, Any] | str] | None = None


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def default_body(path: str) -> dict[str, Any]:
    if path.endswith("/acquire"):
        return {"cname": "c1", "uid": "527841", "resourceId": "rid-1"}
    if path.endswith("/start"):
        return {"cname": "c1", "uid": "527841", "resourceId": "rid-1", "sid": "sid-1"}
    if path.endswith("/query"):
        return {"sid": "sid-1", "serverResponse": {"status": 5, "sliceStartTime": 1700000000000}}
    if path.endswith("/stop"):
        return {"sid": "sid-1", "serverResponse": {"uploadingStatus": "uploaded"}}
    return {"cname": "c1", "uid": "527841", "resourceId": "rid-1", "sid": "sid-1"}


class _QuietServer(ConnectionTrackingServer):
    # Handler threads are joined on close (no traceback printed from a thread while the test
    # thread runs: Python 3.11 parses source with ``ast`` for both, and that is not thread-safe);
    # idle keep-alive connections are shut down first, so that stop() does not wait them out.

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up is what the timeout tests do on purpose


class StubAgora:
    def __init__(self) -> None:
        self._script: deque[Reply] = deque()
        # Sticky answers by path suffix, used before the script (e.g. every /query answers 2).
        self._routes: list[tuple[str, Reply]] = []
        self._lock = threading.Lock()
        self.received: list[Received] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes
            timeout = 5  # an idle keep-alive connection does not hold stop() forever

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with stub._lock:
                    stub.received.append(
                        Received(self.command, self.path, dict(self.headers.items()), body)
                    )
                    routed = [r for suffix, r in stub._routes if self.path.endswith(suffix)]
                    scripted = stub._script.popleft() if stub._script and not routed else None
                    reply = routed[0] if routed else scripted or Reply()
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body if reply.body is not None else default_body(self.path)
                if reply.echo is not None:
                    request = Received(self.command, self.path, dict(self.headers.items()), body)
                    payload = reply.echo(request)
                raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            do_GET = _handle  # noqa: N815 - http.server's naming
            do_POST = _handle  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def route(self, suffix: str, reply: Reply) -> None:
        """Answer every request whose path ends with ``suffix`` with ``reply`` from now on."""
        with self._lock:
            self._routes.append((suffix, reply))

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.received]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.drop_connections()
        self._server.server_close()
        self._thread.join()


@contextmanager
def run_stub() -> Iterator[StubAgora]:
    stub = StubAgora()
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()


def refused_url() -> str:
    """A loopback URL nothing listens on: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
