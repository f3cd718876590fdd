"""The reconciler's intake: what it knows of the stack (the state's sessions, the declared ones)
and the correlation of Cloud Recording notifications with it.

A notification names a task by its sid; the intake finds the session whose task that is, keeps
what comes before a task's exit (the 41's ``leaveCode``, a 1 with ``errorCode`` 109) until the
exit (11) arrives, and classifies the exit (``decisions.exit_cause``).  Exits of sids the state
does not hold yet (a session created since the last read) are kept and matched again after the
next read; sids still unknown then belong to something else and are not asked about again.  A
snapshot (45) names its session by sid, or by channel and recorder uid for a new task whose sid
no read has shown yet.

Not thread-safe on its own: the controller calls it under its lock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from snapshot_resources.events import TOKEN_EXPIRED_ERROR_CODE, NcsEvent, RecordingEvent
from snapshot_resources.reconcile.decisions import Cause, exit_cause
from snapshot_resources.reconcile.inventory import SessionRecord

__all__ = ["Capture", "Exit", "Failover", "Intake", "Successor"]

SIDS_KEPT: Final = 10_000  # sids whose 41 leaveCode or 109 error is remembered until their 11
ORPHANS_KEPT: Final = 1_000  # exits of sids not in the state read last, matched after a re-read


@dataclass(frozen=True)
class Exit:
    """An exit (11) of the task of session ``record``: its ``cause``, and whether the task is one
    this reconciler's rotation replaced (``ours``)."""

    record: SessionRecord
    notice: NcsEvent
    received: float
    cause: Cause
    ours: bool


@dataclass(frozen=True)
class Capture:
    """A snapshot (45) of session ``name``."""

    name: str
    notice: NcsEvent
    received: float


@dataclass(frozen=True)
class Failover:
    """A failover (12) of the task of session ``record``."""

    record: SessionRecord
    notice: NcsEvent


@dataclass(frozen=True)
class Successor:
    """A session just started again (restart or rotation), waiting for its first snapshot: what
    started it, when the reconciler learned it had to (clock), and the sid it replaced."""

    what: str
    cause: str
    since: float
    old_sid: str | None


class Intake:
    """What the reconciler knows of the stack, and the notifications matched with it (module
    docstring).  ``records``: session name -> ``SessionRecord`` from the last read of the state;
    ``declared_names`` / ``declared_urns``: the sessions the program declared at the last read
    of it; ``deployed`` (bool | None: not read yet); ``exported_at`` (clock) of the last read;
    ``successors``: sessions waiting for their first snapshot after a start; ``captures``: Unix
    s of each session's latest snapshot."""

    def __init__(self) -> None:
        self.records: dict[str, SessionRecord] = {}
        self.by_sid: dict[str, SessionRecord] = {}
        # (cname, recorder uid) -> session name, for every session ever read: names the session
        # of a new task's snapshots before a read shows the task's sid.
        self.names_by_task: dict[tuple[str, str], str] = {}
        self.declared_names: frozenset[str] = frozenset()
        self.declared_urns: dict[str, str] = {}
        self.deployed: bool | None = None
        self.exported_at = -float("inf")
        self.successors: dict[str, Successor] = {}
        self.captures: dict[str, float] = {}
        self._leave_codes: OrderedDict[str, int] = OrderedDict()
        self._token_errors: OrderedDict[str, None] = OrderedDict()
        self._own_stops: OrderedDict[str, None] = OrderedDict()  # sids its rotations stop
        self._orphans: OrderedDict[str, tuple[NcsEvent, float]] = OrderedDict()
        self._unknown: set[str] = set()  # named by notifications, not in the state read last
        self._foreign: OrderedDict[str, None] = OrderedDict()  # unknown after a re-read too

    # -- the state and the program ---------------------------------------------------------------

    def set_records(self, records: Mapping[str, SessionRecord]) -> set[tuple[str, str]]:
        """The sessions of a new read of the state; returns the (name, sid) pairs it holds."""
        self.records = dict(records)
        self.by_sid = {r.sid: r for r in records.values()}
        self.names_by_task.update({(r.cname, r.uid): r.name for r in records.values()})
        return {(r.name, r.sid) for r in records.values()}

    def set_declared(self, urns: Mapping[str, str]) -> frozenset[str]:
        self.declared_urns = dict(urns)
        self.declared_names = frozenset(urns)
        return self.declared_names

    def is_declared(self, name: str) -> bool:
        """Whether the program declares ``name``; before the program was read, every session
        counts as declared."""
        return not self.declared_names or name in self.declared_names

    def recorders_on(self, cname: str) -> set[str]:
        """The recorder uids of every session seen on channel ``cname`` (a held one included)."""
        return {uid for (channel, uid) in self.names_by_task if channel == cname}

    def needs_reread(self, now: float, state_poll: float) -> bool:
        """Whether the state should be read again: a notification named a sid it does not
        know, or ``state_poll`` seconds passed since the last read."""
        return bool(self._unknown) or now - self.exported_at >= state_poll

    def has_orphans(self) -> bool:
        return bool(self._orphans)

    def rematch(self) -> list[tuple[NcsEvent, float]]:
        """After a new read: the kept exits whose sid the state now holds (to take again, with
        when they were received); the other sids are remembered as someone else's."""
        for sid in self._unknown - set(self.by_sid):
            _remember(self._foreign, sid, None)
        self._unknown.clear()
        orphans, self._orphans = self._orphans, OrderedDict()
        return [(notice, received) for notice, received in orphans.values()
                if notice.sid in self.by_sid]

    # -- notifications ---------------------------------------------------------------------------

    def correlate(self, notice: NcsEvent, received: float,
                  ) -> tuple[Exit | Capture | Failover | None, bool, bool]:
        """Match a Cloud Recording notification with the state.  Returns what it means (an
        ``Exit``, a ``Capture``, a ``Failover``, or None: nothing to act on), whether it is
        about this stack (False: ``unmatched``, a sid the state does not hold), and whether the
        state should be read now (a sid not heard of before, or an exit kept until that read:
        ``needs_reread``, ``has_orphans``)."""
        record = self.by_sid.get(notice.sid)
        read_now = record is None and notice.sid not in self._foreign \
            and notice.sid not in self._unknown
        if read_now:
            self._unknown.add(notice.sid)
        if notice.event_type == RecordingEvent.RECORDER_LEAVE:
            code = notice.details.get("leaveCode")
            if isinstance(code, int) and not isinstance(code, bool):
                _remember(self._leave_codes, notice.sid, code)
        elif notice.event_type == RecordingEvent.CLOUD_RECORDING_ERROR \
                and notice.details.get("errorCode") == TOKEN_EXPIRED_ERROR_CODE:
            _remember(self._token_errors, notice.sid, None)
        elif notice.event_type == RecordingEvent.RECORDER_SNAPSHOT_FILE:
            # A new task's first snapshots can come before the read that shows its sid: the
            # channel and recorder uid name the session too.
            owner = record.name if record is not None \
                else self.names_by_task.get((notice.cname, notice.uid))
            if owner is not None:
                return Capture(owner, notice, received), True, read_now
        if record is None:
            if notice.event_type == RecordingEvent.SESSION_EXIT:
                self._orphans[notice.sid] = (notice, received)
                while len(self._orphans) > ORPHANS_KEPT:
                    self._orphans.popitem(last=False)
                read_now = True
            return None, False, read_now
        if notice.event_type == RecordingEvent.SESSION_EXIT:
            cause = exit_cause(self._leave_codes.pop(notice.sid, None), notice.sendts / 1000,
                               record.token_expires_at,
                               token_error=self._token_errors.pop(notice.sid, 0) is None)
            ours = self._own_stops.pop(notice.sid, 0) is None
            return Exit(record, notice, received, cause, ours), True, False
        if notice.event_type == RecordingEvent.SESSION_FAILOVER:
            return Failover(record, notice), True, False
        return None, True, False

    def note_own_stop(self, sid: str) -> None:
        """Task ``sid`` is being replaced by this reconciler's rotation: its exit is ours."""
        _remember(self._own_stops, sid, None)

    def drop_own_stop(self, sid: str) -> None:
        """The rotation did not happen: a later exit of ``sid`` is a real end."""
        self._own_stops.pop(sid, None)


def _remember(memory: OrderedDict[str, Any], sid: str, value: Any) -> None:
    memory[sid] = value
    while len(memory) > SIDS_KEPT:
        memory.popitem(last=False)
