"""The Agora Cloud Recording REST client: acquire, start, query, update, stop, and the helpers a
declarative provider needs (confirm a start, stop idempotently, ride out a failover).

What it guarantees, and where each rule comes from (docs/agora-api.md):

* HTTP Basic auth from the customer id/secret (S22, 1.2) and ``Content-Type:
  application/json;charset=utf-8`` on every call, GET included (S18 code 8, G1 client.go).
* A timeout on every request and a deadline on every call (``RetryPolicy.deadline``): Pulumi's
  custom timeouts do not reach dynamic providers (design.md).
* Retries, and only those that ``retry.TABLE`` allows (docs/agora-api.md 6.1, 6.3).
* Domain failover on transport faults in the order of ``endpoints`` (S11, G1).
* At most ``qps`` requests per second per App ID across every thread of the process
  (``ratelimit``; S8, S10), so the client never earns a 429 by itself; with a shared store,
  across every process that uses it (``shared_budget``).
* No secret in a URL, a log line or an exception: customer id/secret travel only in the
  ``Authorization`` header, request bodies are never logged, and every message built from a
  response or an exception is passed through a redactor (``redaction``) that masks the
  credentials and every key, token, secret or salt found in the request body.
* Thread safety: one ``requests.Session`` per thread (``Session`` is not documented as
  thread-safe), shared rate limiter and endpoint preference behind locks.
"""

from __future__ import annotations

import base64
import enum
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NoReturn, Protocol

import requests
import urllib3.exceptions

from .. import rules
from . import errors, retry
from .endpoints import EndpointList, FaultKind
from .ratelimit import RequestBudget, limiter_for
from .redaction import Redactor, body_secrets, redact_tree
from .retry import RetryPolicy

if TYPE_CHECKING:
    from ..shared_store import SharedStore

__all__ = [
    "FIRST_QUERY_DELAY_SECONDS",
    "AcquireResult",
    "AgoraClient",
    "QueryResult",
    "StartObserver",
    "StartResult",
    "StopKind",
    "StopOutcome",
    "StopResult",
    "may_have_started",
]

logger = logging.getLogger("snapshot_resources.agora")

MODES: Final = ("individual", "mix", "web")  # docs/agora-api.md 1.3 (S1)
CONTENT_TYPE: Final = "application/json;charset=utf-8"  # S8, S18 code 8, G1
USER_AGENT: Final = "snapshot-resources"
REQUEST_ID_HEADERS: Final = ("X-Request-Id", "X-Kong-Request-Id")  # J1 messages carry x-request-id

# Confirming a start (S10: "about 5 s after getting the sid, call query with backoff; not 4/5
# after about rules.START_CONFIRM_SECONDS: not started"). The provider passes the delay it expects
# from what it has seen.
FIRST_QUERY_DELAY_SECONDS: Final = 5.0
CONFIRM_QUERY_INTERVAL_SECONDS: Final = 5.0  # the longest wait between queries; S10's 404 backoff starts at 5 s too
MIN_CONFIRM_INTERVAL_SECONDS: Final = 0.25  # the first wait after a query that found it not ready
CONFIRM_BACKOFF: Final = 1.5
# A synchronous stop waits for the uploads, up to about 20 s (S6): give its read that much more.
STOP_READ_TIMEOUT_SECONDS: Final = rules.STOP_UPLOAD_TIMEOUT_SECONDS + 10.0
# Calls begin on the endpoint that last worked; after this long they begin on the first one again
# (G1 re-picks the best domain every 30 s).
PRIMARY_RECHECK_SECONDS: Final = 30.0
_LEASE_MARGIN_SECONDS: Final = 2.0  # a held budget token outlives its request by this much


# --------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class AcquireResult:
    resource_id: str
    cname: str
    uid: str


@dataclass(frozen=True)
class StartResult:
    """``already_started`` is True when Agora answered 201 code 7 with the task's sid (S7)."""

    sid: str
    resource_id: str
    cname: str
    uid: str
    already_started: bool = False


@dataclass(frozen=True)
class QueryResult:
    """``status`` is ``serverResponse.status`` (S4); ``slice_start_time`` Unix ms (S4, S17)."""

    status: int | None
    slice_start_time: int | None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.status in rules.RUNNING_STATUSES


@dataclass(frozen=True)
class StopResult:
    """``uploading_status`` is uploaded / backuped / unknown for snapshot tasks (S6)."""

    uploading_status: str | None
    raw: dict[str, Any] = field(default_factory=dict)


class StopKind(enum.Enum):
    STOPPED = "stopped"  # this call stopped the task
    NOT_FOUND = "not_found"  # 404: already gone (S7)
    ALREADY_EXITING = "already_exiting"  # 400 code 49 (S7)
    NOTHING_RECORDED = "nothing_recorded"  # 206 code 435: stopped, no files (S7)


@dataclass(frozen=True)
class StopOutcome:
    kind: StopKind
    result: StopResult | None = None
    error: errors.AgoraApiError | None = None

    @property
    def already_stopped(self) -> bool:
        return self.kind is not StopKind.STOPPED


# --------------------------------------------------------------------------------------------------
# Answers


def _fault_kind(exc: BaseException) -> FaultKind:
    """``dns`` when name resolution failed (S11 treats it apart), else ``network``."""
    seen: set[int] = set()
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if id(item) in seen or not isinstance(item, BaseException):
            continue
        seen.add(id(item))
        if isinstance(item, urllib3.exceptions.NameResolutionError | socket.gaierror):
            return "dns"
        stack.extend([*item.args, item.__cause__, item.__context__, getattr(item, "reason", None)])
    return "network"


_MAX_CODE_DIGITS: Final = 18  # fits an int64, far beyond any code Agora documents (S7)


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    digits = value.strip().removeprefix("-") if isinstance(value, str) else ""
    # Agora's codes are small; a string of thousands of digits is not one (and int() would raise).
    if isinstance(value, str) and rules.is_ascii_digits(digits) and len(digits) <= _MAX_CODE_DIGITS:
        return int(value)
    return None


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: ignore, the table's schedule applies


def _succeeded(status: int, code: int | None, operation: str) -> bool:
    # 200 and 201 are success (G1 common.go), except start's 201 code 7 (the table's first row).
    if status == 200:
        return True
    return status == 201 and not (operation == "start" and code == 7)


@dataclass(frozen=True)
class _Answer:
    """What the client keeps of an HTTP response, classified once: ``row`` is the
    ``retry.TABLE`` row of an error answer, None for a success."""

    status: int
    code: int | None
    payload: dict[str, Any]
    request_id: str | None
    retry_after: float | None
    row: retry.Row | None

    @classmethod
    def classified(cls, operation: str, status: int, payload: dict[str, Any],
                   request_id: str | None, retry_after: float | None) -> _Answer:
        code = _int_or_none(payload.get("code"))
        row = None if _succeeded(status, code, operation) else retry.classify(status, code,
                                                                                operation)
        return cls(status, code, payload, request_id, retry_after, row)


# --------------------------------------------------------------------------------------------------
# The client


class StartObserver(Protocol):
    """Hears of each start ``acquire_and_start`` sends (the provider's task journal)."""

    def before_start(self, resource_id: str) -> None:
        """The start on ``resource_id`` is about to be sent."""

    def start_failed(self, resource_id: str, error: BaseException) -> None:
        """The start on ``resource_id`` raised ``error`` (it may still have started a task when
        its answer was lost: ``may_have_started``)."""


def may_have_started(error: BaseException) -> bool:
    """Whether a start that raised ``error`` may still have started a task: its answer was lost
    (no answer, a timeout, 65 "not completed", a 5xx other than 502) or it was interrupted."""
    if isinstance(error, errors.WorkerAllocationError):
        return False
    if isinstance(error, errors.AgoraTransportError | errors.RequestNotCompletedError
                  | errors.ServerError | errors.AlreadyStartedError):
        return True
    return not isinstance(error, errors.AgoraError)


class AgoraClient:
    """A thread-safe client of Agora's Cloud Recording REST API (or of the emulator).

    ``endpoint``: ``None`` for Agora's domains in failover order for ``region_hint`` (an acquire
    region: CN/AP/EU/NA); a base URL (the emulator, e.g. ``http://127.0.0.1:8080``) or a sequence of
    them to use instead.  ``timeout`` bounds each request (a synchronous stop gets at least
    ``STOP_READ_TIMEOUT_SECONDS``); ``retry.deadline`` bounds each call.  ``qps`` is the per-App-ID
    budget shared by every client of the process talking to the same service.
    ``session_factory`` makes the per-thread ``requests.Session``.

    Arguments: ``customer_id`` and ``customer_secret`` (str): the RESTful API credentials, sent
    only as HTTP Basic auth and masked in every message.  ``endpoint`` (str | sequence of str |
    None, default None): https URLs, or http to a loopback host only.  ``region_hint`` (str |
    None): CN, AP, EU or NA (rule acquire_region), orders Agora's domains (S11).  ``timeout``
    (float, seconds, default 10, positive).  ``qps`` (float, default 10 per App ID, S10).
    ``retry`` (``RetryPolicy`` | None): attempts, deadline and delay scale; None for the
    documented defaults (S10).  ``session_factory`` (callable returning a
    ``requests.Session``, or None for a plain one).  ``shared_store``
    (``shared_store.SharedStore`` | None): draw from the one budget per App ID of every process
    on that store (``agora.shared_budget``) instead of this process's.

    Operations: ``acquire`` (S2), ``start`` (S3), ``query`` (S4), ``update`` (S5), ``stop`` (S6),
    and for the provider ``acquire_and_start``, ``wait_until_running``, ``stop_quietly`` and
    ``query_riding_failover``.  Each retries only what ``retry.TABLE`` allows and raises an
    ``AgoraError`` subclass (``agora.errors``: ``AgoraApiError`` with status, code and reason,
    ``AgoraTransportError``, ``TaskNotRunningError``).  A client cannot be pickled (it holds
    credentials); use it as a context manager or call ``close()``.

    Raises ``ValueError`` when a credential is empty or ``timeout`` is not positive, and
    ``EndpointError`` for a refused ``endpoint``.
    """

    def __init__(
        self,
        customer_id: str,
        customer_secret: str,
        *,
        endpoint: str | Sequence[str] | None = None,
        region_hint: str | None = None,
        timeout: float = 10.0,
        qps: float = rules.QPS_PER_APP_ID,
        retry: RetryPolicy | None = None,
        session_factory: Callable[[], requests.Session] | None = None,
        shared_store: SharedStore | None = None,
    ) -> None:
        if not customer_id or not customer_secret:
            raise ValueError("customer id and customer secret are both required (S22)")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self._endpoints = EndpointList.build(endpoint, region_hint)
        self._timeout = timeout
        self._qps = qps
        self._retry = retry or RetryPolicy()
        token = base64.b64encode(f"{customer_id}:{customer_secret}".encode()).decode("ascii")
        self._authorization = f"Basic {token}"  # S22, G1 auth/basic.go
        self._redact = Redactor(
            (customer_id, customer_secret, token, f"{customer_id}:{customer_secret}")
        )
        # Agora's domains share one budget per App ID; each override (emulator) is its own service.
        self._scope: tuple[str, ...] | str = (
            "agora" if self._endpoints.agora_defaults else self._endpoints.urls
        )
        self._session_factory = session_factory or self._default_session
        self._store = shared_store
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._preferred = 0
        self._preferred_since = self._retry.clock()

    # -- lifecycle ---------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"AgoraClient(endpoints={list(self._endpoints.urls)!r})"

    def __getstate__(self) -> NoReturn:
        # The provider is pickled into Pulumi state (design.md); a client holds credentials.
        raise TypeError("AgoraClient holds credentials and cannot be pickled; create it in the "
                        "provider's methods")

    def __enter__(self) -> AgoraClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every thread's session."""
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            _close_session(session)
        self._local = threading.local()

    @property
    def endpoints(self) -> tuple[str, ...]:
        return self._endpoints.urls

    def limiter(self, app_id: str) -> RequestBudget:
        """The process-wide budget this client draws from for ``app_id`` (shared with every
        process on ``shared_store`` when one is given)."""
        return limiter_for(app_id, self._scope, self._qps, self._store)

    # -- the five operations (docs/agora-api.md 1.3) -------------------------------------------------------

    def acquire(self, app_id: str, body: Mapping[str, Any]) -> AcquireResult:
        """POST .../acquire (S2): a resource id, valid for five minutes (S1, S2)."""
        path = f"/v1/apps/{_seg(app_id)}/cloud_recording/acquire"
        data = self._call("acquire", "POST", app_id, path, body)
        return AcquireResult(
            resource_id=self._require(data, "resourceId", "acquire"),
            cname=str(data.get("cname", body.get("cname", ""))),
            uid=str(data.get("uid", body.get("uid", ""))),
        )

    def start(
        self, app_id: str, resource_id: str, body: Mapping[str, Any], mode: str = "individual"
    ) -> StartResult:
        """POST .../start (S3).

        A 201 code 7 that carries the task's sid means an earlier try of this same start (whose
        answer was lost: 65, 5xx, a timeout) did start the task: it is returned as running with
        ``already_started`` set (S7: "treat as already running"; G1 counts 201 as success).
        """
        path = f"{_rid_path(app_id, resource_id)}/mode/{_mode(mode)}/start"
        try:
            data = self._call("start", "POST", app_id, path, body)
        except errors.AlreadyStartedError as exc:
            sid = exc.body.get("sid")
            if not isinstance(sid, str) or not sid:
                exc.add_note(
                    f"a task is running on resource id {resource_id} but Agora did not return its "
                    "sid; it ends by itself after maxIdleTime"
                )
                raise
            return self._start_result(exc.body, resource_id, body, already_started=True)
        return self._start_result(data, resource_id, body)

    def query(
        self, app_id: str, resource_id: str, sid: str, mode: str = "individual"
    ) -> QueryResult:
        """GET .../query (S4). 404 raises ``TaskNotFoundError`` at once (see query_riding_failover)."""
        path = f"{_sid_path(app_id, resource_id, sid, mode)}/query"
        data = self._call("query", "GET", app_id, path, None)
        server = data.get("serverResponse")
        server = server if isinstance(server, Mapping) else {}
        return QueryResult(
            status=_int_or_none(server.get("status")),
            slice_start_time=_int_or_none(server.get("sliceStartTime")),
            raw=data,
        )

    def update(
        self,
        app_id: str,
        resource_id: str,
        sid: str,
        body: Mapping[str, Any],
        mode: str = "individual",
    ) -> None:
        """POST .../update (S5). Callers serialize updates of one task (S5, S17)."""
        path = f"{_sid_path(app_id, resource_id, sid, mode)}/update"
        self._call("update", "POST", app_id, path, body)

    def stop(
        self,
        app_id: str,
        resource_id: str,
        sid: str,
        body: Mapping[str, Any],
        mode: str = "individual",
    ) -> StopResult:
        """POST .../stop (S6). See ``stop_quietly`` for the idempotent form."""
        path = f"{_sid_path(app_id, resource_id, sid, mode)}/stop"
        data = self._call("stop", "POST", app_id, path, body)
        server = data.get("serverResponse")
        status = server.get("uploadingStatus") if isinstance(server, Mapping) else None
        return StopResult(uploading_status=status if isinstance(status, str) else None, raw=data)

    # -- helpers for the provider ------------------------------------------------------------------

    def acquire_and_start(
        self,
        app_id: str,
        acquire_body: Mapping[str, Any],
        start_body: Mapping[str, Any],
        *,
        attempts: int = 3,
        mode: str = "individual",
        observer: StartObserver | None = None,
    ) -> StartResult:
        """Acquire and start back to back (S2: "in pairs"), re-acquiring when start keeps failing.

        ``start`` itself retries 65 and 5xx with the same parameters (S7, S10).  When those
        retries run out, or the table says the resource id is spent (502, 433, 1001), a new
        resource id is acquired and start runs again, up to ``attempts`` rounds (S10: "after 3
        failures start over").  Anything else (53 task conflict, other 4xx) is raised at once.
        ``observer`` hears of each start before it is sent and of each that failed (the task
        journal: a start whose answer is lost may still have started a task).
        """
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        spent: list[str] = []
        last: errors.AgoraError | None = None
        for _ in range(attempts):
            acquired = self.acquire(app_id, acquire_body)
            if observer is not None:
                observer.before_start(acquired.resource_id)
            try:
                return self.start(app_id, acquired.resource_id, start_body, mode=mode)
            except BaseException as exc:
                if observer is not None:
                    observer.start_failed(acquired.resource_id, exc)
                if isinstance(exc, errors.TaskConflictError):
                    if spent:
                        exc.add_note(
                            "an earlier start on resource id(s) "
                            f"{', '.join(spent)} had no clear outcome; if it did start, that "
                            "task ends by itself after maxIdleTime"
                        )
                    raise
                if isinstance(exc, errors.AgoraApiError):
                    if not exc.reacquire:
                        raise
                elif not isinstance(exc, errors.AgoraTransportError):
                    raise
                last = exc
            spent.append(acquired.resource_id)
            logger.warning(
                "agora start failed on resource id %s; acquiring a new one", acquired.resource_id
            )
        assert last is not None
        raise last

    def wait_until_running(
        self,
        app_id: str,
        resource_id: str,
        sid: str,
        *,
        timeout: float = rules.START_CONFIRM_SECONDS,
        interval: float = CONFIRM_QUERY_INTERVAL_SECONDS,
        first_delay: float = FIRST_QUERY_DELAY_SECONDS,
        min_interval: float = MIN_CONFIRM_INTERVAL_SECONDS,
        backoff: float = CONFIRM_BACKOFF,
        mode: str = "individual",
    ) -> QueryResult:
        """Query until ``status`` is 4 or 5 ("started successfully", S10) and return that answer.

        The first query comes ``first_delay`` seconds after start (when the task is expected to be
        ready); later ones back off from ``min_interval`` by ``backoff`` up to ``interval``
        seconds apart (S10: "call query with backoff"), all within ``timeout`` and through the
        App ID's one request budget, so confirming never hammers Agora.

        Raises ``TaskNotRunningError`` when ``timeout`` passes first, when the task reports an
        exit status (6, 7, 8, 20), or when it is not found (S10: "if query returns 404 ... start a
        new task"); the underlying error, if any, is its ``__cause__``.
        """
        clock, sleep = self._retry.clock, self._retry.sleep
        deadline = clock() + timeout
        sleep(min(first_delay, timeout))
        last_status: int | None = None
        delay = min(min_interval, interval)
        while True:
            try:
                result = self.query(app_id, resource_id, sid, mode=mode)
            except errors.TaskNotFoundError as exc:
                raise errors.TaskNotRunningError(
                    f"task {sid} was not found while waiting for it to run (S10)",
                    sid=sid,
                    last_status=last_status,
                ) from exc
            last_status = result.status
            if result.running:
                return result
            if last_status in rules.EXITED_STATUSES:
                raise errors.TaskNotRunningError(
                    f"task {sid} exited with status {last_status} "
                    f"({rules.QUERY_STATUSES.get(last_status, 'unknown')}) instead of running",
                    sid=sid,
                    last_status=last_status,
                )
            remaining = deadline - clock()
            if remaining <= 0:
                raise errors.TaskNotRunningError(
                    f"task {sid} did not reach status 4 or 5 within {timeout:g} s "
                    f"(last status {last_status}) (S10)",
                    sid=sid,
                    last_status=last_status,
                )
            sleep(min(delay, remaining))
            delay = min(delay * backoff, interval)

    def query_riding_failover(
        self,
        app_id: str,
        resource_id: str,
        sid: str,
        *,
        grace: float = rules.FAILOVER_SECONDS,
        mode: str = "individual",
        on_missing: Callable[[float], None] | None = None,
    ) -> QueryResult:
        """Query, re-querying a 404 with backoff (5 s, 10 s, 15 s, S10) for ``grace`` seconds.

        A failover moves a task within 90 s and query answers 404 meanwhile (S7 FAQ, S8, S18), so
        only a 404 that outlasts ``grace`` raises ``TaskNotFoundError``: the task is gone.
        ``on_missing`` is called once, with the seconds it will wait, when the first 404 comes
        (so a user hears what is being waited for).
        """
        clock, sleep = self._retry.clock, self._retry.sleep
        started = clock()
        row = retry.classify(404, 404, "query")
        tries = 0
        while True:
            try:
                return self.query(app_id, resource_id, sid, mode=mode)
            except errors.TaskNotFoundError as exc:
                tries += 1
                remaining = started + grace - clock()
                if remaining <= 0:
                    exc.attempts = tries
                    raise
                if tries == 1 and on_missing is not None:
                    on_missing(remaining)
                delay = min(self._retry.delay(row, tries - 1), remaining)
                logger.info(
                    "agora query: task %s not found, re-querying in %.2f s (failover grace)",
                    sid,
                    delay,
                )
                sleep(delay)

    def stop_quietly(
        self,
        app_id: str,
        resource_id: str,
        sid: str,
        body: Mapping[str, Any],
        mode: str = "individual",
        *,
        failover_grace: float = 0.0,
        on_missing: Callable[[float], None] | None = None,
    ) -> StopOutcome:
        """Stop; "already stopped" answers are outcomes, not errors: 404, 49, 435 (S7).

        With ``failover_grace`` > 0 a 404 is first checked with ``query_riding_failover`` (and
        its ``on_missing``): a task in the middle of a failover also answers 404 (S7 FAQ), and
        stopping it must not be skipped.
        """
        try:
            return StopOutcome(StopKind.STOPPED, self.stop(app_id, resource_id, sid, body, mode))
        except errors.TaskNotFoundError as exc:
            if failover_grace > 0:
                try:
                    self.query_riding_failover(
                        app_id, resource_id, sid, grace=failover_grace, mode=mode,
                        on_missing=on_missing,
                    )
                except errors.TaskNotFoundError as gone:
                    return StopOutcome(StopKind.NOT_FOUND, error=gone)
                return self.stop_quietly(app_id, resource_id, sid, body, mode)
            return StopOutcome(StopKind.NOT_FOUND, error=exc)
        except errors.AlreadyExitingError as exc:
            return StopOutcome(StopKind.ALREADY_EXITING, error=exc)
        except errors.NothingRecordedError as exc:
            return StopOutcome(
                StopKind.NOTHING_RECORDED,
                StopResult(uploading_status=None, raw=exc.body),
                error=exc,
            )

    # -- the request loop --------------------------------------------------------------------------

    def _call(
        self,
        operation: str,
        method: str,
        app_id: str,
        path: str,
        body: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        policy = self._retry
        deadline = policy.clock() + policy.deadline
        redact = self._redact.extended(body_secrets(body)) if body else self._redact
        data = (
            json.dumps(dict(body), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            if body is not None
            else None
        )
        bucket = self.limiter(app_id)
        first = index = self._start_index()
        tries_here = 0
        retries = 0
        attempt = 0
        failure: errors.AgoraError | None = None
        while True:
            attempt += 1
            if not bucket.acquire(deadline, confirming=operation == "query", held=True,
                                  lease=self._token_lease(operation)):
                if failure is not None:
                    raise failure  # the real reason; the limiter only kept it from a retry
                self._out_of_time(operation, index, attempt - 1, "waiting for the rate limiter")
            base = self._endpoints.urls[index]
            tries_here += 1
            self._local.answered = None
            try:
                outcome = self._send(operation, method, base + path, data, deadline, redact,
                                     attempt)
            finally:
                # The token returns a window after the answer (ratelimit), not after the
                # parsing and logging that followed it.
                bucket.release(answered=getattr(self._local, "answered", None))
            if isinstance(outcome, errors.AgoraTransportError):
                failure = outcome
                row = retry.TRANSPORT
                retry_after = None
                kind: FaultKind = "dns" if outcome.kind == "dns" else "network"
                nxt = self._endpoints.after_fault(index, tries_here, kind, first)
            elif outcome.row is None:  # a success
                self._remember(index)
                return outcome.payload
            else:
                row = outcome.row
                failure = self._api_error(row, operation, outcome, redact, attempt)
                if not row.retryable:
                    raise failure
                retry_after = outcome.retry_after
                nxt = index  # the service answered: its state is global, stay on this domain
            _set_attempts(failure, attempt)
            if attempt >= policy.max_attempts:
                raise failure
            delay = policy.delay(row, retries, retry_after)
            if policy.clock() + delay >= deadline:
                raise failure
            retries += 1
            if nxt != index:
                index, tries_here = nxt, 0
            policy.sleep(delay)

    def _token_lease(self, operation: str) -> float:
        """How long a request's budget token lasts if this process dies holding it: a little
        longer than the request's own connect and read timeouts (``_send``)."""
        read = STOP_READ_TIMEOUT_SECONDS if operation == "stop" else self._timeout
        return self._timeout + max(self._timeout, read) + _LEASE_MARGIN_SECONDS

    def _send(
        self,
        operation: str,
        method: str,
        url: str,
        data: bytes | None,
        deadline: float,
        redact: Redactor,
        attempt: int,
    ) -> _Answer | errors.AgoraTransportError:
        """One HTTP exchange, logged as one line; a transport fault is returned, not raised."""
        remaining = deadline - self._retry.clock()
        read = STOP_READ_TIMEOUT_SECONDS if operation == "stop" else self._timeout
        read = max(self._timeout, read)
        timeout = (min(self._timeout, remaining), min(read, remaining))
        if timeout[0] <= 0:
            return self._transport_error(operation, url, attempt, "deadline reached", True, None)
        headers = {
            "Authorization": self._authorization,
            "Content-Type": CONTENT_TYPE,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        host = urllib.parse.urlsplit(url).netloc
        started = time.perf_counter()
        try:
            response = self._session().request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,  # a redirect could carry the Authorization elsewhere
            )
            self._local.answered = time.monotonic()  # the budget counts from here (_call)
        except requests.RequestException as exc:
            self._local.answered = time.monotonic()
            elapsed = (time.perf_counter() - started) * 1000
            timed_out = isinstance(exc, requests.Timeout)
            kind = _fault_kind(exc)
            logger.warning(
                "agora %s host=%s status=- code=- request_id=- duration_ms=%.1f attempt=%d "
                "error=%s",
                operation,
                host,
                elapsed,
                attempt,
                type(exc).__name__,
                extra=_extra(operation, host, None, None, None, elapsed, attempt),
            )
            detail = f"{type(exc).__name__} ({kind} fault)"
            return self._transport_error(operation, url, attempt, detail, timed_out, kind, redact)
        elapsed = (time.perf_counter() - started) * 1000
        # Keep only what is needed: a Response kept alive by a raised error's traceback would pin
        # its connection pool (and socket) until the garbage collector runs.
        with response:
            answer = _Answer.classified(
                operation,
                status=response.status_code,
                payload=_json_body(response),
                # A header the server chose: it reaches log lines and errors, so it is masked
                # like any other text that could echo a credential.
                request_id=redact.optional(_request_id(response)),
                retry_after=_retry_after(response),
            )
        code = answer.code
        # A warning only for an answer that will be retried (a fault worth seeing while it lasts).
        # Under the real engine a provider's stderr is shown to the user as a diagnostic, so an
        # answer the caller expects (404 while waiting for a stopped task to leave) stays at INFO;
        # a final failure reaches the user in the exception instead.
        retried = answer.row is not None and answer.row.retryable
        level = logging.WARNING if retried else logging.INFO
        logger.log(
            level,
            "agora %s host=%s status=%d code=%s request_id=%s duration_ms=%.1f attempt=%d",
            operation,
            host,
            answer.status,
            "-" if code is None else code,
            answer.request_id or "-",
            elapsed,
            attempt,
            extra=_extra(
                operation, host, answer.status, code, answer.request_id, elapsed, attempt
            ),
        )
        return answer

    def _transport_error(
        self,
        operation: str,
        url: str,
        attempt: int,
        detail: str,
        timed_out: bool,
        kind: FaultKind | None,
        redact: Redactor | None = None,
    ) -> errors.AgoraTransportError:
        parts = urllib.parse.urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        cls = errors.AgoraTimeoutError if timed_out else errors.AgoraTransportError
        message = f"Agora {operation} got no answer from {base}: {detail}"
        return cls(
            (redact or self._redact)(message),
            operation=operation,
            endpoint=base,
            attempts=attempt,
            kind=kind or "network",
        )

    def _out_of_time(self, operation: str, index: int, attempts: int, what: str) -> NoReturn:
        base = self._endpoints.urls[index]
        raise errors.AgoraTimeoutError(
            f"Agora {operation}: the call's deadline of {self._retry.deadline:g} s passed {what}",
            operation=operation,
            endpoint=base,
            attempts=attempts,
        )

    @staticmethod
    def _api_error(
        row: retry.Row,
        operation: str,
        answer: _Answer,
        redact: Redactor,
        attempt: int,
    ) -> errors.AgoraApiError:
        code, payload, request_id = answer.code, answer.payload, answer.request_id
        raw_reason = payload.get("reason", payload.get("message", ""))
        reason = redact(str(raw_reason)) if raw_reason is not None else ""
        message = (
            f"Agora {operation} failed: HTTP {answer.status}"
            f"{'' if code is None else f', code {code}'}"
            f"{f': {reason}' if reason else ''}"
            f"{f' (request id {request_id})' if request_id else ''}"
        )
        return row.exception(
            message,
            status=answer.status,
            code=code,
            reason=reason,
            operation=operation,
            request_id=request_id,
            body=redact_tree(payload, redact),
            attempts=attempt,
        )

    def _require(self, data: Mapping[str, Any], key: str, operation: str) -> str:
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
        raise errors.AgoraApiError(
            f"Agora {operation} answered 200 without {key!r}",
            status=200,
            code=None,
            reason=f"missing {key}",
            operation=operation,
        )

    def _start_result(
        self,
        data: Mapping[str, Any],
        resource_id: str,
        body: Mapping[str, Any],
        *,
        already_started: bool = False,
    ) -> StartResult:
        return StartResult(
            sid=self._require(data, "sid", "start"),
            resource_id=str(data.get("resourceId") or resource_id),
            cname=str(data.get("cname", body.get("cname", ""))),
            uid=str(data.get("uid", body.get("uid", ""))),
            already_started=already_started,
        )

    # -- sessions and endpoint preference ----------------------------------------------------------

    def _default_session(self) -> requests.Session:
        session = requests.Session()
        if self._endpoints.all_loopback:
            # Loopback traffic must never go through an environment proxy (or pick up .netrc).
            session.trust_env = False
        return session

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._session_factory()
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _start_index(self) -> int:
        with self._lock:
            if self._preferred and self._retry.clock() - self._preferred_since > (
                PRIMARY_RECHECK_SECONDS
            ):
                self._preferred = 0  # try the primary again now and then (G1: every 30 s)
            return self._preferred

    def _remember(self, index: int) -> None:
        with self._lock:
            if index != self._preferred:
                self._preferred = index
                self._preferred_since = self._retry.clock()


# --------------------------------------------------------------------------------------------------
# Small pure helpers


def _close_session(session: requests.Session) -> None:
    """Close a session and its connection pools now.

    ``Session.close`` clears urllib3's pool manager, but this urllib3 (2.8) no longer closes the
    cleared pools itself: they close when garbage-collected, which a reference cycle can delay.
    """
    for adapter in session.adapters.values():
        manager = getattr(adapter, "poolmanager", None)
        pools = getattr(manager, "pools", None)
        if pools is not None:
            for key in list(pools.keys()):
                pool = pools.get(key)
                if pool is not None:
                    pool.close()
    session.close()


def _set_attempts(exc: errors.AgoraError, attempts: int) -> None:
    if isinstance(exc, errors.AgoraApiError | errors.AgoraTransportError):
        exc.attempts = attempts


def _seg(value: str) -> str:
    """One URL path segment; ids never reshape the path (no '/', '..', '?')."""
    if not isinstance(value, str) or not value:
        raise ValueError("app id, resource id and sid must be non-empty strings")
    return urllib.parse.quote(value, safe="")


def _mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)} (S1), got {mode!r}")
    return mode


def _rid_path(app_id: str, resource_id: str) -> str:
    return f"/v1/apps/{_seg(app_id)}/cloud_recording/resourceid/{_seg(resource_id)}"


def _sid_path(app_id: str, resource_id: str, sid: str, mode: str) -> str:
    return f"{_rid_path(app_id, resource_id)}/sid/{_seg(sid)}/mode/{_mode(mode)}"


def _json_body(response: requests.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _request_id(response: requests.Response) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value
    return None


def _extra(
    operation: str,
    host: str,
    status: int | None,
    code: int | None,
    request_id: str | None,
    duration_ms: float,
    attempt: int,
) -> dict[str, Any]:
    return {
        "agora_operation": operation,
        "agora_host": host,
        "agora_status": status,
        "agora_code": code,
        "agora_request_id": request_id,
        "agora_duration_ms": round(duration_ms, 1),
        "agora_attempt": attempt,
    }
