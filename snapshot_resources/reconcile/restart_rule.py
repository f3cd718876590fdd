"""The reconciler's restart rule, as one pure function: what it does about a session whose task
ended, or may have, given what it knows (docs/reconcile.md, "Causes and actions": that table is
this function, row by row, and ``tests/test_reconcile_restart_rule.py`` checks the two against
each other over every combination of inputs).

The controller asks ``restart_action`` each time it learns something about such a session (an
exit notification, a timer, a refresh's or a query's answer, a broadcaster's return) and only
applies the ``Action``; how a cause is read from the notifications is ``decisions.exit_cause``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from snapshot_resources.reconcile.decisions import Cause, IdlePolicy

__all__ = ["Action", "AgoraSays", "Facts", "restart_action"]


class Action(StrEnum):
    """What the controller does about the session (the ``what`` of its log line).

    ``IGNORE``: nothing; the end is not this reconciler's to act on.  ``KEEP``: nothing; Agora
    says the task runs, so the end it was told of is not acted on.  ``CHECK``: refresh the
    session (``pulumi refresh``, which queries Agora) and decide again with the answer.
    ``HOLD``: forget it now (``pulumi state delete``) and restart it when its channel has a
    broadcaster.  ``RESTART``: forget it (when the state still records that task) and start it
    again with a targeted ``pulumi up`` (for ``missing``: create it).
    """

    IGNORE = "ignore"
    KEEP = "keep"
    CHECK = "check"
    HOLD = "hold"
    RESTART = "restart"


class AgoraSays(StrEnum):
    """Agora's word about the task, when it was asked.  ``NOT_ASKED`` (``"-"``): only a
    notification or a timer speaks.  ``RUNNING``: a query or a refresh found the task running.
    ``GONE``: a refresh dropped the session (Agora no longer knows the task, after the failover
    grace).  ``NO_ANSWER``: the query before a forget got no answer (429, 5xx, network, 433, no
    credentials).  A query that confirms the exit (404, an exit status) changes nothing: the
    decision made on the notification stands."""

    NOT_ASKED = "-"
    RUNNING = "running"
    GONE = "gone"
    NO_ANSWER = "no answer"


@dataclass(frozen=True)
class Facts:
    """What the reconciler knows about one session when it decides.

    ``cause`` (``decisions.Cause``).  ``replaced`` (bool): the state now records another task
    (another sid) for the session.  ``ours`` (bool): the ended task is one this reconciler's
    rotation replaced.  ``declared`` (bool): the program declares the session (before the first
    read of the program, every session counts as declared).  ``agora`` (``AgoraSays``).
    ``idle_policy`` (``decisions.IdlePolicy``, ``--idle-restart``).  ``channel_events_seen``
    (bool): any RTC channel event reached this process.  ``broadcaster`` (bool | None): whether
    the session's channel has a broadcaster now; None: not known.
    """

    cause: Cause
    replaced: bool = False
    ours: bool = False
    declared: bool = True
    agora: AgoraSays = AgoraSays.NOT_ASKED
    idle_policy: IdlePolicy = IdlePolicy.AUTO
    channel_events_seen: bool = False
    broadcaster: bool | None = None


def restart_action(facts: Facts) -> Action:
    """The ``Action`` for ``facts`` (``Facts``): the first row of docs/reconcile.md's table that
    matches, in the table's order.  Pure; raises nothing."""
    if facts.replaced or facts.ours or not facts.declared:
        return Action.IGNORE
    if facts.agora is AgoraSays.RUNNING:
        return Action.KEEP
    if facts.agora is AgoraSays.NO_ANSWER:
        return Action.CHECK
    if facts.agora is AgoraSays.GONE:
        return Action.RESTART
    if facts.cause in (Cause.STOPPED, Cause.TOKEN_CHECK):
        return Action.CHECK
    if facts.cause is Cause.IDLE and _waits_for_broadcaster(facts):
        return Action.HOLD
    return Action.RESTART


def _waits_for_broadcaster(facts: Facts) -> bool:
    # Restarting into an empty channel only ends again after maxIdleTime (S3); `auto` waits only
    # once channel events prove they arrive here, else a held session would wait forever.
    if facts.idle_policy is IdlePolicy.IMMEDIATELY:
        return False
    if facts.idle_policy is IdlePolicy.AUTO and not facts.channel_events_seen:
        return False
    return facts.broadcaster is not True
