"""The recorder's uid held by a user in the channel (S2 acquire: it must not duplicate any uid):
the task captures nothing while it is held, query stays at 4, stop answers 206 code 435 (S7), and
the admin description says ``recorderUidTaken`` (emulator/models.py module docstring)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.waiting import wait_for

from snapshot_resources.emulator.clock import ManualClock
from snapshot_resources.emulator.errors import ServiceError
from snapshot_resources.emulator.models import READY_SECONDS, Backend, CaptureJob
from snapshot_resources.testing.emulator import (
    EmulatorHandle,
    RawAgora,
    run_emulator,
    snapshot_request,
)

APP = "0123456789abcdef0123456789abcdef"
CNAME, BOT = "lobby", "527841"
NO_DATA = {"code": 435, "reason": "no recorded data"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def backend(clock: ManualClock) -> Backend:
    return Backend(clock=clock, app_ids=[APP])


def _start(backend: Backend) -> tuple[str, str]:
    rid = backend.acquire(APP, {"cname": CNAME, "uid": BOT})["resourceId"]
    body = {"cname": CNAME, "uid": BOT, "clientRequest": snapshot_request()}
    return rid, backend.start(APP, rid, "individual", body)["sid"]


def _upload_all(backend: Backend) -> list[CaptureJob]:
    backend.tick()
    jobs = backend.take_jobs(10_000)
    for job in jobs:
        backend.capture_done(job, None)
    return jobs


def _described(backend: Backend, sid: str) -> dict[str, object]:
    return next(t for t in backend.tasks() if t["sid"] == sid)


def _stop(backend: Backend, rid: str, sid: str) -> tuple[int, dict[str, object]]:
    try:
        return backend.stop(APP, rid, sid, "individual", {"cname": CNAME, "uid": BOT})
    except ServiceError as error:
        return error.status, error.body()


def test_a_user_joining_with_the_recorders_uid_stops_every_capture(
        backend: Backend, clock: ManualClock) -> None:
    rid, sid = _start(backend)
    backend.join(APP, CNAME, BOT, video=True, audio=True)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    clock.advance(READY_SECONDS + 60)
    assert _upload_all(backend) == []
    status = backend.query(APP, rid, sid, "individual")["serverResponse"]["status"]
    described = _described(backend, sid)
    assert (status, described["recorderUidTaken"], described["captures"]) == (4, True, 0)
    assert _stop(backend, rid, sid) == (206, NO_DATA)


def test_a_recorder_starting_with_the_uid_of_a_user_present_captures_nothing(
        backend: Backend, clock: ManualClock) -> None:
    backend.join(APP, CNAME, "100", video=True, audio=True)
    backend.join(APP, CNAME, BOT, video=False, audio=True)
    rid, sid = _start(backend)
    clock.advance(READY_SECONDS + 60)
    assert _upload_all(backend) == []
    assert _described(backend, sid)["recorderUidTaken"] is True
    assert _stop(backend, rid, sid) == (206, NO_DATA)


def test_capturing_resumes_when_the_user_with_the_recorders_uid_leaves(
        backend: Backend, clock: ManualClock) -> None:
    rid, sid = _start(backend)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    backend.join(APP, CNAME, BOT, video=True, audio=True)
    clock.advance(READY_SECONDS + 30)
    held = _upload_all(backend)
    backend.leave(APP, CNAME, BOT)
    clock.advance(10)
    resumed = _upload_all(backend)
    assert (len(held), [job.publisher_uid for job in resumed]) == (0, ["100", "100", "100"])
    assert _described(backend, sid)["recorderUidTaken"] is False
    assert backend.query(APP, rid, sid, "individual")["serverResponse"]["status"] == 5


def test_without_a_clash_the_recorder_uid_is_not_taken(backend: Backend,
                                                       clock: ManualClock) -> None:
    _, sid = _start(backend)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    clock.advance(READY_SECONDS)
    assert len(_upload_all(backend)) == 1
    assert _described(backend, sid)["recorderUidTaken"] is False


def test_a_user_with_the_uid_of_a_recorder_in_another_channel_changes_nothing(
        backend: Backend, clock: ManualClock) -> None:
    _, sid = _start(backend)
    backend.join(APP, CNAME, "100", video=True, audio=True)
    backend.join(APP, "other", BOT, video=True, audio=True)
    clock.advance(READY_SECONDS)
    assert len(_upload_all(backend)) == 1
    assert _described(backend, sid)["recorderUidTaken"] is False


@pytest.fixture
def handle(tmp_path: Path) -> Iterator[EmulatorHandle]:
    with run_emulator(time_scale=50, qps=1000, storage_dir=tmp_path / "storage") as running:
        yield running


def test_over_http_status_stays_4_and_stop_is_206_code_435(handle: EmulatorHandle) -> None:
    agora = RawAgora(handle)
    for cname in (CNAME, "control"):
        handle.admin.join(cname, "100")
    handle.admin.join(CNAME, BOT)
    rid, sid = agora.begin(CNAME, BOT, snapshot_request())
    _, control = agora.begin("control", BOT, snapshot_request())
    # The same recorder uid in another channel, without a clash, captures meanwhile.
    wait_for(lambda: handle.admin.task(control)["files"] >= 3)
    statuses = {agora.query(rid, sid).json()["serverResponse"]["status"] for _ in range(5)}
    described = handle.admin.task(sid)
    stopped = agora.stop(rid, sid, CNAME, BOT)
    agora.close()
    assert (statuses, described["recorderUidTaken"], described["files"]) == ({4}, True, 0)
    assert (stopped.status_code, stopped.json()) == (206, NO_DATA)
    assert all("_lobby__uid_s_" not in p.name for p in handle.storage_dir.rglob("*.jpg"))
