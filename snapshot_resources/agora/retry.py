"""Which Agora answers are retried, and how long to wait: the table and the backoff policy.

``TABLE`` is the only place that decides what becomes of an answer.  Each row matches an HTTP
status (range), optionally an Agora ``code`` and the operations it applies to, and says which
exception it becomes, whether the same request may be sent again, whether ``start`` should give up
on the resource id and acquire a new one, the documented delays between tries, and the source.
The first matching row wins, so specific rows come before general ones.  docs/agora-api.md
section 6 (6.1 codes, 6.3 retry advice).

The client classifies each answer once (``classify``) and raises ``Row.exception``, which carries
the row's decision (``is_retryable``, ``reacquire``).  Where a caller above the client rides out
an answer the client gives up on (a 404 during a failover, a 53 while a stopped task leaves), the
row names that caller in ``ridden_out_by`` (``module:qualified.name``; a test resolves each), so
this table still shows every place that waits on an answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from . import errors

__all__ = [
    "TABLE",
    "TRANSPORT",
    "RetryPolicy",
    "Row",
    "classify",
]

ALL_OPERATIONS: Final = frozenset({"acquire", "start", "query", "update", "stop"})

# The general schedule "1 s, 3 s, 6 s" (S10, S11); start's 50x schedule "3 s, 6 s, 9 s" (S10);
# code 65 "3 s, 6 s" (S7, S10); query's 404 "5 s, 10 s, 15 s" (S10).
GENERAL_DELAYS: Final = (1.0, 3.0, 6.0)
START_5XX_DELAYS: Final = (3.0, 6.0, 9.0)
NOT_COMPLETED_DELAYS: Final = (3.0, 6.0)
NOT_FOUND_DELAYS: Final = (5.0, 10.0, 15.0)


@dataclass(frozen=True)
class Row:
    """One line of the table; see the module docstring."""

    status: tuple[int, int]  # inclusive range
    code: int | None  # None: any code (or none at all)
    operations: frozenset[str]
    error: type[errors.AgoraApiError]
    retryable: bool
    source: str
    delays: tuple[float, ...] = GENERAL_DELAYS
    reacquire: bool = False  # start: stop using this resource id, acquire again (S7, S10)
    # The caller that retries above the client what the client raises at once (module docstring).
    ridden_out_by: str | None = None

    def matches(self, status: int, code: int | None, operation: str) -> bool:
        low, high = self.status
        return (
            low <= status <= high
            and (self.code is None or self.code == code)
            and operation in self.operations
        )

    def exception(self, message: str, **answer: Any) -> errors.AgoraApiError:
        """The row's exception for one answer (``answer``: ``AgoraApiError``'s keywords), carrying
        the row's decision (``is_retryable``, ``reacquire``)."""
        return self.error(message, **answer, retryable=self.retryable, reacquire=self.reacquire)


def _one(status: int) -> tuple[int, int]:
    return (status, status)


_START = frozenset({"start"})
_STOP = frozenset({"stop"})

TABLE: Final[tuple[Row, ...]] = (
    # Duplicate start on a resource id: "do not repeat start; treat as already running" (S7, S18).
    Row(_one(201), 7, _START, errors.AlreadyStartedError, False, "S7, S18"),
    # Reached the backend, answer timed out: "retry with the same parameters, 3 s, 6 s"; for start,
    # if the retry fails too, acquire and start again (S7, S10, S18).
    Row(_one(206), 65, ALL_OPERATIONS, errors.RequestNotCompletedError, True, "S7, S10, S18",
        NOT_COMPLETED_DELAYS, reacquire=True),
    # stop with no files because nobody published: informational, the task is over (S7, S18).
    Row(_one(206), 435, _STOP, errors.NothingRecordedError, False, "S7, S18"),
    # Any other 206 ("files went to backup", "process not finished", S18): the Go client retries
    # every status that is neither 200/201 nor 400-498 (G1 api/common.go).
    Row(_one(206), None, ALL_OPERATIONS, errors.AgoraApiError, True, "S18, G1"),
    # stop on a task that is already exiting: treat as stopped, never retry (S7, S18).
    Row(_one(400), 49, _STOP, errors.AlreadyExitingError, False, "S7, S18"),
    # A task with the same cname+uid exists: "use another uid, or adopt the task" (S7, S18). Not
    # retried here; the provider retries start while a task it stopped moments ago still leaves
    # (agora:exitTimeout, docs/decisions.md "Create and delete at Agora's pace").
    Row(_one(400), 53, _START, errors.TaskConflictError, False, "S7, S18",
        ridden_out_by="snapshot_resources.provider:SnapshotSessionProvider._start"),
    # PCW quota used up. S7 says "later, with backoff", but tasks last minutes and leaked ones
    # must be found by a person: a deploy fails at once with a clear error instead (W3).
    Row(_one(400), 406, ALL_OPERATIONS, errors.QuotaExceededError, False, "S7, W3"),
    # Expired (433) or unparsable (1001) resource id: acquire again (S18). Only 433 means the
    # task may still run behind it (S19); 1001 means the id was never Agora's.
    Row(_one(400), 433, ALL_OPERATIONS, errors.ResourceExpiredError, False, "S18",
        reacquire=True),
    Row(_one(400), 1001, ALL_OPERATIONS, errors.ResourceIdInvalidError, False, "S18",
        reacquire=True),
    # Every other 400 means the request is wrong: "a steady 40x ... do not retry" (S7, S10, S18).
    Row(_one(400), None, ALL_OPERATIONS, errors.InvalidRequestError, False, "S7, S10, S18"),
    Row(_one(401), None, ALL_OPERATIONS, errors.AuthError, False, "S7, S22"),
    # "failed to find worker": gone, or failing over. Never retried here; query_riding_failover
    # re-queries with these delays until the grace period ends (S7 FAQ, S10, S18).
    Row(_one(404), 404, ALL_OPERATIONS, errors.TaskNotFoundError, False, "S7, S10, S18",
        NOT_FOUND_DELAYS,
        ridden_out_by="snapshot_resources.agora.client:AgoraClient.query_riding_failover"),
    # A 404 without Agora's code is the gateway's "no Route matched": a wrong URL or method (S7).
    Row(_one(404), None, ALL_OPERATIONS, errors.InvalidRequestError, False, "S7, S18"),
    Row(_one(429), None, ALL_OPERATIONS, errors.RateLimitedError, True, "S7, W3"),
    # start's "Failed to allocate worker": acquire and start again, not the same request (S7).
    Row(_one(500), 502, _START, errors.WorkerAllocationError, False, "S7", reacquire=True),
    # start 50x: same parameters at 3 s, 6 s, 9 s, then a new acquire (S10).
    Row((500, 599), None, _START, errors.ServerError, True, "S7, S10", START_5XX_DELAYS,
        reacquire=True),
    Row((500, 599), None, ALL_OPERATIONS, errors.ServerError, True, "S7, S10, S11"),
    # Other 4xx: "400-498 are not retried" (G1 api/common.go); a steady 40x is not (S10).
    Row((402, 499), None, ALL_OPERATIONS, errors.AgoraApiError, False, "S10, G1"),
)

# Anything the table does not name (1xx, other 2xx, 3xx: redirects are never followed).
DEFAULT: Final = Row((0, 999), None, ALL_OPERATIONS, errors.AgoraApiError, False, "-")

# No HTTP answer at all: a network or DNS fault. Retry with backoff and move along the domain list
# (S11 retry order; G1 agora/client/client.go moves to the next domain on a transport error).
TRANSPORT: Final = Row((0, 0), None, ALL_OPERATIONS, errors.AgoraApiError, True, "S10, S11, G1")


def classify(status: int, code: int | None, operation: str) -> Row:
    """The first row of ``TABLE`` that matches, or ``DEFAULT``."""
    for row in TABLE:
        if row.matches(status, code, operation):
            return row
    return DEFAULT


@dataclass(frozen=True)
class RetryPolicy:
    """How many tries, over how long, and how to wait between them.

    ``max_attempts`` counts the first try (4 = "after 3 failures", S10); ``deadline`` bounds one
    call across all its tries and waits, because Pulumi's custom timeouts do not reach dynamic
    providers (design.md).  ``scale`` multiplies every documented delay; tests set it small so
    retries do not wait seconds.  ``sleep`` and ``clock`` are injectable for the same reason.
    Delays are deterministic (no jitter): the per-App-ID rate limiter already spaces requests.
    """

    max_attempts: int = 4
    deadline: float = 60.0
    scale: float = 1.0
    max_delay: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be at least 1")
        if self.deadline <= 0 or self.scale < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy.deadline must be positive; scale, max_delay >= 0")

    def delay(self, row: Row, retry_index: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry_index`` (0 = the first retry).

        The row's schedule repeats its last step; a server ``Retry-After`` (429) wins when longer.
        """
        schedule = row.delays or GENERAL_DELAYS
        base = schedule[min(retry_index, len(schedule) - 1)] * self.scale
        if retry_after is not None:
            base = max(base, retry_after)
        return min(base, self.max_delay)
