"""Tasks an interrupted run left behind: found in the task journal, then adopted, stopped or
reported (docs/decisions.md, "Interrupted, never orphaned").

* ``recover`` (create, before anything is sent): a task the journal holds for the same App ID,
  channel and recorder uid, whose create nobody is running any more, is **adopted** when it runs
  with the same configuration (no gap, no second task), else **stopped**, so the create proceeds.
* ``report`` (refresh): says which tasks of the stack run with no state holding them, and what
  the next ``pulumi up`` and ``pulumi destroy`` do with them.
* ``sweep`` (destroy): stops them.
* ``conflict_note``: what a 53 that is not the session's own predecessor means, and what to do.

The provider decides when each runs; this module only acts on what the journal and Agora say.
Each message goes to stderr, which the engine shows (docs/pulumi-dynamic.md section 1).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from snapshot_resources import rules
from snapshot_resources.agora import errors
from snapshot_resources.journal import JournalEntry, Phase, TaskJournal, TaskKey

if TYPE_CHECKING:
    from snapshot_resources.agora.client import AgoraClient

__all__ = ["Adopted", "conflict_note", "recover", "report", "say", "sweep"]

log = logging.getLogger("snapshot_resources.provider")

_BUSY_POLL: Final = 0.5  # seconds between looks at an entry whose create is still in flight


def say(message: str) -> None:
    """One line on stderr for the user (the engine shows it). The engine may be gone already
    (this runs during interruptions): a closed pipe is not an error here."""
    try:
        print(f"snapshot-resources: {message}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        log.warning("%s", message)


@dataclass(frozen=True)
class Adopted:
    """A running task taken over by a create: its journal entry, resource ID, sid and status."""

    entry_id: int
    resource_id: str
    sid: str
    status: int | None
    slice_start_time: int | None


def _stop_body(key: TaskKey) -> dict[str, Any]:
    from snapshot_resources.agora import wire

    return wire.stop_body(key.cname, key.uid)


def recover(
    client: AgoraClient,
    journal: TaskJournal,
    key: TaskKey,
    *,
    urn: str | None,
    digest: str,
    start_body: Mapping[str, Any],
    wait: float,
    sleep: Callable[[float], None],
) -> Adopted | None:
    """Settle what the journal holds for ``key`` before a create starts a task (module
    docstring). Returns the adopted task, or None when the create should start one. An entry
    whose create still runs in another process for the same ``urn`` (a killed CLI's provider,
    still confirming or stopping) is waited for, up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        holders = journal.holders(key)
        busy = [h for h in holders if not h.abandoned() and h.phase in (Phase.STARTING,
                                                                         Phase.STARTED)]
        if urn is not None and any(h.urn == urn for h in busy) and time.monotonic() < deadline:
            sleep(_BUSY_POLL)
            continue
        break
    for entry in holders:
        if not entry.abandoned():
            continue
        # A RETURNED entry of another resource may be in some state (a stack not refreshed
        # since): only the resource being created again may take it back.
        if entry.phase is Phase.RETURNED and (urn is None or entry.urn != urn):
            continue
        if not journal.claim(entry.id, entry.owner):
            continue  # another process took it first
        adopted = _settle(client, journal, entry, urn=urn, digest=digest, start_body=start_body)
        if adopted is not None:
            return adopted
    return None


def _settle(client: AgoraClient, journal: TaskJournal, entry: JournalEntry, *, urn: str | None,
            digest: str, start_body: Mapping[str, Any]) -> Adopted | None:
    """Adopt or stop one claimed entry (``recover``)."""
    if entry.sid is None and entry.phase is Phase.LOST:
        journal.release(entry.id)  # known to run, its sid unknown (_learn_sid): nothing to do
        return None
    if entry.sid is None:
        found = _learn_sid(client, journal, entry, urn=urn, digest=digest, start_body=start_body)
        if found is None or isinstance(found, Adopted):
            return found
        entry = found
    sid = entry.sid
    assert sid is not None  # learnt above, or journaled by the start
    try:
        result = client.query(entry.key.app_id, entry.resource_id, sid)
    except errors.TaskNotFoundError:
        journal.stopped(entry.key, entry.sid, entry.resource_id)
        return None
    except errors.ResourceExpiredError:
        journal.forget(entry.id)
        return None
    except errors.AgoraError as exc:
        journal.release(entry.id)
        log.info("could not query %s (%s); leaving it for later", entry.describe(), exc)
        return None
    if result.status in rules.EXITED_STATUSES:
        journal.stopped(entry.key, entry.sid, entry.resource_id)
        return None
    if entry.digest == digest:
        journal.adopt(entry.id, urn, digest)
        say(f"adopted {entry.describe()}: an interrupted run left it running with this "
            "session's configuration, so no second task is started")
        return Adopted(entry.id, entry.resource_id, sid, result.status,
                       result.slice_start_time)
    outcome = client.stop_quietly(entry.key.app_id, entry.resource_id, sid,
                                  _stop_body(entry.key))
    journal.stopped(entry.key, entry.sid, entry.resource_id)
    say(f"stopped {entry.describe()}: an interrupted run left it running with another "
        f"configuration ({outcome.kind.name.lower().replace('_', ' ')}); this session starts a "
        "new one")
    return None


def _learn_sid(client: AgoraClient, journal: TaskJournal, entry: JournalEntry, *,
               urn: str | None, digest: str,
               start_body: Mapping[str, Any]) -> JournalEntry | Adopted | None:
    """A start whose answer was lost (the process died waiting for it): the task may run, but
    without its sid it can be neither queried nor stopped (S4, S6). The start is sent again on
    the same resource ID, as S7 allows for a start without a clear outcome: Agora answers 201
    code 7 "already started" when a task runs on it (with its sid, an ``AgoraClient.start``
    result: the entry is then known), a new task when the first start never arrived (this
    create's own), or 433/1001 when the resource ID expired unused (nothing runs). Whether
    Agora's code 7 carries the sid is UNCONFIRMED (the emulator's does not): without it, the
    entry is kept for the 53 message."""
    try:
        started = client.start(entry.key.app_id, entry.resource_id, start_body)
    except (errors.ResourceExpiredError, errors.ResourceIdInvalidError):
        journal.forget(entry.id)  # the resource ID expired unused: its start never arrived
        return None
    except errors.AlreadyStartedError:
        journal.lost(entry.id)  # a task runs on it; Agora did not say its sid
        return None
    except errors.AgoraError as exc:
        journal.release(entry.id)
        log.info("could not learn the sid of %s (%s)", entry.describe(), exc)
        return None
    journal.started(entry.id, started.sid)
    if not started.already_started:
        # The first start never arrived: this one started a task with this create's
        # configuration, on the old resource ID; it is this create's task.
        journal.adopt(entry.id, urn, digest)
        return Adopted(entry.id, entry.resource_id, started.sid, None, None)
    return JournalEntry(entry.id, entry.key, entry.resource_id, started.sid, entry.urn,
                        entry.digest, entry.phase, entry.owner, entry.started_at,
                        entry.updated_at)


def report(client: AgoraClient, journal: TaskJournal, stack: str) -> None:
    """Refresh: say which tasks of ``stack`` run with no state holding them (and drop the
    entries of those that ended)."""
    for entry in journal.orphans(stack):
        if entry.sid is None:
            continue
        try:
            result = client.query(entry.key.app_id, entry.resource_id, entry.sid)
        except errors.TaskNotFoundError:
            journal.stopped(entry.key, entry.sid, entry.resource_id)
            continue
        except errors.AgoraError:
            continue
        if result.status in rules.EXITED_STATUSES:
            journal.stopped(entry.key, entry.sid, entry.resource_id)
            continue
        say(f"{entry.describe()} runs and no state holds it: a `pulumi up` was interrupted "
            "while creating it. The next `pulumi up` adopts it (same configuration) or stops "
            "it; `pulumi destroy` stops it")


def sweep(client: AgoraClient, journal: TaskJournal, stack: str,
          on_stop: Callable[[JournalEntry], None] | None = None) -> int:
    """Destroy: stop every task of ``stack`` that an interrupted create left with no state
    holding it; returns how many were stopped."""
    stopped = 0
    for entry in journal.orphans(stack):
        if entry.sid is None or not journal.claim(entry.id, entry.owner):
            continue
        try:
            outcome = client.stop_quietly(entry.key.app_id, entry.resource_id, entry.sid,
                                          _stop_body(entry.key))
        except errors.AgoraError as exc:
            journal.release(entry.id)
            say(f"could not stop {entry.describe()} ({exc}); it stays in the task journal")
            continue
        journal.stopped(entry.key, entry.sid, entry.resource_id)
        stopped += 1
        if on_stop is not None:
            on_stop(entry)
        say(f"stopped {entry.describe()}: an interrupted `pulumi up` had left it running with "
            f"no state holding it ({outcome.kind.name.lower().replace('_', ' ')})")
    return stopped


def conflict_note(key: TaskKey, journal: TaskJournal, max_idle_time: int,
                  holders: list[JournalEntry] | None = None) -> str:
    """What a 53 task conflict for ``key`` means and what to do (no secret: channel, uid, URNs,
    times)."""
    known = [h for h in (journal.holders(key) if holders is None else holders)]
    if known:
        held_by = "; ".join(h.describe() + _unknown_sid(h) for h in known)
        what = f"This machine's task journal ({journal.where}) knows: {held_by}."
    else:
        what = ("No task this machine's task journal knows holds it: another stack or program "
                "(here or on another machine), or a task started outside Pulumi.")
    return (f"channel {key.cname!r}, recorder uid {key.uid}: Agora already runs a recording task "
            f"with this channel and uid (start answered 400 code 53, S7), and it is not this "
            f"session's predecessor. {what} To go on: give this session another `uid`, or stop "
            f"the other task (its stack's `pulumi destroy`, or Agora's stop API with its "
            f"resourceId and sid); a task also ends by itself {max_idle_time} s after the last "
            f"user stops publishing (maxIdleTime).")


def _unknown_sid(entry: JournalEntry) -> str:
    if entry.sid is not None:
        return ""
    if entry.phase is Phase.LOST:
        return (": it runs (a repeated start on its resource ID answered 201 code 7 \"already "
                "started\", S7) but Agora did not return its sid, so it can be neither queried "
                "nor stopped")
    return ": its start's answer was lost, so its sid is unknown"
