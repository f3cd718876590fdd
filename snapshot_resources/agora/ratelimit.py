"""A per-App-ID request budget shared by every thread of the process.

Agora allows 10 requests per second per App ID and answers 429 above it (S7, S8, S10; reference
6.2).  A deploy runs many resources in parallel threads of one provider process, so the budget is
process-wide: ``limiter_for(app_id, ...)`` returns the same :class:`TokenBucket` to every client.

The bucket holds ``rate`` tokens and a token taken returns to it exactly ``window`` seconds later.
A classic token bucket that refills continuously admits ``capacity + rate * T`` requests in any
span ``T``, so it can put almost twice the limit into one second; returning each token a full
window later guarantees at most ``rate`` requests in *any* window, which is what a sliding-window
or per-second limiter on Agora's side counts.  ``margin`` widens the window a little so that
scheduling jitter between taking a token and the request reaching the server cannot squeeze
``rate + 1`` arrivals into one second.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable
from typing import Final

from .. import rules

__all__ = ["DEFAULT_MARGIN", "TokenBucket", "limiter_for", "reset_registry"]

DEFAULT_MARGIN: Final = 0.1  # seconds added to the 1 s window: absorbs send and network jitter


class TokenBucket:
    """``rate`` tokens, each returned ``window`` seconds after it was taken. Thread-safe."""

    def __init__(
        self,
        rate: float,
        *,
        window: float = 1.0 + DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate < 1:
            raise ValueError(f"rate must be at least 1 request per window, got {rate}")
        self._lock = threading.Lock()
        self._capacity = int(rate)
        self._window = window
        self._clock = clock
        self._sleep = sleep
        self._taken: collections.deque[float] = collections.deque()  # times tokens were taken

    @property
    def rate(self) -> int:
        return self._capacity

    @property
    def window(self) -> float:
        return self._window

    def lower_rate(self, rate: float) -> None:
        """Shrink the budget (never grow it): two clients configured differently share the lower."""
        with self._lock:
            self._capacity = max(1, min(self._capacity, int(rate)))

    def try_acquire(self) -> float:
        """Take a token and return 0, or return the seconds until one comes back."""
        with self._lock:
            now = self._clock()
            while self._taken and now - self._taken[0] >= self._window:
                self._taken.popleft()
            if len(self._taken) < self._capacity:
                self._taken.append(now)
                return 0.0
            # The (len - capacity + 1)-th oldest token is the one that frees a slot.
            oldest = self._taken[len(self._taken) - self._capacity]
            return max(oldest + self._window - now, 1e-4)

    def acquire(self, deadline: float | None = None) -> bool:
        """Block until a token is taken; False if that cannot happen before ``deadline``."""
        while True:
            wait = self.try_acquire()
            if wait == 0.0:
                return True
            if deadline is not None and self._clock() + wait > deadline:
                return False
            self._sleep(wait)


_registry: dict[tuple[Hashable, str], TokenBucket] = {}
_registry_lock = threading.Lock()


def limiter_for(
    app_id: str, scope: Hashable = "agora", rate: float = rules.QPS_PER_APP_ID
) -> TokenBucket:
    """The process-wide bucket for ``app_id`` within ``scope``.

    ``scope`` separates services that count independently: Agora's domains all share one budget
    per App ID (``"agora"``), while each emulator is its own service.  When clients ask for
    different rates, the bucket keeps the lowest, so no caller can push another over its limit.
    """
    key = (scope, app_id)
    with _registry_lock:
        bucket = _registry.get(key)
        if bucket is None:
            bucket = _registry[key] = TokenBucket(rate)
        else:
            bucket.lower_rate(rate)
        return bucket


def reset_registry() -> None:
    """Forget every bucket (tests that need a fresh budget)."""
    with _registry_lock:
        _registry.clear()
