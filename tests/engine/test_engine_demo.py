"""`make demo` end to end under the real engine: it exits 0, snapshots land per user, the
subscription-list edit keeps the sid, and nothing is left running."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.conftest import REPO
from snapshot_resources import demo, engine


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
