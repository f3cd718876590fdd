"""Snapshots: real JPGs, named by the rule of S8, one series per publishing subscribed uid,
paused while a publisher stops video, and the idle exit (S3, S8, S12)."""

from __future__ import annotations

import io
import itertools
import time
from pathlib import Path

from PIL import Image
from support.waiting import wait_for

from snapshot_resources.naming import SnapshotName, parse_snapshot_name
from snapshot_resources.testing.emulator import (
    EmulatorHandle,
    RawAgora,
    run_emulator,
    snapshot_request,
)

CNAME, BOT = "lobby", "527841"




def _files(root: Path) -> list[SnapshotName]:
    names = [parse_snapshot_name(path.relative_to(root).as_posix())
             for path in root.rglob("*.jpg")]
    return sorted(names, key=lambda name: (name.uid, name.taken_at))


def _stopped(agora: RawAgora, rid: str, sid: str) -> None:
    assert agora.stop(rid, sid, CNAME, BOT).status_code == 200


def test_files_are_named_by_the_documented_rule(agora: RawAgora,
                                                agora_emulator: EmulatorHandle) -> None:
    agora_emulator.admin.join(CNAME, "100")
    rid, sid = agora.begin(CNAME, BOT, snapshot_request(bucket="b", prefix=["snaps", "lobby"]))
    wait_for(lambda: agora_emulator.admin.task(sid)["files"] >= 2)
    _stopped(agora, rid, sid)
    names = _files(agora_emulator.storage_dir / "b")
    assert names
    assert {(n.prefix, n.sid, n.cname, n.uid, n.failover_index) for n in names} == \
        {(("snaps", "lobby"), sid, CNAME, "100", None)}


def test_every_file_is_a_jpg_showing_channel_uid_and_time(
        agora: RawAgora, agora_emulator: EmulatorHandle) -> None:
    agora_emulator.admin.join(CNAME, "100")
    rid, sid = agora.begin(CNAME, BOT, snapshot_request(bucket="b"))
    wait_for(lambda: agora_emulator.admin.task(sid)["files"] >= 1)
    _stopped(agora, rid, sid)
    paths = sorted((agora_emulator.storage_dir / "b").rglob("*.jpg"))
    with Image.open(io.BytesIO(paths[0].read_bytes())) as image:
        image.verify()
        assert (image.format, image.size) == ("JPEG", (320, 180))


def test_one_series_per_publishing_subscribed_uid(agora: RawAgora,
                                                  agora_emulator: EmulatorHandle) -> None:
    admin = agora_emulator.admin
    admin.join(CNAME, "100")
    admin.join(CNAME, "200")
    admin.join(CNAME, "300", video=False)  # subscribed but not publishing video
    admin.join(CNAME, "400")  # publishing but not subscribed
    rid, sid = agora.begin(CNAME, BOT, snapshot_request(
        bucket="b", subscribe_video_uids=["100", "200", "300"]))
    wait_for(lambda: agora_emulator.admin.task(sid)["files"] >= 6)
    _stopped(agora, rid, sid)
    assert {name.uid for name in _files(agora_emulator.storage_dir / "b")} == {"100", "200"}


def test_a_series_is_spaced_by_capture_interval_in_emulated_time(
        agora: RawAgora, agora_emulator: EmulatorHandle) -> None:
    agora_emulator.admin.join(CNAME, "100")
    rid, sid = agora.begin(CNAME, BOT, snapshot_request(bucket="b", capture_interval=3))
    wait_for(lambda: agora_emulator.admin.task(sid)["files"] >= 4)
    _stopped(agora, rid, sid)
    times = [name.taken_at for name in _files(agora_emulator.storage_dir / "b")]
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(times)}
    assert gaps == {3.0}


def test_a_publisher_who_stops_video_pauses_and_resumes_its_series(
        agora: RawAgora, agora_emulator: EmulatorHandle) -> None:
    admin = agora_emulator.admin
    admin.join(CNAME, "100")
    rid, sid = agora.begin(CNAME, BOT, snapshot_request(bucket="b", capture_interval=1,
                                                        max_idle_time=300))
    wait_for(lambda: admin.task(sid)["files"] >= 2)
    admin.set_publishing(CNAME, "100", video=False)
    paused_at = admin.task(sid)["captures"]
    time.sleep(0.3)  # 15 emulated seconds, 15 intervals
    assert admin.task(sid)["captures"] == paused_at
    admin.set_publishing(CNAME, "100", video=True)
    wait_for(lambda: admin.task(sid)["captures"] >= paused_at + 2)
    _stopped(agora, rid, sid)
    times = [name.taken_at for name in _files(agora_emulator.storage_dir / "b")]
    longest = max((b - a).total_seconds() for a, b in itertools.pairwise(times))
    assert longest >= 10  # the gap of the pause, in emulated seconds
    states = [e["payload"]["details"]["state"] for e in admin.events() if e["eventType"] == 44]
    assert states[:3] == [0, 1, 0]  # NCS 44: receiving, not receiving, receiving (S8, S12)


def test_an_idle_channel_ends_the_task_by_itself(agora: RawAgora,
                                                 agora_emulator: EmulatorHandle) -> None:
    admin = agora_emulator.admin
    rid, sid = agora.begin(CNAME, BOT, snapshot_request(max_idle_time=5))
    wait_for(lambda: admin.task(sid)["state"] == "gone")  # 5 + 6 emulated s, ~0.2 s
    response = agora.query(rid, sid)
    assert (response.status_code, response.json()["code"]) == (404, 404)
    leave_and_exit = [(e["eventType"], e["payload"]["details"]) for e in admin.events()
                      if e["eventType"] in (41, 11)]
    assert leave_and_exit == [(41, {"leaveCode": 4}), (11, {"exitStatus": 0})]


def test_stop_during_the_idle_exit_is_49() -> None:
    # A long exit (60 emulated s = 1.2 s) so the stop surely lands inside it.
    with run_emulator(time_scale=50, exit_seconds=60) as handle:
        agora = RawAgora(handle)
        rid, sid = agora.begin(CNAME, BOT, snapshot_request(max_idle_time=5))
        wait_for(lambda: handle.admin.task(sid)["state"] == "exiting")
        response = agora.stop(rid, sid, CNAME, BOT)
        agora.close()
    assert (response.status_code, response.json()["code"]) == (400, 49)
