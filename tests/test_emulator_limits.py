"""QPS and concurrency limits (S7, S8, S10, W3) and injected faults, over real HTTP."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from snapshot_resources.testing.emulator import EmulatorHandle, RawAgora, run_emulator

CNAME = "lobby"


def test_more_than_qps_requests_in_a_second_get_429(agora_emulator: EmulatorHandle) -> None:
    agora = RawAgora(agora_emulator)
    statuses = [agora.acquire(CNAME, str(uid)).status_code for uid in range(1, 13)]
    agora.close()
    assert statuses[:10] == [200] * 10
    assert statuses[10:] == [429, 429]


def test_the_429_body_is_the_gateway_message(agora_emulator: EmulatorHandle) -> None:
    agora = RawAgora(agora_emulator)
    answers = [agora.acquire(CNAME, str(uid)) for uid in range(1, 12)]
    agora.close()
    assert answers[-1].json() == {"message": "API rate limit exceeded"}


def test_the_limit_is_per_app_id() -> None:
    other = "f" * 32
    with run_emulator(time_scale=50, app_ids=[other]) as handle:
        first, second = RawAgora(handle), RawAgora(handle, app_id=other)
        statuses = [first.acquire(CNAME, str(uid)).status_code for uid in range(1, 11)]
        statuses.append(second.acquire(CNAME, "1").status_code)
        first.close()
        second.close()
    assert statuses == [200] * 11


def test_the_window_slides_after_a_second(agora_emulator: EmulatorHandle) -> None:
    agora = RawAgora(agora_emulator)
    for uid in range(1, 11):
        agora.acquire(CNAME, str(uid))
    time.sleep(1.05)
    status = agora.acquire(CNAME, "11").status_code
    agora.close()
    assert status == 200


def test_counters_report_429s_and_the_busiest_second(agora_emulator: EmulatorHandle) -> None:
    agora = RawAgora(agora_emulator)
    for uid in range(1, 14):
        agora.acquire(CNAME, str(uid))
    agora.close()
    counters = agora_emulator.admin.counters()
    assert counters["rateLimited"] == 3
    assert counters["maxRequestsPerSecond"] == {agora_emulator.app_id: 13}
    assert counters["requests"]["acquire"] == 13
    assert counters["responses"] == {"200": 10, "429": 3}


def test_acquire_over_the_concurrent_task_limit_is_406() -> None:
    with run_emulator(time_scale=50, max_tasks=3, qps=100) as handle:
        agora = RawAgora(handle)
        answers = [agora.acquire(CNAME, str(uid)) for uid in range(1, 5)]
        agora.close()
    assert [a.status_code for a in answers] == [200, 200, 200, 400]
    assert answers[-1].json() == {"code": 406, "reason": "vendor_over_load"}


def test_concurrent_requests_are_served_safely() -> None:
    with run_emulator(time_scale=50, qps=1000, max_tasks=1000) as handle:
        def acquire(uid: int) -> int:
            with requests.Session() as session:
                return session.post(
                    f"{handle.url}/v1/apps/{handle.app_id}/cloud_recording/acquire",
                    json={"cname": CNAME, "uid": str(uid)}, auth=handle.auth,
                    timeout=10).status_code
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(acquire, range(1, 201)))
        held = handle.backend.snapshot_counters()["resourcesHeld"]
    assert (statuses.count(200), held) == (200, 200)


# Faults (issue item 6) ----------------------------------------------------------------------------

def _statuses(handle: EmulatorHandle, count: int) -> list[int | str]:
    agora = RawAgora(handle)
    seen: list[int | str] = []
    for uid in range(1, count + 1):
        try:
            seen.append(agora.acquire(CNAME, str(uid)).status_code)
        except requests.ConnectionError:
            seen.append("reset")
    agora.close()
    return seen


def test_faults_with_the_same_seed_repeat_exactly() -> None:
    runs = []
    for _ in range(2):
        with run_emulator(time_scale=50, qps=1000, max_tasks=1000) as handle:
            handle.admin.set_faults(rate=0.5, seed=7)
            runs.append(_statuses(handle, 60))
    assert runs[0] == runs[1]
    assert {200, 500, 206, 429, "reset"} <= set(runs[0])


@pytest.mark.parametrize(("kind", "status", "body"), [
    ("5xx", 500, {"code": 500, "reason": "internal_error"}),
    ("206", 206, {"code": 65, "reason": "request not completed"}),
    ("429", 429, {"message": "API rate limit exceeded"}),
])
def test_each_fault_kind_has_agoras_shape(agora_emulator: EmulatorHandle, kind: str,
                                          status: int, body: dict[str, object]) -> None:
    agora_emulator.admin.set_faults(rate=1.0, kinds=[kind])
    agora = RawAgora(agora_emulator)
    response = agora.acquire(CNAME, "1")
    agora.close()
    assert (response.status_code, response.json()) == (status, body)


def test_a_reset_fault_drops_the_connection(agora_emulator: EmulatorHandle) -> None:
    agora_emulator.admin.set_faults(rate=1.0, kinds=["reset"])
    host, port = agora_emulator.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(b"POST /v1/apps/" + agora_emulator.app_id.encode()
                           + b"/cloud_recording/acquire HTTP/1.1\r\nHost: x\r\n"
                           + b"Authorization: Basic ZW11bGF0b3ItY3VzdG9tZXItaWQ6ZW11bGF0b3ItY3"
                           + b"VzdG9tZXItc2VjcmV0\r\nContent-Length: 2\r\n\r\n{}")
        try:
            received = connection.recv(1024)
        except ConnectionResetError:
            received = b""
    assert received == b""


def test_faults_apply_only_to_the_chosen_operations(agora_emulator: EmulatorHandle) -> None:
    agora_emulator.admin.set_faults(rate=1.0, kinds=["5xx"], operations=["query"])
    agora = RawAgora(agora_emulator)
    rid = agora.acquire(CNAME, "1").json()["resourceId"]
    query = agora.query(rid, "0" * 32)
    agora.close()
    assert (query.status_code, query.json()) == (504, {"code": 62, "reason": "request timeout"})


def test_cleared_faults_stop(agora_emulator: EmulatorHandle) -> None:
    agora_emulator.admin.set_faults(rate=1.0, kinds=["5xx"])
    agora_emulator.admin.clear_faults()
    assert _statuses(agora_emulator, 3) == [200, 200, 200]


def test_fault_latency_delays_the_answer(agora_emulator: EmulatorHandle) -> None:
    agora_emulator.admin.set_faults(rate=0.0, latency_ms=150)
    agora = RawAgora(agora_emulator)
    began = time.monotonic()
    agora.acquire(CNAME, "1")
    elapsed = time.monotonic() - began
    agora.close()
    assert elapsed >= 0.15


def test_server_latency_option_delays_every_answer() -> None:
    with run_emulator(latency_ms=120) as handle:
        agora = RawAgora(handle)
        began = time.monotonic()
        agora.acquire(CNAME, "1")
        elapsed = time.monotonic() - began
        agora.close()
    assert elapsed >= 0.12


def test_a_bad_fault_plan_is_refused(agora_emulator: EmulatorHandle) -> None:
    with pytest.raises(requests.HTTPError) as caught:
        agora_emulator.admin.set_faults(rate=2.0)
    assert caught.value.response.status_code == 400
