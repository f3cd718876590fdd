"""The backend state machine on a manual clock: exact timings, no HTTP, no threads.

Captures are "uploaded" by the test itself (``_upload_all``), so every number here is exact.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from snapshot_resources.emulator.clock import ManualClock
from snapshot_resources.emulator.errors import ServiceError
from snapshot_resources.emulator.models import (
    READY_SECONDS,
    RESOURCE_ID_SECONDS,
    Backend,
    CaptureJob,
    UploadFailure,
)
from snapshot_resources.testing.emulator import snapshot_request

APP = "0123456789abcdef0123456789abcdef"
CNAME, BOT = "lobby", "527841"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def backend(clock: ManualClock) -> Backend:
    return Backend(clock=clock, app_ids=[APP], exit_seconds=6.0, failover_seconds=30.0)


def _start(backend: Backend, **request: Any) -> tuple[str, str]:
    rid = backend.acquire(APP, {"cname": CNAME, "uid": BOT})["resourceId"]
    body = {"cname": CNAME, "uid": BOT, "clientRequest": snapshot_request(**request)}
    return rid, backend.start(APP, rid, "individual", body)["sid"]


def _upload_all(backend: Backend, failure: UploadFailure | None = None) -> list[CaptureJob]:
    backend.tick()
    jobs = backend.take_jobs(10_000)
    for job in jobs:
        backend.capture_done(job, failure)
    return jobs


def _status(backend: Backend, rid: str, sid: str) -> int:
    return int(backend.query(APP, rid, sid, "individual")["serverResponse"]["status"])


def test_status_goes_1_2_3_then_4_then_5_after_the_first_upload(
        backend: Backend, clock: ManualClock) -> None:
    rid, sid = _start(backend)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    seen = [_status(backend, rid, sid)]
    for _ in range(3):
        clock.advance(0.5)
        seen.append(_status(backend, rid, sid))
    clock.advance(READY_SECONDS)
    seen.append(_status(backend, rid, sid))
    _upload_all(backend)
    seen.append(_status(backend, rid, sid))
    assert seen == [1, 2, 3, 3, 4, 5]


def test_slice_start_time_is_the_ready_time_in_milliseconds(
        backend: Backend, clock: ManualClock) -> None:
    started = clock.now()
    rid, sid = _start(backend)
    assert backend.query(APP, rid, sid, "individual")["serverResponse"]["sliceStartTime"] == 0
    clock.advance(10)
    response = backend.query(APP, rid, sid, "individual")["serverResponse"]
    assert response == {"status": 4, "sliceStartTime": round((started + READY_SECONDS) * 1000)}


def test_one_series_per_publishing_subscribed_uid_spaced_by_capture_interval(
        backend: Backend, clock: ManualClock) -> None:
    _start(backend, capture_interval=7, subscribe_video_uids=["100", "200"])
    backend.join(APP, CNAME, "100", video=True, audio=True)
    backend.join(APP, CNAME, "200", video=False, audio=True)  # subscribed, not publishing
    backend.join(APP, CNAME, "300", video=True, audio=True)  # publishing, not subscribed
    clock.advance(READY_SECONDS + 7 * 3)
    jobs = _upload_all(backend)
    assert {job.publisher_uid for job in jobs} == {"100"}
    times = [job.taken_at for job in jobs]
    assert [b - a for a, b in itertools.pairwise(times)] == [7.0, 7.0, 7.0]


def test_a_publisher_who_stops_video_pauses_its_series_until_it_resumes(
        backend: Backend, clock: ManualClock) -> None:
    _start(backend, capture_interval=5)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    clock.advance(READY_SECONDS + 10)
    before = len(_upload_all(backend))  # at 0, 5, 10 s after ready
    backend.set_publishing(APP, CNAME, "100", video=False)
    clock.advance(60)
    paused = len(_upload_all(backend))
    backend.set_publishing(APP, CNAME, "100", video=True)
    clock.advance(5)
    resumed = _upload_all(backend)
    assert (before, paused, len(resumed)) == (3, 0, 2)
    assert resumed[1].taken_at - resumed[0].taken_at == 5.0


def test_an_empty_channel_ends_the_task_after_max_idle_time(
        backend: Backend, clock: ManualClock) -> None:
    rid, sid = _start(backend, max_idle_time=30)
    clock.advance(29.9)
    assert _status(backend, rid, sid) == 4
    clock.advance(0.2)
    assert _status(backend, rid, sid) == 6
    events = [(e["eventType"], e["payload"]["details"]) for e in backend.events()]
    assert (41, {"leaveCode": 4}) in events


def test_idle_counts_from_when_the_last_user_left(backend: Backend, clock: ManualClock) -> None:
    rid, sid = _start(backend, max_idle_time=30)
    backend.join(APP, CNAME, "100", video=False, audio=True)
    clock.advance(100)  # a channel with users is not idle, even without streams (S19)
    backend.leave(APP, CNAME, "100")
    clock.advance(29)
    assert _status(backend, rid, sid) == 4
    clock.advance(2)
    assert _status(backend, rid, sid) == 6


def test_an_exited_task_is_gone_after_exit_seconds(backend: Backend, clock: ManualClock) -> None:
    rid, sid = _start(backend, max_idle_time=5)
    clock.advance(5 + 6.1)
    with pytest.raises(ServiceError) as caught:
        backend.query(APP, rid, sid, "individual")
    assert caught.value.body() == {"code": 404, "reason": "failed to find worker"}
    assert [e["eventType"] for e in backend.events()][-2:] == [41, 11]


def test_resource_id_expires_after_five_minutes(backend: Backend, clock: ManualClock) -> None:
    rid = backend.acquire(APP, {"cname": CNAME, "uid": BOT})["resourceId"]
    clock.advance(RESOURCE_ID_SECONDS + 0.001)
    body = {"cname": CNAME, "uid": BOT, "clientRequest": snapshot_request()}
    with pytest.raises(ServiceError) as caught:
        backend.start(APP, rid, "individual", body)
    assert (caught.value.status, caught.value.code) == (400, 433)


def test_resource_id_is_still_valid_just_before_five_minutes(
        backend: Backend, clock: ManualClock) -> None:
    rid = backend.acquire(APP, {"cname": CNAME, "uid": BOT})["resourceId"]
    clock.advance(RESOURCE_ID_SECONDS - 0.001)
    body = {"cname": CNAME, "uid": BOT, "clientRequest": snapshot_request()}
    assert backend.start(APP, rid, "individual", body)["resourceId"] == rid


def test_failover_hides_the_task_then_files_carry_bak0(
        backend: Backend, clock: ManualClock) -> None:
    rid, sid = _start(backend)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    clock.advance(READY_SECONDS)
    assert not _upload_all(backend)[0].key.startswith("bak")
    backend.failover(sid, downtime=20)
    clock.advance(19)
    with pytest.raises(ServiceError) as caught:
        backend.query(APP, rid, sid, "individual")
    assert caught.value.code == 404
    clock.advance(1)
    jobs = _upload_all(backend)
    assert [job.key.split("_")[0] for job in jobs] == ["bak0"]
    assert _status(backend, rid, sid) == 5
    assert 12 in [e["eventType"] for e in backend.events()]


def test_a_second_failover_counts_bak1(backend: Backend, clock: ManualClock) -> None:
    _, sid = _start(backend)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    for _ in range(2):
        backend.failover(sid, downtime=1)
        clock.advance(1)
    assert {job.key.split("_")[0] for job in _upload_all(backend)} == {"bak1"}


def test_stop_reports_backuped_when_an_upload_failed(
        backend: Backend, clock: ManualClock) -> None:
    rid, sid = _start(backend)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    clock.advance(READY_SECONDS)
    _upload_all(backend, UploadFailure(32, "upload refused by the storage: AccessDenied"))
    status, body = backend.stop(APP, rid, sid, "individual", {"cname": CNAME, "uid": BOT})
    assert (status, body["serverResponse"]) == (200, {"uploadingStatus": "backuped"})
    errors = [e["payload"]["details"] for e in backend.events() if e["eventType"] == 1]
    assert errors == [{"module": 1, "errorLevel": 3, "errorCode": 32, "stat": 0,
                       "errorMsg": "upload refused by the storage: AccessDenied"}]


def test_acquire_counts_held_resources_against_the_task_limit(clock: ManualClock) -> None:
    backend = Backend(clock=clock, app_ids=[APP], max_tasks=2)
    for uid in ("1", "2"):
        backend.acquire(APP, {"cname": CNAME, "uid": uid})
    with pytest.raises(ServiceError) as caught:
        backend.acquire(APP, {"cname": CNAME, "uid": "3"})
    assert caught.value.body() == {"code": 406, "reason": "vendor_over_load"}


def test_an_unknown_app_id_is_invalid_appid(backend: Backend) -> None:
    with pytest.raises(ServiceError) as caught:
        backend.acquire("f" * 32, {"cname": CNAME, "uid": BOT})
    assert caught.value.body() == {"code": 400, "reason": "invalid_appid"}


def test_a_resource_id_from_another_app_id_is_1003(clock: ManualClock) -> None:
    other = "f" * 32
    backend = Backend(clock=clock, app_ids=[APP, other])
    rid = backend.acquire(APP, {"cname": CNAME, "uid": BOT})["resourceId"]
    body = {"cname": CNAME, "uid": BOT, "clientRequest": snapshot_request()}
    with pytest.raises(ServiceError) as caught:
        backend.start(other, rid, "individual", body)
    assert caught.value.code == 1003


def test_a_made_up_resource_id_is_1001(backend: Backend) -> None:
    body = {"cname": CNAME, "uid": BOT, "clientRequest": snapshot_request()}
    with pytest.raises(ServiceError) as caught:
        backend.start(APP, "not-a-resource-id", "individual", body)
    assert caught.value.code == 1001


def test_start_must_repeat_the_acquire_start_parameter(backend: Backend) -> None:
    parameter = snapshot_request(capture_interval=5)
    rid = backend.acquire(APP, {"cname": CNAME, "uid": BOT,
                                "clientRequest": {"startParameter": parameter}})["resourceId"]
    body = {"cname": CNAME, "uid": BOT, "clientRequest": snapshot_request(capture_interval=6)}
    with pytest.raises(ServiceError) as caught:
        backend.start(APP, rid, "individual", body)
    assert "startParameter" in caught.value.reason


def test_start_with_another_cname_than_acquire_is_432(backend: Backend) -> None:
    rid = backend.acquire(APP, {"cname": CNAME, "uid": BOT})["resourceId"]
    body = {"cname": "other", "uid": BOT, "clientRequest": snapshot_request()}
    with pytest.raises(ServiceError) as caught:
        backend.start(APP, rid, "individual", body)
    assert caught.value.code == 432


def test_gone_tasks_and_stale_resources_are_forgotten(
        backend: Backend, clock: ManualClock) -> None:
    for index in range(20):
        backend.acquire(APP, {"cname": CNAME, "uid": str(index + 1)})
        _start(backend, max_idle_time=5)
        clock.advance(RESOURCE_ID_SECONDS + 20)
    counters = backend.snapshot_counters()
    assert (counters["tasksRunning"], counters["resourcesHeld"]) == (0, 0)
    assert counters["tasksExited"] == 20
