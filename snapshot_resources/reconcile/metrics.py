"""The reconciler's Prometheus metrics, in a registry of their own (served at ``/metrics``).

=====================================================  =========  ===============================
metric                                                 type       labels
=====================================================  =========  ===============================
``snapshot_reconcile_sessions``                        gauge      ``state``
``snapshot_reconcile_restarts_total``                  counter    ``cause``
``snapshot_reconcile_rotations_total``                 counter    ``cause``
``snapshot_reconcile_restart_seconds``                 histogram  ``cause``
``snapshot_reconcile_engine_runs_total``               counter    ``operation``, ``outcome``
``snapshot_reconcile_engine_run_seconds``              histogram  ``operation``
``snapshot_reconcile_consecutive_failures``            gauge
``snapshot_reconcile_last_capture_gap_seconds``        gauge      ``session``
``snapshot_reconcile_last_capture_timestamp_seconds``  gauge      ``session``
``snapshot_reconcile_notifications_total``             counter    ``product``, ``event``,
                                                                  ``outcome``
``snapshot_reconcile_exit_checks_total``              counter    ``outcome``
``snapshot_reconcile_last_sweep_timestamp_seconds``    gauge
``snapshot_reconcile_lease_holder``                    gauge      ``replica``
``snapshot_reconcile_replica_role``                    gauge      ``replica``, ``role``
``snapshot_reconcile_shared_store_up``                 gauge
``snapshot_reconcile_shared_store_failed_calls_total`` counter
``snapshot_reconcile_shared_store_outages_total``      counter
=====================================================  =========  ===============================

The last five exist with replicas on the shared store only (``replicas.ReplicaSet.collector``,
docs/reconcile.md, "Replicas"): which replica holds the stack's lease, this replica's role
(``leader``, ``follower``, ``alone`` while the store fails), and the store's health.

``sessions`` by ``state``: ``declared`` (in the stack file), ``in_state`` (in Pulumi's state),
``running`` (declared, in the state, and not known to have ended), ``held`` (ended on idle,
waiting for a broadcaster), ``pending`` (a restart or check is queued), ``rotating`` (in its
rotation window, waiting for a good moment).  ``restarts`` by ``cause``: a
``decisions.Cause`` value.  ``rotations`` by ``cause``: ``token`` or ``resource_id``.
``restart_seconds``: from the moment the reconciler learned a session had ended (notification
received, refresh dropped it, or, after an idle end, the broadcaster's return) to the end of the
``pulumi up`` that started its successor.  ``engine_runs`` by ``operation`` and ``outcome``
(``ok``, ``busy``: the stack was locked by another update, ``failed``): ``refresh`` and ``up``
run Pulumi's engine (a deployment); ``forget`` is ``pulumi state delete`` (a state edit under
the stack's lock, no deployment) and ``export`` a read of the state (no lock), counted beside
them because they fail and wait the same way.  ``consecutive_failures``: failed rounds in a
row (0 after a success; alert when it stays above 0).  ``last_capture_gap_seconds``: per
declared session, the seconds between its two latest snapshots as the ``recorder_snapshot_file``
notifications (45) report them (capture times from the file names, S8, S12), whichever task
took them: a restart or rotation shows there as the gap it caused.  ``notifications`` by
``product`` (``cloud_recording``, ``rtc_channel``, ``other``, ``unknown``), ``event`` (the type,
an integer that the product's table in ``events`` names, ``other`` for any other type, or ``-``)
and ``outcome`` (``accepted``, ``duplicate``, ``unmatched``, ``ignored``,
``bad_signature``, ``replayed``, ``bad_body``).  ``exit_checks`` by ``outcome`` (``gone``,
``running``, ``unknown``): Agora's answer to the query made before a session whose exit was
notified is forgotten (``confirm``).

Label values are bounded sets (session names come from the state and the program's declared
sessions; event types from the tables of ``events``).  Never a secret, a sid
or a channel name in a label.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "ReconcileMetrics"]

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of ``ReconcileMetrics.render()`` (Prometheus text format)."""

# Seconds: a targeted up takes about 1-5 s locally, a refresh of an ended session the failover
# grace (90 s by default), a lock wait behind someone's update minutes.
_BUCKETS: Final = (0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class ReconcileMetrics:
    """The metrics of one reconciler (module docstring); each instance has its own
    ``CollectorRegistry``, so several can live in one process (tests)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.sessions = Gauge(
            "snapshot_reconcile_sessions", "Sessions by state.", ("state",),
            registry=self.registry)
        self.restarts = Counter(
            "snapshot_reconcile_restarts", "Ended sessions started again, by cause.",
            ("cause",), registry=self.registry)
        self.rotations = Counter(
            "snapshot_reconcile_rotations", "Sessions replaced ahead of an expiry, by what "
            "would have expired.", ("cause",), registry=self.registry)
        self.restart_seconds = Histogram(
            "snapshot_reconcile_restart_seconds",
            "From learning that a session ended to its successor recorded, seconds.",
            ("cause",), buckets=_BUCKETS, registry=self.registry)
        self.engine_runs = Counter(
            "snapshot_reconcile_engine_runs", "Stack operations run, by outcome.",
            ("operation", "outcome"), registry=self.registry)
        self.engine_run_seconds = Histogram(
            "snapshot_reconcile_engine_run_seconds", "Duration of stack operations, seconds.",
            ("operation",), buckets=_BUCKETS, registry=self.registry)
        self.consecutive_failures = Gauge(
            "snapshot_reconcile_consecutive_failures", "Rounds failed in a row (0: the last "
            "round succeeded).", registry=self.registry)
        self.capture_gap = Gauge(
            "snapshot_reconcile_last_capture_gap_seconds",
            "Seconds between a session's two latest snapshots (any task).", ("session",),
            registry=self.registry)
        self.last_capture = Gauge(
            "snapshot_reconcile_last_capture_timestamp_seconds",
            "Unix time of a session's latest snapshot.", ("session",), registry=self.registry)
        self.notifications = Counter(
            "snapshot_reconcile_notifications", "Agora notifications received, by outcome.",
            ("product", "event", "outcome"), registry=self.registry)
        self.exit_checks = Counter(
            "snapshot_reconcile_exit_checks", "Exits queried at Agora before a session is "
            "forgotten, by what the query said.", ("outcome",), registry=self.registry)
        self.last_sweep = Gauge(
            "snapshot_reconcile_last_sweep_timestamp_seconds",
            "Unix time the last sweep (refresh + up) finished.", registry=self.registry)

    def render(self) -> bytes:
        """The registry in Prometheus' text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float:
        """A sample's current value (0.0 when absent), e.g.
        ``value("snapshot_reconcile_restarts_total", cause="idle")``.  ``name`` (str): the
        sample's name; ``labels``: its labels."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found

    def engine_run_count(self, *operations: str) -> float:
        """How many of ``operations`` (default: ``refresh`` and ``up``, the ones that run
        Pulumi's engine) were started, whatever their outcome."""
        names = operations or ("refresh", "up")
        return sum(self.value("snapshot_reconcile_engine_runs_total", operation=op,
                              outcome=outcome)
                   for op in names for outcome in ("ok", "busy", "failed"))
