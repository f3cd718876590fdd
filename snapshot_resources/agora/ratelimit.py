"""A per-App-ID request budget shared by every thread of the process.

Agora allows 10 requests per second per App ID and answers 429 above it (S7, S8, S10; reference
6.2).  A deploy runs many resources in parallel threads of one provider process, so the budget is
process-wide: ``limiter_for(app_id, ...)`` returns the same :class:`TokenBucket` to every client.

Two kinds of caller share it: calls that do work (acquire, start, update, stop) and confirming
queries. A query waits while work waits, so that every task is started before the budget is
spent confirming ones started earlier: each task needs its readiness time after its start anyway
(S10), and a task started late is what makes a deploy's tail (measured: ``pulumi up`` of 50
sessions ended with 2.5 s of budget spent 3 queries a second on the last tasks).

A token taken for a request is **held until the request's answer has come, then returned one
window later** (``acquire(held=True)`` and ``release()``). That bounds what the server counts, not
what the caller intends: a request reaches Agora at some moment between taking its token and
getting its answer, so if every token returns ``window`` after its answer, all the requests that
arrive within any ``window`` hold their tokens at once at its end, and there are at most ``rate``
of them, however long a thread waited between taking its token and sending (a loaded machine, 64
threads on the GIL). The older rule (a token returns ``window`` + a 0.1 s margin after it was
taken) let such a delay squeeze 11 arrivals into one second: the emulator answered 429 once or
twice per ``pulumi up`` of 50 sessions once the provider served 64 calls at once (measured
2026-12-07). Tokens taken without ``held`` (and the ones of ``try_acquire``) still return
``window`` + ``margin`` after they were taken.

With the shared store (``agora:sharedStore``), ``limiter_for(..., store=...)`` returns an
``agora.shared_budget.SharedBudget`` instead: the same rule kept in Redis, one budget for every
process on the store (docs/shared-store.md).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Final, Protocol

from .. import rules

if TYPE_CHECKING:
    from ..shared_store import SharedStore

__all__ = ["DEFAULT_MARGIN", "RateWindow", "RequestBudget", "TokenBucket", "limiter_for",
           "reset_registry"]

DEFAULT_MARGIN: Final = 0.1  # seconds added to a token taken without being held (see above)
_YIELD_SECONDS: Final = 0.02  # a confirming caller looks again after work took its token
_IN_FLIGHT_POLL: Final = 0.02  # every token is held by a request in flight: look again soon


class RequestBudget(Protocol):
    """What ``AgoraClient`` needs of a budget: ``TokenBucket`` (this process) or
    ``shared_budget.SharedBudget`` (every process on the shared store)."""

    @property
    def rate(self) -> int: ...

    @property
    def window(self) -> float: ...

    def lower_rate(self, rate: float) -> None: ...

    def acquire(self, deadline: float | None = None, *, confirming: bool = False,
                held: bool = False, lease: float | None = None) -> bool: ...

    def release(self, answered: float | None = None) -> None: ...


class RateWindow:
    """What every budget is: ``rate`` whole requests per ``window`` seconds (Agora's 1 s)."""

    def __init__(self, rate: float, window: float) -> None:
        if rate < 1:
            raise ValueError(f"rate must be at least 1 request per window, got {rate}")
        self._capacity = int(rate)
        self._window = window

    @property
    def rate(self) -> int:
        return self._capacity

    @property
    def window(self) -> float:
        return self._window


class TokenBucket(RateWindow):
    """``rate`` tokens per ``window`` (Agora's 1 s), thread-safe (module docstring)."""

    def __init__(
        self,
        rate: float,
        *,
        window: float = 1.0,
        margin: float = DEFAULT_MARGIN,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rate, window)
        self._lock = threading.Lock()
        self._margin = margin
        self._clock = clock
        self._sleep = sleep
        self._returns: collections.deque[float] = collections.deque()  # when tokens come back
        self._held = 0  # tokens held by requests still waiting for their answer
        self._work_waiting = 0  # callers of acquire(confirming=False) that hold no token yet

    def lower_rate(self, rate: float) -> None:
        """Shrink the budget (never grow it): two clients configured differently share the lower."""
        with self._lock:
            self._capacity = max(1, min(self._capacity, int(rate)))

    def try_acquire(self, *, confirming: bool = False, held: bool = False) -> float:
        """Take a token and return 0, or return the seconds until one may be had. A confirming
        caller takes none while work waits for one (module docstring); a ``held`` token stays
        taken until ``release``."""
        with self._lock:
            now = self._clock()
            while self._returns and self._returns[0] <= now:
                self._returns.popleft()
            free = self._held + len(self._returns) < self._capacity
            if free and not (confirming and self._work_waiting):
                if held:
                    self._held += 1
                else:
                    self._add_return(now + self._window + self._margin)
                return 0.0
            if free:  # only the waiting work holds this one back: look again soon
                return _YIELD_SECONDS
            if not self._returns:
                return _IN_FLIGHT_POLL
            # The oldest returning token frees a slot (tokens held by requests in flight aside).
            return max(self._returns[0] - now, 1e-4)

    def _add_return(self, at: float) -> None:
        # Kept in order: each return is added under the lock at a later clock reading, except
        # the rare unheld token whose margin puts it after a held one's; insert it in place.
        if not self._returns or self._returns[-1] <= at:
            self._returns.append(at)
        else:
            items = sorted([*self._returns, at])
            self._returns.clear()
            self._returns.extend(items)

    def reserve(self, count: int, *, held: int = 0, until: float | None = None) -> None:
        """Take ``count`` tokens that return at ``until`` (clock seconds; default one window
        from now) and ``held`` tokens that return a window after a ``release`` each: a budget
        taken over from another counter (``shared_budget``), whose recent requests count."""
        with self._lock:
            at = self._clock() + self._window if until is None else until
            for _ in range(count):
                self._add_return(at)
            self._held += held

    def returning(self) -> tuple[int, list[float]]:
        """``(held, seconds until each other taken token returns)``, for handing the budget
        over to another counter."""
        with self._lock:
            now = self._clock()
            return self._held, [at - now for at in self._returns if at > now]

    def release(self, answered: float | None = None) -> None:
        """The answer of a request whose token was ``held`` has come: the token returns one
        window from now. (``answered``, the ``time.monotonic`` of the answer, serves the
        shared budget, whose store call may come later; here the release follows at once.)"""
        with self._lock:
            if self._held > 0:
                self._held -= 1
                self._add_return(self._clock() + self._window)

    def acquire(self, deadline: float | None = None, *, confirming: bool = False,
                held: bool = False, lease: float | None = None) -> bool:
        """Block until a token is taken; False if that cannot happen before ``deadline``.
        ``confirming``: a query confirming a task, which yields to work; ``held``: the token is
        the caller's until it calls ``release`` (module docstring). ``lease`` is for the shared
        budget (a held token's life if the process dies); one process needs none."""
        waiting = False
        try:
            while True:
                wait = self.try_acquire(confirming=confirming, held=held)
                if wait == 0.0:
                    return True
                if deadline is not None and self._clock() + wait > deadline:
                    return False
                if not confirming and not waiting:
                    waiting = True
                    with self._lock:
                        self._work_waiting += 1
                self._sleep(wait)
        finally:
            if waiting:
                with self._lock:
                    self._work_waiting -= 1


_registry: dict[tuple[Hashable, str, str | None], RequestBudget] = {}
_registry_lock = threading.Lock()


def limiter_for(
    app_id: str, scope: Hashable = "agora", rate: float = rules.QPS_PER_APP_ID,
    store: SharedStore | None = None,
) -> RequestBudget:
    """The process-wide budget for ``app_id`` within ``scope``: a ``TokenBucket``, or with
    ``store`` a ``SharedBudget`` shared by every process on that store.

    ``scope`` separates services that count independently: Agora's domains all share one budget
    per App ID (``"agora"``), while each emulator is its own service.  When clients ask for
    different rates, the budget keeps the lowest, so no caller can push another over its limit.
    """
    key = (scope, app_id, None if store is None else store.where)
    with _registry_lock:
        bucket = _registry.get(key)
        if bucket is None:
            if store is None:
                bucket = TokenBucket(rate)
            else:
                from .shared_budget import SharedBudget

                bucket = SharedBudget(store, app_id, scope, rate)
            _registry[key] = bucket
        else:
            bucket.lower_rate(rate)
        return bucket


def reset_registry() -> None:
    """Forget every bucket (tests that need a fresh budget)."""
    with _registry_lock:
        _registry.clear()
