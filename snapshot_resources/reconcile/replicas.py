"""Reconciler replicas on the shared store: several ``snapshot-resources reconcile`` processes for
one stack behind one endpoint (a load balancer spreads Agora's notifications over them).

The pattern is the one of Kubernetes controllers (a hot standby and a leader lease), on Redis
primitives (docs/shared-store.md, "Reconciler replicas"):

* **Once**: each verified notification's ``noticeId`` is recorded in the store (``SET NX`` with
  the replay window as its life, S13): the replica that records it first takes it; a redelivery
  to any replica is a duplicate.
* **Seen by all**: the replica that takes a notification appends its body to the stack's stream
  (``XADD``, at most ``STREAM_LENGTH`` kept); every replica reads the stream (``XREAD``) and
  hands each notification to its controller. So every replica knows every channel's hosts and
  every session's end, although each receives only part of the notifications; a replica that
  starts reads the stream from its beginning (after its first export of the state), which
  rebuilds channel presence.
* **One acts**: only the replica holding the stack's lease (``SET NX PX``, renewed every
  ``LEASE_TTL / 3`` by a thread, given up on exit) runs stack operations; the others keep the
  same bookkeeping and read the state, and take over within ``LEASE_TTL`` when the holder dies
  (kill -9 mid-round: the CLI it started finishes under Pulumi's lock, then the new holder's
  round sees what it did). The lease sits beside Pulumi's own lock, which still guards every
  update: the lease only keeps replicas from queueing behind each other.
* **Alone when the store fails**: a replica that cannot reach the store takes notifications
  with its own memory of ``noticeId`` values and acts on them itself, under Pulumi's lock only
  (``Role.ALONE``); it is said once, shown in ``/healthz`` and the metrics, and the store is used
  again when it answers.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from snapshot_resources.shared_store import SharedStore, StoreUnavailable

__all__ = ["LEASE_TTL", "STREAM_LENGTH", "ReplicaSet", "Role"]

log = logging.getLogger("snapshot_resources.reconcile")

LEASE_TTL: Final = 15.0
"""Seconds the stack's lease lasts without renewal: how long a dead holder delays the others."""
STREAM_LENGTH: Final = 10_000
"""Notifications kept in the stream (about 1 KiB each), for replicas that start later."""
_READ_BLOCK_MS: Final = 500  # shorter than the store's read timeout (shared_store.CALL_TIMEOUT)

_HOLD: Final = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
  return ARGV[1]
end
return holder
"""
"""KEYS: the lease. ARGV: this replica, lease ms. Returns the holder after the call."""

_GIVE_UP: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Role(enum.StrEnum):
    """What a replica does now: ``leader`` (holds the lease: acts), ``follower`` (keeps up,
    does not act), ``alone`` (the store fails: acts under Pulumi's lock only)."""

    LEADER = "leader"
    FOLLOWER = "follower"
    ALONE = "alone"


class ReplicaSet:
    """This replica's part in the replicas of ``stack`` on ``store`` (module docstring).

    ``store`` (``SharedStore``), ``stack`` (str, the fully qualified stack name), ``replica``
    (str | None: this replica's name, default ``host/pid/random``), ``lease_ttl`` (float, s).
    ``start()`` begins holding the lease (a thread); ``stop()`` gives it up. ``may_act()``
    says whether this replica runs stack operations now.
    """

    def __init__(self, store: SharedStore, stack: str, *, replica: str | None = None,
                 lease_ttl: float = LEASE_TTL) -> None:
        self.store = store
        self.stack = stack
        self.replica = replica or f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:6]}"
        self.lease_ttl = lease_ttl
        tag = "{reconcile:" + stack + "}"
        self._lease_key = store.key(tag, "lease")
        self._stream_key = store.key(tag, "notices")
        self._sweep_key = store.key(tag, "last-sweep")
        self._notice_prefix = store.key(tag, "notice", "")
        self._hold = store.client.register_script(_HOLD)
        self._give_up = store.client.register_script(_GIVE_UP)
        self._lock = threading.Lock()
        self._holder: str | None = None
        self._held_until = 0.0  # monotonic: this replica's lease is known to last until then
        self._role = Role.FOLLOWER
        self._stop = threading.Event()
        self._on_change: list[Callable[[Role], None]] = []
        self._threads: list[threading.Thread] = []
        store.fallback("reconciler", "the reconciler takes the notifications it receives and "
                       "acts on them alone, under Pulumi's lock")

    # -- the lease --------------------------------------------------------------------------

    def start(self) -> ReplicaSet:
        self._renew()
        thread = threading.Thread(target=self._keep_lease, name="reconcile-lease", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop following and give up the lease (another replica takes over at once)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=_READ_BLOCK_MS / 1000 + 2)
        if self.store.available():
            with contextlib.suppress(StoreUnavailable):
                self.store.run("reconciler lease", lambda client: self._give_up(
                    keys=[self._lease_key], args=[self.replica]))

    def on_change(self, callback: Callable[[Role], None]) -> None:
        """Call ``callback(role)`` whenever this replica's role changes."""
        self._on_change.append(callback)

    def _keep_lease(self) -> None:
        while not self._stop.wait(self.lease_ttl / 3):
            self._renew()

    def _renew(self) -> None:
        asked = time.monotonic()
        try:
            holder = self.store.run("reconciler lease", lambda client: self._hold(
                keys=[self._lease_key], args=[self.replica, int(self.lease_ttl * 1000)]))
            holder = holder.decode() if isinstance(holder, bytes) else str(holder)
        except StoreUnavailable:
            holder = None
        with self._lock:
            before = self._role
            if holder is None:
                # Still the leader while the lease it holds lasts; then alone.
                role = Role.LEADER if asked < self._held_until else Role.ALONE
            else:
                self._holder = holder
                if holder == self.replica:
                    self._held_until = asked + self.lease_ttl * 0.9
                    role = Role.LEADER
                else:
                    self._held_until = 0.0
                    role = Role.FOLLOWER
            self._role = role
        if role is not before:
            log.info("replica %s of %s: %s (lease held by %s)", self.replica, self.stack,
                     role.value, holder or "unknown: the store fails")
            for callback in self._on_change:
                callback(role)

    @property
    def role(self) -> Role:
        with self._lock:
            if self._role is Role.LEADER and time.monotonic() >= self._held_until:
                return Role.ALONE if not self.store.available() else Role.FOLLOWER
            return self._role

    @property
    def holder(self) -> str | None:
        """The replica that held the lease at the last look (None: not known)."""
        with self._lock:
            return self._holder

    def may_act(self) -> bool:
        """Whether this replica runs stack operations now (leader, or alone)."""
        return self.role is not Role.FOLLOWER

    # -- notifications ------------------------------------------------------------------------

    def first(self, notice_id: str, ttl: float) -> bool | None:
        """Record ``notice_id`` for ``ttl`` seconds: True the first time across the replicas,
        False for a repeat, None when the store fails (the caller decides alone)."""
        key = self._notice_prefix + notice_id
        try:
            return bool(self.store.run("reconciler notices", lambda client: client.set(
                key, self.replica, nx=True, ex=max(1, int(ttl)))))
        except StoreUnavailable:
            return None

    def forget(self, notice_id: str) -> None:
        """Drop the record of ``notice_id`` (handling failed: a resend is taken)."""
        key = self._notice_prefix + notice_id
        with contextlib.suppress(StoreUnavailable):
            self.store.run("reconciler notices", lambda client: client.delete(key))

    def publish(self, body: bytes) -> bool:
        """Append a verified notification's body to the stream; False when the store fails."""
        try:
            self.store.run("reconciler notices", lambda client: client.xadd(
                self._stream_key, {"body": body, "from": self.replica},
                maxlen=STREAM_LENGTH, approximate=True))
        except StoreUnavailable:
            return False
        return True

    def follow(self, handle: Callable[[bytes], None], ready: threading.Event) -> None:
        """Hand every body in the stream to ``handle``, from the first kept, in a thread that
        starts once ``ready`` is set (the controller has read the state once)."""
        thread = threading.Thread(target=self._follow, args=(handle, ready),
                                  name="reconcile-follow", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _follow(self, handle: Callable[[bytes], None], ready: threading.Event) -> None:
        while not ready.wait(0.5):
            if self._stop.is_set():
                return
        last = "0"
        while not self._stop.is_set():
            if not self.store.available():
                self._stop.wait(1.0)
                continue
            try:
                found = self.store.run("reconciler notices", functools.partial(
                    _read, {self._stream_key: last}))
            except StoreUnavailable:
                continue
            for _stream, entries in found or ():
                for entry_id, fields in entries:
                    last = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                    body = fields.get(b"body", fields.get("body"))
                    if body is None:
                        continue
                    try:
                        handle(body if isinstance(body, bytes) else str(body).encode())
                    except Exception as error:  # one bad entry must not stop the replica
                        log.error("replica %s: a notification from the stream failed: %s",
                                  self.replica, type(error).__name__)

    # -- the last sweep -----------------------------------------------------------------------

    def note_sweep(self, at: float) -> None:
        """The leader finished a sweep at ``at`` (Unix s): a new leader sweeps on schedule."""
        with contextlib.suppress(StoreUnavailable):
            self.store.run("reconciler lease", lambda client: client.set(
                self._sweep_key, repr(at), ex=7 * 24 * 3600))

    def last_sweep(self) -> float | None:
        try:
            value = self.store.run("reconciler lease", lambda client: client.get(
                self._sweep_key))
        except StoreUnavailable:
            return None
        try:
            return None if value is None else float(value)
        except (TypeError, ValueError):
            return None

    # -- health and metrics -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``/healthz`` shows: ``replica``, ``role``, ``leaseHolder``, ``store`` (the
        redacted URL), ``storeUp``."""
        store = self.store.status()
        return {"replica": self.replica, "role": self.role.value, "leaseHolder": self.holder,
                "store": store.where, "storeUp": store.up}

    def collector(self) -> Collector:
        """Prometheus metrics of the replica and the store (docs/reconcile.md, metrics)."""
        return _ReplicaCollector(self)


def _read(streams: dict[str, str], client: Any) -> Any:
    return client.xread(streams, count=500, block=_READ_BLOCK_MS)


class _ReplicaCollector(Collector):
    def __init__(self, replicas: ReplicaSet) -> None:
        self._replicas = replicas

    def collect(self) -> Iterator[Any]:
        replicas = self._replicas
        role = replicas.role
        holder = GaugeMetricFamily(
            "snapshot_reconcile_lease_holder", "The replica holding the stack's lease (1), "
            "as this replica last saw it.", labels=("replica",))
        if replicas.holder is not None:
            holder.add_metric((replicas.holder,), 1.0)
        yield holder
        roles = GaugeMetricFamily("snapshot_reconcile_replica_role",
                                  "This replica's role (1 for the current one).",
                                  labels=("replica", "role"))
        for each in Role:
            roles.add_metric((replicas.replica, each.value), 1.0 if each is role else 0.0)
        yield roles
        status = replicas.store.status()
        yield GaugeMetricFamily("snapshot_reconcile_shared_store_up",
                                "1 when the shared store answered the last call.",
                                value=1.0 if status.up else 0.0)
        failed = CounterMetricFamily("snapshot_reconcile_shared_store_failed_calls",
                                     "Calls to the shared store that failed.")
        failed.add_metric((), float(status.failed_calls))
        yield failed
        outages = CounterMetricFamily("snapshot_reconcile_shared_store_outages",
                                      "Times the shared store went from answering to failing "
                                      "(each said once in the log).")
        outages.add_metric((), float(status.outages))
        yield outages
