"""NCS (Message Notification Service) webhooks of Cloud Recording: sign, verify, build, parse.

Transport (S13, reference/agora-api.md section 7.2): Agora POSTs a JSON body

    {"noticeId": str, "productId": 3, "eventType": int, "notifyMs": int, "payload": {...}}

with two headers computed over the *raw* body with the NCS secret as the key, both hex digests
(S13; Agora's sample code prints ``hmac.new(secret, body, sha256).hexdigest()``):

* ``Agora-Signature``: HMAC-SHA1;
* ``Agora-Signature-V2``: HMAC-SHA256.

Deliveries can be duplicated and out of order: deduplicate on ``noticeId`` + ``notifyMs`` (S13),
order within a task by ``payload.sequence`` (S12).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from snapshot_resources.naming import SnapshotName, parse_snapshot_name

__all__ = [
    "CLOUD_RECORDING_PRODUCT_ID",
    "EVENT_NAMES",
    "SIGNATURE_HEADER",
    "SIGNATURE_V2_HEADER",
    "SNAPSHOT_FILE_EVENT",
    "NcsEvent",
    "SignatureError",
    "build_event",
    "dedup_key",
    "parse_event",
    "sign_headers",
    "snapshot_file",
    "snapshot_name",
    "verify_signature",
]

SIGNATURE_HEADER: Final = "Agora-Signature"  # HMAC-SHA1, hex (S13)
SIGNATURE_V2_HEADER: Final = "Agora-Signature-V2"  # HMAC-SHA256, hex (S13)
CLOUD_RECORDING_PRODUCT_ID: Final = 3  # productId of Cloud Recording events (S13)
SNAPSHOT_FILE_EVENT: Final = 45  # recorder_snapshot_file: details.fileName (S12)

# msgName of the Cloud Recording event types that concern snapshot tasks (S12).  Agora adds event
# types over time, so an unknown type parses with ``name=None`` instead of failing.
EVENT_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {
        1: "cloud_recording_error",
        2: "cloud_recording_warning",
        3: "cloud_recording_status_update",
        11: "session_exit",
        12: "session_failover",
        30: "uploader_started",
        31: "uploaded",
        32: "backuped",
        33: "uploading_progress",
        40: "recorder_started",
        41: "recorder_leave",
        43: "recorder_audio_stream_state_changed",
        44: "recorder_video_stream_state_changed",
        45: "recorder_snapshot_file",
    }
)


class SignatureError(Exception):
    """The body is not signed with the NCS secret (missing or mismatched signature header).

    The message names the header, never the secret or the expected digest.
    """


# --------------------------------------------------------------------------------------------------
# Signatures (S13)


def sign_headers(body: bytes, secret: str) -> dict[str, str]:
    """The two signature headers Agora sends with ``body`` (S13)."""
    key = _key(secret)
    return {
        SIGNATURE_HEADER: hmac.new(key, body, "sha1").hexdigest(),
        SIGNATURE_V2_HEADER: hmac.new(key, body, "sha256").hexdigest(),
    }


def verify_signature(body: bytes, headers: Mapping[str, str], secret: str) -> None:
    """Raise ``SignatureError`` unless ``body`` carries a valid signature for ``secret``.

    ``Agora-Signature-V2`` (HMAC-SHA256) decides when present; only when it is absent does
    ``Agora-Signature`` (HMAC-SHA1) decide (S13).  Header names are case-insensitive (HTTP).
    Pass the raw body as received, before any JSON decoding: the HMAC covers those bytes (S13).
    """
    key = _key(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    for header, digest in ((SIGNATURE_V2_HEADER, "sha256"), (SIGNATURE_HEADER, "sha1")):
        received = lowered.get(header.lower())
        if received is None:
            continue
        expected = hmac.new(key, body, digest).hexdigest().encode("ascii")
        # Constant-time comparison; hex is case-insensitive, Agora sends lower case (S13).
        given = received.strip().lower().encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(expected, given):
            raise SignatureError(f"{header} does not match the body: not signed with this NCS "
                                 f"secret, or the body was changed (S13)")
        return
    raise SignatureError(f"neither {SIGNATURE_V2_HEADER} nor {SIGNATURE_HEADER} is present (S13)")


def _key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret:
        # An empty key would let anyone compute a valid signature.
        raise ValueError("the NCS secret must be a non-empty string (S13)")
    return secret.encode("utf-8")


# --------------------------------------------------------------------------------------------------
# Bodies (S12, S13)


@dataclass(frozen=True)
class NcsEvent:
    """One NCS notification of Cloud Recording.

    The payload fields common to every Cloud Recording event (S12) are typed attributes; the
    per-event ``details`` stay a mapping, since Agora may add fields (S12).
    """

    notice_id: str
    product_id: int
    event_type: int
    notify_ms: int
    cname: str
    uid: str  # the recording bot's uid (S12)
    sid: str
    sequence: int
    sendts: int  # ms, UTC (S12)
    service_type: int
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)
    # msgName (S12): from EVENT_NAMES, else details.msgName, else None
    name: str | None = None


def build_event(
    event_type: int, payload: dict[str, Any], *, notice_id: str, notify_ms: int
) -> dict[str, Any]:
    """A Cloud Recording notification body (S13), for the emulator and for tests.

    ``payload`` carries ``cname``, ``uid``, ``sid``, ``sequence``, ``sendts``, ``serviceType``,
    ``details`` (S12); serialize the result once and sign exactly those bytes.
    """
    return {
        "noticeId": notice_id,
        "productId": CLOUD_RECORDING_PRODUCT_ID,
        "eventType": event_type,
        "notifyMs": notify_ms,
        "payload": payload,
    }


def parse_event(body: bytes | str | Mapping[str, Any]) -> NcsEvent:
    """Parse a notification body (raw bytes, text, or already-decoded JSON).

    Raises ``ValueError`` naming the field that is missing or of the wrong type.
    """
    data: Any = body
    if isinstance(body, bytes):
        try:
            data = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("NCS body: not UTF-8 text (S13: a JSON body)") from None
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as error:
            raise ValueError(f"NCS body: not valid JSON ({error.msg} at line {error.lineno} "
                             f"column {error.colno})") from None
    if not isinstance(data, Mapping):
        raise ValueError(f"NCS body: expected a JSON object, got {type(data).__name__} (S13)")
    payload = data.get("payload")
    if not isinstance(payload, Mapping):
        raise ValueError("NCS body: 'payload' must be a JSON object (S13)")
    details = payload.get("details", {})
    if not isinstance(details, Mapping):
        raise ValueError("NCS body: 'payload.details' must be a JSON object (S12)")
    event_type = _int(data, "eventType", "")
    return NcsEvent(
        notice_id=_str(data, "noticeId", ""),
        product_id=_int(data, "productId", ""),
        event_type=event_type,
        notify_ms=_int(data, "notifyMs", ""),
        cname=_str(payload, "cname", "payload."),
        # The bot's uid is a string in the documented examples; tolerate a number (S12).
        uid=_str(payload, "uid", "payload.", numbers=True),
        sid=_str(payload, "sid", "payload."),
        sequence=_int(payload, "sequence", "payload."),
        sendts=_int(payload, "sendts", "payload."),
        service_type=_int(payload, "serviceType", "payload."),
        details=MappingProxyType(dict(details)),
        name=_event_name(event_type, details),
    )


def _event_name(event_type: int, details: Mapping[str, Any]) -> str | None:
    # Agora repeats the name as details.msgName (S12); the table decides for the types it knows,
    # msgName names the rest (e.g. 42 recorder_slice_start, which snapshot tasks do not send).
    known = EVENT_NAMES.get(event_type)
    if known is not None:
        return known
    msg_name = details.get("msgName")
    return msg_name if isinstance(msg_name, str) else None


def _str(data: Mapping[str, Any], name: str, path: str, *, numbers: bool = False) -> str:
    value = data.get(name)
    if isinstance(value, str):
        return value
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"NCS body: '{path}{name}' must be a string, got {_kind(value)} (S12, S13)")


def _int(data: Mapping[str, Any], name: str, path: str) -> int:
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"NCS body: '{path}{name}' must be an integer, got {_kind(value)} "
                     f"(S12, S13)")


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def dedup_key(event: NcsEvent) -> tuple[str, int]:
    """``(noticeId, notifyMs)``: equal for redeliveries of one notification (S13)."""
    return (event.notice_id, event.notify_ms)


def snapshot_file(event: NcsEvent) -> str | None:
    """``details.fileName`` of event 45 ``recorder_snapshot_file``, as sent:
    ``<fileNamePrefix>/<jpg name>`` (S12); ``None`` for other events."""
    if event.event_type != SNAPSHOT_FILE_EVENT:
        return None
    value = event.details.get("fileName")
    if not isinstance(value, str):
        raise ValueError("NCS event 45: 'payload.details.fileName' must be a string (S12)")
    return value


def snapshot_name(event: NcsEvent) -> SnapshotName | None:
    """``snapshot_file`` parsed by the naming rule (S8); ``None`` for other events.

    S12 writes the value as ``<fileNamePrefix>/<file name>`` and does not say what it is without
    a prefix (UNCONFIRMED): a leading ``/`` is dropped, so both spellings give the object key.
    """
    key = snapshot_file(event)
    return None if key is None else parse_snapshot_name(key.lstrip("/"))
