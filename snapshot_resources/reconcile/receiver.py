"""The reconciler's HTTP side: Agora's notifications in, metrics and health out.

Served by waitress (a production WSGI server: an asyncore loop reads requests, a fixed pool of
threads runs the application) with the bounds of ``ReceiverLimits``: connections, threads,
request-header and body sizes, an idle timeout and a deadline for a whole request.  waitress
itself refuses what is malformed before the application sees it: two different
``Content-Length`` values, or one that is not digits, are 400 and the connection is closed (RFC
9112 section 6.3); a header section over the limit is 431 and a body over the limit 413, both
closing the connection, without reading the body.

Routes (``NotificationReceiver.__call__``, the WSGI application):

* ``POST /ncs``: an Agora notification (Cloud Recording, S12, or RTC channel event,
  S24).  The raw body is verified with ``events.verify_signature``
  (``Agora-Signature-V2`` / ``Agora-Signature`` with the NCS secret, and the replay window, S13),
  parsed (``notices.parse_notice``), dropped if its ``noticeId`` was seen
  (``events.SeenNotices``), then handed to the controller, which only queues work: the answer
  comes at once (Agora resends what is not answered 200 within 10 s, S13). With replicas on the
  shared store (``replicas``), the ``noticeId`` is recorded in the store (a redelivery to any
  replica is a duplicate) and the body goes to the stack's stream, from which every replica's
  controller takes it (counted there); while the store fails, this replica decides alone.
  Answers: 200 ``{"ok": true}`` (also for duplicates, other products and sids of other stacks:
  a resend would not change anything); 401 for a missing or wrong signature or a replay; 400 for
  a body that is not a notification; 411 without a body length; 404 ``{"error": ...}`` when no
  NCS secret is configured (notifications are then refused, never trusted unsigned); 503 once
  the reconciler is stopping (``drain``), and 500 when handling failed (the ``noticeId`` is then
  forgotten, so that Agora's resend is taken).
* ``GET /metrics``: Prometheus text format, by ``prometheus_client``'s WSGI application on the
  reconciler's own registry (``ReconcileMetrics``).
* ``GET /healthz``: ``Controller.status()`` as JSON.

``HEAD`` is answered as ``GET`` without a body, ``OPTIONS`` with 204 and ``Allow``; any other
method of a known path is 405 with ``Allow`` and a JSON error, an unknown path 404 (JSON).

Nothing a request sends is logged or echoed (bodies hold channel names; headers hold digests).
waitress's own log lines pass through ``quiet_server_log``: no socket errors (a client that hangs
up is normal), nothing below WARNING (its INFO lines name request paths), each kind of warning at
most once a minute, never a traceback.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import make_wsgi_app
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from snapshot_resources.events import (
    NotificationBodyError,
    ReplayError,
    SeenNotices,
    SignatureError,
    verify_signature,
)
from snapshot_resources.reconcile.controller import Controller
from snapshot_resources.reconcile.notices import UnsupportedProductError, event_label, parse_notice
from snapshot_resources.reconcile.replicas import ReplicaSet
from snapshot_resources.rules import is_ascii_digits

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = [
    "LIMITS",
    "MAX_BODY_BYTES",
    "NCS_PATH",
    "NotificationReceiver",
    "ReceiverLimits",
    "quiet_server_log",
]

NCS_PATH: Final = "/ncs"
log = logging.getLogger("snapshot_resources.reconcile")


@dataclass(frozen=True)
class ReceiverLimits:
    """The bounds of the receiver (docs/reconcile.md, "The receiver's limits").

    ``connections`` (int, 100): open connections at most; beyond it new ones wait in the listen
    backlog until one closes (waitress ``connection_limit``).  ``threads`` (int, 4): requests
    handled at once; the rest queue (waitress ``threads``).  ``header_bytes`` (int, 16384): the
    request line and headers together; more is 431 and the connection is closed
    (``max_request_header_size``).  ``body_bytes`` (int, 65536): the largest body taken; a
    longer one is 413, refused from its ``Content-Length`` before it is read (a notification is
    well under 4 KiB, S12 examples).  ``idle_timeout`` (float, 30 s): a keep-alive connection
    with no request in progress is closed after this long without a byte (``channel_timeout``;
    Agora asks for at least 10 s, S13).  ``request_timeout`` (float, 10 s): a request whose
    headers and body have not all arrived this long after its first byte is dropped with its
    connection (a client sending a byte now and then would otherwise hold a connection for
    ever).  Timeouts are enforced by a sweep every ``sweep_interval`` (float, 1 s), so they
    hold within that much.
    """

    connections: int = 100
    threads: int = 4
    header_bytes: int = 16 * 1024
    body_bytes: int = 64 * 1024
    idle_timeout: float = 30.0
    request_timeout: float = 10.0
    sweep_interval: float = 1.0

    def __post_init__(self) -> None:
        if min(self.connections, self.threads, self.header_bytes, self.body_bytes) < 1:
            raise ValueError("every receiver limit must be at least 1")
        if not (self.idle_timeout > 0 and self.request_timeout > 0 and self.sweep_interval > 0):
            raise ValueError("receiver timeouts must be positive")


LIMITS: Final = ReceiverLimits()
"""The limits the reconciler serves with."""
MAX_BODY_BYTES: Final = LIMITS.body_bytes

_ALLOWED: Final = {NCS_PATH: ("POST", "OPTIONS"), "/metrics": ("GET", "HEAD", "OPTIONS"),
                   "/healthz": ("GET", "HEAD", "OPTIONS")}
_STATUS_TEXT: Final = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
                       404: "Not Found", 405: "Method Not Allowed", 411: "Length Required",
                       413: "Content Too Large", 500: "Internal Server Error",
                       503: "Service Unavailable"}
_SERVER_LOGGERS: Final = ("waitress", "waitress.queue")
_WARN_EVERY: Final = 60.0  # seconds: each kind of server warning at most this often


class NotificationReceiver:
    """The reconciler's HTTP server for ``controller`` (module docstring).

    ``controller`` (``Controller``).  ``secret`` (str | sequence of str | None): the NCS secret,
    or several (Agora Console shows one per product configuration: a notification signed with any
    of them is authentic); None or an empty sequence refuses every notification (404).
    ``host`` (str, default ``127.0.0.1``; an IPv6 literal listens on IPv6), ``port`` (int, 0
    picks a free one): where to listen; anything but loopback should sit behind TLS (Agora
    posts to an HTTPS URL, S13).  ``clock`` (callable -> Unix seconds, default ``time.time``): the
    replay window's clock (an emulator on scaled time passes its own).  ``seen`` (``SeenNotices``
    | None).  ``limits`` (``ReceiverLimits``, default ``LIMITS``).  ``replicas``
    (``ReplicaSet`` | None): share notifications with the other replicas of the stack (module
    docstring); ``start()`` then also follows the stack's stream.

    The instance is the WSGI application.  ``start()`` serves in a thread and returns self;
    ``stop()`` closes every connection and joins every thread.  ``url`` is the base URL
    (``http://127.0.0.1:PORT``).  The constructor binds: ``OSError`` if the address is taken
    or cannot be listened on.
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
        limits: ReceiverLimits = LIMITS,
        replicas: ReplicaSet | None = None,
    ) -> None:
        secrets = (secret,) if isinstance(secret, str) else tuple(secret or ())
        if not all(isinstance(one, str) and one for one in secrets):
            raise ValueError("an NCS secret must be a non-empty string")
        self.controller = controller
        self.limits = limits
        self._secrets = secrets
        self._draining = threading.Event()
        self._clock = clock
        self._seen = seen or SeenNotices()
        self._replicas = replicas
        self._metrics_app = make_wsgi_app(controller.metrics.registry)
        quiet_server_log()
        self._map: dict[int, Any] = {}
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        adjustments = Adjustments(
            listen=listen, ident="snapshot-reconcile", threads=limits.threads,
            max_request_header_size=limits.header_bytes,
            # waitress refuses a Content-Length >= max_request_body_size: one more than the
            # largest body taken.
            max_request_body_size=limits.body_bytes + 1,
            channel_timeout=int(max(1, limits.idle_timeout)),
            cleanup_interval=int(max(1, limits.sweep_interval)),
            asyncore_loop_timeout=1, log_socket_errors=False, expose_tracebacks=False)
        # waitress counts the sockets of its map: the listening ones and its trigger too.
        addresses: list[Any] = list(adjustments.listen)
        adjustments.connection_limit = limits.connections + len(addresses) + 1
        self._dispatcher = ThreadedTaskDispatcher()
        self._dispatcher.set_thread_count(limits.threads)
        # As waitress.create_server does, one server per address the host resolves to, all on
        # one socket map served by one loop.
        self._servers = [_Server(self, map=self._map, dispatcher=self._dispatcher,
                                 adj=adjustments, sockinfo=sockinfo, limits=limits)
                         for sockinfo in addresses]
        self._thread = threading.Thread(target=self._servers[0].run, name="reconcile-receiver",
                                        daemon=True)

    @property
    def url(self) -> str:
        name, port = self._servers[0].getsockname()[:2]
        return f"http://[{name}]:{port}" if ":" in name else f"http://{name}:{port}"

    def start(self) -> NotificationReceiver:
        self._thread.start()
        if self._replicas is not None:
            self._replicas.follow(self._from_stream, self.controller.exported)
        return self

    def _from_stream(self, body: bytes) -> None:
        """A notification some replica took (``replicas.follow``): to this controller."""
        notice = parse_notice(body)
        product, event = event_label(notice)
        outcome = self.controller.notify(notice)
        self.controller.metrics.notifications.labels(product, event, outcome).inc()

    def drain(self) -> None:
        """Answer 503 to every notification from now on (``/metrics`` and ``/healthz`` still
        answer): called when the reconciler starts to stop, so that nothing is acknowledged that
        nothing will act on."""
        self._draining.set()

    def stop(self) -> None:
        """Stop serving: the request threads finish what they handle (at most 5 s), every
        connection and the listening socket are closed, and the serving thread is joined."""
        self._dispatcher.shutdown(timeout=5)

        def close_all() -> None:
            wasyncore.close_all(self._map)

        if self._thread.is_alive():
            # Closed from the serving thread itself (a waitress trigger runs the function
            # there): its poll wakes at once and the loop ends with the emptied map.
            trigger: Any = self._servers[0].trigger
            try:
                trigger.pull_trigger(close_all)
            except OSError:
                # The trigger is one of the map's sockets: closed means the loop is already
                # closing everything (seen once under load as EBADF), so only the join remains.
                log.debug("the receiver's trigger was already closed")
            self._thread.join(10)
        if self._thread.is_alive() or self._map:
            close_all()

    def __enter__(self) -> NotificationReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the WSGI application --------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        method = str(environ.get("REQUEST_METHOD", ""))
        allowed = _ALLOWED.get(path)
        if allowed is None:
            return _json(start_response, 404, {"error": "not found"})
        if method == "OPTIONS":
            return _answer(start_response, 204, b"", "text/plain", [("Allow", ", ".join(allowed))])
        if method not in allowed:
            return _json(start_response, 405, {"error": f"{method} is not allowed on {path}"},
                         [("Allow", ", ".join(allowed))])
        if path == NCS_PATH:
            return self._post_ncs(environ, start_response)
        head = method == "HEAD"
        if path == "/metrics":
            if not head:
                return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
            return self._head_of_metrics(environ, start_response)
        body = _json_bytes(self.controller.status())
        return _answer(start_response, 200, b"" if head else body, "application/json",
                       length=len(body))

    def _head_of_metrics(self, environ: WSGIEnvironment, start_response: StartResponse
                         ) -> Iterable[bytes]:
        """``GET /metrics``'s status and headers, with its length and without its body."""
        got: list[tuple[str, list[tuple[str, str]]]] = []

        def keep(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            got.append((status, headers))

        body = b"".join(self._metrics_app({**environ, "REQUEST_METHOD": "GET"}, keep))
        status, headers = got[0]
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return []

    def _post_ncs(self, environ: WSGIEnvironment, start_response: StartResponse
                  ) -> Iterable[bytes]:
        length_text = str(environ.get("CONTENT_LENGTH") or "")
        if not is_ascii_digits(length_text):
            # waitress has already refused a malformed length (400) and decoded a chunked body
            # (setting the length): here the request came without a body length at all.
            return _json(start_response, 411, {"error": "send the body with a Content-Length"})
        length = int(length_text)
        if length > self.limits.body_bytes:  # waitress refuses these first; kept as a guard
            return _json(start_response, 413,
                         {"error": f"body over {self.limits.body_bytes} bytes"})
        body = environ["wsgi.input"].read(length)
        try:
            status, answer = self.receive(body, _headers(environ))
        except Exception as error:  # a bug must not stop the server; the type says where
            log.error("receiver: %s while handling a notification", type(error).__name__)
            status, answer = 500, {"error": "internal error"}
        return _json(start_response, status, answer)

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
        first = None if self._replicas is None else self._replicas.first(
            notice.notice_id, self._seen.ttl)
        if not self._seen.check_and_remember(notice) or first is False:
            metrics.labels(product, event, "duplicate").inc()
            return 200, {"ok": True}
        if first and self._replicas is not None:
            if self._replicas.publish(body):
                return 200, {"ok": True}  # every replica takes it from the stream
            self._replicas.forget(notice.notice_id)
        try:
            outcome = self.controller.notify(notice)
        except Exception:
            # Not handled: the 500 makes Agora resend it (S13), and the resend must not be
            # dropped as a repeat.
            self._seen.forget(notice.notice_id)
            if self._replicas is not None:
                self._replicas.forget(notice.notice_id)
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


def _headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The request's headers by their usual names (``HTTP_AGORA_SIGNATURE_V2`` ->
    ``Agora-Signature-V2``); waitress joins a repeated header's values with ``, ``."""
    return {key[5:].replace("_", "-").title(): str(value) for key, value in environ.items()
            if key.startswith("HTTP_")}


def _json_bytes(answer: dict[str, Any]) -> bytes:
    return json.dumps(answer, separators=(",", ":")).encode()


def _json(start_response: StartResponse, status: int, answer: dict[str, Any],
          headers: Sequence[tuple[str, str]] = ()) -> list[bytes]:
    return _answer(start_response, status, _json_bytes(answer), "application/json", headers)


def _answer(start_response: StartResponse, status: int, body: bytes, content_type: str,
            headers: Sequence[tuple[str, str]] = (), *, length: int | None = None) -> list[bytes]:
    sent = [("Content-Type", content_type), *headers]
    if status != 204:
        sent.append(("Content-Length", str(len(body) if length is None else length)))
    start_response(f"{status} {_STATUS_TEXT[status]}", sent)
    return [body] if body else []


# -- waitress: a deadline per request, and a quiet log ------------------------------------------


class _DeadlineChannel(HTTPChannel):
    """A waitress connection that remembers since when a request has been arriving
    (``partial_since``, monotonic seconds; None between requests)."""

    partial_since: float | None = None

    def received(self, data: bytes) -> bool:
        taken = super().received(data)
        if self.request is None:
            self.partial_since = None
        elif self.partial_since is None:
            self.partial_since = time.monotonic()
        return taken


class _Server(TcpWSGIServer):
    """waitress's TCP server with ``_DeadlineChannel`` connections, whose periodic sweep also
    drops a request that is late (``ReceiverLimits.request_timeout``)."""

    channel_class = _DeadlineChannel

    def __init__(self, *args: Any, limits: ReceiverLimits, **kwargs: Any) -> None:
        self.limits = limits
        super().__init__(*args, **kwargs)

    def maintenance(self, now: Any) -> None:
        super().maintenance(now)
        late = time.monotonic() - self.limits.request_timeout
        channels: dict[int, Any] = self.active_channels  # type: ignore[assignment]
        for channel in list(channels.values()):
            since = getattr(channel, "partial_since", None)
            if since is not None and since < late:
                channel.will_close = True


class _ServerLogFilter(logging.Filter):
    """waitress's log made quiet (module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return False
        record.exc_info = None  # no traceback, whatever happened
        record.exc_text = None
        key = (record.name, str(record.msg))
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -_WARN_EVERY) < _WARN_EVERY:
                return False
            if len(self._last) > 1_000:  # bounded: message templates are few
                self._last.clear()
            self._last[key] = now
        return True


_FILTER: Final = _ServerLogFilter()


def quiet_server_log() -> None:
    """Install the filter on waitress's loggers (idempotent): no socket errors, nothing below
    WARNING, each kind of warning at most once a minute, never a traceback."""
    for name in _SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
