"""NCS replay protection: the ``notifyMs`` window of ``verify_signature`` and ``SeenNotices`` (S13).

Clocks are injected: ``verify_signature`` reads Unix seconds, ``SeenNotices`` monotonic seconds;
the tests drive both from one fake time so that the two defences can be checked together.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from snapshot_resources.events import (
    NOTIFY_MAX_AGE_SECONDS,
    NOTIFY_MAX_FUTURE_SECONDS,
    NcsEvent,
    NotificationBodyError,
    NotificationError,
    ReplayError,
    SeenNotices,
    SignatureError,
    build_event,
    parse_event,
    sign_headers,
    verify_signature,
)

SECRET = "ncs-secret-REPLAY-7c1e"
SENT_MS = 1_700_000_000_000  # when the test notifications were sent, Unix ms


def _body(*, notify_ms: int = SENT_MS, notice_id: str = "n-1") -> bytes:
    payload = {"cname": "lobby", "uid": "527841", "sid": "sid-1", "sequence": 0,
               "sendts": SENT_MS, "serviceType": 1, "details": {"fileName": "p/x.jpg"}}
    event = build_event(45, payload, notice_id=notice_id, notify_ms=notify_ms)
    return json.dumps(event, separators=(",", ":")).encode()


def _signed(body: bytes) -> dict[str, str]:
    return sign_headers(body, SECRET)


def _clock(seconds_after_send: float) -> Any:
    return lambda: SENT_MS / 1000 + seconds_after_send


def _event(notice_id: str = "n-1", notify_ms: int = SENT_MS) -> NcsEvent:
    return parse_event(_body(notify_ms=notify_ms, notice_id=notice_id))


class FakeTime:
    """One settable time for both clocks (Unix seconds and a monotonic reading)."""

    def __init__(self) -> None:
        self.now = SENT_MS / 1000

    def wall(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now - 1_000_000_000  # any offset: only differences matter


# --------------------------------------------------------------------------------------------------
# The window


def test_a_validly_signed_notification_from_1970_is_stale() -> None:
    body = _body(notify_ms=0)
    with pytest.raises(ReplayError, match="older than the replay window of 600 s") as caught:
        verify_signature(body, _signed(body), SECRET)  # the real clock
    assert caught.value.check == "stale"
    assert caught.value.notify_ms == 0
    assert SECRET not in str(caught.value)


def test_a_fresh_notification_passes_on_the_real_clock() -> None:
    body = _body(notify_ms=int(time.time() * 1000))
    verify_signature(body, _signed(body), SECRET)


def test_the_default_window_accepts_ten_minutes_past() -> None:
    assert NOTIFY_MAX_AGE_SECONDS == 600
    body = _body()
    verify_signature(body, _signed(body), SECRET, clock=_clock(600))


def test_the_default_window_refuses_just_over_ten_minutes_past() -> None:
    body = _body()
    with pytest.raises(ReplayError, match="notifyMs 1700000000000 is 600 s before") as caught:
        verify_signature(body, _signed(body), SECRET, clock=_clock(600.001))
    assert (caught.value.check, caught.value.now_ms) == ("stale", SENT_MS + 600_001)


def test_the_default_skew_allowance_accepts_sixty_seconds_ahead() -> None:
    assert NOTIFY_MAX_FUTURE_SECONDS == 60
    body = _body()
    verify_signature(body, _signed(body), SECRET, clock=_clock(-60))


def test_a_notification_further_ahead_is_refused_as_future() -> None:
    body = _body()
    with pytest.raises(ReplayError, match=r"after this receiver's clock.*NTP") as caught:
        verify_signature(body, _signed(body), SECRET, clock=_clock(-60.001))
    assert caught.value.check == "future"


def test_max_age_is_configurable() -> None:
    body = _body()
    verify_signature(body, _signed(body), SECRET, max_age=30, clock=_clock(30))
    with pytest.raises(ReplayError, match="replay window of 30 s"):
        verify_signature(body, _signed(body), SECRET, max_age=30, clock=_clock(31))


def test_max_future_is_configurable() -> None:
    body = _body()
    with pytest.raises(ReplayError, match="allowance of 0 s"):
        verify_signature(body, _signed(body), SECRET, max_future=0, clock=_clock(-0.001))


def test_max_age_none_turns_the_window_off() -> None:
    body = _body(notify_ms=0)
    verify_signature(body, _signed(body), SECRET, max_age=None)


@pytest.mark.parametrize(("max_age", "max_future"), [(-1.0, 60.0), (600.0, -1.0),
                                                     (float("nan"), 60.0)])
def test_a_negative_window_is_refused(max_age: float, max_future: float) -> None:
    body = _body()
    with pytest.raises(ValueError, match="must not be negative") as caught:
        verify_signature(body, _signed(body), SECRET, max_age=max_age, max_future=max_future)
    assert not isinstance(caught.value, NotificationError)  # configuration, not the notification


def test_a_replay_error_is_a_signature_error_and_a_notification_error() -> None:
    # Receivers that already answer SignatureError with 401 refuse replays unchanged.
    assert issubclass(ReplayError, SignatureError)
    assert issubclass(SignatureError, NotificationError)
    assert issubclass(NotificationBodyError, NotificationError)
    assert issubclass(NotificationError, ValueError)


def test_the_signature_is_checked_before_the_age() -> None:
    body = _body(notify_ms=0)
    with pytest.raises(SignatureError, match="does not match") as caught:
        verify_signature(body, sign_headers(body, "forged"), SECRET)
    assert not isinstance(caught.value, ReplayError)


def test_a_signed_body_without_notify_ms_is_a_body_error() -> None:
    body = b'{"noticeId":"n-1","productId":3,"eventType":45,"payload":{}}'
    with pytest.raises(NotificationBodyError, match="'notifyMs' must be an integer, got nothing"):
        verify_signature(body, _signed(body), SECRET, clock=_clock(0))


@pytest.mark.parametrize(("notify_ms", "check"), [(10**400, "future"), (-(10**400), "stale")])
def test_an_absurd_notify_ms_is_refused_without_overflow(notify_ms: int, check: str) -> None:
    body = _body(notify_ms=notify_ms)
    with pytest.raises(ReplayError) as caught:
        verify_signature(body, _signed(body), SECRET, clock=_clock(0))
    assert caught.value.check == check


# --------------------------------------------------------------------------------------------------
# SeenNotices


def test_the_first_sighting_is_new_and_a_repeat_is_not() -> None:
    seen = SeenNotices()
    assert seen.check_and_remember(_event()) is True
    assert seen.check_and_remember(_event()) is False
    assert "n-1" in seen
    assert len(seen) == 1


def test_a_resend_with_a_refreshed_notify_ms_is_a_repeat() -> None:
    # Agora refreshes notifyMs when it resends (S13): the key is noticeId alone.
    seen = SeenNotices()
    assert seen.check_and_remember(_event(notify_ms=SENT_MS))
    assert not seen.check_and_remember(_event(notify_ms=SENT_MS + 4_000))


def test_distinct_notices_are_all_new() -> None:
    seen = SeenNotices()
    assert all(seen.check_and_remember(_event(f"n-{i}")) for i in range(5))
    assert len(seen) == 5


def test_the_default_memory_spans_the_default_window() -> None:
    assert SeenNotices().ttl == NOTIFY_MAX_AGE_SECONDS + NOTIFY_MAX_FUTURE_SECONDS == 660


def test_a_notice_is_forgotten_after_the_ttl() -> None:
    fake = FakeTime()
    seen = SeenNotices(ttl=10, clock=fake.monotonic)
    assert seen.check_and_remember(_event())
    fake.now += 9.999
    assert not seen.check_and_remember(_event())
    fake.now += 0.001
    assert "n-1" not in seen
    assert seen.check_and_remember(_event())


def test_a_repeat_does_not_extend_the_memory() -> None:
    fake = FakeTime()
    seen = SeenNotices(ttl=10, clock=fake.monotonic)
    seen.check_and_remember(_event())
    fake.now += 8
    seen.check_and_remember(_event())
    fake.now += 2
    assert len(seen) == 0


def test_the_oldest_notice_goes_first_when_full() -> None:
    seen = SeenNotices(max_size=2)
    for notice_id in ("a", "b", "c"):
        seen.check_and_remember(_event(notice_id))
    assert ("a" in seen, "b" in seen, "c" in seen) == (False, True, True)
    assert seen.max_size == 2


@pytest.mark.parametrize("options", [{"ttl": 0}, {"ttl": float("nan")}, {"max_size": 0},
                                     {"max_size": True}, {"max_size": 2.5}])
def test_a_bad_ttl_or_size_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must be (a )?positive"):
        SeenNotices(**options)


def test_concurrent_deliveries_of_one_notice_admit_exactly_one() -> None:
    seen = SeenNotices()
    events = [_event(f"n-{i}") for i in range(200)]
    barrier = threading.Barrier(8)
    admitted: list[int] = []
    lock = threading.Lock()

    def deliver() -> None:
        barrier.wait()
        count = sum(seen.check_and_remember(event) for event in events)
        with lock:
            admitted.append(count)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 200


# --------------------------------------------------------------------------------------------------
# Both defences together


@pytest.mark.parametrize("replay_after", [0.0, 1.0, 59.0, 300.0, 599.0, 600.0, 601.0, 3600.0])
def test_every_replay_is_refused_by_the_window_or_the_memory(replay_after: float) -> None:
    # The notification arrives up to 60 s "early" (Agora's clock ahead), is accepted once, then
    # the same bytes arrive again: the window or SeenNotices must refuse every copy.
    for skew in (-60.0, 0.0, 60.0):
        fake = FakeTime()
        seen = SeenNotices(clock=fake.monotonic)
        body = _body()
        fake.now = SENT_MS / 1000 - skew
        verify_signature(body, _signed(body), SECRET, clock=fake.wall)
        assert seen.check_and_remember(parse_event(body))
        fake.now += replay_after
        try:
            verify_signature(body, _signed(body), SECRET, clock=fake.wall)
        except ReplayError:
            continue
        assert not seen.check_and_remember(parse_event(body)), (skew, replay_after)


def test_a_replay_error_survives_pickling() -> None:
    import pickle

    body = _body(notify_ms=0)
    with pytest.raises(ReplayError) as caught:
        verify_signature(body, _signed(body), SECRET, clock=_clock(0))
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own object
    assert (str(copy), copy.check, copy.notify_ms) == (str(caught.value), "stale", 0)
