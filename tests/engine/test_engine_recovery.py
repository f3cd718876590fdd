"""What ordinary commands do after the ground moved under a deployed stack, under the real
engine: Agora no longer knows a resource ID (an emulator restarted, another endpoint), and the
customer secret was reset and set with `pulumi config set --secret` (docs/decisions.md,
"Interrupted, never orphaned")."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from support.engine_stack import (
    CUSTOMER_ID,
    CUSTOMER_SECRET,
    TIME_SCALE,
    ExampleStack,
    running_tasks,
)
from support.waiting import wait_for

from snapshot_resources.testing.emulator import RawAgora, S3Server, run_emulator, snapshot_request
from snapshot_resources.testing.offline import OfflinePulumi

NEW_SECRET = "engine-customer-secret-rotated-44e1"


def test_a_resource_id_agora_cannot_parse_is_reported_and_replaced_not_expired(
    offline: OfflinePulumi, s3: S3Server, tmp_path: Path
) -> None:
    options: dict[str, Any] = {"time_scale": TIME_SCALE, "s3_endpoint": s3.endpoint_url,
               "customer_id": CUSTOMER_ID, "customer_secret": CUSTOMER_SECRET}
    with run_emulator(storage_dir=tmp_path / "a", **options) as first:
        example = ExampleStack(offline, first, s3)
        example.sessions = {"lobby": example.sessions["lobby"]}
        example.publish()
        example.apply()
        assert example.up().ok
        old_sid = example.sids_in_state()["lobby"]
        port = urlparse(first.url).port or 0
    # The emulator restarts under the deployed stack: it cannot parse the old resource IDs.
    with run_emulator(storage_dir=tmp_path / "b", port=port, **options) as second:
        example.agora = second
        example.publish()
        refresh = example.refresh()
        assert refresh.ok, refresh.terminal
        assert "code 1001" in refresh.terminal
        assert "refresh drops it and the next `pulumi up` starts a new one" in refresh.terminal
        assert "expired" not in refresh.terminal, "an unparsable resource ID is not expired"
        assert example.sessions_in_state() == {}
        up = example.up()
        assert up.ok, up.terminal
        new_sid = example.sids_in_state()["lobby"]
        assert new_sid != old_sid
        assert [t["sid"] for t in running_tasks(second)] == [new_sid]
        assert example.destroy().ok
        wait_for(lambda: running_tasks(second) == [], timeout=30)


def test_a_rotated_customer_secret_is_explained_on_refresh_and_used_after_up(
    example: ExampleStack,
) -> None:
    example.sessions = {"lobby": example.sessions["lobby"]}
    example.publish()
    example.apply()
    assert example.up().ok
    # The secret is reset in Agora Console and set in the stack as a user would.
    example.agora.admin.set_credentials(CUSTOMER_ID, NEW_SECRET)
    example.secrets["agora:customerSecret"] = NEW_SECRET
    example.apply()

    refresh = example.refresh()
    assert not refresh.ok
    text = refresh.terminal
    assert "401" in text
    assert "run `pulumi up` first" in text
    assert "--run-program" in text
    assert "Traceback" not in text
    assert NEW_SECRET not in text
    assert CUSTOMER_SECRET not in text

    with_program = example.refresh(run_program=True)
    assert with_program.ok, with_program.terminal

    assert example.up().ok
    again = example.refresh()
    assert again.ok, again.terminal
    assert example.destroy().ok
    wait_for(lambda: running_tasks(example.agora) == [], timeout=30)


def test_a_53_from_a_task_nobody_here_started_is_one_clear_message(
    example: ExampleStack,
) -> None:
    example.sessions = {"lobby": example.sessions["lobby"]}
    example.publish()
    lobby = example.sessions["lobby"]
    # A task on the session's channel and recorder uid that this product never started (another
    # program, Agora's console, another team's stack).
    raw = RawAgora(example.agora)
    _, foreign = raw.begin(lobby["cname"], lobby["uid"], snapshot_request(
        vendor=2, region=3, bucket="someone-elses"))
    raw.close()
    example.apply()
    up = example.up()
    assert not up.ok
    text = up.terminal
    assert f"channel '{lobby['cname']}', recorder uid {lobby['uid']}" in text
    assert "code 53" in text
    assert "give this session another `uid`" in text
    assert "Traceback" not in text
    assert [t["sid"] for t in running_tasks(example.agora)] == [foreign]
