"""A model of a stack for the reconciler's tests (no engine), and notification builders.

``FakeStack`` keeps a state (session name -> sid), answers ``export`` with it, drops on
``refresh`` the sessions whose task the test marked gone, on ``forget`` removes the sessions
named, and on ``up`` starts each targeted session that is missing, or replaced (a new sid).
Every call is recorded; ``fail`` makes the next calls raise; ``hold_up`` makes ``up`` wait until
the test releases it (a long engine run).  The engine tests (tests/engine/test_engine_reconcile.py)
run the same controller on the real engine.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from snapshot_resources.events import NcsEvent, RecordingEvent
from snapshot_resources.naming import format_snapshot_name
from snapshot_resources.reconcile.inventory import SESSION_TYPE, session_urn, urn_name
from snapshot_resources.reconcile.notices import ChannelNotice
from snapshot_resources.reconcile.stack_ops import StackOperationError

STACK: Final = "dev"
PROJECT: Final = "agora-snapshots"
NOW: Final = 1_800_000_000.0
RECORDER: Final = "900001"


class FakeStack:
    """A stack's state and the calls made to it (module docstring)."""

    def __init__(self, sessions: Mapping[str, str], *, token_expires_at: float | None = None,
                 resource_expires_at: float | None = None, given_token: bool = False) -> None:
        self.sids = dict(sessions)
        self.gone: set[str] = set()  # sids whose task Agora no longer knows
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.replaced: list[tuple[str, ...]] = []  # the --replace list of each up
        self.fail: list[StackOperationError] = []  # raised by the next operations, in order
        self.token_expires_at = token_expires_at
        self.resource_expires_at = resource_expires_at
        self.given_token = given_token
        self.hold_up = threading.Event()
        self.hold_up.set()  # cleared by a test: up waits until it is set again
        self.in_up = threading.Event()
        self._counter = itertools.count(1)

    @property
    def stack(self) -> str:
        return STACK

    @property
    def project(self) -> str:
        return PROJECT

    def new_sid(self) -> str:
        return f"sid-{next(self._counter)}"

    def export(self) -> Mapping[str, Any]:
        self._maybe_fail("export")
        resources: list[dict[str, Any]] = [{"type": "pulumi:pulumi:Stack"}]
        for name, sid in self.sids.items():
            outputs: dict[str, Any] = {"sid": sid, "cname": f"ch-{name}", "uid": RECORDER,
                                       "resourceExpiredHour": 720}
            if self.token_expires_at is not None:
                outputs["tokenExpiresAt"] = iso(self.token_expires_at)
            if self.resource_expires_at is not None:
                outputs["resourceExpiresAt"] = iso(self.resource_expires_at)
            if self.given_token:
                outputs["token"] = {"ciphertext": "v1:abc"}
            resources.append({"urn": session_urn(STACK, PROJECT, name), "type": SESSION_TYPE,
                              "outputs": outputs})
        resources.append({"type": "agora-snapshots:storage:ExistingSnapshotBucket"})
        return {"deployment": {"resources": resources}}

    def refresh(self, urns: Sequence[str]) -> None:
        self._maybe_fail("refresh", urns)
        for name in [n for n in self.sids if session_urn(STACK, PROJECT, n) in urns]:
            if self.sids[name] in self.gone:
                del self.sids[name]

    def up(self, urns: Sequence[str], replace: Sequence[str] = ()) -> None:
        self.in_up.set()
        self.hold_up.wait(30)
        self.in_up.clear()
        self._maybe_fail("up", urns)
        self.replaced.append(tuple(urn_name(u) for u in replace))
        for urn in urns:
            name = urn_name(urn)
            if name not in self.sids or urn in replace:
                self.sids[name] = self.new_sid()

    def forget(self, urns: Sequence[str]) -> None:
        self._maybe_fail("forget", urns)
        for urn in urns:
            del self.sids[urn_name(urn)]

    def _maybe_fail(self, name: str, urns: Sequence[str] = ()) -> None:
        self.calls.append((name, tuple(urn_name(u) for u in urns)))
        if self.fail:
            raise self.fail.pop(0)

    def ops(self, *names: str) -> list[tuple[str, tuple[str, ...]]]:
        """The calls of ``names``, in order."""
        return [c for c in self.calls if c[0] in names]


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


class Clock:
    """A clock the test moves (``now``)."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def recording_event(kind: RecordingEvent, sid: str, cname: str, details: dict[str, Any], *,
                    sendts: float = NOW, notice_id: str | None = None) -> NcsEvent:
    """A parsed Cloud Recording notification of the recorder ``RECORDER``."""
    return NcsEvent(notice_id=notice_id or f"{sid}-{kind.value}-{sendts}", product_id=3,
                    event_type=kind, notify_ms=int(sendts * 1000), cname=cname, uid=RECORDER,
                    sid=sid, sequence=kind, sendts=int(sendts * 1000), service_type=0,
                    details=details)


def exit_event(sid: str, cname: str, *, leave_code: int | None = None,
               sendts: float = NOW) -> list[NcsEvent]:
    """The notifications of a task's end: 41 (when ``leave_code`` is given), then 11."""
    leave = [] if leave_code is None else [
        recording_event(RecordingEvent.RECORDER_LEAVE, sid, cname, {"leaveCode": leave_code}, sendts=sendts)]
    return [*leave, recording_event(RecordingEvent.SESSION_EXIT, sid, cname, {"exitStatus": 0}, sendts=sendts)]


def snapshot_event(sid: str, cname: str, taken_at: float, *, publisher: str = "2001",
                   prefix: str = "snaps") -> NcsEvent:
    """45 ``recorder_snapshot_file`` for a snapshot taken at ``taken_at`` (Unix s)."""
    key = format_snapshot_name(sid=sid, cname=cname, uid=publisher,
                               taken_at=datetime.fromtimestamp(taken_at, UTC), prefix=[prefix])
    return recording_event(RecordingEvent.RECORDER_SNAPSHOT_FILE, sid, cname, {"fileName": key}, sendts=taken_at,
                           notice_id=f"{sid}-45-{taken_at}")


def join(cname: str, uid: str, *, ts: int = 1, leave: bool = False) -> ChannelNotice:
    """103 broadcaster join (or 104 leave) of ``uid`` in ``cname``."""
    kind = 104 if leave else 103
    return ChannelNotice(notice_id=f"j-{kind}-{cname}-{uid}-{ts}", event_type=kind,
                         notify_ms=ts * 1000, cname=cname, uid=uid, client_seq=ts, ts=ts)
