"""RTC channel events (Agora Notifications, productId 1, S24), as the emulator posts them.

Agora's notification service can post the events of RTC channels to the same kind of webhook as
Cloud Recording events: the same body shape (``noticeId``, ``productId``, ``eventType``,
``notifyMs``, ``payload``) and the same two signature headers (S24; S13 for the signature).  The
event types are declared once, in ``events.ChannelEvent``.  The emulator emits, when
``channel_events`` is on:

=====  ======================  ============================================================
type   name                    when (admin API)
=====  ======================  ============================================================
101    channel create          the first user joins a channel that has none
102    channel destroy         the last user leaves
103    broadcaster join        a user joins (every admin user is a host, ``models.User``)
104    broadcaster leave       a user leaves; ``reason`` 1 (left normally)
=====  ======================  ============================================================

Payload (S24): ``channelName`` (str), ``uid`` (int), ``platform`` (int; 0 here: the admin API has
no device), ``clientSeq`` (int, grows per event of a user, for ordering), ``ts`` (int, Unix
seconds of the event, emulated clock), and ``reason`` (int) on a leave.  The emulator's readings
(UNCONFIRMED at Agora): the recording bot itself produces no channel event (S24 lists a
``clientType`` 10 for Cloud Recording bots, so Agora may send them; the reconciler ignores them,
``reconcile.presence``), and "channel destroy" follows the last *user*, not the bot.  Audience
events (105, 106) and communication-profile events (107, 108) are never produced: every admin user
is a host.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from snapshot_resources.events import RTC_CHANNEL_PRODUCT_ID, ChannelEvent

__all__ = ["LEAVE_REASON_QUIT", "channel_event"]

LEAVE_REASON_QUIT: Final = 1  # payload.reason of a leave: the user quit (S24)
_PLATFORM_OTHER: Final = 0  # payload.platform: "other platform" (S24)


def channel_event(
    event_type: ChannelEvent, cname: str, uid: str | None, *, at: float, client_seq: int,
    reason: int | None = None,
) -> dict[str, Any]:
    """One RTC channel event body (module docstring), ready to serialize, sign and post.

    ``event_type`` (``events.ChannelEvent``): 101-104.  ``cname`` (str): the channel.  ``uid``
    (str | None): the user, digits; None for 101 and 102, which name no user (``uid`` 0 is
    sent).  ``at`` (float): emulated Unix seconds of the event; ``notifyMs`` and ``ts`` come from
    it.  ``client_seq`` (int): the ordering number.  ``reason`` (int | None): a leave's reason.
    Returns the body as a dict; raises nothing.
    """
    payload: dict[str, Any] = {
        "channelName": cname,
        "uid": int(uid) if uid is not None else 0,
        "platform": _PLATFORM_OTHER,
        "clientSeq": client_seq,
        "ts": int(at),
    }
    if reason is not None:
        payload["reason"] = reason
    return {
        "noticeId": uuid.uuid4().hex,
        "productId": RTC_CHANNEL_PRODUCT_ID,
        "eventType": int(event_type),
        "notifyMs": round(at * 1000),
        "payload": payload,
    }
