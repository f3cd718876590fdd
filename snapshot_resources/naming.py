"""Snapshot file names: format, parse (including ``bak<n>_``), match, and list from storage.

Agora names every screenshot it uploads (S8, docs/agora-api.md section 7.1)::

    [<p1>/<p2>/...][bak<n>_]<sid>_<cname>__uid_s_<uid>__uid_e_video_<YYYYMMDDhhmmssSSS>.jpg

* the prefix is the task's ``fileNamePrefix`` joined with ``/`` (S8, S19);
* ``bak<n>_`` marks files made after the n-th failover of the task, counted from 0 (S8, S16);
* ``<uid>`` is the *publisher's* uid, one series of files per subscribed video uid (S8);
* the time is UTC+0 with milliseconds, e.g. ``20190611073246073`` = 2019-06-11 07:32:46.073 (S8).

A channel name may itself contain ``_`` (``rules.CHANNEL_NAME``), so names are parsed from the
fixed markers ``__uid_s_`` and ``__uid_e_video_`` at the end, and the sid is the run of
non-underscore characters at the start.  That is unambiguous: the tail after the cname is
``__uid_s_<digits>__uid_e_video_<17 digits>.jpg`` and digits cannot contain another marker.

This module imports nothing heavy: boto3 is imported inside ``S3Bucket`` listing only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol

from snapshot_resources import rules

__all__ = [
    "LocalDirectory",
    "S3Bucket",
    "SnapshotListing",
    "SnapshotName",
    "SnapshotSource",
    "SnapshotSourceError",
    "format_snapshot_name",
    "list_snapshots",
    "parse_snapshot_name",
    "scan_snapshots",
    "snapshot_pattern",
]

# The fixed parts of the name (S8).
_UID_MARK: Final = "__uid_s_"
_VIDEO_MARK: Final = "__uid_e_video_"
_EXTENSION: Final = ".jpg"  # fileType allows only jpg (S8)
_TIME_DIGITS: Final = 17  # YYYYMMDDhhmmssSSS (S8)
_FAILOVER: Final = re.compile(r"bak(?P<n>[0-9]+)_")
_SID: Final = re.compile(r"[^_/\s]+")

# The whole base name, anchored at both ends.  ``cname`` is greedy and the tail is fixed, so the
# cname runs up to the only ``__uid_s_`` after which the rest of the name fits (module docstring).
_BASENAME: Final = re.compile(
    r"(?:bak(?P<failover>[0-9]+)_)?"
    r"(?P<sid>[^_/]+)_"
    r"(?P<cname>[^/]+)"
    + re.escape(_UID_MARK)
    + r"(?P<uid>[0-9]+)"
    + re.escape(_VIDEO_MARK)
    + rf"(?P<time>[0-9]{{{_TIME_DIGITS}}})"
    + re.escape(_EXTENSION)
)


@dataclass(frozen=True)
class SnapshotName:
    """One parsed snapshot object key.

    Fields (from ``parse_snapshot_name``, S8): ``prefix`` (tuple of str): the ``fileNamePrefix``
    segments before the file name, ``()`` for none.  ``failover_index`` (int | None): ``n`` of a
    ``bak<n>_`` file, made after the n-th failover counted from 0; None for none.  ``sid`` (str):
    the task's recording id.  ``cname`` (str): the channel.  ``uid`` (str): the publisher's uid,
    decimal digits (not the recorder's).  ``taken_at`` (datetime): when the snapshot was taken,
    timezone-aware UTC, millisecond precision.  ``key`` (str): the object key as given.
    ``to_dict()`` gives a JSON-ready view with camelCase keys and an ISO 8601 time.
    """

    prefix: tuple[str, ...]
    failover_index: int | None
    sid: str
    cname: str
    uid: str
    taken_at: datetime  # aware, UTC
    key: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view with the project's camelCase keys and an ISO 8601 time."""
        return {
            "key": self.key,
            "prefix": list(self.prefix),
            "failoverIndex": self.failover_index,
            "sid": self.sid,
            "cname": self.cname,
            "uid": self.uid,
            "takenAt": self.taken_at.isoformat(timespec="milliseconds"),
        }


# --------------------------------------------------------------------------------------------------
# Format and parse


def format_snapshot_name(
    *,
    sid: str,
    cname: str,
    uid: str,
    taken_at: datetime,
    failover_index: int | None = None,
    prefix: Sequence[str] = (),
) -> str:
    """The object key Agora gives a screenshot (S8), e.g.
    ``lobby/bak0_<sid>_lobby__uid_s_123__uid_e_video_20190611073246073.jpg``.

    ``sid`` (str): the recording id, no ``_``, ``/`` or space, not of the form ``bak<n>``.
    ``cname`` (str): the channel, 1 to 63 bytes of the allowed characters (rule channel_name;
    S18).  ``uid`` (str): the publisher's uid, decimal digits, at most 4294967295.
    ``taken_at`` (datetime) must be timezone-aware; it is converted to UTC and truncated to
    milliseconds (17 digits ``YYYYMMDDhhmmssSSS``, years 1000 to 9999).  ``failover_index`` (int
    | None): ``n`` of ``bak<n>_``, from 0; None (default) for a file made before any failover.
    ``prefix`` (sequence of str, default empty): ``fileNamePrefix`` segments of letters and
    digits (rule file_name_prefix; S3), joined with ``/`` before the name.

    Returns the object key (str).  Raises ``ValueError`` naming the field and the rule when an
    argument cannot appear in a name.
    """
    _check_sid(sid)
    if not rules.CHANNEL_NAME.matches(cname):
        raise ValueError(f"cname {cname!r} is not {rules.CHANNEL_NAME.text} "
                         f"({rules.CHANNEL_NAME.cite()})")
    _check_uid(uid)
    if failover_index is not None and (
        isinstance(failover_index, bool) or not isinstance(failover_index, int)
        or failover_index < 0
    ):
        raise ValueError(f"failover_index must be a failover count from 0 or None, "
                         f"not {failover_index!r} (bak<n>_ counts from 0, S8)")
    for segment in prefix:
        if not rules.FILE_NAME_PREFIX.matches(segment):
            raise ValueError(f"prefix segment {segment!r} is not allowed: "
                             f"{rules.FILE_NAME_PREFIX.text} ({rules.FILE_NAME_PREFIX.cite()})")
    base = (
        ("" if failover_index is None else f"bak{failover_index}_")
        + f"{sid}_{cname}{_UID_MARK}{uid}{_VIDEO_MARK}{_format_time(taken_at)}{_EXTENSION}"
    )
    return "/".join([*prefix, base])


def parse_snapshot_name(key: str) -> SnapshotName:
    """Parse an object key (or a bare file name) made by the naming rule of S8.

    ``key`` (str): e.g. ``lobby/bak0_<sid>_lobby__uid_s_123__uid_e_video_20190611073246073.jpg``.
    Returns a ``SnapshotName``.  Raises ``ValueError`` that says which part of the name did not
    match (an empty prefix segment, no ``.jpg``, a missing marker, a bad time).
    """
    *prefix, base = key.split("/")
    if any(segment == "" for segment in prefix):
        raise ValueError(f"{key!r}: the prefix has an empty segment (fileNamePrefix is joined "
                         f"with single '/', S8)")
    if not base.endswith(_EXTENSION):
        raise ValueError(f"{key!r}: a snapshot name ends with {_EXTENSION!r} (S8)")
    if _UID_MARK not in base:
        raise ValueError(f"{key!r}: the marker {_UID_MARK!r} before the uid is missing (S8)")
    if _VIDEO_MARK not in base:
        raise ValueError(f"{key!r}: the marker {_VIDEO_MARK!r} before the time is missing (S8)")
    match = _BASENAME.fullmatch(base)
    if match is None:
        raise ValueError(
            f"{key!r}: expected [bak<n>_]<sid>_<cname>{_UID_MARK}<digits>{_VIDEO_MARK}"
            f"<{_TIME_DIGITS} digits>{_EXTENSION} (S8)"
        )
    failover = match["failover"]
    return SnapshotName(
        prefix=tuple(prefix),
        failover_index=None if failover is None else int(failover),
        sid=match["sid"],
        cname=match["cname"],
        uid=match["uid"],
        taken_at=_parse_time(match["time"], key),
        key=key,
    )


def snapshot_pattern(*, sid: str | None, cname: str, prefix: Sequence[str] = ()) -> str:
    """A regular expression (anchored, for a full match of the object key) that matches every
    file of one session: any publisher uid, any failover index, any time.  With ``sid=None`` it
    matches any sid, e.g. before the task has started.

    Only the characters that are syntax in every common regex dialect are escaped (``_escape``),
    so the provider's ``fileNamePattern`` output also works in JavaScript or Go.  Caveat of the
    naming rule itself (S8): with ``sid=None``, the pattern for a cname ``x_y`` also matches the
    failover files of a session ``y`` whose sid is ``x``; give the sid to rule that out.

    ``sid`` (str | None): the recording id, or None for any.  ``cname`` (str): the channel (rule
    channel_name).  ``prefix`` (sequence of str, default empty): the task's ``fileNamePrefix``
    segments; only keys directly under that prefix match.  Returns the pattern (str, ``^...$``).
    Raises ``ValueError`` for a sid or cname that cannot appear in a name.
    """
    if sid is not None:
        _check_sid(sid)
    if not rules.CHANNEL_NAME.matches(cname):
        raise ValueError(f"cname {cname!r} is not {rules.CHANNEL_NAME.text} "
                         f"({rules.CHANNEL_NAME.cite()})")
    head = "".join(f"{_escape(segment)}/" for segment in prefix)
    sid_part = "[^_/]+" if sid is None else _escape(sid)
    return (
        f"^{head}(bak[0-9]+_)?{sid_part}_{_escape(cname)}{_UID_MARK}[0-9]+{_VIDEO_MARK}"
        f"[0-9]{{{_TIME_DIGITS}}}\\{_EXTENSION}$"
    )


# Regex syntax in Python, JavaScript (also with the u flag), Go RE2 and PCRE outside a class.
_REGEX_SYNTAX: Final = frozenset("\\^$.|?*+()[]{}")


def _escape(text: str) -> str:
    return "".join(f"\\{c}" if c in _REGEX_SYNTAX else c for c in text)


def _check_sid(sid: str) -> None:
    # The sid is the recording id Agora returns from start (S3); in a name it is the run before the
    # first '_' (S8), so it cannot contain '_' or '/'.  A sid that looks like ``bak<n>`` would read
    # as a failover marker, so it is refused rather than producing a name that parses differently.
    if not isinstance(sid, str) or _SID.fullmatch(sid) is None:
        raise ValueError(f"sid {sid!r} must be a non-empty recording id without '_', '/' or "
                         f"spaces (it ends at the first '_' of the name, S8)")
    if re.fullmatch(r"bak[0-9]+", sid):
        raise ValueError(f"sid {sid!r} would read as a failover marker bak<n>_ (S8)")


def _check_uid(uid: str) -> None:
    # The publisher's RTC uid (S8): an unsigned 32-bit integer written in decimal.
    if not isinstance(uid, str) or re.fullmatch(r"[0-9]+", uid) is None \
            or int(uid) > rules.UID_MAX:
        raise ValueError(f"uid {uid!r} must be the publisher's uid: decimal digits, at most "
                         f"{rules.UID_MAX} (S8)")


def _format_time(taken_at: datetime) -> str:
    if taken_at.tzinfo is None or taken_at.utcoffset() is None:
        raise ValueError("taken_at must be timezone-aware: file names carry UTC+0 times (S8)")
    utc = taken_at.astimezone(UTC)
    if utc.year < 1000:
        # %Y is four digits only from year 1000; the name has exactly 17 digits (S8).
        raise ValueError(f"taken_at {utc.isoformat()} is before year 1000; the name has a "
                         f"4-digit year (S8)")
    return utc.strftime(rules.SNAPSHOT_FILE_TIME_FORMAT) + f"{utc.microsecond // 1000:03d}"


def _parse_time(digits: str, key: str) -> datetime:
    try:
        whole = datetime.strptime(digits[:-3], rules.SNAPSHOT_FILE_TIME_FORMAT)
    except ValueError:
        raise ValueError(f"{key!r}: {digits!r} is not a valid UTC time YYYYMMDDhhmmssSSS (S8)") \
            from None
    return whole.replace(microsecond=int(digits[-3:]) * 1000, tzinfo=UTC)


# --------------------------------------------------------------------------------------------------
# Listing


class SnapshotSourceError(Exception):
    """A source could not be listed (missing directory, unreachable or refusing endpoint).

    The message names the source but never its credentials.

    Raised by ``LocalDirectory.keys``, ``S3Bucket.keys``, ``scan_snapshots`` and
    ``list_snapshots``; constructed with the message only, like any ``Exception``.
    """


@dataclass(frozen=True)
class LocalDirectory:
    """A bucket on disk: object keys are paths relative to ``path``, with ``/`` separators.

    The emulator writes ``<storage_dir>/<bucket>/<key>``, so pass ``<storage_dir>/<bucket>``.

    ``path`` (``Path`` | str): the bucket's directory.  ``keys(prefix)`` yields the object keys
    under ``prefix`` (segments), sorted per directory; it raises ``SnapshotSourceError`` when
    ``path`` is not a directory or cannot be read.
    """

    path: Path | str

    def keys(self, prefix: Sequence[str] = ()) -> Iterator[str]:
        root = Path(self.path)
        if not root.is_dir():
            raise SnapshotSourceError(f"directory not found: {str(root)!r}")
        if any(segment in ("", ".", "..") or "/" in segment or os.sep in segment
               for segment in prefix):
            return  # no object key has such a prefix; and never walk outside the bucket
        start = root.joinpath(*prefix)
        if not start.is_dir():
            return
        for directory, subdirs, files in os.walk(start, onerror=_raise_walk_error):
            subdirs.sort()
            base = Path(directory).relative_to(root)
            for name in sorted(files):
                yield (base / name).as_posix()


def _raise_walk_error(error: OSError) -> None:
    raise SnapshotSourceError(f"cannot read {error.filename!r}: {error.strerror}") from error


@dataclass(frozen=True)
class S3Bucket:
    """A bucket of an S3-compatible service (AWS, MinIO, vendor 11, moto...), listed with boto3.

    The keys are excluded from ``repr`` so they cannot leak into logs or tracebacks.

    ``bucket`` (str): the bucket name.  ``endpoint_url`` (str | None): the S3 API's base URL, e.g.
    ``http://127.0.0.1:9000``; None for AWS.  ``access_key``, ``secret_key`` (str): a key that may
    list the bucket; both required by ``keys``.  ``region`` (str, default ``"us-east-1"``): the
    signing region.  ``keys(prefix)`` yields every object key under ``prefix`` (path-style
    addressing, bounded timeouts, boto3 imported on first use); it raises ``SnapshotSourceError``
    (service error code and HTTP status only) when the listing fails.
    """

    bucket: str
    endpoint_url: str | None = None
    access_key: str = field(default="", repr=False)
    secret_key: str = field(default="", repr=False)
    region: str = "us-east-1"

    def keys(self, prefix: Sequence[str] = ()) -> Iterator[str]:
        import boto3  # lazy: keep ``import snapshot_resources.naming`` light
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"s3 bucket {self.bucket!r}" + (f" at {self.endpoint_url}" if self.endpoint_url
                                                 else "")
        if not self.access_key or not self.secret_key:
            raise SnapshotSourceError(f"{where}: an access key and a secret key are required")
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            # Path-style addressing works with every S3-compatible server (moto, MinIO) and with
            # bucket names that contain dots; bounded time on every call (design.md).
            config=Config(s3={"addressing_style": "path"}, connect_timeout=10, read_timeout=30,
                          retries={"max_attempts": 3, "mode": "standard"}),
        )
        request: dict[str, Any] = {"Bucket": self.bucket}
        if prefix:
            request["Prefix"] = "/".join(prefix) + "/"
        try:
            for page in client.get_paginator("list_objects_v2").paginate(**request):
                for item in page.get("Contents", ()):
                    yield str(item["Key"])
        except ClientError as error:
            # Only the service's error code and HTTP status: the message could echo a key id.
            info = error.response.get("Error", {})
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise SnapshotSourceError(
                f"{where}: listing failed with {info.get('Code', 'an error')} (HTTP {status})"
            ) from None
        except BotoCoreError as error:
            raise SnapshotSourceError(f"{where}: listing failed: {type(error).__name__}") \
                from None


class SnapshotSource(Protocol):
    """Anything that lists object keys: ``LocalDirectory``, ``S3Bucket``, or a caller's own.

    ``keys(prefix)`` may return keys outside ``prefix`` (the listing filters again); it raises
    ``SnapshotSourceError`` when the source cannot be read.
    """

    def keys(self, prefix: Sequence[str] = ()) -> Iterable[str]: ...


@dataclass(frozen=True)
class SnapshotListing:
    """The snapshots found, sorted by time then uid, and how many other files were skipped."""

    snapshots: list[SnapshotName]
    skipped: int


def scan_snapshots(
    source: SnapshotSource,
    *,
    sid: str | None = None,
    cname: str | None = None,
    prefix: Sequence[str] = (),
) -> SnapshotListing:
    """List the snapshot files of ``source``, keeping those whose sid and cname equal the filters
    (``None`` keeps any) and whose prefix begins with ``prefix`` (``()`` keeps every prefix).

    Files whose names do not follow the rule of S8 are counted in ``skipped``, not fatal.

    ``source`` (``SnapshotSource``): anything with ``keys(prefix)``, e.g. ``LocalDirectory`` or
    ``S3Bucket``.  ``sid`` (str | None), ``cname`` (str | None): keep only that recording id or
    channel.  ``prefix`` (sequence of str): keep only keys under these segments.

    Returns a ``SnapshotListing``: ``snapshots`` (list of ``SnapshotName``, sorted by time, then
    uid) and ``skipped`` (int).  Raises ``SnapshotSourceError`` when the source cannot be listed.
    """
    wanted = tuple(prefix)
    found: list[SnapshotName] = []
    skipped = 0
    for key in source.keys(wanted):
        try:
            name = parse_snapshot_name(key)
        except ValueError:
            skipped += 1
            continue
        if name.prefix[: len(wanted)] != wanted:
            continue  # a source may list more than the prefix (SnapshotSource)
        if (sid is None or name.sid == sid) and (cname is None or name.cname == cname):
            found.append(name)
    found.sort(key=_order)
    return SnapshotListing(found, skipped)


def list_snapshots(
    source: SnapshotSource,
    *,
    sid: str | None = None,
    cname: str | None = None,
    prefix: Sequence[str] = (),
) -> list[SnapshotName]:
    """``scan_snapshots(...).snapshots``: a session's files sorted by time, then uid.

    ``source`` (``SnapshotSource``): e.g. ``LocalDirectory(path)`` or ``S3Bucket(bucket, ...)``.
    ``sid`` (str | None) and ``cname`` (str | None): keep only that recording id or channel (None
    keeps any).  ``prefix`` (sequence of str, default empty): keep only keys under these
    segments.  Returns a list of ``SnapshotName``; names that do not follow S8 are skipped.
    Raises ``SnapshotSourceError`` when the source cannot be listed.
    """
    return scan_snapshots(source, sid=sid, cname=cname, prefix=prefix).snapshots


def _order(name: SnapshotName) -> tuple[datetime, int, str, int, str]:
    # Time, then uid in numeric order (uids are integers, S8), then whatever keeps it total.
    failover = -1 if name.failover_index is None else name.failover_index
    return (name.taken_at, int(name.uid), name.uid, failover, name.key)
