"""The controller's decisions, rotations and coalescing, on a model of a stack (no engine).

``support.fake_stack.FakeStack`` keeps a state (session name -> sid) and records every call.
The engine tests (tests/engine/test_engine_reconcile.py) run the same controller on the real
engine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from support.fake_stack import (
    NOW,
    Clock,
    FakeStack,
    exit_event,
    join,
    recording_event,
    snapshot_event,
)

from snapshot_resources.events import TOKEN_EXPIRED_ERROR_CODE, RecordingEvent
from snapshot_resources.reconcile import (
    Cause,
    Controller,
    ControllerSettings,
    IdlePolicy,
    StackBusyError,
    StackOperationError,
)

LOGGER = "snapshot_resources.reconcile"


def controller(stack: FakeStack, *, declared: set[str] | None = None,
               policy: IdlePolicy = IdlePolicy.AUTO, clock: Clock | None = None,
               **settings: Any) -> Controller:
    """``declared`` is read at every round, so a test may add to it later.  No batch window:
    each ``step`` runs what is due."""
    names = declared if declared is not None else set(stack.sids)
    options: dict[str, Any] = {"interval": 600, "token_grace": 60, "idle_policy": policy,
                               "retry_delay": 5, "batch_window": 0, **settings}
    return Controller(stack, declared=lambda: frozenset(names), clock=clock or Clock(),
                      settings=ControllerSettings(**options))


def started(ctl: Controller, stack: FakeStack) -> None:
    """The first round (a sweep), then forget the calls it made."""
    ctl.step()
    stack.calls.clear()


def decisions(caplog: pytest.LogCaptureFixture, what: str | None = None) -> list[dict[str, Any]]:
    found = [r.decision for r in caplog.records if hasattr(r, "decision")]
    return [d for d in found if what is None or d["what"] == what]


def restarts(ctl: Controller, cause: str) -> float:
    return ctl.metrics.value("snapshot_reconcile_restarts_total", cause=cause)


# -- restarts ---------------------------------------------------------------------------------


def test_an_exit_is_forgotten_and_restarted_by_one_targeted_up() -> None:
    stack = FakeStack({"lobby": "s1", "stage": "s2"})
    ctl = controller(stack)
    started(ctl, stack)
    for notice in exit_event("s1", "ch-lobby"):
        assert ctl.notify(notice) == "accepted"
    ctl.step()
    assert stack.ops("refresh", "forget", "up") == [("forget", ("lobby",)), ("up", ("lobby",))]
    assert stack.sids["lobby"] not in ("s1", None)
    assert stack.sids["stage"] == "s2"
    assert restarts(ctl, "exited") == 1


def test_ten_sessions_ending_together_take_one_state_delete_and_one_up() -> None:
    stack = FakeStack({f"room{n}": f"s{n}" for n in range(10)})
    ctl = controller(stack)
    started(ctl, stack)
    for n in range(10):
        for notice in exit_event(f"s{n}", f"ch-room{n}"):
            ctl.notify(notice)
    ctl.step()
    [forget] = stack.ops("forget")
    [up] = stack.ops("up")
    assert sorted(forget[1]) == sorted(up[1]) == sorted(f"room{n}" for n in range(10))


def test_a_109_error_before_the_exit_makes_it_a_token_expiry() -> None:
    stack = FakeStack({"lobby": "s1"})
    ctl = controller(stack)
    started(ctl, stack)
    ctl.notify(recording_event(RecordingEvent.CLOUD_RECORDING_ERROR, "s1", "ch-lobby",
                               {"errorCode": TOKEN_EXPIRED_ERROR_CODE, "errorLevel": 5}))
    for notice in exit_event("s1", "ch-lobby", leave_code=0):
        ctl.notify(notice)
    ctl.step()
    assert restarts(ctl, "token_expired") == 1


def test_an_exit_of_a_sid_already_replaced_forgets_nothing() -> None:
    stack = FakeStack({"lobby": "s1"})
    ctl = controller(stack)
    started(ctl, stack)
    events = exit_event("s1", "ch-lobby")
    stack.sids["lobby"] = "s9"  # a user's `pulumi up` replaced it meanwhile
    for notice in events:
        ctl.notify(notice)
    ctl.step()
    assert stack.ops("forget", "up") == []
    assert stack.sids == {"lobby": "s9"}


def test_a_stopped_task_is_refreshed_not_forgotten() -> None:
    stack = FakeStack({"lobby": "s1"})
    ctl = controller(stack)
    started(ctl, stack)
    stack.gone.add("s1")
    for notice in exit_event("s1", "ch-lobby", leave_code=16):
        ctl.notify(notice)
    ctl.step()
    assert stack.ops("refresh", "forget", "up") == [("refresh", ("lobby",)), ("up", ("lobby",))]
    assert restarts(ctl, "stopped") == 1


def test_a_stopped_task_that_refresh_keeps_is_left_alone() -> None:
    stack = FakeStack({"lobby": "s1"})
    ctl = controller(stack)
    started(ctl, stack)
    for notice in exit_event("s1", "ch-lobby", leave_code=16):
        ctl.notify(notice)
    ctl.step()
    assert stack.ops("up", "forget") == []
    assert stack.sids == {"lobby": "s1"}


def test_a_stopped_task_replaced_meanwhile_is_not_even_refreshed() -> None:
    stack = FakeStack({"lobby": "s1"})
    ctl = controller(stack)
    started(ctl, stack)
    for notice in exit_event("s1", "ch-lobby", leave_code=16):  # a user's `up` replacing it
        ctl.notify(notice)
    stack.sids["lobby"] = "s2"
    ctl.step()
    assert stack.ops("refresh", "up", "forget") == []


def test_sessions_not_declared_are_never_touched() -> None:
    stack = FakeStack({"lobby": "s1", "old": "s2"})
    ctl = controller(stack, declared={"lobby"})
    started(ctl, stack)
    for notice in exit_event("s2", "ch-old"):
        ctl.notify(notice)
    ctl.step()
    assert stack.ops("forget", "up") == []


def test_a_stack_without_resources_is_left_alone() -> None:
    stack = FakeStack({})
    ctl = Controller(stack, declared=lambda: frozenset({"lobby"}), clock=Clock())
    stack.export = lambda: {"deployment": {"resources": [{"type": "pulumi:pulumi:Stack"}]}}  # type: ignore[method-assign]
    ctl.step()
    assert stack.ops("refresh", "up", "forget") == []
    assert ctl.status()["deployed"] is False


def test_an_exit_of_a_sid_created_since_the_last_export_is_matched_after_one() -> None:
    stack = FakeStack({"lobby": "s1"})
    ctl = controller(stack)
    started(ctl, stack)
    stack.sids["lobby"] = "s5"  # a user's `up` started a new task; the controller has not looked
    for notice in exit_event("s5", "ch-lobby"):
        assert ctl.notify(notice) == "unmatched"
    ctl.step()  # export, match
    ctl.step()  # act
    assert stack.ops("forget", "up") == [("forget", ("lobby",)), ("up", ("lobby",))]


def test_a_task_someone_else_started_is_read_from_the_state_once_named() -> None:
    stack = FakeStack({"lobby": "s1"}, token_expires_at=NOW + 1000)
    clock = Clock()
    ctl = controller(stack, clock=clock)
    started(ctl, stack)
    stack.sids["lobby"] = "s7"  # a user's `pulumi up` replaced it
    ctl.notify(snapshot_event("s7", "ch-lobby", NOW))
    ctl.notify(snapshot_event("other-stack", "ch-elsewhere", NOW))
    ctl.step()
    assert stack.ops("export") == [("export", ())]
    assert ctl.status()["sessions"] == ["lobby"]
    ctl.notify(snapshot_event("other-stack", "ch-elsewhere", NOW + 5))
    ctl.step()  # a sid of another stack does not make it read the state again
    assert stack.ops("export") == [("export", ())]
    clock.now += 60  # but the state is read at least every state_poll seconds
    ctl.step()
    assert len(stack.ops("export")) == 2


def test_a_sweep_restarts_dropped_and_missing_sessions() -> None:
    stack = FakeStack({"lobby": "s1", "stage": "s2"})
    clock = Clock()
    declared = {"lobby", "stage"}
    ctl = controller(stack, declared=declared, clock=clock)
    started(ctl, stack)
    declared.add("new")  # added to the stack file, not yet deployed
    stack.gone.add("s1")
    clock.now += 600
    ctl.step()
    assert stack.ops("refresh", "up") == [("refresh", ("lobby", "stage")),
                                          ("up", ("lobby", "new"))]
    assert restarts(ctl, "dropped") == 1
    assert restarts(ctl, "missing") == 1
    assert ctl.metrics.value("snapshot_reconcile_last_sweep_timestamp_seconds") == clock.now


def test_the_token_timer_refreshes_a_session_whose_exit_was_not_heard() -> None:
    stack = FakeStack({"lobby": "s1"}, token_expires_at=NOW + 100)
    clock = Clock()
    ctl = controller(stack, clock=clock, rotate_before=0)
    started(ctl, stack)
    assert ctl.step() == 60.0  # due in 160 s; the loop looks again after at most 60
    clock.now += 160
    stack.gone.add("s1")
    ctl.step()
    assert stack.ops("refresh", "up") == [("refresh", ("lobby",)), ("up", ("lobby",))]
    assert restarts(ctl, Cause.TOKEN_CHECK.value) == 1
    stack.calls.clear()
    ctl.step()  # timers are per sid: the new task's (same fake expiry, already past) fires too
    assert stack.ops("refresh") == [("refresh", ("lobby",))]
    stack.calls.clear()
    ctl.step()  # and only once
    assert stack.ops("refresh") == []


# -- idle ends --------------------------------------------------------------------------------


def test_an_idle_end_is_forgotten_at_once_and_restarted_when_a_broadcaster_joins() -> None:
    stack = FakeStack({"lobby": "s1", "stage": "s2"})
    ctl = controller(stack)
    started(ctl, stack)
    ctl.notify(join("ch-stage", "1001"))  # proof that channel events reach us
    for notice in exit_event("s1", "ch-lobby", leave_code=4):
        ctl.notify(notice)
    ctl.step()
    # Forgotten now, so that the broadcaster's return costs one `up` only.
    assert stack.ops("forget", "up") == [("forget", ("lobby",))]
    assert ctl.status()["held"] == ["lobby"]
    stack.calls.clear()
    ctl.notify(join("ch-lobby", "900001"))  # the recorder's own uid is not a host
    ctl.step()
    assert stack.ops("forget", "up") == []
    ctl.notify(join("ch-lobby", "2001", ts=2))
    ctl.step()
    assert stack.ops("export", "forget", "up") == [("export", ()), ("up", ("lobby",)),
                                                  ("export", ())]
    assert ctl.status()["held"] == []
    assert restarts(ctl, "idle") == 1


def test_an_empty_channel_is_not_restarted_again_and_again() -> None:
    stack = FakeStack({"lobby": "s1"})
    clock = Clock()
    ctl = controller(stack, clock=clock, policy=IdlePolicy.ON_JOIN)
    started(ctl, stack)
    for round_ in range(3):  # a publisher comes, goes; the session ends on idle each time
        sid = stack.sids["lobby"]
        ctl.notify(join("ch-lobby", "2001", ts=10 * round_ + 1, leave=True))
        for notice in exit_event(sid, "ch-lobby", leave_code=4):
            ctl.notify(notice)
        for _ in range(5):  # time passes, sweeps included: the empty channel gets no start
            clock.now += 600
            ctl.step()
        assert "lobby" not in stack.sids
        assert len(stack.ops("up")) == round_
        ctl.notify(join("ch-lobby", "2001", ts=10 * round_ + 2))
        ctl.step()
        assert len(stack.ops("up")) == round_ + 1  # one start per return of a publisher
    assert restarts(ctl, "idle") == 3


def test_without_channel_events_an_idle_end_restarts_at_once_under_auto() -> None:
    stack = FakeStack({"lobby": "s1"})
    ctl = controller(stack)
    started(ctl, stack)
    for notice in exit_event("s1", "ch-lobby", leave_code=4):
        ctl.notify(notice)
    ctl.step()
    assert stack.ops("up") == [("up", ("lobby",))]


def test_a_held_session_dropped_by_a_sweep_is_not_created() -> None:
    stack = FakeStack({"lobby": "s1"})
    clock = Clock()
    ctl = controller(stack, policy=IdlePolicy.ON_JOIN, clock=clock)
    started(ctl, stack)
    for notice in exit_event("s1", "ch-lobby", leave_code=4):
        ctl.notify(notice)
    stack.gone.add("s1")
    clock.now += 600
    ctl.step()  # the sweep: refresh drops it, but it waits for a broadcaster
    assert stack.ops("refresh", "up", "forget") == [("refresh", ("lobby",))]
    assert stack.sids == {}
    ctl.notify(join("ch-lobby", "2001"))
    ctl.step()
    assert stack.ops("up") == [("up", ("lobby",))]


def test_a_broadcaster_in_another_channel_releases_nothing() -> None:
    stack = FakeStack({"lobby": "s1", "stage": "s2"})
    ctl = controller(stack, policy=IdlePolicy.ON_JOIN)
    started(ctl, stack)
    for notice in exit_event("s1", "ch-lobby", leave_code=4):
        ctl.notify(notice)
    ctl.step()
    ctl.notify(join("ch-stage", "1001"))
    ctl.step()
    assert stack.ops("up") == []
    assert ctl.status()["held"] == ["lobby"]


# -- rotation ---------------------------------------------------------------------------------


def test_a_rotation_waits_for_a_snapshot_then_replaces_the_session() -> None:
    stack = FakeStack({"lobby": "s1"}, token_expires_at=NOW + 1000)
    clock = Clock()
    ctl = controller(stack, clock=clock, rotate_before=600)
    started(ctl, stack)
    ctl.notify(join("ch-lobby", "2001"))  # someone publishes: a moment is chosen
    clock.now += 450  # the window opens 600 s before the end
    ctl.step()
    assert ctl.status()["rotating"] == ["lobby"]
    assert stack.ops("up") == []
    ctl.notify(snapshot_event("s1", "ch-lobby", clock.now))
    ctl.step()
    assert stack.ops("up") == [("up", ("lobby",))]
    assert stack.replaced == [("lobby",)]
    assert stack.sids["lobby"] != "s1"
    assert ctl.metrics.value("snapshot_reconcile_rotations_total", cause="token") == 1


def test_a_rotation_happens_at_once_in_an_empty_channel() -> None:
    stack = FakeStack({"lobby": "s1"}, token_expires_at=NOW + 1000)
    clock = Clock()
    ctl = controller(stack, clock=clock, rotate_before=600)
    started(ctl, stack)
    ctl.notify(join("ch-lobby", "2001", leave=True))  # known empty
    clock.now += 450
    ctl.step()
    assert stack.replaced == [("lobby",)]


def test_a_rotation_without_a_good_moment_happens_at_the_deadline() -> None:
    stack = FakeStack({"lobby": "s1"}, resource_expires_at=NOW + 1000)
    clock = Clock()
    ctl = controller(stack, clock=clock, rotate_before=600)
    started(ctl, stack)
    clock.now += 450  # window open, no snapshot notifications, channel unknown
    ctl.step()
    assert stack.ops("up") == []
    clock.now += 249  # the deadline: 300 s before the end
    ctl.step()
    assert stack.ops("up") == []
    clock.now += 1
    ctl.step()
    assert stack.replaced == [("lobby",)]
    assert ctl.metrics.value("snapshot_reconcile_rotations_total", cause="resource_id") == 1


def test_a_given_token_is_reported_before_the_program_refuses_it_and_never_rotated(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The program refuses a given token with less than an hour left (every `up` of the stack
    # fails then): the warning comes an interval (600 s here) before that hour.
    stack = FakeStack({"lobby": "s1"}, token_expires_at=NOW + 5000, given_token=True)
    clock = Clock()
    ctl = controller(stack, clock=clock, rotate_before=600)
    started(ctl, stack)
    with caplog.at_level(logging.INFO, LOGGER):
        clock.now += 5000 - 3600 - 600 - 1
        ctl.step()
        assert decisions(caplog, "cannot_rotate") == []
        clock.now += 2
        ctl.step()
        clock.now += 4000  # through the rotation window and past the end
        ctl.step()
        ctl.step()
    assert stack.replaced == []
    [said] = decisions(caplog, "cannot_rotate")
    assert said["session"] == "lobby"


def test_a_rotation_reports_the_capture_gap_it_caused(caplog: pytest.LogCaptureFixture) -> None:
    stack = FakeStack({"lobby": "s1"}, token_expires_at=NOW + 1000)
    clock = Clock()
    ctl = controller(stack, clock=clock, rotate_before=600)
    started(ctl, stack)
    clock.now += 450
    ctl.step()
    with caplog.at_level(logging.INFO, LOGGER):
        ctl.notify(snapshot_event("s1", "ch-lobby", clock.now - 5))
        ctl.notify(snapshot_event("s1", "ch-lobby", clock.now))
        ctl.step()
        new = stack.sids["lobby"]
        ctl.notify(snapshot_event(new, "ch-lobby", clock.now + 3.5))
    gap = ctl.metrics.value("snapshot_reconcile_last_capture_gap_seconds", session="lobby")
    assert gap == pytest.approx(3.5)
    [first] = decisions(caplog, "first_snapshot")
    assert (first["session"], first["cause"], first["gap"]) == ("lobby", "token", 3.5)


# -- coalescing, locks and failures -----------------------------------------------------------


def test_a_burst_of_200_notifications_during_a_run_makes_at_most_three_engine_runs() -> None:
    names = [f"room{n}" for n in range(20)]
    stack = FakeStack({name: f"s{n}" for n, name in enumerate(names)})
    ctl = Controller(stack, declared=lambda: frozenset(names),
                     settings=ControllerSettings(interval=3600, batch_window=0.2))
    stop = threading.Event()
    worker = threading.Thread(target=ctl.run, args=(stop,))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while ctl.status()["lastSweep"] is None and time.monotonic() < deadline:
            time.sleep(0.01)
        stack.calls.clear()
        before = ctl.metrics.engine_run_count()
        stack.hold_up.clear()  # the first `up` is long: the rest of the burst arrives meanwhile
        burst: list[Any] = []
        for n, name in enumerate(names):
            burst += exit_event(f"s{n}", f"ch-{name}", leave_code=0)  # 40
            burst += [snapshot_event(f"s{n}", f"ch-{name}", NOW + i) for i in range(6)]  # 120
            burst.append(join(f"ch-{name}", "2001", ts=n + 1))  # 20
        burst += exit_event("s0", "ch-room0", leave_code=0) * 10  # 20 resends of the first end
        assert len(burst) == 200
        for i, notice in enumerate(burst):
            ctl.notify(notice)
            if i == 5:  # the first round starts with this little of the burst
                assert stack.in_up.wait(5)
        stack.hold_up.set()
        while time.monotonic() < deadline and not (
                len(stack.sids) == 20 and not set(stack.sids.values()) & {
                    f"s{n}" for n in range(20)} and not ctl.status()["busy"]
                and not ctl.status()["pending"]):
            time.sleep(0.01)
    finally:
        stack.hold_up.set()
        stop.set()
        ctl.wake()
        worker.join(10)
    # The round that was running took the first exit; everything that arrived meanwhile went
    # into one more round: two `up`s (engine runs) and two state deletes in all.
    runs = stack.ops("refresh", "up")
    assert len(runs) <= 3, runs
    assert ctl.metrics.engine_run_count() - before == len(runs)
    assert len(stack.ops("forget")) <= 2
    assert sum(restarts(ctl, cause) for cause in ("token_expired", "exited")) == 20


def test_a_burst_arriving_together_is_one_round() -> None:
    stack = FakeStack({f"room{n}": f"s{n}" for n in range(5)})
    clock = Clock()
    ctl = controller(stack, clock=clock, batch_window=0.5)
    started(ctl, stack)
    for notice in exit_event("s0", "ch-room0"):
        ctl.notify(notice)
    assert ctl.step() == pytest.approx(0.5)  # waits for the rest of the burst
    clock.now += 0.3
    for n in range(1, 5):
        for notice in exit_event(f"s{n}", f"ch-room{n}"):
            ctl.notify(notice)
    assert ctl.step() == pytest.approx(0.2)  # the window is not extended
    clock.now += 0.2
    ctl.step()
    assert [len(c[1]) for c in stack.ops("forget", "up")] == [5, 5]


def test_a_locked_stack_is_waited_for_with_backoff_not_counted_as_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = FakeStack({"lobby": "s1"})
    clock = Clock()
    ctl = controller(stack, clock=clock, busy_delay=1, max_busy_delay=4)
    started(ctl, stack)
    for notice in exit_event("s1", "ch-lobby"):
        ctl.notify(notice)
    waits = []
    with caplog.at_level(logging.INFO, LOGGER):
        for _ in range(4):
            stack.fail.append(StackBusyError("the stack is currently locked by 1 lock(s)"))
            ctl.step()
            waits.append(ctl.step())
            clock.now += waits[-1]
        ctl.step()
    assert waits == [1.0, 2.0, 4.0, 4.0]
    assert stack.ops("forget", "up")[-2:] == [("forget", ("lobby",)), ("up", ("lobby",))]
    assert ctl.status()["failures"] == 0
    assert ctl.metrics.value("snapshot_reconcile_engine_runs_total", operation="export",
                             outcome="busy") == 4
    assert [d["seconds"] for d in decisions(caplog, "wait")] == [1.0, 2.0, 4.0, 4.0]


def test_failures_back_off_exponentially_and_are_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = FakeStack({"lobby": "s1"})
    clock = Clock()
    ctl = Controller(stack, declared=lambda: frozenset({"lobby"}), clock=clock,
                     settings=ControllerSettings(retry_delay=5, max_retry_delay=12))
    waits = []
    with caplog.at_level(logging.INFO, LOGGER):
        for _ in range(4):
            stack.fail.append(StackOperationError("boom"))
            ctl.step()
            waits.append(ctl.step())
            assert len(stack.calls) == len(waits)  # one attempt per delay: no hot loop
            clock.now += waits[-1]
    assert waits == [5.0, 10.0, 12.0, 12.0]
    assert ctl.status()["lastError"] == "boom"
    assert ctl.metrics.value("snapshot_reconcile_consecutive_failures") == 4
    assert [d["failures"] for d in decisions(caplog, "backoff")] == [1, 2, 3, 4]
    ctl.step()
    assert ctl.metrics.value("snapshot_reconcile_consecutive_failures") == 0


# -- reports ----------------------------------------------------------------------------------


def test_every_decision_is_one_line_with_what_why_session_and_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stack = FakeStack({"lobby": "s1", "stage": "s2"})
    ctl = controller(stack)
    with caplog.at_level(logging.INFO, LOGGER):
        ctl.step()
        for notice in exit_event("s1", "ch-lobby"):
            ctl.notify(notice)
        ctl.step()
    found = decisions(caplog)
    assert [d["what"] for d in found] == ["sweep", "restart", "forgotten", "restarted"]
    assert all(d["why"] for d in found)
    assert [d["session"] for d in found[1:]] == ["lobby"] * 3
    assert all(isinstance(d["seconds"], float) for d in found if d["what"] != "restart")


def test_running_and_declared_sessions_are_gauged() -> None:
    stack = FakeStack({"lobby": "s1", "stage": "s2"})
    ctl = controller(stack, declared={"lobby", "stage", "new"}, policy=IdlePolicy.ON_JOIN)
    started(ctl, stack)
    for notice in exit_event("s1", "ch-lobby", leave_code=4):
        ctl.notify(notice)
    value = ctl.metrics.value
    assert value("snapshot_reconcile_sessions", state="declared") == 3
    assert value("snapshot_reconcile_sessions", state="running") == 2  # stage + "new" created
    assert value("snapshot_reconcile_sessions", state="held") == 1


def test_a_held_session_of_a_destroyed_stack_asks_for_no_more_rounds() -> None:
    class Destroyable(FakeStack):
        destroyed = False

        def export(self) -> Mapping[str, Any]:
            if self.destroyed:
                self.calls.append(("export", ()))
                return {"deployment": {"resources": []}}
            return super().export()

    stack = Destroyable({"lobby": "s1", "stage": "s2"})
    clock = Clock()
    ctl = controller(stack, clock=clock)
    started(ctl, stack)
    ctl.notify(join("ch-stage", "1001"))
    for notice in exit_event("s1", "ch-lobby", leave_code=4):
        ctl.notify(notice)
    stack.fail.append(StackBusyError("the stack is currently locked by 1 lock(s)"))
    clock.now += ctl.step()  # someone's `pulumi destroy` holds the lock ...
    stack.destroyed = True  # ... and removes everything
    for _ in range(10):  # the lock is waited for, then a round finds nothing deployed
        clock.now += max(ctl.step(), 0.1)
    assert ctl.status()["deployed"] is False
    stack.calls.clear()
    for _ in range(20):
        clock.now += 1.0  # well short of the state poll (60 s) and the sweep (600 s)
        ctl.step()
    assert stack.ops("export", "forget", "up") == []


def test_a_rotation_that_failed_does_not_hide_a_later_real_exit() -> None:
    class UpFailsOnce(FakeStack):
        failed = False

        def up(self, urns: Sequence[str], replace: Sequence[str] = ()) -> None:
            if not self.failed:
                self.failed = True
                self.calls.append(("up-failed", tuple(replace)))
                raise StackOperationError("up failed")
            super().up(urns, replace)

    stack = UpFailsOnce({"lobby": "s1"}, token_expires_at=NOW + 1000)
    clock = Clock()
    ctl = controller(stack, clock=clock, rotate_before=600, retry_delay=5)
    started(ctl, stack)
    ctl.notify(join("ch-lobby", "2001"))
    clock.now += 450
    ctl.step()
    ctl.notify(snapshot_event("s1", "ch-lobby", clock.now))
    ctl.step()  # the rotation's `up --replace` fails
    assert stack.failed
    assert stack.sids["lobby"] == "s1"
    for notice in exit_event("s1", "ch-lobby"):  # then the task ends on its own
        ctl.notify(notice)
    clock.now += 10  # past the retry delay
    ctl.step()
    assert stack.sids["lobby"] != "s1"
    assert restarts(ctl, "exited") == 1


def test_once_stopping_no_further_stack_operation_starts() -> None:
    stack = FakeStack({"lobby": "s1", "stage": "s2"})
    stop = threading.Event()
    ctl = controller(stack)

    def forget_then_stop(urns: Sequence[str], original: Any = stack.forget) -> None:
        original(urns)
        stop.set()  # SIGTERM arrives while the state delete runs

    stack.forget = forget_then_stop  # type: ignore[method-assign]
    started(ctl, stack)
    for notice in exit_event("s1", "ch-lobby"):
        ctl.notify(notice)
    ctl.run(stop)  # returns once stopping
    assert stack.ops("forget", "up") == [("forget", ("lobby",))]  # no `up` after the stop
    assert ctl.status()["failures"] == 0
    assert ctl.status()["pending"] == ["lobby"]  # kept: the next process restarts it


def test_channel_events_of_other_channels_are_not_kept() -> None:
    stack = FakeStack({"lobby": "s1"})
    ctl = controller(stack)
    started(ctl, stack)
    for n in range(500):  # the rest of the App ID's traffic
        ctl.notify(join(f"elsewhere-{n}", "2001"))
    assert ctl.presence.occupied("elsewhere-0") is None
    assert ctl.status()["channelEventsSeen"] is True
    ctl.notify(join("ch-lobby", "2001"))
    assert ctl.presence.occupied("ch-lobby") is True
