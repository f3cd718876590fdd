"""`pulumi preview`, `pulumi up` and `pulumi destroy` of the example stack, for real."""

from __future__ import annotations

import re
from typing import Any

from support.engine_stack import (
    BUCKET,
    LOBBY_USER,
    PROJECT,
    REPO,
    STAGE_USERS,
    ExampleStack,
    running_tasks,
)
from support.waiting import wait_for

from snapshot_resources import engine, naming, spec
from snapshot_resources.testing.offline import OfflinePulumi


def test_preview_of_a_broken_stack_file_shows_every_violation_and_creates_nothing(
    example: ExampleStack,
) -> None:
    example.sessions["lobby"]["snapshotConfig"]["captureInterval"] = 2
    example.sessions["stage"]["uid"] = "recorder"
    example.sessions["stage"]["snapshotConfig"]["captureIntervall"] = 5
    example.storage["main"]["bucket"] = "Not_A_Bucket"
    example.apply()
    # What `snapshot-resources validate` finds in the same file is the list to see in the terminal.
    problems = spec.stack_problems(example.stack_values(), default_app_id=example.agora.app_id)
    # The four edits above, and nothing else, are what `validate` finds in this file.
    assert sorted((p.dotted_path, p.rule_id) for p in problems) == [
        ("sessions.lobby.snapshotConfig.captureInterval", "capture_interval"),
        ("sessions.stage.snapshotConfig.captureIntervall", "unknown_key"),
        ("sessions.stage.uid", "recorder_uid"),
        ("storage.main.bucket", "bucket_name"),
    ]

    run = example.preview()

    assert not run.ok
    for problem in problems:
        line = f"{problem.dotted_path}: {problem.message} (rule {problem.rule_id};"
        assert line in run.terminal, f"{line!r} not shown:\n{run.terminal}"
    assert "nothing was deployed" in run.terminal
    assert example.agora.admin.request_log() == []  # not one call reached Agora
    assert example.sessions_in_state() == {}


def test_up_creates_both_sessions_and_their_snapshots_land_in_s3_under_the_documented_names(
    example: ExampleStack,
) -> None:
    example.publish()
    example.apply()

    run = example.up()

    assert run.ok, run.terminal
    outputs: dict[str, Any] = run.outputs["sessions"]
    assert set(outputs) == {"lobby", "stage"}
    for name, session in outputs.items():
        assert re.fullmatch(r"[0-9a-f]{32}", session["sid"]), name
        assert session["storageLocation"] == {
            "vendor": 1, "bucket": BUCKET, "prefix": f"snapshots/{name}"
        }
    by_user: dict[tuple[str, str], int] = {}

    def landed() -> bool:
        by_user.clear()
        for key in example.s3.keys(BUCKET):
            parsed = naming.parse_snapshot_name(key)
            owner = next(n for n, s in outputs.items() if s["sid"] == parsed.sid)
            assert re.fullmatch(outputs[owner]["fileNamePattern"], key), key
            by_user[(owner, parsed.uid)] = by_user.get((owner, parsed.uid), 0) + 1
        return {("stage", u) for u in STAGE_USERS} | {("lobby", LOBBY_USER)} <= set(by_user)

    wait_for(landed, timeout=30)
    # The recorder subscribes to exactly what the stack file says: nobody else shows up.
    assert set(by_user) == {("stage", "1001"), ("stage", "1002"), ("lobby", LOBBY_USER)}
    assert {t["sid"] for t in running_tasks(example.agora)} == {s["sid"] for s in outputs.values()}


def test_destroy_leaves_no_task_and_no_process(example: ExampleStack, offline: OfflinePulumi) -> None:
    example.publish()
    example.apply()
    assert example.up().ok

    run = example.destroy()

    assert run.ok, run.terminal
    assert running_tasks(example.agora) == []
    assert example.sessions_in_state() == {}
    # The engine has stopped every provider process it started for this environment.
    wait_for(lambda: offline.live_providers() == [], timeout=10)


def test_config_declarations_of_pulumi_yaml_are_enforced_by_the_cli(example: ExampleStack) -> None:
    """The CLI reads Pulumi.yaml as written: `sessions` is declared an object."""
    for name in engine.PROJECT_FILES:  # the repository's own files, byte for byte
        assert (example.project_dir / name).read_bytes() == (REPO / name).read_bytes()
    example.apply()
    example.stack.set_config(f"{PROJECT}:sessions", _plain("lobby"))

    run = example.preview()

    assert not run.ok
    assert "configuration key 'sessions' must be of type 'object'" in run.terminal


def _plain(value: str) -> Any:
    from pulumi import automation as auto

    return auto.ConfigValue(value)


def test_a_second_up_with_nothing_changed_changes_nothing(example: ExampleStack) -> None:
    example.publish()
    example.apply()
    assert example.up().ok
    before = example.sids_in_state()

    run = example.up(expect_no_changes=True)

    assert run.ok, run.terminal
    assert example.sids_in_state() == before
