"""The per-App-ID request budget (agora.ratelimit)."""

from __future__ import annotations

import threading
import time

import pytest

from snapshot_resources import rules
from snapshot_resources.agora.ratelimit import TokenBucket, limiter_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, low = 0, 0
    for high, t in enumerate(times):
        while t - times[low] >= window:
            low += 1
        best = max(best, high - low + 1)
    return best


def test_a_full_bucket_grants_rate_tokens_at_once() -> None:
    clock = FakeClock()
    bucket = TokenBucket(3, window=1.0, clock=clock, sleep=clock.sleep)
    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_the_next_token_comes_back_one_window_after_the_oldest() -> None:
    clock = FakeClock()
    bucket = TokenBucket(3, window=1.0, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        bucket.try_acquire()
        clock.now += 0.1
    assert bucket.try_acquire() == pytest.approx(0.7)  # first token taken at 100.0, now 100.3


def test_acquire_sleeps_until_a_token_returns() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, window=1.0, clock=clock, sleep=clock.sleep)
    grants = []
    for _ in range(5):
        assert bucket.acquire()
        grants.append(clock.now)
    assert max_in_window(grants, 1.0) == 2
    assert grants[-1] - grants[0] == pytest.approx(2.0)


def test_acquire_gives_up_when_the_deadline_comes_first() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1, window=1.0, clock=clock, sleep=clock.sleep)
    assert bucket.acquire()
    assert not bucket.acquire(deadline=clock.now + 0.5)
    assert clock.sleeps == []


def test_rate_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(0.5)


def test_eight_threads_never_exceed_the_rate_in_any_window() -> None:
    rate = 25  # high enough to keep the test short, low enough that threads contend
    bucket = TokenBucket(rate)
    grants: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 1.5

    def hammer() -> None:
        while time.monotonic() < stop_at:
            bucket.acquire()
            with lock:
                grants.append(time.monotonic())

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(grants) > rate  # the threads did contend across more than one window
    assert max_in_window(grants, 1.0) <= rate


def test_registry_shares_one_bucket_per_app_id_and_scope() -> None:
    a = limiter_for("app-registry-1", "scope-a")
    assert limiter_for("app-registry-1", "scope-a") is a
    assert limiter_for("app-registry-2", "scope-a") is not a
    assert limiter_for("app-registry-1", "scope-b") is not a
    assert a.rate == rules.QPS_PER_APP_ID


def test_registry_keeps_the_lowest_rate_asked_for() -> None:
    bucket = limiter_for("app-registry-3", "scope-a", rate=10)
    limiter_for("app-registry-3", "scope-a", rate=4)
    limiter_for("app-registry-3", "scope-a", rate=50)
    assert bucket.rate == 4
