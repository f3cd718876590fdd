"""The controller: keeps the declared sessions running, driven by notifications, timers and sweeps.

Inputs, all thread-safe: ``notify(notice)`` (from the receiver: a verified, deduplicated
notification), and its own clock (timers from the state, the periodic sweep).  Output: stack
operations (``StackOps``), one at a time, from one thread (``run``), because Pulumi runs one
update per stack at a time.  Work that arrives while an operation runs, or within
``batch_window`` seconds of the first piece of new work, is coalesced into the next round: ten
sessions that end together are forgotten by one ``pulumi state delete`` and restarted by one
``pulumi up``.

One round (``step``), at most one of each stack operation:

1. ``export`` the state (sessions and their sids; a read, no lock).
2. ``refresh`` the sessions to check: on a sweep every session in the state, otherwise the ones
   whose exit was a stop (``stopped``) or whose token-expiry timer fired without a notification
   (``token_check``).  Sessions that refresh drops are restarted (``dropped``).
3. ``forget`` (one ``pulumi state delete``) the sessions Agora reported exited (11
   ``session_exit``), when the state still records that very sid: the task is known gone, so no
   failover grace is waited out (the provider's read would wait ``agora:failoverGrace``,
   docs/engine.md item 8).  A session that ended on idle and waits for a broadcaster is forgotten
   at once too, so that its restart is a single ``up`` when the broadcaster returns.
4. ``up`` targeted at the declared sessions missing from the state (except those held for a
   broadcaster, ``decisions.waits_for_broadcaster``), with ``--replace`` for the sessions being
   rotated (``decisions.rotation_window``).

Only sessions the program declares (``declared.ProgramSessions``) are acted on, and nothing is done to a stack
that holds no resources (never deployed, or destroyed): the reconciler does not undo a
``destroy``.  A stack locked by another update (``StackBusyError``) is waited for with its own
backoff (``busy_delay`` doubling up to ``max_busy_delay``), not counted as a failure; a failed
round is retried with exponential backoff (``retry_delay`` doubling up to ``max_retry_delay``),
reported in the log, ``/healthz`` and ``snapshot_reconcile_consecutive_failures``.  Every
decision is one structured log line (``report.decision``).  The controller keeps nothing that
the state and Agora's notifications cannot give back after a restart (docs/reconcile.md): what it
holds in memory (channel hosts, leave codes, held sessions, capture times) only makes it faster
or quieter.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from snapshot_resources.events import NcsEvent, NotificationBodyError, snapshot_name
from snapshot_resources.reconcile.confirm import TaskQuery, TaskState
from snapshot_resources.reconcile.decisions import (
    TOKEN_EXPIRED_CODE,
    Cause,
    IdlePolicy,
    RotationWindow,
    exit_cause,
    rotation_window,
    session_timers,
    waits_for_broadcaster,
)
from snapshot_resources.reconcile.declared import Invalidatable
from snapshot_resources.reconcile.inventory import (
    SessionRecord,
    has_resources,
    session_urn,
    sessions_from_export,
)
from snapshot_resources.reconcile.metrics import ReconcileMetrics
from snapshot_resources.reconcile.notices import (
    RECORDER_LEAVE,
    SESSION_EXIT,
    ChannelNotice,
    Notice,
)
from snapshot_resources.reconcile.presence import ChannelPresence
from snapshot_resources.reconcile.replicas import ReplicaSet, Role
from snapshot_resources.reconcile.report import decision
from snapshot_resources.reconcile.stack_ops import StackBusyError, StackOperationError, StackOps
from snapshot_resources.rules import MIN_TOKEN_REMAINING_SECONDS

__all__ = ["Controller", "ControllerSettings"]

log = logging.getLogger("snapshot_resources.reconcile")

_SIDS_KEPT: Final = 10_000  # sids whose 41 leaveCode or 109 error is remembered until their 11
_ORPHANS_KEPT: Final = 1_000  # exits of sids not in the cached state, matched after a re-export
_MAX_WAIT: Final = 60.0  # the loop looks at its clock at least this often (seconds)
_CLOUD_RECORDING_ERROR: Final = 1  # NCS 1 cloud_recording_error (S12)
_SESSION_FAILOVER: Final = 12  # NCS 12 session_failover (S12)
_SNAPSHOT_FILE: Final = 45  # NCS 45 recorder_snapshot_file (S12)
_FOLLOWER_WAIT: Final = 1.0  # a replica that does not act looks at its lease this often
_T = TypeVar("_T")


@dataclass(frozen=True)
class ControllerSettings:
    """How the controller runs (``snapshot-resources reconcile`` flags of the same names).

    ``interval`` (float, s, default 900, > 0): between sweeps (refresh every session, then up
    what is missing); the first sweep runs at start.  ``rotate_before`` (float, s, default 600,
    >= 0; 0 turns rotation off): rotate a session whose token or resource ID ends within this
    margin (``decisions.rotation_window``).  ``state_poll`` (float, s, default 60, > 0): the
    state is read again (``pulumi stack export``: a read, no lock, no engine) at least this
    often, so that timers follow the sessions someone else's ``pulumi up`` created; a
    notification about a sid the state does not hold makes it read at once.  ``token_grace``
    (float, s, default 60, >= 0): after a session's ``tokenExpiresAt`` with no exit
    notification, it is refreshed.  ``idle_policy``
    (``IdlePolicy``, default ``auto``).  ``batch_window`` (float, s, default 0.5, >= 0): a round
    starts this long after the first new piece of work, so that a burst of notifications makes
    one round.  ``retry_delay`` (float, s, default 5): first delay after a failed round, doubled
    per failure up to ``max_retry_delay`` (float, s, default 300).  ``busy_delay`` (float, s,
    default 1): first wait for a stack locked by another update, doubled per attempt up to
    ``max_busy_delay`` (float, s, default 30).  Raises ``ValueError`` for a non-positive
    interval or delay, or a negative margin, grace or window.
    """

    interval: float = 900.0
    rotate_before: float = 600.0
    state_poll: float = 60.0
    token_grace: float = 60.0
    idle_policy: IdlePolicy = IdlePolicy.AUTO
    batch_window: float = 0.5
    retry_delay: float = 5.0
    max_retry_delay: float = 300.0
    busy_delay: float = 1.0
    max_busy_delay: float = 30.0

    def __post_init__(self) -> None:
        positive = (self.interval, self.state_poll, self.retry_delay, self.max_retry_delay,
                    self.busy_delay, self.max_busy_delay)
        if not all(value > 0 for value in positive):
            raise ValueError("interval and every delay must be positive")
        if not (self.token_grace >= 0 and self.rotate_before >= 0 and self.batch_window >= 0):
            raise ValueError("token_grace, rotate_before and batch_window must not be negative")


class _StoppingError(StackOperationError):
    """Raised instead of starting a stack operation once ``run``'s stop is set."""


@dataclass(frozen=True)
class _Work:
    """A session to act on: why, which sid ended (None: not known), since when (clock), its
    channel (None: not known), and whether it was already forgotten (a held session)."""

    cause: Cause
    sid: str | None
    since: float
    cname: str | None = None
    forgotten: bool = False


@dataclass(frozen=True)
class _Rotating:
    """A session in its rotation window: the task (``sid``), its window, and, once a moment is
    chosen, why that moment."""

    sid: str
    window: RotationWindow
    why: str | None = None


@dataclass(frozen=True)
class _Successor:
    """A session just started again (restart or rotation), waiting for its first snapshot: what
    started it, when the reconciler learned it had to (clock), and the sid it replaced."""

    what: str
    cause: str
    since: float
    old_sid: str | None


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
        self._tasks = tasks
        self.replicas = replicas
        self.exported = threading.Event()  # set once the state was read (replicas.follow)
        self._acting = replicas is None
        self.settings = settings or ControllerSettings()
        self.metrics = metrics or ReconcileMetrics()
        if replicas is not None:
            self.metrics.registry.register(replicas.collector())
            replicas.on_change(lambda role: self._wake.set())
        self.presence = ChannelPresence()
        self._declared = declared
        self._clock = clock
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._records: dict[str, SessionRecord] = {}
        self._by_sid: dict[str, SessionRecord] = {}
        # (cname, recorder uid) -> session name, for every session ever exported: names the
        # session of a new task's snapshots before an export shows the task's sid.
        self._names_by_task: dict[tuple[str, str], str] = {}
        self._declared_names: frozenset[str] = frozenset()
        self._declared_urns: dict[str, str] = {}
        self._leave_codes: OrderedDict[str, int] = OrderedDict()
        self._token_errors: OrderedDict[str, None] = OrderedDict()
        self._restart: dict[str, _Work] = {}
        self._check: dict[str, _Work] = {}
        self._held: dict[str, _Work] = {}
        self._rotating: dict[str, _Rotating] = {}
        self._rotate: dict[str, _Rotating] = {}
        self._successors: dict[str, _Successor] = {}
        self._own_stops: OrderedDict[str, None] = OrderedDict()  # sids its rotations stop
        self._captures: dict[str, float] = {}  # session -> Unix s of its latest snapshot
        self._fired: set[tuple[str, str, str]] = set()  # (name, sid, timer kind)
        self._reported: set[tuple[str, str]] = set()  # (name, sid): cannot rotate, said once
        # Exits of sids the cached state does not hold (a session created since the last
        # export): matched again after the next export, then forgotten.
        self._orphans: OrderedDict[str, tuple[NcsEvent, float]] = OrderedDict()
        # Sids named by notifications but not in the cached state: read the state again; those
        # still unknown then belong to another stack (or an old task) and are not asked again.
        self._unknown: set[str] = set()
        self._foreign: OrderedDict[str, None] = OrderedDict()
        self._exported_at = -float("inf")
        self._sweep_at = 0.0  # the first round sweeps
        self._batch_at: float | None = None
        self._retry_at = 0.0
        self._failures = 0
        self._busy_waits = 0
        self._deployed: bool | None = None
        self._last_sweep: float | None = None
        self._last_error: str | None = None
        self._busy = False  # a round is running
        self._stop: threading.Event | None = None  # set by ``run``: no operation starts after

    # -- inputs (any thread) --------------------------------------------------------------------

    def notify(self, notice: Notice) -> str:
        """Take one verified, deduplicated notification ``notice``.  Returns its outcome for
        metrics: ``accepted`` (about a session of this stack, or a channel event), ``unmatched``
        (a sid this stack does not hold).  Never blocks on a stack operation."""
        with self._lock:
            if isinstance(notice, ChannelNotice):
                self._on_channel(notice)
                return "accepted"
            return self._on_recording(notice)

    def request_sweep(self) -> None:
        """Sweep at the next round (e.g. on SIGHUP or from a test)."""
        with self._lock:
            self._sweep_at = 0.0
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
            return {
                **({"replica": replica} if replica is not None else {}),
                "stack": self.ops.stack,
                "deployed": self._deployed,
                "sessions": sorted(self._records),
                "declared": sorted(self._declared_names),
                "held": sorted(self._held),
                "pending": sorted({*self._restart, *self._check, *self._rotate}),
                "rotating": sorted(self._rotating),
                "busy": self._busy,
                "channelEventsSeen": self.presence.seen_any,
                "lastSweep": _iso(self._last_sweep),
                "failures": self._failures,
                "lockWaits": self._busy_waits,
                "lastError": self._last_error,
            }

    # -- the loop (one thread) ------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Run rounds until ``stop`` (``threading.Event``) is set.  Once it is, the stack
        operation in progress finishes (``snapshot-resources reconcile`` interrupts it when a
        SIGTERM's grace runs out) and no further one starts: the rest of the round is given up,
        its work left for the next process (nothing is lost: the state and Agora hold it)."""
        self._stop = stop
        while not stop.is_set():
            wait = self.step()
            if wait > 0 and not stop.is_set():
                self._wake.wait(wait)
                self._wake.clear()

    def wake(self) -> None:
        """Make ``run`` look for work now (``stop`` handlers call it after setting the event)."""
        self._wake.set()

    def step(self) -> float:
        """One round if anything is due (module docstring); returns the seconds until the next
        thing is due (0 after a round).  Stack errors are caught, logged and retried later."""
        now = self._clock()
        if not self._may_act():
            return self._follow(now)
        with self._lock:
            if now < self._retry_at:
                return min(self._retry_at - now, _MAX_WAIT)
            sweep = now >= self._sweep_at
            self._fire_timers(now)
            forget_held = {n: w for n, w in self._held.items() if not w.forgotten}
            reread = bool(self._unknown) or now - self._exported_at >= self.settings.state_poll
            work = bool(self._restart or self._check or self._rotate or forget_held
                        or self._orphans or reread)
            if not (sweep or work):
                self._batch_at = None
                return self._next_due(now)
            if not sweep:
                if self._batch_at is None:
                    self._batch_at = now + self.settings.batch_window
                if now < self._batch_at:
                    return self._batch_at - now
            self._batch_at = None
            restart, check, rotate = self._restart, self._check, self._rotate
            self._restart, self._check, self._rotate = {}, {}, {}
            orphans_only = not (sweep or restart or check or rotate or forget_held)
            self._busy = True
        try:
            if orphans_only:
                self._rematch()
            else:
                self._round(sweep, restart, check, rotate, forget_held)
        except _StoppingError:
            self._requeue(sweep, restart, check, rotate)
            decision("abandon", "stopping: the rest of the round is given up, its work left to the "
                     "state and Agora")
            return 0.0
        except StackBusyError as error:
            self._requeue(sweep, restart, check, rotate)
            self._wait_for_lock(error)
            return 0.0
        except StackOperationError as error:
            self._requeue(sweep, restart, check, rotate)
            self._failed(error)
            return 0.0
        finally:
            with self._lock:
                self._busy = False
        with self._lock:
            self._failures = 0
            self._busy_waits = 0
            self._last_error = None
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
                    self._sweep_at = max(self._sweep_at, last + self.settings.interval)
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
            if last is not None and (self._last_sweep is None or last > self._last_sweep):
                self._last_sweep = last
                self.metrics.last_sweep.set(last)
            self._fire_timers(now)
            reread = bool(self._unknown) or now - self._exported_at >= self.settings.state_poll
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
                if self._failures:
                    return False
                if self._busy_waits == 0 and self._sweep_at > 0:
                    return True
                if self._busy_waits > lock_waits:
                    return False
            time.sleep(wait)

    # -- notifications (under the lock) ---------------------------------------------------------

    def _on_channel(self, notice: ChannelNotice) -> None:
        # Recorders are not hosts: the uids of every session seen on this channel, including
        # a held one no longer in the state.
        recorders = {uid for (cname, uid) in self._names_by_task if cname == notice.cname}
        if not recorders:  # no session of this stack uses the channel: only proof of delivery
            self.presence.note_seen()
            return
        self.presence.apply(notice, ignore=recorders)
        occupied = self.presence.occupied(notice.cname)
        now = self._clock()
        if occupied:
            for name in [n for n, w in self._held.items() if w.cname == notice.cname]:
                work = self._held.pop(name)
                decision("release", f"channel has a broadcaster again (uid {notice.uid}); "
                         "restarting", session=name, seconds=now - work.since, cause="idle")
                # The restart is timed from the broadcaster's return: before it, the session
                # waited on purpose.
                self._restart[name] = dataclasses.replace(work, since=now)
                self._wake.set()
        elif occupied is False:
            for name, rotating in list(self._rotating.items()):
                record = self._records.get(name)
                if record is not None and record.cname == notice.cname:
                    self._rotate_now(name, rotating, "its channel has no broadcaster: nothing "
                                     "to lose")
        self._gauges()

    def _on_recording(self, notice: NcsEvent, received: float | None = None) -> str:
        record = self._by_sid.get(notice.sid)
        received = self._clock() if received is None else received
        if record is None and notice.sid not in self._foreign and notice.sid not in self._unknown:
            self._unknown.add(notice.sid)
            self._wake.set()
        if notice.event_type == RECORDER_LEAVE:
            code = notice.details.get("leaveCode")
            if isinstance(code, int) and not isinstance(code, bool):
                _remember(self._leave_codes, notice.sid, code)
        elif notice.event_type == _CLOUD_RECORDING_ERROR \
                and notice.details.get("errorCode") == TOKEN_EXPIRED_CODE:
            _remember(self._token_errors, notice.sid, None)
        elif notice.event_type == _SNAPSHOT_FILE:
            # A new task's first snapshots can come before the export that shows its sid: the
            # channel and recorder uid name the session too.
            owner = record.name if record is not None \
                else self._names_by_task.get((notice.cname, notice.uid))
            if owner is not None:
                self._on_capture(owner, notice, received)
                return "accepted"
        if record is None:
            if notice.event_type == SESSION_EXIT:
                self._orphans[notice.sid] = (notice, received)
                while len(self._orphans) > _ORPHANS_KEPT:
                    self._orphans.popitem(last=False)
                self._wake.set()
            return "unmatched"
        if notice.event_type == SESSION_EXIT:
            self._on_exit(record, notice, received)
        elif notice.event_type == _SESSION_FAILOVER:
            decision("failover", "Agora moved the task to another recorder (NCS 12); nothing "
                     "to do", session=record.name, sid=notice.sid)
        return "accepted"

    def _on_exit(self, record: SessionRecord, notice: NcsEvent, received: float) -> None:
        cause = exit_cause(self._leave_codes.pop(notice.sid, None), notice.sendts / 1000,
                           record.token_expires_at,
                           token_error=self._token_errors.pop(notice.sid, 0) is None)
        work = _Work(cause, notice.sid, received, record.cname)
        name = record.name
        self._rotating.pop(name, None)
        self._rotate.pop(name, None)
        if notice.sid in self._own_stops:
            del self._own_stops[notice.sid]
            decision("ignore", "the task this reconciler's rotation replaced has exited",
                     session=name, sid=notice.sid, cause=cause.value)
        elif name not in self._declared_names and self._declared_names:
            decision("ignore", f"task ended ({cause.value}), but the session is not declared in "
                     "the program", session=name, sid=notice.sid, cause=cause.value)
        elif cause is Cause.STOPPED:
            decision("check", "its task was stopped (leaveCode 16): refreshing before any "
                     "restart, in case someone is replacing or destroying it", session=name,
                     sid=notice.sid, cause=cause.value)
            self._check[name] = work
        elif waits_for_broadcaster(cause, self.settings.idle_policy,
                                   channel_events_seen=self.presence.seen_any,
                                   occupied=self.presence.occupied(record.cname)):
            decision("hold", "ended on idle (leaveCode 4); restarting when its channel has a "
                     "broadcaster again, not into an empty channel", session=name,
                     sid=notice.sid, cause=cause.value)
            self._held[name] = work
        else:
            decision("restart", f"its task ended ({cause.value}): forgetting it and starting a "
                     "new one", session=name, sid=notice.sid, cause=cause.value)
            self._restart[name] = work
        self._gauges()
        self._wake.set()

    def _on_capture(self, name: str, notice: NcsEvent, received: float) -> None:
        try:
            parsed = snapshot_name(notice)
        except (NotificationBodyError, ValueError):
            parsed = None
        taken = parsed.taken_at.timestamp() if parsed is not None else notice.sendts / 1000
        last = self._captures.get(name)
        if last is None or taken > last:
            self._captures[name] = taken
            self.metrics.last_capture.labels(name).set(taken)
            if last is not None:
                self.metrics.capture_gap.labels(name).set(taken - last)
        successor = self._successors.get(name)
        if successor is not None and notice.sid != successor.old_sid:
            del self._successors[name]
            gap = taken - last if last is not None else None
            decision("first_snapshot", f"first snapshot after the {successor.what} "
                     f"({successor.cause}); capture gap {_seconds(gap)}", session=name,
                     seconds=received - successor.since, sid=notice.sid, gap=gap,
                     cause=successor.cause)
        rotating = self._rotating.get(name)
        if rotating is not None and notice.sid == rotating.sid:
            self._rotate_now(name, rotating, "just after a snapshot: the next one is a whole "
                             "capture interval away")

    def _rotate_now(self, name: str, rotating: _Rotating, why: str) -> None:
        del self._rotating[name]
        self._rotate[name] = dataclasses.replace(rotating, why=why)
        self._wake.set()

    def _rematch(self) -> None:
        """Export, then act on the exits of sids the state now holds; drop the others (an old
        task of a replaced or deleted session)."""
        self._export()
        with self._lock:
            for sid in self._unknown - set(self._by_sid):
                _remember(self._foreign, sid, None)
            self._unknown.clear()
            orphans, self._orphans = self._orphans, OrderedDict()
            for notice, received in orphans.values():
                if notice.sid in self._by_sid:
                    self._on_recording(notice, received)

    # -- a round ----------------------------------------------------------------------------------

    def _round(self, sweep: bool, restart: dict[str, _Work], check: dict[str, _Work],
               rotate: dict[str, _Rotating], forget_held: dict[str, _Work]) -> None:
        started = self._clock()
        records = self._export()
        if records is None:  # nothing deployed: leave the stack alone
            with self._lock:
                self._sweep_at = self._clock() + self.settings.interval
                # Nothing is left to forget (a destroy removed it): without this, a held session
                # would ask for a round, and an export, every batch window.
                self._held = {n: dataclasses.replace(w, forgotten=True)
                              for n, w in self._held.items()}
            return
        declared = self._read_declared(sweep)
        restart = {n: w for n, w in restart.items() if n in declared}
        check = {n: w for n, w in check.items() if n in declared}
        records, check = self._refresh(sweep, records, declared, restart, check)
        records = self._forget(records, restart, forget_held)
        starting: dict[str, _Work] = {**check, **restart}
        with self._lock:
            held = set(self._held)
        missing = sorted(n for n in declared - set(records) if n not in held)
        rotating = {n: r for n, r in sorted(rotate.items())
                    if n in declared and n in records and records[n].sid == r.sid}
        for name in sorted(set(rotate) - set(rotating)):
            decision("ignore", "rotation no longer needed: the task was replaced or removed "
                     "meanwhile", session=name, sid=rotate[name].sid)
        if missing or rotating:
            records = self._up(records, missing, rotating, starting)
        with self._lock:
            self._set_records(records)
            if sweep:
                self._last_sweep = self._clock()
                self._sweep_at = self._last_sweep + self.settings.interval
                self.metrics.last_sweep.set(self._last_sweep)
            self._gauges()
        if sweep and self.replicas is not None and self._last_sweep is not None:
            self.replicas.note_sweep(self._last_sweep)
        if sweep:
            decision("sweep", "periodic safety net: refreshed every session, started what "
                     "was missing", seconds=self._clock() - started,
                     sessions=len(records), next_in=self.settings.interval)

    def _refresh(self, sweep: bool, records: dict[str, SessionRecord], declared: frozenset[str],
                 restart: dict[str, _Work], check: dict[str, _Work],
                 ) -> tuple[dict[str, SessionRecord], dict[str, _Work]]:
        """Refresh what needs Agora's word; returns the records after it and the sessions to
        start because the refresh dropped them."""
        for name, work in list(check.items()):
            record = records.get(name)
            if record is not None and work.sid is not None and record.sid != work.sid:
                decision("ignore", "the task to check was replaced meanwhile (a new sid in the "
                         "state)", session=name, sid=work.sid)
                del check[name]
        to_refresh = set(records) if sweep else {n for n in check if n in records}
        if not to_refresh:
            return records, check
        before = records
        urns = [before[n].urn for n in sorted(to_refresh)]
        seconds = self._timed("refresh", lambda: self.ops.refresh(urns))
        records = self._export() or {}
        learned = self._clock()
        with self._lock:
            held = dict(self._held)
        for name in sorted(to_refresh):
            if name in records:
                if name in check:
                    decision("keep", "the refresh found its task running", session=name,
                             seconds=seconds, sid=records[name].sid)
                    del check[name]
                continue
            if name in held:
                with self._lock:
                    if name in self._held:
                        self._held[name] = dataclasses.replace(self._held[name], forgotten=True)
                continue
            if name in declared and name not in check and name not in restart:
                decision("restart", "the refresh found its task gone (no notification came)",
                         session=name, seconds=seconds, sid=before[name].sid,
                         cause=Cause.DROPPED.value)
                check[name] = _Work(Cause.DROPPED, before[name].sid, learned)
        return records, check

    def _forget(self, records: dict[str, SessionRecord], restart: dict[str, _Work],
                forget_held: dict[str, _Work]) -> dict[str, SessionRecord]:
        """One ``state delete`` of the ended sessions whose sid the state still records."""
        gone: dict[str, SessionRecord] = {}
        for name, work in sorted({**forget_held, **restart}.items()):
            record = records.get(name)
            if record is None:
                continue
            if record.sid != work.sid:
                decision("ignore", "the ended task was already replaced (a new sid in the "
                         "state): nothing to restart", session=name, sid=work.sid)
                restart.pop(name, None)
                if name in forget_held:
                    with self._lock:
                        self._held.pop(name, None)
                continue
            gone[name] = record
        gone = self._confirmed(gone, restart, forget_held)
        if gone:
            seconds = self._timed("forget", lambda: self.ops.forget(
                [gone[n].urn for n in sorted(gone)]))
            for name in sorted(gone):
                decision("forgotten", "Agora reported its task exited (NCS 11): removed from the "
                         "state without waiting out a failover grace", session=name,
                         seconds=seconds, sid=gone[name].sid)
            records = {n: r for n, r in records.items() if n not in gone}
        with self._lock:
            for name in forget_held:
                if name in self._held and (name in gone or name not in records):
                    self._held[name] = dataclasses.replace(self._held[name], forgotten=True)
        return records

    def _confirmed(self, gone: dict[str, SessionRecord], restart: dict[str, _Work],
                   forget_held: dict[str, _Work]) -> dict[str, SessionRecord]:
        """The sessions of ``gone`` whose task Agora confirms is gone (``confirm``); the others
        are kept (running) or refreshed at the next round (no answer)."""
        if self._tasks is None or not gone:
            return gone
        verdicts = self._tasks.states([gone[n] for n in sorted(gone)])
        confirmed: dict[str, SessionRecord] = {}
        for name, record in sorted(gone.items()):
            verdict = verdicts.get(record.sid)
            state = verdict.state if verdict is not None else TaskState.UNKNOWN
            why = verdict.why if verdict is not None else "no answer"
            self.metrics.exit_checks.labels(state.value).inc()
            if state is TaskState.GONE:
                confirmed[name] = record
                continue
            work = restart.pop(name, None) or forget_held[name]
            with self._lock:
                self._held.pop(name, None)
                if state is TaskState.UNKNOWN:
                    self._check.setdefault(name, dataclasses.replace(work, forgotten=False))
                    self._wake.set()
            if state is TaskState.RUNNING:
                decision("keep", f"Agora says its task still runs ({why}): the exit "
                         "notification is not acted on", session=name, sid=record.sid,
                         cause=work.cause.value)
            else:
                decision("check", f"the exit could not be confirmed with Agora ({why}): "
                         "refreshing it instead of forgetting it", session=name,
                         sid=record.sid, cause=work.cause.value)
        return confirmed

    def _up(self, records: dict[str, SessionRecord], missing: list[str],
            rotating: dict[str, _Rotating], starting: dict[str, _Work],
            ) -> dict[str, SessionRecord]:
        with self._lock:
            targets = [self._declared_urns[n] for n in missing]
        replace = [records[n].urn for n in rotating]
        began = self._clock()
        works = {n: starting.get(n) or _Work(Cause.MISSING, None, began) for n in missing}
        with self._lock:
            # Registered before the up: the new task's first snapshot can land before it ends
            # (the provider waits for the task to run, status 5 follows the first upload).
            for name, work in works.items():
                what = "create" if work.cause is Cause.MISSING else "restart"
                self._successors[name] = _Successor(what, work.cause.value, work.since,
                                                    work.sid)
            for name, rotation in rotating.items():
                self._successors[name] = _Successor("rotation", rotation.window.kind.value,
                                                    began, rotation.sid)
                _remember(self._own_stops, rotation.sid, None)
        try:
            seconds = self._timed("up", lambda: self.ops.up([*targets, *replace], replace))
        except StackOperationError:
            with self._lock:
                for name in [*missing, *rotating]:
                    self._successors.pop(name, None)
                # Not stopped by us after all: a later exit of that task is a real end.
                for rotation in rotating.values():
                    self._own_stops.pop(rotation.sid, None)
            raise
        after = self._export() or {}
        done = self._clock()
        with self._lock:
            for name, work in works.items():
                if name not in after:
                    self._successors.pop(name, None)
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
            for name, rotation in rotating.items():
                if name not in after or after[name].sid == rotation.sid:
                    self._successors.pop(name, None)
                    continue
                kind = rotation.window.kind.value
                self.metrics.rotations.labels(kind).inc()
                decision("rotated", f"replaced {rotation.window.ends_at - done:.0f} s before "
                         f"its {kind} ended; moment chosen: {rotation.why}", session=name,
                         seconds=seconds, sid=after[name].sid, old_sid=rotation.sid, cause=kind)
        return after

    def _export(self) -> dict[str, SessionRecord] | None:
        document = self._timed_value("export", self.ops.export)
        deployed = has_resources(document)
        with self._lock:
            self._exported_at = self._clock()
            self.exported.set()
            if deployed != self._deployed and not deployed:
                decision("ignore", "the stack holds no resources (never deployed, or "
                         "destroyed): nothing to keep alive until someone runs `pulumi up`",
                         level=logging.WARNING)
            self._deployed = deployed
        if not deployed:
            with self._lock:
                self._set_records({})
            return None
        records = sessions_from_export(document)
        with self._lock:
            self._set_records(records)
        return dict(records)

    def _read_declared(self, sweep: bool) -> frozenset[str]:
        if sweep:
            self._invalidate_declared()
        found = self._declared()
        if isinstance(found, Mapping):
            urns = {str(name): str(urn) for name, urn in found.items()}
        else:
            urns = {name: session_urn(self.ops.stack, self.ops.project, name) for name in found}
        declared = frozenset(urns)
        with self._lock:
            self._declared_names = declared
            self._declared_urns = urns
        return declared

    def _invalidate_declared(self) -> None:
        if isinstance(self._declared, Invalidatable):
            self._declared.invalidate()

    def _timed(self, operation: str, call: Callable[[], None]) -> float:
        started = time.monotonic()
        self._timed_value(operation, call)
        return time.monotonic() - started

    def _timed_value(self, operation: str, call: Callable[[], _T]) -> _T:
        if self._stop is not None and self._stop.is_set():
            raise _StoppingError(operation)
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

    def _requeue(self, sweep: bool, restart: dict[str, _Work], check: dict[str, _Work],
                 rotate: dict[str, _Rotating]) -> None:
        with self._lock:
            # Work that arrived meanwhile is newer: keep it, add back the rest.
            self._restart = {**restart, **self._restart}
            self._check = {**check, **self._check}
            self._rotate = {**rotate, **self._rotate}
            if sweep:
                self._sweep_at = 0.0

    def _wait_for_lock(self, error: StackBusyError) -> None:
        with self._lock:
            self._busy_waits += 1
            delay = _doubling(self.settings.busy_delay, self.settings.max_busy_delay,
                              self._busy_waits)
            self._retry_at = self._clock() + delay
            self._last_error = _first_line(error)
            waits = self._busy_waits
        decision("wait", "the stack is locked by another update (someone's `pulumi up`?): "
                 "waiting for it, never breaking it", seconds=delay, attempt=waits)

    def _failed(self, error: StackOperationError) -> None:
        # What the program declares may be what changed (a session removed: its targeted up
        # fails): ask the program again at the next round.
        self._invalidate_declared()
        with self._lock:
            self._failures += 1
            delay = _doubling(self.settings.retry_delay, self.settings.max_retry_delay,
                              self._failures)
            self._retry_at = self._clock() + delay
            self._last_error = _first_line(error)
            failures = self._failures
            self.metrics.consecutive_failures.set(failures)
        decision("backoff", f"a stack operation failed: {error}; retrying with the work kept",
                 seconds=delay, level=logging.ERROR, failures=failures)

    # -- helpers (under the lock) ---------------------------------------------------------------

    def _set_records(self, records: Mapping[str, SessionRecord]) -> None:
        self._records = dict(records)
        self._by_sid = {r.sid: r for r in records.values()}
        self._names_by_task.update({(r.cname, r.uid): r.name for r in records.values()})
        live = {(r.name, r.sid) for r in records.values()}
        self._fired = {f for f in self._fired if (f[0], f[1]) in live}
        self._rotating = {n: r for n, r in self._rotating.items() if (n, r.sid) in live}

    def _fire_timers(self, now: float) -> None:
        for record in self._records.values():
            name = record.name
            if name in self._held or name in self._restart:
                continue
            for timer in session_timers(record, token_grace=self.settings.token_grace):
                key = (name, record.sid, timer.cause.value)
                if timer.at <= now and key not in self._fired:
                    self._fired.add(key)
                    decision("check", "its token expired and no exit notification came: "
                             "refreshing it", session=name, sid=record.sid,
                             cause=timer.cause.value)
                    self._check.setdefault(name, _Work(timer.cause, record.sid, now))
            self._fire_rotation(record, now)
        for name, rotating in list(self._rotating.items()):
            if now >= rotating.window.deadline:
                self._rotate_now(name, rotating, "its deadline (half the margin before the end)")

    def _fire_rotation(self, record: SessionRecord, now: float) -> None:
        name = record.name
        margin = self.settings.rotate_before
        # A given token is refused by the program (every `up` of the stack, also targeted
        # ones) once it has less than rules.MIN_TOKEN_REMAINING_SECONDS left: say so before.
        warn_before = max(margin, float(MIN_TOKEN_REMAINING_SECONDS)) + self.settings.interval
        if (record.given_token and record.token_expires_at is not None and margin > 0
                and record.token_expires_at - warn_before <= now
                and (name, record.sid) not in self._reported):
            self._reported.add((name, record.sid))
            decision("cannot_rotate", "its token is given in the stack file: a replacement "
                     "would get the same token, and with less than "
                     f"{MIN_TOKEN_REMAINING_SECONDS} s left the program refuses it, which fails "
                     "every `pulumi up` of the stack; put a new token in the stack file (the "
                     "reconciler never changes config)", session=name, sid=record.sid,
                     level=logging.WARNING,
                     seconds=record.token_expires_at - now)
        window = rotation_window(record, rotate_before=margin)
        key = (name, record.sid, "rotate")
        if window is None or now < window.opens_at or key in self._fired \
                or name in self._check or name in self._rotate:
            return
        self._fired.add(key)
        rotating = _Rotating(record.sid, window)
        self._rotating[name] = rotating
        decision("rotate_wait", f"its {window.kind.value} ends in {window.ends_at - now:.0f} s: "
                 "replacing it at a good moment (after a snapshot, or when its channel is "
                 "empty), at the latest at the deadline", session=name, sid=record.sid,
                 seconds=max(0.0, window.deadline - now), cause=window.kind.value)
        if self.presence.occupied(record.cname) is False:
            self._rotate_now(name, rotating, "its channel has no broadcaster: nothing to lose")

    def _next_due(self, now: float) -> float:
        times = [self._sweep_at, self._exported_at + self.settings.state_poll,
                 *(r.window.deadline for r in self._rotating.values())]
        for record in self._records.values():
            if record.name in self._held or record.name in self._restart:
                continue
            times += [t.at for t in session_timers(record, token_grace=self.settings.token_grace)
                      if (record.name, record.sid, t.cause.value) not in self._fired]
            window = rotation_window(record, rotate_before=self.settings.rotate_before)
            if window is not None and (record.name, record.sid, "rotate") not in self._fired:
                times.append(window.opens_at)
        return min(max(min(times) - now, 0.05), _MAX_WAIT)

    def _gauges(self) -> None:
        declared = self._declared_names
        ended = {*self._held, *self._restart, *self._check}
        gauge = self.metrics.sessions
        gauge.labels("declared").set(len(declared))
        gauge.labels("in_state").set(len(self._records))
        gauge.labels("running").set(
            len([n for n in self._records if n in declared and n not in ended]))
        gauge.labels("held").set(len(self._held))
        gauge.labels("pending").set(len({*self._restart, *self._check, *self._rotate}))
        gauge.labels("rotating").set(len(self._rotating))


def _remember(memory: OrderedDict[str, Any], sid: str, value: Any) -> None:
    memory[sid] = value
    while len(memory) > _SIDS_KEPT:
        memory.popitem(last=False)


def _doubling(first: float, cap: float, attempt: int) -> float:
    """Seconds to wait before try ``attempt + 1``: ``first``, doubled per attempt, at most
    ``cap``."""
    return min(first * 2.0 ** (attempt - 1), cap)


def _first_line(error: Exception) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


def _seconds(value: float | None) -> str:
    return "unknown (no earlier snapshot seen)" if value is None else f"{value:.2f} s"


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
