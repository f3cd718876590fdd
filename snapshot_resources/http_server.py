"""A threaded HTTP server that stops cleanly, for the emulator and the test suite's loopback servers.

``http.server.ThreadingHTTPServer`` leaves request threads running after ``server_close`` unless
``block_on_close``, and a thread serving an open keep-alive connection then holds the close for
the handler's timeout: ``ConnectionTrackingServer`` tracks those connections so that they can be
shut down first (``drop_connections``).

Log hygiene: ``socketserver`` prints a traceback to stderr for any error in a request thread,
also when a client merely hangs up before reading its answer.  Here a client that goes away
(``ConnectionError``, ``TimeoutError``) is not logged at all, and any other error is one line on
the logger ``snapshot_resources.http`` naming its type and where it was raised, never its message
or a traceback (the emulator's log stays one line per event).  The reconciler's receiver does not
use this server: it runs on waitress (``reconcile.receiver``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import PurePath
from typing import Any

__all__ = ["ConnectionTrackingServer"]

log = logging.getLogger("snapshot_resources.http")


class ConnectionTrackingServer(ThreadingHTTPServer):
    """A threaded HTTP server that can be stopped cleanly: request threads are joined on close
    (no leaks) and open keep-alive connections can be shut down first (``drop_connections``).
    Also used by tests that put a loopback proxy in front of the emulator."""

    daemon_threads = False
    block_on_close = True
    # socketserver's default listen backlog is 5: fifty clients connecting at once were reset.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        # An IPv6 literal (``::1``, ``::``) needs an IPv6 socket; the class default is IPv4.
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One line, or nothing for a client that went away (module docstring)."""
        error = sys.exc_info()[1]
        if error is None or isinstance(error, ConnectionError | TimeoutError):
            return
        frames = traceback.extract_tb(error.__traceback__)
        where = f" at {PurePath(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
        log.error("%s%s while serving a request", type(error).__name__, where)

    def drop_connections(self) -> None:
        with self.connections_lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
