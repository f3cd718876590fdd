"""NCS (Message Notification Service) webhooks of Cloud Recording: sign, verify, build, parse.

Transport (S13): Agora POSTs a JSON body

    {"noticeId": str, "productId": 3, "eventType": int, "notifyMs": int, "payload": {...}}

with two headers computed over the *raw* body with the NCS secret as the key, both hex digests
(S13; Agora's sample code prints ``hmac.new(secret, body, sha256).hexdigest()``):

* ``Agora-Signature``: HMAC-SHA1;
* ``Agora-Signature-V2``: HMAC-SHA256.

A receiver calls ``verify_signature`` on the raw body and headers, then ``parse_event``, then
``SeenNotices.check_and_remember`` to drop redeliveries.

Errors
------
Everything wrong with a received notification raises one family, so a receiver can answer it with
one ``except`` (and a 4xx) while a misconfiguration still fails loudly::

    NotificationError (ValueError)    the notification must not be processed
    +-- SignatureError                not authentic: a signature header is missing, not a string,
    |   |                             repeated with different values, or does not match the body
    |   +-- ReplayError               authentic, but ``notifyMs`` is outside the replay window
    +-- NotificationBodyError         not a Cloud Recording notification: the body is not bytes,
                                      not UTF-8, not JSON (NaN and Infinity included), nested too
                                      deeply, not an object, or a field is missing or mistyped

``ReplayError`` is a ``SignatureError`` because freshness is part of authenticity: a captured,
validly signed notification sent again later is exactly what the signature alone cannot refuse,
and code that already answers ``SignatureError`` with 401 refuses a replay without a change.
``NotificationError`` is a ``ValueError`` so that callers of the former ``parse_event`` contract
(``ValueError``) keep working.  An empty or non-string NCS secret is a plain ``ValueError``: it is
the receiver's configuration, not the notification, that is wrong.  No message ever contains the
secret or an expected digest.

Replay window (decision)
------------------------
``notifyMs`` is the Unix time in ms at which NCS sent the notification; Agora's NCS pages say that
it is refreshed when a failed delivery is resent (S13).  NCS resends at once after a failure (no 200
within 10 s), then at growing, undocumented intervals, three times at most (S13).

* Past: ``NOTIFY_MAX_AGE_SECONDS`` = 600 (10 minutes).  Too short a window drops legitimate
  deliveries: a resend whose ``notifyMs`` is *not* refreshed (the emulator resends identical bytes;
  older NCS pages are silent) must survive the whole retry schedule, plus queueing on both sides
  and a receiver clock that lags by a little.  Too long a window lets a captured notification be
  replayed for longer and makes ``SeenNotices`` remember more.  The intervals are not published;
  ten minutes leaves room for three resends at intervals growing to a few minutes, and is the
  order of tolerance other signed webhooks use.
* Future: ``NOTIFY_MAX_FUTURE_SECONDS`` = 60.  Only clock skew puts an honest ``notifyMs`` ahead of
  the receiver's clock; NTP keeps servers within far less.  This allowance does not lengthen a
  replay attacker's opportunity (a capture is replayed after it was sent), so it is sized for skew
  only; a larger offset means a broken clock, which the error message says.

Both are parameters of ``verify_signature`` (``max_age=None`` turns the window off, e.g. to
re-verify stored bodies); ``clock`` (Unix seconds, default ``time.time``) is injectable for tests
and for emulators running on scaled time.

Duplicates
----------
NCS may deliver a notification more than once, and out of order (S13): drop repeats with
``SeenNotices``, keyed by ``noticeId`` alone since ``notifyMs`` changes on a resend.  Its memory
lasts ``max_age + max_future`` seconds by default: a notification stops passing the window at most
that long after it first could, so a repeat that still passes the window is still remembered.
Order within a task by ``payload.sequence`` (S12).
"""

from __future__ import annotations

import hmac
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from types import MappingProxyType
from typing import Any, Final, Literal, NoReturn, Protocol

from snapshot_resources.naming import SnapshotName, parse_snapshot_name

__all__ = [
    "CHANNEL_EVENT_NAMES",
    "CLOUD_RECORDING_CLIENT_TYPE",
    "CLOUD_RECORDING_PRODUCT_ID",
    "EVENT_NAMES",
    "HOST_ARRIVES",
    "HOST_LEAVES",
    "NOTIFY_MAX_AGE_SECONDS",
    "NOTIFY_MAX_FUTURE_SECONDS",
    "RTC_CHANNEL_PRODUCT_ID",
    "SEEN_NOTICES_MAX_SIZE",
    "SIGNATURE_HEADER",
    "SIGNATURE_V2_HEADER",
    "TOKEN_EXPIRED_ERROR_CODE",
    "ChannelEvent",
    "LeaveCode",
    "NcsEvent",
    "Noticed",
    "NotificationBodyError",
    "NotificationError",
    "RecordingEvent",
    "ReplayError",
    "SeenNotices",
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
RTC_CHANNEL_PRODUCT_ID: Final = 1  # productId of RTC channel events (S24)


class ChannelEvent(IntEnum):
    """The RTC channel event types (``eventType`` of productId 1, S24).

    Streaming profile (``channelType`` 1): 103/104 a host joins/leaves, 105/106 an audience member
    joins/leaves, 111/112 a user's role changes to host/audience.  Communication profile
    (``channelType`` 0): 107/108 a user joins/leaves (every user publishes).  101/102: the channel
    is created (first user) and destroyed (last user).  Payload: ``channelName``, ``uid``,
    ``platform``, ``clientType`` (only on platform 6, Linux: 10 is Cloud Recording), ``clientSeq``
    (orders one user's events), ``ts`` (Unix s), and ``reason`` on a leave.
    """

    CHANNEL_CREATE = 101
    CHANNEL_DESTROY = 102
    BROADCASTER_JOIN = 103
    BROADCASTER_LEAVE = 104
    AUDIENCE_JOIN = 105
    AUDIENCE_LEAVE = 106
    COMMUNICATION_JOIN = 107
    COMMUNICATION_LEAVE = 108
    ROLE_TO_BROADCASTER = 111
    ROLE_TO_AUDIENCE = 112


CHANNEL_EVENT_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {event.value: event.name.lower() for event in ChannelEvent})
"""``eventType`` -> name, for every ``ChannelEvent`` (S24)."""
HOST_ARRIVES: Final = frozenset({ChannelEvent.BROADCASTER_JOIN, ChannelEvent.COMMUNICATION_JOIN,
                                 ChannelEvent.ROLE_TO_BROADCASTER})
"""Events after which the user publishes in the channel (a host, or a communication user)."""
HOST_LEAVES: Final = frozenset({ChannelEvent.BROADCASTER_LEAVE, ChannelEvent.COMMUNICATION_LEAVE,
                                ChannelEvent.ROLE_TO_AUDIENCE})
"""Events after which the user no longer publishes (left, or became audience)."""
CLOUD_RECORDING_CLIENT_TYPE: Final = 10  # payload.clientType of a Cloud Recording bot (S24)
# The replay window; the reasoning is in the module docstring ("Replay window").
NOTIFY_MAX_AGE_SECONDS: Final = 600.0
NOTIFY_MAX_FUTURE_SECONDS: Final = 60.0
# SeenNotices' default bound: about 75 notifications a second sustained over the default 11-minute
# memory, a few MB at most.  Beyond it the oldest entries go first (and a late repeat of one of
# them would pass), so size it for the receiver's peak rate.
SEEN_NOTICES_MAX_SIZE: Final = 50_000


class RecordingEvent(IntEnum):
    """The Cloud Recording event types that concern snapshot tasks (``eventType`` of productId 3,
    S12); each name, lowercased, is Agora's ``msgName``.

    1 an error (``details.errorCode``: ``TOKEN_EXPIRED_ERROR_CODE`` for an expired token, S18),
    2 a warning, 3 a status update; 11 the task is gone (``session_exit``), 12 it moved to another
    recorder (``session_failover``); 30-33 the uploader; 40 the recorder joined, 41 it left
    (``details.leaveCode``: ``LeaveCode``), 43/44 a stream's state changed, 45 a snapshot file
    was uploaded (``details.fileName``).  Agora adds event types over time, so an unknown type
    parses with ``name=None`` instead of failing.
    """

    CLOUD_RECORDING_ERROR = 1
    CLOUD_RECORDING_WARNING = 2
    CLOUD_RECORDING_STATUS_UPDATE = 3
    SESSION_EXIT = 11
    SESSION_FAILOVER = 12
    UPLOADER_STARTED = 30
    UPLOADED = 31
    BACKUPED = 32
    UPLOADING_PROGRESS = 33
    RECORDER_STARTED = 40
    RECORDER_LEAVE = 41
    RECORDER_AUDIO_STREAM_STATE_CHANGED = 43
    RECORDER_VIDEO_STREAM_STATE_CHANGED = 44
    RECORDER_SNAPSHOT_FILE = 45


EVENT_NAMES: Final[Mapping[int, str]] = MappingProxyType(
    {event.value: event.name.lower() for event in RecordingEvent})
"""``eventType`` -> ``msgName``, for every ``RecordingEvent`` (S12)."""


class LeaveCode(IntFlag):
    """The bits of ``details.leaveCode`` of 41 ``recorder_leave`` that the reconciler reads
    (S12): ``NO_USERS`` (4), nobody in the channel for ``maxIdleTime``; ``CLIENT_LEFT`` (16), the
    bot called leaveChannel, which is what a stop does."""

    NO_USERS = 4
    CLIENT_LEFT = 16


TOKEN_EXPIRED_ERROR_CODE: Final = 109
"""``details.errorCode`` of 1 ``cloud_recording_error`` when the recorder's token expired (S18)."""


# --------------------------------------------------------------------------------------------------
# Errors (the tree is drawn in the module docstring)


class NotificationError(ValueError):
    """A received notification that must not be processed; base of this module's errors.

    Messages name the header or field and the rule (S12, S13), never the secret or a digest.
    """


class SignatureError(NotificationError):
    """The body is not signed with the NCS secret (S13).

    Raised when no signature header is present, when one is not a string (bytes, ``None``, a
    list, a number) or is given twice with different values, when ``headers`` is not a mapping,
    or when the digest does not match the raw body.  The message names the header, never the
    secret or the expected digest.
    """


class ReplayError(SignatureError):
    """A validly signed notification whose ``notifyMs`` is outside the replay window.

    ``message`` (str): the text, naming the bound and the offset in seconds, never the secret.
    ``check`` says which bound failed: ``"stale"`` (older than ``max_age`` seconds) or ``"future"``
    (more than ``max_future`` seconds ahead of the receiver's clock).  ``notify_ms`` and ``now_ms``
    are the compared values, Unix ms.  All four are kept as attributes.
    """

    # Defaults only so that pickle (which calls ``cls(message)``, then restores the attributes)
    # can rebuild it; this module always passes all three.
    def __init__(
        self,
        message: str,
        *,
        check: Literal["stale", "future"] = "stale",
        notify_ms: int = 0,
        now_ms: int = 0,
    ) -> None:
        super().__init__(message)
        self.check: Literal["stale", "future"] = check
        self.notify_ms = notify_ms
        self.now_ms = now_ms


class NotificationBodyError(NotificationError):
    """The body is not a Cloud Recording notification (S12, S13).

    Not bytes (for ``verify_signature``), not UTF-8, not JSON (``NaN``/``Infinity`` and integers
    longer than Python converts included), nested deeper than the JSON decoder recurses, not a
    JSON object, or a field missing or of the wrong type.  The message names the field.
    """


# --------------------------------------------------------------------------------------------------
# Signatures (S13)


def sign_headers(body: bytes, secret: str) -> dict[str, str]:
    """The two signature headers Agora sends with ``body`` (S13): name -> lower-case hex digest.

    ``body`` (bytes): the exact bytes to send.  ``secret`` (str): the NCS secret, the HMAC key.
    Returns ``{"Agora-Signature": <HMAC-SHA1>, "Agora-Signature-V2": <HMAC-SHA256>}``.

    Raises ``ValueError`` for an empty or non-string ``secret``.
    """
    key = _key(secret)
    return {
        SIGNATURE_HEADER: hmac.new(key, body, "sha1").hexdigest(),
        SIGNATURE_V2_HEADER: hmac.new(key, body, "sha256").hexdigest(),
    }


def verify_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    max_age: float | None = NOTIFY_MAX_AGE_SECONDS,
    max_future: float = NOTIFY_MAX_FUTURE_SECONDS,
    clock: Callable[[], float] = time.time,
) -> None:
    """Raise unless ``body`` is a fresh notification signed with ``secret``.

    ``body``: the raw bytes as received, before any JSON decoding: the HMAC covers those bytes
    (S13).  ``headers``: the request's headers, a mapping (or anything with ``items()``, such as
    ``http.client.HTTPMessage``) of ``str`` names to ``str`` values; names are case-insensitive
    (HTTP).  ``Agora-Signature-V2`` (HMAC-SHA256) decides when present; only when it is absent
    does ``Agora-Signature`` (HMAC-SHA1) decide (S13).

    Then, unless ``max_age`` is ``None``, ``notifyMs`` (Unix ms) must lie within ``max_age``
    seconds before and ``max_future`` seconds after ``clock()`` (Unix seconds, float); the
    defaults and why are in the module docstring.  The window is checked only once the signature
    holds, so an unsigned body is never decoded.

    Raises ``SignatureError`` (not authentic), its subclass ``ReplayError`` (outside the window),
    ``NotificationBodyError`` (signed, but ``notifyMs`` cannot be read), all ``NotificationError``;
    ``ValueError`` for an empty or non-string ``secret`` or a negative bound.
    """
    key = _key(secret)
    if max_age is not None and not (max_age >= 0 and max_future >= 0):
        raise ValueError(f"the replay window must not be negative: max_age={max_age!r}, "
                         f"max_future={max_future!r}")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise NotificationBodyError(f"NCS body: pass the raw request body as bytes (the "
                                    f"signature covers those bytes, S13), got {_kind(body)}")
    lowered = _signature_headers(headers)
    for header, digest in ((SIGNATURE_V2_HEADER, "sha256"), (SIGNATURE_HEADER, "sha1")):
        received = lowered.get(header.lower())
        if received is None:
            continue
        expected = hmac.new(key, body, digest).hexdigest().encode("ascii")
        # Hex is case-insensitive, Agora sends lower case (S13).  Anything but ASCII cannot be the
        # digest (and a lone surrogate would not even encode), so it is a mismatch, not a crash.
        given = received.strip().lower()
        if not given.isascii() or not hmac.compare_digest(expected, given.encode("ascii")):
            raise SignatureError(f"{header} does not match the body: not signed with this NCS "
                                 f"secret, or the body was changed (S13)")
        break
    else:
        raise SignatureError(f"neither {SIGNATURE_V2_HEADER} nor {SIGNATURE_HEADER} is present "
                             f"(S13)")
    if max_age is not None:
        _check_window(_notify_ms(bytes(body)), max_age, max_future, clock)


def _signature_headers(headers: object) -> dict[str, str]:
    """The signature headers of ``headers``, by lower-case name; raises ``SignatureError``."""
    items = getattr(headers, "items", None)
    if isinstance(headers, str | bytes | bytearray) or not callable(items):
        raise SignatureError(f"headers must be a mapping of header names to values, got "
                             f"{_kind(headers)} (S13)")
    wanted = {SIGNATURE_HEADER.lower(): SIGNATURE_HEADER,
              SIGNATURE_V2_HEADER.lower(): SIGNATURE_V2_HEADER}
    found: dict[str, str] = {}
    for pair in items():
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise SignatureError("headers must be a mapping of header names to values (S13)")
        name, value = pair
        if not isinstance(name, str):
            raise SignatureError(f"header names must be strings, got {_kind(name)} (S13)")
        header = wanted.get(name.lower())
        if header is None:
            continue  # other headers may be of any type: they are not ours to judge
        if not isinstance(value, str):
            # bytes (e.g. ASGI raw headers: decode them first), None, a list of repeated values...
            raise SignatureError(f"{header} must be a string (the hex digest), got "
                                 f"{_kind(value)} (S13)")
        # HTTPMessage keeps repeated headers; two different digests are not one signature.
        if found.setdefault(name.lower(), value) != value:
            raise SignatureError(f"{header} is present twice with different values (S13)")
    return found


def _notify_ms(body: bytes) -> int:
    data = _decode(body)
    return _int(data, "notifyMs", "")


def _check_window(
    notify_ms: int, max_age: float, max_future: float, clock: Callable[[], float]
) -> None:
    # Integer ms throughout: a signed but absurd notifyMs (10**400) must not overflow a float.
    now_ms = round(clock() * 1000)
    age_ms = now_ms - notify_ms
    if age_ms > max_age * 1000:
        raise ReplayError(
            f"notifyMs {notify_ms} is {age_ms // 1000} s before this receiver's clock, older "
            f"than the replay window of {max_age:g} s: a replayed or long-delayed notification "
            f"(S13)", check="stale", notify_ms=notify_ms, now_ms=now_ms)
    if -age_ms > max_future * 1000:
        raise ReplayError(
            f"notifyMs {notify_ms} is {-age_ms // 1000} s after this receiver's clock, beyond "
            f"the clock-skew allowance of {max_future:g} s: check the receiver's clock (NTP) "
            f"(S13)", check="future", notify_ms=notify_ms, now_ms=now_ms)


def _key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret:
        # An empty key would let anyone compute a valid signature.
        raise ValueError("the NCS secret must be a non-empty string (S13)")
    return secret.encode("utf-8")


# --------------------------------------------------------------------------------------------------
# Duplicates (S13)


class Noticed(Protocol):
    """Any parsed notification: what ``SeenNotices`` reads of it (``noticeId``, S13)."""

    @property
    def notice_id(self) -> str: ...


class SeenNotices:
    """The ``noticeId`` values seen lately, to drop redeliveries (S13).  Thread-safe.

    ``ttl``: seconds a ``noticeId`` is remembered after it was first seen; by default
    ``NOTIFY_MAX_AGE_SECONDS + NOTIFY_MAX_FUTURE_SECONDS`` (660), the longest a notification passes
    ``verify_signature``'s default window, so a repeat that passes the window is still
    remembered.  Pass the sum of your own ``max_age`` and ``max_future`` if you change them.
    ``max_size``: at most this many ids are kept (the least recently seen go first when full).
    ``clock``: monotonic seconds (default ``time.monotonic``), so a wall-clock step does not
    forget or pin entries.

    Raises ``ValueError`` for a non-positive ``ttl`` or ``max_size``.
    """

    def __init__(
        self,
        *,
        ttl: float = NOTIFY_MAX_AGE_SECONDS + NOTIFY_MAX_FUTURE_SECONDS,
        max_size: int = SEEN_NOTICES_MAX_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"ttl must be positive seconds, got {ttl!r}")
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
            raise ValueError(f"max_size must be a positive integer, got {max_size!r}")
        self._ttl = float(ttl)
        self._max_size = max_size
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, float] = OrderedDict()  # noticeId -> expiry, oldest first

    @property
    def ttl(self) -> float:
        return self._ttl

    @property
    def max_size(self) -> int:
        return self._max_size

    def check_and_remember(self, event: Noticed) -> bool:
        """``True`` the first time ``event.notice_id`` is seen within ``ttl`` (process it), and
        remember it; ``False`` for a repeat (drop it).  A repeat does not extend the memory.
        ``event``: an ``NcsEvent``, or any notification with a ``notice_id`` (``Noticed``), such
        as the RTC channel events of ``snapshot_resources.reconcile.notices``."""
        notice_id = event.notice_id
        with self._lock:
            now = self._clock()
            self._expire(now)
            if notice_id in self._seen:
                return False
            self._seen[notice_id] = now + self._ttl
            while len(self._seen) > self._max_size:
                self._seen.popitem(last=False)
            return True

    def forget(self, notice_id: str) -> None:
        """Forget ``notice_id`` (str), e.g. when handling it failed, so that the sender's resend
        is processed; nothing happens when it is not remembered."""
        with self._lock:
            self._seen.pop(notice_id, None)

    def __contains__(self, notice_id: object) -> bool:
        """Whether ``notice_id`` (a ``str``) is remembered and not expired."""
        with self._lock:
            self._expire(self._clock())
            return notice_id in self._seen

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._seen)

    def _expire(self, now: float) -> None:
        # Insertion order is expiry order (one ttl for all, a repeat is not re-inserted), so the
        # expired entries are a prefix: this stops at the first live one.
        while self._seen:
            notice_id, expiry = next(iter(self._seen.items()))
            if expiry > now:
                return
            del self._seen[notice_id]


# --------------------------------------------------------------------------------------------------
# Bodies (S12, S13)


@dataclass(frozen=True)
class NcsEvent:
    """One NCS notification of Cloud Recording.

    The payload fields common to every Cloud Recording event (S12) are typed attributes; the
    per-event ``details`` stay a mapping, since Agora may add fields (S12).

    Fields (body key in brackets; S12, S13): ``notice_id`` (str, ``noticeId``): the
    notification's id, the same on a redelivery.  ``product_id`` (int, ``productId``): 3 for
    Cloud Recording.  ``event_type`` (int, ``eventType``): e.g. 45 ``recorder_snapshot_file``
    (``EVENT_NAMES``).  ``notify_ms`` (int, ``notifyMs``): Unix ms when NCS sent it.  ``cname``
    (str, ``payload.cname``): the channel.  ``uid`` (str, ``payload.uid``): the recorder's uid.
    ``sid`` (str, ``payload.sid``): the recording id.  ``sequence`` (int, ``payload.sequence``):
    orders the events of one task.  ``sendts`` (int, ``payload.sendts``): Unix ms UTC when the
    event occurred.  ``service_type`` (int, ``payload.serviceType``).  ``details`` (mapping,
    ``payload.details``): the event's own fields, read-only.  ``name`` (str | None): the event's
    ``msgName`` from ``EVENT_NAMES``, else ``details.msgName``, else None.  Built by
    ``parse_event``.
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

    ``event_type`` (int): the NCS event type, e.g. 45 (``RecordingEvent.RECORDER_SNAPSHOT_FILE``).
    ``payload`` carries ``cname``, ``uid``, ``sid``, ``sequence``, ``sendts``, ``serviceType``,
    ``details`` (S12); serialize the result once and sign exactly those bytes.  ``notice_id``
    (str): the notification's id.  ``notify_ms`` (int): Unix ms of sending.

    Returns the body as a dict with ``noticeId``, ``productId`` (3), ``eventType``, ``notifyMs``
    and ``payload`` (used as given, not copied or checked).  Raises nothing.
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

    ``body`` (bytes | str | mapping): the notification; verify the raw bytes with
    ``verify_signature`` first.  Returns an ``NcsEvent``; an event type this module does not know
    still parses (its ``name`` from ``details.msgName``, else None).

    Raises ``NotificationBodyError`` (a ``ValueError``) naming the field that is missing or of the
    wrong type, or saying why the body is not a JSON object.
    """
    data = _decode(body)
    payload = data.get("payload")
    if not isinstance(payload, Mapping):
        raise NotificationBodyError("NCS body: 'payload' must be a JSON object (S13)")
    details = payload.get("details", {})
    if not isinstance(details, Mapping):
        raise NotificationBodyError("NCS body: 'payload.details' must be a JSON object (S12)")
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


def _decode(body: object) -> Mapping[str, Any]:
    """``body`` as a JSON object; raises ``NotificationBodyError`` and nothing else."""
    data: object = body
    if isinstance(body, bytes | bytearray | memoryview):
        try:
            data = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise NotificationBodyError("NCS body: not UTF-8 text (S13: a JSON body)") from None
    if isinstance(data, str):
        try:
            data = json.loads(data, parse_constant=_no_constant, parse_float=_finite_float)
        except json.JSONDecodeError as error:
            raise NotificationBodyError(f"NCS body: not valid JSON ({error.msg} at line "
                                        f"{error.lineno} column {error.colno})") from None
        except RecursionError:
            # json's decoder recurses once per nesting level; no NCS body nests past a handful.
            raise NotificationBodyError("NCS body: JSON nested too deeply (S13: a flat "
                                        "notification object)") from None
        except _ConstantError as error:
            raise NotificationBodyError(f"NCS body: {error}") from None
        except ValueError:
            # int() refuses integers of more than sys.get_int_max_str_digits() digits.
            raise NotificationBodyError("NCS body: a number in it is too long to read") from None
    if not isinstance(data, Mapping):
        raise NotificationBodyError(f"NCS body: expected a JSON object, got {_kind(data)} (S13)")
    return data


class _ConstantError(Exception):
    pass


def _no_constant(name: str) -> NoReturn:
    # Python's json accepts NaN, Infinity and -Infinity, which JSON does not have.
    raise _ConstantError(f"{name} is not JSON (RFC 8259)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _ConstantError(f"the number {text[:20]} overflows a float")
    return value


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
    raise NotificationBodyError(f"NCS body: '{path}{name}' must be a string, got {_kind(value)} "
                                f"(S12, S13)")


def _int(data: Mapping[str, Any], name: str, path: str) -> int:
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise NotificationBodyError(f"NCS body: '{path}{name}' must be an integer, got "
                                f"{_kind(value)} (S12, S13)")


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def dedup_key(event: NcsEvent) -> tuple[str, int]:
    """``(noticeId, notifyMs)``: identifies one delivery of one notification (S13).

    Equal when the same bytes arrive twice.  Agora's NCS pages say a resend refreshes
    ``notifyMs``, so to drop redeliveries key on ``noticeId`` alone: ``SeenNotices``.

    ``event`` (``NcsEvent``): a parsed notification.  Returns ``(event.notice_id,
    event.notify_ms)``.  Raises nothing.
    """
    return (event.notice_id, event.notify_ms)


def snapshot_file(event: NcsEvent) -> str | None:
    """``details.fileName`` of event 45 ``recorder_snapshot_file``, as sent:
    ``<fileNamePrefix>/<jpg name>`` (S12); ``None`` for other events.

    ``event`` (``NcsEvent``): a parsed notification.  Returns the object key Agora wrote (str),
    or None.  Raises ``NotificationBodyError`` (a ``ValueError``) when event 45 has no string
    fileName."""
    if event.event_type != RecordingEvent.RECORDER_SNAPSHOT_FILE:
        return None
    value = event.details.get("fileName")
    if not isinstance(value, str):
        raise NotificationBodyError("NCS event 45: 'payload.details.fileName' must be a string "
                                    "(S12)")
    return value


def snapshot_name(event: NcsEvent) -> SnapshotName | None:
    """``snapshot_file`` parsed by the naming rule (S8); ``None`` for other events.

    S12 writes the value as ``<fileNamePrefix>/<file name>`` and does not say what it is without
    a prefix (UNCONFIRMED): a leading ``/`` is dropped, so both spellings give the object key.
    """
    key = snapshot_file(event)
    return None if key is None else parse_snapshot_name(key.lstrip("/"))
