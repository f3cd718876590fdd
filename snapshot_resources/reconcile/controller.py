"""The controller: keeps the declared sessions running, driven by notifications, timers and sweeps.

Inputs, all thread-safe: ``notify(notice)`` (from the receiver: a verified, deduplicated
notification), and its own clock (timers from the state, the periodic sweep).  Output: stack
operations (``StackOps``), one round at a time (``round.Round``), from one thread (``run``),
because Pulumi runs one update per stack at a time.

The controller only applies decisions; the parts it wires together each own one job:

* ``intake.Intake``: what it knows of the stack, and the notifications matched with it (which
  session a sid is, the leave code and token error kept until the exit, the exit's cause);
* ``restart_rule.restart_action``: what to do about a session that ended, or may have (the
  table in docs/reconcile.md, "Causes and actions");
* ``workqueue.WorkQueue``: the work pending per session, due times (sweep, batch window,
  backoff) and rotation windows: work that arrives while a round runs, or within
  ``batch_window`` seconds of the first piece of new work, is coalesced into the next round, so
  that ten sessions that end together are forgotten by one ``pulumi state delete`` and
  restarted by one ``pulumi up``;
* ``round.Round``: one round, at most one export, refresh, forget and up.

Only sessions the program declares (``declared.ProgramSessions``) are acted on, and nothing is
done to a stack that holds no resources (never deployed, or destroyed): the reconciler does not
undo a ``destroy``.  A stack locked by another update (``StackBusyError``) is waited for with
its own backoff (``busy_delay`` doubling up to ``max_busy_delay``), not counted as a failure; a
failed round is retried with exponential backoff (``retry_delay`` doubling up to
``max_retry_delay``), reported in the log, ``/healthz`` and
``snapshot_reconcile_consecutive_failures``.  Every decision is one structured log line
(``report.decision``).  The controller keeps nothing that the state and Agora's notifications
cannot give back after a restart (docs/reconcile.md): what it holds in memory (channel hosts,
leave codes, held sessions, capture times) only makes it faster or quieter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Set
from datetime import UTC, datetime
from typing import Any, Final

from snapshot_resources.events import NcsEvent, NotificationBodyError, snapshot_name
from snapshot_resources.reconcile.confirm import TaskQuery
from snapshot_resources.reconcile.decisions import (
    Cause,
    rotation_window,
    session_timers,
)
from snapshot_resources.reconcile.intake import Capture, Exit, Failover, Intake
from snapshot_resources.reconcile.inventory import SessionRecord
from snapshot_resources.reconcile.metrics import ReconcileMetrics
from snapshot_resources.reconcile.notices import ChannelNotice, Notice
from snapshot_resources.reconcile.presence import ChannelPresence
from snapshot_resources.reconcile.replicas import ReplicaSet, Role
from snapshot_resources.reconcile.report import decision
from snapshot_resources.reconcile.restart_rule import Action, Facts, restart_action
from snapshot_resources.reconcile.round import Round, StoppingError
from snapshot_resources.reconcile.settings import ControllerSettings
from snapshot_resources.reconcile.stack_ops import StackBusyError, StackOperationError, StackOps
from snapshot_resources.reconcile.workqueue import (
    MAX_WAIT,
    Backoff,
    Batch,
    PendingRotation,
    Work,
    WorkQueue,
)
from snapshot_resources.rules import MIN_TOKEN_REMAINING_SECONDS

__all__ = ["Controller", "ControllerSettings"]

log = logging.getLogger("snapshot_resources.reconcile")

_FOLLOWER_WAIT: Final = 1.0  # a replica that does not act looks at its lease this often
# Why each cause's exit is restarted, held or checked (the log line's `why`).
_EXIT_WHY: Final[Mapping[Action, str]] = {
    Action.CHECK: "its task was stopped (leaveCode 16): refreshing before any restart, in case "
                  "someone is replacing or destroying it",
    Action.HOLD: "ended on idle (leaveCode 4); restarting when its channel has a broadcaster "
                 "again, not into an empty channel",
}
_EMPTY_CHANNEL: Final = "its channel has no broadcaster: nothing to lose"


class Controller:
    """Keeps the declared sessions of one stack running (module docstring).

    ``ops`` (``StackOps``): the stack.  ``declared`` (callable -> mapping of session name to
    URN, or a set of names): the sessions the program declares, read at each round
    (``declared.ProgramSessions``; for a set of names the URNs are ``inventory.session_urn``'s).
    When it has an ``invalidate()`` method (``declared.Invalidatable``), that is called at every
    sweep and after a failed round.
    ``settings`` (``ControllerSettings``).  ``metrics`` (``ReconcileMetrics`` | None; None makes
    one).  ``clock`` (callable -> Unix seconds, default ``time.time``): for timers, which compare
    with the state's ``tokenExpiresAt`` and ``resourceExpiresAt``.  ``tasks`` (``TaskQuery`` |
    None): asks Agora whether a task is gone before its session is forgotten
    (``confirm.AgoraTaskQuery``); None trusts the exit notifications (tests of other rules).
    ``replicas`` (``replicas.ReplicaSet`` | None): one of several replicas of this stack on the
    shared store: it keeps the same bookkeeping as the others and reads the state, but runs
    refresh, forget and up only while it holds the stack's lease (or acts alone while the store
    fails).
    """

    def __init__(
        self,
        ops: StackOps,
        *,
        declared: Callable[[], Mapping[str, str] | Set[str]],
        settings: ControllerSettings | None = None,
        metrics: ReconcileMetrics | None = None,
        clock: Callable[[], float] = time.time,
        tasks: TaskQuery | None = None,
        replicas: ReplicaSet | None = None,
    ) -> None:
        self.ops = ops
        self.replicas = replicas
        self.exported = threading.Event()  # set once the state was read (replicas.follow)
        self._acting = replicas is None
        self.settings = settings or ControllerSettings()
        self.metrics = metrics or ReconcileMetrics()
        if replicas is not None:
            self.metrics.registry.register(replicas.collector())
            replicas.on_change(lambda role: self._wake.set())
        self.presence = ChannelPresence()
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        s = self.settings
        self.queue = WorkQueue(s.batch_window, Backoff(s.retry_delay, s.max_retry_delay),
                               Backoff(s.busy_delay, s.max_busy_delay))
        self.intake = Intake()
        self.round = Round(ops, settings=s, metrics=self.metrics, clock=clock, lock=self._lock,
                           queue=self.queue, intake=self.intake, declared=declared, tasks=tasks,
                           replicas=replicas, exported=self.exported, wake=self._wake.set,
                           gauges=self._gauges)

    # -- inputs (any thread) --------------------------------------------------------------------

    def notify(self, notice: Notice) -> str:
        """Take one verified, deduplicated notification ``notice``.  Returns its outcome for
        metrics: ``accepted`` (about a session of this stack, or a channel event), ``unmatched``
        (a sid this stack does not hold).  Never blocks on a stack operation."""
        with self._lock:
            if isinstance(notice, ChannelNotice):
                self._on_channel(notice)
                return "accepted"
            return self._on_recording(notice, self._clock())

    def request_sweep(self) -> None:
        """Sweep at the next round (e.g. on SIGHUP or from a test)."""
        with self._lock:
            self.queue.sweep_now()
        self._wake.set()

    def status(self) -> dict[str, Any]:
        """What ``/healthz`` shows (no secret, no sid): ``stack``, ``deployed`` (bool | None:
        not read yet), ``sessions`` (names in the state), ``declared``, ``held``, ``pending``,
        ``rotating`` (session names), ``busy`` (a round runs), ``channelEventsSeen``,
        ``lastSweep`` (ISO 8601 | None), ``failures`` (rounds failed in a row), ``lockWaits``
        (waits in a row for another update's lock), ``lastError`` (str | None), and with
        replicas ``replica`` (``ReplicaSet.status``: this replica, its role, the lease's
        holder, the store and whether it answers)."""
        replica = self.replicas.status() if self.replicas is not None else None
        with self._lock:
            queue, intake = self.queue, self.intake
            return {
                **({"replica": replica} if replica is not None else {}),
                "stack": self.ops.stack,
                "deployed": intake.deployed,
                "sessions": sorted(intake.records),
                "declared": sorted(intake.declared_names),
                "held": sorted(queue.held),
                "pending": sorted(queue.pending()),
                "rotating": sorted(queue.rotation_windows),
                "busy": queue.in_round,
                "channelEventsSeen": self.presence.seen_any,
                "lastSweep": _iso(queue.last_sweep),
                "failures": queue.failures.attempts,
                "lockWaits": queue.lock_waits.attempts,
                "lastError": queue.last_error,
            }

    # -- the loop (one thread) ------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Run rounds until ``stop`` (``threading.Event``) is set.  Once it is, the stack
        operation in progress finishes (``snapshot-resources reconcile`` interrupts it when a
        SIGTERM's grace runs out) and no further one starts: the rest of the round is given up,
        its work left for the next process (nothing is lost: the state and Agora hold it)."""
        self.round.stop = stop
        while not stop.is_set():
            wait = self.step()
            if wait > 0 and not stop.is_set():
                self._wake.wait(wait)
                self._wake.clear()

    def wake(self) -> None:
        """Make ``run`` look for work now (``stop`` handlers call it after setting the event)."""
        self._wake.set()

    def step(self) -> float:
        """One round if anything is due (``round`` module); returns the seconds until the next
        thing is due (0 after a round).  Stack errors are caught, logged and retried later."""
        now = self._clock()
        if not self._may_act():
            return self._follow(now)
        with self._lock:
            backoff = self.queue.backoff_left(now)
            if backoff is not None:
                return backoff
            self._fire_timers(now)
            taken = self.queue.take(now, reread=self._reread_due(now))
            if taken is None:
                return self._next_due(now)
            if not isinstance(taken, Batch):
                return taken
            self.queue.in_round = True
        try:
            if taken.reread_only:
                self._rematch()
            else:
                self.round.run(taken)
        except StoppingError:
            self._requeue(taken)
            decision("abandon", "stopping: the rest of the round is given up, its work left to the "
                     "state and Agora")
            return 0.0
        except StackBusyError as error:
            self._requeue(taken)
            self._wait_for_lock(error)
            return 0.0
        except StackOperationError as error:
            self._requeue(taken)
            self._failed(error)
            return 0.0
        finally:
            with self._lock:
                self.queue.in_round = False
        with self._lock:
            self.queue.succeeded()
            self.metrics.consecutive_failures.set(0)
        return 0.0

    def _may_act(self) -> bool:
        """Whether this process runs stack operations now (always, without replicas); on
        becoming the leader, the sweep is timed from the last one any replica made."""
        if self.replicas is None:
            return True
        acting = self.replicas.may_act()
        if acting and not self._acting and self.replicas.role is Role.LEADER:
            last = self.replicas.last_sweep()
            with self._lock:
                if last is not None:
                    self.queue.sweep_at = max(self.queue.sweep_at, last + self.settings.interval)
            decision("lead", "this replica holds the stack's lease: it runs the stack "
                     "operations now", replica=self.replicas.replica)
        self._acting = acting
        return acting

    def _follow(self, now: float) -> float:
        """A replica that does not act: timers and notifications are kept as by the leader
        (its work stays queued for a takeover), and the state is read to match them."""
        assert self.replicas is not None
        last = self.replicas.last_sweep()  # the leader's: alerts on the last sweep hold here too
        with self._lock:
            ours = self.queue.last_sweep
            if last is not None and (ours is None or last > ours):
                self.queue.last_sweep = last
                self.metrics.last_sweep.set(last)
            self._fire_timers(now)
            reread = self.intake.needs_reread(now, self.settings.state_poll)
        if reread:
            try:
                self._rematch()
            except StackOperationError as error:
                log.info("replica: reading the state failed: %s", _first_line(error))
        return _FOLLOWER_WAIT

    def sweep_once(self, *, lock_waits: int = 10) -> bool:
        """One sweep now (``--once``); True when it succeeded.  A stack locked by another
        update is waited for, with the same backoff as ``run``, at most ``lock_waits`` (int)
        times; a failed sweep is not retried."""
        self.request_sweep()
        while True:
            wait = self.step()
            with self._lock:
                if self.queue.failures.attempts:
                    return False
                if self.queue.lock_waits.attempts == 0 and self.queue.sweep_at > 0:
                    return True
                if self.queue.lock_waits.attempts > lock_waits:
                    return False
            time.sleep(wait)

    # -- notifications (under the lock) ---------------------------------------------------------

    def _facts(self, cause: Cause, *, cname: str | None, **known: Any) -> Facts:
        """What the controller knows for ``restart_action``: the idle policy and the channel's
        broadcaster, with the facts ``known`` of the moment."""
        return Facts(cause, idle_policy=self.settings.idle_policy,
                     channel_events_seen=self.presence.seen_any,
                     broadcaster=self.presence.occupied(cname) if cname is not None else None,
                     **known)

    def _on_channel(self, notice: ChannelNotice) -> None:
        # Recorders are not hosts: the uids of every session seen on this channel, including
        # a held one no longer in the state.
        recorders = self.intake.recorders_on(notice.cname)
        if not recorders:  # no session of this stack uses the channel: only proof of delivery
            self.presence.note_seen()
            return
        self.presence.apply(notice, ignore=recorders)
        occupied = self.presence.occupied(notice.cname)
        now = self._clock()
        if occupied:
            for name in [n for n, w in self.queue.held.items() if w.cname == notice.cname]:
                work = self.queue.held[name]
                if restart_action(self._facts(work.cause, cname=work.cname)) \
                        is not Action.RESTART:
                    continue
                del self.queue.held[name]
                decision("release", f"channel has a broadcaster again (uid {notice.uid}); "
                         "restarting", session=name, seconds=now - work.since, cause="idle")
                # The restart is timed from the broadcaster's return: before it, the session
                # waited on purpose.
                self.queue.restarts[name] = Work(work.cause, work.sid, now, work.cname,
                                                 work.forgotten)
                self._wake.set()
        elif occupied is False:
            for name in list(self.queue.rotation_windows):
                record = self.intake.records.get(name)
                if record is not None and record.cname == notice.cname:
                    self._rotate_now(name, _EMPTY_CHANNEL)
        self._gauges()

    def _on_recording(self, notice: NcsEvent, received: float) -> str:
        meaning, matched, read_now = self.intake.correlate(notice, received)
        if read_now:
            self._wake.set()
        if isinstance(meaning, Exit):
            self._on_exit(meaning)
        elif isinstance(meaning, Capture):
            self._on_capture(meaning)
        elif isinstance(meaning, Failover):
            decision("failover", "Agora moved the task to another recorder (NCS 12); nothing "
                     "to do", session=meaning.record.name, sid=notice.sid)
        return "accepted" if matched else "unmatched"

    def _on_exit(self, exit_: Exit) -> None:
        record, sid, cause = exit_.record, exit_.notice.sid, exit_.cause
        name = record.name
        work = Work(cause, sid, exit_.received, record.cname)
        self.queue.cancel_rotation(name)
        declared = self.intake.is_declared(name)
        action = restart_action(self._facts(cause, cname=record.cname, ours=exit_.ours,
                                            declared=declared))
        if action is Action.IGNORE:
            why = ("the task this reconciler's rotation replaced has exited" if exit_.ours else
                   f"task ended ({cause.value}), but the session is not declared in the program")
            decision("ignore", why, session=name, sid=sid, cause=cause.value)
        elif action is Action.CHECK:
            decision("check", _EXIT_WHY[action], session=name, sid=sid, cause=cause.value)
            self.queue.checks[name] = work
        elif action is Action.HOLD:
            decision("hold", _EXIT_WHY[action], session=name, sid=sid, cause=cause.value)
            self.queue.held[name] = work
        else:
            decision("restart", f"its task ended ({cause.value}): forgetting it and starting a "
                     "new one", session=name, sid=sid, cause=cause.value)
            self.queue.restarts[name] = work
        self._gauges()
        self._wake.set()

    def _on_capture(self, capture: Capture) -> None:
        name, notice, received = capture.name, capture.notice, capture.received
        try:
            parsed = snapshot_name(notice)
        except (NotificationBodyError, ValueError):
            parsed = None
        taken = parsed.taken_at.timestamp() if parsed is not None else notice.sendts / 1000
        captures = self.intake.captures
        last = captures.get(name)
        if last is None or taken > last:
            captures[name] = taken
            self.metrics.last_capture.labels(name).set(taken)
            if last is not None:
                self.metrics.capture_gap.labels(name).set(taken - last)
        successor = self.intake.successors.get(name)
        if successor is not None and notice.sid != successor.old_sid:
            del self.intake.successors[name]
            gap = taken - last if last is not None else None
            decision("first_snapshot", f"first snapshot after the {successor.what} "
                     f"({successor.cause}); capture gap {_seconds(gap)}", session=name,
                     seconds=received - successor.since, sid=notice.sid, gap=gap,
                     cause=successor.cause)
        pending = self.queue.rotation_windows.get(name)
        if pending is not None and notice.sid == pending.sid:
            self._rotate_now(name, "just after a snapshot: the next one is a whole capture "
                             "interval away")

    def _rotate_now(self, name: str, why: str) -> None:
        self.queue.choose_moment(name, why)
        self._wake.set()

    def _rematch(self) -> None:
        """Read the state, then act on the exits of sids it now holds; drop the others (an old
        task of a replaced or deleted session)."""
        self.round.export()
        with self._lock:
            for notice, received in self.intake.rematch():
                self._on_recording(notice, received)

    # -- after a round ----------------------------------------------------------------------------

    def _requeue(self, batch: Batch) -> None:
        with self._lock:
            self.queue.requeue(batch)

    def _wait_for_lock(self, error: StackBusyError) -> None:
        with self._lock:
            delay = self.queue.locked(self._clock(), _first_line(error))
            waits = self.queue.lock_waits.attempts
        decision("wait", "the stack is locked by another update (someone's `pulumi up`?): "
                 "waiting for it, never breaking it", seconds=delay, attempt=waits)

    def _failed(self, error: StackOperationError) -> None:
        # What the program declares may be what changed (a session removed: its targeted up
        # fails): ask the program again at the next round.
        self.round.invalidate_declared()
        with self._lock:
            delay = self.queue.failed(self._clock(), _first_line(error))
            failures = self.queue.failures.attempts
            self.metrics.consecutive_failures.set(failures)
        decision("backoff", f"a stack operation failed: {error}; retrying with the work kept",
                 seconds=delay, level=logging.ERROR, failures=failures)

    # -- timers (under the lock) ------------------------------------------------------------------

    def _reread_due(self, now: float) -> bool:
        return self.intake.has_orphans() or self.intake.needs_reread(now,
                                                                     self.settings.state_poll)

    def _fire_timers(self, now: float) -> None:
        queue = self.queue
        for record in self.intake.records.values():
            name = record.name
            if name in queue.held or name in queue.restarts:
                continue
            for timer in session_timers(record, token_grace=self.settings.token_grace):
                key = (name, record.sid, timer.cause.value)
                if timer.at <= now and key not in queue.fired:
                    queue.fired.add(key)
                    if restart_action(Facts(timer.cause)) is Action.CHECK:
                        decision("check", "its token expired and no exit notification came: "
                                 "refreshing it", session=name, sid=record.sid,
                                 cause=timer.cause.value)
                        queue.checks.setdefault(name, Work(timer.cause, record.sid, now))
            self._fire_rotation(record, now)
        for name, pending in list(queue.rotation_windows.items()):
            if now >= pending.window.deadline:
                self._rotate_now(name, "its deadline (half the margin before the end)")

    def _fire_rotation(self, record: SessionRecord, now: float) -> None:
        name = record.name
        queue = self.queue
        margin = self.settings.rotate_before
        # A given token is refused by the program (every `up` of the stack, also targeted
        # ones) once it has less than rules.MIN_TOKEN_REMAINING_SECONDS left: say so before.
        warn_before = max(margin, float(MIN_TOKEN_REMAINING_SECONDS)) + self.settings.interval
        if (record.given_token and record.token_expires_at is not None and margin > 0
                and record.token_expires_at - warn_before <= now
                and (name, record.sid) not in queue.reported):
            queue.reported.add((name, record.sid))
            decision("cannot_rotate", "its token is given in the stack file: a replacement "
                     "would get the same token, and with less than "
                     f"{MIN_TOKEN_REMAINING_SECONDS} s left the program refuses it, which fails "
                     "every `pulumi up` of the stack; put a new token in the stack file (the "
                     "reconciler never changes config)", session=name, sid=record.sid,
                     level=logging.WARNING,
                     seconds=record.token_expires_at - now)
        window = rotation_window(record, rotate_before=margin)
        key = (name, record.sid, "rotate")
        if window is None or now < window.opens_at or key in queue.fired \
                or name in queue.checks or name in queue.rotations_due:
            return
        queue.fired.add(key)
        queue.rotation_windows[name] = PendingRotation(record.sid, window)
        decision("rotate_wait", f"its {window.kind.value} ends in {window.ends_at - now:.0f} s: "
                 "replacing it at a good moment (after a snapshot, or when its channel is "
                 "empty), at the latest at the deadline", session=name, sid=record.sid,
                 seconds=max(0.0, window.deadline - now), cause=window.kind.value)
        if self.presence.occupied(record.cname) is False:
            self._rotate_now(name, _EMPTY_CHANNEL)

    def _next_due(self, now: float) -> float:
        queue = self.queue
        times = [queue.sweep_at, self.intake.exported_at + self.settings.state_poll,
                 *(r.window.deadline for r in queue.rotation_windows.values())]
        for record in self.intake.records.values():
            if record.name in queue.held or record.name in queue.restarts:
                continue
            times += [t.at for t in session_timers(record, token_grace=self.settings.token_grace)
                      if (record.name, record.sid, t.cause.value) not in queue.fired]
            window = rotation_window(record, rotate_before=self.settings.rotate_before)
            if window is not None and (record.name, record.sid, "rotate") not in queue.fired:
                times.append(window.opens_at)
        return min(max(min(times) - now, 0.05), MAX_WAIT)

    def _gauges(self) -> None:
        declared = self.intake.declared_names
        records = self.intake.records
        queue = self.queue
        ended = {*queue.held, *queue.restarts, *queue.checks}
        gauge = self.metrics.sessions
        gauge.labels("declared").set(len(declared))
        gauge.labels("in_state").set(len(records))
        gauge.labels("running").set(
            len([n for n in records if n in declared and n not in ended]))
        gauge.labels("held").set(len(queue.held))
        gauge.labels("pending").set(len(queue.pending()))
        gauge.labels("rotating").set(len(queue.rotation_windows))


def _first_line(error: Exception) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


def _seconds(value: float | None) -> str:
    return "unknown (no earlier snapshot seen)" if value is None else f"{value:.2f} s"


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
