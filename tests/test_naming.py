"""snapshot_resources.naming: the file-name rule of S8 (docs/agora-api.md section 7.1)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snapshot_resources import rules
from snapshot_resources.naming import (
    LocalDirectory,
    S3Bucket,
    SnapshotName,
    SnapshotSourceError,
    format_snapshot_name,
    list_snapshots,
    parse_snapshot_name,
    scan_snapshots,
    snapshot_pattern,
)
from snapshot_resources.testing.emulator import S3Server

SID = "38f8e3cfdc474cd56fc1ceba380d7e1a"
# S8's example time: 20190611073246073 = 2019-06-11 07:32:46.073 UTC.
EXAMPLE_TIME = datetime(2019, 6, 11, 7, 32, 46, 73_000, tzinfo=UTC)


# --------------------------------------------------------------------------------------------------
# The documented examples (S8)


def test_documented_failover_example_parses() -> None:
    key = f"bak0_{SID}_lobby__uid_s_123__uid_e_video_20190611073246073.jpg"
    name = parse_snapshot_name(key)
    assert name == SnapshotName(prefix=(), failover_index=0, sid=SID, cname="lobby", uid="123",
                                taken_at=EXAMPLE_TIME, key=key)


def test_documented_failover_example_formats() -> None:
    key = format_snapshot_name(sid=SID, cname="lobby", uid="123", taken_at=EXAMPLE_TIME,
                               failover_index=0)
    assert key == f"bak0_{SID}_lobby__uid_s_123__uid_e_video_20190611073246073.jpg"


def test_documented_example_with_prefix_round_trips() -> None:
    key = f"snapshots/lobby/{SID}_lobby__uid_s_527841__uid_e_video_20190611073246073.jpg"
    name = parse_snapshot_name(key)
    assert (name.prefix, name.failover_index, name.uid) == (("snapshots", "lobby"), None, "527841")
    assert format_snapshot_name(sid=name.sid, cname=name.cname, uid=name.uid,
                                taken_at=name.taken_at, failover_index=name.failover_index,
                                prefix=name.prefix) == key


def test_aware_time_is_converted_to_utc() -> None:
    tokyo = EXAMPLE_TIME.astimezone(timezone(timedelta(hours=9)))
    key = format_snapshot_name(sid=SID, cname="c", uid="1", taken_at=tokyo)
    assert key.endswith("_20190611073246073.jpg")


def test_sub_millisecond_digits_are_truncated() -> None:
    key = format_snapshot_name(sid=SID, cname="c", uid="1",
                               taken_at=EXAMPLE_TIME + timedelta(microseconds=999))
    assert key.endswith("_20190611073246073.jpg")


def test_cname_with_underscores_and_markers_parses_from_the_tail() -> None:
    cname = "a__uid_s_1_b_"
    key = format_snapshot_name(sid=SID, cname=cname, uid="42", taken_at=EXAMPLE_TIME,
                               failover_index=3)
    name = parse_snapshot_name(key)
    assert (name.cname, name.uid, name.failover_index, name.sid) == (cname, "42", 3, SID)


# --------------------------------------------------------------------------------------------------
# Rejections


def test_naive_time_is_rejected() -> None:
    with pytest.raises(ValueError, match="taken_at must be timezone-aware"):
        format_snapshot_name(sid=SID, cname="c", uid="1", taken_at=datetime(2019, 6, 11))


@pytest.mark.parametrize(
    ("field", "kwargs", "message"),
    [
        ("sid", {"sid": "a_b"}, "sid 'a_b'"),
        ("sid", {"sid": "bak2"}, "failover marker"),
        ("cname", {"cname": "a/b"}, "cname 'a/b'"),
        ("cname", {"cname": "x" * 64}, "cname"),
        ("uid", {"uid": "12a"}, "uid '12a'"),
        ("uid", {"uid": str(rules.UID_MAX + 1)}, "uid"),
        ("failover_index", {"failover_index": -1}, "failover_index"),
        ("prefix", {"prefix": ("ok", "no_underscore")}, "prefix segment 'no_underscore'"),
    ],
)
def test_format_rejects_what_cannot_be_in_a_name(
    field: str, kwargs: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"sid": SID, "cname": "c", "uid": "1",
                                    "taken_at": EXAMPLE_TIME, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        format_snapshot_name(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (f"{SID}_c__uid_s_1__uid_e_video_20190611073246073.png", "ends with '.jpg'"),
        (f"{SID}_c__uid_1__uid_e_video_20190611073246073.jpg", "'__uid_s_'"),
        (f"{SID}_c__uid_s_1__uid_e_audio_20190611073246073.jpg", "'__uid_e_video_'"),
        (f"{SID}_c__uid_s_1__uid_e_video_2019061107324607.jpg", "17 digits"),
        (f"{SID}_c__uid_s_x__uid_e_video_20190611073246073.jpg", "<digits>"),
        (f"{SID}_c__uid_s_1__uid_e_video_20191311073246073.jpg", "not a valid UTC time"),
        (f"a//{SID}_c__uid_s_1__uid_e_video_20190611073246073.jpg", "empty segment"),
        ("README.md", "ends with '.jpg'"),
    ],
)
def test_parse_names_what_did_not_match(key: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_snapshot_name(key)


# --------------------------------------------------------------------------------------------------
# Properties

cnames = st.from_regex(rules.CHANNEL_NAME.regex, fullmatch=True).filter(rules.CHANNEL_NAME.matches)
uids = st.integers(min_value=0, max_value=rules.UID_MAX).map(str)
sids = st.from_regex(r"[0-9a-zA-Z]{1,40}", fullmatch=True).filter(
    lambda s: re.fullmatch(r"bak[0-9]+", s) is None)
times = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31),
                     timezones=st.just(UTC)).map(lambda t: t.replace(microsecond=t.microsecond
                                                                      // 1000 * 1000))
prefixes = st.lists(st.from_regex(rules.FILE_NAME_PREFIX.regex, fullmatch=True), max_size=3)
failovers = st.none() | st.integers(min_value=0, max_value=1000)


@given(sid=sids, cname=cnames, uid=uids, taken_at=times, failover=failovers, prefix=prefixes)
def test_format_then_parse_round_trips(sid: str, cname: str, uid: str, taken_at: datetime,
                                       failover: int | None, prefix: list[str]) -> None:
    key = format_snapshot_name(sid=sid, cname=cname, uid=uid, taken_at=taken_at,
                               failover_index=failover, prefix=prefix)
    assert parse_snapshot_name(key) == SnapshotName(tuple(prefix), failover, sid, cname, uid,
                                                    taken_at, key)


@given(sid=sids, cname=cnames, uid=uids, taken_at=times, failover=failovers, prefix=prefixes)
def test_pattern_matches_its_own_files(sid: str, cname: str, uid: str, taken_at: datetime,
                                       failover: int | None, prefix: list[str]) -> None:
    key = format_snapshot_name(sid=sid, cname=cname, uid=uid, taken_at=taken_at,
                               failover_index=failover, prefix=prefix)
    assert re.search(snapshot_pattern(sid=sid, cname=cname, prefix=prefix), key)
    assert re.search(snapshot_pattern(sid=None, cname=cname, prefix=prefix), key)


@given(cname=cnames, other=cnames, uid=uids)
def test_pattern_does_not_match_another_channel(cname: str, other: str, uid: str) -> None:
    key = format_snapshot_name(sid=SID, cname=other, uid=uid, taken_at=EXAMPLE_TIME)
    matched = re.search(snapshot_pattern(sid=SID, cname=cname), key) is not None
    assert matched == (cname == other)


def test_pattern_does_not_match_another_sid_or_prefix() -> None:
    key = format_snapshot_name(sid="othersid", cname="lobby", uid="1", taken_at=EXAMPLE_TIME,
                               prefix=["a"])
    assert not re.search(snapshot_pattern(sid=SID, cname="lobby", prefix=["a"]), key)
    assert not re.search(snapshot_pattern(sid=None, cname="lobby", prefix=["b"]), key)
    assert not re.search(snapshot_pattern(sid=None, cname="lobby"), key)
    assert re.search(snapshot_pattern(sid=None, cname="lobby", prefix=["a"]), key)


def test_pattern_escapes_only_portable_syntax() -> None:
    # '#', '&', '~', space and '-' stay literal so the pattern also compiles in JavaScript's
    # u-mode, where an escape like "\\#" is an error.
    pattern = snapshot_pattern(sid=None, cname="a.b (c)#&~ -x")
    assert r"a\.b \(c\)#&~ -x" in pattern
    assert re.search(pattern, f"{SID}_a.b (c)#&~ -x__uid_s_1__uid_e_video_20190611073246073.jpg")
    assert not re.search(pattern, f"{SID}_aXb (c)#&~ -x__uid_s_1__uid_e_video_"
                                  "20190611073246073.jpg")


# --------------------------------------------------------------------------------------------------
# Listing


def _write(root: Path, key: str) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff\xd9")


def _session_keys() -> list[str]:
    t = EXAMPLE_TIME
    return [
        format_snapshot_name(sid=SID, cname="lobby", uid="9", taken_at=t + timedelta(seconds=5),
                             prefix=["snaps"]),
        format_snapshot_name(sid=SID, cname="lobby", uid="10", taken_at=t, prefix=["snaps"]),
        format_snapshot_name(sid=SID, cname="lobby", uid="9", taken_at=t, prefix=["snaps"]),
        format_snapshot_name(sid=SID, cname="lobby", uid="9", taken_at=t + timedelta(seconds=90),
                             failover_index=0, prefix=["snaps"]),
    ]


def test_local_listing_is_sorted_by_time_then_uid(tmp_path: Path) -> None:
    keys = _session_keys()
    for key in keys:
        _write(tmp_path, key)
    listed = list_snapshots(LocalDirectory(tmp_path))
    assert [n.key for n in listed] == [keys[2], keys[1], keys[0], keys[3]]
    assert listed[3].failover_index == 0


def test_local_listing_skips_and_counts_other_files(tmp_path: Path) -> None:
    key = _session_keys()[0]
    _write(tmp_path, key)
    _write(tmp_path, "snaps/notes.txt")
    _write(tmp_path, "snaps/thumbs/x.jpg")
    listing = scan_snapshots(LocalDirectory(tmp_path))
    assert ([n.key for n in listing.snapshots], listing.skipped) == ([key], 2)


def test_local_listing_filters_by_sid_cname_and_prefix(tmp_path: Path) -> None:
    mine = format_snapshot_name(sid=SID, cname="lobby", uid="1", taken_at=EXAMPLE_TIME,
                                prefix=["a", "b"])
    others = [
        format_snapshot_name(sid="othersid", cname="lobby", uid="1", taken_at=EXAMPLE_TIME,
                             prefix=["a", "b"]),
        format_snapshot_name(sid=SID, cname="lobby_2", uid="1", taken_at=EXAMPLE_TIME,
                             prefix=["a", "b"]),
        format_snapshot_name(sid=SID, cname="lobby", uid="1", taken_at=EXAMPLE_TIME,
                             prefix=["a", "c"]),
    ]
    for key in [mine, *others]:
        _write(tmp_path, key)
    listed = list_snapshots(LocalDirectory(tmp_path), sid=SID, cname="lobby", prefix=["a", "b"])
    assert [n.key for n in listed] == [mine]


def test_prefix_filter_keeps_deeper_prefixes(tmp_path: Path) -> None:
    key = format_snapshot_name(sid=SID, cname="c", uid="1", taken_at=EXAMPLE_TIME,
                               prefix=["a", "b"])
    _write(tmp_path, key)
    assert [n.key for n in list_snapshots(LocalDirectory(tmp_path), prefix=["a"])] == [key]
    assert list_snapshots(LocalDirectory(tmp_path), prefix=["b"]) == []


@dataclass
class _EverythingSource:
    """A source that ignores the prefix it is given, as a caller's own source may."""

    listed: list[str]

    def keys(self, prefix: Sequence[str] = ()) -> Iterable[str]:
        return iter(self.listed)


def test_prefix_is_checked_even_when_the_source_ignores_it() -> None:
    inside = format_snapshot_name(sid=SID, cname="c", uid="1", taken_at=EXAMPLE_TIME,
                                  prefix=["a"])
    outside = format_snapshot_name(sid=SID, cname="c", uid="1", taken_at=EXAMPLE_TIME,
                                   prefix=["b"])
    listed = list_snapshots(_EverythingSource([outside, inside]), prefix=["a"])
    assert [n.key for n in listed] == [inside]


def test_prefix_cannot_walk_outside_the_bucket(tmp_path: Path) -> None:
    _write(tmp_path, format_snapshot_name(sid=SID, cname="c", uid="1", taken_at=EXAMPLE_TIME))
    (tmp_path / "bucket").mkdir()
    assert list_snapshots(LocalDirectory(tmp_path / "bucket"), prefix=[".."]) == []


def test_missing_directory_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotSourceError, match="directory not found"):
        list_snapshots(LocalDirectory(tmp_path / "absent"))


# S3 through moto's S3 + IAM server on loopback, IAM enforced (the package's ``s3_server``
# fixture; design.md, testing layer 5).

READ_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::*"}]}


def test_s3_listing_returns_sorted_parsed_files(s3_server: S3Server) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="snaps-bucket")
    keys = _session_keys()
    for key in [*keys, "snaps/readme.txt"]:
        client.put_object(Bucket="snaps-bucket", Key=key, Body=b"\xff\xd8")
    # A key that may only list the bucket is enough (least privilege for a reader).
    reader = s3_server.create_user("snapshot-reader", READ_ONLY)
    source = S3Bucket("snaps-bucket", s3_server.endpoint_url, reader.access_key_id,
                      reader.secret_access_key)
    listing = scan_snapshots(source, cname="lobby", prefix=["snaps"])
    assert [n.key for n in listing.snapshots] == [keys[2], keys[1], keys[0], keys[3]]
    assert listing.skipped == 1


def test_s3_missing_bucket_names_the_bucket_but_not_the_keys(s3_server: S3Server) -> None:
    admin = s3_server.admin_key
    source = S3Bucket("no-such-bucket", s3_server.endpoint_url, admin.access_key_id,
                      admin.secret_access_key)
    with pytest.raises(SnapshotSourceError) as caught:
        list_snapshots(source)
    text = str(caught.value)
    assert "no-such-bucket" in text
    assert "NoSuchBucket" in text
    for secret in (admin.access_key_id, admin.secret_access_key):
        assert secret not in text
        assert secret not in repr(source)


def test_s3_unknown_key_is_refused_without_echoing_it(s3_server: S3Server) -> None:
    s3_server.client().create_bucket(Bucket="snaps-bucket")
    source = S3Bucket("snaps-bucket", s3_server.endpoint_url, ACCESS_KEY, SECRET_KEY)
    with pytest.raises(SnapshotSourceError, match="HTTP 403") as caught:
        list_snapshots(source)
    assert ACCESS_KEY not in str(caught.value)
    assert SECRET_KEY not in str(caught.value)


ACCESS_KEY = "AKIASNAPSHOTLISTTEST"
SECRET_KEY = "snapshot-secret-DO-NOT-LEAK-7f3a"


def test_naming_import_does_not_import_boto3() -> None:
    import subprocess
    import sys

    code = "import sys, snapshot_resources.naming; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
