"""The reconciler's work queue: what is pending per session, when the next round is due, and the
backoff after a failed round or a locked stack (in the model of controller-runtime's workqueue:
items coalesce per key, a batch is taken at once, a failed batch is put back, retries are
delayed exponentially).

Not thread-safe on its own: the controller calls it under its lock, together with the intake
(``intake.Intake``), so that a notification's correlation and the work it queues are one step.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final

from snapshot_resources.reconcile.decisions import Cause, RotationWindow

__all__ = ["Backoff", "Batch", "PendingRotation", "Work", "WorkQueue"]

MAX_WAIT: Final = 60.0
"""The loop looks at its clock at least this often (seconds)."""


@dataclass(frozen=True)
class Work:
    """A session to act on: why (``cause``), which sid ended (None: not known), since when
    (``since``, clock), its channel (None: not known), and whether it was already forgotten (a
    held session)."""

    cause: Cause
    sid: str | None
    since: float
    cname: str | None = None
    forgotten: bool = False


@dataclass(frozen=True)
class PendingRotation:
    """A session in its rotation window: the task (``sid``), its window, and, once a moment is
    chosen, why that moment (``why``)."""

    sid: str
    window: RotationWindow
    why: str | None = None


@dataclass(frozen=True)
class Batch:
    """The work one round takes: whether it sweeps, the sessions to restart, to check (refresh)
    and to rotate, and the held sessions still to forget."""

    sweep: bool
    restarts: dict[str, Work]
    checks: dict[str, Work]
    rotations: dict[str, PendingRotation]
    forget_held: dict[str, Work]

    @property
    def reread_only(self) -> bool:
        """Nothing but a read of the state (notifications about sids it does not know yet)."""
        return not (self.sweep or self.restarts or self.checks or self.rotations
                    or self.forget_held)


@dataclass
class Backoff:
    """Exponential delays: ``first`` seconds after the first attempt, doubled per attempt up to
    ``cap``; ``attempts`` in a row since the last ``reset``."""

    first: float
    cap: float
    attempts: int = 0

    def next_delay(self) -> float:
        """Count one more attempt; returns the seconds to wait before the next one."""
        self.attempts += 1
        return min(self.first * 2.0 ** (self.attempts - 1), self.cap)

    def reset(self) -> None:
        self.attempts = 0


@dataclass
class WorkQueue:
    """Pending work keyed by session name, and the due times of the loop.

    ``restarts``, ``checks``: sessions to restart, to refresh.  ``held``: idle ends waiting for a
    broadcaster (``Work.forgotten`` once the state no longer holds them).
    ``rotation_windows``: sessions whose rotation window is open, waiting for a good moment;
    ``rotations_due``: sessions whose moment came, replaced at the next round.  ``sweep_at``,
    ``retry_at``, ``batch_at`` (clock): the next sweep, the end of a backoff, the end of the
    batch window; ``last_sweep`` (clock) of the last sweep; ``in_round``: a round runs.
    ``failures`` and ``lock_waits`` (``Backoff``): failed rounds and waits for a
    locked stack in a row.  ``fired``: (session, sid, timer kind) already acted on; ``reported``:
    (session, sid) whose given token was reported.
    """

    batch_window: float
    failures: Backoff
    lock_waits: Backoff
    restarts: dict[str, Work] = field(default_factory=dict)
    checks: dict[str, Work] = field(default_factory=dict)
    held: dict[str, Work] = field(default_factory=dict)
    rotation_windows: dict[str, PendingRotation] = field(default_factory=dict)
    rotations_due: dict[str, PendingRotation] = field(default_factory=dict)
    sweep_at: float = 0.0  # the first round sweeps
    retry_at: float = 0.0
    batch_at: float | None = None
    last_sweep: float | None = None
    last_error: str | None = None
    in_round: bool = False
    fired: set[tuple[str, str, str]] = field(default_factory=set)
    reported: set[tuple[str, str]] = field(default_factory=set)

    def pending(self) -> set[str]:
        """Sessions with work queued for the next round (restart, check or rotation)."""
        return {*self.restarts, *self.checks, *self.rotations_due}

    def backoff_left(self, now: float) -> float | None:
        """Seconds of backoff left (at most ``MAX_WAIT``), or None when none is."""
        return min(self.retry_at - now, MAX_WAIT) if now < self.retry_at else None

    def take(self, now: float, *, reread: bool) -> Batch | float | None:
        """The work of a round, taken off the queue: a ``Batch`` when a round is due; a float,
        the seconds left of the batch window that the first new work opened; None when nothing
        is due.  ``reread``: the state should be read again (it counts as work)."""
        sweep = now >= self.sweep_at
        forget_held = {n: w for n, w in self.held.items() if not w.forgotten}
        work = bool(self.restarts or self.checks or self.rotations_due or forget_held or reread)
        if not (sweep or work):
            self.batch_at = None
            return None
        if not sweep:
            if self.batch_at is None:
                self.batch_at = now + self.batch_window
            if now < self.batch_at:
                return self.batch_at - now
        self.batch_at = None
        batch = Batch(sweep, self.restarts, self.checks, self.rotations_due, forget_held)
        self.restarts, self.checks, self.rotations_due = {}, {}, {}
        return batch

    def requeue(self, batch: Batch) -> None:
        """Put back the work of a round that did not finish; work that arrived meanwhile is
        newer and wins."""
        self.restarts = {**batch.restarts, **self.restarts}
        self.checks = {**batch.checks, **self.checks}
        self.rotations_due = {**batch.rotations, **self.rotations_due}
        if batch.sweep:
            self.sweep_at = 0.0

    def sweep_now(self) -> None:
        self.sweep_at = 0.0

    def swept(self, at: float, interval: float) -> None:
        """A sweep finished at ``at``: the next one is ``interval`` seconds later."""
        self.last_sweep = at
        self.sweep_at = at + interval

    def choose_moment(self, name: str, why: str) -> None:
        """Rotate ``name`` (its window is open) at the next round, for the reason ``why``."""
        pending = self.rotation_windows.pop(name)
        self.rotations_due[name] = PendingRotation(pending.sid, pending.window, why)

    def cancel_rotation(self, name: str) -> None:
        self.rotation_windows.pop(name, None)
        self.rotations_due.pop(name, None)

    def mark_forgotten(self, name: str) -> None:
        """The state no longer holds held session ``name``: nothing is left to forget."""
        if name in self.held:
            self.held[name] = replace(self.held[name], forgotten=True)

    def failed(self, now: float, error: str) -> float:
        """A round failed: the seconds until the retry (also set as ``retry_at``)."""
        delay = self.failures.next_delay()
        self.retry_at = now + delay
        self.last_error = error
        return delay

    def locked(self, now: float, error: str) -> float:
        """The stack is locked by another update: the seconds until the next attempt."""
        delay = self.lock_waits.next_delay()
        self.retry_at = now + delay
        self.last_error = error
        return delay

    def succeeded(self) -> None:
        self.failures.reset()
        self.lock_waits.reset()
        self.last_error = None

    def forget_tasks_not_in(self, live: set[tuple[str, str]]) -> None:
        """Drop timers and open rotation windows of tasks the state no longer holds (``live``:
        (session, sid) pairs)."""
        self.fired = {f for f in self.fired if (f[0], f[1]) in live}
        self.rotation_windows = {n: r for n, r in self.rotation_windows.items()
                                 if (n, r.sid) in live}
