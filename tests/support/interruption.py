"""Interrupting an engine operation at its worst moment, and checking what it left: the driver of
the engine's interruption tests (tests/engine/test_engine_interrupt.py, and the shared-store
tests that interrupt an ``up`` on one runner and recover on another)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psutil

from snapshot_resources.testing.offline import OfflinePulumi, processes_with_home
from support.engine_stack import REPO, ExampleStack, running_tasks
from support.waiting import wait_for

SLOW_MS: Final = 4000  # the slowed operation's latency: the interruption lands inside it
RUNNER: Final = REPO / "tests" / "support" / "engine_run.py"



@dataclass
class Running:
    """An engine operation in a process group of its own (a CI job, a terminal)."""

    process: subprocess.Popen[bytes]
    log: Path

    def cli(self) -> psutil.Process | None:
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if child.name() == "pulumi":
                        return child
        return None


def start_operation(example: ExampleStack, operation: str, tmp_path: Path) -> Running:
    request = tmp_path / f"{operation}-request.json"
    log = tmp_path / f"{operation}.log"
    request.write_text(json.dumps({
        "operation": operation, "cli": str(example.offline.cli.bin_dir),
        "cwd": str(example.project_dir), "stack": example.stack.name,
        "env": example.offline.env, "log": str(log)}))
    process = subprocess.Popen([sys.executable, str(RUNNER), str(request)],
                               env={**os.environ, **example.offline.env},
                               start_new_session=True)
    return Running(process, log)


def interrupt(running: Running, kind: str, home: Path) -> None:
    wait_for(lambda: running.cli() is not None, timeout=60)
    cli = running.cli()
    assert cli is not None
    if kind == "kill-cli":
        cli.kill()
    elif kind == "kill-tree":
        # The CI runner's kill: the job's process group, and the plugins the CLI started in
        # groups of their own (everything with this Pulumi home).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(running.process.pid, signal.SIGKILL)
        for process in processes_with_home(home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
    elif kind == "sigint":
        cli.send_signal(signal.SIGINT)
    elif kind == "sigint-twice":
        cli.send_signal(signal.SIGINT)
        time.sleep(1.0)
        with contextlib.suppress(psutil.Error):
            cli.send_signal(signal.SIGINT)
    else:  # pragma: no cover - the parametrization names every kind
        raise AssertionError(kind)


def settle(running: Running, offline: OfflinePulumi) -> None:
    """Whatever survived the interruption finishes (a provider stopping what it created)."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        running.process.wait(120)
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait(10)
    wait_for(lambda: not processes_with_home(offline.home), timeout=60)


def recover(example: ExampleStack) -> None:
    """`pulumi cancel` when a killed CLI left the stack locked, then `pulumi up`."""
    if any(example.offline.backend_dir.rglob("locks/**/*.json")):
        example.offline.run("cancel", "--yes", "--stack", example.stack.name,
                            cwd=example.project_dir)
    run = example.up()
    assert run.ok, run.terminal


def nothing_orphaned(example: ExampleStack) -> None:
    held = set(example.sids_in_state().values())
    wait_for(lambda: {t["sid"] for t in running_tasks(example.agora)} <= held, timeout=30)
    tasks = running_tasks(example.agora)
    assert {t["sid"] for t in tasks} == held, (tasks, held)
    per_key: dict[tuple[str, str], int] = {}
    for task in tasks:
        per_key[(task["cname"], task["uid"])] = per_key.get((task["cname"], task["uid"]), 0) + 1
    assert all(count == 1 for count in per_key.values()), per_key


def interrupt_when(example: ExampleStack, operation: str, ready: Callable[[], bool], kind: str,
                   tmp_path: Path) -> Running:
    """Run ``operation`` in a process group of its own, interrupt it (``kind``) once ``ready()``
    holds, let it settle, kill whatever is left of its group, and lift the emulator's faults;
    the run (its log) is returned."""
    running = start_operation(example, operation, tmp_path)
    try:
        wait_for(ready, timeout=90)
        time.sleep(0.3)
        interrupt(running, kind, example.offline.home)
        settle(running, example.offline)
    finally:
        if running.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.process.pid, signal.SIGKILL)
            running.process.wait(10)
    example.agora.admin.clear_faults()
    return running
