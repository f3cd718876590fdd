"""The reconciler's log: one structured line per decision.

Every decision the controller takes is logged once, through ``decision``, on the logger
``snapshot_resources.reconcile``, with these fields (the record's ``decision`` attribute):

* ``what``: the decision, or what came of it: ``restart`` (queued: the task ended), ``hold``
  (ended on idle: wait for a broadcaster), ``release`` (the broadcaster is back), ``check``
  (queued for a refresh), ``keep`` (the refresh found it running), ``ignore`` (an old task, an
  undeclared session, an undeployed stack), ``forgotten`` (removed from the state),
  ``restarted`` / ``created`` (a new task runs), ``first_snapshot`` (its first snapshot landed;
  ``gap``: seconds since the previous one), ``rotate_wait`` (rotation window open),
  ``rotated``, ``cannot_rotate`` (a token given in the stack file), ``sweep``, ``wait`` (the
  stack is locked by someone else's update), ``backoff`` (a round failed), ``failover``,
  ``stop``;
* ``why``: the reason, in words (a cause, an event, a rule);
* ``session``: the session's name in the stack file (None for stack-wide decisions);
* ``seconds``: how long: the operation it ran, the wait it chose, or the gap it measured (None
  when nothing is timed);
* more fields where they help (``sid``, ``cause``, ``operation``, ``failures`` ...).

``JsonLinesFormatter`` writes each record as one JSON object per line (``ts``, ``level``, then
the decision's fields, or ``message`` for other records; ``exception``, when a record carries
one, is its type only, never a traceback): what ``snapshot-resources reconcile``
prints on stderr by default (``--log-format json``); ``--log-format text`` prints
``what session: why (seconds s)``.  No field holds a secret: decisions name sessions, sids,
causes and durations only.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final

__all__ = ["LOGGER", "JsonLinesFormatter", "decision"]

LOGGER: Final = "snapshot_resources.reconcile"
log = logging.getLogger(LOGGER)


def decision(what: str, why: str, *, session: str | None = None, seconds: float | None = None,
             level: int = logging.INFO, **fields: Any) -> None:
    """Log one decision (module docstring).  ``what`` (str), ``why`` (str), ``session`` (str |
    None), ``seconds`` (float | None, rounded to milliseconds), ``level`` (a ``logging`` level,
    default INFO), ``fields``: more JSON-ready values (None values are left out)."""
    data: dict[str, Any] = {"what": what, "session": session, "why": why}
    if seconds is not None:
        data["seconds"] = round(seconds, 3)
    data.update({key: value for key, value in fields.items() if value is not None})
    timed = "" if seconds is None else f" ({seconds:.2f} s)"
    log.log(level, "%s %s: %s%s", what, session or "-", why, timed, extra={"decision": data})


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record (module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
        }
        data = getattr(record, "decision", None)
        if isinstance(data, dict):
            out.update(data)
        else:
            out["message"] = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: a traceback would spread over many lines of text, and a message
            # may carry what a request sent.
            out["exception"] = record.exc_info[0].__name__
        return json.dumps(out, default=str)
