"""The task journal on the shared store, so that a run interrupted on one machine is recovered
by the next run on another (an ephemeral CI runner loses its disk; docs/shared-store.md).

``RedisTaskJournal`` implements ``journal.TaskJournal`` with the same entries, phases and rules
as ``SqliteTaskJournal`` (read ``journal``'s docstring first). Every change is one Lua script,
which Redis runs atomically: ``claim`` takes an entry only while its owner is still the one the
caller saw, so two recovering processes on two machines never both adopt or stop one task.

An owner's liveness is a **heartbeat**: a key per process (``owner:<host/pid/start>``) that lives
``HEARTBEAT_TTL`` seconds and that a thread of the process sets again every ``HEARTBEAT_EVERY``
seconds. An entry whose owner's heartbeat is gone is abandoned: another machine recovers it
within ``HEARTBEAT_TTL`` of the owner's death, not after ``journal.OWNER_LEASE_SECONDS``. On the
owner's own host its pid is checked too (a process killed there is seen at once).

Keys (under ``shared_store.KEY_PREFIX``, one hash tag ``{journal}``): ``seq`` (the last id),
``e:<id>`` (a hash per entry: App ID, channel, uid, resource ID, sid, URN, stack, digest,
phase, owner, times; about 400 bytes, no secret: the digest is an HMAC keyed by the customer
secret), ``key:<sha1>``, ``sid:<sha1>``, ``stack:<sha1>`` (sets of ids by channel and uid, by
sid, by stack), ``all`` (ids by last change), ``owner:<owner>`` (heartbeats). Entries expire
``journal.RETENTION_SECONDS`` after their last change, as in the file.

``SharedTaskJournal`` is what the provider uses: the store's journal, and the local file's
while the store fails, so a task is never lost (module docstring of ``SharedTaskJournal``).
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from snapshot_resources.journal import (
    RETENTION_SECONDS,
    JournalEntry,
    Owner,
    Phase,
    TaskJournal,
    TaskKey,
    stack_of,
)
from snapshot_resources.shared_store import SharedStore, StoreUnavailable

__all__ = ["HEARTBEAT_EVERY", "HEARTBEAT_TTL", "RedisTaskJournal", "SharedTaskJournal"]

HEARTBEAT_TTL: Final = 20.0
"""Seconds an owner counts as alive after its last heartbeat."""
HEARTBEAT_EVERY: Final = 5.0
"""Seconds between a process's heartbeats."""
_T = TypeVar("_T")

# Shared by the scripts: Lua helpers over one entry. P is the key prefix ("...{journal}:").
_LUA_COMMON: Final = """
local P = ARGV[1]
local RETENTION = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function index_keys(e)
  local keys = {P .. 'key:' .. redis.sha1hex(e.app_id .. '\\0' .. e.cname .. '\\0' .. e.uid)}
  if e.sid and e.sid ~= '' then
    keys[#keys + 1] = P .. 'sid:' .. redis.sha1hex(e.app_id .. '\\0' .. e.sid)
  end
  if e.stack and e.stack ~= '' then keys[#keys + 1] = P .. 'stack:' .. redis.sha1hex(e.stack) end
  return keys
end
local function load(id)
  local flat = redis.call('HGETALL', P .. 'e:' .. id)
  if #flat == 0 then return nil end
  local e = {}
  for i = 1, #flat, 2 do e[flat[i]] = flat[i + 1] end
  return e
end
local function save(id, e)
  local flat = {}
  for k, v in pairs(e) do flat[#flat + 1] = k; flat[#flat + 1] = v end
  redis.call('DEL', P .. 'e:' .. id)
  redis.call('HSET', P .. 'e:' .. id, unpack(flat))
  redis.call('EXPIRE', P .. 'e:' .. id, RETENTION)
  for _, key in ipairs(index_keys(e)) do
    redis.call('SADD', key, id)
    redis.call('EXPIRE', key, RETENTION)
  end
  redis.call('ZADD', P .. 'all', e.updated_at, id)
end
local function remove(id)
  local e = load(id)
  if e then
    for _, key in ipairs(index_keys(e)) do redis.call('SREM', key, id) end
  end
  redis.call('DEL', P .. 'e:' .. id)
  redis.call('ZREM', P .. 'all', id)
end
local function prune()
  local old = redis.call('ZRANGEBYSCORE', P .. 'all', '-inf', now - RETENTION, 'LIMIT', 0, 100)
  for _, id in ipairs(old) do remove(id) end
end
local function members(key)
  local found = {}
  for _, id in ipairs(redis.call('SMEMBERS', key)) do
    local e = load(id)
    if e then found[#found + 1] = {id, e} else redis.call('SREM', key, id) end
  end
  return found
end
local function insert(e)
  local id = tostring(redis.call('INCR', P .. 'seq'))
  e.id = id
  e.started_at = tostring(now)
  e.updated_at = tostring(now)
  save(id, e)
  prune()
  return id
end
"""

_BEGIN: Final = _LUA_COMMON + """
return insert({app_id = ARGV[3], cname = ARGV[4], uid = ARGV[5], resource_id = ARGV[6],
               urn = ARGV[7], stack = ARGV[8], digest = ARGV[9], phase = ARGV[10],
               owner = ARGV[11], sid = ''})
"""
"""ARGV: prefix, retention, app, cname, uid, resource ID, urn, stack, digest, phase, owner."""

_SET: Final = _LUA_COMMON + """
local id = ARGV[3]
local e = load(id)
if not e then return 0 end
for _, key in ipairs(index_keys(e)) do redis.call('SREM', key, id) end
for i = 4, #ARGV, 2 do e[ARGV[i]] = ARGV[i + 1] end
e.updated_at = tostring(now)
save(id, e)
return 1
"""
"""ARGV: prefix, retention, id, then field, value pairs (an empty value clears it)."""

_MARK: Final = _LUA_COMMON + """
local app, cname, uid, rid, sid, phase = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if sid ~= '' then
  local done = 0
  for _, pair in ipairs(members(P .. 'sid:' .. redis.sha1hex(app .. '\\0' .. sid))) do
    local e = pair[2]
    if e.app_id == app and e.sid == sid then
      e.phase = phase; e.owner = ''; e.updated_at = tostring(now)
      save(pair[1], e)
      done = done + 1
    end
  end
  if done > 0 then return 0 end
end
return insert({app_id = app, cname = cname, uid = uid, resource_id = rid, sid = sid,
               urn = '', stack = '', digest = '', phase = phase, owner = ''})
"""
"""ARGV: prefix, retention, app, cname, uid, resource ID, sid ('' if none), phase."""

_DROP_BY_SID: Final = _LUA_COMMON + """
local app, sid, keep = ARGV[3], ARGV[4], ARGV[5] == '1'
local phases = {}
for i = 6, #ARGV do phases[ARGV[i]] = true end
for _, pair in ipairs(members(P .. 'sid:' .. redis.sha1hex(app .. '\\0' .. sid))) do
  local e = pair[2]
  if e.app_id == app and e.sid == sid and (phases[e.phase] ~= nil) ~= keep then
    remove(pair[1])
  end
end
return 1
"""
"""ARGV: prefix, retention, app, sid, '1' to keep the phases listed (drop the rest) or '0' to
drop them, then the phases."""

_FORGET: Final = _LUA_COMMON + """
remove(ARGV[3])
return 1
"""

_CLAIM: Final = _LUA_COMMON + """
local id, seen, me = ARGV[3], ARGV[4], ARGV[5]
local e = load(id)
if not e or (e.owner or '') ~= seen then return 0 end
e.owner = me
e.updated_at = tostring(now)
save(id, e)
return 1
"""
"""ARGV: prefix, retention, id, the owner seen ('' for none), this process."""

_READ: Final = _LUA_COMMON + """
local found = {}
local pairs_found
if string.sub(ARGV[3], 1, 3) == 'id:' then
  pairs_found = {}
  local e = load(string.sub(ARGV[3], 4))
  if e then pairs_found[1] = {string.sub(ARGV[3], 4), e} end
elseif ARGV[3] == 'all' then
  pairs_found = {}
  for _, id in ipairs(redis.call('ZRANGE', P .. 'all', 0, -1)) do
    local e = load(id)
    if e then pairs_found[#pairs_found + 1] = {id, e} else redis.call('ZREM', P .. 'all', id) end
  end
else
  pairs_found = members(P .. ARGV[3])
end
for _, pair in ipairs(pairs_found) do
  local e = pair[2]
  local alive = '0'
  if e.owner and e.owner ~= '' and redis.call('EXISTS', P .. 'owner:' .. e.owner) == 1 then
    alive = '1'
  end
  local flat = {'alive', alive}
  for k, v in pairs(e) do flat[#flat + 1] = k; flat[#flat + 1] = v end
  found[#found + 1] = flat
end
return found
"""
"""ARGV: prefix, retention, the index ('key:<sha1>', 'sid:<sha1>', 'stack:<sha1>' or 'all').
Returns each entry as a flat field list with 'alive' (its owner's heartbeat is there)."""


def _sha1(*parts: str) -> str:
    import hashlib

    return hashlib.sha1("\0".join(parts).encode(), usedforsecurity=False).hexdigest()


class RedisTaskJournal:
    """``TaskJournal`` on the shared store (module docstring). Thread-safe. Every call raises
    ``shared_store.StoreUnavailable`` when the store fails (``SharedTaskJournal`` falls back)."""

    def __init__(self, store: SharedStore) -> None:
        self._store = store
        self._prefix = store.key("{journal}", "")
        self._owner = str(Owner.this_process())
        client = store.client
        self._scripts = {name: client.register_script(source) for name, source in (
            ("begin", _BEGIN), ("set", _SET), ("mark", _MARK), ("drop", _DROP_BY_SID),
            ("forget", _FORGET), ("claim", _CLAIM), ("read", _READ))}
        self._beat_lock = threading.Lock()
        self._beating = False

    @property
    def where(self) -> str:
        return f"the shared store {self._store.where}"

    @property
    def owner(self) -> str:
        return self._owner

    def _run(self, script: str, *args: Any) -> Any:
        call = self._scripts[script]
        return self._store.run("task journal", lambda client: call(
            args=[self._prefix, int(RETENTION_SECONDS), *args]))

    # -- the heartbeat -------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Say this process lives (``HEARTBEAT_TTL``), and keep saying it from a thread."""
        key = self._prefix + "owner:" + self._owner
        self._store.run("task journal", lambda client: client.set(
            key, "1", px=int(HEARTBEAT_TTL * 1000)))
        with self._beat_lock:
            if self._beating:
                return
            self._beating = True
        threading.Thread(target=_beat, args=(weakref.ref(self), key), name="journal-heartbeat",
                         daemon=True).start()

    # -- TaskJournal ---------------------------------------------------------------------------

    def begin(self, key: TaskKey, resource_id: str, urn: str | None, digest: str) -> int:
        self.heartbeat()
        return int(self._run("begin", key.app_id, key.cname, key.uid, resource_id, urn or "",
                             stack_of(urn) or "", digest, Phase.STARTING, self._owner))

    def _set(self, entry_id: int, **values: str) -> None:
        flat = [item for pair in values.items() for item in pair]
        self._run("set", entry_id, *flat)

    def started(self, entry_id: int, sid: str) -> None:
        self._set(entry_id, sid=sid, phase=Phase.STARTED)

    def returned(self, entry_id: int) -> None:
        self._set(entry_id, phase=Phase.RETURNED, owner="")

    def lost(self, entry_id: int) -> None:
        self._set(entry_id, phase=Phase.LOST, owner="")

    def adopt(self, entry_id: int, urn: str | None, digest: str) -> None:
        self.heartbeat()
        self._set(entry_id, phase=Phase.STARTED, owner=self._owner, urn=urn or "",
                  stack=stack_of(urn) or "", digest=digest)

    def stopping(self, key: TaskKey, sid: str, resource_id: str = "") -> None:
        self._run("mark", key.app_id, key.cname, key.uid, resource_id, sid, Phase.STOPPING)

    def stopped(self, key: TaskKey, sid: str | None, resource_id: str = "") -> None:
        self._run("mark", key.app_id, key.cname, key.uid, resource_id, sid or "",
                  Phase.STOPPED)

    def not_stopped(self, app_id: str, sid: str) -> None:
        self._run("drop", app_id, sid, "0", Phase.STOPPING)

    def forget(self, entry_id: int) -> None:
        self._run("forget", entry_id)

    def recorded(self, app_id: str, sid: str) -> None:
        self._run("drop", app_id, sid, "1", Phase.STOPPING, Phase.STOPPED)

    def _read(self, index: str) -> list[JournalEntry]:
        rows = self._run("read", index)
        found = [_entry(row) for row in rows]
        return sorted(found, key=lambda entry: entry.id)

    def holders(self, key: TaskKey) -> list[JournalEntry]:
        return [e for e in self._read("key:" + _sha1(key.app_id, key.cname, key.uid))
                if e.key == key and e.phase not in (Phase.STOPPING, Phase.STOPPED)]

    def last_stop(self, key: TaskKey) -> float | None:
        stops = [e.updated_at for e in self._read("key:" + _sha1(key.app_id, key.cname, key.uid))
                 if e.key == key and e.phase is Phase.STOPPED]
        return max(stops) if stops else None

    def stop_of(self, app_id: str, sid: str) -> JournalEntry | None:
        found = [e for e in self._read("sid:" + _sha1(app_id, sid))
                 if e.key.app_id == app_id and e.sid == sid
                 and e.phase in (Phase.STOPPING, Phase.STOPPED)]
        return found[-1] if found else None

    def claim(self, entry_id: int, seen_owner: str | None) -> bool:
        self.heartbeat()
        return bool(self._run("claim", entry_id, seen_owner or "", self._owner))

    def release(self, entry_id: int) -> None:
        self._set(entry_id, owner="")

    def orphans(self, stack: str) -> list[JournalEntry]:
        now = time.time()
        return [e for e in self._read("stack:" + _sha1(stack))
                if e.phase in (Phase.STARTING, Phase.STARTED, Phase.LOST) and e.abandoned(now)]

    def entries(self) -> list[JournalEntry]:
        return self._read("all")

    def entry(self, entry_id: int) -> JournalEntry | None:
        """One entry by id, or None."""
        found = self._read(f"id:{entry_id}")
        return found[0] if found else None


def _beat(journal: weakref.ref[RedisTaskJournal], key: str) -> None:
    """The heartbeat thread: while the journal is in use (a weak reference: it ends with it)."""
    while True:
        time.sleep(HEARTBEAT_EVERY)
        alive = journal()
        if alive is None:
            return
        store = alive._store
        del alive
        if not store.available():
            continue
        with contextlib.suppress(StoreUnavailable):
            store.run("task journal heartbeat", lambda client: client.set(
                key, "1", px=int(HEARTBEAT_TTL * 1000)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entry(row: Sequence[Any]) -> JournalEntry:
    fields = {_text(row[i]): _text(row[i + 1]) for i in range(0, len(row), 2)}
    return JournalEntry(
        int(fields["id"]), TaskKey(fields["app_id"], fields["cname"], fields["uid"]),
        fields["resource_id"], fields.get("sid") or None, fields.get("urn") or None,
        fields.get("digest", ""), Phase(fields["phase"]), fields.get("owner") or None,
        float(fields["started_at"]), float(fields["updated_at"]),
        owner_alive=fields.get("alive") == "1")


@dataclass
class _Mine:
    """An entry this process began or adopted on the store: enough to write it again into the
    local journal if the store fails before it is settled."""

    key: TaskKey
    resource_id: str
    urn: str | None
    digest: str
    sid: str | None = None
    phase: Phase = Phase.STARTING


class SharedTaskJournal:
    """The provider's journal with a shared store: ``RedisTaskJournal``, and ``local`` (the
    file's journal) while the store fails. Entries of the store keep their ids; the file's are
    negated, so one id names one entry of one of them.

    When the store fails: a new entry goes to the file; an entry this process began on the store
    is written again into the file (with its sid and phase) before the change is made there, and
    its id now names that copy, so the task stays journaled; changes by channel and uid or by sid
    go to the file; reads return the file's entries (the store's are read again when it
    answers). A copy whose store entry is still open there is harmless: recovery settles each
    entry by Agora's word (query, adopt or stop), so the later of the two finds the task already
    settled. Entries of the file from runs before the store was set are read too, so they are
    still recovered.
    """

    def __init__(self, remote: RedisTaskJournal, local: TaskJournal) -> None:
        self.remote = remote
        self.local = local
        self._lock = threading.Lock()
        self._mine: dict[int, _Mine] = {}
        self._moved: dict[int, int] = {}  # a store id -> the file's (negated) id of its copy
        remote._store.fallback("task journal", f"the task journal {local.where}")

    @property
    def where(self) -> str:
        return f"{self.remote.where} (and {self.local.where} while it fails)"

    @staticmethod
    def _remote(call: Callable[[], _T]) -> tuple[bool, _T | None]:
        """``(True, call())`` on the store, or ``(False, None)`` when it failed."""
        try:
            return True, call()
        except StoreUnavailable:
            return False, None

    def _route(self, entry_id: int) -> int:
        with self._lock:
            return self._moved.get(entry_id, entry_id)

    def _copy_to_local(self, entry_id: int) -> int | None:
        """The file's id of a copy of store entry ``entry_id`` (made now if needed), or None
        when this process knows nothing of it."""
        with self._lock:
            if entry_id in self._moved:
                return self._moved[entry_id]
            mine = self._mine.get(entry_id)
        if mine is None:
            return None
        local_id = self.local.begin(mine.key, mine.resource_id, mine.urn, mine.digest)
        if mine.sid is not None:
            self.local.started(local_id, mine.sid)
        with self._lock:
            self._moved[entry_id] = -local_id
        return -local_id

    def _change(self, entry_id: int, remote: Callable[[int], None],
                local: Callable[[int], None]) -> None:
        target = self._route(entry_id)
        if target < 0:
            local(-target)
            return
        if self._remote(lambda: remote(target))[0]:
            return
        copy = self._copy_to_local(target)
        if copy is not None:
            local(-copy)

    def _note(self, entry_id: int, **changes: Any) -> None:
        with self._lock:
            mine = self._mine.get(entry_id)
            if mine is not None:
                for name, value in changes.items():
                    setattr(mine, name, value)

    def begin(self, key: TaskKey, resource_id: str, urn: str | None, digest: str) -> int:
        ok, entry = self._remote(lambda: self.remote.begin(key, resource_id, urn, digest))
        if not ok or entry is None:
            return -self.local.begin(key, resource_id, urn, digest)
        with self._lock:
            self._mine[entry] = _Mine(key, resource_id, urn, digest)
        return entry

    def started(self, entry_id: int, sid: str) -> None:
        self._note(entry_id, sid=sid, phase=Phase.STARTED)
        self._change(entry_id, lambda i: self.remote.started(i, sid),
                     lambda i: self.local.started(i, sid))

    def returned(self, entry_id: int) -> None:
        self._change(entry_id, self.remote.returned, self.local.returned)
        with self._lock:
            self._mine.pop(entry_id, None)

    def lost(self, entry_id: int) -> None:
        self._change(entry_id, self.remote.lost, self.local.lost)
        with self._lock:
            self._mine.pop(entry_id, None)

    def adopt(self, entry_id: int, urn: str | None, digest: str) -> None:
        self._change(entry_id, lambda i: self.remote.adopt(i, urn, digest),
                     lambda i: self.local.adopt(i, urn, digest))

    def stopping(self, key: TaskKey, sid: str, resource_id: str = "") -> None:
        if not self._remote(lambda: self.remote.stopping(key, sid, resource_id))[0]:
            self.local.stopping(key, sid, resource_id)

    def stopped(self, key: TaskKey, sid: str | None, resource_id: str = "") -> None:
        if not self._remote(lambda: self.remote.stopped(key, sid, resource_id))[0]:
            self.local.stopped(key, sid, resource_id)

    def not_stopped(self, app_id: str, sid: str) -> None:
        self._remote(lambda: self.remote.not_stopped(app_id, sid))
        self.local.not_stopped(app_id, sid)

    def forget(self, entry_id: int) -> None:
        self._change(entry_id, self.remote.forget, self.local.forget)
        with self._lock:
            self._mine.pop(entry_id, None)

    def recorded(self, app_id: str, sid: str) -> None:
        self._remote(lambda: self.remote.recorded(app_id, sid))
        self.local.recorded(app_id, sid)

    def _both(self, remote: Callable[[], list[JournalEntry]],
              local: Callable[[], list[JournalEntry]]) -> list[JournalEntry]:
        from dataclasses import replace

        found = self._remote(remote)[1] or []
        found += [replace(entry, id=-entry.id) for entry in local()]
        return sorted(found, key=lambda entry: entry.started_at)

    def holders(self, key: TaskKey) -> list[JournalEntry]:
        return self._both(lambda: self.remote.holders(key), lambda: self.local.holders(key))

    def last_stop(self, key: TaskKey) -> float | None:
        times = [t for t in (self._remote(lambda: self.remote.last_stop(key))[1],
                             self.local.last_stop(key)) if t is not None]
        return max(times) if times else None

    def stop_of(self, app_id: str, sid: str) -> JournalEntry | None:
        from dataclasses import replace

        found = self._remote(lambda: self.remote.stop_of(app_id, sid))[1]
        if found is not None:
            return found
        local = self.local.stop_of(app_id, sid)
        return None if local is None else replace(local, id=-local.id)

    def claim(self, entry_id: int, seen_owner: str | None) -> bool:
        if entry_id < 0:
            return self.local.claim(-entry_id, seen_owner)
        claimed = self._remote(lambda: self.remote.claim(entry_id, seen_owner))[1]
        if claimed:
            entry = self._remote(lambda: self.remote.entry(entry_id))[1]
            if entry is not None:
                with self._lock:
                    self._mine[entry_id] = _Mine(entry.key, entry.resource_id, entry.urn,
                                                 entry.digest, entry.sid, entry.phase)
        return bool(claimed)  # a store that failed: not now (someone else may hold it)

    def release(self, entry_id: int) -> None:
        self._change(entry_id, self.remote.release, self.local.release)

    def orphans(self, stack: str) -> list[JournalEntry]:
        return self._both(lambda: self.remote.orphans(stack), lambda: self.local.orphans(stack))

    def entries(self) -> list[JournalEntry]:
        return self._both(self.remote.entries, self.local.entries)
