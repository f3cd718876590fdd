"""One request budget per App ID for every process that uses the shared store.

The same rule as ``ratelimit.TokenBucket`` (read its docstring first), kept in Redis so that
every process counts against one budget: a token is **held** from before a request is sent
until its answer has come, then **returns one window later**; at most ``rate`` tokens are held
or returning at any moment. Whatever the delays between taking a token and the request reaching
Agora, every request that arrives within any window holds or returns its token at the end of that
window, so at most ``rate`` arrive in it (S10: 10 per second per App ID, for all callers
together).

Each step is one Lua script (``ACQUIRE``, ``RELEASE``), which Redis runs atomically, with Redis's
own clock (``TIME``): processes on machines whose clocks differ still agree. Why a script rather
than a library (docs/shared-store.md, "Why a Lua script"): the rate-limit libraries with a Redis
backend (``limits``' moving window, token and leaky buckets) count a request when it is taken and
have no "held until the answer, returned a window after it", which is what makes the count
exact whatever the delays (measured: 429s with take-time counting, ``ratelimit``).

What the keys hold (all under one hash tag, so a cluster keeps them in one slot):

* ``held``: token id -> lease end (ms). A lease is a little longer than the request's own
  timeouts (``AgoraClient``), so a process killed mid-request loses its tokens: at the lease
  end each returns one window later, as if answered then.
* ``returns``: token id -> the moment it returns (ms).
* ``work`` and ``confirm``: the callers waiting for a token, in order of arrival (a counter,
  ``seq``), work (acquire, start, update, stop) and confirming queries apart: tokens go first
  come, first served, work before every query (``ratelimit``: tasks are started before the
  budget is spent confirming earlier ones), so no caller in any process starves; ``alive``: each
  waiter's lease (it asks again at least every window; one that stops asking leaves the queue).
  A waiter sleeps until the token its turn needs returns, not in a loop.
* ``members``: the processes that used the budget lately -> the end of their lease: how many
  share it, for the share each takes alone when the store fails.

Each key expires once unused (a minute after its last lease), so nothing is left behind.

When the store fails (``shared_store``), the process falls back to a ``TokenBucket`` of
``rate // members`` (the members last seen; ``ASSUMED_MEMBERS`` when never seen), at least 1:
slower, never over Agora's limit as long as that many processes share it. The hand-over is exact
both ways: the fallback starts with every slot taken for one window (the store's last window
may have been spent) and with this process's requests in flight counted as held; when the store
answers again (tried every ``shared_store.RETRY_AFTER`` seconds), what the fallback still counts
(held tokens and tokens returning) is written into the store first (``IMPORT``).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Hashable
from typing import Any, Final

from .. import provider_process
from ..journal import Owner
from ..shared_store import SharedStore, StoreUnavailable
from .ratelimit import DEFAULT_MARGIN, RateWindow, TokenBucket

__all__ = ["ACQUIRE", "ASSUMED_MEMBERS", "DEFAULT_LEASE", "IMPORT", "RELEASE", "SharedBudget"]

DEFAULT_LEASE: Final = 45.0
"""Seconds a held token lasts when the caller gives no lease (longer than any request's
timeouts: 10 s to connect + 30 s to read a stop's answer)."""
ASSUMED_MEMBERS: Final = 4
"""Processes assumed to share an App ID's budget when the store failed before it said."""
_MEMBER_LEASE_MS: Final = 30_000
_WAITER_LEASE_MS: Final = 3_000  # a waiting worker counts this long after its last look
_STORE: Final = "store"  # a held token taken from the store (thread stack entries)
_ALONE: Final = "alone"  # one taken from this process's own share while the store failed

ACQUIRE: Final = """
local held, returns, work, confirm = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local alive, members, seq = KEYS[5], KEYS[6], KEYS[7]
local capacity, token, lease = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local window, confirming, waiter = tonumber(ARGV[4]), ARGV[5] == '1', ARGV[6]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- a held token whose lease ended (its process died mid-request) returns a window after it
local expired = redis.call('ZRANGEBYSCORE', held, '-inf', now, 'WITHSCORES')
for i = 1, #expired, 2 do
  redis.call('ZADD', returns, tonumber(expired[i + 1]) + window, expired[i])
end
redis.call('ZREMRANGEBYSCORE', held, '-inf', now)
redis.call('ZREMRANGEBYSCORE', returns, '-inf', now)
-- a waiter that stopped asking (its process died, or it gave up) leaves the queues
for _, gone in ipairs(redis.call('ZRANGEBYSCORE', alive, '-inf', now)) do
  redis.call('ZREM', work, gone)
  redis.call('ZREM', confirm, gone)
end
redis.call('ZREMRANGEBYSCORE', alive, '-inf', now)
redis.call('ZREMRANGEBYSCORE', members, '-inf', now)
redis.call('ZADD', members, now + tonumber(ARGV[8]), ARGV[7])
local sharing = redis.call('ZCARD', members)
local keep = lease + window + 60000
local function touch()
  for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, keep) end
end
-- first come, first served: work (acquire, start, update, stop) before confirming queries
local queue = work
if confirming then queue = confirm end
if not redis.call('ZSCORE', queue, waiter) then
  redis.call('ZADD', queue, redis.call('INCR', seq), waiter)
end
redis.call('ZADD', alive, now + tonumber(ARGV[9]), waiter)
local position = redis.call('ZRANK', queue, waiter)
if confirming then position = position + redis.call('ZCARD', work) end
local free = capacity - redis.call('ZCARD', held) - redis.call('ZCARD', returns)
if position < free then
  redis.call('ZADD', held, now + lease, token)
  redis.call('ZREM', queue, waiter)
  redis.call('ZREM', alive, waiter)
  touch()
  return {0, sharing}
end
-- this caller's turn comes when the tokens ahead of it have returned; a held token returns at
-- least a window from now
local ahead = position - math.max(free, 0)
local wait = window
local turn = redis.call('ZRANGE', returns, ahead, ahead, 'WITHSCORES')
if #turn > 0 then wait = math.min(wait, tonumber(turn[2]) - now) end
touch()
return {math.max(wait, 1), sharing}
"""
"""KEYS: held, returns, work, confirm, alive, members, seq. ARGV: capacity, token id, lease ms,
window ms, confirming (1/0), waiter id, member id, member lease ms, waiter lease ms. Returns
{0, members} when the token is taken, else {ms to wait, members}."""

RELEASE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], 'GT', now - tonumber(ARGV[3] or 0) + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) + 60000)
return 1
"""
"""KEYS: held, returns. ARGV: token id, window ms, ms since the answer came. The token returns
a window after the answer (later, never earlier, if its lease already ended: ``GT``)."""


IMPORT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, held = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 3, 2 + held do redis.call('ZADD', KEYS[1], now + lease, ARGV[i]) end
for i = 3 + held, #ARGV do
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[i]), 'imported:' .. i .. ':' .. now)
end
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, lease + 60000) end
return 1
"""
"""KEYS: held, returns. ARGV: lease ms, the number of held tokens, their ids, then the ms until
each returning token returns. What a process counted alone while the store failed, handed to
the store when it answers again: those requests count there too."""


class SharedBudget(RateWindow):
    """``rate`` requests per ``window`` for ``app_id`` across every process on ``store``
    (module docstring). The interface of ``TokenBucket`` that ``AgoraClient`` uses: ``acquire``
    then ``release`` from the same thread, ``rate``, ``window``, ``lower_rate``."""

    def __init__(self, store: SharedStore, app_id: str, scope: Hashable, rate: float, *,
                 window: float = 1.0) -> None:
        super().__init__(rate, window)
        self._store = store
        # The scope (Agora's domains, or an emulator's URL) is hashed: keys stay short.
        scope_id = hashlib.sha256(repr(scope).encode()).hexdigest()[:12]
        tag = f"{{budget:{app_id}:{scope_id}}}"
        self._keys = [store.key(tag, part) for part in
                      ("held", "returns", "work", "confirm", "alive", "members", "seq")]
        self._member = str(Owner.this_process())
        self._members: int | None = None
        self._lock = threading.Lock()
        self._fallback: TokenBucket | None = None
        self._remote_held: set[str] = set()  # tokens of the store this process holds
        self._alone_held: set[str] = set()  # tokens of its own share it holds
        self._counted: set[str] = set()  # store tokens its own share counts as held
        self._imported: set[str] = set()  # own-share tokens handed over to the store
        self._local = threading.local()
        self._acquire = store.client.register_script(ACQUIRE)
        self._release = store.client.register_script(RELEASE)
        self._import = store.client.register_script(IMPORT)
        store.fallback("request budget", "a request budget of its own share per App ID")

    @property
    def members(self) -> int | None:
        """How many processes shared the budget at the last look (None: never looked)."""
        return self._members

    def lower_rate(self, rate: float) -> None:
        """Shrink the budget (never grow it), as ``TokenBucket.lower_rate``."""
        with self._lock:
            self._capacity = max(1, min(self._capacity, int(rate)))

    def fallback_rate(self) -> int:
        """The rate this process keeps to while the store fails (module docstring)."""
        sharing = self._members or ASSUMED_MEMBERS
        return max(1, self._capacity // max(1, sharing))

    def acquire(self, deadline: float | None = None, *, confirming: bool = False,
                held: bool = False, lease: float | None = None) -> bool:
        """Block until a token is taken (True), or False if that cannot happen before
        ``deadline`` (``time.monotonic``). ``held``: returned by ``release`` (a token taken
        without it returns a window + ``ratelimit.DEFAULT_MARGIN`` after it was taken);
        ``lease``: seconds a held token lasts if this process dies before ``release``."""
        token = uuid.uuid4().hex
        waiter = token
        lease_s = (lease or DEFAULT_LEASE) if held else self._window + DEFAULT_MARGIN
        while True:
            answer = self._ask(token, waiter, lease_s, confirming) if self._back() else None
            if answer is None:  # the store failed: this process's share, until it may answer
                alone = self._acquire_alone(token, deadline, confirming=confirming, held=held)
                if alone is not None:
                    return alone
                continue
            if answer == 0.0:
                if held:
                    with self._lock:
                        self._remote_held.add(token)
                    self._stack().append((_STORE, token))
                return True
            if deadline is not None and time.monotonic() + answer > deadline:
                self._withdraw(waiter)
                return False
            provider_process.sleep(answer)

    def _ask(self, token: str, waiter: str, lease: float, confirming: bool) -> float | None:
        """One ``ACQUIRE``: 0.0 (taken), the seconds to wait, or None when the store failed."""
        try:
            wait_ms, sharing = self._store.run("request budget", lambda client: self._acquire(
                keys=self._keys,
                args=[self._capacity, token, int(lease * 1000), int(self._window * 1000),
                      1 if confirming else 0, waiter, self._member, _MEMBER_LEASE_MS,
                      _WAITER_LEASE_MS]))
        except StoreUnavailable:
            return None
        self._members = int(sharing)
        return int(wait_ms) / 1000

    def release(self, answered: float | None = None) -> None:
        """The answer of this thread's last held request has come (``TokenBucket.release``);
        ``answered`` (``time.monotonic``), when given, is when: the token returns a window
        after it rather than after this call."""
        stack = self._stack()
        if not stack:
            return
        kind, token = stack.pop()
        with self._lock:
            fallback = self._fallback
            if kind == _ALONE:
                self._alone_held.discard(token)
                remote = token in self._imported
                self._imported.discard(token)
                local = fallback is not None
            else:
                self._remote_held.discard(token)
                local = fallback is not None and token in self._counted
                self._counted.discard(token)
                remote = True
        if local and fallback is not None:
            fallback.release()
        if remote and self._store.available():  # else its lease ends it: never waited for
            ago = 0 if answered is None else max(0, int((time.monotonic() - answered) * 1000))
            with contextlib.suppress(StoreUnavailable):
                self._store.run("request budget", lambda client: self._release(
                    keys=self._keys[:2], args=[token, int(self._window * 1000), ago]))

    def _acquire_alone(self, token: str, deadline: float | None, *, confirming: bool,
                       held: bool) -> bool | None:
        """A token from this process's share (``fallback_rate``): True, False (``deadline``
        passed), or None when the store may be tried again first."""
        with self._lock:
            if self._fallback is None:
                # Taken over from the store: its last window's requests and the ones in flight
                # count (every slot returns a window from now; in-flight ones when answered).
                self._fallback = TokenBucket(self.fallback_rate(), window=self._window)
                self._fallback.reserve(self._fallback.rate, held=len(self._remote_held))
                self._counted = set(self._remote_held)
            fallback = self._fallback
        retry_at = time.monotonic() + self._store.retry_after
        cut = retry_at if deadline is None else min(deadline, retry_at)
        if fallback.acquire(cut, confirming=confirming, held=held):
            if held:
                with self._lock:
                    self._alone_held.add(token)
                self._stack().append((_ALONE, token))
            return True
        if deadline is not None and time.monotonic() >= deadline - 1e-3:
            return False
        return None

    def _back(self) -> bool:
        """Whether to ask the store: it may answer, and what this process counted alone was
        handed over to it (``IMPORT``: the tokens held and returning count there too)."""
        if not self._store.available():
            return False
        with self._lock:
            fallback = self._fallback
            if fallback is None:
                return True
            held_ids = sorted(self._alone_held)
            _, returning = fallback.returning()
        try:
            self._store.run("request budget", lambda client: self._import(
                keys=self._keys[:2],
                args=[int(DEFAULT_LEASE * 1000), len(held_ids), *held_ids,
                      *(int(seconds * 1000) + 1 for seconds in returning)]))
        except StoreUnavailable:
            return False
        with self._lock:
            self._imported |= set(held_ids)
            self._fallback = None
            self._counted = set()
        return True

    def _withdraw(self, waiter: str) -> None:
        """A caller that gives up leaves the queues at once (else its lease ends it)."""
        work, confirm, alive = self._keys[2:5]

        def leave(client: Any) -> Any:
            with client.pipeline(transaction=True) as pipe:
                for key in (work, confirm, alive):
                    pipe.zrem(key, waiter)
                return pipe.execute()

        with contextlib.suppress(StoreUnavailable):
            self._store.run("request budget", leave)

    def _stack(self) -> list[tuple[str, str]]:
        stack: list[tuple[str, str]] | None = getattr(self._local, "tokens", None)
        if stack is None:
            stack = self._local.tokens = []
        return stack
