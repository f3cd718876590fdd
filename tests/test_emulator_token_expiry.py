"""The emulator ends a task when its RTC token expires (S3), and posts RTC channel events when asked.

The backend on a manual clock: exact times, no HTTP, no threads.
"""

from __future__ import annotations

from typing import Any

import pytest

from snapshot_resources import cli
from snapshot_resources.agora.token import build_rtc_token
from snapshot_resources.commands import emulator as emulator_command
from snapshot_resources.emulator.clock import ManualClock
from snapshot_resources.emulator.errors import ServiceError
from snapshot_resources.emulator.models import Backend
from snapshot_resources.reconcile.notices import ChannelNotice, parse_notice
from snapshot_resources.testing.emulator import snapshot_request

APP = "0123456789abcdef0123456789abcdef"
CERTIFICATE = "c0ffee00d15ea5e5ba5eba11deadbeef"
CNAME, BOT = "lobby", "527841"
START = 1_700_000_000.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def _backend(clock: ManualClock, *, channel_events: bool = False,
             token_lifetime: float | None = None) -> Backend:
    return Backend(clock=clock, app_ids=[APP], exit_seconds=6.0, channel_events=channel_events,
                   token_lifetime=token_lifetime)


def _start(backend: Backend, token: str | None) -> tuple[str, str]:
    rid = backend.acquire(APP, {"cname": CNAME, "uid": BOT})["resourceId"]
    request: dict[str, Any] = snapshot_request(max_idle_time=86400)
    if token is not None:
        request["token"] = token
    body = {"cname": CNAME, "uid": BOT, "clientRequest": request}
    return rid, backend.start(APP, rid, "individual", body)["sid"]


def _token(lifetime: int, *, privilege: int | None = None) -> str:
    return build_rtc_token(app_id=APP, app_certificate=CERTIFICATE, channel_name=CNAME,
                           uid=int(BOT), token_expire=lifetime, privilege_expire=privilege,
                           issued_at=int(START))


def _upload_all(backend: Backend) -> None:
    backend.tick()
    for job in backend.take_jobs(10_000):
        backend.capture_done(job, None)


def _status(backend: Backend, rid: str, sid: str) -> int:
    return int(backend.query(APP, rid, sid, "individual")["serverResponse"]["status"])


def test_a_task_leaves_when_its_token_expires(clock: ManualClock) -> None:
    backend = _backend(clock)
    backend.join(APP, CNAME, "100", video=True, audio=True)  # never idle
    rid, sid = _start(backend, _token(3600))
    clock.advance(3599.9)
    assert _status(backend, rid, sid) in (4, 5)
    clock.advance(0.2)
    assert _status(backend, rid, sid) == 6
    _upload_all(backend)  # a leaving task waits for its uploads in flight
    clock.advance(6.1)
    with pytest.raises(ServiceError) as gone:
        backend.query(APP, rid, sid, "individual")
    assert gone.value.code == 404
    ends = [(e["eventType"], e["payload"]["details"], e["payload"]["sendts"])
            for e in backend.events() if e["eventType"] in (1, 41, 11)]
    at = round((START + 3600) * 1000)
    assert ends == [
        (1, {"module": 0, "errorLevel": 5, "errorCode": 109, "stat": 0,
             "errorMsg": "token expired"}, at),
        (41, {"leaveCode": 0}, at),
        (11, {"exitStatus": 0}, at + 6000),
    ]
    assert backend.snapshot_counters()["tokenExpiries"] == 1


def test_the_join_privilege_ends_the_task_when_it_is_shorter(clock: ManualClock) -> None:
    backend = _backend(clock)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    rid, sid = _start(backend, _token(7200, privilege=3600))
    clock.advance(3601)
    assert _status(backend, rid, sid) == 6


@pytest.mark.parametrize("token", [None, "006" + "a" * 100, "007not-base64"])
def test_no_token_or_an_unreadable_one_never_expires(
    clock: ManualClock, token: str | None
) -> None:
    backend = _backend(clock)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    rid, sid = _start(backend, token)
    clock.advance(2 * 86400)  # within the resource ID's default 72 h (S2)
    assert _status(backend, rid, sid) in (4, 5)
    assert backend.snapshot_counters()["tokenExpiries"] == 0


def test_a_token_expired_at_start_ends_the_task_at_once(clock: ManualClock) -> None:
    backend = _backend(clock)
    clock.advance(7200)  # the token was built two hours ago with a one-hour life
    rid, sid = _start(backend, _token(3600))
    assert _status(backend, rid, sid) == 6
    [leave] = [e for e in backend.events() if e["eventType"] == 41]
    assert leave["payload"]["sendts"] == round((START + 7200) * 1000)


@pytest.mark.parametrize("token", [_token(86400), "006" + "a" * 100])
def test_token_lifetime_ends_a_task_with_any_token_that_long_after_its_start(
    clock: ManualClock, token: str
) -> None:
    backend = _backend(clock, token_lifetime=120)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    clock.advance(30)
    rid, sid = _start(backend, token)
    clock.advance(119.9)
    assert _status(backend, rid, sid) in (4, 5)
    clock.advance(0.2)
    assert _status(backend, rid, sid) == 6
    [error] = [e for e in backend.events() if e["eventType"] == 1]
    assert error["payload"]["details"]["errorCode"] == 109
    assert error["payload"]["sendts"] == round((START + 150) * 1000)
    assert backend.tasks()[0]["tokenExpiresAtMs"] == round((START + 150) * 1000)


def test_token_lifetime_keeps_a_shorter_token_and_spares_tasks_without_one(
    clock: ManualClock,
) -> None:
    shorter = _backend(clock, token_lifetime=7200)
    _start(shorter, _token(3600))
    assert shorter.tasks()[0]["tokenExpiresAtMs"] == round((START + 3600) * 1000)
    without = _backend(clock, token_lifetime=7200)
    without.join(APP, CNAME, "100", video=True, audio=True)
    _start(without, None)
    clock.advance(3 * 7200)
    assert [t["tokenExpiresAtMs"] for t in without.tasks()] == [None]
    assert without.snapshot_counters()["tokenExpiries"] == 0


def test_token_lifetime_must_be_a_number_of_seconds(clock: ManualClock) -> None:
    with pytest.raises(ValueError, match="token_lifetime"):
        _backend(clock, token_lifetime=float("nan"))


def test_channel_events_follow_joins_and_leaves_when_switched_on(
    clock: ManualClock,
) -> None:
    backend = _backend(clock, channel_events=True)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    backend.join(APP, CNAME, "101", video=True, audio=True)
    backend.join(APP, CNAME, "101", video=False, audio=True)  # already in: no second join
    clock.advance(10)
    backend.leave(APP, CNAME, "100")
    backend.leave(APP, CNAME, "101")
    events = [e for e in backend.events() if e["productId"] == 1]
    notices = [parse_notice(e) for e in events]
    assert all(isinstance(n, ChannelNotice) for n in notices)
    assert [(n.event_type, n.uid) for n in notices if isinstance(n, ChannelNotice)] == [
        (101, "0"), (103, "100"), (103, "101"), (104, "100"), (104, "101"), (102, "0")]
    assert [e["payload"]["ts"] for e in events] == [int(START)] * 3 + [int(START) + 10] * 3
    seqs = [e["payload"]["clientSeq"] for e in events]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert [e["payload"].get("reason") for e in events if e["eventType"] == 104] == [1, 1]
    assert len({e["noticeId"] for e in events}) == len(events)


def test_no_channel_events_by_default(clock: ManualClock) -> None:
    backend = _backend(clock)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    backend.leave(APP, CNAME, "100")
    assert [e for e in backend.events() if e["productId"] == 1] == []
    assert backend.snapshot_counters()["channelEvents"] == 0


def test_the_emulator_command_passes_token_lifetime_and_channel_events(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[Any] = []

    class Server:
        def __init__(self, options: Any) -> None:
            seen.append(options)

        def start(self) -> Server:
            return self

        @property
        def url(self) -> str:
            raise KeyboardInterrupt  # what Ctrl-C does once it listens

        def stop(self) -> None:
            return None

    monkeypatch.setattr(emulator_command, "EmulatorServer", Server)
    assert cli.main(["emulator", "--token-lifetime", "90", "--channel-events"]) == 0
    assert (seen[0].token_lifetime, seen[0].channel_events) == (90.0, True)
    assert cli.main(["emulator"]) == 0
    assert (seen[1].token_lifetime, seen[1].channel_events) == (None, False)
    with pytest.raises(SystemExit):
        cli.main(["emulator", "--token-lifetime", "0"])
    assert "positive" in capsys.readouterr().err
