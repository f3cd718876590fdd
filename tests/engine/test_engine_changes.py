"""What a reviewer sees in `pulumi preview --diff` (and `--json`), and what `pulumi up` then does:
a subscription-list edit updates in place (same sid), an interval edit replaces the session,
stopping the old task before starting the new one (no 53 task conflict)."""

from __future__ import annotations

import json
import re
from typing import Any

from support.engine_stack import SESSION_TYPE, ExampleStack, running_tasks


def _steps(preview_json: str) -> list[dict[str, Any]]:
    document = json.loads(preview_json)
    steps: list[dict[str, Any]] = document.get("steps", [])
    return [step for step in steps if step.get("newState", step.get("oldState", {})).get("type")
            == SESSION_TYPE or SESSION_TYPE in step.get("urn", "")]


def _ops_for(steps: list[dict[str, Any]], name: str) -> list[str]:
    return [step["op"] for step in steps if step["urn"].endswith(f"::{name}")]


def _starts_refused(example: ExampleStack) -> list[dict[str, Any]]:
    return [r for r in example.agora.admin.request_log()
            if r["path"].endswith("/start") and r["status"] != 200]


def test_a_subscription_list_edit_is_an_update_in_place(example: ExampleStack) -> None:
    example.publish()
    example.apply()
    assert example.up().ok
    before = example.sids_in_state()
    example.sessions["stage"]["recordingConfig"]["subscribeVideoUids"] = ["1001"]
    example.apply()

    diff = example.preview(diff=True)
    as_json = example.preview(json=True)

    assert diff.ok, diff.terminal
    assert re.search(r"~ pulumi-python:dynamic/agora:SnapshotSession: \(update\)", diff.stdout), diff.stdout
    assert "[urn=urn:pulumi:test::agora-snapshots::pulumi-python:dynamic/agora:SnapshotSession::stage]" in diff.stdout
    assert re.search(r'-\s+\[1\]: "1002"', diff.stdout), diff.stdout
    assert "replace" not in diff.stdout
    steps = _steps(as_json.stdout)
    assert _ops_for(steps, "stage") == ["update"]
    assert _ops_for(steps, "lobby") in ([], ["same"])
    stage_step = next(s for s in steps if s["urn"].endswith("::stage"))
    assert "recordingConfig" in stage_step["diffReasons"]
    assert not stage_step.get("replaceReasons")

    run = example.up()

    assert run.ok, run.terminal
    assert example.sids_in_state() == before
    task = next(t for t in example.agora.admin.tasks() if t["sid"] == before["stage"])
    assert task["state"] == "running"


def test_an_interval_edit_replaces_the_session_deleting_before_creating(
    example: ExampleStack,
) -> None:
    example.publish()
    example.apply()
    assert example.up().ok
    before = example.sids_in_state()
    example.sessions["stage"]["snapshotConfig"]["captureInterval"] = 15
    example.apply()

    diff = example.preview(diff=True)
    as_json = example.preview(json=True)

    assert diff.ok, diff.terminal
    assert "+-pulumi-python:dynamic/agora:SnapshotSession: (replace)" in diff.stdout, diff.stdout
    assert re.search(r"~ captureInterval: 5 => 15", diff.stdout), diff.stdout
    steps = _steps(as_json.stdout)
    assert _ops_for(steps, "stage") == ["replace"]
    assert _ops_for(steps, "lobby") in ([], ["same"])
    stage_step = next(s for s in steps if s["urn"].endswith("::stage"))
    assert stage_step["replaceReasons"] == ["snapshotConfig"]

    run = example.up()

    assert run.ok, run.terminal
    # Delete before replace: the old task stops before the new one starts (same cname and uid).
    ops = [op for op, name in run.steps if name == "stage"]
    assert ops.index("delete-replaced") < ops.index("create-replacement"), ops
    after = example.sids_in_state()
    assert after["stage"] != before["stage"]
    assert after["lobby"] == before["lobby"]
    log = example.agora.admin.request_log()
    stop_old = next(i for i, r in enumerate(log) if r["path"].endswith(f"/sid/{before['stage']}/mode/individual/stop"))
    starts = [i for i, r in enumerate(log) if r["path"].endswith("/start")]
    assert stop_old < starts[-1]
    # Its start may meet 53 while the stopped predecessor leaves the channel: ridden out, never
    # a failure (the up succeeded), and only until the first start that succeeds.
    refused = _starts_refused(example)
    assert all(r["status"] == 400 for r in refused)
    answered = [r for r in example.agora.admin.request_log() if r["path"].endswith("/start")]
    assert answered[-1]["status"] == 200
    live = {t["sid"]: t for t in running_tasks(example.agora)}
    assert set(live) == set(after.values())
    assert live[after["stage"]]["captureInterval"] == 15
