"""One round of the reconciler: at most one of each stack operation, in this order
(docs/reconcile.md, "Rounds"):

1. ``export`` the state (sessions and their sids; a read, no lock), then read the declared
   sessions (``declared.ProgramSessions``).
2. ``refresh`` the sessions to check: on a sweep every session in the state, otherwise the ones
   queued as ``check``.  A session the refresh keeps is ``keep``; one it drops is restarted.
3. ``forget`` (one ``pulumi state delete``) the sessions Agora reported exited, held ones
   included, when the state still records that very sid and Agora confirms the task is gone
   (``confirm``).
4. ``up`` targeted at the declared sessions missing from the state (except held ones), with
   ``--replace`` for the sessions being rotated.

What it does about a session it learns of (a refresh's answer, a query's) is
``restart_rule.restart_action``'s.  The controller runs one round at a time, from its thread,
and holds the lock the round takes to touch the queue and the intake.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Set
from typing import TypeVar

from snapshot_resources.reconcile.confirm import TaskQuery, TaskState
from snapshot_resources.reconcile.decisions import Cause
from snapshot_resources.reconcile.declared import Invalidatable
from snapshot_resources.reconcile.intake import Intake, Successor
from snapshot_resources.reconcile.inventory import (
    SessionRecord,
    has_resources,
    session_urn,
    sessions_from_export,
)
from snapshot_resources.reconcile.metrics import ReconcileMetrics
from snapshot_resources.reconcile.replicas import ReplicaSet
from snapshot_resources.reconcile.report import decision
from snapshot_resources.reconcile.restart_rule import Action, AgoraSays, Facts, restart_action
from snapshot_resources.reconcile.settings import ControllerSettings
from snapshot_resources.reconcile.stack_ops import StackBusyError, StackOperationError, StackOps
from snapshot_resources.reconcile.workqueue import Batch, PendingRotation, Work, WorkQueue

__all__ = ["Round", "StoppingError"]

_T = TypeVar("_T")


class StoppingError(StackOperationError):
    """Raised instead of starting a stack operation once the reconciler is stopping."""


class Round:
    """Runs rounds (module docstring) on ``ops`` for the controller that owns ``queue``,
    ``intake`` and ``lock``.  ``declared``: the program's sessions (``Controller``).
    ``on_state_read``: called under the lock after each read of the state (the controller
    prunes its timers).  ``wake``: makes the controller's loop look for work."""

    def __init__(self, ops: StackOps, *, settings: ControllerSettings,
                 metrics: ReconcileMetrics, clock: Callable[[], float], lock: threading.Lock,
                 queue: WorkQueue, intake: Intake,
                 declared: Callable[[], Mapping[str, str] | Set[str]],
                 tasks: TaskQuery | None, replicas: ReplicaSet | None,
                 exported: threading.Event, wake: Callable[[], None],
                 gauges: Callable[[], None]) -> None:
        self.ops = ops
        self.settings = settings
        self.metrics = metrics
        self._clock = clock
        self._lock = lock
        self._queue = queue
        self._intake = intake
        self._declared = declared
        self._tasks = tasks
        self._replicas = replicas
        self._exported = exported
        self._wake = wake
        self._gauges = gauges
        self.stop: threading.Event | None = None  # set: no operation starts

    def run(self, batch: Batch) -> None:
        """One round of ``batch``; raises ``StackOperationError`` (``StackBusyError``,
        ``StoppingError``) with the batch not done."""
        started = self._clock()
        records = self.export()
        if records is None:  # nothing deployed: leave the stack alone
            with self._lock:
                self._queue.sweep_at = self._clock() + self.settings.interval
                # Nothing is left to forget (a destroy removed it): without this, a held session
                # would ask for a round, and an export, every batch window.
                for name in list(self._queue.held):
                    self._queue.mark_forgotten(name)
            return
        declared = self.read_declared(batch.sweep)
        restarts = {n: w for n, w in batch.restarts.items() if n in declared}
        checks = {n: w for n, w in batch.checks.items() if n in declared}
        records, checks = self._refresh(batch.sweep, records, declared, restarts, checks)
        records = self._forget(records, restarts, batch.forget_held)
        starting: dict[str, Work] = {**checks, **restarts}
        with self._lock:
            held = set(self._queue.held)
        missing = sorted(n for n in declared - set(records) if n not in held)
        replacing = {n: r for n, r in sorted(batch.rotations.items())
                    if n in declared and n in records and records[n].sid == r.sid}
        for name in sorted(set(batch.rotations) - set(replacing)):
            decision("ignore", "rotation no longer needed: the task was replaced or removed "
                     "meanwhile", session=name, sid=batch.rotations[name].sid)
        if missing or replacing:
            records = self._up(records, missing, replacing, starting)
        with self._lock:
            self._set_records(records)
            if batch.sweep:
                swept = self._clock()
                self._queue.swept(swept, self.settings.interval)
                self.metrics.last_sweep.set(swept)
            self._gauges()
            last_sweep = self._queue.last_sweep
        if batch.sweep and self._replicas is not None and last_sweep is not None:
            self._replicas.note_sweep(last_sweep)
        if batch.sweep:
            decision("sweep", "periodic safety net: refreshed every session, started what "
                     "was missing", seconds=self._clock() - started,
                     sessions=len(records), next_in=self.settings.interval)

    # -- reads -----------------------------------------------------------------------------------

    def export(self) -> dict[str, SessionRecord] | None:
        """Read the state into the intake; returns its sessions, or None: nothing deployed."""
        document = self.timed_value("export", self.ops.export)
        deployed = has_resources(document)
        with self._lock:
            self._intake.exported_at = self._clock()
            self._exported.set()
            if deployed != self._intake.deployed and not deployed:
                decision("ignore", "the stack holds no resources (never deployed, or "
                         "destroyed): nothing to keep alive until someone runs `pulumi up`",
                         level=logging.WARNING)
            self._intake.deployed = deployed
        records = sessions_from_export(document) if deployed else {}
        with self._lock:
            self._set_records(records)
        return dict(records) if deployed else None

    def _set_records(self, records: Mapping[str, SessionRecord]) -> None:
        """Under the lock: the state's sessions to the intake; the timers and rotation windows
        of tasks no longer in it are dropped."""
        self._queue.forget_tasks_not_in(self._intake.set_records(records))

    def read_declared(self, sweep: bool) -> frozenset[str]:
        if sweep:
            self.invalidate_declared()
        found = self._declared()
        if isinstance(found, Mapping):
            urns = {str(name): str(urn) for name, urn in found.items()}
        else:
            urns = {name: session_urn(self.ops.stack, self.ops.project, name) for name in found}
        with self._lock:
            return self._intake.set_declared(urns)

    def invalidate_declared(self) -> None:
        if isinstance(self._declared, Invalidatable):
            self._declared.invalidate()

    # -- the operations --------------------------------------------------------------------------

    def _refresh(self, sweep: bool, records: dict[str, SessionRecord], declared: frozenset[str],
                 restarts: dict[str, Work], checks: dict[str, Work],
                 ) -> tuple[dict[str, SessionRecord], dict[str, Work]]:
        """Refresh what needs Agora's word; returns the records after it and the sessions to
        start because the refresh dropped them."""
        for name, work in list(checks.items()):
            record = records.get(name)
            replaced = record is not None and work.sid is not None and record.sid != work.sid
            if restart_action(Facts(work.cause, replaced=replaced)) is Action.IGNORE:
                decision("ignore", "the task to check was replaced meanwhile (a new sid in the "
                         "state)", session=name, sid=work.sid)
                del checks[name]
        to_refresh = set(records) if sweep else {n for n in checks if n in records}
        if not to_refresh:
            return records, checks
        before = records
        urns = [before[n].urn for n in sorted(to_refresh)]
        seconds = self.timed("refresh", lambda: self.ops.refresh(urns))
        records = self.export() or {}
        learned = self._clock()
        with self._lock:
            held = set(self._queue.held)
        for name in sorted(to_refresh):
            if name in records:
                if name in checks and restart_action(Facts(
                        checks[name].cause, agora=AgoraSays.RUNNING)) is Action.KEEP:
                    decision("keep", "the refresh found its task running", session=name,
                             seconds=seconds, sid=records[name].sid)
                    del checks[name]
                continue
            if name in held:
                with self._lock:
                    self._queue.mark_forgotten(name)
                continue
            # Dropped: a session queued to check or restart is started below (it is in
            # ``checks`` or ``restarts``); any other is a `dropped` end.
            if name in checks or name in restarts:
                continue
            facts = Facts(Cause.DROPPED, declared=name in declared, agora=AgoraSays.GONE)
            if restart_action(facts) is Action.RESTART:
                decision("restart", "the refresh found its task gone (no notification came)",
                         session=name, seconds=seconds, sid=before[name].sid,
                         cause=Cause.DROPPED.value)
                checks[name] = Work(Cause.DROPPED, before[name].sid, learned)
        return records, checks

    def _forget(self, records: dict[str, SessionRecord], restarts: dict[str, Work],
                forget_held: dict[str, Work]) -> dict[str, SessionRecord]:
        """One ``state delete`` of the ended sessions whose sid the state still records."""
        gone: dict[str, SessionRecord] = {}
        for name, work in sorted({**forget_held, **restarts}.items()):
            record = records.get(name)
            if record is None:
                continue
            if restart_action(Facts(work.cause, replaced=record.sid != work.sid)) \
                    is Action.IGNORE:
                decision("ignore", "the ended task was already replaced (a new sid in the "
                         "state): nothing to restart", session=name, sid=work.sid)
                restarts.pop(name, None)
                if name in forget_held:
                    with self._lock:
                        self._queue.held.pop(name, None)
                continue
            gone[name] = record
        gone = self._confirmed(gone, restarts, forget_held)
        if gone:
            seconds = self.timed("forget", lambda: self.ops.forget(
                [gone[n].urn for n in sorted(gone)]))
            for name in sorted(gone):
                decision("forgotten", "Agora reported its task exited (NCS 11): removed from the "
                         "state without waiting out a failover grace", session=name,
                         seconds=seconds, sid=gone[name].sid)
            records = {n: r for n, r in records.items() if n not in gone}
        with self._lock:
            for name in forget_held:
                if name in gone or name not in records:
                    self._queue.mark_forgotten(name)
        return records

    def _confirmed(self, gone: dict[str, SessionRecord], restarts: dict[str, Work],
                   forget_held: dict[str, Work]) -> dict[str, SessionRecord]:
        """The sessions of ``gone`` whose task Agora confirms is gone (``confirm``); for the
        others, what ``restart_action`` says with Agora's answer (``keep`` or ``check``)."""
        if self._tasks is None or not gone:
            return gone
        verdicts = self._tasks.states([gone[n] for n in sorted(gone)])
        confirmed: dict[str, SessionRecord] = {}
        for name, record in sorted(gone.items()):
            verdict = verdicts.get(record.sid)
            state = verdict.state if verdict is not None else TaskState.UNKNOWN
            why = verdict.why if verdict is not None else "no answer"
            self.metrics.exit_checks.labels(state.value).inc()
            if state is TaskState.GONE:  # the exit is confirmed: the decision made stands
                confirmed[name] = record
                continue
            work = restarts.pop(name, None) or forget_held[name]
            agora = AgoraSays.RUNNING if state is TaskState.RUNNING else AgoraSays.NO_ANSWER
            action = restart_action(Facts(work.cause, agora=agora))
            with self._lock:
                self._queue.held.pop(name, None)
                if action is Action.CHECK:
                    self._queue.checks.setdefault(name, dataclasses.replace(work, forgotten=False))
                    self._wake()
            if action is Action.KEEP:
                decision("keep", f"Agora says its task still runs ({why}): the exit "
                         "notification is not acted on", session=name, sid=record.sid,
                         cause=work.cause.value)
            else:
                decision("check", f"the exit could not be confirmed with Agora ({why}): "
                         "refreshing it instead of forgetting it", session=name,
                         sid=record.sid, cause=work.cause.value)
        return confirmed

    def _up(self, records: dict[str, SessionRecord], missing: list[str],
            replacing: dict[str, PendingRotation], starting: dict[str, Work],
            ) -> dict[str, SessionRecord]:
        with self._lock:
            targets = [self._intake.declared_urns[n] for n in missing]
        replace = [records[n].urn for n in replacing]
        began = self._clock()
        works = {n: starting.get(n) or Work(Cause.MISSING, None, began) for n in missing}
        successors = self._intake.successors
        with self._lock:
            # Registered before the up: the new task's first snapshot can land before it ends
            # (the provider waits for the task to run, status 5 follows the first upload).
            for name, work in works.items():
                what = "create" if work.cause is Cause.MISSING else "restart"
                successors[name] = Successor(what, work.cause.value, work.since, work.sid)
            for name, rotation in replacing.items():
                successors[name] = Successor("rotation", rotation.window.kind.value, began,
                                             rotation.sid)
                self._intake.note_own_stop(rotation.sid)
        try:
            seconds = self.timed("up", lambda: self.ops.up([*targets, *replace], replace))
        except StackOperationError:
            with self._lock:
                for name in [*missing, *replacing]:
                    successors.pop(name, None)
                # Not stopped by us after all: a later exit of that task is a real end.
                for rotation in replacing.values():
                    self._intake.drop_own_stop(rotation.sid)
            raise
        after = self.export() or {}
        done = self._clock()
        with self._lock:
            for name, work in works.items():
                if name not in after:
                    successors.pop(name, None)
                    continue
                cause = work.cause.value
                self.metrics.restarts.labels(cause).inc()
                self.metrics.restart_seconds.labels(cause).observe(max(0.0, done - work.since))
                what = "created" if work.cause is Cause.MISSING else "restarted"
                why = ("declared by the program but missing from the state"
                       if work.cause is Cause.MISSING else
                       f"down for {done - work.since:.1f} s since the reconciler learned of "
                       "the end")
                decision(what, f"a new task runs ({cause}): {why}", session=name,
                         seconds=seconds, sid=after[name].sid, cause=cause,
                         down=round(max(0.0, done - work.since), 3))
            for name, rotation in replacing.items():
                if name not in after or after[name].sid == rotation.sid:
                    successors.pop(name, None)
                    continue
                kind = rotation.window.kind.value
                self.metrics.rotations.labels(kind).inc()
                decision("rotated", f"replaced {rotation.window.ends_at - done:.0f} s before "
                         f"its {kind} ended; moment chosen: {rotation.why}", session=name,
                         seconds=seconds, sid=after[name].sid, old_sid=rotation.sid, cause=kind)
        return after

    # -- timing ----------------------------------------------------------------------------------

    def timed(self, operation: str, call: Callable[[], None]) -> float:
        started = time.monotonic()
        self.timed_value(operation, call)
        return time.monotonic() - started

    def timed_value(self, operation: str, call: Callable[[], _T]) -> _T:
        if self.stop is not None and self.stop.is_set():
            raise StoppingError(operation)
        started = time.monotonic()
        try:
            result = call()
        except StackBusyError:
            self.metrics.engine_runs.labels(operation, "busy").inc()
            raise
        except StackOperationError:
            self.metrics.engine_runs.labels(operation, "failed").inc()
            raise
        self.metrics.engine_runs.labels(operation, "ok").inc()
        self.metrics.engine_run_seconds.labels(operation).observe(time.monotonic() - started)
        return result
