"""The task journal: every task the provider starts at Agora, from before its start can be lost
until the engine has recorded it or the task has ended (docs/decisions.md, "Interrupted, never
orphaned").

Why: a Python dynamic provider cannot hand the engine a task's ``sid`` until ``create`` returns,
and a ``pulumi up`` can die before that (kill -9, a cancelled CI job, a closed laptop, a second
Ctrl-C). Agora then runs and bills a task that no state records, and every later start of the
same channel and recorder uid answers 53 (S7). The journal is written before the start is sent,
so whatever kills the run, the task can be found again: by the next ``create`` of the same
channel and uid (which adopts it, or stops it), by ``pulumi refresh`` (which reports it), by
``pulumi destroy`` and by ``snapshot-resources reconcile`` (which stop it).

An entry's life (``Phase``)::

    STARTING  written after acquire, before start: the resource ID is known, the sid not yet
    STARTED   start answered: the sid is known; create is confirming that the task runs
    RETURNED  create handed the sid to the engine (which records it, unless killed that moment)
    LOST      create could not hand it over and could not stop it: an orphan, owner released
    STOPPING  a delete is stopping the task (written before the stop is sent, so that a process
              killed mid-stop still leaves the intent: the next diff replaces the session)
    STOPPED   the provider stopped the task (or found it ended): kept for a while so that a
              replacement's start rides out its predecessor's 53 in any process, and so that a
              stop the engine never heard of (an interrupted ``destroy``) is seen by ``diff``

An entry is removed when the engine is seen to hold its sid (``diff``, ``read``, ``update``,
``delete`` name it) or when another create adopts it; any entry is pruned once unchanged for
``RETENTION_SECONDS``.

An entry's ``owner`` is the process whose create is in flight (``Owner``): while that process
lives, nobody else touches the entry. ``claim`` takes an abandoned entry atomically, so two
recovering processes never both adopt or stop the same task.

What it holds: App ID, channel, recorder uid, resource ID, sid, URN, phase, owner, times, and a
``digest`` of the session's configuration, an HMAC keyed by the customer secret (so the journal
holds nothing from which a secret or a storage key can be recovered or guessed without it).

The embedded default is ``SqliteTaskJournal``: one SQLite file under the Pulumi home
(``$PULUMI_HOME/agora-snapshots/task-journal.sqlite3``, or ``agora:taskJournal`` /
``AGORA_TASK_JOURNAL``), mode 0600, in WAL mode, safe across concurrent processes on one machine.
``SqliteTaskJournal(None)``, in this process's memory, is the fallback when that file cannot be
used (said once on stderr): it still lets a replacement ride out its predecessor's 53 and an
interrupted create stop its task, but it does not outlive the process.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import hmac
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import psutil

__all__ = [
    "JOURNAL_FILE",
    "RETENTION_SECONDS",
    "FallbackJournal",
    "JournalEntry",
    "Owner",
    "Phase",
    "SqliteTaskJournal",
    "TaskJournal",
    "TaskKey",
    "config_digest",
    "default_journal_path",
    "stack_of",
]

JOURNAL_FILE: Final = Path("agora-snapshots") / "task-journal.sqlite3"
"""Where the journal lives, relative to the Pulumi home."""

RETENTION_SECONDS: Final = 31 * 24 * 3600
"""Entries unchanged for this long are pruned: past Agora's longest resource-ID lifetime (720 h,
S2) a task can no longer be queried or stopped anyway."""

OWNER_LEASE_SECONDS: Final = 15 * 60
"""An entry owned by a process on another host (a shared home) counts as abandoned when it has
not changed for this long: longer than any create takes (start timeout + failover grace + the
exit timeout, with their defaults 90 + 90 + 30 s, and the client's retries)."""

_BUSY_TIMEOUT_MS: Final = 10_000


class Phase(enum.StrEnum):
    """Where an entry's task is in its life (module docstring)."""

    STARTING = "starting"
    STARTED = "started"
    RETURNED = "returned"
    LOST = "lost"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True)
class TaskKey:
    """What Agora allows one task of at a time: App ID, channel (``cname``) and recorder uid (S7,
    code 53)."""

    app_id: str
    cname: str
    uid: str


@dataclass(frozen=True)
class Owner:
    """A process, as ``host/pid/start-time``: a pid alone may be reused after a reboot or a
    wrap-around; with its start time it names one process."""

    host: str
    pid: int
    started: float

    @classmethod
    def this_process(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), _process_start(os.getpid()) or 0.0)

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        host, _, rest = text.rpartition("/")
        host, _, pid = host.rpartition("/")
        try:
            return cls(host, int(pid), float(rest))
        except ValueError:
            return None

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}/{self.started:.3f}"

    def alive(self, updated_at: float, now: float) -> bool:
        """Whether this process may still be working on an entry last changed at
        ``updated_at``: on this host, whether it runs; on another, whether the lease holds."""
        if self.host != socket.gethostname():
            return now - updated_at < OWNER_LEASE_SECONDS
        started = _process_start(self.pid)
        return started is not None and abs(started - self.started) < 0.01


def _process_start(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


@dataclass(frozen=True)
class JournalEntry:
    """One task (module docstring). Times are Unix seconds."""

    id: int
    key: TaskKey
    resource_id: str
    sid: str | None
    urn: str | None
    digest: str
    phase: Phase
    owner: str | None
    started_at: float
    updated_at: float
    owner_alive: bool | None = None
    """Whether the owner's heartbeat is there (the shared store's journal); None: not known."""

    def abandoned(self, now: float | None = None) -> bool:
        """Nobody is working on it: released, or its owner is gone (a process on this host
        that no longer runs; elsewhere, a heartbeat that stopped, or without one the lease)."""
        if self.owner is None:
            return True
        owner = Owner.parse(self.owner)
        if owner is None:
            return True
        at = time.time() if now is None else now
        if self.owner_alive is None:
            return not owner.alive(self.updated_at, at)
        here = owner.host == socket.gethostname()
        return not self.owner_alive or (here and not owner.alive(self.updated_at, at))

    def describe(self) -> str:
        """The entry in words, for messages (no secret: the digest is not shown)."""
        what = f"task {self.sid}" if self.sid else f"a task on resource ID {self.resource_id}"
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at))
        whose = f" for {self.urn}" if self.urn else ""
        return (f"{what}{whose} (channel {self.key.cname!r}, uid {self.key.uid}), started "
                f"{started} by this product")


def stack_of(urn: str | None) -> str | None:
    """``urn:pulumi:<stack>::<project>::``, the prefix shared by every URN of one stack, or None.
    A resource name may itself hold ``::``; the stack and project never do."""
    if not urn or not urn.startswith("urn:pulumi:"):
        return None
    parts = urn.split("::", 2)
    if len(parts) < 3:
        return None
    return f"{parts[0]}::{parts[1]}::"


def config_digest(inputs: Mapping[str, Any], key: str) -> str:
    """HMAC-SHA256 of a session's inputs (canonical JSON), keyed by the customer secret: equal
    for equal configurations, and useless to anyone without the secret."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()


def default_journal_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$PULUMI_HOME/agora-snapshots/task-journal.sqlite3`` (Pulumi's home defaults to
    ``~/.pulumi``)."""
    env = os.environ if environ is None else environ
    home = env.get("PULUMI_HOME") or str(Path.home() / ".pulumi")
    return Path(home) / JOURNAL_FILE


class TaskJournal(Protocol):
    """The operations the provider and the reconciler use (module docstring)."""

    @property
    def where(self) -> str:
        """Where the entries live, for messages (a path; never a credential)."""
        ...

    def begin(self, key: TaskKey, resource_id: str, urn: str | None, digest: str) -> int:
        """A STARTING entry owned by this process; its id."""
        ...

    def started(self, entry_id: int, sid: str) -> None: ...

    def returned(self, entry_id: int) -> None:
        """Create handed the sid to the engine: RETURNED, owner released."""
        ...

    def lost(self, entry_id: int) -> None:
        """Create could not hand the task over nor stop it: LOST, owner released."""
        ...

    def adopt(self, entry_id: int, urn: str | None, digest: str) -> None:
        """This process's create takes the entry's running task as its own: STARTED, owned."""
        ...

    def stopping(self, key: TaskKey, sid: str, resource_id: str = "") -> None:
        """A delete is about to stop the task ``sid`` of ``key``."""
        ...

    def stopped(self, key: TaskKey, sid: str | None, resource_id: str = "") -> None:
        """The task ``sid`` of ``key`` was stopped (or found ended) now."""
        ...

    def not_stopped(self, app_id: str, sid: str) -> None:
        """A delete of ``sid`` failed without stopping it: its STOPPING entry goes."""
        ...

    def forget(self, entry_id: int) -> None: ...

    def recorded(self, app_id: str, sid: str) -> None:
        """The engine holds ``sid``: its open entries are done with."""
        ...

    def holders(self, key: TaskKey) -> list[JournalEntry]:
        """Entries of ``key`` whose create may have left a task (every phase but STOPPING and
        STOPPED: a task being deleted is the state's), oldest first."""
        ...

    def last_stop(self, key: TaskKey) -> float | None:
        """When a task of ``key`` was last stopped (Unix seconds), or None."""
        ...

    def stop_of(self, app_id: str, sid: str) -> JournalEntry | None:
        """The STOPPING or STOPPED entry of ``sid``, if a delete began stopping it."""
        ...

    def claim(self, entry_id: int, seen_owner: str | None) -> bool:
        """Take an entry whose owner is still ``seen_owner``; False if someone else did first."""
        ...

    def release(self, entry_id: int) -> None:
        """Give up ownership without changing the phase."""
        ...

    def orphans(self, stack: str) -> list[JournalEntry]:
        """Abandoned STARTING/STARTED/LOST entries of one stack (``stack_of``): tasks no state
        holds, whose create nobody is running."""
        ...

    def entries(self) -> list[JournalEntry]:
        """Every entry, oldest first (for the reconciler, tests and inspection)."""
        ...


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS tasks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id      TEXT NOT NULL,
    cname       TEXT NOT NULL,
    uid         TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    sid         TEXT,
    urn         TEXT,
    stack       TEXT,
    digest      TEXT NOT NULL,
    phase       TEXT NOT NULL,
    owner       TEXT,
    started_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_key ON tasks (app_id, cname, uid);
CREATE INDEX IF NOT EXISTS tasks_sid ON tasks (app_id, sid);
CREATE INDEX IF NOT EXISTS tasks_stack ON tasks (stack);
"""

_COLUMNS: Final = ("id, app_id, cname, uid, resource_id, sid, urn, digest, phase, owner, "
                   "started_at, updated_at")


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    (entry_id, app_id, cname, uid, resource_id, sid, urn, digest, phase, owner, started_at,
     updated_at) = row
    return JournalEntry(int(entry_id), TaskKey(app_id, cname, uid), resource_id, sid, urn, digest,
                        Phase(phase), owner, float(started_at), float(updated_at))


class SqliteTaskJournal:
    """The journal in one SQLite file, or in memory when ``path`` is None (module docstring).
    Thread-safe; every change is its own transaction, committed before the call returns (the
    point of a journal)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._owner = str(Owner.this_process())
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                # Created 0600 before SQLite opens it: the file names channels and resource IDs.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(":memory:" if path is None else path,
                                   timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        if path is not None:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
        with self._transaction() as db:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                db.execute(statement)
            db.execute("DELETE FROM tasks WHERE updated_at < ?",
                       (time.time() - RETENTION_SECONDS,))

    @property
    def where(self) -> str:
        return "this process's memory" if self._path is None else str(self._path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _set(self, entry_id: int, **values: Any) -> None:
        values["updated_at"] = time.time()
        columns = ", ".join(f"{name} = ?" for name in values)
        with self._transaction() as db:
            db.execute(f"UPDATE tasks SET {columns} WHERE id = ?",  # noqa: S608 - our names
                       (*values.values(), entry_id))

    def _select(self, where: str, parameters: tuple[Any, ...]) -> list[JournalEntry]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM tasks WHERE {where} ORDER BY id",  # noqa: S608
                parameters).fetchall()
        return [_entry(row) for row in rows]

    def begin(self, key: TaskKey, resource_id: str, urn: str | None, digest: str) -> int:
        now = time.time()
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO tasks (app_id, cname, uid, resource_id, sid, urn, stack, digest, "
                "phase, owner, started_at, updated_at) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, "
                "?, ?)",
                (key.app_id, key.cname, key.uid, resource_id, urn, stack_of(urn), digest,
                 Phase.STARTING, self._owner, now, now))
            assert cursor.lastrowid is not None
            return int(cursor.lastrowid)

    def started(self, entry_id: int, sid: str) -> None:
        self._set(entry_id, sid=sid, phase=Phase.STARTED)

    def returned(self, entry_id: int) -> None:
        self._set(entry_id, phase=Phase.RETURNED, owner=None)

    def lost(self, entry_id: int) -> None:
        self._set(entry_id, phase=Phase.LOST, owner=None)

    def adopt(self, entry_id: int, urn: str | None, digest: str) -> None:
        self._set(entry_id, phase=Phase.STARTED, owner=self._owner, urn=urn, stack=stack_of(urn),
                  digest=digest)

    def stopping(self, key: TaskKey, sid: str, resource_id: str = "") -> None:
        self._mark(key, sid, resource_id, Phase.STOPPING)

    def stopped(self, key: TaskKey, sid: str | None, resource_id: str = "") -> None:
        self._mark(key, sid, resource_id, Phase.STOPPED)

    def _mark(self, key: TaskKey, sid: str | None, resource_id: str, phase: Phase) -> None:
        now = time.time()
        with self._transaction() as db:
            if sid is not None:
                done = db.execute(
                    "UPDATE tasks SET phase = ?, owner = NULL, updated_at = ? "
                    "WHERE app_id = ? AND sid = ?", (phase, now, key.app_id, sid)).rowcount
                if done:
                    return
            db.execute(
                "INSERT INTO tasks (app_id, cname, uid, resource_id, sid, urn, stack, digest, "
                "phase, owner, started_at, updated_at) VALUES (?, ?, ?, ?, ?, NULL, NULL, '', ?, "
                "NULL, ?, ?)",
                (key.app_id, key.cname, key.uid, resource_id, sid, phase, now, now))

    def not_stopped(self, app_id: str, sid: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM tasks WHERE app_id = ? AND sid = ? AND phase = ?",
                       (app_id, sid, Phase.STOPPING))

    def forget(self, entry_id: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM tasks WHERE id = ?", (entry_id,))

    def recorded(self, app_id: str, sid: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM tasks WHERE app_id = ? AND sid = ? AND phase NOT IN (?, ?)",
                       (app_id, sid, Phase.STOPPING, Phase.STOPPED))

    def holders(self, key: TaskKey) -> list[JournalEntry]:
        return self._select("app_id = ? AND cname = ? AND uid = ? AND phase NOT IN (?, ?)",
                            (key.app_id, key.cname, key.uid, Phase.STOPPING, Phase.STOPPED))

    def last_stop(self, key: TaskKey) -> float | None:
        with self._lock:
            row = self._db.execute(
                "SELECT MAX(updated_at) FROM tasks WHERE app_id = ? AND cname = ? AND uid = ? "
                "AND phase = ?", (key.app_id, key.cname, key.uid, Phase.STOPPED)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def stop_of(self, app_id: str, sid: str) -> JournalEntry | None:
        found = self._select("app_id = ? AND sid = ? AND phase IN (?, ?)",
                             (app_id, sid, Phase.STOPPING, Phase.STOPPED))
        return found[-1] if found else None

    def claim(self, entry_id: int, seen_owner: str | None) -> bool:
        with self._transaction() as db:
            if seen_owner is None:
                cursor = db.execute("UPDATE tasks SET owner = ?, updated_at = ? "
                                    "WHERE id = ? AND owner IS NULL",
                                    (self._owner, time.time(), entry_id))
            else:
                cursor = db.execute("UPDATE tasks SET owner = ?, updated_at = ? "
                                    "WHERE id = ? AND owner = ?",
                                    (self._owner, time.time(), entry_id, seen_owner))
            return cursor.rowcount == 1

    def release(self, entry_id: int) -> None:
        self._set(entry_id, owner=None)

    def orphans(self, stack: str) -> list[JournalEntry]:
        found = self._select("stack = ? AND phase IN (?, ?, ?)",
                             (stack, Phase.STARTING, Phase.STARTED, Phase.LOST))
        now = time.time()
        return [entry for entry in found if entry.abandoned(now)]

    def entries(self) -> list[JournalEntry]:
        return self._select("1 = 1", ())


class FallbackJournal:
    """A journal that never fails its caller: each call goes to ``primary``, and once that
    raises (a disk full, a database locked past its timeout, a store out of reach) to
    ``fallback`` from then on, said once through ``warn``. The journal is a safety net: its
    failure must never turn a create whose task Agora started into an error (the engine would
    record nothing, the very orphan it exists to prevent)."""

    def __init__(self, primary: TaskJournal, fallback: TaskJournal,
                 warn: Callable[[str], None]) -> None:
        self._primary = primary
        self._fallback = fallback
        self._warn = warn
        self._failed = False
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return self._fallback.where if self._failed else self._primary.where

    def _call(self, name: str, *args: Any) -> Any:
        if not self._failed:
            try:
                return getattr(self._primary, name)(*args)
            except Exception as exc:  # any failure of the store: degrade, never raise
                with self._lock:
                    first, self._failed = not self._failed, True
                if first:
                    self._warn(f"the task journal {self._primary.where} failed "
                               f"({type(exc).__name__}: {exc}); this process keeps it in "
                               f"{self._fallback.where} from now on")
        return getattr(self._fallback, name)(*args)

    def begin(self, key: TaskKey, resource_id: str, urn: str | None, digest: str) -> int:
        return int(self._call("begin", key, resource_id, urn, digest))

    def started(self, entry_id: int, sid: str) -> None:
        self._call("started", entry_id, sid)

    def returned(self, entry_id: int) -> None:
        self._call("returned", entry_id)

    def lost(self, entry_id: int) -> None:
        self._call("lost", entry_id)

    def adopt(self, entry_id: int, urn: str | None, digest: str) -> None:
        self._call("adopt", entry_id, urn, digest)

    def stopping(self, key: TaskKey, sid: str, resource_id: str = "") -> None:
        self._call("stopping", key, sid, resource_id)

    def stopped(self, key: TaskKey, sid: str | None, resource_id: str = "") -> None:
        self._call("stopped", key, sid, resource_id)

    def not_stopped(self, app_id: str, sid: str) -> None:
        self._call("not_stopped", app_id, sid)

    def forget(self, entry_id: int) -> None:
        self._call("forget", entry_id)

    def recorded(self, app_id: str, sid: str) -> None:
        self._call("recorded", app_id, sid)

    def holders(self, key: TaskKey) -> list[JournalEntry]:
        return list(self._call("holders", key))

    def last_stop(self, key: TaskKey) -> float | None:
        found = self._call("last_stop", key)
        return None if found is None else float(found)

    def stop_of(self, app_id: str, sid: str) -> JournalEntry | None:
        found = self._call("stop_of", app_id, sid)
        return found if isinstance(found, JournalEntry) else None

    def claim(self, entry_id: int, seen_owner: str | None) -> bool:
        return bool(self._call("claim", entry_id, seen_owner))

    def release(self, entry_id: int) -> None:
        self._call("release", entry_id)

    def orphans(self, stack: str) -> list[JournalEntry]:
        return list(self._call("orphans", stack))

    def entries(self) -> list[JournalEntry]:
        return list(self._call("entries"))
