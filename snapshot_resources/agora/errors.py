"""Errors raised by the Agora client.

The hierarchy (httpx's ``_exceptions.py`` is the model: one module, the tree first)::

    AgoraError
    ├── EndpointError                   an endpoint the client refuses to talk to (ValueError too)
    ├── AgoraTransportError             no HTTP answer: DNS, refused connection, reset
    │   └── AgoraTimeoutError           no answer in time, or the call's deadline ran out first
    ├── AgoraApiError                   Agora answered with an error: status, code, reason,
    │   │                               operation, request id; ``is_retryable`` and
    │   │                               ``reacquire`` as retry.TABLE decided
    │   ├── AlreadyStartedError         201 code 7: start repeated on a resource id (S7)
    │   ├── RequestNotCompletedError    206 code 65: reached Agora, the answer timed out (S7)
    │   ├── NothingRecordedError        206 code 435: stop, nobody published (S7)
    │   ├── InvalidRequestError         400 codes 2, 8, 432, 1003, 1013, ...: fix the request (S7, S18)
    │   ├── AlreadyExitingError         400 code 49: stop while the task is exiting (S7)
    │   ├── TaskConflictError           400 code 53: same cname+uid already recording (S7)
    │   ├── QuotaExceededError          400 code 406: concurrent-task quota reached (S7, W3)
    │   ├── ResourceExpiredError        400 code 433: the resource id expired (S18)
    │   ├── ResourceIdInvalidError      400 code 1001: Agora cannot parse the resource id (S18)
    │   ├── AuthError                   401: missing or wrong customer id/secret (S7)
    │   ├── TaskNotFoundError           404 code 404 "failed to find worker" (S7)
    │   ├── RateLimitedError            429: over the per-App-ID QPS (S7)
    │   ├── WorkerAllocationError       500 code 502 on start: acquire again (S7)
    │   └── ServerError                 any other 5xx
    └── TaskNotRunningError             a started task did not reach status 4/5 in time (S10)

Every message is built by the client from safe parts (operation, status, code, Agora's reason with
known secrets masked, the endpoint host); no exception here carries a credential, a token, a
storage key or an ``Authorization`` header.

This module imports nothing of the package (a leaf, as httpx's ``_exceptions.py``): which answer
becomes which class, and whether it is retried, is decided in ``retry.TABLE``, which imports this.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AgoraApiError",
    "AgoraError",
    "AgoraTimeoutError",
    "AgoraTransportError",
    "AlreadyExitingError",
    "AlreadyStartedError",
    "AuthError",
    "EndpointError",
    "InvalidRequestError",
    "NothingRecordedError",
    "QuotaExceededError",
    "RateLimitedError",
    "RequestNotCompletedError",
    "ResourceExpiredError",
    "ResourceIdInvalidError",
    "ServerError",
    "TaskConflictError",
    "TaskNotFoundError",
    "TaskNotRunningError",
    "WorkerAllocationError",
]


class AgoraError(Exception):
    """Base class of everything the Agora client raises.

    Direct subclasses: ``EndpointError`` (a refused base URL), ``AgoraTransportError`` (no HTTP
    answer), ``AgoraApiError`` (an error answer: ``status``, ``code``, ``reason``, S7) and
    ``TaskNotRunningError`` (a started task did not reach status 4/5, S10).  Constructed with the
    message only, like any ``Exception``; messages never carry a credential.
    """


class EndpointError(AgoraError, ValueError):
    """A base URL the client refuses: not https (except to loopback), credentials in it, etc."""


class AgoraTransportError(AgoraError):
    """No HTTP response: name resolution, connection refused or reset, or a timeout.

    ``attempts`` counts the HTTP attempts made, ``endpoint`` is the last base URL tried (scheme
    and host, never a credential), ``kind`` is ``"dns"`` or ``"network"`` (S11 fails over
    differently for each).
    """

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        endpoint: str,
        attempts: int = 1,
        kind: str = "network",
    ) -> None:
        super().__init__(message)
        self.operation = operation
        self.endpoint = endpoint
        self.attempts = attempts
        self.kind = kind

    @property
    def is_retryable(self) -> bool:
        # A lost connection is a network fault: S10/S11 retry it, failing over between domains.
        return True


class AgoraTimeoutError(AgoraTransportError):
    """A request timed out, or the call's deadline passed before another try could be sent."""


class AgoraApiError(AgoraError):
    """Agora answered a call with an error.

    ``status`` is the HTTP status, ``code`` Agora's numeric code when the body had one (service
    errors; gateway errors only carry a ``message``, S7 / docs/agora-api.md 4.1), ``reason`` the body's
    ``reason`` or ``message`` text, ``operation`` one of acquire/start/query/update/stop and
    ``request_id`` the ``X-Request-Id`` response header when present.

    Constructed by the client: ``message`` (str): the text shown, with known secrets masked;
    ``status`` (int), ``code`` (int | None), ``reason`` (str), ``operation`` (str) and
    ``request_id`` (str | None) as above; ``body`` (dict | None): the decoded answer, kept as a
    copy (``{}`` for None); ``attempts`` (int, default 1): how many HTTP tries the call made;
    ``retryable`` (bool, default False, the attribute ``is_retryable``): whether the same request
    may be sent again; ``reacquire`` (bool, default False): whether ``start`` should give up the
    resource id and acquire a new one.  The last two are the ``retry.TABLE`` row's decision
    (``retry.Row.exception`` builds an error with them).  All are attributes.  The subclasses
    below name the documented cases (S7).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: int | None,
        reason: str,
        operation: str,
        request_id: str | None = None,
        body: dict[str, Any] | None = None,
        attempts: int = 1,
        retryable: bool = False,
        reacquire: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.reason = reason
        self.operation = operation
        self.request_id = request_id
        self.body: dict[str, Any] = dict(body or {})
        self.attempts = attempts
        self.is_retryable = retryable
        self.reacquire = reacquire


class AlreadyStartedError(AgoraApiError):
    """201 code 7: ``start`` was repeated on a resource id whose task is already running (S7)."""


class RequestNotCompletedError(AgoraApiError):
    """206 code 65: the request reached Agora but its answer timed out; retry it (S7, S10)."""


class NothingRecordedError(AgoraApiError):
    """206 code 435 on stop: the task ended with no files because nobody published (S7)."""


class InvalidRequestError(AgoraApiError):
    """400 with a parameter, header or channel-name code: the request itself is wrong (S7, S18)."""


class AlreadyExitingError(AgoraApiError):
    """400 code 49 on stop: the task is already exiting (S7)."""


class TaskConflictError(AgoraApiError):
    """400 code 53 on start: a task with the same cname and uid already exists (S7)."""


class QuotaExceededError(AgoraApiError):
    """400 code 406 ``vendor_over_load``: the App ID's concurrent-task quota is used up (S7, W3)."""


class ResourceExpiredError(AgoraApiError):
    """400 code 433: the resource id expired (``resourceExpiredHour`` after start); acquire (S18).
    The task itself may still run (S19)."""


class ResourceIdInvalidError(AgoraApiError):
    """400 code 1001: Agora cannot parse the resource id, so it is not one Agora issued (another
    Agora account or endpoint, an emulator restarted): nothing is known of its task (S18)."""


class AuthError(AgoraApiError):
    """401: the customer id/secret are missing, wrong, or not for this App ID (S7, S22)."""


class TaskNotFoundError(AgoraApiError):
    """404 code 404 ``failed to find worker``: no such task, or a failover in progress (S7)."""


class RateLimitedError(AgoraApiError):
    """429 ``API rate limit exceeded``: over the App ID's requests per second (S7, S10)."""


class WorkerAllocationError(AgoraApiError):
    """500 code 502 ``Failed to allocate worker`` on start: acquire a new resource id (S7)."""


class ServerError(AgoraApiError):
    """Any other 5xx: Agora failed; the table decides whether it is retried."""


class TaskNotRunningError(AgoraError):
    """A started task did not report status 4 or 5 in time, or reported that it exited (S10).

    ``last_status`` is the last ``serverResponse.status`` seen (None when no query succeeded) and
    ``sid`` the task's id.
    """

    def __init__(self, message: str, *, sid: str, last_status: int | None) -> None:
        super().__init__(message)
        self.sid = sid
        self.last_status = last_status
