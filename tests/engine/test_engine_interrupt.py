"""Interrupted, never orphaned, under the real engine (docs/decisions.md).

The matrix: {kill -9 of the CLI, kill -9 of the whole process tree, one SIGINT, two SIGINTs 1 s
apart} x {the first create, the replacement's create of an interval edit, the create of a session
added to a deployed stack, a destroy}, and SIGTERM to the reconciler mid-round while it creates a
session added to the stack (the only step of the four the reconciler takes). Each interruption
lands at the worst moment: after Agora's start and before the create returns (the emulator's
query is slowed, so the create sits in its confirmation), or while a destroy's stop is in flight.
Recovery uses ordinary commands only: `pulumi cancel` where Pulumi requires it for a killed CLI's
lock, then `pulumi up`. Afterwards: no task runs at the emulator that the state does not hold,
the `up` succeeded, and `pulumi destroy` leaves none.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pytest
from support.engine_stack import ExampleStack, running_tasks
from support.interruption import (
    SLOW_MS,
    interrupt_when,
    nothing_orphaned,
    recover,
)
from support.waiting import wait_for

from snapshot_resources.testing.offline import processes_with_home

KINDS: Final = ("kill-cli", "kill-tree", "sigint", "sigint-twice")
STEPS: Final = ("first-create", "replacement", "added-session", "destroy")


def _prepare(example: ExampleStack, step: str) -> tuple[str, Callable[[], bool]]:
    """Deploy what the step needs, slow the operation it interrupts, and say which operation
    to run and when it sits where the interruption must land."""
    example.sessions = {"lobby": example.sessions["lobby"]}
    example.publish()
    example.agora.admin.join("annex", "4001", video=True)
    if step != "first-create":
        example.apply()
        assert example.up().ok
    deployed = set(example.sids_in_state().values())

    def a_new_task_runs() -> bool:
        return any(t["sid"] not in deployed for t in running_tasks(example.agora))

    if step == "replacement":
        interval = example.sessions["lobby"]["snapshotConfig"]["captureInterval"]
        example.sessions["lobby"]["snapshotConfig"]["captureInterval"] = interval + 5
    elif step == "added-session":
        example.sessions["annex"] = {**example.sessions["lobby"], "cname": "annex",
                                     "uid": "900004", "fileNamePrefix": ["annex"]}
    example.apply()
    if step == "destroy":
        example.agora.admin.set_faults(rate=0.0, operations=["stop"], latency_ms=SLOW_MS)

        seen: list[float] = []

        def a_stop_is_in_flight() -> bool:
            # The provider runs (the engine has sent its Delete), and its stop has been sent.
            if not seen and any("pulumi.dynamic" in p.cmdline
                                for p in processes_with_home(example.offline.home)):
                seen.append(time.monotonic())
            return bool(seen) and time.monotonic() - seen[0] > 1.0

        return "destroy", a_stop_is_in_flight
    example.agora.admin.set_faults(rate=0.0, operations=["query"], latency_ms=SLOW_MS)
    return "up", a_new_task_runs


@pytest.fixture
def interrupted(example: ExampleStack, tmp_path: Path) -> Callable[[str, str], None]:
    def run(kind: str, step: str) -> None:
        operation, ready = _prepare(example, step)
        interrupt_when(example, operation, ready, kind, tmp_path)

    return run


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("kind", KINDS)
def test_an_interruption_leaves_nothing_that_up_does_not_converge(
    example: ExampleStack, interrupted: Callable[[str, str], None], kind: str, step: str
) -> None:
    interrupted(kind, step)
    recover(example)
    nothing_orphaned(example)
    assert set(example.sids_in_state()) == set(example.sessions), "every declared session runs"
    assert example.destroy().ok
    wait_for(lambda: running_tasks(example.agora) == [], timeout=30)


def test_sigterm_to_the_reconciler_mid_create_leaves_nothing_up_does_not_converge(
    example: ExampleStack, tmp_path: Path
) -> None:
    """`snapshot-resources reconcile --stop-timeout 0` stopped while its `pulumi up` creates a
    session added to the deployed stack (the reconciler creates nothing in a stack never
    deployed, and neither replaces for an edit nor destroys): its CLI gets one SIGINT, as a
    second would make Pulumi terminate at once."""
    _, ready = _prepare(example, "added-session")
    log = tmp_path / "reconcile.log"
    with log.open("w") as stderr:
        reconciler = subprocess.Popen(
            [sys.executable, "-m", "snapshot_resources.cli", "reconcile", "--stack",
             example.stack.name, "--cwd", str(example.project_dir), "--listen", "127.0.0.1:0",
             "--stop-timeout", "0"],
            env={**os.environ, **example.offline.env}, stdout=subprocess.DEVNULL,
            stderr=stderr)
    try:
        wait_for(ready, timeout=120)
        time.sleep(0.3)
        reconciler.send_signal(signal.SIGTERM)
        assert reconciler.wait(120) == 0, log.read_text()
    finally:
        if reconciler.poll() is None:
            reconciler.kill()
            reconciler.wait(10)
    wait_for(lambda: not processes_with_home(example.offline.home), timeout=60)
    example.agora.admin.clear_faults()
    recover(example)
    nothing_orphaned(example)
    assert set(example.sids_in_state()) == set(example.sessions)
    assert example.destroy().ok
    wait_for(lambda: running_tasks(example.agora) == [], timeout=30)
