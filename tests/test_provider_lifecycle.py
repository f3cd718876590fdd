"""SnapshotSessionProvider hosted exactly as the engine hosts it (``python -m pulumi.dynamic``
over gRPC), against the local emulator over real HTTP (issue 4's acceptance)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from support.provider_settings import provider_config
from support.sessions import session_inputs

from snapshot_resources import naming
from snapshot_resources.testing.emulator import EmulatorHandle
from snapshot_resources.testing.provider_host import HostedResource


def wait_for_files(directory: Path, *, sid: str, uids: set[str], timeout: float = 10.0) -> list[naming.SnapshotName]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = naming.list_snapshots(naming.LocalDirectory(directory), sid=sid)
        except naming.SnapshotSourceError:  # no capture has created the bucket directory yet
            found = []
        if {n.uid for n in found} >= uids or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_create_lands_snapshots_of_two_publishers_matching_the_pattern(
    emulator: EmulatorHandle, session: HostedResource
) -> None:
    emulator.admin.join("lobby", "101")
    emulator.admin.join("lobby", "102")
    check = session.check(session_inputs(emulator.app_id))
    assert check.failures == []

    created = session.create()

    outs = created.outs
    sid = created.id
    assert outs["sid"] == sid
    assert outs["resourceId"]
    assert outs["status"] in (4, 5)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", outs["startedAt"])
    assert outs["storageLocation"] == {"vendor": 2, "bucket": "snaps", "prefix": "dir1/dir2"}
    assert outs["cname"] == "lobby"
    assert outs["snapshotConfig"]["captureInterval"] == 5
    files = wait_for_files(emulator.storage_dir / "snaps", sid=sid, uids={"101", "102"})
    assert {f.uid for f in files} == {"101", "102"}
    pattern = re.compile(outs["fileNamePattern"])
    for f in files:
        assert pattern.fullmatch(f.key), f.key
        assert f.key.startswith(f"dir1/dir2/{sid}_lobby__uid_s_{f.uid}__uid_e_video_")
    assert not pattern.fullmatch(files[0].key.replace(sid, "othersid"))


def running_tasks(emulator: EmulatorHandle) -> list[dict[str, object]]:
    """Tasks the emulator still runs (not exiting, not gone): what Agora would bill."""
    return [t for t in emulator.admin.tasks() if t["status"] in (0, 1, 2, 3, 4, 5)]


def test_unchanged_inputs_are_no_change(emulator: EmulatorHandle, session: HostedResource) -> None:
    session.check(session_inputs(emulator.app_id))
    session.create()
    diff = session.diff(session_inputs(emulator.app_id))
    assert diff.changes == "DIFF_NONE"
    assert diff.replaces == []


def test_subscription_list_change_updates_in_place(
    emulator: EmulatorHandle, session: HostedResource
) -> None:
    emulator.admin.join("lobby", "101")
    emulator.admin.join("lobby", "102")
    first = session_inputs(
        emulator.app_id,
        recordingConfig={"channelType": 1, "subscribeVideoUids": ["101"]},
    )
    session.check(first)
    sid = session.create().id
    second = session_inputs(
        emulator.app_id,
        recordingConfig={"channelType": 1, "subscribeVideoUids": ["101", "102"]},
    )

    diff = session.diff(second)
    # DIFF_UNKNOWN lets the engine compute the per-property diff reviewers see (design.md).
    assert diff.changes == "DIFF_UNKNOWN"
    assert diff.replaces == []
    assert session.check(second).failures == []
    updated = session.update()

    assert session.id == sid
    assert updated.outs["sid"] == sid
    assert updated.outs["resourceId"]
    assert updated.outs["recordingConfig"]["subscribeVideoUids"] == ["101", "102"]
    files = wait_for_files(emulator.storage_dir / "snaps", sid=sid, uids={"101", "102"})
    assert {f.uid for f in files} == {"101", "102"}


def test_capture_interval_change_replaces_delete_before_replace(
    emulator: EmulatorHandle, session: HostedResource, host: object
) -> None:
    session.check(session_inputs(emulator.app_id))
    old_sid = session.create().id
    changed = session_inputs(emulator.app_id, snapshotConfig={"captureInterval": 10})

    diff = session.diff(changed)
    assert diff.replaces == ["snapshotConfig"]
    assert diff.delete_before_replace is True

    # The engine's delete-before-replace: delete the old task, then create the new one.
    session.delete()
    session.check(changed)
    new_sid = session.create().id
    assert new_sid != old_sid
    assert [t["sid"] for t in running_tasks(emulator)] == [new_sid]


def test_refresh_of_a_task_that_ended_on_idle_drops_it(
    emulator: EmulatorHandle, session: HostedResource
) -> None:
    inputs = session_inputs(
        emulator.app_id, recordingConfig={"channelType": 1, "maxIdleTime": 5,
                                          "subscribeVideoUids": ["#allstream#"]}
    )
    session.check(inputs)
    sid = session.create().id
    # Nobody is in the channel: after maxIdleTime (5 emulated s = 0.1 s) plus the exit the task
    # is gone (S3, S6).
    deadline = time.monotonic() + 5
    while any(t["sid"] == sid for t in emulator.admin.tasks() if t["status"] != 8) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)

    result = session.read()
    assert result.id == ""
    assert session.id is None


def test_refresh_rides_out_a_failover_and_keeps_the_task(
    emulator: EmulatorHandle, session: HostedResource
) -> None:
    emulator.admin.join("lobby", "101")
    session.check(session_inputs(emulator.app_id))
    sid = session.create().id
    # 404 for 30 emulated seconds (0.6 s here), within the provider's 3 s grace.
    emulator.admin.failover(sid, downtime_seconds=30)

    result = session.read()

    assert result.id == sid
    assert result.outs["status"] in (4, 5)
    assert result.inputs is not None
    assert result.inputs["cname"] == "lobby"
    files = wait_for_files(emulator.storage_dir / "snaps", sid=sid, uids={"101"})
    assert files


def test_delete_twice_succeeds(emulator: EmulatorHandle, session: HostedResource) -> None:
    session.check(session_inputs(emulator.app_id))
    session.create()
    state = session.state
    sid = session.id
    assert sid is not None
    session.delete()
    # A second delete of the same state (a retried destroy) finds the task exiting or gone.
    session.host.delete(sid, session.urn, state)
    assert running_tasks(emulator) == []


def test_start_failing_after_acquire_leaves_no_task(
    emulator: EmulatorHandle, session: HostedResource
) -> None:
    from snapshot_resources.testing.provider_host import ProviderError

    emulator.admin.set_faults(rate=1.0, kinds=("5xx",), operations=("start",))
    session.check(session_inputs(emulator.app_id))
    try:
        session.create()
    except ProviderError as exc:
        message = str(exc)
    else:  # pragma: no cover - the assertion below reports it
        message = ""
    assert "start" in message
    assert session.id is None
    emulator.admin.clear_faults()
    assert running_tasks(emulator) == []


def test_a_task_that_never_becomes_ready_is_stopped_and_create_fails(tmp_path: Path) -> None:
    from snapshot_resources.provider import SnapshotSessionProvider
    from snapshot_resources.testing.emulator import run_emulator
    from snapshot_resources.testing.provider_host import ProviderError, ProviderHost

    # At real speed the emulated task needs 2 s to reach status 4; the provider waits 0.3 s.
    with run_emulator(time_scale=1.0, storage_dir=tmp_path) as slow, ProviderHost() as host:
        host.configure(provider_config(slow, **{"agora:startTimeout": "0.3"}))
        session = host.resource(SnapshotSessionProvider(), name="slow")
        session.check(session_inputs(slow.app_id))
        try:
            session.create()
        except ProviderError as exc:
            message = str(exc)
        else:  # pragma: no cover - reported by the assertion below
            message = ""
        assert "did not reach status 4 or 5" in message
        assert [t for t in slow.admin.tasks() if t["status"] in (0, 1, 2, 3, 4, 5)] == []


def test_numbers_that_crossed_the_wire_as_doubles_reach_agora_as_integers(
    emulator: EmulatorHandle, session: HostedResource
) -> None:
    # Struct numbers are doubles: the provider receives captureInterval 5.0, maxIdleTime 300.0,
    # vendor 2.0 (docs/pulumi-dynamic.md 4C). Agora wants integers (S3).
    inputs = session_inputs(emulator.app_id, recordingConfig={
        "channelType": 1, "maxIdleTime": 300, "subscribeVideoUids": ["#allstream#"]})
    session.check(inputs)
    sid = session.create().id
    sent = emulator.backend._tasks[sid].request.client_request
    numbers = [
        sent["snapshotConfig"]["captureInterval"],
        sent["recordingConfig"]["maxIdleTime"],
        sent["recordingConfig"]["channelType"],
        sent["recordingConfig"]["subscribeUidGroup"],
        sent["storageConfig"]["vendor"],
        sent["storageConfig"]["region"],
    ]
    assert numbers == [5, 300, 1, 0, 2, 3]
    assert all(type(n) is int for n in numbers)
