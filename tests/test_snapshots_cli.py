"""``snapshot-resources snapshots ls`` (snapshot_resources/commands/snapshots.py)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from snapshot_resources.cli import main
from snapshot_resources.commands import snapshots
from snapshot_resources.events import parse_event, snapshot_file
from snapshot_resources.naming import format_snapshot_name
from snapshot_resources.testing.emulator import S3Server

SID = "38f8e3cfdc474cd56fc1ceba380d7e1a"
T0 = datetime(2019, 6, 11, 7, 32, 46, 73_000, tzinfo=UTC)
ACCESS_KEY = "AKIASNAPSHOTCLITEST0"
SECRET_KEY = "cli-secret-DO-NOT-LEAK-b41e"


def _keys() -> list[str]:
    """Three files of one session, written out of order, the last one after a failover."""
    return [
        format_snapshot_name(sid=SID, cname="lobby", uid="200", taken_at=T0 + timedelta(seconds=5),
                             prefix=["snaps"]),
        format_snapshot_name(sid=SID, cname="lobby", uid="100", taken_at=T0, prefix=["snaps"]),
        format_snapshot_name(sid=SID, cname="lobby", uid="100", taken_at=T0 + timedelta(seconds=95),
                             failover_index=0, prefix=["snaps"]),
    ]


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    """The emulator's layout: ``<storage_dir>/<bucket>/<key>``, plus a file that is no snapshot."""
    for key in [*_keys(), "snaps/index.html"]:
        path = tmp_path / "bucket1" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\xff\xd8\xff\xd9")
    return tmp_path


def test_table_lists_every_file_sorted_with_parsed_fields(
    storage_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["snapshots", "ls", "--dir", str(storage_dir), "--bucket", "bucket1"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "(UTC)", "UID", "FAILOVER", "SID", "CNAME", "KEY"]
    keys = _keys()
    assert [line.split()[-1] for line in lines[1:]] == [keys[1], keys[0], keys[2]]
    assert lines[1].split()[:6] == ["2019-06-11", "07:32:46.073", "100", "-", SID, "lobby"]
    assert lines[3].split()[2:4] == ["100", "0"]
    assert "3 snapshot file(s); 1 other file(s) skipped" in err


def test_dir_may_be_the_bucket_directory_itself(
    storage_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["snapshots", "ls", "--dir", str(storage_dir / "bucket1"), "--format",
                 "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["snapshots"]) == 3


def test_json_output_has_the_parsed_fields(
    storage_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["snapshots", "ls", "--dir", str(storage_dir), "--bucket", "bucket1",
                 "--format", "json", "--sid", SID, "--cname", "lobby", "--prefix", "snaps"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["skipped"] == 1
    assert [s["key"] for s in data["snapshots"]] == [_keys()[i] for i in (1, 0, 2)]
    assert data["snapshots"][2] == {
        "key": _keys()[2], "prefix": ["snaps"], "failoverIndex": 0, "sid": SID, "cname": "lobby",
        "uid": "100", "takenAt": "2019-06-11T07:34:21.073+00:00"}


def test_filters_that_match_nothing_give_an_empty_list(
    storage_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["snapshots", "ls", "--dir", str(storage_dir / "bucket1"), "--cname", "other",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["snapshots"] == []


def test_missing_directory_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    assert main(["snapshots", "ls", "--dir", str(missing)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"snapshot-resources snapshots ls: error: directory not found: {str(missing)!r}"]


def test_s3_without_keys_in_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    # No request is made: the check comes first, so the endpoint needs no server.
    assert main(["snapshots", "ls", "--s3-endpoint", "http://127.0.0.1:9", "--bucket", "b"]) == 1
    assert "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in capsys.readouterr().err


def test_s3_endpoint_needs_a_bucket(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["snapshots", "ls", "--s3-endpoint", "http://127.0.0.1:9"]) == 1
    assert "--s3-endpoint needs --bucket" in capsys.readouterr().err


def test_dir_and_s3_endpoint_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["snapshots", "ls", "--dir", ".", "--s3-endpoint", "http://127.0.0.1:9"])
    assert caught.value.code == 2
    # argparse's usage error (its wording is argparse's): both options named, no traceback.
    err = capsys.readouterr().err
    assert "--dir" in err.splitlines()[-1]
    assert "--s3-endpoint" in err.splitlines()[-1]
    assert "Traceback" not in err


def test_s3_bucket_is_listed_with_keys_from_the_environment(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = s3_server.client()
    client.create_bucket(Bucket="cli-bucket")
    for key in _keys():
        client.put_object(Bucket="cli-bucket", Key=key, Body=b"\xff\xd8")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.admin_key.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.admin_key.secret_access_key)
    assert main(["snapshots", "ls", "--s3-endpoint", s3_server.endpoint_url, "--bucket",
                 "cli-bucket", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [s["key"] for s in data["snapshots"]] == [_keys()[i] for i in (1, 0, 2)]


def test_s3_failure_is_one_message_without_keys(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    assert main(["snapshots", "ls", "--s3-endpoint", s3_server.endpoint_url, "--bucket",
                 "absent-bucket"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "absent-bucket" in err
    assert "HTTP 403" in err  # the key is unknown to the server's IAM
    assert ACCESS_KEY not in err
    assert SECRET_KEY not in err


# --------------------------------------------------------------------------------------------------
# Progress while a long listing runs


class _Terminal(io.StringIO):
    """stderr as a terminal: what ``isatty()`` tells the command."""

    def isatty(self) -> bool:
        return True


class _SlowSource:
    """A bucket that takes ``seconds`` per page of ``page`` keys (a large bucket, a slow link)."""

    def __init__(self, pages: int, page: int, seconds: float) -> None:
        self.pages, self.page, self.seconds = pages, page, seconds

    def keys(self, prefix: Sequence[str] = ()) -> Iterator[str]:
        for p in range(self.pages):
            time.sleep(self.seconds)
            for i in range(self.page):
                yield format_snapshot_name(sid=SID, cname="lobby", uid=str(p * self.page + i + 1),
                                           taken_at=T0)


def _slow_listing(monkeypatch: pytest.MonkeyPatch, stderr: io.StringIO) -> None:
    monkeypatch.setattr(snapshots, "PROGRESS_SECONDS", 0.05)
    monkeypatch.setattr(snapshots, "_source", lambda args: _SlowSource(4, 500, 0.1))
    monkeypatch.setattr("sys.stderr", stderr)


def test_a_long_listing_shows_progress_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = _Terminal()
    _slow_listing(monkeypatch, terminal)
    assert main(["snapshots", "ls", "--s3-endpoint", "http://127.0.0.1:9", "--bucket", "big",
                 "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["snapshots"]) == 2000
    shown = terminal.getvalue()
    updates = [part for part in shown.split("\r") if "keys so far" in part]
    assert updates, shown
    assert updates[0].startswith("snapshot-resources snapshots ls: listing s3 bucket 'big': ")
    # Rewritten in place, then cleared before the output: the screen is left as it was.
    assert "\n" not in shown
    assert shown.endswith("\r")


def test_no_progress_when_stderr_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = io.StringIO()  # a file or a CI log: isatty() is False
    _slow_listing(monkeypatch, log)
    assert main(["snapshots", "ls", "--s3-endpoint", "http://127.0.0.1:9", "--bucket", "big"]) == 0
    capsys.readouterr()
    assert log.getvalue() == "2000 snapshot file(s)\n"


def test_a_quick_listing_shows_no_progress(
    storage_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["snapshots", "ls", "--dir", str(storage_dir), "--bucket", "bucket1"]) == 0
    capsys.readouterr()
    assert "keys so far" not in terminal.getvalue()


# --------------------------------------------------------------------------------------------------
# Acceptance: the emulator's real output (design.md, "The emulator"), including bak0_ files.


def _wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the emulator did not get there in time"
        time.sleep(0.02)


def test_ls_lists_every_file_the_emulator_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from snapshot_resources.testing.emulator import RawAgora, run_emulator, snapshot_request

    storage = tmp_path / "storage"
    with run_emulator(time_scale=50, storage_dir=storage) as emulator:
        raw = RawAgora(emulator)
        try:
            emulator.admin.join("lobby", 100)
            emulator.admin.join("lobby", 200)
            resource_id, sid = raw.begin("lobby", "527841",
                                         snapshot_request(bucket="snaps", prefix=["cam"]))
            _wait_for(lambda: len(list(storage.rglob("*.jpg"))) >= 4)
            emulator.admin.failover(sid)
            _wait_for(lambda: any(storage.rglob("bak0_*.jpg")))
            assert raw.stop(resource_id, sid, "lobby", "527841").status_code == 200
            events = [parse_event(body) for body in emulator.admin.events()]
        finally:
            raw.close()
    written = {p.relative_to(storage / "snaps").as_posix() for p in storage.rglob("*.jpg")}

    assert main(["snapshots", "ls", "--dir", str(storage), "--bucket", "snaps", "--sid", sid,
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    listed = data["snapshots"]
    assert data["skipped"] == 0
    assert {s["key"] for s in listed} == written
    assert [s["takenAt"] for s in listed] == sorted(s["takenAt"] for s in listed)
    assert {s["uid"] for s in listed} == {"100", "200"}
    assert {s["failoverIndex"] for s in listed} == {None, 0}
    assert all(s["prefix"] == ["cam"] and s["cname"] == "lobby" for s in listed)
    # Event 45 announces each uploaded file by the same key (S12).
    announced = {snapshot_file(e) for e in events} - {None}
    assert announced == written
