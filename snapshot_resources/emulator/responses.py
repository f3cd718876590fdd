"""The thin HTTP layer: parse a request, pass it through the gateway, call the backend, answer.

Order of the checks, as Agora's gateway then service apply them: route (404, S7) -> Basic auth
(401, S7) -> QPS limit (429, S7) -> injected faults -> body format (400 code 8, S18) -> the
backend.  Every request is counted and logged by method, path and status only.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

from snapshot_resources.emulator import urls
from snapshot_resources.emulator.errors import (
    EmulatorError,
    ServiceError,
    bad_request_format,
    no_route,
)
from snapshot_resources.emulator.faults import FaultInjector, FaultPlan, fault_error
from snapshot_resources.emulator.gateway import Gateway
from snapshot_resources.emulator.models import Backend


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    reset: bool = False  # drop the connection instead of answering


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

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        path = path.split("?", 1)[0]
        if path.startswith(urls.ADMIN_PREFIX):
            return self._admin(method, path, body)
        operation = "route"
        fault: str | None = None
        try:
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
        except Exception:
            traceback.print_exc(file=sys.stderr)
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
            data = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("the body must be a JSON object")
            return Reply(200, self._admin_call(operation, params, data))
        except KeyError as error:
            return Reply(404, {"error": f"not found: {error.args[0] if error.args else ''}"})
        except (ValueError, TypeError) as error:
            return Reply(400, {"error": str(error)})

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
                                         or not isinstance(downtime, int | float)
                                         or downtime < 0):
                raise ValueError("downtimeSeconds: a non-negative number")
            return backend.failover(params["sid"], downtime=downtime)
        if operation == "setFaults":
            plan = FaultPlan.from_json(data)
            self.faults.set(plan)
            return plan.to_json()
        if operation == "clearFaults":
            self.faults.clear()
            return self.faults.plan.to_json()
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
    """Decode a POST body: JSON with a JSON Content-Type, else 400 code 8 (S18)."""
    content_type = headers.get("Content-Type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise bad_request_format("Content-Type must be application/json;charset=utf-8 (S18)")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise bad_request_format("the body is not JSON (S18)") from None


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
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {name: value for name, value in self.headers.items()}
        reply = self.emulator.handle(self.command, self.path, headers, body)
        if reply.reset:
            self._reset()
            return
        payload = json.dumps(reply.body, separators=(",", ":")).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Request-ID", uuid.uuid4().hex)
        self.end_headers()
        self.wfile.write(payload)

    def _reset(self) -> None:
        # Close with SO_LINGER 0: the client sees a reset connection, not an answer.
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        # Silent: the gateway's request log (method, path, status) is the only log.
        return
