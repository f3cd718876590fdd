"""The emulator does not go down: hostile input is refused in Agora's shapes, and one failing task
stops neither the capture worker nor the other tasks (emulator/responses.py, models.py,
capture.py module docstrings)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from support.waiting import wait_for

import snapshot_resources
from snapshot_resources.agora.client import _int_or_none
from snapshot_resources.emulator import capture, models
from snapshot_resources.emulator.clock import ManualClock
from snapshot_resources.emulator.errors import ServiceError
from snapshot_resources.emulator.models import Backend
from snapshot_resources.emulator.responses import MAX_BODY_BYTES, MAX_JSON_DEPTH
from snapshot_resources.emulator.testcard import render_jpg
from snapshot_resources.naming import format_snapshot_name
from snapshot_resources.rules import is_ascii_digits
from snapshot_resources.testing.emulator import (
    EmulatorHandle,
    RawAgora,
    run_emulator,
    snapshot_request,
)

APP = "0123456789abcdef0123456789abcdef"
CNAME, BOT = "lobby", "527841"
NO_ROUTE = {"message": "no Route matched with those values"}


@pytest.fixture
def handle(tmp_path: Path) -> Iterator[EmulatorHandle]:
    # qps high enough that polling a task never meets the 429 of the gateway.
    with run_emulator(time_scale=50, qps=1000, storage_dir=tmp_path / "storage") as running:
        yield running


@pytest.fixture
def raw(handle: EmulatorHandle) -> Iterator[RawAgora]:
    client = RawAgora(handle)
    yield client
    client.close()


def _admin_post(handle: EmulatorHandle, path: str, body: str | bytes) -> requests.Response:
    return requests.post(f"{handle.url}/_emulator/{path}", data=body, timeout=10,
                         headers={"Content-Type": "application/json"})


def _raw(handle: EmulatorHandle, request: bytes) -> bytes:
    """Send raw bytes on a fresh connection; everything received until the server closes it."""
    host, port = handle.url.removeprefix("http://").rsplit(":", 1)
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        while chunk := sock.recv(65536):
            received += chunk
    return received


def _exchange(handle: EmulatorHandle, request: bytes) -> tuple[int, dict[str, Any] | None]:
    """The status and the JSON body (None when empty) of one raw request; the request asks for
    ``Connection: close`` or is one the server closes the connection after."""
    head, _, body = _raw(handle, request).partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body) if body else None


def _acquire_path(handle: EmulatorHandle) -> str:
    return f"/v1/apps/{handle.app_id}/cloud_recording/acquire"


# One definition of "a string of digits" ------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("0", True), ("527841", True), ("", False), ("１２", False), ("٣", False), ("²", False),
    ("12 ", False), ("-1", False), ("1.0", False), ("1_000", False),
])
def test_is_ascii_digits_accepts_the_ascii_digits_only(text: str, expected: bool) -> None:
    assert is_ascii_digits(text) is expected


def test_no_module_calls_isdigit_except_is_ascii_digits() -> None:
    root = Path(snapshot_resources.__file__).parent
    calls = [(path.relative_to(root).as_posix(), number)
             for path in sorted(root.rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if ".isdigit(" in line]
    assert [path for path, _ in calls] == ["rules.py"]
    rules_source = (root / "rules.py").read_text()
    body = rules_source.split("def is_ascii_digits", 1)[1].split("\ndef ", 1)[0]
    assert ".isdigit(" in body


@pytest.mark.parametrize(("value", "expected"), [
    ("435", 435), (" 435 ", 435), ("-5", -5), ("１２", None), ("--5", None), ("²", None),
])
def test_the_client_reads_only_ascii_digits_as_an_agora_code(value: str,
                                                             expected: int | None) -> None:
    assert _int_or_none(value) == expected


# A non-ASCII uid through the admin API (the reported crash) ------------------------------------------

@pytest.mark.parametrize("uid", ["１２", "²", "٣", "1" * 5000, "12\n"])
def test_admin_join_refuses_a_uid_that_is_not_ascii_digits_naming_uid(
        handle: EmulatorHandle, uid: str) -> None:
    response = _admin_post(handle, f"channels/{handle.app_id}/{CNAME}/users",
                           json.dumps({"uid": uid, "video": True}))
    assert response.status_code == 400
    assert response.json()["error"].startswith("uid:")
    assert handle.admin.channels() == []


def test_the_emulator_keeps_capturing_after_a_join_with_fullwidth_digits(
        handle: EmulatorHandle, raw: RawAgora) -> None:
    rid, sid = raw.begin(CNAME, BOT, snapshot_request(subscribe_video_uids=["#allstream#"]))
    refused = _admin_post(handle, f"channels/{handle.app_id}/{CNAME}/users",
                          json.dumps({"uid": "１２", "video": True}))
    handle.admin.join(CNAME, "100")
    wait_for(lambda: handle.admin.task(sid)["files"] >= 2)
    assert refused.status_code == 400
    assert raw.query(rid, sid).status_code == 200
    assert handle.admin.counters()["taskErrors"] == 0


# One bad task stops nothing else --------------------------------------------------------------------

def _begin_in(raw: RawAgora, handle: EmulatorHandle, cname: str) -> tuple[str, str]:
    handle.admin.join(cname, "100")
    return raw.begin(cname, BOT, snapshot_request())


def test_a_task_whose_snapshots_cannot_be_named_stops_alone(
        handle: EmulatorHandle, raw: RawAgora, monkeypatch: pytest.MonkeyPatch) -> None:
    real = format_snapshot_name

    def failing(*, cname: str, **kwargs: Any) -> str:
        if cname == "broken":
            raise ValueError("cannot name it")
        return real(cname=cname, **kwargs)

    monkeypatch.setattr(models, "format_snapshot_name", failing)
    broken_rid, broken = _begin_in(raw, handle, "broken")
    rid, sid = _begin_in(raw, handle, CNAME)
    wait_for(lambda: handle.admin.task(sid)["files"] >= 3)
    described = handle.admin.task(broken)
    assert described["fault"].startswith("ValueError at ")
    assert (described["captures"], described["publishers"]) == (0, [])
    assert handle.admin.counters()["taskErrors"] == 1
    assert raw.query(broken_rid, broken).status_code == 200
    assert raw.query(rid, sid).status_code == 200


def test_a_capture_that_raises_is_counted_and_the_other_tasks_go_on(
        handle: EmulatorHandle, raw: RawAgora, monkeypatch: pytest.MonkeyPatch) -> None:
    real = render_jpg

    def failing(*, cname: str, uid: str, taken_at: datetime) -> bytes:
        if cname == "broken":
            raise RuntimeError("drawing failed")
        return real(cname=cname, uid=uid, taken_at=taken_at)

    monkeypatch.setattr(capture, "render_jpg", failing)
    _, broken = _begin_in(raw, handle, "broken")
    _, sid = _begin_in(raw, handle, CNAME)
    wait_for(lambda: handle.admin.task(sid)["files"] >= 3
             and handle.admin.task(broken)["uploadFailures"] >= 2)
    counters = handle.admin.counters()
    assert counters["captureErrors"] >= 2
    assert handle.admin.task(broken)["files"] == 0


def test_the_capture_worker_survives_an_exception_in_a_round(
        handle: EmulatorHandle, raw: RawAgora, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = handle.backend
    real = backend.tick
    calls = {"n": 0}

    def tick_failing_once() -> float | None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("one bad round")
        return real()

    monkeypatch.setattr(backend, "tick", tick_failing_once)
    _, sid = _begin_in(raw, handle, CNAME)
    wait_for(lambda: handle.admin.task(sid)["files"] >= 2)
    assert handle.admin.counters()["workerErrors"] == 1


def test_a_task_that_fails_again_after_its_fault_is_dropped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    backend = Backend(clock=ManualClock(), app_ids=[APP])
    rid = backend.acquire(APP, {"cname": CNAME, "uid": BOT})["resourceId"]
    sid = backend.start(APP, rid, "individual", {"cname": CNAME, "uid": BOT,
                                                 "clientRequest": snapshot_request()})["sid"]

    def broken(task: models.Task, now: float) -> None:
        raise RuntimeError("always")

    monkeypatch.setattr(backend, "_advance_task", broken)
    backend.tick()  # the first failure: the task captures nothing more
    backend.tick()  # the second: it is dropped
    with pytest.raises(ServiceError) as caught:
        backend.query(APP, rid, sid, "individual")
    assert caught.value.body() == {"code": 404, "reason": "failed to find worker"}
    gone = [t for t in backend.tasks() if t["sid"] == sid]
    assert [(t["state"], t["fault"].split(" at ")[0]) for t in gone] == [("gone", "RuntimeError")]
    assert backend.snapshot_counters()["taskErrors"] == 2


# Bodies no Agora field can hold: 400 code 2, never 500 ----------------------------------------------

@pytest.mark.parametrize("body", [
    "[" * 100_000,
    "[" * 100_000 + "]" * 100_000,
    "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
    '{"cname":"lobby","uid":"1","clientRequest":' + '{"a":' * 40 + "1" + "}" * 41,
])
def test_json_nested_too_deep_is_400_code_2(raw: RawAgora, body: str) -> None:
    response = raw.session.post(f"{raw.base}/acquire", data=body, timeout=10)
    assert response.status_code == 400
    assert response.json()["code"] == 2


@pytest.mark.parametrize("number", ["1" * 5000, "-" + "9" * 5000, str(2**63), str(-(2**63) - 1)])
def test_an_integer_beyond_64_bits_is_400_code_2(raw: RawAgora, number: str) -> None:
    body = '{"cname":"lobby","uid":"1","clientRequest":{"resourceExpiredHour":' + number + "}}"
    response = raw.session.post(f"{raw.base}/acquire", data=body, timeout=10)
    assert (response.status_code, response.json()["code"]) == (400, 2)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999"])
def test_a_non_finite_number_is_400_code_2(raw: RawAgora, number: str) -> None:
    body = '{"cname":"lobby","uid":"1","clientRequest":{"resourceExpiredHour":' + number + "}}"
    response = raw.session.post(f"{raw.base}/acquire", data=body, timeout=10)
    assert (response.status_code, response.json()["code"]) == (400, 2)


def test_a_uid_string_of_thousands_of_digits_is_400_code_2_naming_uid(raw: RawAgora) -> None:
    response = raw.acquire(CNAME, "1" * 5000)
    assert (response.status_code, response.json()["code"]) == (400, 2)
    assert response.json()["reason"].startswith("uid:")


def test_the_largest_64_bit_integer_is_still_read(raw: RawAgora) -> None:
    # Refused for its value (not a valid resourceExpiredHour), not for its size: the S7 reason.
    body = ('{"cname":"lobby","uid":"1","clientRequest":{"resourceExpiredHour":'
            + str(2**63 - 1) + "}}")
    response = raw.session.post(f"{raw.base}/acquire", data=body, timeout=10)
    assert response.json() == {"code": 2, "reason": "Acquire: invalid resourceExpiredHour value!"}


# Framing: body size, Content-Length, methods, request lines ------------------------------------------

def test_a_body_over_the_limit_is_413_and_the_connection_stays_usable(raw: RawAgora) -> None:
    too_big = raw.session.post(f"{raw.base}/acquire", data=b" " * (MAX_BODY_BYTES + 1),
                               timeout=10)
    after = raw.acquire(CNAME, BOT)
    assert (too_big.status_code, too_big.json()["code"]) == (413, 8)
    assert after.status_code == 200


@pytest.mark.parametrize("length", ["abc", "-1", "1 2", "0x10", "+5", ""])
def test_a_malformed_content_length_is_400(handle: EmulatorHandle, length: str) -> None:
    status, body = _exchange(handle, (
        f"POST {_acquire_path(handle)} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{}}").encode())
    assert (status, body is not None and body["code"]) == (400, 8)


def test_two_different_content_lengths_are_400(handle: EmulatorHandle) -> None:
    status, body = _exchange(handle, (
        f"POST {_acquire_path(handle)} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        "Content-Length: 3\r\n\r\n{}").encode())
    assert (status, body is not None and body["code"]) == (400, 8)


def test_a_chunked_body_is_400_and_not_read_as_the_next_request(handle: EmulatorHandle) -> None:
    status, body = _exchange(handle, (
        f"POST {_acquire_path(handle)} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "\r\n2\r\n{}\r\n0\r\n\r\n").encode())
    assert (status, body is not None and body["code"]) == (400, 8)


@pytest.mark.parametrize("length", [str(10**12), "1" * 5000])
def test_a_huge_content_length_is_413_without_reading_the_body(handle: EmulatorHandle,
                                                               length: str) -> None:
    status, body = _exchange(handle, (
        f"POST {_acquire_path(handle)} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {length}\r\n\r\n{{}}").encode())
    assert (status, body is not None and body["code"]) == (413, 8)


@pytest.mark.parametrize("method", ["PROPFIND", "OPTIONS", "TRACE", "FOO"])
def test_an_unknown_method_is_404_no_route_in_json(handle: EmulatorHandle, method: str) -> None:
    response = requests.request(method, handle.url + _acquire_path(handle), auth=handle.auth,
                                timeout=10)
    assert (response.status_code, response.json()) == (404, NO_ROUTE)


def test_head_is_404_without_a_body(handle: EmulatorHandle) -> None:
    status, body = _exchange(handle, f"HEAD {_acquire_path(handle)} HTTP/1.1\r\nHost: x\r\n"
                             "Connection: close\r\n\r\n".encode())
    assert (status, body) == (404, None)


def test_a_malformed_request_line_is_answered_in_json(handle: EmulatorHandle) -> None:
    # Without a valid HTTP version the answer is HTTP/0.9 style: the body alone.
    assert set(json.loads(_raw(handle, b"NOT A REQUEST LINE AT ALL\r\n\r\n"))) == {"message"}


def test_too_many_headers_are_431_in_json(handle: EmulatorHandle) -> None:
    headers = "".join(f"X-Filler-{index}: x\r\n" for index in range(200))
    status, body = _exchange(handle, f"GET /v1/ncs/ip HTTP/1.1\r\n{headers}\r\n".encode())
    assert status == 431
    assert body is not None
    assert set(body) == {"message"}


# The admin API: the same limits, and no NaN deadline ------------------------------------------------

@pytest.mark.parametrize("downtime", ["NaN", "Infinity", "-Infinity", "1e999", "-1",
                                      str(10**400)])
def test_failover_with_a_downtime_that_is_not_finite_is_400_and_the_task_runs_on(
        handle: EmulatorHandle, raw: RawAgora, downtime: str) -> None:
    _, sid = _begin_in(raw, handle, CNAME)
    response = _admin_post(handle, f"tasks/{sid}/failover", '{"downtimeSeconds": ' + downtime
                           + "}")
    assert response.status_code == 400
    files = handle.admin.task(sid)["files"]
    wait_for(lambda: handle.admin.task(sid)["files"] > files)
    assert (handle.admin.task(sid)["state"], handle.admin.counters()["failovers"]) == \
        ("running", 0)


@pytest.mark.parametrize("downtime", [float("nan"), float("inf"), -1.0, 10**400])
def test_the_backend_refuses_a_failover_downtime_that_is_not_finite(
        downtime: float) -> None:
    backend = Backend(clock=ManualClock(), app_ids=[APP])
    rid = backend.acquire(APP, {"cname": CNAME, "uid": BOT})["resourceId"]
    sid = backend.start(APP, rid, "individual", {"cname": CNAME, "uid": BOT,
                                                 "clientRequest": snapshot_request()})["sid"]
    with pytest.raises(ValueError, match=r"^downtimeSeconds: "):
        backend.failover(sid, downtime=downtime)
    task = backend.task(sid)
    assert task is not None
    assert (task.phase, task.failovers) == ("running", 0)


def test_the_admin_api_refuses_json_nested_too_deep(handle: EmulatorHandle) -> None:
    response = requests.put(f"{handle.url}/_emulator/faults", data="[" * 100_000, timeout=10)
    assert response.status_code == 400
    assert "nested" in response.json()["error"]


def test_the_admin_api_refuses_a_latency_that_would_hang_requests(
        handle: EmulatorHandle) -> None:
    with pytest.raises(requests.HTTPError) as caught:
        handle.admin.set_faults(rate=0.0, latency_ms=10**9)
    assert caught.value.response.status_code == 400
    assert caught.value.response.json()["error"].startswith("latency_ms:")
