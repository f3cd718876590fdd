"""`make demo` end to end under the real engine: it exits 0, snapshots land per user, the
subscription-list edit keeps the sid, and nothing is left running; Ctrl-C in the middle of
`pulumi up` still destroys the stack and leaves no process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from support.engine_stack import REPO
from support.waiting import wait_for

from snapshot_resources import demo, engine
from snapshot_resources.testing.offline import processes_with_home


def _emulator_url(out: str) -> str:
    found = re.search(r"emulator listening on (http://127\.0\.0\.1:\d+)", out)
    assert found is not None, out
    return found.group(1)


def _stopped(url: str) -> bool:
    try:
        requests.get(f"{url}/_emulator/tasks", timeout=2)
    except requests.ConnectionError:
        return True
    return False


def test_the_demo_runs_its_whole_story(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], pulumi_cli: engine.PulumiCli
) -> None:
    code = demo.main(["--dir", str(tmp_path / "demo"), "--repo", str(REPO)])

    out = capsys.readouterr().out
    assert code == 0, out
    assert f"using the Pulumi CLI {pulumi_cli.version}" in out
    # JPGs landing per session and user: lobby-all sees both publishers.
    assert re.search(r"lobby-all \(sid [0-9a-f]{32}\): user 101: [1-9]\d*, user 102: [1-9]", out), out
    assert "the same task, updated in place" in out
    assert "- 4 deleted" in out
    assert out.rstrip().endswith("the emulator stopped")
    assert _stopped(_emulator_url(out))
    assert processes_with_home(tmp_path / "demo" / "pulumi" / "home") == []


def test_ctrl_c_during_up_destroys_and_leaves_nothing_running(
    tmp_path: Path, pulumi_cli: engine.PulumiCli
) -> None:
    demo_dir = tmp_path / "demo"
    process = subprocess.Popen(
        [sys.executable, "-m", "snapshot_resources.demo", "--dir", str(demo_dir),
         "--repo", str(REPO)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if "pulumi up: two sessions" in line:
            break
    time.sleep(1.0)  # inside `pulumi up`
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    rest, _ = process.communicate(timeout=180)
    out = "".join(lines) + rest

    assert process.returncode == 130, out
    assert "Traceback" not in out.split("interrupted: letting")[1]
    assert "interrupted: letting the engine finish cancelling, then destroying" in out
    assert "pulumi destroy" in out
    assert "Destroying (demo)" in out  # the destroy really ran: the lock was released
    assert "ConcurrentUpdateError" not in out
    assert _stopped(_emulator_url(out))
    wait_for(lambda: processes_with_home(demo_dir / "pulumi" / "home") == [], timeout=10)
