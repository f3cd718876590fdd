"""Posts NCS events to a webhook URL the way Agora's notification service does (S13).

Each event is serialized once and those exact bytes are signed: ``Agora-Signature`` (HMAC-SHA1)
and ``Agora-Signature-V2`` (HMAC-SHA256), hex, keyed with the NCS secret (S13, via
``snapshot_resources.events.sign_headers``).  Without a secret the headers are left out.

Delivery (S13): the receiver must answer 200 within 10 s; otherwise NCS resends at once, then at
growing intervals, and gives up after 3 retries.  The retry delays here are 0, 1 and 3 emulated
seconds.  Events wait in a bounded queue: if a receiver is so slow that it fills, later events are
dropped and counted rather than growing memory.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import Counter
from typing import Any, Final

import requests

from snapshot_resources.emulator.clock import Clock
from snapshot_resources.events import sign_headers

REPLY_TIMEOUT: Final = 10.0  # seconds the receiver has to answer (S13)
RETRY_DELAYS: Final = (0.0, 1.0, 3.0)  # emulated seconds; 3 retries then give up (S13)
QUEUE_SIZE: Final = 10_000


class WebhookSender:
    def __init__(self, url: str, *, secret: str | None, clock: Clock) -> None:
        self.url = url
        self._secret = secret
        self._clock = clock
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=QUEUE_SIZE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emulator-webhooks", daemon=True)
        self._session = requests.Session()
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()

    def start(self) -> None:
        self._thread.start()

    def stop(self, *, timeout: float = REPLY_TIMEOUT + 1) -> None:
        """Stop; an event being posted finishes (bounded by the reply timeout), queued ones are
        dropped, as a server shutting down would."""
        self._stop.set()
        self._thread.join(timeout)
        self._session.close()

    def __call__(self, event: dict[str, Any]) -> None:
        """Enqueue without blocking: the backend calls this under its lock."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with self._lock:
                self.counters["webhooksDropped"] += 1

    def snapshot_counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                event = self._queue.get(timeout=0.05)
            except queue.Empty:
                continue
            self._deliver(event)

    def _deliver(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self._secret:
            headers.update(sign_headers(body, self._secret))
        for delay in (None, *RETRY_DELAYS):
            if delay is not None:
                with self._lock:
                    self.counters["webhookRetries"] += 1
                if self._stop.wait(delay / self._clock.time_scale):
                    break
            try:
                response = self._session.post(self.url, data=body, headers=headers,
                                              timeout=REPLY_TIMEOUT)
                ok = response.status_code == 200
                response.close()
            except requests.RequestException:
                ok = False
            if ok:
                with self._lock:
                    self.counters["webhooksDelivered"] += 1
                return
        with self._lock:
            self.counters["webhooksFailed"] += 1
