"""How the reconciler's controller runs: ``ControllerSettings``, the flags of ``snapshot-resources
reconcile`` and the settings that have none (docs/reconcile.md, "The command")."""

from __future__ import annotations

from dataclasses import dataclass

from snapshot_resources.reconcile.decisions import IdlePolicy

__all__ = ["ControllerSettings"]


@dataclass(frozen=True)
class ControllerSettings:
    """How the controller runs (``snapshot-resources reconcile`` flags of the same names).

    ``interval`` (float, s, default 900, > 0): between sweeps (refresh every session, then up
    what is missing); the first sweep runs at start.  ``rotate_before`` (float, s, default 600,
    >= 0; 0 turns rotation off): rotate a session whose token or resource ID ends within this
    margin (``decisions.rotation_window``).  ``state_poll`` (float, s, default 60, > 0): the
    state is read again (``pulumi stack export``: a read, no lock, no engine) at least this
    often, so that timers follow the sessions someone else's ``pulumi up`` created; a
    notification about a sid the state does not hold makes it read at once.  ``token_grace``
    (float, s, default 60, >= 0): after a session's ``tokenExpiresAt`` with no exit
    notification, it is refreshed.  ``idle_policy``
    (``IdlePolicy``, default ``auto``).  ``batch_window`` (float, s, default 0.5, >= 0): a round
    starts this long after the first new piece of work, so that a burst of notifications makes
    one round.  ``retry_delay`` (float, s, default 5): first delay after a failed round, doubled
    per failure up to ``max_retry_delay`` (float, s, default 300).  ``busy_delay`` (float, s,
    default 1): first wait for a stack locked by another update, doubled per attempt up to
    ``max_busy_delay`` (float, s, default 30).  Raises ``ValueError`` for a non-positive
    interval or delay, or a negative margin, grace or window.
    """

    interval: float = 900.0
    rotate_before: float = 600.0
    state_poll: float = 60.0
    token_grace: float = 60.0
    idle_policy: IdlePolicy = IdlePolicy.AUTO
    batch_window: float = 0.5
    retry_delay: float = 5.0
    max_retry_delay: float = 300.0
    busy_delay: float = 1.0
    max_busy_delay: float = 30.0

    def __post_init__(self) -> None:
        positive = (self.interval, self.state_poll, self.retry_delay, self.max_retry_delay,
                    self.busy_delay, self.max_busy_delay)
        if not all(value > 0 for value in positive):
            raise ValueError("interval and every delay must be positive")
        if not (self.token_grace >= 0 and self.rotate_before >= 0 and self.batch_window >= 0):
            raise ValueError("token_grace, rotate_before and batch_window must not be negative")
