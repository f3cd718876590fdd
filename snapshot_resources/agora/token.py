"""RTC tokens for the recorder uid: Agora's AccessToken2 ("007") format, standard library only.

Cloud Recording joins the channel as an ordinary (non-streaming) client, so when the App Certificate
is enabled ``start`` needs an RTC token for the recorder's ``cname`` + ``uid`` (S3). The service
cannot renew it: the token has to outlive the session (S3, S18; docs/agora-api.md 3.3).

The algorithm is the one of Agora's reference builders, AgoraIO/Tools
``DynamicKey/AgoraDynamicKey/python3/src/{AccessToken2.py,RtcTokenBuilder2.py,Packer.py}``
(read at 0506ffac5176, 03bfcffbbaa6 and 47f8af3294e6), and ``tests/test_token.py`` reproduces
their own test vectors byte for byte. In short::

    signing_key = HMAC-SHA256(key=u32(salt), msg=HMAC-SHA256(key=u32(issue_ts), msg=certificate))
    signing_info = str(app_id) u32(issue_ts) u32(expire) u32(salt) u16(n) services...
    rtc service  = u16(1) map(u16 privilege -> u32 expire, sorted) str(channel) str(uid or "")
    token = "007" + base64(zlib(str(HMAC-SHA256(signing_key, signing_info)) + signing_info))

Integers are little endian, ``str`` is a u16 byte length followed by the bytes, and every expiry is
seconds relative to ``issue_ts``.

Secrets: the App Certificate and the tokens themselves never appear in an exception message or in a
``repr`` (CONTRIBUTING.md). ``ParsedToken`` holds no signature, so its repr cannot rebuild a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Final, Literal

from snapshot_resources import rules

__all__ = [
    "MAX_TOKEN_LIFETIME_SECONDS",
    "TOKEN_VERSION",
    "ParsedToken",
    "RtcPrivilege",
    "RtcService",
    "RtmService",
    "ServiceType",
    "build_rtc_token",
    "parse_token",
    "token_expires_at",
    "verify_token",
]

TOKEN_VERSION: Final = "007"  # noqa: S105 - the format version (AccessToken2.py get_version())


# "An authentication token is a dynamic key that is valid for a maximum of 24 hours."
# AgoraIO/Docs-Source shared/video-sdk/authentication-workflow/index.mdx @ 0e7552a66be5, the page
# Cloud Recording includes as cloud-recording/develop/authentication-workflow.mdx; RtcTokenBuilder2.py
# (build_token_with_uid_and_privilege) says the same of each privilege: "valid for a maximum of 24
# hours". The wire field is a u32, so only this documented limit bounds it.
MAX_TOKEN_LIFETIME_SECONDS: Final = 24 * 60 * 60

_UINT16_MAX: Final = 0xFFFF
_UINT32_MAX: Final = 0xFFFFFFFF
# AccessToken.__build_check: app id and certificate are 32 hexadecimal characters ("is_uuid").
_HEX32: Final = re.compile(r"[0-9a-fA-F]{32}")
# AccessToken.__init__ draws the salt with secrets.SystemRandom().randint(1, 99999999).
_SALT_MAX_DRAWN: Final = 99_999_999
_SIGNATURE_BYTES: Final = hashlib.sha256().digest_size
# A real RTC token inflates to a few hundred bytes; refuse anything that inflates past this, so a
# hostile string cannot make parse_token allocate without bound.
_MAX_INFLATED_BYTES: Final = 64 * 1024


class ServiceType(IntEnum):
    """AccessToken2 service types this module reads (AccessToken2.py ``kServiceType``)."""

    RTC = 1
    RTM = 2


class RtcPrivilege(IntEnum):
    """``ServiceRtc`` privileges (AccessToken2.py ``kPrivilege*``)."""

    JOIN_CHANNEL = 1
    PUBLISH_AUDIO_STREAM = 2
    PUBLISH_VIDEO_STREAM = 3
    PUBLISH_DATA_STREAM = 4


_PUBLISH_PRIVILEGES: Final = (
    RtcPrivilege.PUBLISH_AUDIO_STREAM,
    RtcPrivilege.PUBLISH_VIDEO_STREAM,
    RtcPrivilege.PUBLISH_DATA_STREAM,
)


@dataclass(frozen=True)
class RtcService:
    """The RTC service of a token. ``uid`` is the decimal string, or ``""`` for uid 0 (any uid);
    ``privileges`` maps a privilege id to its expiry in seconds after ``issue_ts`` (0 = no limit of
    its own, see ``token_expires_at``)."""

    channel_name: str
    uid: str
    privileges: Mapping[int, int]


@dataclass(frozen=True)
class RtmService:
    """The RTM service of a token (RtcTokenBuilder2.build_token_with_rtm adds it next to RTC)."""

    user_id: str
    privileges: Mapping[int, int]


@dataclass(frozen=True)
class ParsedToken:
    """The readable content of an AccessToken2 token. No signature and no certificate: verifying
    needs ``verify_token``."""

    version: str
    app_id: str
    issue_ts: int
    expire: int
    salt: int
    services: tuple[RtcService | RtmService, ...]

    @property
    def rtc(self) -> RtcService | None:
        """The RTC service, if the token has one."""
        for service in self.services:
            if isinstance(service, RtcService):
                return service
        return None


# --------------------------------------------------------------------------------------------------
# Building


def build_rtc_token(
    *,
    app_id: str,
    app_certificate: str,
    channel_name: str,
    uid: int | str,
    role: Literal["publisher", "subscriber"] = "subscriber",
    token_expire: int,
    privilege_expire: int | None = None,
    issued_at: int | None = None,
    salt: int | None = None,
) -> str:
    """An AccessToken2 RTC token for ``uid`` in ``channel_name``.

    ``role="subscriber"`` (the default) grants only "join channel"; ``"publisher"`` adds the three
    publish privileges, as RtcTokenBuilder2.build_token_with_uid does. The recorder needs only to
    join and subscribe: Agora calls the recording service "a non-streaming client in the channel"
    (Docs-Source cloud-recording/get-started/getstarted.md @ 0c4757c26fcd), and Agora's own
    Cloud Recording middleware generates its recording token with RoleSubscriber
    (AgoraIO-Community/agora-go-backend-middleware token_service/token_handlers.go GenRtcToken,
    called without a role by cloud_recording_service/cloud_recording_service.go StartRecording).
    Without co-host authentication the two roles are equivalent (RtcTokenBuilder2.py, Role_Subscriber).

    ``app_id`` and ``app_certificate`` (str): 32 hexadecimal characters each, as the Console shows
    them; the certificate is the signing key.  ``channel_name`` (str): the channel (rule
    channel_name).  ``token_expire`` and ``privilege_expire`` are seconds after ``issued_at``
    (Unix seconds; default: now), from 1 to ``MAX_TOKEN_LIFETIME_SECONDS`` (24 h);
    ``privilege_expire`` defaults to ``token_expire`` and may not exceed it (a later privilege
    would be cut by the token anyway, RtcTokenBuilder2.py). ``uid`` is
    an int from 0 to 2**32-1 or its decimal string; 0 means any uid, packed as "" like Agora's
    ``ServiceRtc(uid=0)``. ``salt`` defaults to a random 1..99999999, as Agora draws it.

    Returns the token, ``"007"`` followed by Base64 (str).  Raises ``ValueError`` naming the field
    and the rule; the certificate is never in the message.
    """
    _check_hex32("app_id", app_id)
    _check_hex32("app_certificate", app_certificate)
    if not rules.CHANNEL_NAME.matches(channel_name):
        raise ValueError(
            f"channel_name: must be {rules.CHANNEL_NAME.text} ({rules.CHANNEL_NAME.cite()})"
        )
    uid_text = _uid_text(uid)
    if role not in ("publisher", "subscriber"):
        raise ValueError("role: must be 'publisher' or 'subscriber'")
    _check_lifetime("token_expire", token_expire)
    if privilege_expire is None:
        privilege_expire = token_expire
    else:
        _check_lifetime("privilege_expire", privilege_expire)
        if privilege_expire > token_expire:
            raise ValueError(
                "privilege_expire: must not exceed token_expire (the token's own expiry cuts every "
                "privilege; AgoraIO/Tools RtcTokenBuilder2.py)"
            )
    if issued_at is None:
        issued_at = int(time.time())
    else:
        _check_uint32("issued_at", issued_at)
    if salt is None:
        salt = secrets.randbelow(_SALT_MAX_DRAWN) + 1
    else:
        _check_uint32("salt", salt)

    privileges = {int(RtcPrivilege.JOIN_CHANNEL): privilege_expire}
    if role == "publisher":
        privileges.update({int(p): privilege_expire for p in _PUBLISH_PRIVILEGES})
    service = (
        _u16(ServiceType.RTC)
        + _privilege_map(privileges)
        + _string(channel_name.encode())
        + _string(uid_text.encode())
    )
    signing_info = (
        _string(app_id.encode())
        + _u32(issued_at)
        + _u32(token_expire)
        + _u32(salt)
        + _u16(1)
        + service
    )
    signature = _sign(app_certificate, issued_at, salt, signing_info)
    payload = zlib.compress(_string(signature) + signing_info)
    return TOKEN_VERSION + base64.b64encode(payload).decode("ascii")


def _sign(app_certificate: str, issue_ts: int, salt: int, signing_info: bytes) -> bytes:
    # AccessToken.__signing: the issue time keys an HMAC of the certificate, the salt keys an HMAC of
    # that, and the result keys the HMAC of the signed content.
    key = hmac.new(_u32(issue_ts), app_certificate.encode(), hashlib.sha256).digest()
    key = hmac.new(_u32(salt), key, hashlib.sha256).digest()
    return hmac.new(key, signing_info, hashlib.sha256).digest()


def _check_hex32(field: str, value: object) -> None:
    # The value is never echoed: for app_certificate it is the secret itself.
    if not isinstance(value, str) or _HEX32.fullmatch(value) is None:
        raise ValueError(
            f"{field}: must be 32 hexadecimal characters (AgoraIO/Tools AccessToken2.py)"
        )


def _check_uint32(field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _UINT32_MAX:
        raise ValueError(
            f"{field}: must be an integer from 0 to {_UINT32_MAX} (a u32 in the token)"
        )


def _check_lifetime(field: str, value: object) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_TOKEN_LIFETIME_SECONDS
    ):
        raise ValueError(
            f"{field}: must be a number of seconds from 1 to {MAX_TOKEN_LIFETIME_SECONDS}: Agora "
            "tokens are valid for a maximum of 24 hours (Docs-Source authentication-workflow)"
        )


def _uid_text(uid: object) -> str:
    """The uid as ServiceRtc packs it: its decimal string, or "" for 0."""
    rule = f"an integer from 0 to {rules.UID_MAX} or its decimal string without leading zeros"
    if isinstance(uid, bool):
        raise ValueError(f"uid: must be {rule}")
    if isinstance(uid, str):
        if re.fullmatch(r"0|[1-9][0-9]{0,9}", uid) is None:
            raise ValueError(f"uid: must be {rule}")
        value = int(uid)
    elif isinstance(uid, int):
        value = uid
    else:
        raise ValueError(f"uid: must be {rule}")
    if not 0 <= value <= rules.UID_MAX:
        raise ValueError(f"uid: must be {rule}")
    return "" if value == 0 else str(value)


# --------------------------------------------------------------------------------------------------
# Packing (Packer.py): little-endian integers, u16-length-prefixed byte strings, u16-keyed maps


def _u16(value: int) -> bytes:
    return struct.pack("<H", value)


def _u32(value: int) -> bytes:
    return struct.pack("<I", value)


def _string(value: bytes) -> bytes:
    if len(value) > _UINT16_MAX:
        raise ValueError("a token field is longer than 65535 bytes")
    return _u16(len(value)) + value


def _privilege_map(privileges: Mapping[int, int]) -> bytes:
    # Service.__pack_privileges sorts by privilege id before packing.
    items = sorted(privileges.items())
    return _u16(len(items)) + b"".join(_u16(k) + _u32(v) for k, v in items)


class _Reader:
    """Reads what Packer.py writes; every short read is a ValueError."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    def _take(self, size: int) -> bytes:
        end = self._offset + size
        if end > len(self._data):
            raise ValueError("token: truncated content")
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def u16(self) -> int:
        value: int = struct.unpack("<H", self._take(2))[0]
        return value

    def u32(self) -> int:
        value: int = struct.unpack("<I", self._take(4))[0]
        return value

    def string(self) -> bytes:
        return self._take(self.u16())

    def text(self, field: str) -> str:
        try:
            return self.string().decode()
        except UnicodeDecodeError:
            raise ValueError(f"token: {field} is not UTF-8") from None

    def privileges(self) -> Mapping[int, int]:
        count = self.u16()
        result: dict[int, int] = {}
        for _ in range(count):
            key = self.u16()
            result[key] = self.u32()
        return MappingProxyType(result)

    def rest(self) -> bytes:
        return self._data[self._offset :]

    @property
    def at_end(self) -> bool:
        return self._offset == len(self._data)


# --------------------------------------------------------------------------------------------------
# Reading


def _inflate(token: str) -> bytes:
    """The decompressed content of a "007" token. Errors never quote the token (it is a secret)."""
    if not isinstance(token, str) or not token.startswith(TOKEN_VERSION):
        raise ValueError(f"token: not an AccessToken2 token (version {TOKEN_VERSION!r} expected)")
    try:
        compressed = base64.b64decode(token[len(TOKEN_VERSION) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("token: the part after the version is not valid base64") from None
    inflater = zlib.decompressobj()
    try:
        content = inflater.decompress(compressed, _MAX_INFLATED_BYTES)
    except zlib.error:
        raise ValueError("token: the content is not zlib data") from None
    if not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise ValueError(
            "token: the zlib stream is incomplete, oversized or followed by extra data"
        )
    return content


def _split(token: str) -> tuple[bytes, bytes, ParsedToken]:
    """(signature, signed content, parsed token)."""
    reader = _Reader(_inflate(token))
    signature = reader.string()
    signing_info = reader.rest()
    app_id = reader.text("app id")
    issue_ts = reader.u32()
    expire = reader.u32()
    salt = reader.u32()
    services: list[RtcService | RtmService] = []
    for _ in range(reader.u16()):
        service_type = reader.u16()
        privileges = reader.privileges()
        # Each service appends its own fields after the privilege map (AccessToken2.py unpack);
        # only the layouts read here can be skipped safely, so any other type is refused.
        if service_type == ServiceType.RTC:
            channel = reader.text("channel name")
            services.append(RtcService(channel, reader.text("uid"), privileges))
        elif service_type == ServiceType.RTM:
            services.append(RtmService(reader.text("user id"), privileges))
        else:
            raise ValueError(f"token: service type {service_type} is not supported (RTC 1, RTM 2)")
    if not reader.at_end:
        raise ValueError("token: unexpected bytes after the last service")
    parsed = ParsedToken(TOKEN_VERSION, app_id, issue_ts, expire, salt, tuple(services))
    return signature, signing_info, parsed


def parse_token(token: str) -> ParsedToken:
    """Read an AccessToken2 token without checking its signature.

    Raises ``ValueError`` if ``token`` is not a well-formed "007" token with RTC/RTM services only.
    """
    return _split(token)[2]


def verify_token(token: str, app_certificate: str) -> bool:
    """True if ``token`` is a well-formed AccessToken2 token signed with ``app_certificate``.

    Malformed tokens are False (Agora answers them like a wrong signature: code 110, S18). Expiry
    is not checked here; compare ``token_expires_at`` with the clock. Raises ``ValueError`` only
    for a certificate that is not 32 hexadecimal characters.
    """
    _check_hex32("app_certificate", app_certificate)
    try:
        signature, signing_info, parsed = _split(token)
    except ValueError:
        return False
    expected = _sign(app_certificate, parsed.issue_ts, parsed.salt, signing_info)
    return hmac.compare_digest(signature, expected)


def token_expires_at(token: str) -> int | None:
    """Unix seconds after which ``token`` no longer lets its uid join: ``issue_ts`` plus the smaller
    of the token's expiry and the RTC join-channel privilege's expiry.

    A privilege expiry of 0 sets no limit of its own (Agora's FPA builders pack 0 under a 24-hour
    token: AgoraIO/Tools DynamicKey/AgoraDynamicKey/lua/src/fpa_token_builder.lua), so only the
    token's expiry counts then. The publish privileges are ignored: the recorder never publishes.

    Returns ``None`` for a token of another version (e.g. the older "006" AccessToken), whose
    expiry this module does not read. Raises ``ValueError`` for a malformed "007" token.
    """
    if not isinstance(token, str) or not token.startswith(TOKEN_VERSION):
        return None
    parsed = parse_token(token)
    lifetime = parsed.expire
    rtc = parsed.rtc
    if rtc is not None:
        join = rtc.privileges.get(RtcPrivilege.JOIN_CHANNEL, 0)
        if join:
            lifetime = min(lifetime, join)
    return parsed.issue_ts + lifetime
