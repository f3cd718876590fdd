"""The reconciler's HTTP side: Agora's notifications in, metrics and health out.

Routes:

* ``POST /ncs``: an Agora notification (Cloud Recording, S12, or RTC channel event,
  S24).  The raw body is verified with ``events.verify_signature``
  (``Agora-Signature-V2`` / ``Agora-Signature`` with the NCS secret, and the replay window, S13),
  parsed (``notices.parse_notice``), dropped if its ``noticeId`` was seen
  (``events.SeenNotices``), then handed to the controller, which only queues work: the answer
  comes at once (Agora resends what is not answered 200 within 10 s, S13).
  Answers: 200 ``{"ok": true}`` (also for duplicates, other products and sids of other stacks:
  a resend would not change anything); 401 for a missing or wrong signature or a replay; 400 for
  a body that is not a notification; 413 over ``MAX_BODY_BYTES``; 404 ``{"error": ...}`` when no
  NCS secret is configured (notifications are then refused, never trusted unsigned); 503 once
  the reconciler is stopping (``drain``), and 500 when handling failed (the ``noticeId`` is then
  forgotten, so that Agora's resend is taken).
* ``GET /metrics``: Prometheus text format (``ReconcileMetrics``).
* ``GET /healthz``: ``Controller.status()`` as JSON.

Nothing a request sends is logged or echoed (bodies hold channel names; headers hold digests).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar, Final

from snapshot_resources.events import (
    NotificationBodyError,
    ReplayError,
    SeenNotices,
    SignatureError,
    verify_signature,
)
from snapshot_resources.http_server import ConnectionTrackingServer
from snapshot_resources.reconcile.controller import Controller
from snapshot_resources.reconcile.metrics import CONTENT_TYPE
from snapshot_resources.reconcile.notices import UnsupportedProductError, event_label, parse_notice
from snapshot_resources.rules import is_ascii_digits

__all__ = ["MAX_BODY_BYTES", "NCS_PATH", "NotificationReceiver"]

NCS_PATH: Final = "/ncs"
MAX_BODY_BYTES: Final = 64 * 1024  # a notification is well under 4 KiB (S12 examples)
log = logging.getLogger("snapshot_resources.reconcile")


class NotificationReceiver:
    """A threaded HTTP server for ``controller`` (module docstring).

    ``controller`` (``Controller``).  ``secret`` (str | sequence of str | None): the NCS secret,
    or several (Agora Console shows one per product configuration: a notification signed with any
    of them is authentic); None or an empty sequence refuses every notification (404).
    ``host`` (str, default ``127.0.0.1``; an IPv6 literal listens on IPv6), ``port`` (int, 0
    picks a free one): where to listen; anything but loopback should sit behind TLS (Agora
    posts to an HTTPS URL, S13).  ``clock`` (callable -> Unix seconds, default ``time.time``): the replay window's
    clock (an emulator on scaled time passes its own).  ``seen`` (``SeenNotices`` | None).

    ``start()`` binds and serves in a thread and returns self; ``stop()`` stops and joins every
    thread.  ``url`` is the base URL (``http://127.0.0.1:PORT``).  Raises ``OSError`` if the
    address is taken.
    """

    def __init__(
        self,
        controller: Controller,
        *,
        secret: str | Sequence[str] | None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        seen: SeenNotices | None = None,
    ) -> None:
        secrets = (secret,) if isinstance(secret, str) else tuple(secret or ())
        if not all(isinstance(one, str) and one for one in secrets):
            raise ValueError("an NCS secret must be a non-empty string")
        self.controller = controller
        self._secrets = secrets
        self._draining = threading.Event()
        self._clock = clock
        self._seen = seen or SeenNotices()
        handler = type("ReceiverHandler", (_Handler,), {"receiver": self})
        self._server = ConnectionTrackingServer((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="reconcile-receiver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://[{name}]:{port}" if ":" in name else f"http://{name}:{port}"

    def start(self) -> NotificationReceiver:
        self._thread.start()
        return self

    def drain(self) -> None:
        """Answer 503 to every notification from now on (``/metrics`` and ``/healthz`` still
        answer): called when the reconciler starts to stop, so that nothing is acknowledged that
        nothing will act on."""
        self._draining.set()

    def stop(self) -> None:
        """Stop serving, close open keep-alive connections, join every thread."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.drop_connections()
        self._server.server_close()

    def __enter__(self) -> NotificationReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def receive(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Handle one ``POST /ncs``: ``(status, JSON answer)`` (module docstring)."""
        metrics = self.controller.metrics.notifications
        if self._draining.is_set():
            # Nothing would act on it any more: 503 makes Agora resend it (S13), to the next
            # process if it is up by then.
            return 503, {"error": "stopping: notifications are not taken"}
        if not self._secrets:
            metrics.labels("unknown", "-", "bad_signature").inc()
            return 404, {"error": "no NCS secret configured: notifications are not accepted"}
        try:
            self._verify(body, headers)
        except ReplayError:
            metrics.labels("unknown", "-", "replayed").inc()
            return 401, {"error": "notifyMs outside the replay window (S13)"}
        except SignatureError:
            metrics.labels("unknown", "-", "bad_signature").inc()
            return 401, {"error": "signature missing or wrong (S13)"}
        except NotificationBodyError:
            metrics.labels("unknown", "-", "bad_body").inc()
            return 400, {"error": "not a notification body (S13)"}
        try:
            notice = parse_notice(body)
        except UnsupportedProductError:
            metrics.labels("other", "-", "ignored").inc()
            return 200, {"ok": True}
        except NotificationBodyError as error:
            metrics.labels("unknown", "-", "bad_body").inc()
            return 400, {"error": str(error)}
        product, event = event_label(notice)
        if not self._seen.check_and_remember(notice):
            metrics.labels(product, event, "duplicate").inc()
            return 200, {"ok": True}
        try:
            outcome = self.controller.notify(notice)
        except Exception:
            # Not handled: the 500 makes Agora resend it (S13), and the resend must not be
            # dropped as a repeat.
            self._seen.forget(notice.notice_id)
            raise
        metrics.labels(product, event, outcome).inc()
        return 200, {"ok": True}

    def _verify(self, body: bytes, headers: dict[str, str]) -> None:
        """``events.verify_signature`` with each secret until one holds; the last secret's error
        otherwise.  A replay is a replay under the secret that signed it."""
        for index, secret in enumerate(self._secrets):
            try:
                verify_signature(body, headers, secret, clock=self._clock)
                return
            except ReplayError:
                raise
            except SignatureError:
                if index == len(self._secrets) - 1:
                    raise


class _Handler(BaseHTTPRequestHandler):
    receiver: ClassVar[NotificationReceiver]
    protocol_version = "HTTP/1.1"
    server_version = "snapshot-reconcile"
    sys_version = ""
    timeout = 30

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK held every keep-alive answer 40 ms (benchmarks/reconcile.py).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != NCS_PATH:
            self.close_connection = True  # the body stays unread on the socket
            self._json(404, {"error": "not found"})
            return
        length_text = self.headers.get("Content-Length", "")
        if not is_ascii_digits(length_text) or self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._json(411, {"error": "send the body with a Content-Length"})
            return
        length = int(length_text) if len(length_text) <= 12 else MAX_BODY_BYTES + 1
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._json(413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
            return
        body = self.rfile.read(length)
        headers = {name: value for name, value in self.headers.items()}
        try:
            status, answer = self.receiver.receive(body, headers)
        except Exception as error:  # a bug must not stop the server; the type says where
            log.error("receiver: %s while handling a notification", type(error).__name__)
            status, answer = 500, {"error": "internal error"}
        self._json(status, answer)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, self.receiver.controller.metrics.render(), CONTENT_TYPE)
        elif path == "/healthz":
            self._json(200, self.receiver.controller.status())
        else:
            self._json(404, {"error": "not found"})

    def _json(self, status: int, answer: dict[str, Any]) -> None:
        self._send(status, json.dumps(answer, separators=(",", ":")).encode(),
                   "application/json")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return  # silent: module docstring
