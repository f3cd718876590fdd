"""``snapshot-resources reconcile``: keep the declared snapshot sessions of a stack running.

Sessions end on their own: idle channels (``maxIdleTime``, S3), RTC token expiry (S3), resource-ID
expiry (S2), a failover that never came back (S7).  The program (its stack file, or its Python
code) is the truth of intent; this package keeps reality close to it, driven by Agora's
notifications (Cloud Recording events, S12, and RTC channel events), timers read from the state,
and a periodic sweep, through the Automation API with targeted refresh and up.  It owns no
state of its own (docs/reconcile.md).

Modules, each with one job:

* ``notices``: parse a verified notification (Cloud Recording or RTC channel event);
* ``presence``: which channels have a broadcaster, from RTC channel events;
* ``inventory``: the sessions in the state (``pulumi stack export``), URNs and stack names;
* ``declared``: the sessions the program declares (a preview of it, kept until it may change);
* ``confirm``: Agora's word (a query) before a session whose exit was notified is forgotten;
* ``decisions``: pure rules: why a session ended, timers, rotation windows;
* ``restart_rule``: what to do about a session that ended, or may have: one pure function,
  docs/reconcile.md's decision table;
* ``intake``: what the reconciler knows of the stack, and the notifications matched with it;
* ``workqueue``: the pending work per session, due times and backoff;
* ``stack_ops``: export / refresh / up (with ``--replace``) / forget through the Automation API;
* ``round``: one round of stack operations;
* ``settings``: ``ControllerSettings``;
* ``controller``: the loop that wires them together and applies the actions, one round at a time;
* ``receiver``: ``POST /ncs`` (signature, replay window, duplicates), ``/metrics``, ``/healthz``;
* ``replicas``: several reconcilers of one stack on the shared store (a notification taken once
  and heard by all, one replica acting under a lease);
* ``metrics``: the Prometheus metrics;
* ``report``: one structured log line per decision.
"""

from __future__ import annotations

from snapshot_resources.reconcile.controller import Controller
from snapshot_resources.reconcile.decisions import Cause, IdlePolicy, Rotation
from snapshot_resources.reconcile.metrics import ReconcileMetrics
from snapshot_resources.reconcile.receiver import NotificationReceiver
from snapshot_resources.reconcile.restart_rule import Action, restart_action
from snapshot_resources.reconcile.settings import ControllerSettings
from snapshot_resources.reconcile.stack_ops import (
    AutomationStackOps,
    StackBusyError,
    StackOperationError,
    StackOps,
)

__all__ = [
    "Action",
    "AutomationStackOps",
    "Cause",
    "Controller",
    "ControllerSettings",
    "IdlePolicy",
    "NotificationReceiver",
    "ReconcileMetrics",
    "Rotation",
    "StackBusyError",
    "StackOperationError",
    "StackOps",
    "restart_action",
]
