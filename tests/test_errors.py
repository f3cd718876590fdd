"""The Agora error tree and the retry table (snapshot_resources.agora.errors / retry)."""

from __future__ import annotations

import re

import pytest

from snapshot_resources.agora import errors, retry
from snapshot_resources.agora.retry import RetryPolicy


def test_every_error_is_an_agora_error() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.AgoraError), name


def test_module_docstring_draws_every_class_in_the_tree() -> None:
    doc = errors.__doc__ or ""
    missing = [name for name in errors.__all__ if not re.search(rf"\b{name}\b", doc)]
    assert missing == []


def test_api_error_keeps_the_context_a_handler_needs() -> None:
    exc = errors.TaskConflictError(
        "Agora start failed",
        status=400,
        code=53,
        reason="task conflict",
        operation="start",
        request_id="req-9",
    )
    assert (exc.status, exc.code, exc.reason, exc.operation, exc.request_id) == (
        400,
        53,
        "task conflict",
        "start",
        "req-9",
    )
    assert str(exc) == "Agora start failed"


@pytest.mark.parametrize(
    ("status", "code", "operation", "error", "retryable"),
    [
        (201, 7, "start", errors.AlreadyStartedError, False),
        (206, 65, "start", errors.RequestNotCompletedError, True),
        (206, 65, "query", errors.RequestNotCompletedError, True),
        (206, 435, "stop", errors.NothingRecordedError, False),
        (400, 2, "start", errors.InvalidRequestError, False),
        (400, 8, "acquire", errors.InvalidRequestError, False),
        (400, 49, "stop", errors.AlreadyExitingError, False),
        (400, 53, "start", errors.TaskConflictError, False),
        (400, 406, "acquire", errors.QuotaExceededError, False),
        (400, 433, "start", errors.ResourceExpiredError, False),
        (400, 1001, "start", errors.ResourceIdInvalidError, False),
        (401, None, "acquire", errors.AuthError, False),
        (404, 404, "query", errors.TaskNotFoundError, False),
        (404, 404, "stop", errors.TaskNotFoundError, False),
        (404, None, "query", errors.InvalidRequestError, False),  # "no Route matched" (S7)
        (429, None, "acquire", errors.RateLimitedError, True),
        (500, 502, "start", errors.WorkerAllocationError, False),
        (500, 500, "acquire", errors.ServerError, True),
        (503, None, "start", errors.ServerError, True),
        (504, 62, "query", errors.ServerError, True),
        (403, None, "query", errors.AgoraApiError, False),
    ],
)
def test_table_maps_status_and_code_to_class_and_retryability(
    status: int, code: int | None, operation: str, error: type[errors.AgoraApiError],
    retryable: bool,
) -> None:
    row = retry.classify(status, code, operation)
    assert row.error is error
    exc = row.exception("m", status=status, code=code, reason="r", operation=operation)
    assert exc.is_retryable is retryable


def test_every_row_is_reachable_and_cites_a_source() -> None:
    # A row shadowed by an earlier, more general one would silently never apply.
    for row in retry.TABLE:
        operation = sorted(row.operations)[0]
        assert retry.classify(row.status[0], row.code, operation) is row
        assert re.search(r"\b(S\d+|G1|W3)\b", row.source), row


def test_reacquire_rows_are_the_start_failures_s7_and_s10_name() -> None:
    reacquire = {(r.status, r.code) for r in retry.TABLE if r.reacquire}
    assert reacquire == {((206, 206), 65), ((400, 400), 433), ((400, 400), 1001),
                         ((500, 500), 502), ((500, 599), None)}


def test_transport_faults_are_retryable() -> None:
    exc = errors.AgoraTransportError("x", operation="query", endpoint="https://api.agora.io")
    assert exc.is_retryable
    assert retry.TRANSPORT.retryable


def test_unknown_statuses_are_not_retried() -> None:
    assert retry.classify(302, None, "query") is retry.DEFAULT
    assert not retry.DEFAULT.retryable


def test_policy_follows_the_row_schedule_and_repeats_its_last_step() -> None:
    policy = RetryPolicy()
    row = retry.classify(206, 65, "start")
    assert [policy.delay(row, i) for i in range(4)] == [3.0, 6.0, 6.0, 6.0]


def test_policy_scale_shrinks_every_delay() -> None:
    policy = RetryPolicy(scale=0.01)
    row = retry.classify(503, None, "query")
    assert [policy.delay(row, i) for i in range(3)] == pytest.approx([0.01, 0.03, 0.06])


def test_policy_honours_a_longer_retry_after_up_to_max_delay() -> None:
    policy = RetryPolicy(scale=0.01, max_delay=2.0)
    row = retry.classify(429, None, "query")
    assert policy.delay(row, 0, retry_after=1.5) == 1.5
    assert policy.delay(row, 0, retry_after=60.0) == 2.0


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"deadline": 0}, {"scale": -1}])
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="RetryPolicy"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
