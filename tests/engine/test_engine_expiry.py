"""Resource-ID expiry under the real engine (docs/decisions.md "A resource ID that expires"):
`pulumi up` renews a session ahead of its expiry, and past it `pulumi refresh` and
`pulumi destroy` still succeed and say what may still run (they used to fail forever)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.engine_stack import CUSTOMER_ID, CUSTOMER_SECRET, ExampleStack
from support.waiting import wait_for

from snapshot_resources.testing.emulator import EmulatorHandle, RawAgora, S3Server, run_emulator
from snapshot_resources.testing.offline import OfflinePulumi

HOUR_PER_SECOND = 3600.0  # one emulated hour per real second


def test_up_replaces_a_session_whose_resource_id_is_about_to_expire(
    example: ExampleStack, offline: OfflinePulumi, tmp_path: Path
) -> None:
    example.publish()
    example.apply()
    assert example.up().ok
    before = example.sids_in_state()
    # As if `stage` had run for 29 days of its 30: its resource ID expires in 10 minutes.
    state = offline.export(example.stack)
    soon = (datetime.now(UTC) + timedelta(minutes=10)).isoformat(timespec="seconds")
    for resource in state["deployment"]["resources"]:
        if resource["urn"].endswith("::stage"):
            resource["outputs"]["resourceExpiresAt"] = soon.replace("+00:00", "Z")
    edited = tmp_path / "state.json"
    edited.write_text(json.dumps(state))
    offline.run("stack", "import", "--file", str(edited), "--stack", example.stack.name,
                cwd=example.project_dir)

    preview = example.preview(diff=True)
    up = example.up()

    assert preview.ok, preview.terminal
    assert "+-pulumi-python:dynamic/agora:SnapshotSession: (replace)" in preview.stdout
    assert "dynamic/agora:SnapshotSession::stage]" in preview.stdout
    assert up.ok, up.terminal
    ops = [op for op, name in up.steps if name == "stage"]
    assert ops.index("delete-replaced") < ops.index("create-replacement"), ops
    after = example.sids_in_state()
    assert after["stage"] != before["stage"]
    assert after["lobby"] == before["lobby"]


@pytest.fixture
def fast_agora(tmp_path: Path, s3: S3Server) -> Iterator[EmulatorHandle]:
    with run_emulator(time_scale=HOUR_PER_SECOND, storage_dir=tmp_path / "fast",
                      s3_endpoint=s3.endpoint_url, customer_id=CUSTOMER_ID,
                      customer_secret=CUSTOMER_SECRET) as handle:
        yield handle


def test_refresh_and_destroy_of_an_expired_session_succeed_and_say_why(
    offline: OfflinePulumi, fast_agora: EmulatorHandle, s3: S3Server
) -> None:
    example = ExampleStack(offline, fast_agora, s3)
    stage = example.sessions["stage"]
    stage["resourceExpiredHour"] = 1
    stage["snapshotConfig"]["captureInterval"] = 3600
    example.sessions = {"stage": stage}
    example.publish()
    example.apply()
    assert example.up().ok
    sid = example.sids_in_state()["stage"]
    [task] = fast_agora.admin.tasks()
    raw = RawAgora(fast_agora)
    try:
        wait_for(lambda: raw.query(task["resourceId"], sid).json().get("code") == 433, timeout=10)
    finally:
        raw.close()

    refresh = example.refresh()
    kept = example.sids_in_state()
    destroy = example.destroy()

    assert refresh.ok, refresh.terminal
    assert f"session {sid} on channel 'main-stage': its resource ID expired at" in refresh.terminal
    assert kept == {"stage": sid}  # it may still run: kept, for the next up to replace
    assert destroy.ok, destroy.terminal
    assert "it is removed from the state" in destroy.terminal
    assert example.sessions_in_state() == {}
