"""The thin HTTP layer: parse a request, pass it through the gateway, call the backend, answer.

Order of the checks, as Agora's gateway then service apply them: framing (Content-Length, body
size) -> route (404, S7) -> Basic auth (401, S7) -> QPS limit (429, S7) -> injected faults -> body
format (400 code 8, S18) -> the backend.  Every request is counted and logged by method, path and
status only.

No request can make the server answer 500 with a traceback or stop answering; the limits are:

* a body of at most ``MAX_BODY_BYTES``; a longer one is 413, and a malformed ``Content-Length``
  (not one number of ASCII digits, or two that differ) or a chunked body is 400, both
  ``{"code": 8, ...}`` (header or body format, S18; the admin API answers ``{"error": ...}``);
* a body that is not JSON is 400 code 8 (S18); JSON that no Agora field can hold is 400 code 2
  (S7: out of range): nesting deeper than ``MAX_JSON_DEPTH``, an integer outside 64 bits (checked
  before Python converts it, so no int-string limit is hit), and any non-finite number (``NaN``,
  ``Infinity``, ``1e999``; Python's ``json`` would accept them), and a string holding a lone UTF-16
  surrogate (``"\\ud800"``: ``json`` decodes it to a code point no UTF-8 text can hold).  The
  admin API decodes its bodies the same way and answers ``400 {"error": ...}``;
* any method on any path gets JSON: an unknown method is a wrong route, 404 ``{"message": "no Route
  matched with those values"}`` (S7), and what the standard library refuses itself (a malformed
  request line, headers too long) is answered ``{"message": ...}`` too.
"""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import struct
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar, Final

from snapshot_resources.emulator import urls
from snapshot_resources.emulator.errors import (
    EmulatorError,
    ServiceError,
    bad_request_format,
    describe_exception,
    invalid_parameter,
    no_route,
)
from snapshot_resources.emulator.faults import FaultInjector, FaultPlan, fault_error
from snapshot_resources.emulator.gateway import Gateway
from snapshot_resources.emulator.models import Backend
from snapshot_resources.rules import is_ascii_digits

MAX_BODY_BYTES: Final = 1 << 20  # 1 MiB: a start body is a few kB (32 uids per list, S3)
MAX_JSON_DEPTH: Final = 32  # Agora's bodies nest 5 deep (clientRequest.streamSubscribe..., S5)
MAX_JSON_INT: Final = 2**63 - 1  # no Agora field is wider (uids 32-bit, S2; Unix seconds, S2)
# An oversized body up to this size is read and dropped, so that the client reads the 413 and the
# keep-alive connection stays usable; a larger one is answered and the connection closed.
DRAIN_BYTES: Final = 16 << 20
_INT_DIGITS: Final = len(str(MAX_JSON_INT))
_log = logging.getLogger(__name__)
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    reset: bool = False  # drop the connection instead of answering


@dataclass(frozen=True)
class Framing:
    """Why a request's body was not read (module docstring): the status and the reason."""

    status: int
    reason: str


class BodyError(ValueError):
    """A body that is not JSON (``code`` 8, S18) or holds a value no field can take (2, S7)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def decode_json(body: bytes) -> Any:
    """``json.loads`` within the limits of the module docstring; ``BodyError`` otherwise."""
    try:
        data = json.loads(body, parse_int=_bounded_int, parse_float=_finite_float,
                          parse_constant=_no_constant)
    except BodyError:
        raise
    except RecursionError:
        raise BodyError(2, f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BodyError(8, "the body is not JSON (S18)") from None
    if _depth_exceeds(data, MAX_JSON_DEPTH):
        raise BodyError(2, f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    if _holds_lone_surrogate(data):
        raise BodyError(2, "a string holds a lone UTF-16 surrogate (an escape such as \\ud800 "
                        "without its pair): not Unicode text")
    return data


def _bounded_int(text: str) -> int:
    # The length first: int() of thousands of digits raises (the int-string limit) or is slow.
    if len(text.removeprefix("-")) <= _INT_DIGITS:
        value = int(text)
        if abs(value) <= MAX_JSON_INT:
            return value
    shown = text if len(text) <= 24 else f"{text[:24]}..."
    raise BodyError(2, f"the integer {shown} is outside 64 bits; no Agora field holds it")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(2, f"the number {text[:24]} is out of range; numbers must be finite")
    return value


def _no_constant(name: str) -> Any:
    raise BodyError(2, f"{name} is not a number JSON allows; numbers must be finite")


def _holds_lone_surrogate(data: Any) -> bool:
    """Whether a string (value or key) holds a code point U+D800..U+DFFF, which ``json`` makes
    of an unpaired ``\\ud800`` escape and which no UTF-8 text can hold; iteratively."""
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if not node.isascii() and _SURROGATE.search(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _depth_exceeds(data: Any, limit: int) -> bool:
    """Iteratively, so that checking the depth cannot itself recurse too deep."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node \
            if isinstance(node, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


class Responses:
    """Maps one decoded HTTP request to a ``Reply``; owns no sockets."""

    def __init__(self, *, backend: Backend, gateway: Gateway, faults: FaultInjector,
                 latency_ms: int = 0,
                 extra_counters: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self.backend = backend
        self.gateway = gateway
        self.faults = faults
        self.latency_ms = latency_ms
        self._extra_counters = extra_counters

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes,
               framing: Framing | None = None) -> Reply:
        """Answer one request; ``framing`` says why its body was not read, if it was not."""
        path = path.split("?", 1)[0]
        if path.startswith(urls.ADMIN_PREFIX):
            if framing is not None:
                return Reply(framing.status, {"error": framing.reason})
            return self._admin(method, path, body)
        operation = "route"
        fault: str | None = None
        try:
            if framing is not None:
                operation = "body"
                raise ServiceError(framing.status, 8, framing.reason)
            found = urls.match(urls.REST_ROUTES, method, path)
            if found is None:
                raise no_route()
            operation, params = found
            self.gateway.authenticate(headers.get("Authorization"))
            if "appid" in params:
                self.gateway.admit(params["appid"])
            decision = self.faults.decide(operation)
            if self.latency_ms or decision.latency_ms:
                time.sleep((self.latency_ms + decision.latency_ms) / 1000)
            fault = decision.kind
            if fault == "reset":
                reply = Reply(0, reset=True)
            elif fault is not None:
                raise fault_error(fault, operation)
            else:
                reply = self._rest(operation, params, method, headers, body)
        except EmulatorError as error:
            reply = Reply(error.status, error.body())
        except Exception as error:
            # A bug, not the caller's fault: one log line (type and place, never the message,
            # which can quote the request), an answer, and the server keeps serving.
            _log.error("emulator %s failed: %s", operation, describe_exception(error))
            reply = Reply(500, {"code": 500, "reason": "internal_error"})
        self.gateway.record(method=method, path=path, operation=operation,
                            status=None if reply.reset else reply.status, fault=fault)
        return reply

    def _rest(self, operation: str, params: dict[str, str], method: str,
              headers: Mapping[str, str], body: bytes) -> Reply:
        backend = self.backend
        if operation == "ncsIp":
            # The notifier addresses (S1, S17): here, the emulator's own loopback.
            return Reply(200, {"data": {"service": {"hosts": [{"primaryIP": "127.0.0.1"}]}}})
        if operation == "query":
            return Reply(200, backend.query(params["appid"], params["rid"], params["sid"],
                                            params["mode"]))
        data = _json_body(headers, body)
        if operation == "acquire":
            return Reply(200, backend.acquire(params["appid"], data))
        if operation == "start":
            return Reply(200, backend.start(params["appid"], params["rid"], params["mode"], data))
        if operation == "update":
            return Reply(200, backend.update(params["appid"], params["rid"], params["sid"],
                                             params["mode"], data))
        if operation == "updateLayout":
            backend.query(params["appid"], params["rid"], params["sid"], params["mode"])
            raise ServiceError(400, 2, "updateLayout applies to composite (mix) and web "
                               "recording only, not to individual snapshots (S1)")
        status, answer = backend.stop(params["appid"], params["rid"], params["sid"],
                                      params["mode"], data)
        return Reply(status, answer)

    # ----------------------------------------------------------------------------------------------
    # Admin API (documented in urls.py)

    def _admin(self, method: str, path: str, body: bytes) -> Reply:
        found = urls.match(urls.ADMIN_ROUTES, method, path)
        if found is None:
            return Reply(404, {"error": f"no admin route {method} {path}"})
        operation, params = found
        try:
            data = decode_json(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            return Reply(200, self._admin_call(operation, params, data))
        except KeyError as error:
            return Reply(404, {"error": f"not found: {error.args[0] if error.args else ''}"})
        except (ValueError, TypeError) as error:
            return Reply(400, {"error": str(error)})
        except Exception as error:
            # A bug, not the caller's fault: answer, log without the message, keep serving.
            where = describe_exception(error)
            _log.error("emulator admin %s failed: %s", operation, where)
            return Reply(500, {"error": f"internal error: {where}"})

    def _admin_call(self, operation: str, params: dict[str, str],
                    data: dict[str, Any]) -> Any:
        backend = self.backend
        if operation == "join":
            uid = data.get("uid")
            if isinstance(uid, int) and not isinstance(uid, bool):
                uid = str(uid)
            if not isinstance(uid, str):
                raise ValueError("uid: a uid string")
            backend.join(params["appid"], params["cname"], uid,
                         video=_flag(data, "video", True), audio=_flag(data, "audio", True))
            return {"ok": True}
        if operation == "publish":
            backend.set_publishing(params["appid"], params["cname"], params["uid"],
                                   video=_flag(data, "video", None))
            return {"ok": True}
        if operation == "leave":
            backend.leave(params["appid"], params["cname"], params["uid"])
            return {"ok": True}
        if operation == "failover":
            downtime = data.get("downtimeSeconds")
            if downtime is not None and (isinstance(downtime, bool)
                                         or not isinstance(downtime, int | float)):
                raise ValueError("downtimeSeconds: a finite, non-negative number")
            # The backend refuses NaN, infinities and negatives, naming the field.
            return backend.failover(params["sid"], downtime=downtime)
        if operation == "restoreTask":
            hours = data.get("resourceExpiredHour", 720)
            if isinstance(hours, bool) or not isinstance(hours, int) or hours < 1:
                raise ValueError("resourceExpiredHour: a positive integer")
            body = {k: data[k] for k in ("cname", "uid", "clientRequest") if k in data}
            return backend.restore_task(str(data.get("appId", "")), data.get("resourceId", ""),
                                        params["sid"], body, resource_expired_hour=hours)
        if operation == "setFaults":
            plan = FaultPlan.from_json(data)
            self.faults.set(plan)
            return plan.to_json()
        if operation == "clearFaults":
            self.faults.clear()
            return self.faults.plan.to_json()
        if operation == "credentials":
            customer_id, customer_secret = data.get("customerId"), data.get("customerSecret")
            if not (isinstance(customer_id, str) and customer_id
                    and isinstance(customer_secret, str) and customer_secret):
                raise ValueError("customerId and customerSecret: non-empty strings")
            self.gateway.set_credentials(customer_id, customer_secret)
            return {"ok": True}
        return self._admin_read(operation)

    def _admin_read(self, operation: str) -> Any:
        if operation == "getFaults":
            return self.faults.plan.to_json()
        if operation == "tasks":
            return self.backend.tasks()
        if operation == "channels":
            return self.backend.channels()
        if operation == "requests":
            return self.gateway.request_log()
        if operation == "events":
            return self.backend.events()
        counters = {**self.gateway.counters(), **self.backend.snapshot_counters()}
        if self._extra_counters is not None:
            counters.update(self._extra_counters())
        return counters


def _flag(data: Mapping[str, Any], name: str, default: bool | None) -> bool:
    value = data.get(name, default)
    if not isinstance(value, bool):
        raise ValueError(f"{name}: true or false")
    return value


def _json_body(headers: Mapping[str, str], body: bytes) -> Any:
    """Decode a POST body: JSON with a JSON Content-Type, else 400 code 8 (S18); JSON beyond the
    limits of the module docstring is 400 code 2 (S7)."""
    content_type = headers.get("Content-Type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise bad_request_format("Content-Type must be application/json;charset=utf-8 (S18)")
    try:
        return decode_json(body)
    except BodyError as error:
        if error.code == 8:
            raise bad_request_format(error.reason) from None
        raise invalid_parameter(error.reason) from None


class Handler(BaseHTTPRequestHandler):
    """Socket I/O only; ``emulator`` is set on a subclass by the server."""

    emulator: ClassVar[Responses]
    protocol_version = "HTTP/1.1"  # keep-alive, as clients with a session expect
    server_version = "agora-emulator"
    sys_version = ""
    timeout = 30  # an idle keep-alive connection is closed after this many seconds

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        body, framing = self._read_body()
        headers = {name: value for name, value in self.headers.items()}
        reply = self.emulator.handle(self.command, self.path, headers, body, framing)
        if reply.reset:
            self._reset()
            return
        payload = json.dumps(reply.body, separators=(",", ":")).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Request-ID", uuid.uuid4().hex)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_body(self) -> tuple[bytes, Framing | None]:
        """The body, or why it was not read (module docstring).  Whenever the body is left on the
        socket, the connection is closed after the answer: its bytes are not a next request."""
        if self.headers.get("Transfer-Encoding") is not None:
            self.close_connection = True
            return b"", Framing(400, "send the body with a Content-Length, not chunked (S18)")
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return b"", None
        text = values[0].strip()
        if any(v.strip() != text for v in values) or not is_ascii_digits(text):
            self.close_connection = True
            return b"", Framing(400, "Content-Length must be one number of bytes (S18)")
        # Eighteen digits are more than any drainable size; int() never sees thousands of them.
        length = int(text) if len(text) <= 18 else DRAIN_BYTES + 1
        if length > MAX_BODY_BYTES:
            if length <= DRAIN_BYTES:
                self._drain(length)
            else:
                self.close_connection = True
            return b"", Framing(413, f"the body is too large: the emulator takes at most "
                                f"{MAX_BODY_BYTES} bytes (MAX_BODY_BYTES)")
        return self.rfile.read(length), None

    def _drain(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 64 << 10))
            if not chunk:
                self.close_connection = True
                return
            length -= len(chunk)

    def _reset(self) -> None:
        # Close with SO_LINGER 0: the client sees a reset connection, not an answer.
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler looks up ``do_<METHOD>`` and answers 501 in HTML when it is
        # missing; every other method is a wrong route here, answered in JSON (S7).
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """What the standard library refuses by itself (a malformed request line, headers too
        long...), answered in the gateway's JSON shape ``{"message": ...}`` (S7), not HTML."""
        self.close_connection = True
        short = message or self.responses.get(code, ("Bad Request",))[0]
        payload = json.dumps({"message": short}, separators=(",", ":")).encode()
        self.send_response(code, message)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        # Silent: the gateway's request log (method, path, status) is the only log.
        return
