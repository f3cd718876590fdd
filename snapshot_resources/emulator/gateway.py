"""The API gateway in front of the emulated service: Basic auth, the QPS limit, and counters.

Agora's gateway answers before the recording service does, with ``{"message": ...}`` bodies (S7):
401 for missing or wrong credentials (S7, S22), 429 over the QPS limit (S7, W3).

The QPS limit is 10 requests per second per App ID (S8, S10; the 2022 pages said per account, S19:
CONFLICT, the current per-App-ID reading is emulated).  It is a sliding one-second window over the
requests the gateway let through, on the real clock (``Clock.monotonic``): a client paces itself
in real seconds whatever the emulator's time scale.  A sliding window is stricter than a
fixed-window counter, so a client that never sees 429 here stays under a fixed-window limit too.

The counters and the request log never hold a header or a body: the log keeps method, path (App
ID, resource id and sid are not secrets) and status only.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import sys
import threading
from collections import Counter, deque
from typing import Any, Final, TextIO

from snapshot_resources.emulator.clock import Clock
from snapshot_resources.emulator.errors import invalid_credentials, rate_limited, unauthorized

REQUEST_LOG: Final = 10_000  # entries kept; bounded so a long run keeps flat memory
WINDOW: Final = 1.0  # seconds (S8, S10: "requests per second")


class Gateway:
    def __init__(self, *, customer_id: str, customer_secret: str, qps: int, clock: Clock,
                 log_requests: bool = False, log_stream: TextIO | None = None) -> None:
        if qps < 1:
            raise ValueError("qps must be at least 1")
        self._expected = f"{customer_id}:{customer_secret}".encode()
        self.qps = qps
        self._clock = clock
        self._lock = threading.Lock()
        self._admitted: dict[str, deque[float]] = {}
        self._seen: dict[str, deque[float]] = {}
        self._max_window: dict[str, int] = {}
        self._operations: Counter[str] = Counter()
        self._statuses: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG)
        self._log_requests = log_requests
        self._log_stream = log_stream

    def set_credentials(self, customer_id: str, customer_secret: str) -> None:
        """Accept only these from now on, as after a Customer Secret reset in Agora Console."""
        with self._lock:
            self._expected = f"{customer_id}:{customer_secret}".encode()

    def authenticate(self, header: str | None) -> None:
        """Basic auth with the Customer ID and Secret (S22); the shapes of S7."""
        if header is None:
            raise unauthorized()
        scheme, _, encoded = header.partition(" ")
        if scheme != "Basic":
            raise invalid_credentials()  # a missing "Basic " word (S18)
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise invalid_credentials() from None
        if not hmac.compare_digest(given, self._expected):
            raise invalid_credentials()

    def admit(self, app_id: str) -> None:
        """Count a request for ``app_id``; raise 429 past ``qps`` in the last second (S7)."""
        now = self._clock.monotonic()
        with self._lock:
            seen = self._seen.setdefault(app_id, deque())
            _trim(seen, now)
            seen.append(now)
            self._max_window[app_id] = max(self._max_window.get(app_id, 0), len(seen))
            admitted = self._admitted.setdefault(app_id, deque())
            _trim(admitted, now)
            if len(admitted) >= self.qps:
                raise rate_limited()
            admitted.append(now)

    def record(self, *, method: str, path: str, operation: str, status: int | None,
               fault: str | None = None) -> None:
        """Count one finished request; ``status`` None means the connection was dropped."""
        shown = "reset" if status is None else str(status)
        with self._lock:
            self._operations[operation] += 1
            self._statuses[shown] += 1
            if fault:
                self._faults[fault] += 1
            self._log.append({"method": method, "path": path, "status": status,
                              "operation": operation})
        if self._log_requests:
            stream = self._log_stream or sys.stderr
            print(f"{method} {path} {shown}", file=stream, flush=True)

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": dict(self._operations),
                "responses": dict(self._statuses),
                "rateLimited": self._statuses.get("429", 0),
                "maxRequestsPerSecond": dict(self._max_window),
                "faults": dict(self._faults),
            }

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)


def _trim(window: deque[float], now: float) -> None:
    while window and now - window[0] >= WINDOW:
        window.popleft()
