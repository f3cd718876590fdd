"""Faults on demand: added latency and a rate of failed answers, per operation, from a seed.

The kinds are the failures S7 and S10 tell a client to retry:

* ``"5xx"``: acquire ``500 {"code":500,"reason":"internal_error"}``; start ``500 code 62``;
  query/update/stop ``504 code 62 "request timeout"`` (S7);
* ``"206"``: ``206 {"code":65,"reason":"request not completed"}`` (S7, S18);
* ``"429"``: the gateway's ``{"message":"API rate limit exceeded"}`` (S7);
* ``"reset"``: the connection is dropped without an answer (network fault, S11).

Every fault is injected *before* the backend runs, so nothing has happened and a retry with the
same parameters is safe.  (At Agora a 65 may come after the work was done, S7; the emulator does
not model that, so that a client's retry test has one meaning.)  Draws come from one
``random.Random(seed)`` in request order, so a sequential run is reproducible.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from snapshot_resources.emulator.errors import EmulatorError, ServiceError, rate_limited

KINDS: Final = ("5xx", "206", "429", "reset")
# A request thread sleeps this long at most: a typo in latency_ms must not hang a request (and the
# server's stop, which joins request threads) for days.
MAX_LATENCY_MS: Final = 60_000
OPERATIONS: Final = ("acquire", "start", "query", "update", "stop")


@dataclass(frozen=True)
class FaultPlan:
    rate: float = 0.0
    kinds: tuple[str, ...] = KINDS
    operations: frozenset[str] | None = None  # None: every REST operation
    latency_ms: int = 0
    seed: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultPlan:
        """Build a plan from the admin API body; ``ValueError`` names the bad field."""
        rate = data.get("rate", 0.0)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValueError("rate: a number from 0 to 1")
        kinds = _names(data.get("kinds", KINDS), KINDS, "kinds")
        if not kinds:
            raise ValueError("kinds: at least one of " + ", ".join(KINDS))
        operations = data.get("operations")
        chosen = None if operations is None else frozenset(
            _names(operations, OPERATIONS, "operations"))
        latency = data.get("latency_ms", data.get("latencyMs", 0))
        if isinstance(latency, bool) or not isinstance(latency, int) \
                or not 0 <= latency <= MAX_LATENCY_MS:
            raise ValueError(f"latency_ms: an integer from 0 to {MAX_LATENCY_MS}")
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError("seed: an integer")
        return cls(float(rate), kinds, chosen, latency, seed)

    def to_json(self) -> dict[str, Any]:
        return {"rate": self.rate, "kinds": list(self.kinds),
                "operations": None if self.operations is None else sorted(self.operations),
                "latency_ms": self.latency_ms, "seed": self.seed}


def _names(value: object, allowed: Iterable[str], field: str) -> tuple[str, ...]:
    allowed = tuple(allowed)
    if not isinstance(value, list | tuple) or not all(v in allowed for v in value):
        raise ValueError(f"{field}: a list of " + ", ".join(allowed))
    return tuple(value)


@dataclass(frozen=True)
class Decision:
    latency_ms: int
    kind: str | None  # None: answer normally


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plan = FaultPlan()
        self._random = random.Random(0)  # noqa: S311 - reproducible faults, not crypto

    @property
    def plan(self) -> FaultPlan:
        with self._lock:
            return self._plan

    def set(self, plan: FaultPlan) -> None:
        with self._lock:
            self._plan = plan
            self._random = random.Random(plan.seed)  # noqa: S311 - reproducible, not crypto

    def clear(self) -> None:
        self.set(FaultPlan())

    def decide(self, operation: str) -> Decision:
        with self._lock:
            plan = self._plan
            if plan.operations is not None and operation not in plan.operations:
                return Decision(0, None)
            kind = None
            if plan.rate > 0 and self._random.random() < plan.rate:
                kind = self._random.choice(plan.kinds)
            return Decision(plan.latency_ms, kind)


def fault_error(kind: str, operation: str) -> EmulatorError:
    """The answer for an injected fault other than ``reset`` (S7)."""
    if kind == "206":
        return ServiceError(206, 65, "request not completed")
    if kind == "429":
        return rate_limited()
    if operation == "acquire":
        return ServiceError(500, 500, "internal_error")
    return ServiceError(500 if operation == "start" else 504, 62, "request timeout")
