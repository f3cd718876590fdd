"""The notifications the reconciler reads: Cloud Recording events and RTC channel events.

Both arrive as Agora notifications with one body shape and one signature scheme (S13, S24), so
one receiver verifies both with ``events.verify_signature`` and tells them apart by
``productId``:

* ``3``, Cloud Recording (S12): parsed by ``events.parse_event`` into an ``events.NcsEvent``.  The
  reconciler reads the ``events.RecordingEvent`` types 1 (``errorCode`` 109: the token
  expired), 41 ``recorder_leave`` (its ``leaveCode``, ``events.LeaveCode``), 11 ``session_exit``
  (the task is gone), 12 (a failover) and 45 (a snapshot file).
* ``1``, RTC channel events (S24): parsed here into a ``ChannelNotice``.  The reconciler reads
  the channel's create and destroy and every event that makes a user start or stop publishing
  (``events.HOST_ARRIVES``, ``events.HOST_LEAVES``) to know whether a channel has a host.

Any other ``productId`` raises ``UnsupportedProductError``: authentic, but not ours to act on (the
receiver answers 200 so that Agora does not resend it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from snapshot_resources.events import (
    CHANNEL_EVENT_NAMES,
    CLOUD_RECORDING_PRODUCT_ID,
    EVENT_NAMES,
    RTC_CHANNEL_PRODUCT_ID,
    NcsEvent,
    NotificationBodyError,
    parse_event,
)
from snapshot_resources.rules import is_ascii_digits

__all__ = [
    "OTHER_EVENT",
    "ChannelNotice",
    "Notice",
    "UnsupportedProductError",
    "event_label",
    "parse_notice",
]

OTHER_EVENT: Final = "other"  # the metrics' event label of a type no table names


class UnsupportedProductError(NotificationBodyError):
    """A notification of another Agora product than Cloud Recording (3) or RTC channels (1).

    ``product_id`` (int | None): the body's ``productId`` (None when it is not an integer).
    """

    def __init__(self, message: str, product_id: int | None = None) -> None:
        super().__init__(message)
        self.product_id = product_id


@dataclass(frozen=True)
class ChannelNotice:
    """One RTC channel event (productId 1).

    ``notice_id`` (str, ``noticeId``): the same on a redelivery.  ``event_type`` (int,
    ``eventType``): an ``events.ChannelEvent`` value, or another type (parsed, unnamed).
    ``notify_ms`` (int, ``notifyMs``): Unix ms when it was sent.  ``cname`` (str,
    ``payload.channelName``).  ``uid`` (str, ``payload.uid`` as digits; ``"0"`` for events
    about the channel itself).  ``client_seq`` (int, ``payload.clientSeq``; 0 when absent):
    orders a user's events.  ``ts`` (int, ``payload.ts``): Unix seconds of the event.  ``name``
    (str | None): from ``events.CHANNEL_EVENT_NAMES``.  ``platform`` (int | None,
    ``payload.platform``) and ``client_type`` (int | None, ``payload.clientType``, sent on
    platform 6 only): 6 and ``events.CLOUD_RECORDING_CLIENT_TYPE`` (10) is a Cloud Recording
    bot, not a user (S24).
    """

    notice_id: str
    event_type: int
    notify_ms: int
    cname: str
    uid: str
    client_seq: int
    ts: int
    name: str | None = None
    platform: int | None = None
    client_type: int | None = None


Notice = NcsEvent | ChannelNotice
"""A parsed notification the reconciler acts on."""


def parse_notice(body: bytes | str | Mapping[str, Any]) -> Notice:
    """Parse a verified notification body (verify the raw bytes with
    ``events.verify_signature`` first).

    ``body``: raw bytes, text or decoded JSON.  Returns an ``events.NcsEvent`` (productId 3) or a
    ``ChannelNotice`` (productId 1).  Raises ``UnsupportedProductError`` for another product and
    ``events.NotificationBodyError`` (a ``ValueError``) for a body that is not JSON or lacks a
    field, naming it.
    """
    data = _decode(body)
    product = data.get("productId")
    if product == CLOUD_RECORDING_PRODUCT_ID:
        return parse_event(data)
    if product == RTC_CHANNEL_PRODUCT_ID:
        return _channel_notice(data)
    known = product if isinstance(product, int) and not isinstance(product, bool) else None
    raise UnsupportedProductError(
        f"productId {product!r}: neither Cloud Recording (3) nor RTC channel events (1)", known)


def event_label(notice: Notice) -> tuple[str, str]:
    """``(product, event)`` labels for metrics: ``("cloud_recording", "11")`` or
    ``("rtc_channel", "103")``.  Bounded sets of values: an event type the product's table does
    not name (``events.EVENT_NAMES``, ``events.CHANNEL_EVENT_NAMES``) is ``"other"``, so that
    signed notifications cannot grow the number of series."""
    if isinstance(notice, ChannelNotice):
        known: Mapping[int, str] = CHANNEL_EVENT_NAMES
        product = "rtc_channel"
    else:
        known, product = EVENT_NAMES, "cloud_recording"
    return (product, str(notice.event_type) if notice.event_type in known else OTHER_EVENT)


def _decode(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise NotificationBodyError("notification body: not UTF-8 JSON (S13)") from None
    if not isinstance(data, Mapping):
        raise NotificationBodyError("notification body: expected a JSON object (S13)")
    return data


def _channel_notice(data: Mapping[str, Any]) -> ChannelNotice:
    payload = data.get("payload")
    if not isinstance(payload, Mapping):
        raise NotificationBodyError("RTC channel event: 'payload' must be a JSON object")
    event_type = _int(data, "eventType", "")
    uid = payload.get("uid", 0)
    if isinstance(uid, bool) or not isinstance(uid, int | str) or not is_ascii_digits(str(uid)):
        raise NotificationBodyError("RTC channel event: 'payload.uid' must be a uid (digits)")
    cname = payload.get("channelName")
    if not isinstance(cname, str) or not cname:
        raise NotificationBodyError("RTC channel event: 'payload.channelName' must be a string")
    notice_id = data.get("noticeId")
    if not isinstance(notice_id, str) or not notice_id:
        raise NotificationBodyError("RTC channel event: 'noticeId' must be a string")
    return ChannelNotice(
        notice_id=notice_id,
        event_type=event_type,
        notify_ms=_int(data, "notifyMs", ""),
        cname=cname,
        uid=str(int(uid)),
        client_seq=_int(payload, "clientSeq", "payload.", default=0),
        ts=_int(payload, "ts", "payload.", default=0),
        name=CHANNEL_EVENT_NAMES.get(event_type),
        platform=_optional_int(payload, "platform"),
        client_type=_optional_int(payload, "clientType"),
    )


def _int(data: Mapping[str, Any], key: str, path: str, *, default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotificationBodyError(f"RTC channel event: '{path}{key}' must be an integer")
    return value


def _optional_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return None if isinstance(value, bool) or not isinstance(value, int) else value
