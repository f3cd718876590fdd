"""AgoraClient against a scripted loopback stub: one HTTP exchange pinned at a time.

The emulator tests (test_client_emulator.py) prove the client against a faithful server; these pin
the exact statuses, headers, delays and redirects the table and the helpers must handle.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from support.agora_stub import Reply, StubAgora, refused_url, run_stub

from snapshot_resources.agora import errors
from snapshot_resources.agora.client import AgoraClient, StopKind
from snapshot_resources.agora.ratelimit import reset_registry
from snapshot_resources.agora.retry import RetryPolicy

APP = "app0123456789"
FAST = RetryPolicy(scale=0.001, deadline=10.0)
ACQUIRE = {"cname": "c1", "uid": "527841", "clientRequest": {"resourceExpiredHour": 24}}
START = {
    "cname": "c1",
    "uid": "527841",
    "clientRequest": {
        "recordingConfig": {"channelType": 1, "streamTypes": 2, "subscribeUidGroup": 0},
        "snapshotConfig": {"captureInterval": 5, "fileType": ["jpg"]},
        "storageConfig": {"vendor": 1, "region": 0, "bucket": "b", "accessKey": "AKIAEXAMPLE",
                          "secretKey": "secret/example"},
    },
}
STOP = {"cname": "c1", "uid": "527841", "clientRequest": {"async_stop": False}}


@pytest.fixture
def stub() -> Iterator[StubAgora]:
    with run_stub() as s:
        yield s


@pytest.fixture
def client(stub: StubAgora) -> Iterator[AgoraClient]:
    reset_registry()
    with AgoraClient("cust-id", "cust-secret", endpoint=stub.url, retry=FAST, qps=1000) as c:
        yield c


def err(status: int, code: int | None = None, reason: str = "r", **headers: str) -> Reply:
    body: dict[str, Any] = {"message": reason} if code is None else {"code": code, "reason": reason}
    return Reply(status, body, headers)


# -- the operations -------------------------------------------------------------------------------


def test_acquire_posts_the_body_with_basic_auth_and_json_content_type(
    stub: StubAgora, client: AgoraClient
) -> None:
    result = client.acquire(APP, ACQUIRE)
    assert (result.resource_id, result.cname, result.uid) == ("rid-1", "c1", "527841")
    (sent,) = stub.received
    assert (sent.method, sent.path) == ("POST", f"/v1/apps/{APP}/cloud_recording/acquire")
    assert sent.headers["Content-Type"] == "application/json;charset=utf-8"
    assert sent.headers["Authorization"] == "Basic " + base64.b64encode(
        b"cust-id:cust-secret"
    ).decode()
    assert json.loads(sent.body) == ACQUIRE


def test_start_uses_the_resource_id_and_mode_in_the_path(
    stub: StubAgora, client: AgoraClient
) -> None:
    result = client.start(APP, "rid-1", START)
    assert (result.sid, result.resource_id, result.already_started) == ("sid-1", "rid-1", False)
    assert stub.paths() == [
        f"/v1/apps/{APP}/cloud_recording/resourceid/rid-1/mode/individual/start"
    ]


def test_query_is_a_get_without_body_that_still_sends_content_type(
    stub: StubAgora, client: AgoraClient
) -> None:
    result = client.query(APP, "rid-1", "sid-1")
    assert (result.status, result.slice_start_time, result.running) == (5, 1700000000000, True)
    (sent,) = stub.received
    assert sent.method == "GET"
    assert sent.path.endswith("/resourceid/rid-1/sid/sid-1/mode/individual/query")
    assert sent.body == b""
    assert sent.headers["Content-Type"] == "application/json;charset=utf-8"  # S18, G1


def test_update_posts_to_the_update_path(stub: StubAgora, client: AgoraClient) -> None:
    body = {"cname": "c1", "uid": "527841", "clientRequest": {"streamSubscribe": {
        "videoUidList": {"subscribeVideoUids": ["123"]}}}}
    client.update(APP, "rid-1", "sid-1", body)
    (sent,) = stub.received
    assert sent.path.endswith("/sid/sid-1/mode/individual/update")
    assert json.loads(sent.body) == body


def test_stop_returns_the_uploading_status(stub: StubAgora, client: AgoraClient) -> None:
    assert client.stop(APP, "rid-1", "sid-1", STOP).uploading_status == "uploaded"
    assert stub.paths()[0].endswith("/sid/sid-1/mode/individual/stop")


def test_ids_are_quoted_so_they_cannot_reshape_the_path(
    stub: StubAgora, client: AgoraClient
) -> None:
    client.query(APP, "../../x?y", "sid-1")
    assert "/resourceid/..%2F..%2Fx%3Fy/sid/" in stub.paths()[0]


def test_an_unknown_mode_is_refused_before_sending(stub: StubAgora, client: AgoraClient) -> None:
    with pytest.raises(ValueError, match="mode"):
        client.query(APP, "rid-1", "sid-1", mode="snapshot")
    assert stub.received == []


def test_a_200_without_resource_id_is_an_error(stub: StubAgora, client: AgoraClient) -> None:
    stub.script(Reply(200, {"cname": "c1"}))
    with pytest.raises(errors.AgoraApiError, match="resourceId"):
        client.acquire(APP, ACQUIRE)


# -- retries by table -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [err(500, 500, "internal_error"), err(503), err(206, 65, "request not completed"),
     err(429, None, "API rate limit exceeded"), err(504, 62, "request timeout")],
)
def test_retryable_answers_are_retried_until_success(
    stub: StubAgora, client: AgoraClient, fault: Reply
) -> None:
    stub.script(fault, fault)
    assert client.query(APP, "rid-1", "sid-1").status == 5
    assert len(stub.received) == 3


@pytest.mark.parametrize(
    ("fault", "error"),
    [(err(400, 2, "invalid parameter"), errors.InvalidRequestError),
     (err(401, None, "Invalid authentication credentials"), errors.AuthError),
     (err(404, None, "no Route matched with those values"), errors.InvalidRequestError),
     (err(400, 53, "task conflict"), errors.TaskConflictError)],
)
def test_client_errors_are_not_retried(
    stub: StubAgora, client: AgoraClient, fault: Reply, error: type[errors.AgoraApiError]
) -> None:
    stub.script(fault)
    with pytest.raises(error) as info:
        client.start(APP, "rid-1", START)
    assert len(stub.received) == 1
    assert info.value.attempts == 1
    assert not info.value.is_retryable


def test_retries_stop_after_max_attempts_and_raise_the_last_error(
    stub: StubAgora, client: AgoraClient
) -> None:
    stub.script(*[err(503, None, "down", **{"X-Request-Id": f"req-{i}"}) for i in range(6)])
    with pytest.raises(errors.ServerError) as info:
        client.query(APP, "rid-1", "sid-1")
    assert len(stub.received) == FAST.max_attempts
    assert (info.value.status, info.value.attempts) == (503, FAST.max_attempts)
    assert info.value.request_id == "req-3"
    assert "request id req-3" in str(info.value)


def test_the_deadline_stops_retries_before_max_attempts(stub: StubAgora) -> None:
    slow = RetryPolicy(scale=1.0, deadline=0.5)  # the first documented delay (1 s) is too long
    with AgoraClient("i", "secret", endpoint=stub.url, retry=slow, qps=1000) as client:
        stub.script(err(503))
        with pytest.raises(errors.ServerError):
            client.query(APP, "rid-1", "sid-1")
    assert len(stub.received) == 1


def test_a_slow_answer_times_out_and_is_retried(stub: StubAgora) -> None:
    with AgoraClient("i", "secret", endpoint=stub.url, retry=FAST, timeout=0.2) as client:
        stub.script(Reply(delay=1.0))
        assert client.query(APP, "rid-1", "sid-1").status == 5
    assert len(stub.received) == 2


def test_timeouts_that_never_end_raise_agora_timeout_error(stub: StubAgora) -> None:
    policy = RetryPolicy(scale=0.001, max_attempts=2)
    with AgoraClient("i", "secret", endpoint=stub.url, retry=policy, timeout=0.1) as client:
        stub.script(Reply(delay=0.5), Reply(delay=0.5))
        with pytest.raises(errors.AgoraTimeoutError) as info:
            client.query(APP, "rid-1", "sid-1")
    assert info.value.attempts == 2
    assert info.value.operation == "query"


def test_redirects_are_not_followed(stub: StubAgora, client: AgoraClient) -> None:
    stub.script(Reply(302, {}, {"Location": "http://127.0.0.1:9/elsewhere"}))
    with pytest.raises(errors.AgoraApiError) as info:
        client.query(APP, "rid-1", "sid-1")
    assert info.value.status == 302
    assert len(stub.received) == 1


# -- failover -------------------------------------------------------------------------------------


def test_a_refused_endpoint_fails_over_to_the_next(
    stub: StubAgora, caplog: pytest.LogCaptureFixture
) -> None:
    dead = refused_url()
    caplog.set_level(logging.INFO, "snapshot_resources.agora")
    with AgoraClient("i", "secret", endpoint=[dead, stub.url], retry=FAST) as client:
        assert client.query(APP, "rid-1", "sid-1").status == 5
        tried = [getattr(r, "agora_host", None) for r in caplog.records]
        dead_host = dead.removeprefix("http://")
        assert tried[:2] == [dead_host, dead_host]  # S11 step 1: retry the first once
        caplog.clear()
        client.query(APP, "rid-1", "sid-1")  # the working endpoint is now preferred
        hosts = [getattr(r, "agora_host", None) for r in caplog.records]
        assert hosts == [stub.url.removeprefix("http://")]
    assert len(stub.received) == 2


def test_every_endpoint_refused_raises_a_transport_error() -> None:
    client = AgoraClient("i", "secret", endpoint=[refused_url(), refused_url()], retry=FAST)
    with client, pytest.raises(errors.AgoraTransportError) as info:
        client.acquire(APP, ACQUIRE)
    assert info.value.attempts == FAST.max_attempts
    assert info.value.kind == "network"
    assert not isinstance(info.value, errors.AgoraTimeoutError)


# -- helpers --------------------------------------------------------------------------------------


def query_reply(status: int) -> Reply:
    return Reply(200, {"sid": "sid-1", "serverResponse": {"status": status}})


def test_wait_until_running_polls_until_status_4_or_5(
    stub: StubAgora, client: AgoraClient
) -> None:
    stub.script(query_reply(1), query_reply(3), query_reply(4))
    result = client.wait_until_running(APP, "rid-1", "sid-1", timeout=5, interval=0.01,
                                       first_delay=0)
    assert result.status == 4
    assert len(stub.received) == 3


def test_wait_until_running_fails_at_once_on_an_exit_status(
    stub: StubAgora, client: AgoraClient
) -> None:
    stub.script(query_reply(2), query_reply(20))
    with pytest.raises(errors.TaskNotRunningError, match="status 20") as info:
        client.wait_until_running(APP, "rid-1", "sid-1", timeout=5, interval=0.01, first_delay=0)
    assert info.value.last_status == 20


def test_wait_until_running_gives_up_after_its_timeout(
    stub: StubAgora, client: AgoraClient
) -> None:
    stub.script(*[query_reply(2)] * 200)
    with pytest.raises(errors.TaskNotRunningError, match=r"within 0\.2 s") as info:
        client.wait_until_running(APP, "rid-1", "sid-1", timeout=0.2, interval=0.02,
                                  first_delay=0)
    assert info.value.last_status == 2


def test_wait_until_running_treats_404_as_not_running(
    stub: StubAgora, client: AgoraClient
) -> None:
    stub.script(err(404, 404, "failed to find worker"))
    with pytest.raises(errors.TaskNotRunningError) as info:
        client.wait_until_running(APP, "rid-1", "sid-1", timeout=5, interval=0.01, first_delay=0)
    assert isinstance(info.value.__cause__, errors.TaskNotFoundError)


def test_query_riding_failover_rides_out_a_404_window(
    stub: StubAgora, client: AgoraClient
) -> None:
    stub.script(err(404, 404, "failed to find worker"), err(404, 404, "failed to find worker"))
    assert client.query_riding_failover(APP, "rid-1", "sid-1", grace=5).status == 5
    assert len(stub.received) == 3


def test_query_riding_failover_declares_the_task_gone_after_the_grace(
    stub: StubAgora, client: AgoraClient
) -> None:
    stub.script(*[err(404, 404, "failed to find worker")] * 500)
    with pytest.raises(errors.TaskNotFoundError) as info:
        client.query_riding_failover(APP, "rid-1", "sid-1", grace=0.1)
    assert info.value.attempts >= 2


def test_plain_query_does_not_retry_404(stub: StubAgora, client: AgoraClient) -> None:
    stub.script(err(404, 404, "failed to find worker"))
    with pytest.raises(errors.TaskNotFoundError):
        client.query(APP, "rid-1", "sid-1")
    assert len(stub.received) == 1


@pytest.mark.parametrize(
    ("reply", "kind"),
    [(Reply(), StopKind.STOPPED),
     (err(404, 404, "failed to find worker"), StopKind.NOT_FOUND),
     (err(400, 49, "invalid operation"), StopKind.ALREADY_EXITING),
     (err(206, 435, "no recorded data"), StopKind.NOTHING_RECORDED)],
)
def test_stop_quietly_counts_already_stopped_answers_as_outcomes(
    stub: StubAgora, client: AgoraClient, reply: Reply, kind: StopKind
) -> None:
    stub.script(reply)
    outcome = client.stop_quietly(APP, "rid-1", "sid-1", STOP)
    assert outcome.kind is kind
    assert outcome.already_stopped is (kind is not StopKind.STOPPED)
    assert len(stub.received) == 1


def test_stop_quietly_still_raises_a_wrong_route(stub: StubAgora, client: AgoraClient) -> None:
    stub.script(err(404, None, "no Route matched with those values"))
    with pytest.raises(errors.InvalidRequestError):
        client.stop_quietly(APP, "rid-1", "sid-1", STOP)


def test_stop_quietly_with_grace_stops_a_task_that_was_failing_over(
    stub: StubAgora, client: AgoraClient
) -> None:
    worker = err(404, 404, "failed to find worker")
    stub.script(worker, worker, query_reply(5))  # stop 404, query 404, query found, stop ok
    outcome = client.stop_quietly(APP, "rid-1", "sid-1", STOP, failover_grace=5)
    assert outcome.kind is StopKind.STOPPED
    assert [p.rsplit("/", 1)[1] for p in stub.paths()] == ["stop", "query", "query", "stop"]


def test_acquire_and_start_retries_start_with_the_same_resource(
    stub: StubAgora, client: AgoraClient
) -> None:
    stub.script(Reply(), err(206, 65, "request not completed"))
    result = client.acquire_and_start(APP, ACQUIRE, START)
    assert result.sid == "sid-1"
    assert [p.rsplit("/", 1)[1] for p in stub.paths()] == ["acquire", "start", "start"]


def test_acquire_and_start_reacquires_when_start_cannot_get_a_worker(
    stub: StubAgora, client: AgoraClient
) -> None:
    stub.script(Reply(), err(500, 502, "Failed to allocate worker"))
    assert client.acquire_and_start(APP, ACQUIRE, START).sid == "sid-1"
    assert [p.rsplit("/", 1)[1] for p in stub.paths()] == ["acquire", "start", "acquire", "start"]


def test_acquire_and_start_reacquires_when_start_keeps_failing(
    stub: StubAgora, client: AgoraClient
) -> None:
    stub.script(Reply(), *[err(503)] * FAST.max_attempts)
    assert client.acquire_and_start(APP, ACQUIRE, START).sid == "sid-1"
    ops = [p.rsplit("/", 1)[1] for p in stub.paths()]
    assert ops == ["acquire", *["start"] * FAST.max_attempts, "acquire", "start"]


def test_acquire_and_start_gives_up_after_its_attempts(
    stub: StubAgora, client: AgoraClient
) -> None:
    fail = err(500, 502, "Failed to allocate worker")
    stub.script(Reply(), fail, Reply(), fail)
    with pytest.raises(errors.WorkerAllocationError):
        client.acquire_and_start(APP, ACQUIRE, START, attempts=2)
    assert len(stub.received) == 4


def test_acquire_and_start_does_not_retry_a_task_conflict(
    stub: StubAgora, client: AgoraClient
) -> None:
    stub.script(Reply(), err(400, 53, "task conflict"))
    with pytest.raises(errors.TaskConflictError):
        client.acquire_and_start(APP, ACQUIRE, START)
    assert len(stub.received) == 2


def test_already_started_after_a_lost_answer_is_the_running_task(
    stub: StubAgora, client: AgoraClient
) -> None:
    already = Reply(201, {"code": 7, "reason": "already started", "sid": "sid-7",
                          "resourceId": "rid-1", "cname": "c1", "uid": "527841"})
    stub.script(Reply(), err(206, 65, "request not completed"), already)
    result = client.acquire_and_start(APP, ACQUIRE, START)
    assert (result.sid, result.already_started) == ("sid-7", True)


def test_already_started_without_a_sid_is_raised(stub: StubAgora, client: AgoraClient) -> None:
    stub.script(Reply(201, {"code": 7, "reason": "already started"}))
    with pytest.raises(errors.AlreadyStartedError):
        client.start(APP, "rid-1", START)


def test_a_201_without_code_7_is_success(stub: StubAgora, client: AgoraClient) -> None:
    stub.script(Reply(201, None))
    assert client.start(APP, "rid-1", START).sid == "sid-1"  # G1 common.go counts 201 as success


# -- threads --------------------------------------------------------------------------------------


def test_four_threads_share_one_client(stub: StubAgora, client: AgoraClient) -> None:
    failures: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        try:
            for _ in range(10):
                client.acquire(APP, ACQUIRE)
                client.query(APP, "rid-1", "sid-1")
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert len(stub.received) == 80
    assert len(client._sessions) == 4  # one requests.Session per thread


def test_calls_return_to_the_first_endpoint_after_30_seconds(stub: StubAgora) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    policy = RetryPolicy(scale=0.001, clock=lambda: now[0], sleep=sleep)
    dead = refused_url()
    with AgoraClient("i", "secret", endpoint=[dead, stub.url], retry=policy) as client:
        client.query(APP, "rid-1", "sid-1")  # dead twice, then the stub: now preferred
        assert client._start_index() == 1
        now[0] += 29
        assert client._start_index() == 1
        now[0] += 2
        assert client._start_index() == 0  # G1 re-picks the best domain every 30 s


def test_a_call_that_cannot_get_a_token_before_its_deadline_times_out(stub: StubAgora) -> None:
    policy = RetryPolicy(scale=0.001, deadline=0.3)
    with AgoraClient("i", "secret", endpoint=stub.url, retry=policy, qps=1) as client:
        client.query("app-deadline", "rid-1", "sid-1")
        with pytest.raises(errors.AgoraTimeoutError, match="rate limiter"):
            client.query("app-deadline", "rid-1", "sid-1")
    assert len(stub.received) == 1  # the second request was never sent


@pytest.mark.parametrize("code", ["9" * 5000, "１２", "--5", " 53 x"])
def test_a_code_that_is_not_a_small_ascii_integer_is_no_code(
    stub: StubAgora, client: AgoraClient, code: str
) -> None:
    stub.script(Reply(400, {"code": code, "reason": "odd"}))
    with pytest.raises(errors.AgoraApiError) as info:
        client.acquire(APP, {"cname": "c1", "uid": "527841", "clientRequest": {}})
    assert info.value.code is None
    assert info.value.status == 400
