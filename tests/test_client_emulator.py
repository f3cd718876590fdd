"""Acceptance of issue #3: AgoraClient against the emulator over real HTTP on loopback.

Each operation; each error code mapped to its class; retries counted by the emulator's own
counters for injected 5xx/206/429/reset faults and none for 4xx; domain failover with the first
endpoint refusing connections; a query that rides out a failover's 404 window; eight threads at
full speed staying within the per-App-ID rate with zero 429s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.agora_stub import refused_url
from support.waiting import wait_for

from snapshot_resources import rules
from snapshot_resources.agora import errors
from snapshot_resources.agora.client import AgoraClient, StopKind
from snapshot_resources.agora.ratelimit import reset_registry
from snapshot_resources.agora.retry import RetryPolicy
from snapshot_resources.emulator.clock import ManualClock
from snapshot_resources.testing.emulator import EmulatorHandle, run_emulator, snapshot_request

CNAME, BOT, USER = "lobby", "527841", "1001"
FAST = RetryPolicy(scale=0.001, deadline=20.0)
ACQUIRE = {"cname": CNAME, "uid": BOT, "clientRequest": {"scene": 0, "resourceExpiredHour": 24}}
STOP = {"cname": CNAME, "uid": BOT, "clientRequest": {"async_stop": False}}


def start_body(**knobs: Any) -> dict[str, Any]:
    return {"cname": CNAME, "uid": BOT, "clientRequest": snapshot_request(**knobs)}


def client_for(handle: EmulatorHandle, **options: Any) -> AgoraClient:
    options.setdefault("retry", FAST)
    return AgoraClient(handle.customer_id, handle.customer_secret, endpoint=handle.url, **options)



@pytest.fixture(autouse=True)
def fresh_buckets() -> Iterator[None]:
    # Emulators on a reused port would otherwise inherit an earlier test's (lowered) budget.
    reset_registry()
    yield
    reset_registry()


@pytest.fixture
def fast_emulator() -> Iterator[EmulatorHandle]:
    """50x clock and a QPS limit high enough that retry tests are not paced."""
    with run_emulator(time_scale=50, qps=1000) as handle:
        yield handle


def requests_of(handle: EmulatorHandle, operation: str) -> int:
    return int(handle.admin.counters()["requests"].get(operation, 0))


# -- each operation -------------------------------------------------------------------------------


def test_each_operation_against_the_emulator(agora_emulator: EmulatorHandle) -> None:
    app = agora_emulator.app_id
    agora_emulator.admin.join(CNAME, USER)
    with client_for(agora_emulator) as client:
        acquired = client.acquire(app, ACQUIRE)
        started = client.start(app, acquired.resource_id, start_body())
        running = client.wait_until_running(app, acquired.resource_id, started.sid,
                                            first_delay=0, interval=0.02, timeout=5)
        queried = client.query(app, acquired.resource_id, started.sid)
        client.update(app, acquired.resource_id, started.sid, {
            "cname": CNAME, "uid": BOT,
            "clientRequest": {"streamSubscribe": {"videoUidList": {"subscribeVideoUids": [USER]}}},
        })
        wait_for(lambda: agora_emulator.admin.task(started.sid)["captures"] >= 1)
        stopped = client.stop(app, acquired.resource_id, started.sid, STOP)
    assert (acquired.cname, acquired.uid) == (CNAME, BOT)
    assert (started.resource_id, started.cname, started.uid) == (acquired.resource_id, CNAME, BOT)
    assert running.status in rules.RUNNING_STATUSES
    assert queried.status in rules.RUNNING_STATUSES
    assert isinstance(queried.slice_start_time, int)
    assert stopped.uploading_status in rules.UPLOADING_STATUSES
    counted = agora_emulator.admin.counters()["requests"]
    assert {op: counted[op] for op in ("acquire", "start", "update", "stop")} == dict.fromkeys(
        ("acquire", "start", "update", "stop"), 1
    )


def test_acquire_and_start_then_stop_quietly(agora_emulator: EmulatorHandle) -> None:
    app = agora_emulator.app_id
    agora_emulator.admin.join(CNAME, USER)
    with client_for(agora_emulator) as client:
        started = client.acquire_and_start(app, ACQUIRE, start_body())
        wait_for(lambda: agora_emulator.admin.task(started.sid)["captures"] >= 1)
        first = client.stop_quietly(app, started.resource_id, started.sid, STOP)
        wait_for(lambda: agora_emulator.admin.task(started.sid)["state"] == "gone")
        second = client.stop_quietly(app, started.resource_id, started.sid, STOP)
    assert first.kind is StopKind.STOPPED
    assert second.kind is StopKind.NOT_FOUND


# -- each error code mapped to its class ----------------------------------------------------------


def test_task_conflict_53(agora_emulator: EmulatorHandle) -> None:
    app = agora_emulator.app_id
    with client_for(agora_emulator) as client:
        client.acquire_and_start(app, ACQUIRE, start_body())
        with pytest.raises(errors.TaskConflictError) as info:
            client.acquire_and_start(app, ACQUIRE, start_body())
    assert (info.value.status, info.value.code, info.value.operation) == (400, 53, "start")
    assert info.value.request_id  # the emulator sends X-Request-ID


def test_already_started_7(agora_emulator: EmulatorHandle) -> None:
    app = agora_emulator.app_id
    with client_for(agora_emulator) as client:
        started = client.acquire_and_start(app, ACQUIRE, start_body())
        with pytest.raises(errors.AlreadyStartedError) as info:
            client.start(app, started.resource_id, start_body())
    assert (info.value.status, info.value.code) == (201, 7)
    assert not info.value.is_retryable


def test_resource_expired_433() -> None:
    clock = ManualClock()
    with run_emulator(clock=clock) as handle, client_for(handle) as client:
        acquired = client.acquire(handle.app_id, ACQUIRE)
        clock.advance(rules.RESOURCE_ID_TTL_SECONDS + 1)
        with pytest.raises(errors.ResourceExpiredError) as info:
            client.start(handle.app_id, acquired.resource_id, start_body())
    assert (info.value.status, info.value.code) == (400, 433)


def test_unparsable_resource_id_1001(agora_emulator: EmulatorHandle) -> None:
    with client_for(agora_emulator) as client, pytest.raises(errors.ResourceIdInvalidError) as info:
        client.start(agora_emulator.app_id, "not-a-resource-id", start_body())
    assert info.value.code == 1001


def test_task_not_found_404(agora_emulator: EmulatorHandle) -> None:
    app = agora_emulator.app_id
    with client_for(agora_emulator) as client:
        acquired = client.acquire(app, ACQUIRE)
        with pytest.raises(errors.TaskNotFoundError) as info:
            client.query(app, acquired.resource_id, "0" * 32)
    assert (info.value.status, info.value.code, info.value.reason) == (
        404, 404, "failed to find worker")


def test_already_exiting_49() -> None:
    with run_emulator(time_scale=50, exit_seconds=3600) as handle, client_for(handle) as client:
        app = handle.app_id
        handle.admin.join(CNAME, USER)
        started = client.acquire_and_start(app, ACQUIRE, start_body())
        wait_for(lambda: handle.admin.task(started.sid)["captures"] >= 1)
        client.stop(app, started.resource_id, started.sid, STOP)
        with pytest.raises(errors.AlreadyExitingError) as info:
            client.stop(app, started.resource_id, started.sid, STOP)
        outcome = client.stop_quietly(app, started.resource_id, started.sid, STOP)
    assert (info.value.status, info.value.code) == (400, 49)
    assert outcome.kind is StopKind.ALREADY_EXITING


def test_nothing_recorded_435(agora_emulator: EmulatorHandle) -> None:
    app = agora_emulator.app_id
    with client_for(agora_emulator) as client:
        started = client.acquire_and_start(app, ACQUIRE, start_body())
        with pytest.raises(errors.NothingRecordedError) as info:
            client.stop(app, started.resource_id, started.sid, STOP)
    assert (info.value.status, info.value.code) == (206, 435)
    assert requests_of(agora_emulator, "stop") == 1  # informational: never retried


def test_rate_limited_429() -> None:
    # A client allowed more than the service: the gateway's 429, not retried with one attempt.
    with run_emulator(qps=1) as handle, client_for(
        handle, qps=100, retry=RetryPolicy(max_attempts=1)
    ) as client:
        client.acquire(handle.app_id, ACQUIRE)
        with pytest.raises(errors.RateLimitedError) as info:
            client.acquire(handle.app_id, ACQUIRE)
        assert handle.admin.counters()["rateLimited"] == 1
    assert (info.value.status, info.value.code, info.value.reason) == (
        429, None, "API rate limit exceeded")
    assert info.value.is_retryable


def test_auth_401(agora_emulator: EmulatorHandle) -> None:
    wrong = AgoraClient(agora_emulator.customer_id, "not-the-secret", endpoint=agora_emulator.url,
                        retry=FAST)
    with wrong, pytest.raises(errors.AuthError) as info:
        wrong.acquire(agora_emulator.app_id, ACQUIRE)
    assert (info.value.status, info.value.reason) == (401, "Invalid authentication credentials")
    assert requests_of(agora_emulator, "acquire") <= 1


def test_invalid_parameter_2(agora_emulator: EmulatorHandle) -> None:
    body = start_body()
    del body["clientRequest"]["snapshotConfig"]["fileType"]
    with client_for(agora_emulator) as client:
        acquired = client.acquire(agora_emulator.app_id, ACQUIRE)
        with pytest.raises(errors.InvalidRequestError) as info:
            client.start(agora_emulator.app_id, acquired.resource_id, body)
    assert (info.value.status, info.value.code) == (400, 2)
    assert "fileType" in info.value.reason


def test_invalid_app_id_400(agora_emulator: EmulatorHandle) -> None:
    with client_for(agora_emulator) as client, pytest.raises(errors.InvalidRequestError) as info:
        client.acquire("f" * 32, ACQUIRE)
    assert (info.value.status, info.value.code) == (400, 400)


def test_quota_exceeded_406() -> None:
    with run_emulator(max_tasks=1) as handle, client_for(handle) as client:
        client.acquire(handle.app_id, ACQUIRE)
        with pytest.raises(errors.QuotaExceededError) as info:
            client.acquire(handle.app_id, {**ACQUIRE, "uid": "527842"})
    assert (info.value.status, info.value.code) == (400, 406)
    assert not info.value.is_retryable


# -- retries counted by the emulator --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error"),
    [("5xx", errors.ServerError), ("206", errors.RequestNotCompletedError),
     ("429", errors.RateLimitedError), ("reset", errors.AgoraTransportError)],
)
def test_every_injected_fault_is_retried_up_to_max_attempts(
    fast_emulator: EmulatorHandle, kind: str, error: type[errors.AgoraError]
) -> None:
    app = fast_emulator.app_id
    policy = RetryPolicy(scale=0.001, max_attempts=3)
    with client_for(fast_emulator, retry=policy, qps=1000) as client:
        started = client.acquire_and_start(app, ACQUIRE, start_body())
        fast_emulator.admin.set_faults(rate=1.0, kinds=(kind,), operations=["query"])
        with pytest.raises(error) as info:
            client.query(app, started.resource_id, started.sid)
    counters = fast_emulator.admin.counters()
    assert counters["requests"]["query"] == 3
    assert counters["faults"] == {kind: 3}
    assert getattr(info.value, "attempts", None) == 3


def test_random_faults_are_ridden_out_and_each_one_cost_exactly_one_retry(
    fast_emulator: EmulatorHandle,
) -> None:
    app = fast_emulator.app_id
    policy = RetryPolicy(scale=0.001, max_attempts=10)
    with client_for(fast_emulator, retry=policy, qps=1000) as client:
        started = client.acquire_and_start(app, ACQUIRE, start_body())
        fast_emulator.admin.set_faults(rate=0.4, operations=["query", "update"], seed=7)
        for _ in range(30):
            client.query(app, started.resource_id, started.sid)
        fast_emulator.admin.clear_faults()
    counters = fast_emulator.admin.counters()
    faults = sum(counters["faults"].values())
    assert faults > 5  # the run really met faults of several kinds
    assert len(counters["faults"]) >= 3
    assert counters["requests"]["query"] == 30 + faults


def test_start_faults_are_retried_with_the_same_resource(fast_emulator: EmulatorHandle) -> None:
    app = fast_emulator.app_id
    with client_for(fast_emulator, qps=1000) as client:
        fast_emulator.admin.set_faults(rate=1.0, kinds=("206",), operations=["start"])
        acquired = client.acquire(app, ACQUIRE)
        with pytest.raises(errors.RequestNotCompletedError):
            client.start(app, acquired.resource_id, start_body())
        fast_emulator.admin.clear_faults()
        started = client.start(app, acquired.resource_id, start_body())
    assert started.resource_id == acquired.resource_id
    assert requests_of(fast_emulator, "start") == FAST.max_attempts + 1


def test_acquire_and_start_reacquires_after_start_keeps_failing(
    fast_emulator: EmulatorHandle,
) -> None:
    app = fast_emulator.app_id
    with client_for(fast_emulator, qps=1000) as client:
        fast_emulator.admin.set_faults(rate=1.0, kinds=("5xx",), operations=["start"])
        with pytest.raises(errors.ServerError):
            client.acquire_and_start(app, ACQUIRE, start_body(), attempts=2)
    counters = fast_emulator.admin.counters()["requests"]
    assert (counters["acquire"], counters["start"]) == (2, 2 * FAST.max_attempts)


@pytest.mark.parametrize(
    ("change", "error"),
    [(lambda b: b["clientRequest"]["snapshotConfig"].pop("fileType"), errors.InvalidRequestError),
     (lambda b: b.update(uid="999"), errors.InvalidRequestError)],  # 432: not acquire's uid
)
def test_client_errors_are_sent_once(
    fast_emulator: EmulatorHandle, change: Callable[[dict[str, Any]], object],
    error: type[errors.AgoraApiError],
) -> None:
    body = start_body()
    change(body)
    with client_for(fast_emulator, qps=1000) as client:
        acquired = client.acquire(fast_emulator.app_id, ACQUIRE)
        with pytest.raises(error):
            client.start(fast_emulator.app_id, acquired.resource_id, body)
    assert requests_of(fast_emulator, "start") == 1


# -- failover -------------------------------------------------------------------------------------


def test_domain_failover_when_the_first_endpoint_refuses_connections(
    agora_emulator: EmulatorHandle,
) -> None:
    app = agora_emulator.app_id
    client = AgoraClient(agora_emulator.customer_id, agora_emulator.customer_secret,
                         endpoint=[refused_url(), agora_emulator.url], retry=FAST)
    with client:
        started = client.acquire_and_start(app, ACQUIRE, start_body())
        queried = client.query(app, started.resource_id, started.sid)
    assert queried.raw["sid"] == started.sid
    counted = agora_emulator.admin.counters()["requests"]
    assert (counted["acquire"], counted["start"], counted["query"]) == (1, 1, 1)


def test_query_rides_out_a_failover_404_window(agora_emulator: EmulatorHandle) -> None:
    app = agora_emulator.app_id
    agora_emulator.admin.join(CNAME, USER)
    policy = RetryPolicy(scale=0.01)  # 404 re-queries at 50, 100, 150 ms
    with client_for(agora_emulator, retry=policy) as client:
        started = client.acquire_and_start(app, ACQUIRE, start_body(max_idle_time=300))
        client.wait_until_running(app, started.resource_id, started.sid, first_delay=0,
                                  interval=0.02, timeout=5)
        agora_emulator.admin.failover(started.sid, downtime_seconds=20)  # 0.4 s at 50x
        with pytest.raises(errors.TaskNotFoundError):
            client.query(app, started.resource_id, started.sid)
        result = client.query_riding_failover(app, started.resource_id, started.sid, grace=10)
    assert result.raw["sid"] == started.sid
    assert result.status in rules.RUNNING_STATUSES
    assert requests_of(agora_emulator, "query") >= 4  # the failed ones were re-queried


def test_a_task_still_missing_after_the_grace_is_gone(agora_emulator: EmulatorHandle) -> None:
    app = agora_emulator.app_id
    with client_for(agora_emulator, retry=RetryPolicy(scale=0.01)) as client:
        started = client.acquire_and_start(app, ACQUIRE, start_body(max_idle_time=300))
        agora_emulator.admin.failover(started.sid, downtime_seconds=100_000)
        with pytest.raises(errors.TaskNotFoundError) as info:
            client.query_riding_failover(app, started.resource_id, started.sid, grace=0.3)
    assert info.value.attempts >= 2


# -- the per-App-ID rate --------------------------------------------------------------------------


@pytest.mark.parametrize("qps", [rules.QPS_PER_APP_ID, 40])  # Agora's default, and a raised one
def test_eight_threads_at_full_speed_stay_within_the_rate_with_no_429(qps: int) -> None:
    with run_emulator(time_scale=50, qps=qps) as handle:
        app = handle.app_id
        with client_for(handle, qps=qps) as setup:
            started = setup.acquire_and_start(app, ACQUIRE, start_body(max_idle_time=300))
        done: list[int] = []
        failures: list[BaseException] = []
        stop_at = time.monotonic() + 3.0
        lock = threading.Lock()

        shared = client_for(handle, qps=qps)

        def hammer(own: bool) -> None:
            # Four threads share one client, four have their own: the budget is per App ID
            # across the process, whichever client a thread uses.
            count = 0
            client = client_for(handle, qps=qps) if own else shared
            try:
                while time.monotonic() < stop_at:
                    client.query(app, started.resource_id, started.sid)
                    count += 1
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)
            finally:
                if own:
                    client.close()
            with lock:
                done.append(count)

        threads = [threading.Thread(target=hammer, args=(i % 2 == 1,)) for i in range(8)]
        began = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - began
        shared.close()
        counters = handle.admin.counters()
    sent = sum(done)
    print(f"\n8 threads, qps {qps}: {sent} queries in {elapsed:.2f} s (the first {qps} as one burst); "
          f"emulator max in any 1 s window: {counters['maxRequestsPerSecond'][app]}; "
          f"429s: {counters['rateLimited']}")
    assert failures == []
    assert counters["rateLimited"] == 0
    assert counters["maxRequestsPerSecond"][app] <= qps
    assert counters["requests"]["query"] == sent
    assert sent >= 2 * qps  # they really pushed: more than two seconds' worth of budget
