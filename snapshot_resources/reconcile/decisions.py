"""The reconciler's rules, as pure functions: why a session ended, when to look at a session again
although no notification came, and when to rotate one.  What follows each cause is
``restart_rule.restart_action`` (docs/reconcile.md, "Causes and actions", has the table).

Causes (``Cause``):

* ``idle``: 41 ``recorder_leave`` with ``leaveCode`` bit 4, "no users" (S12).  Restarting into an
  empty channel only ends again after ``maxIdleTime``, so, under ``IdlePolicy``, the restart
  waits for a broadcaster (``hold``).
* ``stopped``: ``leaveCode`` bit 16, the bot called leaveChannel, which is what a stop does (S12):
  someone stopped the task, maybe a ``pulumi up`` replacing or a ``destroy`` in progress.  The
  reconciler does not trust the notification alone: it refreshes the session (which queries
  Agora) before restarting it.
* ``token_expired``: the task exited at or after its ``tokenExpiresAt`` (Cloud Recording cannot
  renew a token, S3).  Restarted at once; the new task gets a new token.
* ``exited``: any other exit (11 ``session_exit``, S12), e.g. a fatal error.  Restarted at once.
* ``dropped``: ``pulumi refresh`` removed the session (Agora no longer knows the task, S7), with
  no notification seen.  Restarted at once.
* ``missing``: declared, but not in the state (a crash between forgetting and restarting, a
  failed create).  Created.
* ``token_check``: ``tokenExpiresAt`` plus a grace passed without an exit notification: the
  session is refreshed (the notification may have been lost).

Rotations (``Rotation``): a running session whose RTC token (``token``) or resource ID
(``resource_id``) ends within ``rotate_before`` seconds is replaced ahead of time by a targeted
``pulumi up --replace``: a new task, a new token, a new resource ID.  The moment is chosen inside
a window (``rotation_window``): at once when its channel is known to have no broadcaster
(nothing to capture, nothing lost), else just after one of its snapshots lands (the next capture
is a whole ``captureInterval`` away), and at the latest at the window's deadline.  A token given
in the stack file cannot be rotated (the replacement would start with the same token): that is
reported, never attempted (``can_rotate_token``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from snapshot_resources.events import LeaveCode
from snapshot_resources.reconcile.inventory import SessionRecord

__all__ = [
    "TOKEN_EXPIRY_SLACK_SECONDS",
    "Cause",
    "IdlePolicy",
    "Rotation",
    "RotationWindow",
    "Timer",
    "can_rotate_token",
    "exit_cause",
    "rotation_window",
    "session_timers",
]

TOKEN_EXPIRY_SLACK_SECONDS: Final = 5.0
"""An exit this close before ``tokenExpiresAt`` still counts as the token's expiry (clocks of
Agora and of the provider that wrote ``tokenExpiresAt`` differ by a little)."""


class Cause(StrEnum):
    """Why the reconciler restarts a session (module docstring has what follows each):
    ``IDLE`` (``"idle"``), ``STOPPED`` (``"stopped"``), ``TOKEN_EXPIRED`` (``"token_expired"``),
    ``EXITED`` (``"exited"``), ``DROPPED`` (``"dropped"``), ``MISSING`` (``"missing"``),
    ``TOKEN_CHECK`` (``"token_check"``).  The values are the ``cause`` label of the metrics."""

    IDLE = "idle"
    STOPPED = "stopped"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a cause, not a password
    EXITED = "exited"
    DROPPED = "dropped"
    MISSING = "missing"
    TOKEN_CHECK = "token_check"  # noqa: S105 - a cause, not a password


class Rotation(StrEnum):
    """What a rotation renews before it ends: ``TOKEN`` (``"token"``: the RTC token,
    ``tokenExpiresAt``) or ``RESOURCE_ID`` (``"resource_id"``: ``resourceExpiresAt``).  The
    values are the ``cause`` label of ``snapshot_reconcile_rotations_total``."""

    TOKEN = "token"  # noqa: S105 - a cause, not a password
    RESOURCE_ID = "resource_id"


class IdlePolicy(StrEnum):
    """When a session that ended on idle is restarted (``--idle-restart``).

    ``AUTO`` (``"auto"``, the default): wait for a broadcaster once this reconciler has received
    any RTC channel event (proof that Agora sends them here), else restart at once.  ``ON_JOIN``
    (``"on-join"``): always wait for a broadcaster.  ``IMMEDIATELY`` (``"immediately"``): never
    wait (the scheduled refresh + up workflow's behaviour).
    """

    AUTO = "auto"
    ON_JOIN = "on-join"
    IMMEDIATELY = "immediately"


@dataclass(frozen=True, order=True)
class Timer:
    """Look at session ``name`` at ``at`` (Unix s) for ``cause`` (``token_check``), unless its
    ``sid`` changed by then."""

    at: float
    name: str
    sid: str
    cause: Cause


@dataclass(frozen=True)
class RotationWindow:
    """When to rotate one task (module docstring).  ``kind`` (``Rotation``): what ends first.
    ``ends_at`` (Unix s): when it ends.  ``opens_at`` (Unix s): ``ends_at - rotate_before``;
    from then on a good moment is taken.  ``deadline`` (Unix s): ``ends_at - rotate_before / 2``;
    the rotation starts then at the latest, leaving half the margin for the replacement itself
    and for a retry."""

    kind: Rotation
    ends_at: float
    opens_at: float
    deadline: float


def exit_cause(leave_code: int | None, exit_at: float, token_expires_at: float | None, *,
               token_error: bool = False) -> Cause:
    """The cause of an exit: ``leave_code`` (int | None) from the task's 41 ``recorder_leave``
    (None when it was not received), ``exit_at`` (Unix s, the exit's ``sendts``),
    ``token_expires_at`` (Unix s | None, from the state), ``token_error`` (bool): the task
    reported NCS 1 with ``errorCode`` 109 (``events.TOKEN_EXPIRED_ERROR_CODE``), token expired
    (S18).  Returns ``idle``, ``stopped``,
    ``token_expired`` or ``exited`` (module docstring).  Raises nothing."""
    if leave_code is not None and leave_code & LeaveCode.NO_USERS:
        return Cause.IDLE
    if leave_code is not None and leave_code & LeaveCode.CLIENT_LEFT:
        return Cause.STOPPED
    if token_error:
        return Cause.TOKEN_EXPIRED
    if token_expires_at is not None and exit_at >= token_expires_at - TOKEN_EXPIRY_SLACK_SECONDS:
        return Cause.TOKEN_EXPIRED
    return Cause.EXITED


def can_rotate_token(record: SessionRecord) -> bool:
    """Whether a rotation renews ``record``'s token: only when the provider builds it from the
    App Certificate; a token given in the stack file (``record.given_token``) would be given
    again to the replacement, unchanged."""
    return not record.given_token


def rotation_window(record: SessionRecord, *, rotate_before: float) -> RotationWindow | None:
    """The rotation window of ``record`` (``RotationWindow``) for a margin of ``rotate_before``
    seconds (> 0), or None: no known end, or ``rotate_before`` is 0 (rotation off).  The end is
    the earlier of the token's (when ``can_rotate_token``) and the resource ID's.  Raises
    nothing."""
    if rotate_before <= 0:
        return None
    ends: list[tuple[float, Rotation]] = []
    if record.token_expires_at is not None and can_rotate_token(record):
        ends.append((record.token_expires_at, Rotation.TOKEN))
    if record.resource_expires_at is not None:
        ends.append((record.resource_expires_at, Rotation.RESOURCE_ID))
    if not ends:
        return None
    ends_at, kind = min(ends)
    return RotationWindow(kind, ends_at, ends_at - rotate_before, ends_at - rotate_before / 2)


def session_timers(record: SessionRecord, *, token_grace: float) -> list[Timer]:
    """The times to look at ``record`` again without a notification: its token's expiry plus
    ``token_grace`` seconds (rotation windows: ``rotation_window``).  Returns 0-1 ``Timer``;
    raises nothing."""
    timers: list[Timer] = []
    if record.token_expires_at is not None:
        timers.append(Timer(record.token_expires_at + token_grace, record.name, record.sid,
                            Cause.TOKEN_CHECK))
    return timers
