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
    bucket = TokenBucket(3, window=1.0, margin=0.0, clock=clock, sleep=clock.sleep)
    assert [bucket.try_acquire() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_the_next_token_comes_back_one_window_after_the_oldest() -> None:
    clock = FakeClock()
    bucket = TokenBucket(3, window=1.0, margin=0.0, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        bucket.try_acquire()
        clock.now += 0.1
    assert bucket.try_acquire() == pytest.approx(0.7)  # first token taken at 100.0, now 100.3


def test_acquire_sleeps_until_a_token_returns() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, window=1.0, margin=0.0, clock=clock, sleep=clock.sleep)
    grants = []
    for _ in range(5):
        assert bucket.acquire()
        grants.append(clock.now)
    assert max_in_window(grants, 1.0) == 2
    assert grants[-1] - grants[0] == pytest.approx(2.0)


def test_acquire_gives_up_when_the_deadline_comes_first() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1, window=1.0, margin=0.0, clock=clock, sleep=clock.sleep)
    assert bucket.acquire()
    assert not bucket.acquire(deadline=clock.now + 0.5)
    assert clock.sleeps == []


def test_a_held_token_returns_one_window_after_its_release() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, window=1.0, clock=clock, sleep=clock.sleep)
    assert bucket.acquire(held=True)
    assert bucket.acquire(held=True)
    clock.now += 5.0  # the answers take long: the tokens stay taken
    assert bucket.try_acquire() > 0
    bucket.release()
    assert bucket.try_acquire() == pytest.approx(1.0), "back one window after the answer"
    clock.now += 1.0
    assert bucket.try_acquire() == 0.0


def test_arrivals_delayed_after_taking_a_token_never_exceed_the_rate() -> None:
    """A request reaches the server some time after its token was taken (a loaded machine):
    with tokens returned a window after the answer, no window at the server ever holds more
    than the rate, whatever the delays."""
    clock = FakeClock()
    rate = 10
    bucket = TokenBucket(rate, window=1.0, clock=clock, sleep=clock.sleep)
    arrivals: list[float] = []
    delays = [0.0, 0.35, 0.05, 0.6, 0.0, 0.2, 0.9, 0.1] * 20
    for delay in delays:
        assert bucket.acquire(held=True)
        arrival = clock.now + delay  # the request reaches the server...
        arrivals.append(arrival)
        clock.now = arrival + 0.1  # ...and answers 100 ms later
        bucket.release()
    assert max_in_window(arrivals, 1.0) <= rate


def test_a_confirming_query_yields_to_waiting_work() -> None:
    bucket = TokenBucket(1, window=0.2, margin=0.0)
    assert bucket.acquire()  # full: both callers below must wait for the token to return
    order: list[str] = []

    def work() -> None:
        bucket.acquire()
        order.append("work")

    worker = threading.Thread(target=work)
    worker.start()
    time.sleep(0.05)  # the work waits now
    bucket.acquire(confirming=True)
    order.append("query")
    worker.join(5)
    assert order == ["work", "query"], "the query waited for the work's token to be taken"


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
