"""Clocks for the emulator: emulated time for the service, real time for the gateway.

The backend asks a clock for two things:

* ``now()``: emulated Unix time in seconds.  Everything Agora measures in seconds of service time
  runs on it: the 5-minute resource-id lifetime (S2), ``captureInterval`` (S3), ``maxIdleTime``
  (S3), ``resourceExpiredHour`` (S2), the failover window (S7 FAQ), snapshot timestamps (S8).
* ``monotonic()``: real seconds.  The gateway's QPS limit (S8, S10) is counted on it, because the
  clients being tested pace themselves on the real clock and know nothing of the time scale.

``ScaledClock`` runs emulated time ``time_scale`` times faster than real time, so a 5 s capture
interval takes 50 ms at ``time_scale=100``.  ``ManualClock`` only moves when a test says so.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the backend needs from time."""

    @property
    def time_scale(self) -> float:
        """Emulated seconds per real second (used to turn emulated waits into real ones)."""
        ...

    def now(self) -> float:
        """Emulated Unix time, seconds."""
        ...

    def monotonic(self) -> float:
        """Real monotonic seconds, for the gateway's per-second rate limit."""
        ...


class ScaledClock:
    """Emulated time that starts at the real wall time and runs ``time_scale`` times faster."""

    def __init__(self, time_scale: float = 1.0, *, start: float | None = None) -> None:
        if not time_scale > 0:
            raise ValueError(f"time_scale must be positive, not {time_scale!r}")
        self._scale = float(time_scale)
        self._start = time.time() if start is None else start
        self._origin = time.monotonic()

    @property
    def time_scale(self) -> float:
        return self._scale

    def now(self) -> float:
        return self._start + (time.monotonic() - self._origin) * self._scale

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock for unit tests of the backend: both times move only through ``advance``."""

    def __init__(self, start: float = 1_700_000_000.0, *, time_scale: float = 1.0) -> None:
        self._now = start
        self._mono = 0.0
        self._scale = time_scale
        self._lock = threading.Lock()

    @property
    def time_scale(self) -> float:
        return self._scale

    def now(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, emulated_seconds: float) -> None:
        """Move emulated time forward, and real time by the scaled amount."""
        with self._lock:
            self._now += emulated_seconds
            self._mono += emulated_seconds / self._scale
