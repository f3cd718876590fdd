"""Sessions that end on their own: `pulumi refresh` drops them and says why; `pulumi up` restarts."""

from __future__ import annotations

from support.engine_stack import LOBBY_USER, STAGE_USERS, TIME_SCALE, ExampleStack, running_tasks
from support.waiting import wait_for

IDLE_SECONDS = 30  # emulated; 1.5 s of wall time at TIME_SCALE 20


def test_a_session_ended_on_idle_is_dropped_by_refresh_and_started_again_by_up(
    example: ExampleStack,
) -> None:
    for uid in STAGE_USERS:  # only the stage has users; the lobby stays empty
        example.agora.admin.join(example.sessions["stage"]["cname"], uid, video=True)
    example.sessions["lobby"]["recordingConfig"]["maxIdleTime"] = IDLE_SECONDS
    example.apply()
    assert example.up().ok
    first = example.sids_in_state()

    wait_for(lambda: first["lobby"] not in {t["sid"] for t in running_tasks(example.agora)},
             timeout=IDLE_SECONDS / TIME_SCALE + 20)
    refresh = example.refresh()

    assert refresh.ok, refresh.terminal
    assert f"session {first['lobby']} on channel 'lobby' has ended" in refresh.terminal
    assert "the next `pulumi up` starts a new one" in refresh.terminal
    assert example.sids_in_state() == {"stage": first["stage"]}

    example.agora.admin.join("lobby", LOBBY_USER, video=True)
    again = example.up()

    assert again.ok, again.terminal
    assert ("create", "lobby") in again.steps
    second = example.sids_in_state()
    assert second["stage"] == first["stage"]
    assert second["lobby"] != first["lobby"]
    assert second["lobby"] in {t["sid"] for t in running_tasks(example.agora)}
