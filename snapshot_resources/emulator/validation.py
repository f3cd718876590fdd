"""The emulator's checks of acquire, start and update bodies, written from the reference alone.

This is the service side of the wire.  It deliberately shares no code with ``spec.py``,
``rules.py`` or ``agora/wire.py``: if the client and the emulator read the reference the same wrong
way through one shared module, both sides would agree and the tests would prove nothing.  So a
field added to the tables in ``rules.py`` is not accepted here until it is written here too, from
the reference (CONTRIBUTING.md, "Add a field"); ``tests/test_wire_emulator_agreement.py`` keeps
the two sides agreeing on the documented cases.

Every failure is ``400 {"code": 2, "reason": ...}`` (S7: wrong type, misspelled, out of range or
missing), except the acquire errors that S7 gives their own code.  The reason names the dotted
path of the field and the rule; every problem found is listed, separated by ``"; "``.  Secret
values (keys, tokens) are never echoed.

Decisions where the reference marks a CONFLICT:

* ``captureInterval``: [1, 3600].  The REST pages say [5, 3600], but the 2021-10-29 release note
  says the service widened it to [1, 3600] (S14, S8, W2); the service is what is emulated.
* ``maxIdleTime``: [5, 2592000] as every Agora document says (S2, S3, S17, S19).
* Blacklists: both spellings are accepted, in start's ``recordingConfig`` (S3) and in update's
  ``streamSubscribe`` lists (S5), because Agora's own sources disagree.  The current English REST
  reference spells them ``unsubscribeVideoUids`` / ``unsubscribeAudioUids`` (S2, S3, S5, S17).
  The Chinese start reference and Agora's official Java and Go REST clients spell them
  ``unSubscribeVideoUids`` / ``unSubscribeAudioUids``; the Go client switched to that spelling in
  2024 after a user reported that the lower-case key did not work and its maintainer agreed
  (AgoraIO-Community/agora-rest-client-go, issue #19, 2024-08-20).  Which one the service reads
  is not settled, so the emulator takes either and records the same uids.  The same list under
  both spellings in one object is 400 code 2 (which one would win is unknowable); any other casing
  is an unknown field (parameters are case-sensitive, S10, S18).
* The emulator runs snapshot-only tasks: ``snapshotConfig`` is required and
  ``recordingFileConfig`` refused (S3 rule 2, S8).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from snapshot_resources.emulator import tables
from snapshot_resources.emulator.errors import ServiceError, invalid_parameter

UID_MAX: Final = 2**32 - 1  # uids are unsigned 32-bit integers (S2, S19)
ALL_STREAMS: Final = "#allstream#"  # every uid, including later joiners (S3, S15)
MAX_LIST: Final = 32  # entries per subscription list (S3, S5)
RESOURCE_HOURS: Final = (1, 720)  # resourceExpiredHour (S2, S17)
RESOURCE_HOURS_DEFAULT: Final = 72  # (S2)
IDLE_RANGE: Final = (5, 2_592_000)  # maxIdleTime seconds (S2, S3, S17, S19)
IDLE_DEFAULT: Final = 30  # (S3)
CAPTURE_RANGE: Final = (1, 3600)  # captureInterval seconds, see the module docstring (S14)
CAPTURE_DEFAULT: Final = 10  # (S3)
PREFIX_MAX: Final = 128  # fileNamePrefix joined with '/', characters (S3)
CHANNEL_MAX_BYTES: Final = 63  # "shorter than 64 bytes" (S18 code 1013)
_CHANNEL: Final = re.compile(r"[a-zA-Z0-9 !#$%&()+\-:;<=.>?@\[\]^_{}|~,]+")  # (S18)
_UID: Final = re.compile(r"[0-9]+")
_PREFIX_SEGMENT: Final = re.compile(r"[a-zA-Z0-9]+")  # (S3, S17, S19)
# media -> the blacklist's two spellings, (English REST reference, official clients): see above.
_BLACKLISTS: Final = {"Video": ("unsubscribeVideoUids", "unSubscribeVideoUids"),
                      "Audio": ("unsubscribeAudioUids", "unSubscribeAudioUids")}
_UID_DIGITS: Final = len(str(UID_MAX))
_DECRYPTION_MODES: Final = range(0, 9)  # 0 none ... 8 AES_256_GCM2 (S3)
_SALTED_MODES: Final = frozenset({7, 8})  # salt required (S3)


# --------------------------------------------------------------------------------------------------
# What a valid request means to the emulator


@dataclass(frozen=True)
class StorageConfig:
    """A checked ``storageConfig`` (S3).  Keys are kept out of ``repr``."""

    vendor: int
    region: int
    bucket: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    sts_token: str | None = field(default=None, repr=False)
    file_name_prefix: tuple[str, ...] = ()
    endpoint: str | None = None
    sse: str | None = None
    tag: str | None = None


@dataclass(frozen=True)
class Subscription:
    """Which uids' video a task captures (S3, S15).

    With no list at all every stream is subscribed; when only audio lists are set, video is not
    subscribed at all (S15); a whitelist may hold ``#allstream#``.
    """

    video_include: tuple[str, ...] | None = None
    video_exclude: tuple[str, ...] | None = None
    audio_include: tuple[str, ...] | None = None
    audio_exclude: tuple[str, ...] | None = None

    def captures_video_of(self, uid: str) -> bool:
        if self.video_include is not None:
            return ALL_STREAMS in self.video_include or uid in self.video_include
        if self.video_exclude is not None:
            return uid not in self.video_exclude
        return self.audio_include is None and self.audio_exclude is None


@dataclass(frozen=True)
class AcquireRequest:
    cname: str
    uid: str
    resource_expired_hour: int
    start_parameter: Mapping[str, Any] | None


@dataclass(frozen=True)
class StartRequest:
    cname: str
    uid: str
    channel_type: int
    stream_types: int
    max_idle_time: int
    capture_interval: int
    subscription: Subscription
    storage: StorageConfig
    client_request: Mapping[str, Any]  # as sent, to compare with acquire's startParameter (S2)


@dataclass(frozen=True)
class UpdateRequest:
    cname: str
    uid: str
    video: tuple[tuple[str, ...] | None, tuple[str, ...] | None] | None  # (include, exclude)
    audio: tuple[tuple[str, ...] | None, tuple[str, ...] | None] | None
    storage: StorageConfig | None


# --------------------------------------------------------------------------------------------------
# A collector of problems, each named by its dotted path


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, text: str) -> None:
        self.items.append(f"{path}: {text}")

    def raise_if_any(self) -> None:
        if self.items:
            raise invalid_parameter("; ".join(self.items))

    def obj(self, data: Mapping[str, Any], key: str, path: str, *,
            required: bool) -> Mapping[str, Any] | None:
        value = data.get(key)
        if value is None:
            if required:
                self.add(f"{path}{key}", "required object is missing")
            return None
        if not isinstance(value, Mapping):
            self.add(f"{path}{key}", f"must be a JSON object, not {_kind(value)}")
            return None
        return value

    def integer(self, data: Mapping[str, Any], key: str, path: str, *, default: int | None,
                allowed: Sequence[int] | range | frozenset[int] | None = None,
                bounds: tuple[int, int] | None = None, source: str) -> int | None:
        value = data.get(key)
        if value is None:
            if default is None:
                self.add(f"{path}{key}", f"required number is missing ({source})")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(f"{path}{key}", f"must be an integer, not {_kind(value)} ({source})")
            return None
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            self.add(f"{path}{key}", f"{value} is outside [{bounds[0]}, {bounds[1]}] ({source})")
            return None
        if allowed is not None and value not in allowed:
            self.add(f"{path}{key}", f"{value} is not one of {sorted(allowed)} ({source})")
            return None
        return value

    def string(self, data: Mapping[str, Any], key: str, path: str, *, required: bool,
               source: str) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.add(f"{path}{key}", f"required string is missing ({source})")
            return None
        if not isinstance(value, str) or (required and not value):
            self.add(f"{path}{key}", f"must be a non-empty string ({source})")
            return None
        return value

    def uid_list(self, data: Mapping[str, Any], key: str, path: str) -> tuple[str, ...] | None:
        value = data.get(key)
        if value is None:
            return None
        where = f"{path}{key}"
        if not isinstance(value, list):
            self.add(where, f"must be an array of uid strings, not {_kind(value)} (S3)")
            return None
        if not value:
            # S3 "avoid empty arrays"; S19 "should not be empty".
            self.add(where, "must not be empty (S3, S19)")
            return None
        if len(value) > MAX_LIST:
            self.add(where, f"has {len(value)} entries, at most {MAX_LIST} (S3, S5)")
            return None
        for item in value:
            if item == ALL_STREAMS and key.startswith("subscribe"):
                continue
            if not isinstance(item, str) or not _is_uid(item):
                self.add(where, f"{item!r} is not a uid string of digits 1..{UID_MAX}"
                         + (f" or {ALL_STREAMS!r}" if key.startswith("subscribe") else "")
                         + " (S3)")
                return None
        return tuple(value)

    def unknown(self, data: Mapping[str, Any], known: frozenset[str], path: str,
                refused: Mapping[str, str] | None = None) -> None:
        for key in data:
            if refused and key in refused:
                self.add(f"{path}{key}", refused[key])
            elif key not in known:
                self.add(f"{path}{key}", "unknown field; parameters are case-sensitive (S10, S18)")


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _is_uid(text: str) -> bool:
    # The length first, so that int() never meets thousands of digits (it raises past 4300).
    return len(text) <= _UID_DIGITS and _UID.fullmatch(text) is not None \
        and 1 <= int(text) <= UID_MAX


def _blacklist(problems: _Problems, data: Mapping[str, Any], media: str,
               path: str) -> tuple[str | None, tuple[str, ...] | None]:
    """The ``media`` blacklist under whichever spelling was sent (module docstring), and that
    spelling; ``(None, None)`` when both were sent, which is a problem."""
    lower, camel = _BLACKLISTS[media]
    if lower in data and camel in data:
        problems.add(f"{path}{camel}", f"set together with {lower}: the same blacklist in two "
                     "spellings; send one of them (S3, S5)")
        return None, None
    key = camel if camel in data else lower
    return key, problems.uid_list(data, key, path)


def _body(body: object) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise invalid_parameter(f"the request body must be a JSON object, not {_kind(body)}")
    return body


def _envelope(body: object, fields: frozenset[str]) -> tuple[str, str, Mapping[str, Any]]:
    """``cname``, ``uid`` and ``clientRequest`` of a start or update body, or 400 code 2 listing
    what is wrong with them (S3, S5)."""
    data = _body(body)
    problems = _Problems()
    problems.unknown(data, fields, "")
    cname, uid = _cname_uid(problems, data)
    request = problems.obj(data, "clientRequest", "", required=True)
    problems.raise_if_any()
    assert cname is not None
    assert uid is not None
    assert request is not None
    return cname, uid, request


def _cname_uid(problems: _Problems, body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    cname = problems.string(body, "cname", "", required=True, source="S2")
    uid_value = body.get("uid")
    uid: str | None = None
    if uid_value is None:
        problems.add("uid", "required string is missing (S2)")
    elif not isinstance(uid_value, str):
        # A number is refused: the uid is "a string holding an integer" (S2, S19).
        problems.add("uid", f"must be a string holding an integer, not {_kind(uid_value)} (S2)")
    elif not _is_uid(uid_value):
        problems.add("uid", f"{uid_value!r} is not an integer in 1..{UID_MAX} written as a "
                     "string (S2, S19)")
    else:
        uid = uid_value
    return cname, uid


# --------------------------------------------------------------------------------------------------
# acquire (S2)

_ACQUIRE_FIELDS: Final = frozenset({"cname", "uid", "clientRequest"})
_ACQUIRE_REQUEST_FIELDS: Final = frozenset({
    "scene", "resourceExpiredHour", "region", "excludeResourceIds", "startParameter",
    # Only in the Go client's struct (G1, UNCONFIRMED): accepted and ignored, not refused.
    "regionAffinity",
})


def check_acquire(body: object) -> AcquireRequest:
    data = _body(body)
    problems = _Problems()
    problems.unknown(data, _ACQUIRE_FIELDS, "")
    cname, uid = _cname_uid(problems, data)
    problems.raise_if_any()
    assert cname is not None
    assert uid is not None
    if len(cname.encode()) > CHANNEL_MAX_BYTES or _CHANNEL.fullmatch(cname) is None:
        # Its own code on acquire (S7), not 2.
        raise ServiceError(400, 401, "invalid_channel_name")
    request = problems.obj(data, "clientRequest", "", required=False) or {}
    problems.unknown(request, _ACQUIRE_REQUEST_FIELDS, "clientRequest.")
    hours = request.get("resourceExpiredHour", RESOURCE_HOURS_DEFAULT)
    if isinstance(hours, bool) or not isinstance(hours, int) \
            or not RESOURCE_HOURS[0] <= hours <= RESOURCE_HOURS[1]:
        # The exact reason S7 quotes.
        raise invalid_parameter("Acquire: invalid resourceExpiredHour value!")
    # scene 2 (postponed transcoding) was removed from the docs on 2025-04-10 (S2, S14).
    problems.integer(request, "scene", "clientRequest.", default=0, allowed=(0, 1), source="S2")
    region = request.get("region")
    if region is not None and region not in tables.ACQUIRE_REGIONS:
        problems.add("clientRequest.region", f"must be one of "
                     f"{sorted(tables.ACQUIRE_REGIONS)} (S2)")
    excluded = request.get("excludeResourceIds")
    if excluded is not None and (not isinstance(excluded, list)
                                 or not all(isinstance(i, str) for i in excluded)):
        problems.add("clientRequest.excludeResourceIds", "must be an array of resourceId "
                     "strings (S2)")
    start_parameter = problems.obj(request, "startParameter", "clientRequest.", required=False)
    problems.raise_if_any()
    if start_parameter is not None:
        # "It must be valid" (S2): the same checks as start, paths under startParameter.
        _check_client_request(start_parameter, "clientRequest.startParameter.")
    return AcquireRequest(cname, uid, hours, start_parameter)


# --------------------------------------------------------------------------------------------------
# start, individual mode with snapshotConfig (S3, S8)

_START_FIELDS: Final = frozenset({"cname", "uid", "clientRequest"})
_CLIENT_REQUEST_FIELDS: Final = frozenset({
    "token", "recordingConfig", "snapshotConfig", "storageConfig", "recordingFileConfig",
    "extensionServiceConfig", "appsCollection",
})
_RECORDING_FIELDS: Final = frozenset({
    "channelType", "streamTypes", "streamMode", "decryptionMode", "secret", "salt",
    "maxIdleTime", "videoStreamType", "subscribeVideoUids", "subscribeAudioUids",
    *_BLACKLISTS["Video"], *_BLACKLISTS["Audio"], "subscribeUidGroup",
    "audioProfile", "transcodingConfig",
})
_COMPOSITE_ONLY: Final = {
    "audioProfile": "composite (mix) mode only, not for individual snapshots (S3 rule 9)",
    "transcodingConfig": "composite (mix) mode only, not for individual snapshots (S3 rule 9)",
}
_SNAPSHOT_FIELDS: Final = frozenset({"captureInterval", "fileType"})
_STORAGE_FIELDS: Final = frozenset({
    "vendor", "region", "bucket", "accessKey", "secretKey", "stsToken", "stsExpiration",
    "fileNamePrefix", "extensionParams",
})
_EXTENSION_FIELDS: Final = frozenset({"sse", "tag", "endpoint"})


def check_start(mode: str, body: object) -> StartRequest:
    if mode != "individual":
        # Snapshots need individual mode (S3 rule 1, S8); mix and web are not emulated.
        raise invalid_parameter(f"mode: {mode!r} cannot take snapshots; snapshotConfig needs "
                                "mode 'individual' (S3, S8)")
    cname, uid, request = _envelope(body, _START_FIELDS)
    checked = _check_client_request(request, "clientRequest.")
    return StartRequest(cname=cname, uid=uid, client_request=request, **checked)


def _check_client_request(request: Mapping[str, Any], path: str) -> dict[str, Any]:
    problems = _Problems()
    problems.unknown(request, _CLIENT_REQUEST_FIELDS, path, refused={
        "recordingFileConfig": "must not be sent for a screenshots-only task (S3 rule 2, S8); "
                               "this emulator runs screenshots-only tasks",
        "extensionServiceConfig": "web mode only (S3 rule 9)",
        "appsCollection": "only for postponed audio mixing, removed 2025-04-10; not for "
                          "snapshots (S19, S14)",
    })
    token = request.get("token")
    if token is not None and not isinstance(token, str):
        problems.add(f"{path}token", "must be a string (S3)")
    recording = problems.obj(request, "recordingConfig", path, required=True)
    snapshot = problems.obj(request, "snapshotConfig", path, required=True)
    storage_data = problems.obj(request, "storageConfig", path, required=True)
    # `is not None`, not truthiness: an empty {} must be checked (and rejected for its missing
    # fields with 400 code 2), not skipped into an internal error.
    rec = (_check_recording(problems, recording, f"{path}recordingConfig.")
           if recording is not None else None)
    interval = (_check_snapshot(problems, snapshot, f"{path}snapshotConfig.")
                if snapshot is not None else None)
    storage = (_check_storage(problems, storage_data, f"{path}storageConfig.")
               if storage_data is not None else None)
    problems.raise_if_any()
    assert rec is not None
    assert interval is not None
    assert storage is not None
    return {**rec, "capture_interval": interval, "storage": storage}


def _check_recording(problems: _Problems, data: Mapping[str, Any], path: str) -> dict[str, Any]:
    problems.unknown(data, _RECORDING_FIELDS, path, refused=_COMPOSITE_ONLY)
    channel_type = problems.integer(data, "channelType", path, default=None, allowed=(0, 1),
                                    source="S3")
    stream_types = problems.integer(data, "streamTypes", path, default=2, allowed=(0, 1, 2),
                                    source="S3")
    if stream_types == 0:
        problems.add(f"{path}streamTypes", "0 records audio only; snapshots need 1 (video) or "
                     "2 (audio and video) (S3 rule 3, S8)")
    mode = data.get("streamMode", "default")
    if mode not in ("default", "standard", "original"):
        problems.add(f"{path}streamMode", "must be 'default', 'standard' or 'original' (S3)")
    elif mode == "original":
        problems.add(f"{path}streamMode", "'original' needs streamTypes 0, which cannot take "
                     "snapshots (S3 rule 9)")
    decryption = problems.integer(data, "decryptionMode", path, default=0,
                                  allowed=_DECRYPTION_MODES, source="S3")
    if decryption:
        problems.string(data, "secret", path, required=True, source="S3: needed when "
                        "decryptionMode is not 0")
    if decryption in _SALTED_MODES:
        _check_salt(problems, data.get("salt"), f"{path}salt")
    idle = problems.integer(data, "maxIdleTime", path, default=IDLE_DEFAULT, bounds=IDLE_RANGE,
                            source="S3")
    problems.integer(data, "videoStreamType", path, default=0, allowed=(0, 1), source="S3")
    # Required in individual mode (S2, S3, S17, S19); 0..5 by estimated subscriber count (S3).
    problems.integer(data, "subscribeUidGroup", path, default=None, allowed=range(0, 6),
                     source="S3")
    subscription = _check_lists(problems, data, path, stream_types)
    return {"channel_type": channel_type, "stream_types": stream_types, "max_idle_time": idle,
            "subscription": subscription}


def _check_salt(problems: _Problems, salt: object, where: str) -> None:
    if not isinstance(salt, str):
        problems.add(where, "required for decryptionMode 7 and 8: Base64 of 32 bytes (S3)")
        return
    try:
        raw = base64.b64decode(salt, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        problems.add(where, "must be Base64 of exactly 32 bytes (S3)")


def _check_lists(problems: _Problems, data: Mapping[str, Any], path: str,
                 stream_types: int | None) -> Subscription:
    video_in = problems.uid_list(data, "subscribeVideoUids", path)
    video_out_key, video_out = _blacklist(problems, data, "Video", path)
    audio_in = problems.uid_list(data, "subscribeAudioUids", path)
    audio_out_key, audio_out = _blacklist(problems, data, "Audio", path)
    if video_in is not None and video_out is not None:
        problems.add(f"{path}{video_out_key}", "cannot be set together with "
                     "subscribeVideoUids (S3)")
    if audio_in is not None and audio_out is not None:
        problems.add(f"{path}{audio_out_key}", "cannot be set together with "
                     "subscribeAudioUids (S3)")
    if audio_in is not None and video_in is None:
        problems.add(f"{path}subscribeVideoUids", "must be set when subscribeAudioUids is set "
                     "(S3 rule 4, S8)")
    if stream_types == 1 and (audio_in is not None or audio_out is not None):
        problems.add(f"{path}subscribeAudioUids", "audio lists need streamTypes 0 or 2 (S3, S15)")
    return Subscription(video_in, video_out, audio_in, audio_out)


def _check_snapshot(problems: _Problems, data: Mapping[str, Any], path: str) -> int | None:
    problems.unknown(data, _SNAPSHOT_FIELDS, path)
    interval = problems.integer(data, "captureInterval", path, default=CAPTURE_DEFAULT,
                                bounds=CAPTURE_RANGE, source="S14, S8")
    file_type = data.get("fileType")
    if file_type is None:
        problems.add(f"{path}fileType", "required; must be [\"jpg\"] (S3 rule 5, S8)")
    elif file_type != ["jpg"]:
        problems.add(f"{path}fileType", "must be [\"jpg\"], the only snapshot format "
                     "(S3 rule 5, S8)")
    return interval


def _check_storage(problems: _Problems, data: Mapping[str, Any],
                   path: str) -> StorageConfig | None:
    problems.unknown(data, _STORAGE_FIELDS, path)
    vendor = problems.integer(data, "vendor", path, default=None,
                              allowed=frozenset(tables.VENDOR_REGIONS), source="S3, S9")
    region = problems.integer(data, "region", path, default=None, source="S9")
    if vendor is not None and region is not None \
            and region not in tables.VENDOR_REGIONS[vendor]:
        problems.add(f"{path}region", f"{region} is not a region code of vendor {vendor} (S9)")
    bucket = problems.string(data, "bucket", path, required=True, source="S3")
    # Keys are checked for presence and type only, and never echoed.
    access = problems.string(data, "accessKey", path, required=True, source="S3")
    secret = problems.string(data, "secretKey", path, required=True, source="S3")
    sts = data.get("stsToken")
    if sts is not None:
        if not isinstance(sts, str) or not sts:
            problems.add(f"{path}stsToken", "must be a non-empty string (S2)")
        elif vendor is not None and vendor not in tables.STS_VENDORS:
            problems.add(f"{path}stsToken", f"only vendors {sorted(tables.STS_VENDORS)} accept "
                         "an STS token (S2, S14)")
    expiration = data.get("stsExpiration")
    if expiration is not None and (isinstance(expiration, bool) or not isinstance(expiration, int)
                                   or expiration < 0):
        problems.add(f"{path}stsExpiration", "must be Unix seconds, a non-negative integer (S2)")
    prefix = _check_prefix(problems, data.get("fileNamePrefix"), f"{path}fileNamePrefix")
    extension = _check_extension(problems, data, path, vendor)
    if None in (vendor, region, bucket, access, secret) or prefix is None:
        return None
    assert vendor is not None
    assert region is not None
    assert bucket
    assert access
    assert secret
    return StorageConfig(vendor=vendor, region=region, bucket=bucket, access_key=access,
                         secret_key=secret, sts_token=sts if isinstance(sts, str) else None,
                         file_name_prefix=prefix, **extension)


def _check_prefix(problems: _Problems, value: object, where: str) -> tuple[str, ...] | None:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        problems.add(where, "must be an array of strings (S3)")
        return None
    for segment in value:
        if _PREFIX_SEGMENT.fullmatch(segment) is None:
            problems.add(where, f"segment {segment!r} may hold only a-z, A-Z and 0-9 (S3, S17)")
            return None
    if len("/".join(value)) > PREFIX_MAX:
        problems.add(where, f"joined with '/' it is {len('/'.join(value))} characters, at most "
                     f"{PREFIX_MAX} (S3)")
        return None
    return tuple(value)


def _check_extension(problems: _Problems, data: Mapping[str, Any], path: str,
                     vendor: int | None) -> dict[str, str | None]:
    """``endpoint``, ``sse`` and ``tag`` of ``extensionParams`` (S3, S5, S9)."""
    where = f"{path}extensionParams."
    params = problems.obj(data, "extensionParams", path, required=False)
    if params is None:
        if vendor == tables.S3_COMPATIBLE:
            problems.add(f"{where}endpoint", "required for vendor 11 (S9, S14)")
        return {}
    problems.unknown(params, _EXTENSION_FIELDS, where)
    sse = params.get("sse")
    if sse is not None:
        if sse not in tables.SSE_VALUES:
            problems.add(f"{where}sse", "must be 'kms' or 'aes256' (S3)")
        elif vendor is not None and vendor not in tables.SSE_VENDORS:
            problems.add(f"{where}sse", "Amazon S3 (vendor 1) only (S3)")
    tag = params.get("tag")
    if tag is not None:
        if not isinstance(tag, str):
            problems.add(f"{where}tag", "must be a string (S3)")
        elif vendor is not None and vendor not in tables.TAG_VENDORS:
            problems.add(f"{where}tag", "Amazon S3 and Alibaba Cloud (vendors 1, 2) only (S3)")
    endpoint = params.get("endpoint")
    if endpoint is not None and (not isinstance(endpoint, str) or not endpoint):
        problems.add(f"{where}endpoint", "must be the store's domain, a non-empty string (S9)")
    elif endpoint is None and vendor == tables.S3_COMPATIBLE:
        problems.add(f"{where}endpoint", "required for vendor 11 (S9, S14)")
    return {"endpoint": _text(endpoint), "sse": _text(sse), "tag": _text(tag)}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# --------------------------------------------------------------------------------------------------
# update (S5)

_UPDATE_FIELDS: Final = frozenset({"cname", "uid", "clientRequest"})
_UPDATE_REQUEST_FIELDS: Final = frozenset({"streamSubscribe", "storageConfig"})
_WEB_ONLY: Final = {"webRecordingConfig": "web mode only (S5)",
                    "rtmpPublishConfig": "web mode only (S5)"}


def check_update(body: object, *, stream_types: int) -> UpdateRequest:
    cname, uid, request = _envelope(body, _UPDATE_FIELDS)
    problems = _Problems()
    path = "clientRequest."
    problems.unknown(request, _UPDATE_REQUEST_FIELDS, path, refused=_WEB_ONLY)
    subscribe = problems.obj(request, "streamSubscribe", path, required=False)
    storage_data = problems.obj(request, "storageConfig", path, required=False)
    if subscribe is None and storage_data is None and not problems.items:
        problems.add(path, "nothing to update: send streamSubscribe or storageConfig (S5)")
    video = audio = None
    if subscribe is not None:
        sub_path = f"{path}streamSubscribe."
        problems.unknown(subscribe, frozenset({"videoUidList", "audioUidList"}), sub_path)
        video = _update_list(problems, subscribe, "videoUidList", "Video", sub_path,
                             allowed=stream_types in (1, 2))
        audio = _update_list(problems, subscribe, "audioUidList", "Audio", sub_path,
                             allowed=stream_types in (0, 2))
    storage = _check_storage(problems, storage_data, f"{path}storageConfig.") \
        if storage_data is not None else None
    problems.raise_if_any()
    return UpdateRequest(cname, uid, video, audio, storage)


def _update_list(problems: _Problems, data: Mapping[str, Any], key: str, media: str, path: str,
                 *, allowed: bool) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None] | None:
    lists = problems.obj(data, key, path, required=False)
    if lists is None:
        return None
    where = f"{path}{key}."
    if not allowed:
        problems.add(f"{path}{key}", f"{media.lower()} lists do not apply to this task's "
                     "streamTypes (S5)")
        return None
    include_key = f"subscribe{media}Uids"
    problems.unknown(lists, frozenset({include_key, *_BLACKLISTS[media]}), where)
    include = problems.uid_list(lists, include_key, where)
    exclude_key, exclude = _blacklist(problems, lists, media, where)
    if include is not None and exclude is not None:
        problems.add(f"{where}{exclude_key}", f"cannot be set together with {include_key} (S5)")
    if include is None and exclude is None and exclude_key is not None:
        problems.add(where.rstrip("."), f"needs {include_key} or "
                     f"{' or '.join(_BLACKLISTS[media])} (S5)")
    return include, exclude
